"""PAttNet, its multi-label extension, the paper's baselines, and the mesh and fusion models.

Every model maps a normalised float input to ``ModelOutput(logits (B, A), attention)``:
patch models take (B, 9, 3, 100, 100), the holistic model (B, 3, 200, 200), the geometry model
the mesh displacement (B, 478, 3), and a model of several inputs (``input_kinds``) a dict of
them by kind. ``attention`` is (B, A, 9) for attention models and None otherwise.

``per-au`` mode is the paper: A independent networks (no shared weights), trained together in one
pass over the data. Because their parameters are disjoint and the total loss is the sum of the
per-AU losses, each network receives exactly the gradient it would get if trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, cast

import torch
from pydantic import Field, PositiveInt
from torch import nn

from pattnet.config import STAGE_CONFIG
from pattnet.constants import HOLISTIC_SIZE, N_PATCHES, PATCH_SIZE
from pattnet.models.attention import Kind, PatchAttention
from pattnet.models.batched import batched_attention, grouped_encode
from pattnet.models.encoder import Order, PatchEncoder, init_authors
from pattnet.models.geometry import FusionNet, GeometryNet
from pattnet.models.output import ModelOutput


@dataclass
class ModelConfig:
    """Architecture knobs; the defaults are the paper's."""

    __pydantic_config__: ClassVar = STAGE_CONFIG

    dim: PositiveInt = 60
    order: Order = "relu-bn"
    attention_bias: bool = True  # b_f; the authors' code has none (4,211,941 parameters)
    patch: Annotated[int, Field(ge=1, le=N_PATCHES)] = 1  # single-patch baseline: which of P1..P9
    init: Literal["authors", "pytorch"] = "authors"
    mesh_dim: PositiveInt = 64  # geometry and fusion models: features of the mesh branch


def _patch_views(x: torch.Tensor) -> list[torch.Tensor]:
    """(B, 9, 3, H, W) -> 9 tensors (B, 3, H, W), kept in x's memory format where possible."""
    return list(x.unbind(1))


