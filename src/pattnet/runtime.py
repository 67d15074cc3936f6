"""What training and detection both need from the machine: device, precision, threads, DDP.

Below ``train`` and ``detect`` so that inference never imports the trainer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_dist(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def resolve_device(name: str) -> torch.device:
    """The device ``name`` means on this machine; a name torch does not know, or a device this
    install cannot reach (``cuda`` on a CPU-only torch, a GPU index past the last), is a
    one-line :class:`~pattnet.errors.PattnetError` before any work starts."""
    from pattnet.errors import PattnetError

    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            return torch.device("cuda", local)
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise PattnetError(f"device {name!r}: not a device name (auto, cpu, cuda, cuda:N)"
                           ) from exc
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise PattnetError(f"device {name!r}: this machine's torch sees no CUDA GPU "
                               f"(torch {torch.__version__}); use device=cpu or auto")
        if dev.index is not None and dev.index >= n:
            raise PattnetError(f"device {name!r}: there are {n} GPU(s), cuda:0 to cuda:{n - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise PattnetError(f"device {name!r}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "mps"):
        raise PattnetError(f"device {name!r}: pattnet runs on cpu or cuda")
    return dev


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware has it (CPU: AVX-512 bf16 / AMX; GPU: Ampere+)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        return torch.bfloat16 if torch.backends.mkldnn.is_available() and _cpu_has_bf16() else None
    except Exception:  # pragma: no cover - exotic CPUs
        return None


def tune_cpu_allocator() -> bool:
    """Tell glibc to keep freed memory in the heap instead of returning it to the OS.

    Why: every training step allocates and frees activations of tens of MB. glibc serves those
    with mmap/munmap by default, so each step pays page faults to re-zero gigabytes; keeping the
    memory (M_MMAP_MAX=0, M_TRIM_THRESHOLD off) removes those faults from every step
    (docs/training.md has the figure). Peak memory is unchanged: it is still bounded by the
    batch. No effect (returns False) off glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        ok = libc.mallopt(m_mmap_max, 0) == 1
        ok &= libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run torch ops on ``n`` threads inside the block (process-wide), restoring the count after.

    Threads that run their first torch op inside the block keep ``n`` for their lifetime
    (PyTorch fixes a thread's OpenMP team size on its first parallel op), so worker threads
    started here stay at ``n`` while the main thread gets its count back.
    """
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
