"""The paper's 9 patches and the holistic face, cut from a registered 512x512 frame.

One function serves ``prepare`` (training data) and ``detect`` (inference), so training and
inference can never see differently cut patches.

Box coordinates: the authors' crop script uses MATLAB ``imcrop(I, [x y 125 125])`` with 1-based
pixel indices, which returns the 126x126 pixels from column ``x`` to ``x + 125`` and row ``y`` to
``y + 125`` inclusive. In 0-based, half-open numpy slices that is ``[x - 1, x + 125)``; so P1,
given as (131, 125), is ``image[124:250, 130:256]``. :data:`PATCH_BOXES` holds these 0-based
half-open boxes ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pattnet.constants import BOX_SIZE, CANONICAL_SIZE, HOLISTIC_SIZE, PATCH_SIZE
from pattnet.errors import PattnetError

# docs/paper-notes.md section 2: 1-based MATLAB top-left corners (x, y), boxes [x y 125 125]
PATCH_CORNERS_MATLAB: tuple[tuple[int, int], ...] = (
    (131, 125),  # P1 right eyebrow (image left)
    (256, 125),  # P2 left eyebrow
    (131, 160),  # P3 right eye
    (193, 160),  # P4 between eyebrows and nose root
    (256, 160),  # P5 left eye
    (131, 250),  # P6 right cheek and lip corner
    (193, 250),  # P7 nose and upper mouth
    (256, 250),  # P8 left cheek and lip corner
    (193, 300),  # P9 mouth and chin
)
REGISTERED_SIZE = CANONICAL_SIZE
# 0-based half-open (x0, y0, x1, y1)
PATCH_BOXES: tuple[tuple[int, int, int, int], ...] = tuple(
    (x - 1, y - 1, x - 1 + BOX_SIZE, y - 1 + BOX_SIZE) for x, y in PATCH_CORNERS_MATLAB
)


def _image_of(registered: Any) -> np.ndarray:
    img = getattr(registered, "image", registered)
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.shape != (REGISTERED_SIZE, REGISTERED_SIZE, 3):
        raise PattnetError(
            f"patches are cut from a registered {REGISTERED_SIZE}x{REGISTERED_SIZE}x3 uint8 frame, "
            f"got {img.dtype} {img.shape}"
        )
    return img


def crop_patches(registered: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(patches, holistic)``: (9, 100, 100, 3) and (200, 200, 3) uint8 from a registered frame.

    ``registered`` is a (512, 512, 3) uint8 RGB array or anything with such an ``image``
    attribute (a :class:`pattnet.registration.RegisteredFace`). Resizing uses area averaging
    (126 -> 100 and 512 -> 200 are reductions, and area averaging does not alias).
    """
    img = _image_of(registered)
    patches = np.empty((len(PATCH_BOXES), PATCH_SIZE, PATCH_SIZE, 3), dtype=np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(PATCH_BOXES):
        patches[i] = cv2.resize(img[y0:y1, x0:x1], (PATCH_SIZE, PATCH_SIZE),
                                interpolation=cv2.INTER_AREA)
    holistic = cv2.resize(img, (HOLISTIC_SIZE, HOLISTIC_SIZE), interpolation=cv2.INTER_AREA)
    return patches, holistic


def crop_patches_batch(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch variant: (N, 512, 512, 3) -> (N, 9, 100, 100, 3), (N, 200, 200, 3)."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise PattnetError(f"expected a batch (N, 512, 512, 3), got shape {arr.shape}")
    n = len(arr)
    patches = np.empty((n, len(PATCH_BOXES), PATCH_SIZE, PATCH_SIZE, 3), dtype=np.uint8)
    holistic = np.empty((n, HOLISTIC_SIZE, HOLISTIC_SIZE, 3), dtype=np.uint8)
    for i in range(n):
        patches[i], holistic[i] = crop_patches(arr[i])
    return patches, holistic


_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60)]


def patch_figure(registered: Any) -> np.ndarray:
    """Figure 2 style picture (RGB uint8): the registered face with the 9 boxes, and the patches.

    Left: the 512x512 frame with each box outlined in its colour and numbered; right: the nine
    100x100 patches in a 3x3 grid with the same colours and numbers.
    """
    img = _image_of(registered).copy()
    patches, _ = crop_patches(img)
    for i, (x0, y0, x1, y1) in enumerate(PATCH_BOXES):
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), _COLOURS[i], 2)
        cv2.putText(img, f"P{i + 1}", (x0 + 4, y0 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    _COLOURS[i], 1, cv2.LINE_AA)
    gap, tile = 8, PATCH_SIZE + 8
    grid = np.full((REGISTERED_SIZE, 3 * tile + gap, 3), 255, dtype=np.uint8)
    top = (REGISTERED_SIZE - 3 * tile) // 2
    for i in range(9):
        r, c = divmod(i, 3)
        y, x = top + r * tile, gap + c * tile
        grid[y:y + PATCH_SIZE, x:x + PATCH_SIZE] = patches[i]
        cv2.rectangle(grid, (x - 2, y - 2), (x + PATCH_SIZE + 1, y + PATCH_SIZE + 1),
                      _COLOURS[i], 2)
        cv2.putText(grid, f"P{i + 1}", (x + 3, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return np.hstack([img, grid])


def save_patch_figure(registered: Any, path: str | Path) -> None:
    """Write :func:`patch_figure` as a PNG, atomically."""
    from pattnet.io.atomic import atomic_write_bytes

    ok, buf = cv2.imencode(".png", patch_figure(registered)[:, :, ::-1])
    if not ok:  # pragma: no cover
        raise PattnetError(f"{path}: could not encode the patch figure")
    atomic_write_bytes(path, buf.tobytes())
