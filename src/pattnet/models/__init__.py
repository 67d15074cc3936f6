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
from dataclasses import dataclass
from typing import Any

from pattnet.config import from_dict
from pattnet.constants import BP4D_AUS
from pattnet.errors import PattnetError
from pattnet.models.networks import AUModel, ModelConfig, ModelOutput, build


@dataclass(frozen=True)
class Branch:
    """A part of a model that predicts on its own (``ModelOutput.aux[index]``) and is, weights
    and all, the registered model ``model`` under ``prefix`` of the parent's ``net``: so one
    training of the parent also trains, evaluates and exports the branch as a model of its own
    (``pattnet.train.branch_run``)."""

    key: str  # what the branch sees: "patches" or "mesh"
    model: str
    prefix: str
    index: int


@dataclass(frozen=True)
class ModelFacts:
    """Everything pattnet knows of a registered model, in one place (timm pairs each name with
    its config the same way): CLI help, ``pattnet models``, the evaluation and report tables and
    their order, the attention figure and one-training branches all read it from here.

    ``table3`` / ``table1``: the model's place among the columns of the paper's Table 3 (single
    patches first, the paper's network last) and of Tables 1-2 (the paper's network first);
    models without a place follow in registration order. ``paper``: the paper's row printed
    beside the model's (``pattnet.paper``), None for models the paper has none for.
    ``attention``: the model reports patch attention (Figure 4). ``one_patch``: the model sees
    one patch (``patch=1..9``), so it is run once per patch. ``grid``: its place in ``pattnet
    reproduce``'s grid of the paper's experiments (None: not in it).
    """

    name: str
    description: str
    build: Callable[..., AUModel]
    table3: int | None = None
    table1: int | None = None
    paper: str | None = None
    attention: bool = False
    branches: tuple[Branch, ...] = ()
    one_patch: bool = False
    grid: int | None = None


_REGISTRY: dict[str, ModelFacts] = {}


def register_model(name: str, description: str, *, table3: int | None = None,
                   table1: int | None = None, paper: str | None = None, attention: bool = False,
                   branches: Sequence[Branch] = (), one_patch: bool = False,
                   grid: int | None = None) -> Callable:
    """Register a builder ``fn(aus, mode=..., **ModelConfig fields) -> AUModel`` under ``name``
    with its facts (:class:`ModelFacts`)."""
    def deco(fn: Callable[..., AUModel]) -> Callable[..., AUModel]:
        _REGISTRY[name] = ModelFacts(name, description, fn, table3, table1, paper, attention,
                                     tuple(branches), one_patch, grid)
        return fn

    return deco


def model_facts(name: str) -> ModelFacts:
    """The facts of registered model ``name``; an unknown name is one line naming the known."""
    if name not in _REGISTRY:
        raise PattnetError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_branches(name: str) -> tuple[Branch, ...]:
    """The branches of registered model ``name`` that are models of their own (none for most)."""
    return model_facts(name).branches


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe_models() -> dict[str, str]:
    return {k: v.description for k, v in sorted(_REGISTRY.items())}


def table_rank(name: str, table: str = "table3") -> int:
    """Sort key of a model among a table's columns (``table3`` or ``table1``): its place, then
    the models without one in registration order, then names pattnet does not know."""
    names = list(_REGISTRY)
    if name not in _REGISTRY:
        return 2 * len(names)
    place = getattr(_REGISTRY[name], table)
    return place if place is not None else len(names) + names.index(name)


def one_patch_model(name: str) -> bool:
    """Whether ``name`` is a registered model that sees one patch (False for unknown names)."""
    return name in _REGISTRY and _REGISTRY[name].one_patch


def grid_models() -> list[str]:
    """The models of the paper's experiment grid, in the grid's order."""
    return sorted((n for n, f in _REGISTRY.items() if f.grid is not None),
                  key=lambda n: _REGISTRY[n].grid or 0)


def attention_models() -> list[str]:
    """The models that report patch attention, in Table 1's order."""
    return sorted((n for n, f in _REGISTRY.items() if f.attention),
                  key=lambda n: table_rank(n, "table1"))


def _cfg(kwargs: dict[str, Any]) -> ModelConfig:
    return from_dict(ModelConfig, kwargs)


