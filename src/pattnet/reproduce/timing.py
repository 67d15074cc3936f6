"""How fast each model of the grid trains and predicts here: a few measured steps, for the
time estimate of ``pattnet reproduce --dry-run``.

Random inputs of the real shapes through the trainer's own step (bf16 autocast where the device
has it, the grouped per-AU path where training would use it): the cost of a step depends on the
shapes, not on the pixels.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import torch

from pattnet.constants import HOLISTIC_SHAPE, PATCH_SHAPE
from pattnet.models.inputs import to_model_input
from pattnet.reproduce.grid import Experiment
from pattnet.runtime import resolve_device, resolve_precision
from pattnet.train import (
    TrainConfig,
    backward_networks,
    fold_model,
    make_optimizer,
    network_pool,
    network_threads,
    networks,
    split_networks,
)


def _batch(kind: str, n: int, cfg: TrainConfig, device: torch.device,
           amp: torch.dtype | None) -> torch.Tensor:
    """A batch as the trainer feeds it: uint8 of the stored shape, normalised on the device."""
    shape = (n, *PATCH_SHAPE) if kind == "patches" else (n, *HOLISTIC_SHAPE)
    x8 = torch.randint(0, 256, shape, dtype=torch.uint8)
    return to_model_input(x8, kind, cfg.mean, cfg.std, cfg.channels_last, device, dtype=amp)


def _rates(e: Experiment, base: TrainConfig, aus: Sequence[int], device: torch.device,
           steps: int = 2, batch: int | None = None) -> tuple[float, float]:
    cfg = e.config(base)
    model = fold_model(cfg, aus, 1, device).train()  # built exactly as training builds it
    amp = resolve_precision(cfg.precision, device)
    # a CPU step of the paper's batch takes many seconds: the estimate times a smaller one
    n = batch or (cfg.batch_size if device.type == "cuda" else min(cfg.batch_size, 8))
    x = _batch(model.input_kind, n, cfg, device, amp)
    y = torch.randint(0, 2, (n, len(aus)), device=device).float()
    pw = torch.ones(len(aus), device=device)
    opt = make_optimizer(model, cfg)
    nets = networks(model)  # and side by side on threads as the trainer would
    parts = split_networks(nets, network_threads(cfg.network_threads, len(nets), device))

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()

    def eval_step() -> None:
        with torch.no_grad(), autocast():
            model.eval()(x)
        model.train()

    with network_pool(len(parts)) as pool:  # one pool for all steps, as the trainer's epoch

        def train_step() -> None:
            opt.zero_grad(set_to_none=True)
            backward_networks(parts, x, y, pw, autocast, pool)
            opt.step()

        train_rate = n / _timed(train_step, steps, device)
    return train_rate, n / _timed(eval_step, steps, device)


def _timed(fn: Callable[[], object], steps: int, device: torch.device) -> float:
    fn()  # warm-up: kernels chosen, memory allocated
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def step_rates(exps: Sequence[Experiment], base: TrainConfig, aus: Sequence[int]
               ) -> dict[str, tuple[float, float]]:
    """(training, prediction) samples/s of each experiment, measured once per model."""
    device = resolve_device(base.device)
    measured: dict[tuple[str, bool], tuple[float, float]] = {}
    out = {}
    for e in exps:
        key = (e.model, e.patch is not None)
        if key not in measured:
            measured[key] = _rates(e, base, aus, device)
        out[e.name] = measured[key]
    return out


__all__ = ["step_rates"]
