"""The mesh as a model input: the store keeps it, the geometry and fusion models learn from it,
and a fusion model learns an AU that only the mesh carries as well as one only the patches do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import MOUTH_CORNERS, toy_store
from pattnet.evaluate import evaluate_run
from pattnet.models import create_model
from pattnet.models.inputs import interocular_distance, mesh_input, model_inputs
from pattnet.train import TrainConfig, train


def test_mesh_input_is_the_displacement_in_interocular_distances():
    ref = np.zeros((478, 3), np.float32)
    mesh = np.zeros((2, 478, 3), np.float32)
    mesh[0, 61, 1] = -interocular_distance() / 10  # a lip corner up by 0.1 IOD
    mesh[1] = np.nan  # a face without a mesh: no displacement
    d = mesh_input(mesh, ref)
    assert d.shape == (2, 478, 3) and torch.isclose(d[0, 61, 1], torch.tensor(-0.1))
    assert d[0].abs().sum() == pytest.approx(0.1) and (d[1] == 0).all()
    both = model_inputs({"patches": np.zeros((2, 9, 100, 100, 3), np.uint8), "mesh": mesh},
                        ("patches", "mesh"), references={"mesh": ref})
    assert set(both) == {"patches", "mesh"} and both["patches"].shape == (2, 9, 3, 100, 100)
    with pytest.raises(ValueError, match="reference mesh"):
        model_inputs({"mesh": mesh}, ("mesh",))


def test_fusion_gate_mixes_the_branches_per_au():
    torch.manual_seed(0)
    m = create_model("pattnet-fusion", aus=[1, 12]).eval()
    x = {"patches": torch.rand(3, 9, 3, 100, 100), "mesh": torch.randn(3, 478, 3) * 0.05}
    with torch.no_grad():
        m.net.gate[:] = torch.tensor([30.0, -30.0])  # AU1: patches only, AU12: mesh only
        out = m(x)
        p = m.net.patch(x["patches"]).logits
        g = m.net.geometry(x["mesh"]).logits
    assert torch.allclose(out.logits[:, 0], p[:, 0]) and torch.allclose(out.logits[:, 1], g[:, 1])
    assert out.attention.shape == (3, 2, 9)


@pytest.mark.parametrize("model", ["pattnet-geometry",
                                   pytest.param("pattnet-fusion", marks=pytest.mark.slow)])
def test_an_au_only_the_mesh_shows_is_learned(tmp_path, model):
    """AU12 moves the lip corners and changes no pixel; AU1 is a bright square in P1 only."""
    toy_store(tmp_path / "store", n=240, aus=[1, 12], signal_patch={1: 0},
              mesh_signal={12: MOUTH_CORNERS}, seed=2)
    cfg = TrainConfig(model=model, epochs=4, batch_size=10, optimizer="adam", lr=1e-3,
                      num_workers=0, normalize="subject")
    train(tmp_path / "store", tmp_path / "run", cfg, folds=[1], progress=False)
    auc = evaluate_run(tmp_path / "run", write=False).pooled["auc"]
    assert auc["AU12"] > 0.9, auc
    if model == "pattnet-fusion":
        assert auc["AU01"] > 0.9, auc  # the texture-only AU too
        from pattnet.checkpoint import export_run, load_checkpoint

        ck = load_checkpoint(export_run(tmp_path / "run", tmp_path / "m.pt").path)
        share = ck.model.net.gates().numpy()  # share of the patch branch per AU
        assert share[0] > share[1], share  # AU1 leans on the patches, AU12 on the mesh
        assert ck.mesh_reference.shape == (478, 3) and ck.input_kinds == ("patches", "mesh")


def test_prior_share_feeds_some_training_faces_the_population_reference(tmp_path):
    from pattnet.store import PatchStore
    from pattnet.train.batches import StoreBatches

    st: PatchStore = toy_store(tmp_path / "s", n=40, aus=[12])
    own = {s: np.full((478, 3), float(i), np.float32) for i, s in enumerate(sorted(set(st.subjects)))}
    prior = np.full((478, 3), -1.0, np.float32)
    ds = StoreBatches(st, ("mesh",), np.array([0]), {"mesh": own}, {"mesh": prior}, 0.5, seed=3)
    idx = np.arange(40)
    a, b = ds[idx]["ref"]["mesh"], ds[idx]["ref"]["mesh"]
    assert torch.equal(a, b)  # the same rows for the same batch: a resumed run sees the same
    swapped = (a[:, 0, 0] == -1).numpy()
    assert 0.2 < swapped.mean() < 0.8
    kept = [own[s][0, 0] for s in st.subjects[idx[~swapped]]]
    assert np.array_equal(a[~swapped, 0, 0].numpy(), np.array(kept))


@pytest.fixture(scope="module")
def fusion_run(tmp_path_factory):
    """A subject-normalised fusion model trained one epoch on fold 1 of a toy store: its store
    and run folder."""
    tmp = tmp_path_factory.mktemp("fusion")
    st = toy_store(tmp / "store", n=48, aus=(1, 12), signal_patch={1: 0},
                   mesh_signal={12: MOUTH_CORNERS})
    cfg = TrainConfig(model="pattnet-fusion", epochs=1, batch_size=16, num_workers=0,
                      normalize="subject")
    return st, train(st.path, tmp / "run", cfg, folds=[1], progress=False)


def test_fusion_model_on_a_video_calibrates_each_input_kind(tmp_path, faces_dir, fusion_run):
    """A subject-normalised fusion model: the detector keeps a running reference per face for
    the patches and for the mesh; the first frames wait for them."""
    from pattnet.checkpoint import export_run, load_checkpoint
    from pattnet.detect import Detector
    from pattnet.detect.calibration import Calibration

    _, run = fusion_run
    ck = load_checkpoint(export_run(run, tmp_path / "m.pt").path, check_template=False)
    cal = Calibration.for_source(ck, faces_dir / "single_face.mp4", 10, 10.0)
    assert sorted(cal._running) == ["mesh", "patches"]
    with Detector(ck, workers=1, calibration_frames=10) as det:
        df = det.detect(faces_dir / "single_face.mp4", max_frames=20)
    assert len(df) == 20 and df["success"].all()
    assert np.isfinite(df[["AU01_p", "AU12_p"]].to_numpy()).all()


def test_a_fusion_runs_branches_are_runs_of_their_own(tmp_path, fusion_run):
    """One fusion training gives its patch network and its mesh network as runs that evaluate
    and export like any other: the same weights, the branch's own test predictions."""
    from pattnet.checkpoint import export_run, load_checkpoint
    from pattnet.errors import PattnetError
    from pattnet.train import branch_run

    st, run = fusion_run
    fused = load_checkpoint(export_run(run, tmp_path / "fusion.pt").path, check_template=False)
    with np.load(run / "fold1" / "predictions.npz") as z:
        branch_prob, prob = z["branch_prob"], z["prob"]
    assert branch_prob.shape == (len(prob), 2, 2)
    for key, model in (("patches", "pattnet-multilabel"), ("mesh", "pattnet-geometry")):
        b = branch_run(run, tmp_path / key, key)
        res = evaluate_run(b.path, write=False)
        assert np.isfinite(res.pooled.loc["Avg", "auc"])
        assert b.read_info()["model"] == model and b.read_config()["model"] == model
        with np.load(b.fold(1).predictions) as z:
            assert np.array_equal(z["prob"], branch_prob[:, 0 if key == "patches" else 1])
        ck = load_checkpoint(export_run(b.path, tmp_path / f"{key}.pt").path, check_template=False)
        assert ck.model.name == model
        rows = np.arange(4)
        arrays = {"patches": st.patches(rows), "mesh": st.mesh(rows)}
        refs = {"patches": np.repeat(fused.reference[None], 4, 0),
                "mesh": np.repeat(fused.mesh_reference[None], 4, 0)}
        with torch.no_grad():
            whole = fused.model.eval()(model_inputs(arrays, ("patches", "mesh"), references=refs))
            alone = ck.model.eval()(model_inputs(arrays, ck.input_kinds, references=refs))
        want = whole.aux[0 if key == "patches" else 1]
        assert torch.allclose(alone.logits, want, atol=1e-5)
    with pytest.raises(PattnetError, match="has no branch"):
        branch_run(tmp_path / "mesh", tmp_path / "again", "patches")
    with pytest.raises(PattnetError, match="holds a run already"):
        branch_run(run, tmp_path / "patches", "patches")
