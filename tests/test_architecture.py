"""The shape of the code: the map in docs/architecture.md matches the modules on disk, stages do
not reach into each other's private names, units stay short, and each shared fact (sizes, AU
lists, the run folder's file names, atomic writes, the video probe) has one home that every
stage uses.

The layering itself is import-linter's contract (pyproject ``[tool.importlinter]``), run in CI.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pattnet
from pattnet import constants

SRC = Path(pattnet.__file__).parent
REPO = SRC.parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _trees() -> dict[str, ast.Module]:
    return {name: ast.parse(f.read_text(), str(f)) for name, f in _modules().items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# --------------------------------------------------------------------------------------------
# the map


def test_architecture_map_lists_every_module_and_nothing_else():
    doc = (REPO / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"`(pattnet(?:\.\w+)+|pattnet)`", doc))
    on_disk = {m for m, f in _modules().items() if f.name not in ("__init__.py", "__main__.py")}
    on_disk |= {m for m, f in _modules().items() if f.name == "__init__.py"
                and len(m.split(".")) == 2}  # each stage package is on the map too
    assert sorted(on_disk - mapped) == [], "modules missing from docs/architecture.md"
    stale = {m for m in mapped if m not in _modules()}
    assert sorted(stale) == [], "docs/architecture.md names modules that do not exist"


def test_python_dash_m_pattnet_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "pattnet", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "detect" in out.stdout and "train" in out.stdout


# --------------------------------------------------------------------------------------------
# boundaries and size


def test_stages_import_only_public_names_of_other_stages():
    bad = []
    for name, tree in _trees().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("pattnet"):
                continue
            if _stage(node.module) == _stage(name):
                continue
            private_mod = any(p.startswith("_") for p in node.module.split(".")[1:])
            names = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
            if private_mod or names:
                bad.append(f"{name}: from {node.module} import {', '.join(names) or '...'}")
    assert bad == []


def test_modules_and_functions_stay_short():
    long_modules = [f"{m} ({n} lines)" for m, f in _modules().items()
                    if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = []
    for name, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name} ({n} lines)")
    assert long_modules == [] and long_functions == []


# --------------------------------------------------------------------------------------------
# one source of truth

SHARED_CONSTANTS = ("BP4D_AUS", "DISFA_AUS", "CANONICAL_SIZE", "N_PATCHES", "PATCH_NAMES",
                    "BOX_SIZE", "PATCH_SIZE", "HOLISTIC_SIZE", "PATCH_SHAPE", "HOLISTIC_SHAPE")


def test_shared_constants_are_defined_only_in_constants():
    found = []
    for name, tree in _trees().items():
        if name == "pattnet.constants":
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                if isinstance(t, ast.Name) and t.id in SHARED_CONSTANTS:
                    found.append(f"{name}.{t.id}")
    assert found == []


def test_every_stage_agrees_on_the_frame_patches_and_sizes(tmp_path):
    from pattnet.paper import PAPER_AUS, PATCH_REGIONS
    from pattnet.patches import PATCH_BOXES, crop_patches
    from pattnet.registration import RegistrationConfig, load_template
    from pattnet.store import HOLISTIC_SHAPE, PATCH_SHAPE, frame_table, write_store

    assert len(PATCH_BOXES) == constants.N_PATCHES == len(constants.PATCH_NAMES)
    assert len(constants.PATCH_IDS) == constants.N_PATCHES
    for x0, y0, x1, y1 in PATCH_BOXES:
        assert x1 - x0 == y1 - y0 == constants.BOX_SIZE
        assert 0 <= x0 < x1 <= constants.CANONICAL_SIZE and 0 <= y0 < y1 <= constants.CANONICAL_SIZE
    assert sorted(PATCH_REGIONS) == list(range(1, constants.N_PATCHES + 1))
    assert tuple(PAPER_AUS) == constants.BP4D_AUS
    assert load_template().size == constants.CANONICAL_SIZE
    assert RegistrationConfig().output_size == constants.CANONICAL_SIZE
    frame = np.zeros((constants.CANONICAL_SIZE,) * 2 + (3,), np.uint8)
    patches, holistic = crop_patches(frame)
    assert patches.shape == PATCH_SHAPE == constants.PATCH_SHAPE
    assert holistic.shape == HOLISTIC_SHAPE == constants.HOLISTIC_SHAPE
    table = frame_table(["S"], ["T"], [0], np.ones((1, 1), np.int8), [1])
    store = write_store(tmp_path / "s", table, patches[None], holistic[None], [1])
    assert store.patches(np.array([0])).shape[1:] == PATCH_SHAPE
    assert store.holistic(np.array([0])).shape[1:] == HOLISTIC_SHAPE


RUN_FILES = ("config.yaml", "run.json", "references.npz", "split.json", "history.csv",
             "selected.json", "predictions.npz", "checkpoints")


def test_run_folder_file_names_live_only_in_runs():
    found = []
    for name, tree in _trees().items():
        if name == "pattnet.runs":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                hits = [f for f in RUN_FILES if node.value in (f, f"/{f}") or
                        node.value.startswith("epoch-")]
                if hits and not _in_docstring(tree, node):
                    found.append(f"{name}: {node.value!r}")
    assert found == []


def _in_docstring(tree: ast.Module, node: ast.Constant) -> bool:
    for n in ast.walk(tree):
        body = getattr(n, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and body[0].value is node:
            return True
    return False


def test_train_writes_the_run_folder_that_evaluate_and_export_read(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import toy_store
    from pattnet.checkpoint import export_run, load_checkpoint
    from pattnet.evaluate import evaluate_run
    from pattnet.runs import RunDir
    from pattnet.train import TrainConfig, train

    store = toy_store(tmp_path / "store", n=60, n_subjects=6)
    cfg = TrainConfig(model="pattnet-multilabel", epochs=1, batch_size=10, max_batches=1,
                      precision="fp32", num_workers=0)
    run = RunDir(train(store.path, tmp_path / "run", cfg, folds=[1], progress=False))
    assert run.config.is_file() and run.info.is_file()
    fold = run.fold(1)
    assert [f.number for f in run.folds()] == [1] and fold.epochs() == [1]
    for path in (fold.checkpoint(1), fold.split, fold.history, fold.selected, fold.predictions):
        assert path.is_file(), path
    assert fold.finished and fold.read_selected()["epoch"] == 1
    assert evaluate_run(run.path, write=False).run.folds == (1,)
    ck = load_checkpoint(export_run(run.path, tmp_path / "m.pt").path)
    assert ck.source["fold"] == 1 and ck.source["epoch"] == 1


def test_files_are_replaced_only_by_the_atomic_helpers():
    found = [name for name, tree in _trees().items()
             if name != "pattnet.io.atomic"
             for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("replace", "rename") and _is_name(node.func.value, "os")]
    assert found == []


def test_videos_are_probed_and_decoded_only_in_io():
    readers = []
    for name, tree in _trees().items():
        if name.startswith("pattnet.io"):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "open" and _is_name(node.func.value, "av")):
                mode = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "mode"), None)
                if not (isinstance(mode, ast.Constant) and str(mode.value).startswith("w")):
                    readers.append(name)
    assert readers == []


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def test_no_csv_is_built_by_joining_strings():
    pattern = re.compile(r"""["'],["']\s*\.join\(""")
    found = [f"{m}:{i}" for m, f in _modules().items()
             for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


@pytest.mark.parametrize("path", ["README.md", *[str(p.relative_to(REPO)) for p in
                                                 sorted((REPO / "docs").glob("*.md"))]])
def test_docs_say_what_holds_now_not_when_it_was_done(path):
    text = (REPO / path).read_text()
    assert not re.search(r"\bsessions? \d", text, re.I), "work-period narration"
    assert "closing note" not in text.lower()


def test_the_version_has_one_home_and_the_package_is_typed():
    import tomllib

    import pattnet

    root = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    assert pattnet.__version__ == declared
    assert (root / "src" / "pattnet" / "py.typed").is_file()


def _code_strings(tree: ast.Module) -> list[ast.Constant]:
    """The string constants of a module's code (docstrings left out: prose may name a model)."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_model_names_are_spelled_in_the_registry_only():
    """A model's facts (tables, grid, CLI, paper rows) come from its registry entry, so its name
    is not spelled in code elsewhere. Allowed: the models package (the registry and the networks
    it builds), the paper's own rows (pattnet.paper) and the demo's choice of models (its
    config's defaults). Names shared with other things ("pattnet" the package, "holistic" the
    input) are not checked."""
    from pattnet.models import list_models

    names = {n for n in list_models() if "-" in n}
    allowed = ("pattnet.models", "pattnet.paper", "pattnet.demo.config")
    found = [f"{mod}:{c.lineno} {c.value}" for mod, tree in _trees().items()
             if not mod.startswith(allowed) for c in _code_strings(tree) if c.value in names]
    assert found == []
