import math
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml

from helpers import toy_store
from pattnet.cli import main
from pattnet.evaluate import evaluate_run
from pattnet.train import EpochBatches, TrainConfig, pos_weights, train, weighted_bce

FAST = dict(epochs=1, batch_size=16, num_workers=0)


def test_weighted_bce_equals_hand_computation():
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.int8)
    w = torch.tensor([2.5, 0.8])
    got = weighted_bce(logits, labels, w)
    want = 0.0
    for j in range(2):
        terms = []
        for i in range(3):
            p = 1 / (1 + math.exp(-logits[i, j].item()))
            y = labels[i, j].item()
            terms.append(-(w[j].item() * y * math.log(p) + (1 - y) * math.log(1 - p)))
        want += sum(terms) / 3
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_masked_labels_do_not_contribute():
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1]], requires_grad=True)
    labels = torch.tensor([[1, -1], [-1, 1], [0, -1]], dtype=torch.int8)
    w = torch.tensor([3.0, 1.5])
    loss = weighted_bce(logits, labels, w)
    loss.backward()
    assert (logits.grad[labels == -1] == 0).all()
    # same loss as computing only on the coded entries
    kept = weighted_bce(torch.tensor([[0.3], [-0.7]]), torch.tensor([[1], [0]], dtype=torch.int8),
                        w[:1]) + weighted_bce(torch.tensor([[0.5]]), torch.tensor([[1]], dtype=torch.int8),
                                              w[1:])
    assert loss.item() == pytest.approx(kept.item(), rel=1e-6)
    # an AU with no coded frame in the batch gives zero, never NaN
    all_masked = weighted_bce(logits, torch.full((3, 2), -1, dtype=torch.int8), w)
    assert all_masked.item() == 0.0


def test_pos_weights_and_undefined_au():
    labels = np.array([[1, 0, 1], [0, 0, 1], [0, 0, -1], [0, -1, 1]])
    with pytest.warns(UserWarning, match="AU02 has 0 positive"):
        w = pos_weights(labels, [1, 2, 4], no_positive=1.0)
    assert w[0] == 3.0 and w[1] == 1.0 and w[2] == 1.0  # AU04: no negatives -> undefined too
    assert np.isfinite(w).all()


def test_epoch_batches_deterministic_and_sharded():
    idx = np.arange(103)
    a = EpochBatches(idx, 10, seed=3)
    a.set_epoch(2)
    b = EpochBatches(idx, 10, seed=3)
    b.set_epoch(2)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    b.set_epoch(3)
    assert [x.tolist() for x in a] != [x.tolist() for x in b]
    assert sorted(np.concatenate(list(a)).tolist()) == idx.tolist()
    r0, r1 = (EpochBatches(idx, 10, seed=3, rank=r, world=2) for r in (0, 1))
    both = np.concatenate([*r0, *r1])
    assert len(both) == len(set(both.tolist())) == 103
    assert len(r0) == len(r1)


