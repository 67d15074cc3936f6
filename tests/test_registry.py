"""Every registered model, in every mode: forward, checkpoint round trip and detection.

Parametrised over ``list_models()`` so that a model added to the registry is covered without
writing a test for it (timm's way).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pattnet.checkpoint import load_checkpoint, save_checkpoint
from pattnet.constants import HOLISTIC_SHAPE, MESH_SHAPE, N_PATCHES, PATCH_SHAPE
from pattnet.models import create_model, list_models
from pattnet.registration import load_template

AUS = [1, 12]
MODES = ("per-au", "multilabel")
CASES = [(name, mode) for name in list_models() for mode in MODES]


def _input(model, n: int = 2) -> torch.Tensor | dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    p, h = PATCH_SHAPE, HOLISTIC_SHAPE
    shapes = {"patches": (n, p[0], p[3], p[1], p[2]), "holistic": (n, h[2], h[0], h[1]),
              "mesh": (n, *MESH_SHAPE)}
    x = {k: torch.rand(shapes[k], generator=g) for k in model.input_kinds}
    return x[model.input_kind] if len(x) == 1 else x


def _save(path, model, threshold):
    """A model file; a model of the mesh carries its population mean mesh (here the template)."""
    prior = load_template().points if "mesh" in model.input_kinds else None
    return save_checkpoint(path, model, threshold=threshold, mesh_reference=prior)


def _model(name: str, mode: str):
    torch.manual_seed(1)
    return create_model(name, aus=AUS, mode=mode)


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_forward_and_backward(name, mode):
    model = _model(name, mode)
    out = model(_input(model))
    assert out.logits.shape == (2, len(AUS))
    out.logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    if out.attention is not None:
        assert out.attention.shape == (2, len(AUS), N_PATCHES)
    assert (out.attention is None) == (name in ("single-patch", "holistic", "pattnet-geometry"))


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_checkpoint_round_trip_gives_identical_probabilities(name, mode, tmp_path):
    model = _model(name, mode).eval()
    path = _save(tmp_path / "m.pt", model, threshold=[0.3, 0.6])
    ck = load_checkpoint(path, channels_last=False)
    assert ck.model.name == name and ck.aus == AUS and ck.threshold == [0.3, 0.6]
    assert set(ck.model.state_dict()) == set(model.state_dict())
    x = _input(model)
    with torch.no_grad():
        assert torch.equal(model(x).logits, ck.model(x).logits)


@pytest.fixture(scope="module")
def face_photo(tmp_path_factory, astronaut):
    import cv2

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), astronaut[:, :, ::-1])
    return path


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_detect_with_every_model(name, mode, tmp_path, face_photo):
    from pattnet.detect import Detector, columns

    path = _save(tmp_path / "m.pt", _model(name, mode).eval(), threshold=0.5)
    with Detector(path) as det:
        df = det.detect(face_photo)
    assert list(df.columns) == columns(AUS)
    assert len(df) == 1 and df["success"].iloc[0] == 1
    probs = df[[f"AU{a:02d}_p" for a in AUS]].to_numpy(dtype=float)
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    occurs = df[[f"AU{a:02d}_c" for a in AUS]].to_numpy()
    np.testing.assert_array_equal(occurs, (probs >= 0.5).astype(occurs.dtype))


def test_a_model_added_to_the_registry_appears_everywhere(tmp_path, capsys):
    """The registry is the one home of a model's facts: a new entry shows in `pattnet models`,
    is accepted by `pattnet train`, takes its place in the tables' order and in the attention
    figure's list, with no other edit."""
    from pattnet.cli import main
    from pattnet.evaluate.run import RunInfo, model_order_key
    from pattnet.models import (
        _REGISTRY,
        attention_models,
        build,
        model_facts,
        register_model,
        table_rank,
    )
    from pattnet.models.networks import ModelConfig
    from pattnet.report.tables import _table1_key, paper_row_for

    name = "dummy-holistic"

    @register_model(name, "a dummy: the holistic CNN under another name", table3=1, table1=0,
                    paper="holistic", attention=True, grid=9)
    def _dummy(aus, mode="per-au", **kw):
        return build(name, list(aus), ModelConfig(**kw), mode, "holistic")

    try:
        assert name in list_models() and model_facts(name).paper == "holistic"
        assert main(["models"]) == 0
        assert f"{name} " in capsys.readouterr().out
        assert name in attention_models()
        run = RunInfo(path=tmp_path, model=name, aus=(1,), folds=(1,), dataset=None, threshold=0.5)
        assert model_order_key(run) == (1, 0) and _table1_key(run) == (0, 0)
        assert paper_row_for(name, "f1") is paper_row_for("holistic", "f1")
        assert table_rank("not-registered") > table_rank(name)
        from pattnet.reproduce.grid import _grid

        assert _grid()[-1].name == name  # the paper's grid, in the registry's order
        from helpers import toy_store

        toy_store(tmp_path / "store", n=24, aus=(1,))
        rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--model",
                   name, "--fold", "1", "--epochs", "1", "--set", "batch_size=8",
                   "num_workers=0", "--no-progress"])
        assert rc == 0 and (tmp_path / "run" / "fold1" / "predictions.npz").is_file()
    finally:
        del _REGISTRY[name]
    assert name not in list_models()
