"""Checkpoints (pattnet.checkpoint) and ``pattnet export``: one file, weights_only, clear errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from pattnet.checkpoint import (
    CheckpointError,
    checkpoint_dict,
    choose_fold,
    export_run,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from pattnet.cli import main
from pattnet.models import create_model
from pattnet.registration.template import load_template


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 1-epoch multi-label PAttNet trained in-test on a toy store (AUs 1 and 12)."""
    from helpers import toy_store
    from pattnet.train import TrainConfig, train

    d = tmp_path_factory.mktemp("run")
    store = toy_store(d / "store", n=48, aus=(1, 12), signal_patch={1: 0, 12: 7})
    cfg = TrainConfig(model="pattnet-multilabel", epochs=1, batch_size=16, num_workers=0)
    return train(store.path, d / "run", cfg, folds=[1], progress=False)


def _patches(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 9, 100, 100, 3), dtype=np.uint8)


def test_export_run_gives_loadable_weights_only_file(trained_run, tmp_path):
    res = export_run(trained_run, tmp_path / "model.pt")
    assert (res.fold, res.epoch) == (1, 1)
    raw = torch.load(res.path, weights_only=True)  # no pickled code needed to open it
    assert raw["format"] == "pattnet-checkpoint" and raw["aus"] == [1, 12]
    assert raw["model"] == "pattnet-multilabel" and raw["mode"] == "multilabel"
    assert raw["template_version"] == load_template().version
    assert raw["threshold"] == [0.5, 0.5] and (raw["mean"], raw["std"]) == (0.5, 0.5)
    assert raw["source"]["fold"] == 1 and raw["pattnet_version"]
    # same weights as the training checkpoint of the selected epoch
    train_ck = torch.load(trained_run / "fold1" / "checkpoints" / "epoch-01.pt", weights_only=True)
    for k, v in train_ck["model"].items():
        assert torch.equal(raw["state_dict"][k], v.cpu()), k
    ck = load_checkpoint(res.path)
    assert ck.aus == [1, 12] and not ck.model.training


def test_export_cli_and_fold_choice(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "fold 1" in out and "wrote" in out
    assert choose_fold(trained_run)[0] == 1
    # the best validation score wins; ties go to the lower fold; loss is minimised
    fake = tmp_path / "fake"
    for k, v in ((1, 0.4), (2, 0.6), (3, 0.6)):
        (fake / f"fold{k}").mkdir(parents=True)
        (fake / f"fold{k}" / "selected.json").write_text(json.dumps({"epoch": 1, "value": v}))
        (fake / f"fold{k}" / "predictions.npz").write_bytes(b"")  # finished: both files
    assert choose_fold(fake, "f1")[0] == 2
    assert choose_fold(fake, "loss")[0] == 1
    rc = main(["export", str(trained_run), "--out", str(tmp_path / "x.pt"), "--fold", "3"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("pattnet: error:") and "no fold 3" in err and "Traceback" not in err


def test_saved_and_reloaded_probabilities_identical(tmp_path):
    torch.manual_seed(1)
    for name in ("pattnet-multilabel", "pattnet", "holistic"):
        model = create_model(name, aus=(1, 2, 4)).eval()
        p = save_checkpoint(tmp_path / f"{name}.pt", model, threshold=[0.3, 0.5, 0.7])
        ck = load_checkpoint(p)
        assert ck.threshold == [0.3, 0.5, 0.7]
        from pattnet.models.inputs import to_model_input

        kind = model.input_kind
        x8 = _patches() if kind == "patches" else _patches()[:, 0].repeat(2, 1).repeat(2, 2)
        with torch.inference_mode():
            a = model(to_model_input(x8, kind)).logits
            b = ck.model(to_model_input(x8, kind)).logits
        assert torch.equal(a, b), name


def test_bad_checkpoints_give_one_clear_error(tmp_path):
    model = create_model("pattnet-multilabel", aus=(1, 12))
    good = save_checkpoint(tmp_path / "good.pt", model)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"damaged model file \(the archive is incomplete"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": "pattnet-checkpoint", "x": Evil()}, fh, protocol=2)
    torch.save({"format": "pattnet-checkpoint", "x": Evil()}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(CheckpointError, match="refused: the file contains pickled Python"):
            load_checkpoint(tmp_path / name)
    # an AU list that does not match the weights (2 heads in the weights, 3 AUs claimed)
    d = checkpoint_dict(model)
    d["aus"] = [1, 2, 12]
    d["threshold"] = [0.5] * 3
    torch.save(d, tmp_path / "aus.pt")
    with pytest.raises(CheckpointError, match="weights do not match .* 3 AUs"):
        load_checkpoint(tmp_path / "aus.pt")
    # per-AU model: one network too few
    d = checkpoint_dict(create_model("pattnet", aus=(1, 2)))
    d["aus"] = [1, 2, 4]
    d["threshold"] = [0.5] * 3
    torch.save(d, tmp_path / "perau.pt")
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "perau.pt")
    # another registration template
    d = checkpoint_dict(model, template_version="other-template")
    torch.save(d, tmp_path / "tpl.pt")
    with pytest.raises(CheckpointError, match="template"):
        load_checkpoint(tmp_path / "tpl.pt")
    assert load_checkpoint(tmp_path / "tpl.pt", check_template=False).aus == [1, 12]
    # a newer format, and a training checkpoint given by mistake
    d = checkpoint_dict(model)
    d["format_version"] = 99
    torch.save(d, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        read_checkpoint(tmp_path / "new.pt")
    torch.save({"epoch": 1, "model": model.state_dict(), "optimizer": {}}, tmp_path / "train.pt")
    with pytest.raises(CheckpointError, match="pattnet export"):
        read_checkpoint(tmp_path / "train.pt")


def test_fp16_export_halves_the_file_and_keeps_the_probabilities(trained_run, tmp_path):
    from pattnet.models.inputs import to_model_input

    assert main(["export", str(trained_run), "--out", str(tmp_path / "full.pt")]) == 0
    assert main(["export", str(trained_run), "--out", str(tmp_path / "half.pt"), "--fp16"]) == 0
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    a, b = load_checkpoint(full), load_checkpoint(half)
    assert all(v.dtype == torch.float32 for v in b.model.state_dict().values() if v.is_floating_point())
    x = to_model_input(_patches(), a.input_kind)
    with torch.inference_mode():
        pa, pb = torch.sigmoid(a.model(x).logits), torch.sigmoid(b.model(x).logits)
    assert torch.allclose(pa, pb, atol=5e-3)
