"""Person-specific normalisation: subject references in training, running references in detect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pattnet.models.inputs import to_model_input
from pattnet.store.reference import RunningReference, population_reference, subject_references


def test_subject_references_are_each_subjects_mean(tmp_path):
    from helpers import toy_store

    st = toy_store(tmp_path / "store", n=30, n_subjects=3)
    refs = subject_references(st, "patches", ["S00", "S01", "S02"], block=4)
    for s in ("S00", "S01", "S02"):
        idx = np.flatnonzero(st.subjects == s)
        np.testing.assert_allclose(refs[s], st.patches(idx).astype(np.float64).mean(0), atol=1e-3)
    # a frame cap spreads the frames used over the subject's recording
    capped = subject_references(st, "holistic", ["S00"], max_frames=4)
    idx = np.flatnonzero(st.subjects == "S00")[[0, 3, 6, 9]]
    np.testing.assert_allclose(capped["S00"], st.holistic(idx).astype(np.float64).mean(0), atol=1e-3)
    pop = population_reference(refs, ["S00", "S01"])
    np.testing.assert_allclose(pop, (refs["S00"] + refs["S01"]) / 2, atol=1e-4)


def test_running_reference_starts_at_prior_and_moves_to_the_person():
    prior = np.full((2, 2), 100.0, np.float32)
    r = RunningReference(prior, prior_weight=2.0)
    np.testing.assert_array_equal(r.reference(7), prior)  # a face never seen: the prior
    for _ in range(3):
        r.update(7, np.full((2, 2), 200, np.uint8))
    # (3 * 200 + 2 * 100) / (3 + 2)
    np.testing.assert_allclose(r.reference(7), 160.0)
    np.testing.assert_array_equal(r.reference(8), prior)  # other faces are separate
    assert r.count(7) == 3 and r.count(8) == 0
    with pytest.raises(ValueError):
        r.update(7, np.zeros((3, 3)))


@pytest.mark.parametrize("channels_last", [True, False])
def test_model_input_with_reference_is_the_scaled_difference(channels_last):
    x = np.zeros((2, 9, 100, 100, 3), np.uint8)
    x[0, 3, 5, 7, 1] = 255
    ref = np.full(x.shape, 127.5, np.float32)
    t = to_model_input(x, "patches", channels_last=channels_last, reference=ref)
    assert t[0, 3, 1, 5, 7] == pytest.approx(1.0) and t[1, 0, 0, 0, 0] == pytest.approx(-1.0)
    # a frame equal to its reference is all zeros, whatever the person looks like
    same = to_model_input(x, "patches", channels_last=channels_last, reference=x.astype(np.float32))
    assert torch.count_nonzero(same) == 0
    h = np.full((1, 200, 200, 3), 50, np.uint8)
    th = to_model_input(h, "holistic", reference=np.full(h.shape, 50.0, np.float32))
    assert torch.count_nonzero(th) == 0
    with pytest.raises(ValueError, match="does not match"):
        to_model_input(x, "patches", reference=ref[:1])


def test_subject_normalised_training_export_and_detector(tmp_path):
    """normalize: subject trains, stores RUN/references.npz, exports the population reference,
    and the detector scores with it (a frame equal to the reference scores like any other)."""
    from helpers import toy_store
    from pattnet.checkpoint import export_run, load_checkpoint
    from pattnet.detect import Detector
    from pattnet.runs import RunDir
    from pattnet.store.reference import load_references
    from pattnet.train import TrainConfig, train

    st = toy_store(tmp_path / "store", n=48, aus=(1, 12), signal_patch={1: 0, 12: 7})
    cfg = TrainConfig(model="pattnet-multilabel", epochs=1, batch_size=16, num_workers=0,
                      normalize="subject")
    run = train(st.path, tmp_path / "run", cfg, folds=[1], progress=False)
    refs = load_references(RunDir(run).references)
    assert sorted(refs) == sorted(np.unique(st.subjects))
    res = export_run(run, tmp_path / "model.pt")
    ck = load_checkpoint(res.path)
    assert ck.normalize == "subject" and ck.reference.shape == (9, 100, 100, 3)
    test = set(res_subjects := ck.source["test_subjects"])
    want = np.mean([refs[s] for s in refs if s not in test], axis=0)
    np.testing.assert_allclose(ck.reference, want, atol=1e-3)
    assert res_subjects
    det = Detector(ck, workers=1)
    x = st.patches(np.arange(4))
    p_prior, _ = det.predict(x)  # no reference given: the population mean
    p_same, _ = det.predict(x, np.broadcast_to(ck.reference, x.shape).copy())
    np.testing.assert_allclose(p_prior, p_same, atol=1e-6)
    p_own, _ = det.predict(x, x.astype(np.float32))
    assert not np.allclose(p_own, p_prior)
