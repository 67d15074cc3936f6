"""Synthetic meshes (pattnet synth --meshes), stores of meshes alone, training against neutral
references and the mouth at rest."""

from __future__ import annotations

import numpy as np
import pytest

from pattnet.errors import StoreError
from pattnet.store import PatchStore, frame_table, merge_stores, write_store
from pattnet.store.reference import subject_references
from pattnet.synth.deformations import DEFORMATIONS
from pattnet.synth.face_frame import template_face
from pattnet.synth.meshes import MESH_AUS, MeshSettings, synthesize_meshes
from pattnet.synth.mouth import close_mouth, mouth_gap


@pytest.fixture(scope="module")
def mesh_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("meshes") / "store"
    synthesize_meshes(out, None, MeshSettings(per_identity=30, bundled_lfw=4, neutral=0.3),
                      echo=lambda s: None)
    return PatchStore(out)


def test_a_mesh_set_is_a_store_of_meshes_alone(mesh_store):
    st = mesh_store
    assert st.kinds == ("mesh",) and st.aus == list(MESH_AUS)
    assert st.n == 30 * len(np.unique(st.subjects)) and np.isfinite(st.mesh(np.arange(st.n))).all()
    y = st.labels
    assert set(np.unique(y)) <= {0, 1}
    col = {a: i for i, a in enumerate(st.aus)}
    assert (y[:, col[25]] >= y[:, col[26]]).all()  # a dropped jaw parts the lips
    assert not (y[:, col[26]] & (y[:, col[23]] | y[:, col[24]])).any()  # never with lips closed
    assert (y.sum(1) == 0).mean() > 0.2  # the neutral samples
    with pytest.raises(StoreError, match="holds mesh only"):
        st.patches([0])
    assert st.meta["synth"]["kind"] == "meshes"


def test_the_same_settings_give_the_same_meshes(mesh_store, tmp_path):
    again = synthesize_meshes(tmp_path / "again", None,
                              MeshSettings(per_identity=30, bundled_lfw=4, neutral=0.3),
                              echo=lambda s: None)
    st = PatchStore(tmp_path / "again")
    assert again["identities"] == list(dict.fromkeys(mesh_store.subjects))
    np.testing.assert_array_equal(st.mesh(np.arange(st.n)), mesh_store.mesh(np.arange(st.n)))
    np.testing.assert_array_equal(st.labels, mesh_store.labels)


def test_mesh_settings_and_folders_are_checked(tmp_path):
    from pattnet.errors import PattnetError

    with pytest.raises(PattnetError, match="--neutral must lie in"):
        synthesize_meshes(tmp_path / "x", None, MeshSettings(neutral=1.5))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "thing.txt").write_text("x")
    with pytest.raises(PattnetError, match="not an empty folder"):
        synthesize_meshes(tmp_path / "full", None, MeshSettings(per_identity=1, bundled_lfw=3))


def test_stores_of_other_arrays_do_not_mix(mesh_store, tmp_path):
    from helpers import toy_store

    full = toy_store(tmp_path / "full", n=12, aus=MESH_AUS)
    with pytest.raises(StoreError, match="do not merge"):
        merge_stores([mesh_store.path, full.path], tmp_path / "merged")
    n = 3
    table = frame_table(["a"] * n, ["s"] * n, range(n), np.zeros((n, 2), np.int8), [1, 2])
    st = write_store(tmp_path / "m", table, None, None, [1, 2],
                     mesh=np.zeros((n, 478, 3), np.float32))
    assert st.kinds == ("mesh",) and st.mesh([2]).shape == (1, 478, 3)


def test_neutral_references_average_the_frames_with_no_au(mesh_store):
    st = mesh_store
    s = st.subjects[0]
    mine = np.flatnonzero(st.subjects == s)
    none_on = mine[(st.labels[mine] == 1).sum(1) == 0]
    ref = subject_references(st, "mesh", [s], reference="neutral")[s]
    np.testing.assert_allclose(ref, st.mesh(none_on).mean(0), atol=1e-4)
    mean = subject_references(st, "mesh", [s])[s]
    assert not np.allclose(ref, mean, atol=1e-3)


def test_closing_the_mouth_moves_only_the_lower_lip_and_below():
    face = template_face()
    opened = DEFORMATIONS[25](face, 1.0)
    assert mouth_gap(opened) > mouth_gap(face) + 0.05
    shut = close_mouth(opened)
    assert mouth_gap(shut) == pytest.approx(0.01, abs=0.02)
    upper = face[:, 1] < face[13, 1] - 0.01
    np.testing.assert_allclose(shut[upper], opened[upper])  # the upper lip and above stay
    assert np.array_equal(close_mouth(shut), shut) or mouth_gap(close_mouth(shut)) <= 0.02


def test_training_against_neutral_references(tmp_path, mesh_store):
    """reference=neutral trains a model of the mesh on the mesh store; the run's references are
    the labelled neutral frames, and the held-out people are scored without their labels."""
    from pattnet.checkpoint import export_run, load_checkpoint
    from pattnet.evaluate import evaluate_run
    from pattnet.runs import RunDir
    from pattnet.store.reference import load_references
    from pattnet.train import TrainConfig, train

    cfg = TrainConfig(model="pattnet-geometry", epochs=2, batch_size=32, optimizer="adam",
                      lr=1e-3, normalize="subject", reference="neutral", num_workers=0,
                      val_fraction=0.0, positive_weight="none")
    run = train(mesh_store.path, tmp_path / "run", cfg, folds=[1], progress=False)
    refs = load_references(RunDir(run).references_of("mesh"))
    s = mesh_store.subjects[0]
    np.testing.assert_allclose(refs[s], subject_references(mesh_store, "mesh", [s],
                                                           reference="neutral")[s], atol=1e-4)
    auc = evaluate_run(run, write=False).pooled["auc"]
    assert auc["AU12"] > 0.9 and auc["Avg"] > 0.6, auc  # 2 epochs on 6 people
    ck = load_checkpoint(export_run(run, tmp_path / "m.pt").path)
    assert ck.person_reference == "neutral" and ck.aus == list(MESH_AUS)
    with pytest.raises(StoreError, match="holds mesh only"):
        train(mesh_store.path, tmp_path / "run2", TrainConfig(model="pattnet-multilabel"),
              folds=[1], progress=False)
