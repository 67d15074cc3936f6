"""What every model returns: one logit per AU, and its patch attention where it has one."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, A)
    attention: torch.Tensor | None  # (B, A, 9) for patch-attention models, else None
    # logits (B, A) of parts that also predict on their own (the fusion model's branches,
    # patches first): training adds their loss to the loss of ``logits``, and a run keeps their
    # test predictions so that a branch can be evaluated and exported as a model of its own
    aux: tuple[torch.Tensor, ...] = ()


__all__ = ["ModelOutput"]
