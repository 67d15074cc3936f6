"""Arrays from the store or the detector -> the normalised float tensors models take.

One function for training and inference, so both see identical inputs.

* Images (``patches``, ``holistic``: uint8): the paper's normalisation, mean 0.5, std 0.5 per
  channel on [0, 1] pixels; or, with a ``reference`` (a person's mean face, see
  :mod:`pattnet.store.reference`), the difference from that reference divided by ``255 * std``,
  which removes who the person is and leaves how the face differs from its usual look. With
  ``channels_last`` each patch view is a dense NHWC tensor, which is what oneDNN's fast (bf16)
  convolutions want on CPU.
* The mesh (``mesh``: float32 canonical landmarks): always its displacement from a reference
  mesh (the person's mean mesh, or the population's for a face seen once), in interocular
  distances, so that a model sees what the expression does and not whose face it is. A frame
  without a mesh (NaN) becomes no displacement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import torch

#: The arrays a model can take, by kind: the 9 patches, the holistic face, the canonical mesh.
IMAGE_KINDS = ("patches", "holistic")
MESH = "mesh"
KINDS = (*IMAGE_KINDS, MESH)


@cache
def interocular_distance() -> float:
    """The canonical frame's distance between the iris centres, in canonical pixels."""
    from pattnet.registration.template import load_template

    return load_template().interocular


def mesh_input(mesh: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor,
               device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> torch.Tensor:
    """(B, 478, 3) canonical meshes and references (same shape, or one (478, 3) for all) ->
    displacement in interocular distances, NaN (no mesh) as zero."""
    x = torch.as_tensor(mesh).to(device, non_blocking=True).float()
    ref = torch.as_tensor(reference).to(device, non_blocking=True).float()
    if x.ndim != 3 or x.shape[1:] != ref.shape[-2:]:
        raise ValueError(f"meshes must be (B, 478, 3) like their reference, got {tuple(x.shape)} "
                         f"and {tuple(ref.shape)}")
    d = torch.nan_to_num((x - ref) / interocular_distance(), nan=0.0)
    return d if dtype is None else d.to(dtype)


def model_inputs(
    arrays: Mapping[str, np.ndarray | torch.Tensor],
    kinds: Sequence[str],
    mean: float = 0.5,
    std: float = 0.5,
    channels_last: bool = True,
    device: torch.device | str = "cpu",
    references: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """What a model with ``input_kinds`` = ``kinds`` takes: one tensor for a single kind, a dict
    by kind for several. ``references`` by kind: an image kind's is used when given (person
    normalisation), the mesh's is required."""
    refs = references or {}
    out: dict[str, torch.Tensor] = {}
    for kind in kinds:
        if kind == MESH:
            if MESH not in refs:
                raise ValueError("a mesh input needs its reference mesh")
            out[kind] = mesh_input(arrays[kind], refs[MESH], device, dtype)
        else:
            out[kind] = to_model_input(arrays[kind], kind, mean, std, channels_last, device,
                                       refs.get(kind), dtype)
    return out[kinds[0]] if len(kinds) == 1 else out


def to_model_input(
    images: np.ndarray | torch.Tensor,
    kind: str,
    mean: float = 0.5,
    std: float = 0.5,
    channels_last: bool = True,
    device: torch.device | str = "cpu",
    reference: np.ndarray | torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """(B, 9, 100, 100, 3) uint8 -> (B, 9, 3, 100, 100); (B, 200, 200, 3) -> (B, 3, 200, 200).

    ``reference`` (same shape as ``images``, float, 0-255 scale): subtracted instead of ``mean``.
    ``dtype`` (e.g. the autocast dtype): the result is rounded to it once, here, instead of by
    autocast in every encoder's first convolution (108 times a batch for the per-AU model); the
    numbers the convolutions see are the same.
    """
    x = _normalised(images, kind, mean, std, channels_last, device, reference)
    return x if dtype is None or dtype == x.dtype else x.to(dtype)  # keeps the memory layout


def _normalised(images: np.ndarray | torch.Tensor, kind: str, mean: float, std: float,
                channels_last: bool, device: torch.device | str,
                reference: np.ndarray | torch.Tensor | None) -> torch.Tensor:
    x = torch.as_tensor(images).to(device, non_blocking=True)
    scale = 1.0 / (255.0 * std)
    shift = mean / std
    if reference is not None:
        ref = torch.as_tensor(reference).to(device, non_blocking=True)
        if ref.shape != x.shape:
            raise ValueError(f"reference {tuple(ref.shape)} does not match images {tuple(x.shape)}")
        x = x.float() - ref.float()
        shift = 0.0
    if kind == "patches":
        if x.ndim != 5 or x.shape[1] != 9 or x.shape[-1] != 3:
            raise ValueError(f"patches must be (B, 9, H, W, 3), got {tuple(x.shape)}")
        if channels_last:
            # (9, B, H, W, 3) dense, then view as (B, 9, 3, H, W): each patch slice is NHWC-dense.
            t = x.permute(1, 0, 2, 3, 4).contiguous().float().mul_(scale).sub_(shift)
            return t.permute(0, 1, 4, 2, 3).transpose(0, 1)
        return x.permute(0, 1, 4, 2, 3).float().mul_(scale).sub_(shift).contiguous()
    if kind == "holistic":
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"holistic faces must be (B, H, W, 3), got {tuple(x.shape)}")
        t = x.float().mul_(scale).sub_(shift).permute(0, 3, 1, 2)
        return t if channels_last else t.contiguous()
    raise ValueError(f"unknown input kind {kind!r}")
