"""The controlled AU set: deformations stay in their region and scale with intensity, images
re-register, the manifest round-trips, bad --faces give a clear error."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pattnet.cli import main
from pattnet.constants import BP4D_AUS, au_name
from pattnet.registration import euler_to_rotation, load_template, register_image
from pattnet.synth import (
    AUS,
    DEFORMATIONS,
    FaceFrame,
    ImageParams,
    SourceFace,
    apply_aus,
    deform_mesh,
    label_rates,
    load_sources,
    region_indices,
    render,
    sample_labels,
    shade_furrows,
    synthesize,
    template_face,
)


def _posed_frame(pitch=10.0, yaw=25.0, roll=-8.0, iod_px=100.0) -> tuple[FaceFrame, np.ndarray]:
    """A face frame of a turned head whose source IOD is ``iod_px``, and its source mesh."""
    tf = template_face()
    r = euler_to_rotation(pitch, yaw, roll).T  # canonical = s R p + t removes the head rotation
    ff = FaceFrame(s=96.0 / iod_px, r=r, t=np.array([10.0, -5.0, 3.0]), centre=np.zeros(3), iod=96.0)
    return ff, ff.from_face(tf)


@pytest.mark.parametrize("au", BP4D_AUS)
def test_each_au_moves_only_its_own_region(au):
    ff, src = _posed_frame()
    moved = ff.from_face(DEFORMATIONS[au](ff.to_face(src), 1.0))
    shift = np.linalg.norm(moved[:, :2] - src[:, :2], axis=1)  # source pixels, IOD 100 px
    own = np.zeros(len(src), dtype=bool)
    own[region_indices(DEFORMATIONS[au].region)] = True
    assert shift[~own].max() < 1.0
    assert shift[own].max() > 3.0  # a visible change: at least 3 % of the IOD
    # the regions mean what FACS says: brows above the eye line, eyes and cheeks lateral to the
    # nose between the brows and the nose tip, mouth AUs below the nose tip
    u, v = template_face()[:, 0], template_face()[:, 1]
    hit = shift > 0.5
    region = DEFORMATIONS[au].region
    if region == "brows":
        assert v[hit].max() < 0.05
    elif region == "eyes":
        assert v[hit].min() > -0.2 and v[hit].max() < 0.65 and np.abs(u[hit]).min() > 0.1
    else:
        assert v[hit].min() > 0.6
    assert not hit[468:].any()  # irises stay


@pytest.mark.parametrize("au", BP4D_AUS)
def test_intensity_scales_displacement(au):
    ff, src = _posed_frame()
    face = ff.to_face(src)
    d1 = ff.from_face(DEFORMATIONS[au](face, 1.0)) - src
    d05 = ff.from_face(DEFORMATIONS[au](face, 0.5)) - src
    d0 = ff.from_face(DEFORMATIONS[au](face, 0.0)) - src
    np.testing.assert_allclose(d05, 0.5 * d1, atol=1e-9)
    assert np.abs(d0).max() < 1e-9
    # and the displacement is in units of the interocular distance: twice the face, twice the px
    ff2, src2 = _posed_frame(iod_px=200.0)
    d2 = ff2.from_face(DEFORMATIONS[au](ff2.to_face(src2), 1.0)) - src2
    np.testing.assert_allclose(d2[:, :2], 2 * d1[:, :2], atol=1e-6)


def test_deformations_are_left_right_symmetric():
    tpl = load_template()
    face = template_face()
    for au in AUS:
        d = DEFORMATIONS[au](face, 1.0) - face
        mirrored = d[tpl.mirror] * np.array([-1.0, 1.0, 1.0])
        np.testing.assert_allclose(mirrored[:468], d[:468], atol=1e-3)


def test_label_sampler_follows_cooccurrence():
    r = label_rates(n=50_000, seed=1)
    c = r["p_row_given_col"]
    assert c["AU06"]["AU12"] > 0.6 and c["AU02"]["AU01"] > 0.6  # 6 with 12, 2 with 1
    assert c["AU15"]["AU12"] < 0.06  # antagonists rarely together
    assert all(0.1 < m < 0.5 for m in r["marginal"].values())
    y = sample_labels(np.random.default_rng(3), 10)
    assert y.shape == (10, 12) and set(np.unique(y)) <= {0, 1}


# --------------------------------------------------------------------------------------------
# real faces (scikit-image's astronaut ships with the package's dependencies)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astro_source(astronaut) -> SourceFace:
    from pattnet.synth.sources import _source_face

    face = register_image(astronaut)[0]
    return _source_face("astronaut", "bundled:astronaut", 0, astronaut, face, 85.0)


@pytest.mark.parametrize("au", [1, 7, 12, 17])
def test_photo_changes_only_around_the_moved_mesh(astro_source, au):
    img, new_pts, eff = apply_aus(astro_source, {au: 1.0})
    assert eff[au] > 0.5
    diff = np.abs(img.astype(int) - astro_source.rgb.astype(int)).max(axis=2)
    assert diff.max() > 30  # the AU shows
    # pixels may change only in triangles that have a moved vertex (plus a few px of blending)
    moved = np.linalg.norm(new_pts[:, :2] - astro_source.points[:, :2], axis=1) > 1e-6
    tri = load_template().triangles
    allowed = np.zeros(diff.shape, np.uint8)
    for t in tri[moved[tri].any(axis=1)]:
        cv2.fillConvexPoly(allowed, np.round(astro_source.points[t, :2]).astype(np.int32), 1)
    allowed = cv2.dilate(allowed, np.ones((7, 7), np.uint8))
    assert diff[allowed == 0].max() == 0


@pytest.mark.parametrize("au", [4, 12])
def test_relief_shading_changes_only_the_moved_face_and_only_when_asked(astro_source, au):
    from pattnet.synth.relief import Light

    plain, new_pts, _ = apply_aus(astro_source, {au: 1.0})
    light = Light((0.4, -0.5, -float(np.sqrt(1 - 0.41))), 1.0)
    shaded, _, _ = apply_aus(astro_source, {au: 1.0}, light=light)
    off, _, _ = apply_aus(astro_source, {au: 1.0}, light=Light(light.direction, 0.0))
    assert np.array_equal(off, plain)
    diff = np.abs(shaded.astype(int) - plain.astype(int)).max(axis=2)
    assert diff.max() >= 5  # the surface's turn shows
    moved = np.linalg.norm(new_pts - astro_source.points, axis=1) > 1e-3
    tri = load_template().triangles
    allowed = np.zeros(diff.shape, np.uint8)
    for t in tri[moved[tri].any(axis=1)]:
        cv2.fillConvexPoly(allowed, np.round(new_pts[t, :2]).astype(np.int32), 1)
    allowed = cv2.dilate(allowed, np.ones((15, 15), np.uint8))
    assert diff[allowed == 0].max() == 0


@pytest.mark.parametrize("au", BP4D_AUS)
def test_furrows_darken_their_own_area_in_proportion_to_intensity(astro_source, au):
    """Each AU's wrinkles/furrows only darken, only in that AU's part of the face, and twice
    the intensity darkens about twice as much."""
    src = astro_source
    assert DEFORMATIONS[au].furrows
    full = shade_furrows(src.rgb, src.points, {au: 1.0}, src.frame.source_iod, src.visible)
    half = shade_furrows(src.rgb, src.points, {au: 0.5}, src.frame.source_iod, src.visible)
    assert shade_furrows(src.rgb, src.points, {au: 0.0}, src.frame.source_iod) is src.rgb
    d_full = src.rgb.astype(float) - full
    d_half = src.rgb.astype(float) - half
    assert d_full.min() >= 0 and d_full.max() > 20  # darker only, and visibly
    assert d_full.sum() / d_half.sum() == pytest.approx(2.0, rel=0.1)
    # where (image rows, in IOD below the eyes): forehead to eye line for the brow AUs, around
    # the eyes for 6/7, from the nostril wings down for the mouth AUs (the nasolabial furrow of
    # AU10/12 starts beside the nostrils, about half an IOD below the eyes in this photo)
    ys, xs = np.nonzero(d_full.max(axis=2) > 0.5)
    lm = src.points
    eye_y = 0.5 * (lm[468, 1] + lm[473, 1])
    iod = src.frame.source_iod
    v = (ys - eye_y) / iod
    lo, hi = {"brows": (-1.0, 0.05), "eyes": (-0.2, 0.5), "mouth": (0.4, 2.0)}[DEFORMATIONS[au].region]
    assert v.min() >= lo and v.max() <= hi, (v.min(), v.max())


def test_generated_image_reregisters(astro_source):
    im = render(astro_source, {6: 0.9, 12: 0.9, 1: 0.7}, ImageParams(rotation=12, scale=0.9,
                                                                     shift=(0.04, -0.03), gain=0.8,
                                                                     offset=10))
    assert im.rgb.shape == (384, 384, 3) and im.labels[AUS.index(12)] == 1
    faces = register_image(im.rgb)
    assert len(faces) == 1 and faces[0].success and faces[0].confidence > 0.5
    assert abs(faces[0].roll - (astro_source_roll(astro_source) + 12)) < 4
    # MediaPipe finds the deformed face where the renderer put it
    iod = np.linalg.norm(im.landmarks[473] - im.landmarks[468])
    err = np.linalg.norm(faces[0].source_landmarks[:, :2] - im.landmarks, axis=1)
    assert np.median(err) < 0.06 * iod


def astro_source_roll(src: SourceFace) -> float:
    f = register_image(src.rgb)[0]
    return f.roll


# --------------------------------------------------------------------------------------------
# the whole set, the CLI and bad input
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    synthesize(out, None, per_identity=4, seed=7, fps=6, seconds=2.0, bundled_lfw=1, echo=lambda s: None)
    return out


def test_manifest_round_trips_through_adapter(synth_dir):
    from pattnet.datasets import ManifestAdapter

    man = pd.read_csv(synth_dir / "manifest.csv")
    assert len(man) == 12 and sorted(man["subject"].unique()) == ["astronaut", "grace_hopper",
                                                                  "lfw000"]
    ad = ManifestAdapter(synth_dir)
    assert ad.aus == BP4D_AUS
    recs = [r for s in ad.iter_sessions() for r in s.records]
    assert not ad.problems and len(recs) == 12
    by_path = {r.source.name: r for r in recs}
    for row in man.itertuples(index=False):
        r = by_path[row.path.split("/")[-1]]
        assert r.subject == row.subject and r.source.is_file()
        assert r.labels == tuple(int(getattr(row, au_name(a))) for a in BP4D_AUS)
    meta = json.loads((synth_dir / "synth.json").read_text())
    assert meta["seed"] == 7 and meta["images"] == 12 and "AU06" in meta["rates_model"]["marginal"]


def test_schedule_video_matches_its_csv(synth_dir):
    from pattnet.io import iter_frames

    sched = pd.read_csv(synth_dir / "schedule.csv")
    frames = list(iter_frames(synth_dir / "schedule.mp4"))
    assert len(frames) == len(sched) == 12
    assert frames[0].rgb.shape == (384, 384, 3)
    assert sched[[au_name(a) for a in AUS]].to_numpy().sum() > 0
    assert (sched[au_name(AUS[0])].diff().abs().sum()) >= 1  # switches on (and off)


def test_same_seed_same_images(synth_dir, tmp_path):
    out = tmp_path / "again"
    synthesize(out, None, per_identity=2, seed=7, video=False, echo=lambda s: None)
    for name in ("astronaut_0000.png", "grace_hopper_0001.png"):
        assert (out / "images" / name).read_bytes() == (synth_dir / "images" / name).read_bytes()


def test_prepare_reads_the_set(synth_dir, tmp_path):
    prep = pytest.importorskip("pattnet.prepare")
    from pattnet.store import PatchStore

    prep.prepare(synth_dir, tmp_path / "store", "manifest", track=False, progress=False,
                 echo=lambda s: None)
    st = PatchStore(tmp_path / "store")
    man = pd.read_csv(synth_dir / "manifest.csv").sort_values(["subject", "frame"])
    assert st.n == 12 and st.success.all()
    got = st.table.sort_values(["subject", "frame"])[[au_name(a) for a in BP4D_AUS]].to_numpy()
    np.testing.assert_array_equal(got, man[[au_name(a) for a in BP4D_AUS]].to_numpy())


def test_cli_no_face_and_too_few_identities(tmp_path, astronaut, capsys):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 128, np.uint8))
    assert main(["synth", "--faces", str(blank), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no face found" in err and "at least 3 different people" in err
    one = tmp_path / "astro.png"
    cv2.imwrite(str(one), astronaut[:, :, ::-1])
    assert main(["synth", "--faces", str(one), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 identity (astro)" in err[0] and "3 subject-independent folds" in err[0]
    assert not (tmp_path / "b").exists()


def test_video_and_group_photo_identities(faces_dir):
    skipped: list[str] = []
    src = load_sources([faces_dir / "WolfgangLanger_Pexels.mp4", faces_dir / "multi_face.jpg"],
                       frames_per_video=3, skipped=skipped)
    assert len(src["WolfgangLanger_Pexels"]) == 3  # one person, three frames
    assert len({s.frame_index for s in src["WolfgangLanger_Pexels"]}) == 3
    assert sum(k.startswith("multi_face-f") for k in src) == 5  # five people, five identities


def test_deform_mesh_guards_against_folds():
    # a closed eye: the lids cannot be pushed through each other, the AU is scaled down
    face = template_face().copy()
    upper, lower = [159, 158, 160, 386, 385, 387], [145, 153, 144, 374, 380, 373]
    face[upper, 1] = face[lower, 1] - 0.002
    _, eff = deform_mesh(face, {6: 1.0, 7: 1.0})
    assert eff[6] + eff[7] < 2.0


def test_csv_fields_round_trip_for_awkward_source_paths(tmp_path, astronaut):
    """A source path holding a quote, a comma and a backslash reads back unchanged from the
    details CSV (a CSV reader, not a JSON one, reads these files), with the columns unchanged."""
    folder = tmp_path / 'o"neil, mary\\x'
    folder.mkdir()
    photo = folder / 'astro "1", b\\c.png'
    cv2.imwrite(str(photo), astronaut[:, :, ::-1])
    out = tmp_path / "set"
    synthesize(out, [photo], per_identity=2, folds=1, video=False, echo=lambda s: None)
    det = pd.read_csv(out / "synth_labels.csv")
    assert det["source"].tolist() == [str(photo)] * 2
    names = [au_name(a) for a in AUS]
    assert list(det.columns) == (
        ["path", "subject", "frame", *names, "source", "source_frame"]
        + [f"I{a:02d}" for a in AUS] + [f"requested_I{a:02d}" for a in AUS]
        + ["rotation", "scale", "shift_x", "shift_y", "gain", "offset", "exposure", "wb_r",
           "wb_g", "wb_b", "blur", "noise", "jpeg", "jaw_drop", "light_x", "light_y", "light_z",
           "light_strength"])
    man = pd.read_csv(out / "manifest.csv")
    assert list(man.columns) == ["path", "subject", "session", "frame", *names]
    assert det["path"].tolist() == man["path"].tolist() and len(man) == 2
    assert det["subject"].tolist() == man["subject"].tolist() == ["astro_1_b_c"] * 2
