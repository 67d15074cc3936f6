"""A fold's model and optimiser, built from its :class:`TrainConfig`.

Built in one place so that training, ``export`` (through ``model_from_settings``) and a resumed
run construct the same network with the same parameter groups, and so the checkpoint's
optimiser state lines up with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pattnet.models import AUModel, model_from_settings
from pattnet.models.batched import set_batched, use_batched
from pattnet.models.encoder import set_fused
from pattnet.train.config import TrainConfig


def model_from_config(cfg: TrainConfig, aus: Sequence[int]) -> AUModel:
    return model_from_settings(dataclasses.asdict(cfg), aus)


def fold_model(cfg: TrainConfig, aus: Sequence[int], fold: int, device: torch.device) -> AUModel:
    """The fold's freshly initialised model, seeded by (seed, fold) so that every fold, and a
    rerun of it, starts from its own reproducible weights."""
    torch.manual_seed(cfg.seed * 1000 + fold)
    model = model_from_config(cfg, aus).to(device)
    set_fused(model, cfg.fused_kernels)
    set_batched(model, use_batched(cfg.batched, device))
    if cfg.channels_last:
        # Module.to takes memory_format at run time; torch's overloads do not list it
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def param_groups(model: nn.Module, lr: float, attention_lr: float | None) -> list[dict[str, Any]]:
    """Optimiser groups: the patch attention at ``attention_lr`` (when given), the rest at ``lr``."""
    if attention_lr is None or attention_lr == lr:
        return [{"params": list(model.parameters()), "lr": lr}]
    att = [p for n, p in model.named_parameters() if ".attention." in f".{n}"]
    rest = [p for n, p in model.named_parameters() if ".attention." not in f".{n}"]
    groups = [{"params": rest, "lr": lr}]
    if att:
        groups.append({"params": att, "lr": attention_lr})
    return groups


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the paper) or Adam, over :func:`param_groups`."""
    groups = param_groups(model, cfg.lr, cfg.attention_lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


__all__ = ["fold_model", "make_optimizer", "model_from_config", "param_groups"]
