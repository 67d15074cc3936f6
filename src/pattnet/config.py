"""Typed stage configuration: dataclasses with the paper's values as defaults.

Every stage owns one dataclass. A YAML or TOML file, or ``key=value`` overrides from the command
line, can change any field; unknown keys, wrongly typed values and numbers out of range are
refused with the key named, because a silently ignored typo in a training config costs a day of
compute. Result folders store the resolved config (:func:`save_config`) so that every number can
be traced to what made it.

The checking is pydantic's, driven by each field's annotation (``PositiveInt``,
``Annotated[float, Field(gt=0)]``, ``Literal[...]``): the allowed range of a setting is written
once, beside its default, and :func:`validate` applies it wherever a config enters a stage (a
file, an override, or a dataclass built in Python). The dataclasses stay plain ones, so
building or copying a config costs nothing and stage code needs no pydantic.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from pattnet.errors import ConfigError

T = TypeVar("T")

#: Set as ``__pydantic_config__`` on every stage config: no unknown keys; numbers given where a
#: name is expected are taken as text (``--set dataset=4``); no NaN or infinity in any number
#: (``std=inf`` would train on zeros, ``lr=inf`` fail an epoch later); a dataclass built in
#: Python is checked again, field by field, when it enters a stage.
STAGE_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True, allow_inf_nan=False,
                          revalidate_instances="always")


_ADAPTERS: dict[type, TypeAdapter] = {}


def _adapter(cls: type) -> TypeAdapter:
    """pydantic's validator of ``cls``, built once per class (building one costs milliseconds)."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def _one_line(cls: type, exc: ValidationError, prefix: str) -> ConfigError:
    """pydantic's report as one line per problem, each naming the key as the user wrote it."""
    problems = []
    for err in exc.errors():
        key = prefix + ".".join(str(p) for p in err["loc"])
        if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            owner = _owner(cls, err["loc"][:-1])
            known = ", ".join(f.name for f in dataclasses.fields(owner))
            problems.append(f"unknown config key {key} for {owner.__name__}; known: {known}")
        else:
            problems.append(f"config key '{key}': {err['msg'][0].lower()}{err['msg'][1:]}, got "
                            f"{err.get('input')!r}")
    return ConfigError("; ".join(problems))


def _owner(cls: type, loc: tuple[Any, ...]) -> Any:
    """The dataclass that holds the field at ``loc`` (nested configs, like the demo's ``train``)."""
    for part in loc:
        tp = typing.get_type_hints(cls).get(str(part))
        if not (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
            break
        cls = tp
    return cls


def validate(cfg: T, prefix: str = "") -> T:
    """``cfg`` checked against its fields' types and ranges: the one place a stage's settings are
    validated, before the stage writes anything. Returns a checked copy (strings from a file or
    an override become the field's type)."""
    try:
        return _adapter(type(cfg)).validate_python(cfg)
    except ValidationError as exc:
        raise _one_line(type(cfg), exc, prefix) from None


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from a plain mapping, refusing unknown keys, mistyped values and numbers out
    of range."""
    if not isinstance(data, dict):
        raise ConfigError(f"config for {cls.__name__} must be a mapping, got {type(data).__name__}")
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise _one_line(cls, exc, prefix) from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data view of a config dataclass (tuples become lists so YAML stays readable)."""
    return _adapter(type(cfg)).dump_python(cfg, mode="json")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a mapping."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder; give a config file (.yaml, .yml or .toml)")
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        if p.suffix == ".toml":
            with p.open("rb") as fh:
                data = tomllib.load(fh)
        else:
            data = yaml.safe_load(p.read_text()) or {}
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{p}: not valid {'TOML' if p.suffix == '.toml' else 'YAML'}: {first}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of config keys")
    return data


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=0.01", "model.attention=softmax"]`` -> nested mapping (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Defaults of ``cls``, then the file at ``path``, then ``key=value`` overrides."""
    data = to_dict(cls())
    if path is not None:
        data = merge(data, read_config_file(path))
    data = merge(data, parse_overrides(overrides))
    return from_dict(cls, data)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML atomically."""
    from pattnet.io.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
