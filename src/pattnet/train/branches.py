"""A branch of a trained model as a run of its own: one training, two models.

The fusion model (:class:`pattnet.models.geometry.FusionNet`) trains its patch branch and its mesh
branch each against the labels as well as mixed (``ModelOutput.aux``), and its run keeps each
branch's test predictions (``branch_prob`` in ``predictions.npz``). So the patch branch of a
fusion run *is* a trained ``pattnet-multilabel``: :func:`branch_run` writes it out as a run
folder that ``evaluate``, ``report`` and ``export`` read like any other, instead of a second
training of the same network on the same folds. The demo uses it; any fusion run can.

What differs from a separate training, said in the run itself (``run.json``'s ``branch_of``):
the branch's encoders also received the mixed output's gradient, and each fold keeps the epoch
chosen for the fusion model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pattnet.config import from_dict, save_config
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_path, atomic_write_json, check_output_dir
from pattnet.models import Branch, model_branches
from pattnet.runs import FoldDir, RunDir
from pattnet.train.config import TrainConfig


def _branch(model: str, key: str) -> Branch:
    found = {b.key: b for b in model_branches(model)}
    if key not in found:
        have = ", ".join(found) or "none"
        raise PattnetError(f"model {model!r} has no branch {key!r} that is a model of its own "
                           f"(branches: {have})")
    return found[key]


def _fold_copy(src: FoldDir, dst: FoldDir, b: Branch) -> None:
    """The fold's split, history and chosen epoch as they are; the chosen epoch's weights cut
    down to the branch; the branch's own test predictions."""
    sel = src.read_selected()
    if sel is None or not src.finished:
        raise PattnetError(src.unfinished_reason())
    with np.load(src.predictions) as z:
        pred = {k: z[k] for k in z.files}
    if "branch_prob" not in pred:
        raise PattnetError(f"{src.predictions}: has no branch predictions (the run was trained "
                           "before fusion runs kept them; train it again)")
    epoch = int(sel["epoch"])
    ck = torch.load(src.checkpoint(epoch), map_location="cpu", weights_only=True)
    state = {"net." + k[len(b.prefix):]: v for k, v in ck["model"].items()
             if k.startswith(b.prefix)}
    dst.checkpoints.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst.checkpoint(epoch)) as tmp:
        torch.save({"epoch": epoch, "model": state, "history": ck.get("history", []),
                    "pos_weight": ck.get("pos_weight")}, tmp)
    for name in (src.split, src.history):
        if name.is_file():
            shutil.copyfile(name, dst.path / name.name)
    out = {"index": pred["index"], "prob": pred["branch_prob"][:, b.index],
           "label": pred["label"], "subject": pred["subject"]}
    if b.key == "patches" and "attention" in pred:
        out["attention"] = pred["attention"]
    atomic_write_json(dst.selected, {**sel, "note": f"{sel.get('note', '')}; the epoch chosen "
                                     "for the fusion model".lstrip("; ")})
    with atomic_path(dst.predictions) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **out)


def branch_run(run_dir: str | Path, out: str | Path, branch: str = "patches") -> RunDir:
    """Write the ``branch`` (``patches`` or ``mesh``) of the finished run ``run_dir`` as a run
    folder ``out`` of the branch's own model; returns it."""
    src = RunDir(run_dir)
    info = src.read_info()
    cfg_d: dict[str, Any] = src.read_config()
    b = _branch(str(info.get("model")), branch)
    dst = RunDir(check_output_dir(out))
    if dst.info.exists():
        raise PattnetError(f"{dst.path}: holds a run already; give another --out")
    folds = src.folds()
    if not folds:
        raise PattnetError(f"{src.path}: has no folds")
    dst.path.mkdir(parents=True, exist_ok=True)
    cfg = from_dict(TrainConfig, {**cfg_d, "model": b.model}, f"{src.config}: ")
    save_config(cfg, dst.config)
    ref = src.references_of(b.key)  # the subject references of the branch's input only
    if ref.is_file():
        shutil.copyfile(ref, dst.references_of(b.key))
    for fd in folds:
        _fold_copy(fd, dst.fold(fd.number), b)
    atomic_write_json(dst.info, {**info, "model": b.model,
                                 "branch_of": {"run": str(src.path.resolve()),
                                               "model": info.get("model"), "branch": b.key}})
    return dst


__all__ = ["branch_run"]
