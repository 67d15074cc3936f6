"""The paper's patch encoder, written once and instantiated per patch (and per AU network).

Three 5x5 convolutions (stride 1, no padding; 32/64/64 filters), each followed by ReLU, batch
norm and 2x2 max-pooling, then Linear(5184, 60). ``order`` picks where batch norm sits relative to
the ReLU: ``"relu-bn"`` (default) is the order the paper lists and the authors' code uses
(Conv -> ReLU -> BN -> MaxPool); ``"bn-relu"`` is the common Conv -> BN -> ReLU -> MaxPool, offered
because it trains more stably with small batches.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


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
