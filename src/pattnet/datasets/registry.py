"""Choosing an adapter: by name, with its options checked, or guessed from a root's layout.

Why one table: the CLI, prepare and stats all name datasets the same way (``--dataset``), and an
option an adapter does not take must fail loudly rather than be ignored.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pattnet.datasets.base import DatasetAdapter
from pattnet.datasets.bp4d import BP4DAdapter
from pattnet.datasets.disfa import DISFAAdapter
from pattnet.datasets.manifest import ManifestAdapter
from pattnet.errors import PattnetError

ADAPTERS: dict[str, type[DatasetAdapter]] = {
    "bp4d": BP4DAdapter,
    "disfa": DISFAAdapter,
    "manifest": ManifestAdapter,
}


def list_adapters() -> list[str]:
    return list(ADAPTERS)


def get_adapter(name: str, root: str | Path, **opts: Any) -> DatasetAdapter:
    """The adapter ``name`` on ``root``. Options that are None are left at their defaults, so a
    CLI can pass its flags through unconditionally; an option the adapter does not take is an
    error rather than being ignored."""
    cls = ADAPTERS.get(name.lower())
    if cls is None:
        raise PattnetError(f"unknown dataset {name!r}; choose from {', '.join(ADAPTERS)}")
    opts = {k: v for k, v in opts.items() if v is not None}
    params = inspect.signature(cls.__init__).parameters
    unknown = [k for k in opts if k not in params or k in ("self", "root")]
    if unknown:
        accepted = [p for p in params if p not in ("self", "root")]
        raise PattnetError(
            f"the {name} adapter has no option {', '.join(unknown)} "
            f"(it takes {', '.join(accepted)})"
        )
    return cls(root, **opts)


def detect_dataset(root: str | Path) -> str:
    """Guess the adapter from the layout, so ``--dataset`` can usually be left out."""
    p = Path(root).expanduser()
    if p.is_file() and p.suffix.lower() == ".csv":
        return "manifest"
    if (p / BP4DAdapter.LABEL_DIR).is_dir():
        return "bp4d"
    if (p / DISFAAdapter.LABEL_DIR).is_dir():
        return "disfa"
    if (p / "manifest.csv").is_file():
        return "manifest"
    if not p.exists():
        raise PattnetError(f"{p}: no such file or directory")
    raise PattnetError(
        f"{p}: cannot tell the dataset: expected AUCoding/AU_OCC/ (BP4D), ActionUnit_Labels/ "
        "(DISFA), a manifest CSV, or a patch store (store.json); pass --dataset"
    )
