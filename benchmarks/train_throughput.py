"""Training throughput: the authors' way vs pattnet's, side by side on one machine.

(a) the authors' way: the 12 per-AU PAttNet networks trained one after another, each over the
    full data, a Python loop over the 9 encoders, fp32, default (NCHW) memory format;
(b) pattnet: the same 12 networks trained in ONE pass over the data (each batch read and
    normalised once, then every network's forward/backward), bf16 autocast + channels_last where
    the hardware has bf16 (falls back to fp32 otherwise), and on CPU the glibc allocator setting,
    the network threads of pattnet's trainer (``tune_cpu_allocator``, ``network_threads``: the
    independent networks side by side, one thread per core) and its fused ReLU/BN/max-pool step
    (``pattnet.models.fused``), through the trainer's own step function ``backward_networks``;
(a') for transparency, the authors' way again with that allocator setting, to show how much of
    the gain is the allocator and how much is bf16/channels_last and the single data pass;
(c) the multi-label model (shared encoders), pattnet's way.

samples/s = frames whose labels all 12 AUs have been trained on, per second. Last line:
``ratio: X`` = (b) / (a).

    python benchmarks/train_throughput.py [--frames 150] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, peak_rss_mib  # noqa: E402

from pattnet.constants import BP4D_AUS  # noqa: E402
from pattnet.models import create_model  # noqa: E402
from pattnet.models.encoder import set_fused  # noqa: E402
from pattnet.models.inputs import to_model_input  # noqa: E402
from pattnet.runtime import resolve_precision  # noqa: E402
from pattnet.store import PatchStore, frame_table, write_store  # noqa: E402
from pattnet.train import (  # noqa: E402
    EpochBatches,
    backward_networks,
    network_pool,
    network_threads,
    networks,
    split_networks,
    tune_cpu_allocator,
    weighted_bce,
)


def make_store(path: Path, n: int) -> PatchStore:
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 2, (n, 12)).astype(np.int8)
    t = frame_table([f"S{i % 3}" for i in range(n)], ["T1"] * n, range(n), lab, BP4D_AUS)
    return write_store(path, t, rng.integers(0, 255, (n, 9, 100, 100, 3), dtype=np.uint8),
                       np.zeros((n, 200, 200, 3), np.uint8), BP4D_AUS)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def authors_way(store: PatchStore, device: torch.device, batch: int) -> float:
    """One network per AU, each over the whole data, fp32, NCHW."""
    n = len(store)
    pw = torch.ones(1, device=device)
    elapsed = 0.0
    for k in range(12):
        torch.manual_seed(k)
        net = create_model("pattnet", aus=[BP4D_AUS[k]]).to(device).train()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        sync(device)
        t0 = time.perf_counter()
        for idx in EpochBatches(np.arange(n), batch, seed=k):
            x = to_model_input(store.patches(idx), "patches", channels_last=False, device=device)
            y = torch.from_numpy(store.labels[idx][:, k:k + 1]).to(device)
            out = net(x)
            loss = weighted_bce(out.logits, y, pw)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync(device)
        elapsed += time.perf_counter() - t0
    return n / elapsed


def pattnet_way(store: PatchStore, device: torch.device, batch: int, name: str,
                threads: int | None = None, fused: bool = True) -> tuple[float, str, int]:
    """All AUs in one pass over the data: bf16 autocast + channels_last, and on a CPU the
    independent networks side by side on ``network_threads`` threads: the trainer's own step
    (``backward_networks``)."""
    n = len(store)
    amp = resolve_precision("auto", device)
    torch.manual_seed(0)
    model = create_model(name, aus=BP4D_AUS).to(device).to(memory_format=torch.channels_last).train()
    set_fused(model, fused)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    pw = torch.ones(12, device=device)
    nets = networks(model)
    parts = split_networks(nets, network_threads(threads, len(nets), device))

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None)

    with network_pool(len(parts)) as pool:

        def step(idx: np.ndarray) -> None:
            x = to_model_input(store.patches(idx), "patches", channels_last=True, device=device,
                               dtype=amp)
            y = torch.from_numpy(store.labels[idx]).to(device)
            opt.zero_grad()
            backward_networks(parts, x, y, pw, autocast, pool)
            opt.step()

        step(np.arange(min(batch, n)))  # warm-up: oneDNN picks its kernels
        sync(device)
        t0 = time.perf_counter()
        for idx in EpochBatches(np.arange(n), batch, seed=0):
            step(idx)
        sync(device)
        dt = time.perf_counter() - t0
    return n / dt, "bf16" if amp == torch.bfloat16 else str(amp or "fp32"), len(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--network-threads", type=int, default=None,
                    help="threads training the 12 networks side by side (default: the trainer's)")
    ap.add_argument("--one-thread-too", action="store_true",
                    help="also time (b) with the networks one after another")
    ap.add_argument("--unfused-too", action="store_true",
                    help="also time (b) with PyTorch's own ReLU/BN/max-pool (fused_kernels=False)")
    args = ap.parse_args()
    device = torch.device(args.device)
    print(f"machine: {machine()}")
    print(f"device: {device}; frames: {args.frames}; batch: {args.batch}; 12 AUs")
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp) / "store", args.frames)
        a = authors_way(store, device, args.batch)
        print(f"(a) authors' way, 12 networks one after another, fp32: {a:.2f} samples/s")
        tuned = device.type == "cpu" and tune_cpu_allocator()
        if tuned:
            a2 = authors_way(store, device, args.batch)
            print(f"(a') authors' way with pattnet's allocator setting: {a2:.2f} samples/s")
        b, prec, nt = pattnet_way(store, device, args.batch, "pattnet", args.network_threads)
        print(f"(b) pattnet, 12 networks in one data pass, {prec} + channels_last"
              f"{' + allocator setting' if tuned else ''}, networks on {nt} thread(s) side by side: "
              f"{b:.2f} samples/s")
        if tuned:
            print(f"    (b) / (a') = {b / a2:.2f}: the gain without the allocator setting")
        if nt > 1 and args.one_thread_too:
            b1, _, _ = pattnet_way(store, device, args.batch, "pattnet", 1)
            print(f"(b1) the same with the networks one after another (network_threads=1): "
                  f"{b1:.2f} samples/s; side by side is {b / b1:.2f}x")
        if args.unfused_too:
            b2, _, _ = pattnet_way(store, device, args.batch, "pattnet", args.network_threads, False)
            print(f"(b2) the same with PyTorch's ReLU/BN/max-pool (fused_kernels=False): "
                  f"{b2:.2f} samples/s; the fused step is {b / b2:.2f}x")
        c, _, _ = pattnet_way(store, device, args.batch, "pattnet-multilabel")
        print(f"(c) pattnet-multilabel (shared encoders), {prec} + channels_last: {c:.2f} samples/s "
              f"({c / a:.1f}x the authors' way)")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    print(f"ratio: {b / a:.2f}")


if __name__ == "__main__":
    main()
