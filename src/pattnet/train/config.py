"""What one training run is: every setting, with the paper's values as defaults.

One dataclass so that the CLI, YAML/TOML files and ``RUN/config.yaml`` describe a run the same
way, and a resumed run can be rebuilt from the file it saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pattnet.constants import N_FOLDS, SPLIT_SEED, VAL_FRACTION
from pattnet.datasets.labels import NO_POSITIVE_WEIGHT


@dataclass
class TrainConfig:
    """Training configuration; defaults are the paper's (section 4, paper-notes section 3)."""

    model: str = "pattnet"
    mode: str | None = None  # per-au | multilabel; None = the model's default
    order: Literal["relu-bn", "bn-relu"] = "relu-bn"
    attention_bias: bool = True
    patch: int = 1  # single-patch baseline only
    init: Literal["authors", "pytorch"] = "authors"
    epochs: int = 10
    batch_size: int = 50  # global: split across DDP processes
    optimizer: Literal["sgd", "adam"] = "sgd"  # sgd = the paper; adam converges in fewer steps
    lr: float = 1e-3
    # lr of the patch attention (W_f, b_f, c_f); None = lr (the paper). c_f starts at zero, so
    # with few steps a larger rate lets attention leave uniform
    attention_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    mean: float = 0.5
    std: float = 0.5
    # global = the paper (mean/std above); subject = difference from each person's mean face
    # (pattnet.store.reference), labels unused; detect then calibrates on the video it is given
    normalize: Literal["global", "subject"] = "global"
    reference_frames: int = 500  # frames per subject averaged for its reference
    seed: int = SPLIT_SEED
    folds: int = N_FOLDS
    dataset: str | None = None  # bp4d | disfa use the published folds; None = store.json's
    val_fraction: float = VAL_FRACTION  # share of training subjects held out to pick the epoch
    select_metric: Literal["f1", "auc", "loss"] = "f1"
    threshold: float = 0.5
    include_failed: bool = False  # frames whose registration failed are excluded by default
    no_positive_weight: float = NO_POSITIVE_WEIGHT  # w_pos where undefined (warned; never NaN)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    tune_allocator: bool = True  # CPU: keep freed activation memory for reuse (see tune_cpu_allocator)
    # CPU, per-AU mode: independent networks trained side by side on this many threads (each op
    # on fewer cores); None = auto (one per core, at most one per network; 1 on GPU or with DDP)
    network_threads: int | None = None
    # CPU, bf16: each encoder layer's ReLU -> BN -> max-pool as one fused step (pattnet.models.fused;
    # same model and checkpoints, closer to float64 than PyTorch's bf16 ops); False = PyTorch's
    fused_kernels: bool = True
    device: str = "auto"
    num_workers: int = 1
    max_batches: int | None = None  # cap batches per epoch (smoke tests); None = all frames
    aus: list[int] | None = None  # subset of the store's AUs; None = all
    extra: dict[str, Any] = field(default_factory=dict)


__all__ = ["TrainConfig"]
