"""What every model returns: one logit per AU, and its patch attention where it has one."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, A)
    attention: torch.Tensor | None  # (B, A, 9) for patch-attention models, else None
    # training only: logits (B, A) of parts that must also predict on their own (the fusion
    # model's branches); the trainer adds their loss to the loss of ``logits``
    aux: tuple[torch.Tensor, ...] = ()


__all__ = ["ModelOutput"]
