"""The paper's patch encoder, written once and instantiated per patch (and per AU network).

Three 5x5 convolutions (stride 1, no padding; 32/64/64 filters), each followed by ReLU, batch
norm and 2x2 max-pooling, then Linear(5184, 60). ``order`` picks where batch norm sits relative to
the ReLU: ``"relu-bn"`` (default) is the order the paper lists and the authors' code uses
(Conv -> ReLU -> BN -> MaxPool); ``"bn-relu"`` is the common Conv -> BN -> ReLU -> MaxPool, offered
because it trains more stably with small batches.

In training on a CPU in bf16 (the trainer's default there), the default order's ReLU -> BN ->
MaxPool runs as one fused step (``pattnet.models.fused``); ``fused=False`` on the encoder, or
``TrainConfig.fused_kernels``, turns it off. The parameters and the checkpoint layout are the same
either way.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from pattnet.models import fused as _fused

Order = Literal["relu-bn", "bn-relu"]


def conv_stack(order: Order = "relu-bn", widths: tuple[int, ...] = (32, 64, 64)) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for cout in widths:
        conv = nn.Conv2d(cin, cout, kernel_size=5, stride=1, padding=0)
        bn = nn.BatchNorm2d(cout)
        act = nn.ReLU(inplace=True)
        layers += [conv, act, bn] if order == "relu-bn" else [conv, bn, act]
        layers.append(nn.MaxPool2d(2))
        cin = cout
    return nn.Sequential(*layers)


def feature_side(input_size: int, n_layers: int = 3) -> int:
    """Spatial side after the conv stack: each layer loses 4 px (5x5, no padding), then halves."""
    s = input_size
    for _ in range(n_layers):
        s = (s - 4) // 2
    return s


class PatchEncoder(nn.Module):
    """Image (B, 3, S, S) -> encoding e (B, dim). S = 100 for patches (64*9*9 = 5184 features)."""

    def __init__(self, input_size: int = 100, dim: int = 60, order: Order = "relu-bn"):
        super().__init__()
        if order not in ("relu-bn", "bn-relu"):
            raise ValueError(f"order must be 'relu-bn' or 'bn-relu', not {order!r}")
        self.features = conv_stack(order)
        side = feature_side(input_size)
        self.fc = nn.Linear(64 * side * side, dim)
        self.order = order
        self.fused = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.fused and self.training and self.order == "relu-bn"):
            return self.fc(torch.flatten(self.features(x), 1))
        layers = list(self.features)
        for i in range(0, len(layers), 4):  # [conv, relu, bn, pool] per layer
            conv, relu, bn, pool = layers[i:i + 4]
            assert isinstance(bn, nn.BatchNorm2d)
            c = conv(x)
            x = _fused.relu_bn_pool(c, bn) if _fused.applies(c, bn) else pool(bn(relu(c)))
        return self.fc(torch.flatten(x, 1))


def init_authors(module: nn.Module) -> None:
    """The authors' initialisation: conv weights N(0, 0.02), BN weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def set_fused(module: nn.Module, on: bool) -> None:
    """Switch the fused ReLU/BN/max-pool training step of every patch encoder in ``module``."""
    for m in module.modules():
        if isinstance(m, PatchEncoder):
            m.fused = on
