"""The paper's training objective: weighted BCE per AU, and each fold's positive weights.

Kept apart from the loop so that validation, the benchmarks and the tests score with exactly
the function the networks are trained on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pattnet.constants import au_name
from pattnet.datasets.labels import NO_POSITIVE_WEIGHT, PosWeights


def weighted_bce(
    logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor
) -> torch.Tensor:
    """Masked weighted BCE, summed over AUs of each AU's mean over its coded frames.

    L_au = mean over frames with label != -1 of -(w_pos y log p + (1 - y) log(1 - p)).
    Summing (not averaging) over AUs keeps each AU's gradient the size it would have if its
    network were trained alone, as in the paper.
    """
    labels = labels.to(logits.dtype)
    mask = labels >= 0
    target = labels.clamp(min=0)
    per = nn.functional.binary_cross_entropy_with_logits(
        logits.float(), target.float(), pos_weight=pos_weight.float(), reduction="none"
    )
    per = per * mask
    counts = mask.sum(0)
    per_au = per.sum(0) / counts.clamp(min=1)
    return per_au.sum()


def pos_weights(labels: np.ndarray, aus: Sequence[int],
                no_positive: float = NO_POSITIVE_WEIGHT) -> np.ndarray:
    """The training fold's w_pos per AU (:class:`~pattnet.datasets.labels.PosWeights`, the same
    numbers ``pattnet stats`` shows); each AU whose ratio is undefined is warned about."""
    w = PosWeights.of(labels, [au_name(a) for a in aus], no_positive)
    for note in w.notes():
        warnings.warn(note, stacklevel=2)
    return w.values


__all__ = ["pos_weights", "weighted_bce"]
