"""One patch encoder's bf16 training step on a CPU: PyTorch's ReLU/BN/max-pool vs the fused step.

Times forward + backward of ``PatchEncoder`` at batch 50 (bf16 autocast, channels_last), with
``fused`` off and on, interleaved, on one thread and on all; then the error of each path's
first-layer ReLU -> BN -> pool against float64 from the same bf16 input. Last line:
``ratio: X`` = unfused / fused time per step on all threads.

    python benchmarks/encoder_step.py [--batch 50] [--steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

from pattnet.models import fused  # noqa: E402
from pattnet.models.encoder import PatchEncoder, init_authors, set_fused  # noqa: E402
from pattnet.train import intra_op_threads  # noqa: E402


def step_ms(enc: PatchEncoder, x: torch.Tensor, steps: int) -> dict[bool, float]:
    """Median ms per training step for fused off / on, the two alternating."""
    times: dict[bool, list[float]] = {False: [], True: []}

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            e = enc(x)
        e.float().square().mean().backward()

    for on in (False, True):  # warm-up: oneDNN picks kernels, numba compiles or loads its cache
        set_fused(enc, on)
        step()
    for _ in range(steps):
        for on in (False, True):
            set_fused(enc, on)
            t0 = time.perf_counter()
            step()
            times[on].append((time.perf_counter() - t0) * 1e3)
    return {on: statistics.median(v) for on, v in times.items()}


def errors(batch: int) -> dict[str, dict[str, float]]:
    """Relative error vs float64 of the output, input gradient and BN-weight gradient."""
    torch.manual_seed(0)
    x0 = torch.randn(batch, 32, 96, 96).to(memory_format=torch.channels_last).bfloat16()
    g = torch.randn(batch, 32, 48, 48).bfloat16()
    bn0 = nn.BatchNorm2d(32)
    nn.init.normal_(bn0.weight, 1.0, 0.5)
    out = {}
    for kind in ("float64", "pytorch-bf16", "fused-bf16"):
        bn = nn.BatchNorm2d(32)
        bn.load_state_dict(bn0.state_dict())
        x = x0.clone()
        if kind == "float64":
            bn, x = bn.double(), x.double()
        x.requires_grad_()
        y = (fused.relu_bn_pool(x, bn) if kind == "fused-bf16"
             else nn.functional.max_pool2d(bn(torch.relu(x)), 2))
        y.backward(g.to(y.dtype))
        out[kind] = {"output": y.detach(), "input grad": x.grad, "BN weight grad": bn.weight.grad,
                     "running var": bn.running_var}
    truth = out.pop("float64")
    return {kind: {k: float((v[k].double() - truth[k].double()).norm() / truth[k].double().norm())
                   for k in truth} for kind, v in out.items()}


def gradient_errors(batches: int, batch: int = 10) -> dict[str, tuple[float, float]]:
    """Relative error vs float64 of a whole encoder's parameter gradient: (first batch, mean over
    ``batches``) for fp32, bf16 with PyTorch's layers and bf16 fused."""
    import copy

    torch.manual_seed(0)
    base = PatchEncoder().to(memory_format=torch.channels_last)
    init_authors(base)
    kinds = ("float64", "fp32", "pytorch-bf16", "fused-bf16")
    nets = {k: copy.deepcopy(base).double() if k == "float64" else copy.deepcopy(base) for k in kinds}
    for k, net in nets.items():
        set_fused(net, k == "fused-bf16")
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(60, generator=gen, dtype=torch.float64)
    sums: dict[str, torch.Tensor] = {}
    first: dict[str, torch.Tensor] = {}
    for _ in range(batches):
        x = ((torch.rand(batch, 3, 100, 100, generator=gen) - 0.5) * 0.6).to(
            memory_format=torch.channels_last)
        for k, net in nets.items():
            net.zero_grad()
            bf16 = k.endswith("bf16")
            xk = x.double() if k == "float64" else x.bfloat16() if bf16 else x
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                e = net(xk)
            (e.double() @ target).sum().backward()
            g = torch.cat([p.grad.double().flatten() for p in net.parameters()])
            first.setdefault(k, g)
            sums[k] = sums[k] + g if k in sums else g
    ref0, ref = first["float64"], sums["float64"]
    return {k: (float((first[k] - ref0).norm() / ref0.norm()), float((sums[k] - ref).norm() / ref.norm()))
            for k in kinds[1:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--grad-batches", type=int, default=16,
                    help="batches of 10 for the whole-encoder gradient error (0: skip)")
    args = ap.parse_args()
    if not fused.available():
        sys.exit("the fused kernels are unavailable (numba missing)")
    print(f"machine: {machine()}")
    torch.manual_seed(0)
    enc = PatchEncoder().to(memory_format=torch.channels_last)
    init_authors(enc)
    x = torch.rand(args.batch, 3, 100, 100).to(memory_format=torch.channels_last).bfloat16()
    all_threads = torch.get_num_threads()
    ratio = 1.0
    for threads in sorted({1, all_threads}):
        with intra_op_threads(threads):
            ms = step_ms(enc, x, args.steps)
        ratio = ms[False] / ms[True]
        print(f"{threads} thread(s), batch {args.batch}: PyTorch ReLU/BN/pool {ms[False]:.0f} ms/step, "
              f"fused {ms[True]:.0f} ms/step ({ratio:.2f}x)")
    print(f"first layer ({args.batch}x32x96x96), relative error against float64:")
    for kind, errs in errors(args.batch).items():
        print(f"  {kind}: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    if args.grad_batches:
        print(f"whole encoder, parameter gradient, relative error against float64 (batch 10; first "
              f"batch, then the mean gradient over {args.grad_batches} batches):")
        for kind, (one, mean) in gradient_errors(args.grad_batches).items():
            print(f"  {kind}: {one:.2e}, {mean:.2e}")
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