@register_model("pattnet", "PAttNet, sigmoid patch attention, one network per AU (the paper)",
                table3=3, table1=0, paper="pattnet", attention=True, grid=0)
def _pattnet(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("pattnet", list(aus), _cfg(kw), mode, "pattnet", "sigmoid")


@register_model("pattnet-softmax", "PAttNet with softmax attention (paper's ablation)",
                table3=2, table1=2, paper="pattnet-softmax", attention=True, grid=1)
def _pattnet_softmax(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("pattnet-softmax", list(aus), _cfg(kw), mode, "pattnet", "softmax")


@register_model("pattnet-multilabel",
                "shared patch encoders, one attention context + head per AU, one forward pass",
                # the paper's sigmoid attention trained as one network: beside the paper's row
                table3=4, table1=1, paper="pattnet", attention=True, grid=4)
def _pattnet_multilabel(aus: Sequence[int], mode: str = "multilabel", **kw: Any) -> AUModel:
    return build("pattnet-multilabel", list(aus), _cfg(kw), mode, "pattnet", "sigmoid")


@register_model("pattnet-geometry",
                "linear on the canonical face mesh's displacement from the person's reference "
                "(no hidden non-linearity), one output per AU")
def _geometry(aus: Sequence[int], mode: str = "multilabel", **kw: Any) -> AUModel:
    return build("pattnet-geometry", list(aus), _cfg(kw), mode, "geometry")


@register_model("pattnet-fusion",
                "PAttNet multi-label on the patches + the mesh model, mixed per AU by a learned "
                "gate (attention maps as PAttNet's)", attention=True,
                branches=(Branch("patches", "pattnet-multilabel", "net.patch.", 0),
                          Branch("mesh", "pattnet-geometry", "net.geometry.", 1)))
def _fusion(aus: Sequence[int], mode: str = "multilabel", **kw: Any) -> AUModel:
    return build("pattnet-fusion", list(aus), _cfg(kw), mode, "fusion", "sigmoid")


@register_model("single-patch", "baseline CNN on one patch P1..P9, one network per AU",
                table3=0, table1=4, one_patch=True, grid=3)
def _single_patch(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("single-patch", list(aus), _cfg(kw), mode, "single-patch")


@register_model("holistic", "baseline CNN on the 200x200 registered face, one network per AU",
                table3=1, table1=3, paper="holistic", grid=2)
def _holistic(aus: Sequence[int], mode: str = "per-au", **kw: Any) -> AUModel:
    return build("holistic", list(aus), _cfg(kw), mode, "holistic")


def create_model(name: str, aus: Sequence[int] = BP4D_AUS, **kwargs: Any) -> AUModel:
    """Build a registered model for ``aus``; ``kwargs`` are :class:`ModelConfig` fields or ``mode``.

    ``mode`` is ``per-au`` (independent networks, the paper) or ``multilabel`` (one network with
    A outputs).
    """
    facts = model_facts(name)
    mode = kwargs.get("mode")
    if mode is not None and mode not in ("per-au", "multilabel"):
        raise PattnetError(f"mode must be 'per-au' or 'multilabel', not {mode!r}")
    if not aus:
        raise PattnetError("a model needs at least one AU")
    return facts.build(aus, **kwargs)


def model_from_settings(settings: Mapping[str, Any], aus: Sequence[int]) -> AUModel:
    """The model a stage's settings name (``model``, ``mode`` and the :class:`ModelConfig`
    fields among them; other keys are ignored).

    Why a mapping: training builds from its config and export rebuilds from the run's saved
    ``config.yaml``; both go through here, so a run always exports as the model it trained.
    """
    kw: dict[str, Any] = {k: settings[k] for k in ("order", "attention_bias", "init", "mesh_dim")
                          if k in settings}
    name = str(settings.get("model", "pattnet"))
    if one_patch_model(name) and "patch" in settings:
        kw["patch"] = settings["patch"]
    if settings.get("mode") is not None:
        kw["mode"] = settings["mode"]
    return create_model(name, aus=aus, **kw)


__all__ = ["AUModel", "Branch", "ModelConfig", "ModelFacts", "attention_models", "grid_models",
           "one_patch_model", "model_branches",
           "model_facts", "table_rank", "ModelOutput", "create_model", "list_models",
           "model_from_settings", "register_model", "describe_models"]
