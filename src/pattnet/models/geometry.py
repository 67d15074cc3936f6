"""The face's expression as geometry: a network on the canonical mesh, and its fusion with PAttNet.

Why geometry: registration already removes pose and warps every face onto one frontal frame, so
the canonical mesh (478 MediaPipe landmarks) *is* the expression, in the same coordinates for
every face and every camera. Its displacement from the person's reference (the mean mesh of the
person, or a population prior for a photo) is what an AU does to the face's shape, free of skin
colour, lighting and image quality: what a model trained on synthetic faces can carry over to
real ones, where learned texture often does not.

* :class:`MeshEncoder`: (B, 478, 3) displacement in interocular distances -> (B, D) features,
  a linear projection. Linear on purpose: real expressions move MediaPipe's landmarks further
  than the synthetic training faces do (brows two to three times as far), and a linear model
  carries a direction it learned to a larger displacement of the same kind, where a multilayer
  network's response outside its training range is arbitrary (docs/bundled-model.md compares
  them on real faces). The mesh's point order is fixed, so a graph network's weight sharing
  buys little here.
* :class:`GeometryNet`: the encoder and one logit per AU (``pattnet-geometry``).
* :class:`FusionNet`: PAttNet's multi-label patch network and the mesh branch side by side; each
  AU mixes the two branches' logits with its own learned gate ``g_a`` (``sigmoid(g_a)`` is the
  share given to the patches), and the patch attention is reported as in PAttNet. In training
  each branch's own logits are also scored against the labels (``ModelOutput.aux``), so each
  must predict on its own: the gate then weighs two working detectors instead of letting one
  branch carry an AU the other never learns, which matters when one of them fails on faces
  unlike the training set. Where the run has validation subjects the trainer fits the gates on
  them after every epoch (:meth:`FusionNet.fit_gates`): on the training frames a branch that
  memorises them looks perfect, so only held-out faces show which branch carries an AU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pattnet.constants import N_LANDMARKS
from pattnet.models.output import ModelOutput

#: Displacements of a few hundredths of an IOD are the scale of an AU; the encoder multiplies
#: its input by this so that its first layer sees numbers of order one.
MESH_INPUT_SCALE = 10.0


class MeshEncoder(nn.Module):
    """Canonical-mesh displacement (B, 478, 3) in IODs -> features (B, dim), linear.

    ``depth``: use the landmarks' depth too; off by default, since MediaPipe's depth is the
    least reliable coordinate and on the synthetic set it added nothing the in-plane motion
    does not show. ``dropout`` on the input points keeps any few landmarks from carrying an AU.
    """

    def __init__(self, dim: int = 64, depth: bool = False, dropout: float = 0.1):
        super().__init__()
        self.depth = depth
        n_in = N_LANDMARKS * (3 if depth else 2)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(n_in, dim)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        if not self.depth:
            d = d[..., :2]
        return self.proj(self.drop(d.reshape(len(d), -1).float() * MESH_INPUT_SCALE))


class GeometryNet(nn.Module):
    """The mesh branch alone: one logit per AU from the expression's shape."""

    input_kinds = ("mesh",)

    def __init__(self, n_outputs: int, dim: int = 64):
        super().__init__()
        self.encoder = MeshEncoder(dim)
        self.head = nn.Linear(dim, n_outputs)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(self.head(self.encoder(x)), None)


class FusionNet(nn.Module):
    """PAttNet (multi-label) on the patches + :class:`GeometryNet` on the mesh, gated per AU."""

    input_kinds = ("patches", "mesh")

    def __init__(self, patch_net: nn.Module, n_outputs: int, dim: int = 64):
        super().__init__()
        self.patch = patch_net
        self.geometry = GeometryNet(n_outputs, dim)
        # gate logits start at 0: each AU begins with an even mix of the two branches
        self.gate = nn.Parameter(torch.zeros(n_outputs))

    def forward(self, x: dict[str, torch.Tensor]) -> ModelOutput:
        p = self.patch(x["patches"])
        g = self.geometry(x["mesh"])
        w = torch.sigmoid(self.gate.float())
        lp, lg = p.logits.float(), g.logits.float()
        return ModelOutput(w * lp + (1 - w) * lg, p.attention, (lp, lg))

    def branch_logits(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 2, A): each branch's own logits, patches first (``ModelOutput.aux``)."""
        return torch.stack(self(x).aux, dim=1)

    @torch.no_grad()
    def fit_gates(self, branch: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor],
                  steps: int = 300) -> None:
        """Set each AU's gate to minimise ``loss`` (the training loss against held-out labels,
        a function of the mixed logits) given the held-out frames' ``branch`` logits
        (:meth:`branch_logits`)."""
        g = self.gate.detach().float().clone().requires_grad_(True)
        opt = torch.optim.Adam([g], lr=0.1)
        lp, lg = branch[:, 0].detach(), branch[:, 1].detach()
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                w = torch.sigmoid(g)
                loss(w * lp + (1 - w) * lg).backward()
                opt.step()
        self.gate.copy_(g.detach().clamp(-8.0, 8.0))

    def gates(self) -> torch.Tensor:
        """Each AU's share of the patch branch in [0, 1] (the rest is the mesh's)."""
        return torch.sigmoid(self.gate.detach().float())


__all__ = ["MESH_INPUT_SCALE", "FusionNet", "GeometryNet", "MeshEncoder"]
