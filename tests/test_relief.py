"""Relief shading (pattnet.synth.relief): the change of a deformed surface's shading, and only it."""

from __future__ import annotations

import numpy as np

from pattnet.synth.relief import AMBIENT, Light, shade_relief, shading_ratio

# a 5x5 grid of points on a plane facing the camera (z = 0), two triangles per cell
_N = 5
_XY = np.stack(np.meshgrid(np.arange(_N) * 20.0 + 10, np.arange(_N) * 20.0 + 10), -1).reshape(-1, 2)
_PLANE = np.column_stack([_XY, np.zeros(len(_XY))])
_TRI = np.array([t for r in range(_N - 1) for c in range(_N - 1)
                 for t in ((r * _N + c, r * _N + c + 1, (r + 1) * _N + c),
                           (r * _N + c + 1, (r + 1) * _N + c + 1, (r + 1) * _N + c))])
_FROM_LEFT = Light((float(-np.sqrt(0.5)), 0.0, float(-np.sqrt(0.5))), 1.0)


def _tilted(slope: float) -> np.ndarray:
    """The plane with depth growing to the right (slope > 0): it turns to face the right."""
    pts = _PLANE.copy()
    pts[:, 2] = slope * (pts[:, 0] - pts[:, 0].mean())
    return pts


def test_nothing_moved_nothing_changes():
    assert np.array_equal(shading_ratio(_PLANE, _PLANE, _TRI, _FROM_LEFT), np.ones(len(_PLANE)))
    img = np.full((120, 120, 3), 128, np.uint8)
    assert shade_relief(img, _PLANE, _PLANE, _TRI, _FROM_LEFT) is img
    assert shade_relief(img, _PLANE, _tilted(0.5), _TRI, Light(strength=0.0)) is img


def test_a_surface_turned_towards_the_light_brightens_and_away_darkens():
    # depth shrinking to the right (nearer on the right) turns the normal to -x, the light's side
    towards = shading_ratio(_PLANE, _tilted(-0.5), _TRI, _FROM_LEFT)
    away = shading_ratio(_PLANE, _tilted(0.5), _TRI, _FROM_LEFT)
    assert np.all(towards > 1.0) and np.all(away < 1.0)
    # Lambert with ambient: before, n = (0, 0, -1): cos 45 deg; after, the normal is turned by
    # atan(0.5) towards the light
    before = AMBIENT + (1 - AMBIENT) * np.sqrt(0.5)
    n = np.array([-0.5, 0.0, -1.0]) / np.sqrt(1.25)
    after = AMBIENT + (1 - AMBIENT) * float(n @ np.array(_FROM_LEFT.direction))
    assert np.allclose(towards, after / before)


def test_the_image_changes_inside_the_moved_mesh_only_and_in_linear_light():
    img = np.full((120, 120, 3), 100, np.uint8)
    out = shade_relief(img, _PLANE, _tilted(-0.5), _TRI, _FROM_LEFT)
    inside = out[30:80, 30:80].astype(int)
    assert np.all(inside > 100)
    ratio = shading_ratio(_PLANE, _tilted(-0.5), _TRI, _FROM_LEFT)[0]
    expected = ((100 / 255) ** 2.2 * ratio) ** (1 / 2.2) * 255
    assert np.allclose(inside, expected, atol=1)
    assert np.array_equal(out[:, 110:], img[:, 110:]) and np.array_equal(out[110:], img[110:])


def test_strength_scales_the_change():
    full = shading_ratio(_PLANE, _tilted(0.5), _TRI, _FROM_LEFT)
    half = shading_ratio(_PLANE, _tilted(0.5), _TRI, Light(_FROM_LEFT.direction, 0.5))
    assert np.allclose(half - 1.0, 0.5 * (full - 1.0))
