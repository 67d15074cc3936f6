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
(c) the multi-label model (shared encoders), pattnet's way;
(d) the loader alone: uint8 batches read from the memory-mapped store by background workers
    (into page-locked memory on a GPU, copied non-blocking, normalised on the device), with the
    page cache warm, and cold (the store's files dropped from it first): it must outrun (b).

On a GPU, (b) and (c) run the networks as one grouped computation per layer
(``pattnet.models.batched``, the trainer's default there); ``--modules-too`` also times the
networks module by module, to show what grouping gives.

samples/s = frames whose labels all 12 AUs have been trained on, per second. Last line:
``ratio: X`` = (b) / (a).

    python benchmarks/train_throughput.py [--frames 150] [--device cpu|cuda] [--loader-frames N]
"""

from __future__ import annotations

import argparse
import os
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
from pattnet.models.batched import set_batched, use_batched  # noqa: E402
from pattnet.models.encoder import set_fused  # noqa: E402
from pattnet.models.inputs import to_model_input  # noqa: E402
from pattnet.runtime import resolve_precision  # noqa: E402
from pattnet.store import PatchStore, frame_table  # noqa: E402
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


def make_store(path: Path, n: int, chunk: int = 500) -> PatchStore:
    """A store of ``n`` random frames, written a chunk at a time (memory bounded by a chunk)."""
    from pattnet.store import StoreWriter

    rng = np.random.default_rng(0)
    w = StoreWriter(path, BP4D_AUS)
    for k, s in enumerate(range(0, n, chunk)):
        m = min(chunk, n - s)
        lab = rng.integers(0, 2, (m, 12)).astype(np.int8)
        t = frame_table([f"S{i % 3}" for i in range(s, s + m)], ["T1"] * m, range(s, s + m), lab,
                        BP4D_AUS)
        w.add_chunk(f"c{k:05d}", t, rng.integers(0, 255, (m, 9, 100, 100, 3), dtype=np.uint8),
                    np.zeros((m, 200, 200, 3), np.uint8))
    return w.finalize()


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
                threads: int | None = None, fused: bool = True, grouped: bool | None = None
                ) -> tuple[float, str, int]:
    """All AUs in one pass over the data: bf16 autocast + channels_last, and on a CPU the
    independent networks side by side on ``network_threads`` threads: the trainer's own step
    (``backward_networks``)."""
    n = len(store)
    amp = resolve_precision("auto", device)
    torch.manual_seed(0)
    model = create_model(name, aus=BP4D_AUS).to(device).to(memory_format=torch.channels_last).train()
    set_fused(model, fused)
    set_batched(model, use_batched("auto", device) if grouped is None else grouped)
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


def drop_from_page_cache(store: PatchStore) -> bool:
    """Evict the store's files from the page cache (the next read comes from the disk)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.sync()  # dirty pages (a store just written) are not evicted
    for f in store.path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return True


def loader_rate(store: PatchStore, device: torch.device, batch: int, workers: int) -> float:
    """Samples/s of the trainer's loader alone, up to normalised inputs on the device."""
    from pattnet.train import StoreBatches, batch_loader

    ds = StoreBatches(store, ("patches",), np.arange(12))
    sampler = EpochBatches(np.arange(len(store)), batch, seed=0)
    pin = device.type == "cuda"
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for b in batch_loader(ds, sampler, workers, pin=pin):
        x = to_model_input(b["x"]["patches"], "patches", device=device,
                           dtype=torch.bfloat16 if device.type == "cuda" else None)
        n += len(x)
    sync(device)
    return n / (time.perf_counter() - t0)


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
    ap.add_argument("--modules-too", action="store_true",
                    help="GPU: also time (b) with the networks module by module (not grouped)")
    ap.add_argument("--grouped-too", action="store_true",
                    help="CPU: also time (b) with the networks as one grouped computation (needs "
                         "several times the memory: use a small --batch)")
    ap.add_argument("--loader-frames", type=int, default=2000,
                    help="frames of the store the loader alone reads (d); 0 skips it")
    ap.add_argument("--loader-workers", type=int, default=4)
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
        if args.modules_too and device.type == "cuda":
            b3, _, _ = pattnet_way(store, device, args.batch, "pattnet", grouped=False)
            print(f"(b3) the same with the networks module by module (not grouped): {b3:.2f} "
                  f"samples/s; grouping gives {b / b3:.2f}x")
        if args.grouped_too and device.type == "cpu":
            b4, _, _ = pattnet_way(store, device, args.batch, "pattnet", grouped=True)
            print(f"(b4) the same with the networks as one grouped computation: {b4:.2f} samples/s "
                  f"(peak RSS so far {peak_rss_mib():.0f} MiB); side by side is {b / b4:.2f}x")
        c, _, _ = pattnet_way(store, device, args.batch, "pattnet-multilabel")
        print(f"(c) pattnet-multilabel (shared encoders), {prec} + channels_last: {c:.2f} samples/s "
              f"({c / a:.1f}x the authors' way)")
        if device.type == "cuda":
            print(f"    peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        if args.loader_frames:
            big = make_store(Path(tmp) / "loader", args.loader_frames)
            workers = min(args.loader_workers, os.cpu_count() or 1)
            loader_rate(big, device, args.batch, workers)  # reads the store into the page cache
            warm = loader_rate(big, device, args.batch, workers)
            cold_ok = drop_from_page_cache(big)
            cold = loader_rate(big, device, args.batch, workers)
            gib = args.loader_frames * 9 * 100 * 100 * 3 / 2**30
            print(f"(d) the loader alone ({workers} workers, {args.loader_frames} frames, "
                  f"{gib:.1f} GiB of patches): {warm:.0f} samples/s warm, {cold:.0f} cold"
                  f"{'' if cold_ok else ' (could not drop the page cache)'}; "
                  f"{min(warm, cold) / b:.1f}x the step (b)")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    print(f"ratio: {b / a:.2f}")


if __name__ == "__main__":
    main()
