"""What the demo runs: its settings (a typed stage config) and the words it says about its data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import NonNegativeInt, PositiveInt

from pattnet.config import STAGE_CONFIG
from pattnet.train import TrainConfig

DISCLAIMER = (
    "pattnet demo: the data are SYNTHETIC FACS-based AU deformations of real faces bundled with "
    "scikit-image and matplotlib (the astronaut, Grace Hopper and 40 LFW faces, plus any "
    "--faces). They exercise the whole pipeline end to end; the tables below say how much the "
    "models learned from them. Results on spontaneous expressions need BP4D or DISFA "
    "(pattnet prepare); how the bundled model does on real faces: pattnet models."
)


@dataclass
class DemoConfig:
    """What the demo runs; sized to finish in about four minutes on a small CPU.

    Two models are compared on the same set: ``train.model`` (the paper's patch attention
    network, multi-label) and ``fusion`` (the same network with the mesh branch,
    :mod:`pattnet.models.geometry`). The fusion model trains its patch network against the
    labels on its own as well, so where ``train.model`` is that network it is not trained a
    second time: it is the fusion training's branch (:func:`pattnet.train.branch_run`). An empty
    ``fusion`` trains the first only; ``--paper``'s per-AU networks are trained apart.
    """

    __pydantic_config__: ClassVar = STAGE_CONFIG

    per_identity: PositiveInt = 16
    seed: NonNegativeInt = 0
    fusion: str = "pattnet-fusion"
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            # one training (the patch model is the fusion model's branch) leaves time for a
            # fourth epoch; every training person trains (no validation hold-out: the last epoch
            # is kept, and the fusion gates learn with the rest). docs/training.md measures both
            model="pattnet-multilabel", epochs=4, optimizer="adam", lr=3e-4, attention_lr=3e-3,
            batch_size=10, normalize="subject", val_fraction=0.0, num_workers=0,
        )
    )


def tiny_config(cfg: DemoConfig) -> DemoConfig:
    cfg.per_identity = 2
    cfg.train.epochs = 1
    return cfg


__all__ = ["DISCLAIMER", "DemoConfig", "tiny_config"]