class PAttNet(nn.Module):
    """One AU network of the paper: 9 patch encoders -> patch attention -> ReLU -> Linear(60, 1).

    With ``n_outputs`` > 1 it is the multi-label variant: the same 9 encoders and W_f, one context
    vector and one head per AU.
    """

    input_kinds = ("patches",)

    def __init__(self, cfg: ModelConfig, attention: Kind = "sigmoid", n_outputs: int = 1):
        super().__init__()
        self.encoders = nn.ModuleList(
            PatchEncoder(PATCH_SIZE, cfg.dim, cfg.order) for _ in range(N_PATCHES)
        )
        self.attention = PatchAttention(cfg.dim, attention, n_outputs, bias=cfg.attention_bias)
        self.head_weight = nn.Parameter(torch.empty(n_outputs, cfg.dim))
        self.head_bias = nn.Parameter(torch.empty(n_outputs))
        bound = cfg.dim**-0.5  # nn.Linear's default init, written for (A, D) heads
        nn.init.uniform_(self.head_weight, -bound, bound)
        nn.init.uniform_(self.head_bias, -bound, bound)

    #: run the 9 encoders as grouped convolutions (:mod:`pattnet.models.batched`)
    batched = False

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 9, 3, 100, 100) -> (B, 9, D)."""
        if self.batched:
            return grouped_encode(list(self.encoders), x, N_PATCHES)
        return torch.stack([enc(p) for enc, p in zip(self.encoders, _patch_views(x), strict=True)],
                           dim=1)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        v, a = self.attention(self.encode(x))  # (B, Q, D), (B, Q, 9)
        logits = torch.einsum("bqd,qd->bq", torch.relu(v), self.head_weight.to(v.dtype))
        return ModelOutput(logits + self.head_bias.to(logits.dtype), a)


class SinglePatchCNN(nn.Module):
    """Baseline: the encoder of one patch -> ReLU -> Linear(60, n_outputs)."""

    input_kinds = ("patches",)

    def __init__(self, cfg: ModelConfig, n_outputs: int = 1):
        super().__init__()
        if not 1 <= cfg.patch <= N_PATCHES:
            raise ValueError(f"patch must be 1..{N_PATCHES}, not {cfg.patch}")
        self.patch = cfg.patch
        self.encoder = PatchEncoder(PATCH_SIZE, cfg.dim, cfg.order)
        self.head = nn.Linear(cfg.dim, n_outputs)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        e = self.encoder(x[:, self.patch - 1])
        return ModelOutput(self.head(torch.relu(e)), None)


class HolisticCNN(nn.Module):
    """Baseline: the same conv stack on the whole registered face at 200x200."""

    input_kinds = ("holistic",)

    def __init__(self, cfg: ModelConfig, n_outputs: int = 1):
        super().__init__()
        self.encoder = PatchEncoder(HOLISTIC_SIZE, cfg.dim, cfg.order)
        self.head = nn.Linear(cfg.dim, n_outputs)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(self.head(torch.relu(self.encoder(x))), None)


class PerAU(nn.Module):
    """The paper's protocol: one independent network per AU, run side by side."""

    #: run the networks as one grouped computation (:mod:`pattnet.models.batched`)
    batched = False

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.input_kinds = cast(tuple[str, ...], nets[0].input_kinds)

    def can_batch(self) -> bool:
        """The grouped path covers the per-AU PAttNet, single-patch and holistic networks."""
        return isinstance(self.nets[0], (PAttNet, SinglePatchCNN, HolisticCNN))

    def _batched(self, x: torch.Tensor) -> ModelOutput:
        nets: list[Any] = list(self.nets)
        first = nets[0]
        if isinstance(first, PAttNet):
            encs = [e for n in nets for e in n.encoders]
            e = grouped_encode(encs, x, N_PATCHES).reshape(len(x), len(nets), N_PATCHES, -1)
            v, a = batched_attention([n.attention for n in nets], e)
            w = torch.cat([n.head_weight for n in nets]).to(v.dtype)  # (N, D)
            b = torch.cat([n.head_bias for n in nets]).to(v.dtype)
            return ModelOutput(torch.einsum("bnd,nd->bn", torch.relu(v), w) + b, a)
        # a single-patch network sees its one patch, a holistic one the whole face: one view
        view = x[:, first.patch - 1:first.patch] if isinstance(first, SinglePatchCNN) else x[:, None]
        e = grouped_encode([n.encoder for n in nets], view, 1)
        w = torch.cat([n.head.weight for n in nets]).to(e.dtype)
        b = torch.cat([n.head.bias for n in nets]).to(e.dtype)
        return ModelOutput(torch.einsum("bnd,nd->bn", torch.relu(e), w) + b, None)

    def forward(self, x: torch.Tensor | dict[str, torch.Tensor]) -> ModelOutput:
        if self.batched and self.can_batch() and isinstance(x, torch.Tensor):
            return self._batched(x)
        outs = [net(x) for net in self.nets]
        logits = torch.cat([o.logits for o in outs], dim=1)
        aux = tuple(torch.cat([o.aux[i] for o in outs], dim=1) for i in range(len(outs[0].aux)))
        att = None
        if outs[0].attention is not None:
            att = torch.cat([o.attention for o in outs], dim=1)  # (B, A, 9)
        return ModelOutput(logits, att, aux)


class AUModel(nn.Module):
    """Wrapper every trainer and detector sees: knows its AUs, its input and its name."""

    def __init__(self, name: str, aus: list[int], net: nn.Module, cfg: ModelConfig):
        super().__init__()
        self.name = name
        self.aus = list(aus)
        self.cfg = cfg
        self.net = net
        self.input_kinds = cast(tuple[str, ...], net.input_kinds)

    @property
    def input_kind(self) -> str:
        """The first input kind (the only one, except for a fusion model)."""
        return self.input_kinds[0]

    def forward(self, x: torch.Tensor | dict[str, torch.Tensor]) -> ModelOutput:
        """``x``: one tensor for a single-input model, ``{kind: tensor}`` for several."""
        return self.net(x)


def build(name: str, aus: list[int], cfg: ModelConfig, mode: str, kind: str,
          attention: Kind = "sigmoid") -> AUModel:
    def one(n_out: int) -> nn.Module:
        if kind == "pattnet":
            return PAttNet(cfg, attention, n_out)
        if kind == "single-patch":
            return SinglePatchCNN(cfg, n_out)
        if kind == "geometry":
            return GeometryNet(n_out, cfg.mesh_dim)
        if kind == "fusion":
            return FusionNet(PAttNet(cfg, attention, n_out), n_out, cfg.mesh_dim)
        return HolisticCNN(cfg, n_out)

    net = PerAU([one(1) for _ in aus]) if mode == "per-au" else one(len(aus))
    if cfg.init == "authors":
        init_authors(net)  # the conv and batch-norm layers; the mesh branch keeps PyTorch's
    return AUModel(name, aus, net, cfg)
