"""The person reference and the lower face, on the bundled model: a face like its reference shows
nothing, an open mouth is no lower-face AU, an AU held most of the time still reads as on, and the
references a user can choose behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pattnet.detect import Detector
from pattnet.detect.calibration import Calibration, NeutralEstimate
from pattnet.detect.pipeline import _Item
from pattnet.detect.schema import FaceResult
from pattnet.errors import PattnetError
from pattnet.registration import Registrar
from pattnet.store.reference import least_expressive, neutral_rows
from pattnet.synth.meshes import deform_canonical

LOWER_FACE = (15, 17, 23, 24)


@pytest.fixture(scope="module")
def det():
    with Detector() as d:
        yield d


@pytest.fixture(scope="module")
def fit():
    return Registrar(static_image_mode=True)  # the pose fit only: MediaPipe never starts


def _prob(det, mesh, reference):
    p, _ = det.predict({"mesh": np.asarray(mesh, np.float32)[None]},
                       {"mesh": np.asarray(reference, np.float32)[None]})
    return dict(zip(det.aus, p[0], strict=True))


def test_a_face_identical_to_its_reference_shows_no_au(det, fit):
    """Zero displacement is clearly off: every AU at most 0.2 and below its threshold, for the
    population's face and for faces of other shapes (the prior moved by a smile, a jaw drop)."""
    prior = det.checkpoint.mesh_reference
    faces = [prior] + [deform_canonical(prior, inten, fit)[0]
                       for inten in ({12: 1.0, 6: 1.0}, {26: 1.0}, {4: 1.0, 17: 1.0})]
    for face in faces:
        p = _prob(det, face, face)
        for (au, v), thr in zip(p.items(), det.threshold, strict=True):
            assert v <= 0.2 and v < thr - 0.05, (au, v, thr)


@pytest.mark.parametrize("mouth", [{26: 0.5}, {26: 1.0}, {25: 1.0}, {25: 0.6, 26: 0.6}])
def test_an_open_mouth_alone_turns_no_lower_face_au_on(det, fit, mouth):
    prior = det.checkpoint.mesh_reference
    opened, labels, _ = deform_canonical(prior, mouth, fit)
    p = _prob(det, opened, prior)
    thr = dict(zip(det.aus, det.threshold, strict=True))
    assert all(p[a] < thr[a] for a in LOWER_FACE), {a: round(float(p[a]), 2) for a in LOWER_FACE}
    assert p[25] >= thr[25]  # and the open mouth is what it reads


def _clip(det, fit, au: int, share: float, n: int = 300, seed: int = 0):
    """Meshes of one face with ``au`` on in runs covering about ``share`` of the frames, other
    AUs coming and going, and MediaPipe's landmark jitter."""
    rng = np.random.default_rng(seed)
    on = np.zeros(n, bool)
    t = 0
    while t < n:
        run = int(rng.integers(10, 40))
        on[t:t + run] = rng.random() < share
        t += run
    face = det.checkpoint.mesh_reference
    meshes = []
    for i in range(n):
        inten = {au: float(rng.uniform(0.5, 1.0))} if on[i] else {}
        if rng.random() < 0.2:
            inten[1] = float(rng.uniform(0.4, 1.0))
        if rng.random() < 0.2:
            inten[25] = float(rng.uniform(0.4, 1.0))
        meshes.append(deform_canonical(face, inten, fit, rng, noise=0.004)[0])
    return meshes, on


def _through_calibration(det, meshes, choice):
    """Each mesh as a video frame through the detector's calibration, then scored."""
    cal = Calibration.for_source(det.checkpoint, "clip.mp4", det.calibration_frames,
                                 det.prior_weight, choice, score_prior=det._prior_prob)
    done = []
    for i, m in enumerate(meshes):
        item = _Item(i, i / 25, [FaceResult(0, True, 1.0, 0.0, 0.0, 0.0, (0, 0, 1, 1))],
                     [{"mesh": m}], None)
        done += cal.ready(item)
    done += cal.flush()
    assert [it.index for it in done] == list(range(len(meshes)))
    refs = None if done[0].refs is None else {"mesh": np.stack([it.refs[0]["mesh"] for it in done])}
    return det.predict({"mesh": np.stack(meshes)}, refs)[0]


