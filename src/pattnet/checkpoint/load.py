"""Checkpoint file -> ready model, refusing any file whose model would not fit what it claims.

A checkpoint that loads but does not fit (other AUs, other template, other input normalisation)
gives plausible but wrong probabilities, so every mismatch is an error naming the file.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from pattnet.checkpoint.format import (
    Checkpoint,
    CheckpointError,
    _threshold_source,
    _thresholds,
    read_checkpoint,
)
from pattnet.constants import HOLISTIC_SHAPE, MESH_SHAPE, PATCH_SHAPE, au_name
from pattnet.errors import PattnetError
from pattnet.store.reference import REFERENCES


def _check_template(p: Path, data: dict[str, Any]) -> None:
    """Patches cut from a differently registered face are not what the model learned from."""
    from pattnet.registration.template import load_template

    here = load_template().version
    if data["template_version"] != here:
        raise CheckpointError(
            f"{p}: trained on faces registered with template {data['template_version']!r}, "
            f"but this pattnet registers with {here!r}; use the pattnet version that made it "
            "(or pass check_template=False to accept the difference)")


def _build_model(p: Path, data: dict[str, Any], aus: list[int]) -> Any:
    """The untrained model the file describes; a config field this version lacks is refused."""
    from pattnet.models import create_model
    from pattnet.models.networks import ModelConfig

    cfg = data["model_config"]
    known = {f.name for f in fields(ModelConfig)}
    if not isinstance(cfg, dict) or set(cfg) - known:
        raise CheckpointError(f"{p}: model config has unknown fields "
                              f"{sorted(set(cfg) - known) if isinstance(cfg, dict) else cfg!r}; "
                              "written by a newer pattnet?")
    try:
        return create_model(data["model"], aus=aus, mode=data["mode"], **cfg)
    except (PattnetError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{p}: cannot build model {data['model']!r}: {exc}") from exc


def _weight_mismatch(state: dict[str, Any], want: dict[str, torch.Tensor]) -> list[str]:
    """What is missing, extra or of the wrong shape, one example each; empty when they fit."""
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    wrong = sorted(k for k in set(want) & set(state)
                   if not isinstance(state[k], torch.Tensor) or state[k].shape != want[k].shape)
    detail = []
    if missing:
        detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        got = tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k])
        detail.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {got} vs {tuple(want[k].shape)})")
    return detail


def _check_weights(p: Path, data: dict[str, Any], model: Any, aus: list[int]) -> dict[str, Any]:
    """The state dict, refused unless it fits ``model`` exactly (e.g. not 8 heads for 12 AUs)."""
    state = data["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{p}: state_dict is not a mapping")
    detail = _weight_mismatch(state, model.state_dict())
    if detail:
        raise CheckpointError(
            f"{p}: weights do not match a {data['model']} ({data['mode']}) model for "
            f"{len(aus)} AUs ({', '.join(au_name(a) for a in aus)}): " + "; ".join(detail))
    return state


def _read_normalisation(p: Path, data: dict[str, Any], kinds: tuple[str, ...]
                        ) -> tuple[str, Any, Any]:
    """``normalize``, the population reference face of a subject model and the population mean
    mesh of a model of the mesh (numpy float32, None where the model needs none)."""
    normalize = str(data.get("normalize", "global"))
    if normalize not in ("global", "subject"):
        raise CheckpointError(f"{p}: unknown normalize {normalize!r}; written by a newer pattnet?")
    ref = mesh = None
    image = next((k for k in kinds if k != "mesh"), None)
    if normalize == "subject" and image is not None:
        want_shape = PATCH_SHAPE if image == "patches" else HOLISTIC_SHAPE
        ref = _tensor(p, data.get("reference"), want_shape, "subject-normalised model without a "
                      "valid reference face")
    if "mesh" in kinds:
        mesh = _tensor(p, data.get("mesh_reference"), MESH_SHAPE, "model of the mesh without a "
                       "valid population mean mesh")
    return normalize, ref, mesh


def _tensor(p: Path, value: Any, shape: tuple[int, ...], what: str) -> Any:
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        raise CheckpointError(f"{p}: {what} (expected a {shape} tensor)")
    return value.float().numpy()


def load_checkpoint(
    path: str | Path,
    device: torch.device | str = "cpu",
    *,
    check_template: bool = True,
    channels_last: bool = True,
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` into a ready model (eval mode).

    Refused with a :class:`CheckpointError`: an unknown model name or config, weights that do
    not fit the AU list (e.g. 12 AUs in the list, 8 heads in the weights), and — unless
    ``check_template`` is False — a registration template other than this install's, because
    patches cut from a differently registered face are not what the model learned from.
    """
    p = Path(path)
    data = read_checkpoint(p)
    aus = [int(a) for a in data["aus"]]
    if check_template:
        _check_template(p, data)
    model = _build_model(p, data, aus)
    model.load_state_dict(_check_weights(p, data, model, aus))
    model.eval()
    model = model.to(torch.device(device))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    try:
        threshold = _thresholds(data["threshold"], len(aus))
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from exc
    normalize, reference, mesh_reference = _read_normalisation(p, data, model.input_kinds)
    person_reference = str(data.get("person_reference", "mean"))
    if person_reference not in REFERENCES:
        raise CheckpointError(f"{p}: unknown person_reference {person_reference!r}; written by "
                              "a newer pattnet?")
    source_of = data.get("threshold_source")
    try:
        threshold_source = None if source_of is None else _threshold_source(source_of, len(aus))
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from exc
    return Checkpoint(
        model=model, aus=aus, threshold=threshold, mean=float(data["mean"]),
        std=float(data["std"]), template_version=str(data["template_version"]),
        pattnet_version=str(data.get("pattnet_version", "?")), path=p,
        source=dict(data.get("source") or {}), normalize=normalize, reference=reference,
        mesh_reference=mesh_reference, person_reference=person_reference,
        threshold_source=threshold_source,
    )
