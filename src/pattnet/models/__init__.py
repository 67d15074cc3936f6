"""Model registry, timm style: ``create_model(name, aus=..., **cfg)``.

Names:

- ``pattnet``: the paper, sigmoid patch attention, one network per AU.
- ``pattnet-softmax``: the paper's softmax-attention ablation, one network per AU.
- ``pattnet-multilabel``: beyond the paper: shared encoders, one context vector and head per AU,
  all AUs in one forward pass, an AU x patch attention map per frame.
- ``single-patch``: baseline CNN on one patch (``patch=1..9``), one network per AU.
- ``holistic``: baseline CNN on the 200x200 registered face, one network per AU.
- ``pattnet-geometry``: beyond the paper: a linear model (two linear layers, no non-linearity
  between them) on the canonical mesh's displacement from the person's reference
  (:mod:`pattnet.models.geometry` says why linear), all AUs in one network.
- ``pattnet-fusion``: beyond the paper: ``pattnet-multilabel`` and ``pattnet-geometry`` side by
  side, mixed per AU by a learned gate; attention maps as PAttNet's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pattnet.config import from_dict
from pattnet.constants import BP4D_AUS
from pattnet.errors import PattnetError
from pattnet.models.networks import AUModel, ModelConfig, ModelOutput, build

_REGISTRY: dict[str, tuple[Callable[..., AUModel], str]] = {}


def register_model(name: str, description: str) -> Callable:
    def deco(fn: Callable[..., AUModel]) -> Callable[..., AUModel]:
        _REGISTRY[name] = (fn, description)
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe_models() -> dict[str, str]:
    return {k: v[1] for k, v in sorted(_REGISTRY.items())}


def _cfg(kwargs: dict[str, Any]) -> ModelConfig:
    return from_dict(ModelConfig, kwargs)


@register_model("pattnet", "PAttNet, sigmoid patch attention, one network per AU (the paper)")
def _pattnet(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("pattnet", list(aus), _cfg(kw), mode, "pattnet", "sigmoid")


@register_model("pattnet-softmax", "PAttNet with softmax attention (paper's ablation)")
def _pattnet_softmax(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("pattnet-softmax", list(aus), _cfg(kw), mode, "pattnet", "softmax")


@register_model("pattnet-multilabel",
                "shared patch encoders, one attention context + head per AU, one forward pass")
def _pattnet_multilabel(aus: Sequence[int], mode: str = "multilabel", **kw: Any) -> AUModel:
    return build("pattnet-multilabel", list(aus), _cfg(kw), mode, "pattnet", "sigmoid")


@register_model("pattnet-geometry",
                "linear on the canonical face mesh's displacement from the person's reference "
                "(no hidden non-linearity), one output per AU")
def _geometry(aus: Sequence[int], mode: str = "multilabel", **kw: Any) -> AUModel:
    return build("pattnet-geometry", list(aus), _cfg(kw), mode, "geometry")


@register_model("pattnet-fusion",
                "PAttNet multi-label on the patches + the mesh model, mixed per AU by a learned "
                "gate (attention maps as PAttNet's)")
def _fusion(aus: Sequence[int], mode: str = "multilabel", **kw: Any) -> AUModel:
    return build("pattnet-fusion", list(aus), _cfg(kw), mode, "fusion", "sigmoid")


@register_model("single-patch", "baseline CNN on one patch P1..P9, one network per AU")
def _single_patch(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("single-patch", list(aus), _cfg(kw), mode, "single-patch")


@register_model("holistic", "baseline CNN on the 200x200 registered face, one network per AU")
def _holistic(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("holistic", list(aus), _cfg(kw), mode, "holistic")


def create_model(name: str, aus: Sequence[int] = BP4D_AUS, **kwargs: Any) -> AUModel:
    """Build a registered model for ``aus``; ``kwargs`` are :class:`ModelConfig` fields or ``mode``.

    ``mode`` is ``per-au`` (independent networks, the paper) or ``multilabel`` (one network with
    A outputs).
    """
    if name not in _REGISTRY:
        raise PattnetError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    mode = kwargs.get("mode")
    if mode is not None and mode not in ("per-au", "multilabel"):
        raise PattnetError(f"mode must be 'per-au' or 'multilabel', not {mode!r}")
    if not aus:
        raise PattnetError("a model needs at least one AU")
    return _REGISTRY[name][0](aus, **kwargs)


def model_from_settings(settings: Mapping[str, Any], aus: Sequence[int]) -> AUModel:
    """The model a stage's settings name (``model``, ``mode`` and the :class:`ModelConfig`
    fields among them; other keys are ignored).

    Why a mapping: training builds from its config and export rebuilds from the run's saved
    ``config.yaml``; both go through here, so a run always exports as the model it trained.
    """
    kw: dict[str, Any] = {k: settings[k] for k in ("order", "attention_bias", "init", "mesh_dim")
                          if k in settings}
    name = str(settings.get("model", "pattnet"))
    if name == "single-patch" and "patch" in settings:
        kw["patch"] = settings["patch"]
    if settings.get("mode") is not None:
        kw["mode"] = settings["mode"]
    return create_model(name, aus=aus, **kw)


__all__ = ["AUModel", "ModelConfig", "ModelOutput", "create_model", "list_models",
           "model_from_settings", "register_model", "describe_models"]
