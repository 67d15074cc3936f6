"""The grouped computation of many encoders (pattnet.models.batched) is the same model: the
same outputs, losses and per-network parameter gradients as the networks run one by one, in
float64 to 1e-10, for every attention kind, both batch-norm orders and every per-AU model; the
running statistics move the same; checkpoints do not care which path wrote them."""

from __future__ import annotations

import copy

import pytest
import torch

from pattnet.models import create_model
from pattnet.models.batched import set_batched
from pattnet.train.loss import weighted_bce

AUS = [1, 12]
TOL = 1e-10


def _inputs(model, n: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if model.input_kind == "holistic":
        return torch.rand((n, 3, 200, 200), generator=g, dtype=torch.float64) * 2 - 1
    return torch.rand((n, 9, 3, 100, 100), generator=g, dtype=torch.float64) * 2 - 1


def _pair(name: str, mode: str, **kw):
    torch.manual_seed(0)
    one = create_model(name, aus=AUS, mode=mode, **kw).double().train()
    grouped = copy.deepcopy(one)
    set_batched(grouped, True)
    return one, grouped


def _step(model, x, y, pw):
    model.zero_grad(set_to_none=True)
    out = model(x)
    loss = weighted_bce(out.logits, y, pw)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    return out, loss, grads


CASES = [("pattnet", "per-au", {}), ("pattnet-softmax", "per-au", {}),
         ("pattnet", "per-au", {"order": "bn-relu"}), ("pattnet", "per-au", {"attention_bias": False}),
         ("pattnet-multilabel", "multilabel", {}), ("pattnet-multilabel", "multilabel",
                                                    {"order": "bn-relu"}),
         ("single-patch", "per-au", {"patch": 6}), ("holistic", "per-au", {})]


@pytest.mark.parametrize(("name", "mode", "kw"), CASES,
                         ids=[f"{n}-{m}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}"
                              for n, m, kw in CASES])
def test_grouped_equals_one_by_one_in_float64(name, mode, kw):
    one, grouped = _pair(name, mode, **kw)
    x = _inputs(one)
    y = torch.tensor([[1, -1], [0, 1], [1, 0]], dtype=torch.float64)
    pw = torch.tensor([1.5, 0.7], dtype=torch.float64)
    o1, l1, g1 = _step(one, x, y, pw)
    o2, l2, g2 = _step(grouped, x, y, pw)
    assert torch.allclose(o1.logits, o2.logits, rtol=0, atol=TOL)
    if o1.attention is not None:
        assert torch.allclose(o1.attention, o2.attention, rtol=0, atol=TOL)
    assert abs(float(l1) - float(l2)) < TOL
    assert g1.keys() == g2.keys()
    for k in g1:
        assert torch.allclose(g1[k], g2[k], rtol=1e-8, atol=TOL), k
    for (k, a), (_, b) in zip(one.state_dict().items(), grouped.state_dict().items(), strict=True):
        assert torch.allclose(a.double(), b.double(), rtol=0, atol=TOL), k  # running statistics
    one.eval()  # the running statistics the training forward moved, in use
    grouped.eval()
    with torch.no_grad():
        assert torch.allclose(one(x).logits, grouped(x).logits, rtol=0, atol=TOL)


def test_checkpoints_do_not_depend_on_the_path(tmp_path):
    from pattnet.checkpoint import load_checkpoint, save_checkpoint

    one, grouped = _pair("pattnet", "per-au")
    x = _inputs(one)
    grouped(x)  # a training forward moves the running statistics
    path = save_checkpoint(tmp_path / "m.pt", grouped.float().eval())
    ck = load_checkpoint(path, channels_last=False)  # the module-by-module model of today
    assert not ck.model.net.batched
    assert set(ck.model.state_dict()) == set(one.state_dict())
    with torch.no_grad():
        a = ck.model(x.float()).logits
        set_batched(ck.model, True)
        b = ck.model(x.float()).logits
    assert torch.allclose(a, b, atol=1e-5)


def _ddp_steps(rank: int, world: int, port: int, out: str) -> None:
    """The trainer's step (backward_networks) under DDP with gloo, in float64: 3 SGD steps."""
    import os

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from pattnet.models.batched import sync_batch_stats
    from pattnet.train import backward_networks, networks

    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        sync_batch_stats(True)
    torch.manual_seed(0)
    model = create_model("pattnet", aus=AUS).double().train()
    set_batched(model, True)
    net = DistributedDataParallel(model.net) if world > 1 else model.net
    parts = [[(net, cols)] for _, cols in networks(model)]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        x = torch.rand(4, 9, 3, 100, 100, generator=g, dtype=torch.float64)
        y = (torch.rand(4, 2, generator=g) > 0.5).double()
        opt.zero_grad()
        backward_networks(parts, x[rank::world], y[rank::world],
                          torch.tensor([1.5, 0.7], dtype=torch.float64), _no_autocast)
        opt.step()
    if rank == 0:
        torch.save(model.state_dict(), out)
    if world > 1:
        sync_batch_stats(False)
        dist.destroy_process_group()


def _no_autocast():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.slow
def test_ddp_with_grouped_networks_trains_as_one_process_with_the_whole_batch(tmp_path):
    """2 gloo processes with 2 samples each and 1 process with all 4, the grouped path, the
    trainer's step: the same weights after 2 SGD steps (float64), because batch-norm statistics
    are those of the global batch and the loss is a mean over equal halves."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_steps, args=(2, port, str(tmp_path / "ddp.pt")), nprocs=2)
    _ddp_steps(0, 1, port, str(tmp_path / "one.pt"))
    a, b = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "one.pt")
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=1e-10), k
    first = "net.nets.0.encoders.0.features.0.weight"
    torch.manual_seed(0)
    assert not torch.allclose(a[first], create_model("pattnet", aus=AUS).double().state_dict()[
        first])  # the weights moved


@pytest.mark.slow
def test_ddp_training_run_with_grouped_networks(tmp_path):
    """The trainer under torchrun with the grouped path: it runs, and lands where one process
    with the whole batch does, within float32's reach (the conv biases' gradients are sums of
    ~10^5 terms that cancel)."""
    import os
    import shutil
    import subprocess
    import sys

    from helpers import toy_store
    from pattnet.train import TrainConfig, train

    toy_store(tmp_path / "store", n=48, aus=[1, 12], signal_patch={12: 8})
    sets = ["epochs=1", "batch_size=16", "num_workers=0", "precision=fp32", "batched=true",
            "val_fraction=0", "channels_last=false"]
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "pattnet.cli",
                          "train", str(tmp_path / "store"), "--out", str(tmp_path / "ddp"),
                          "--fold", "1", "--model", "pattnet", "--no-progress", "--set", *sets],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = TrainConfig(model="pattnet", epochs=1, batch_size=16, num_workers=0, precision="fp32",
                      batched=True, val_fraction=0.0, channels_last=False)
    train(tmp_path / "store", tmp_path / "one", cfg, folds=[1], progress=False)
    a = torch.load(tmp_path / "ddp" / "fold1" / "checkpoints" / "epoch-01.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "fold1" / "checkpoints" / "epoch-01.pt", weights_only=True)
    from pattnet.train.build import fold_model

    init = fold_model(cfg, [1, 12], 1, torch.device("cpu")).state_dict()
    moved = 0
    for k, v in a["model"].items():
        if not v.is_floating_point():
            assert torch.equal(v, b["model"][k]), k
            continue
        # the epoch's update, as the two runs made it: the same to a few percent of its size
        # (float32 sums of ~10^5 cancelling terms differ in their last bits by machine and
        # split; the float64 test above shows the computation itself is the same)
        step = (b["model"][k].double() - init[k].double()).norm()
        gap = (v.double() - b["model"][k].double()).norm()
        assert gap <= 0.05 * step + 1e-7, (k, float(gap), float(step))
        moved += bool(step > 0)
    assert moved > 0
