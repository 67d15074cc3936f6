"""What one training run is: every setting, with the paper's values as defaults.

One dataclass so that the CLI, YAML/TOML files and ``RUN/config.yaml`` describe a run the same
way, and a resumed run can be rebuilt from the file it saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from pattnet.config import STAGE_CONFIG
from pattnet.constants import N_FOLDS, N_PATCHES, SPLIT_SEED, VAL_FRACTION
from pattnet.datasets.labels import NO_POSITIVE_WEIGHT
from pattnet.store.reference import Normalize, Reference

#: A share in [0, 1): the validation fraction must leave training subjects.
Share = Annotated[float, Field(ge=0.0, lt=1.0)]
#: An open probability: 0 or 1 as a threshold would make every frame one class.
Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


@dataclass
class TrainConfig:
    """Training configuration; defaults are the paper's (section 4, paper-notes section 3)."""

    __pydantic_config__: ClassVar = STAGE_CONFIG

    model: str = "pattnet"
    mode: str | None = None  # per-au | multilabel; None = the model's default
    order: Literal["relu-bn", "bn-relu"] = "relu-bn"
    attention_bias: bool = True
    patch: Annotated[int, Field(ge=1, le=N_PATCHES)] = 1  # single-patch baseline only
    init: Literal["authors", "pytorch"] = "authors"
    mesh_dim: PositiveInt = 64  # pattnet-geometry / -fusion: features of the mesh branch
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 50  # global: split across DDP processes
    optimizer: Literal["sgd", "adam"] = "sgd"  # sgd = the paper; adam converges in fewer steps
    lr: PositiveFloat = 1e-3
    # lr of the patch attention (W_f, b_f, c_f); None = lr (the paper). c_f starts at zero, so
    # with few steps a larger rate lets attention leave uniform
    attention_lr: PositiveFloat | None = None
    momentum: Share = 0.9
    weight_decay: NonNegativeFloat = 0.0
    mean: float = 0.5
    std: PositiveFloat = 0.5
    # global = the paper (mean/std above); subject = difference from each person's mean face
    # (pattnet.store.reference), labels unused; detect then calibrates on the video it is given
    normalize: Normalize = "global"
    reference_frames: PositiveInt = 500  # frames per subject averaged for its reference
    # normalize=subject: which frames make a person's reference: mean = all of them; neutral =
    # those with no AU (labelled ones for training people; for held-out people, and at
    # detection, the least expressive ones by the model: pattnet.store.reference)
    reference: Reference = "mean"
    # normalize=subject: share of training faces fed against the population's reference instead
    # of their own person's, as a photo of an unknown person is at detection (0 = the paper)
    prior_share: Share = 0.0
    seed: Annotated[int, Field(ge=0, lt=2**63)] = SPLIT_SEED  # what torch's generators take
    folds: Annotated[int, Field(ge=2)] = N_FOLDS
    dataset: str | None = None  # bp4d | disfa use the published folds; None = store.json's
    val_fraction: Share = VAL_FRACTION  # share of training subjects held out to pick the epoch
    select_metric: Literal["f1", "auc", "loss"] = "f1"
    threshold: Probability = 0.5
    include_failed: bool = False  # frames whose registration failed are excluded by default
    no_positive_weight: PositiveFloat = NO_POSITIVE_WEIGHT  # w_pos where undefined (warned; never NaN)
    # balanced = the paper's weighted BCE (positives weighted by negatives/positives per AU);
    # none = plain BCE, whose probabilities keep the training set's base rates, so that a face
    # showing nothing scores near 0 rather than near the decision boundary
    positive_weight: Literal["balanced", "none"] = "balanced"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    tune_allocator: bool = True  # CPU: keep freed activation memory for reuse (see tune_cpu_allocator)
    # CPU, per-AU mode: independent networks trained side by side on this many threads (each op
    # on fewer cores); None = auto (one per core, at most one per network; 1 on GPU or with DDP)
    network_threads: PositiveInt | None = None
    # CPU, bf16: each encoder layer's ReLU -> BN -> max-pool as one fused step (pattnet.models.fused;
    # same model and checkpoints, closer to float64 than PyTorch's bf16 ops); False = PyTorch's
    fused_kernels: bool = True
    # the per-AU networks (and a network's 9 encoders) as one grouped computation per layer
    # (pattnet.models.batched): the same model, fewer and larger kernels; auto = on a GPU, where
    # it is faster; on a CPU the networks side by side are faster and need far less memory
    batched: bool | Literal["auto"] = "auto"
    device: str = "auto"
    num_workers: NonNegativeInt = 1  # loader processes; more than the cores are not started
    max_batches: PositiveInt | None = None  # cap batches per epoch (smoke tests); None = all frames
    # subset of the store's AUs; None = all
    aus: Annotated[list[PositiveInt], Field(min_length=1)] | None = None


__all__ = ["TrainConfig"]
