"""Patch attention: h_p = tanh(W_f e_p + b_f), a_p = sigmoid(h_p . c_f), v = sum_p a_p e_p.

The sigmoid lets several patches matter at once (an AU is often visible in more than one face
region), which the paper shows beats the softmax ablation; the softmax variant normalises the
weights over the 9 patches. ``n_queries`` > 1 gives one context vector per AU over shared
encodings (the multi-label model).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Kind = Literal["sigmoid", "softmax"]


class PatchAttention(nn.Module):
    def __init__(self, dim: int = 60, kind: Kind = "sigmoid", n_queries: int = 1,
                 bias: bool = True):
        super().__init__()
        if kind not in ("sigmoid", "softmax"):
            raise ValueError(f"attention must be 'sigmoid' or 'softmax', not {kind!r}")
        self.kind = kind
        self.proj = nn.Linear(dim, dim, bias=bias)  # W_f, b_f
        # c_f starts at zero: every patch starts with a_p = 0.5 (sigmoid) or 1/9 (softmax), so an
        # attention map shows what training learned rather than a random initialisation.
        self.context = nn.Parameter(torch.zeros(n_queries, dim))

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """e (B, P, D) -> v (B, Q, D) pooled encodings and a (B, Q, P) attention weights."""
        h = torch.tanh(self.proj(e))  # (B, P, D)
        scores = torch.einsum("bpd,qd->bqp", h, self.context.to(h.dtype))
        a = torch.sigmoid(scores) if self.kind == "sigmoid" else torch.softmax(scores, dim=-1)
        v = torch.einsum("bqp,bpd->bqd", a, e)
        return v, a
