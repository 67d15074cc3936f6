"""Stage configs: every numeric setting has a range, and a value outside it (or an unknown key)
is refused before a stage writes anything, with the key named in one line."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing

import annotated_types
import pytest

import pattnet
from pattnet.config import STAGE_CONFIG, from_dict, load_config, to_dict, validate
from pattnet.errors import ConfigError

# Settings that are any number by nature (a mean pixel value may be anything).
UNBOUNDED = {"TrainConfig.mean"}


def _stage_configs() -> list[type]:
    found = {}
    for mod in pkgutil.walk_packages(pattnet.__path__, "pattnet."):
        if mod.name.endswith("__main__") or "_fused_kernels" in mod.name:
            continue
        m = importlib.import_module(mod.name)
        for obj in vars(m).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                    and obj.__dict__.get("__pydantic_config__") is STAGE_CONFIG):
                found[obj.__qualname__] = obj
    return [found[k] for k in sorted(found)]


CONFIGS = _stage_configs()


def _numeric_fields(cls: type) -> list[tuple[str, typing.Any, list[typing.Any]]]:
    out = []
    for name, tp in typing.get_type_hints(cls, include_extras=True).items():
        if name.startswith("__"):
            continue
        union = typing.get_origin(tp) in (typing.Union, types.UnionType)
        args = [a for a in typing.get_args(tp) if a is not type(None)] if union else [tp]
        for a in args:
            base = typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
            if base in (int, float):
                meta = list(typing.get_args(a)[1:]) if typing.get_origin(a) is typing.Annotated else []
                out.append((name, base, meta))
    return out


def test_the_stage_configs_are_found():
    names = {c.__name__ for c in CONFIGS}
    assert {"TrainConfig", "RegistrationConfig", "ModelConfig", "DemoConfig"} <= names


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_setting_has_a_range(cls):
    unbounded = []
    for name, _, meta in _numeric_fields(cls):
        bounds = [m for m in _flatten(meta) if isinstance(m, (annotated_types.Gt, annotated_types.Ge,
                                                             annotated_types.Lt, annotated_types.Le))]
        if not bounds and f"{cls.__name__}.{name}" not in UNBOUNDED:
            unbounded.append(name)
    assert unbounded == []


def _flatten(meta):
    for m in meta:
        if hasattr(m, "metadata"):  # a pydantic FieldInfo carries its constraints here
            yield from m.metadata
        else:
            yield m


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_defaults_are_valid_and_survive_a_round_trip(cls):
    cfg = cls()
    assert validate(cfg) == cfg
    assert from_dict(cls, to_dict(cfg)) == cfg


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_values_outside_the_range_are_refused_with_the_key_named(cls):
    checked = 0
    for name, base, meta in _numeric_fields(cls):
        for m in _flatten(meta):
            bad = None
            if isinstance(m, (annotated_types.Gt, annotated_types.Ge)):
                bad = (m.gt if isinstance(m, annotated_types.Gt) else m.ge) - 1
            elif isinstance(m, (annotated_types.Lt, annotated_types.Le)):
                bad = (m.lt if isinstance(m, annotated_types.Lt) else m.le) + 1
            if bad is None:
                continue
            with pytest.raises(ConfigError, match=rf"config key '{name}'") as err:
                from_dict(cls, {name: base(bad)})
            assert "\n" not in str(err.value)
            with pytest.raises(ConfigError, match=rf"config key '{name}'"):
                validate(dataclasses.replace(cls(), **{name: base(bad)}))  # built in Python
            checked += 1
    assert checked >= sum(1 for n, _, _ in _numeric_fields(cls)
                          if f"{cls.__name__}.{n}" not in UNBOUNDED)


def test_unknown_and_mistyped_keys():
    from pattnet.demo import DemoConfig
    from pattnet.train import TrainConfig

    with pytest.raises(ConfigError, match="unknown config key learning_rate for TrainConfig"):
        load_config(TrainConfig, None, ["learning_rate=0.1"])
    with pytest.raises(ConfigError, match="config key 'epochs': input should be a valid integer"):
        load_config(TrainConfig, None, ["epochs=2.5"])
    with pytest.raises(ConfigError, match="config key 'train.batch_size'"):
        load_config(DemoConfig, None, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="unknown config key train.zz for TrainConfig"):
        load_config(DemoConfig, None, ["train.zz=1"])
    assert load_config(TrainConfig, None, ["lr=1e-2", "aus=[1, 12]"]).aus == [1, 12]