@pytest.mark.slow
def test_train_and_evaluate_end_to_end_cli(tmp_path, capsys):
    toy_store(tmp_path / "store", n=90, aus=[1, 12], signal_patch={12: 8})
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**FAST, "lr": 0.005}))
    rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--model",
               "pattnet-multilabel", "--config", str(cfg), "--no-progress"])
    assert rc == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["lr"] == 0.005 and saved["model"] == "pattnet-multilabel"
    for f in (1, 2, 3):
        d = tmp_path / "run" / f"fold{f}"
        assert (d / "checkpoints" / "epoch-01.pt").is_file()
        pred = np.load(d / "predictions.npz")
        assert pred["prob"].shape[1] == 2 and pred["attention"].shape[1:] == (2, 9)
        assert ((pred["prob"] >= 0) & (pred["prob"] <= 1)).all()
    # test folds are the subject folds: every frame predicted exactly once
    idx = np.concatenate([np.load(tmp_path / "run" / f"fold{f}" / "predictions.npz")["index"]
                          for f in (1, 2, 3)])
    assert sorted(idx.tolist()) == list(range(90))
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "eval" / "metrics_pooled.csv").is_file()
    # an existing run is not overwritten without --resume
    rc = main(["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2 and "--resume" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_exactly(tmp_path):
    toy_store(tmp_path / "store", n=72, aus=[4, 12], signal_patch={12: 8})
    cfg = TrainConfig(model="pattnet", epochs=2, batch_size=12, num_workers=0)
    train(tmp_path / "store", tmp_path / "full", cfg, folds=[1], progress=False)
    train(tmp_path / "store", tmp_path / "cut", cfg, folds=[1], progress=False, stop_after=1)
    assert not (tmp_path / "cut" / "fold1" / "predictions.npz").exists()
    assert not (tmp_path / "cut" / "fold1" / "checkpoints" / "epoch-02.pt").exists()
    train(tmp_path / "store", tmp_path / "cut", None, folds=[1], progress=False, resume=True)
    a = torch.load(tmp_path / "full" / "fold1" / "checkpoints" / "epoch-02.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "fold1" / "checkpoints" / "epoch-02.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    pa = np.load(tmp_path / "full" / "fold1" / "predictions.npz")
    pb = np.load(tmp_path / "cut" / "fold1" / "predictions.npz")
    assert np.array_equal(pa["prob"], pb["prob"])


@pytest.mark.slow
def test_learns_a_visual_signal_and_attends_to_its_patch(tmp_path):
    # AU12 is a bright square in P9 only; everything else is noise. lr 0.01 instead of the
    # paper's 1e-3 so that 120 SGD steps move the attention context (the paper runs ~20k steps).
    toy_store(tmp_path / "store", n=300, aus=[12], signal_patch={12: 8}, seed=1)
    cfg = TrainConfig(model="pattnet", epochs=4, batch_size=10, lr=0.01, num_workers=0)
    train(tmp_path / "store", tmp_path / "run", cfg, folds=[1], progress=False)
    res = evaluate_run(tmp_path / "run")
    f1 = res.pooled.loc["AU12", "f1"]
    base = res.pooled.loc["AU12", "base_rate"]
    all_positive_f1 = 2 * base / (1 + base)
    assert f1 > all_positive_f1 + 0.2, (f1, all_positive_f1)
    pred = np.load(tmp_path / "run" / "fold1" / "predictions.npz")
    att = pred["attention"][:, 0].astype(float)
    present = pred["label"][:, 0] == 1
    on, off = att[present].mean(0), att[~present].mean(0)
    assert int(np.argmax(on)) == 8, on  # where the AU shows, P9 gets the most attention
    assert int(np.argmax(on - off)) == 8, on - off


def test_au_without_positives_warns_and_stays_finite(tmp_path):
    st = toy_store(tmp_path / "store", n=60, aus=[1, 2])
    frames = tmp_path / "store" / "frames.csv"
    import pandas as pd

    t = pd.read_csv(frames)
    t["AU02"] = 0
    t.to_csv(frames, index=False)
    del st
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        train(tmp_path / "store", tmp_path / "run", TrainConfig(model="pattnet-multilabel", **FAST),
              folds=[1], progress=False)
    assert any("AU02 has 0 positive" in str(w.message) for w in rec)
    hist = (tmp_path / "run" / "fold1" / "history.csv").read_text().splitlines()
    loss = float(hist[1].split(",")[1])
    assert math.isfinite(loss)


@pytest.mark.parametrize("problem", ["missing", "truncated", "model", "config"])
def test_bad_input_is_one_line(tmp_path, capsys, problem):
    store = tmp_path / "store"
    args = ["train", str(store), "--out", str(tmp_path / "run"), "--no-progress"]
    if problem != "missing":
        st = toy_store(store, n=12)
    if problem == "truncated":
        f = st.chunk_file("chunk-000000", "holistic")
        f.write_bytes(f.read_bytes()[:-10])
    if problem == "model":
        args += ["--model", "resnet50"]
    if problem == "config":
        args += ["--set", "learning_rate=0.1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pattnet: error:"), err
    assert "Traceback" not in err[0]


def test_unknown_normalize_is_refused_before_the_run_folder_is_made(tmp_path):
    """TrainConfig built in Python skips the CLI's type check; train() refuses it before writing
    anything, so the corrected call can use the same --out."""
    from pattnet.errors import PattnetError

    toy_store(tmp_path / "store", n=12)
    with pytest.raises(PattnetError, match="config key 'normalize'"):
        train(tmp_path / "store", tmp_path / "run", TrainConfig(normalize="person", **FAST),
              folds=[1], progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(tmp_path):
    toy_store(tmp_path / "store", n=48, aus=[12], signal_patch={12: 8})
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun ships with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "pattnet.cli", "train",
           str(tmp_path / "store"), "--out", str(tmp_path / "run"), "--fold", "1",
           "--model", "pattnet", "--no-progress", "--set", "epochs=1", "batch_size=8",
           "num_workers=0"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    hist = (tmp_path / "run" / "fold1" / "history.csv").read_text()
    assert "world" in hist.splitlines()[0] and hist.splitlines()[1].split(",")[-1] == "2"
    assert (tmp_path / "run" / "fold1" / "predictions.npz").is_file()


@pytest.mark.parametrize("bf16", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["fp32", "bf16-fused"])
def test_networks_side_by_side_get_the_gradients_they_get_alone(bf16, monkeypatch):
    """Per-AU networks trained on two threads: each gets exactly its one-after-another gradient
    (in bf16 through the fused ReLU/BN/max-pool kernels, which run on both threads at once)."""
    import contextlib

    from pattnet.models import create_model, fused
    from pattnet.models.inputs import to_model_input
    from pattnet.train import backward_networks, intra_op_threads, network_pool, networks, split_networks

    calls = []
    monkeypatch.setattr(fused, "relu_bn_pool",
                        lambda c, bn, f=fused.relu_bn_pool: calls.append(1) or f(c, bn))
    rng = np.random.default_rng(0)
    dtype = torch.bfloat16 if bf16 else None
    x = to_model_input(rng.integers(0, 255, (6, 9, 100, 100, 3), dtype=np.uint8), "patches",
                       dtype=dtype)

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    y = torch.from_numpy(rng.integers(0, 2, (6, 3)).astype(np.float32))
    pw = torch.tensor([1.0, 2.0, 0.5])
    torch.manual_seed(0)
    model = create_model("pattnet", aus=[1, 2, 4]).to(memory_format=torch.channels_last).train()
    nets = networks(model)
    grads, losses = [], []
    with intra_op_threads(1):  # the same per-op arithmetic on both paths
        for threads in (1, 2):
            model.zero_grad(set_to_none=True)
            with network_pool(threads) as pool:
                losses.append(backward_networks(split_networks(nets, threads), x, y, pw,
                                                autocast, pool))
            grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert bool(calls) == (bf16 and fused.available())
    assert math.isclose(float(losses[0]), float(losses[1]), rel_tol=1e-6)
    for name, g in grads[0].items():
        assert torch.equal(g, grads[1][name]), name


def test_network_threads_rules():
    from pattnet.errors import PattnetError
    from pattnet.train import network_threads, split_networks

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert network_threads(None, 12, cpu) == min(12, torch.get_num_threads())
    assert network_threads(None, 1, cpu) == 1  # multi-label: one network
    assert network_threads(None, 12, gpu) == 1 and network_threads(None, 12, cpu, world=2) == 1
    assert network_threads(3, 2, cpu) == 2
    with pytest.raises(PattnetError, match="network_threads"):
        network_threads(0, 12, cpu)
    groups = split_networks(list(range(5)), 2)
    assert groups == [[0, 2, 4], [1, 3]] and split_networks(list(range(1)), 2) == [[0]]