def test_an_au_on_most_of_the_time_still_reads_as_on(det, fit):
    """AU12 on in about 80 % of a clip: against the default reference (the person's neutral
    face, estimated) its probability separates on from off frames and most on frames read on;
    against the running mean the on frames' level sinks to the reference and most read as off,
    the failure this reference fixes (the mean keeps the order of the frames within one clip,
    so that failure shows in the level, not in the AUC)."""
    meshes, on = _clip(det, fit, 12, 0.8)
    assert 0.7 < on.mean() < 0.9
    j = det.aus.index(12)
    thr = det.threshold[j]
    assert det.checkpoint.person_reference == "neutral"
    p = _through_calibration(det, meshes, "auto")[:, j]
    assert roc_auc_score(on, p) > 0.9
    assert (p[on] >= thr).mean() >= 0.6 and (p[~on] >= thr).mean() <= 0.05
    mean = _through_calibration(det, meshes, "mean")[:, j]
    assert (mean[on] >= thr).mean() <= 0.3
    assert np.median(mean[on]) < np.median(p[on]) - 0.3


def test_the_population_prior_for_a_photo_and_a_fixed_reference(det, fit):
    """``prior`` scores against the population's face; a person's own reference replaces it."""
    prior = det.checkpoint.mesh_reference
    smile, _, _ = deform_canonical(prior, {12: 1.0}, fit)
    cal = Calibration.for_source(det.checkpoint, "photo.jpg", 60, 10.0, "auto")
    item = _Item(0, 0.0, [FaceResult(0, True, 1.0, 0, 0, 0, (0, 0, 1, 1))], [{"mesh": smile}], None)
    assert cal.ready(item) == [item] and item.refs is None  # a photo alone: the prior
    from pattnet.detect import PersonReference

    own = PersonReference({"mesh": smile}, "smile.jpg")
    cal = Calibration.for_source(det.checkpoint, "clip.mp4", 60, 10.0, own)
    assert cal.ready(item)[0].refs[0]["mesh"] is own.arrays["mesh"]


def test_the_neutral_estimate_keeps_the_calmest_frames():
    est = NeutralEstimate({"mesh": np.zeros((2, 2), np.float32)}, prior_weight=0.0, share=0.25,
                          keep=3)
    for i, e in enumerate([0.9, 0.1, 0.8, 0.2, 0.7, 0.05, 0.6, 0.95]):
        est.update(0, {"mesh": np.full((2, 2), float(i), np.float32)}, np.array([e]))
    # 8 frames, share 0.25: the 2 least expressive (frames 5 and 1) make the reference
    np.testing.assert_allclose(est.reference(0)["mesh"], 3.0)
    assert set(least_expressive(np.array([[0.9], [0.1], [0.3], [0.05]]), 0.5)) == {1, 3}
    labels = np.array([[1, 0], [0, 0], [0, -1], [1, 1]])
    assert neutral_rows(labels).tolist() == [False, True, True, False]
    assert neutral_rows(np.array([[1, 0], [1, 1]])).tolist() == [True, False]  # fewest on


def test_reference_choices_are_checked(det, tmp_path):
    with pytest.raises(PattnetError, match="reference must be one of"):
        det.reference = "median"
    det.reference = "auto"
    with pytest.raises(PattnetError, match="no face found"):
        from pattnet.detect.calibration import person_reference

        person_reference([], "mean", "blank.png", det._prior_prob)


def test_a_global_model_refuses_a_person_reference(tmp_path):
    from helpers import toy_store
    from pattnet.checkpoint import export_run
    from pattnet.train import TrainConfig, train

    st = toy_store(tmp_path / "store", n=36, aus=(12,), mesh_signal={12: (61, 291)})
    cfg = TrainConfig(model="pattnet-geometry", epochs=1, batch_size=12, num_workers=0,
                      val_fraction=0.0)
    export_run(train(st.path, tmp_path / "run", cfg, folds=[1], progress=False),
               tmp_path / "m.pt")
    with pytest.raises(PattnetError, match="without person references"):
        Detector(tmp_path / "m.pt", reference="neutral")
