"""Deployable model checkpoints: one file with the weights and everything needed to use them.

Why a format of its own (and not the trainer's ``epoch-NN.pt``): a training checkpoint holds the
optimiser and history but not what a user of the model must know — which architecture, which
AUs, how the input was normalised, which registration template cut the patches and at which
threshold an AU counts as present. Getting any of these wrong gives plausible but wrong
probabilities, so the file carries them and :func:`load_checkpoint` refuses what does not fit.

The file is a plain ``torch.save`` of a dict holding only tensors, dicts, lists, str, int, float
and bool, so it loads with ``torch.load(..., weights_only=True)``: opening a model someone sent
you runs no pickled code. Layout (``format_version`` 1)::

    format           "pattnet-checkpoint"
    format_version   1
    pattnet_version  "0.1.0"            the version that wrote it
    model            "pattnet-multilabel"
    mode             "multilabel" | "per-au"
    model_config     {dim, order, attention_bias, patch, init}   (ModelConfig fields)
    input_kind       "patches" | "holistic"
    aus              [1, 2, 4, ...]
    threshold        [0.5, 0.5, ...]    one per AU (occurrence = probability >= threshold)
    mean, std        0.5, 0.5           normalisation of to_model_input
    normalize        "global" | "subject"   (optional, default global) subject: the model takes
                                        the difference from the person's mean face
    reference        float32 tensor     (subject only) the training population's mean face, the
                                        prior of detect's running per-person reference
    template_version "pattnet-mp478-v1" the registration template the patches were cut with
    state_dict       {name: tensor}
    source           {run, fold, epoch, criterion, value, ...}   provenance, free-form
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from pattnet.constants import au_name
from pattnet.errors import PattnetError

FORMAT = "pattnet-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "model", "mode", "model_config", "aus", "threshold",
             "mean", "std", "template_version", "state_dict")


class CheckpointError(PattnetError):
    """A checkpoint file that is missing, damaged, not pattnet's or does not fit this install."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the ready model (eval mode) and what is needed to feed and read it."""

    model: Any  # pattnet.models.AUModel
    aus: list[int]
    threshold: list[float]
    mean: float
    std: float
    template_version: str
    pattnet_version: str
    path: Path | None = None
    source: dict[str, Any] = field(default_factory=dict)
    normalize: str = "global"
    reference: Any = None  # numpy float32, the shape of one input sample (subject only)

    @property
    def input_kind(self) -> str:
        return self.model.input_kind


def _model_mode(model: Any) -> str:
    from pattnet.models.networks import PerAU

    return "per-au" if isinstance(model.net, PerAU) else "multilabel"


def _thresholds(threshold: float | Sequence[float], n: int) -> list[float]:
    one = isinstance(threshold, (int, float))
    vals = [float(threshold)] * n if one else [float(t) for t in threshold]  # type: ignore[arg-type,union-attr]
    if len(vals) != n:
        raise CheckpointError(f"{len(vals)} threshold(s) for {n} AU(s)")
    if not all(0.0 <= t <= 1.0 and math.isfinite(t) for t in vals):
        raise CheckpointError(f"thresholds must lie in [0, 1], got {vals}")
    return vals


def _plain(obj: Any) -> Any:
    """Only types ``weights_only`` accepts: refuse numpy scalars, paths, dataclasses silently."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalar
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def checkpoint_dict(
    model: Any,
    *,
    threshold: float | Sequence[float] = 0.5,
    mean: float = 0.5,
    std: float = 0.5,
    template_version: str | None = None,
    source: dict[str, Any] | None = None,
    normalize: str = "global",
    reference: Any = None,
) -> dict[str, Any]:
    """The dict :func:`save_checkpoint` writes (exposed for tests and for other writers)."""
    from pattnet import __version__
    from pattnet.registration.template import load_template

    aus = [int(a) for a in model.aus]
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    from pattnet.store.reference import MODES

    if normalize not in MODES:
        raise CheckpointError(f"normalize must be one of {', '.join(MODES)}, got {normalize!r}")
    if normalize == "subject" and reference is None:
        raise CheckpointError("a subject-normalised model needs its population reference face")
    extra: dict[str, Any] = {"normalize": normalize}
    if normalize == "subject":
        extra["reference"] = torch.as_tensor(reference, dtype=torch.float32).contiguous()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pattnet_version": __version__,
        "model": str(model.name),
        "mode": _model_mode(model),
        "model_config": _plain(asdict(model.cfg)),
        "input_kind": str(model.input_kind),
        "aus": aus,
        "threshold": _thresholds(threshold, len(aus)),
        "mean": float(mean),
        "std": float(std),
        "template_version": template_version or load_template().version,
        "state_dict": state,
        "source": _plain(source or {}),
        **extra,
    }


def save_checkpoint(
    path: str | Path,
    model: Any,
    *,
    threshold: float | Sequence[float] = 0.5,
    mean: float = 0.5,
    std: float = 0.5,
    template_version: str | None = None,
    source: dict[str, Any] | None = None,
    normalize: str = "global",
    reference: Any = None,
) -> Path:
    """Write ``model`` (an :class:`~pattnet.models.AUModel`) and its usage facts to ``path``.

    Written to a temporary sibling and renamed, so an interrupted export never leaves a
    truncated model file that ``detect`` would later trip over. ``template_version`` defaults to
    the template of this install (the one ``prepare`` used when the store was made here).
    """
    p = Path(path)
    data = checkpoint_dict(model, threshold=threshold, mean=mean, std=std,
                           template_version=template_version, source=source,
                           normalize=normalize, reference=reference)
    from pattnet.io.atomic import tmp_path_for

    tmp = tmp_path_for(p)
    try:
        torch.save(data, tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw dict of a checkpoint file, loaded with ``weights_only=True`` and checked for shape.

    Every way a file can be wrong (missing, empty, not a torch file, a pickle with code in it,
    a training checkpoint instead of an exported one, a newer format) ends in one
    :class:`CheckpointError` line naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: model file not found")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder; give a model file (make one with "
                              "'pattnet export RUN --out model.pt')")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty model file (0 bytes)")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{p}: refused: the file contains pickled Python objects, not only weights "
                "(pattnet loads models with weights_only=True)") from exc
        raise CheckpointError(f"{p}: damaged or not a model file ({first[:120]})") from exc
    except Exception as exc:  # zip/EOF/magic-number errors from torch.load vary by version
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: damaged or not a model file ({first[:120]})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = ""
        if isinstance(data, dict) and "optimizer" in data and "model" in data:
            hint = "; this is a training checkpoint: turn the run into a model with " \
                   "'pattnet export RUN --out model.pt'"
        raise CheckpointError(f"{p}: not a pattnet model file{hint}")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format {version!r} is newer than this pattnet reads "
            f"({FORMAT_VERSION}); written by pattnet {data.get('pattnet_version')}, upgrade pattnet")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"{p}: incomplete checkpoint, missing {', '.join(missing)}")
    aus = data["aus"]
    if not isinstance(aus, list) or not aus or not all(isinstance(a, int) for a in aus):
        raise CheckpointError(f"{p}: AU list must be a non-empty list of integers, got {aus!r}")
    if len(set(aus)) != len(aus):
        raise CheckpointError(f"{p}: AU list has duplicates: {aus}")
    return data


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
    from pattnet.models import create_model
    from pattnet.models.networks import ModelConfig
    from pattnet.registration.template import load_template

    p = Path(path)
    data = read_checkpoint(p)
    aus = [int(a) for a in data["aus"]]
    if check_template:
        here = load_template().version
        if data["template_version"] != here:
            raise CheckpointError(
                f"{p}: trained on faces registered with template {data['template_version']!r}, "
                f"but this pattnet registers with {here!r}; use the pattnet version that made it "
                "(or pass check_template=False to accept the difference)")
    cfg = data["model_config"]
    known = {f.name for f in fields(ModelConfig)}
    if not isinstance(cfg, dict) or set(cfg) - known:
        raise CheckpointError(f"{p}: model config has unknown fields "
                              f"{sorted(set(cfg) - known) if isinstance(cfg, dict) else cfg!r}; "
                              "written by a newer pattnet?")
    try:
        model = create_model(data["model"], aus=aus, mode=data["mode"], **cfg)
    except (PattnetError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{p}: cannot build model {data['model']!r}: {exc}") from exc
    state = data["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{p}: state_dict is not a mapping")
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    wrong = sorted(k for k in set(want) & set(state)
                   if not isinstance(state[k], torch.Tensor) or state[k].shape != want[k].shape)
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            got = tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k])
            detail.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {got} vs {tuple(want[k].shape)})")
        raise CheckpointError(
            f"{p}: weights do not match a {data['model']} ({data['mode']}) model for "
            f"{len(aus)} AUs ({', '.join(au_name(a) for a in aus)}): " + "; ".join(detail))
    model.load_state_dict(state)
    model.eval()
    dev = torch.device(device)
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    try:
        threshold = _thresholds(data["threshold"], len(aus))
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from exc
    normalize = str(data.get("normalize", "global"))
    reference = None
    if normalize == "subject":
        ref = data.get("reference")
        from pattnet.store import HOLISTIC_SHAPE, PATCH_SHAPE

        want_shape = PATCH_SHAPE if model.input_kind == "patches" else HOLISTIC_SHAPE
        if not isinstance(ref, torch.Tensor) or tuple(ref.shape) != want_shape:
            raise CheckpointError(f"{p}: subject-normalised model without a valid reference face "
                                  f"(expected a {want_shape} tensor)")
        reference = ref.float().numpy()
    elif normalize != "global":
        raise CheckpointError(f"{p}: unknown normalize {normalize!r}; written by a newer pattnet?")
    return Checkpoint(
        model=model, aus=aus, threshold=threshold, mean=float(data["mean"]),
        std=float(data["std"]), template_version=str(data["template_version"]),
        pattnet_version=str(data.get("pattnet_version", "?")), path=p,
        source=dict(data.get("source") or {}), normalize=normalize, reference=reference,
    )


# --------------------------------------------------------------------------------------------
# training run -> checkpoint


@dataclass
class ExportResult:
    path: Path
    fold: int
    epoch: int
    criterion: str | None
    value: float | None
    reason: str  # why this fold


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PattnetError(f"{path}: unreadable ({type(exc).__name__})") from exc


def choose_fold(run_dir: str | Path, select_metric: str = "f1") -> tuple[int, str]:
    """The fold ``export`` uses by default, and why.

    Every fold's model is a valid model trained on different subjects; the default is the
    finished fold whose *selected* epoch scored best on its validation subjects (the
    ``selected.json`` value, by the run's ``select_metric``: highest F1/AUC or lowest loss), ties
    to the lower fold number. The test subjects are never used for this choice: picking the fold
    by test score would leak the evaluation into the deployed model. A run without validation
    (no values) falls back to the lowest finished fold.
    """
    run = Path(run_dir)
    found: list[tuple[int, float | None]] = []
    for d in sorted(run.glob("fold*")):
        if not d.is_dir() or not d.name[4:].isdigit():
            continue
        sel = d / "selected.json"
        if not sel.is_file():
            continue
        s = _read_json(sel)
        v = s.get("value")
        found.append((int(d.name[4:]), float(v) if isinstance(v, (int, float)) and
                      math.isfinite(v) else None))
    if not found:
        raise PattnetError(f"{run}: no finished fold (no foldK/selected.json); finish training or "
                           "pass --fold K --epoch N")
    found.sort()
    scored = [(f, v) for f, v in found if v is not None]
    if not scored:
        return found[0][0], "lowest finished fold (no validation scores)"
    lower = select_metric == "loss"
    best = min(scored, key=lambda fv: (fv[1] if lower else -fv[1], fv[0]))
    return best[0], (f"best validation {select_metric} of folds "
                     f"{', '.join(str(f) for f, _ in scored)}")


def export_run(
    run_dir: str | Path,
    out: str | Path,
    fold: int | None = None,
    epoch: int | None = None,
    threshold: float | None = None,
) -> ExportResult:
    """Turn a training run directory into one deployable checkpoint file.

    ``fold`` None picks one with :func:`choose_fold`; ``epoch`` None takes the fold's selected
    epoch (``selected.json``). ``threshold`` None takes the run's own (``run.json``, the value
    its F1 was computed at).
    """
    from pattnet.models import model_from_settings
    from pattnet.runs import RunDir

    run = Path(run_dir)
    rd = RunDir(run)
    if not run.is_dir():
        raise PattnetError(f"{run}: no such run directory")
    if not rd.config.is_file() or not rd.info.is_file():
        raise PattnetError(f"{run}: not a training run (config.yaml and run.json expected)")
    cfg = rd.read_config()
    missing = [k for k in ("select_metric", "threshold", "mean", "std", "normalize") if k not in cfg]
    if missing:
        raise PattnetError(f"{rd.config}: lacks {', '.join(missing)}; not written by pattnet train")
    info = rd.read_info()
    aus = [int(a) for a in info["aus"]]
    if fold is None:
        fold, reason = choose_fold(run, str(cfg["select_metric"]))
    else:
        reason = "chosen with --fold"
    fdir = run / f"fold{fold}"
    if not fdir.is_dir():
        have = sorted(d.name for d in run.glob("fold*") if d.is_dir())
        raise PattnetError(f"{run}: no fold {fold} (has {', '.join(have) or 'none'})")
    criterion: str | None = None
    value: float | None = None
    if epoch is None:
        sel = fdir / "selected.json"
        if not sel.is_file():
            raise PattnetError(f"{fdir}: fold not finished (no selected.json); pass --epoch N to "
                               "export a given epoch")
        s = _read_json(sel)
        epoch = int(s["epoch"])
        criterion = s.get("criterion")
        value = s.get("value")
    ck_path = fdir / "checkpoints" / f"epoch-{epoch:02d}.pt"
    if not ck_path.is_file():
        raise PattnetError(f"{ck_path}: checkpoint not found")
    try:
        ck = torch.load(ck_path, map_location="cpu", weights_only=True)
        state = ck["model"]
    except Exception as exc:
        raise PattnetError(f"{ck_path}: unreadable checkpoint ({type(exc).__name__})") from exc
    model = model_from_settings(cfg, aus)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise PattnetError(f"{ck_path}: weights do not fit the run's model "
                           f"({str(exc).splitlines()[0]})") from exc
    thr = float(cfg["threshold"]) if threshold is None else threshold
    fold_subjects = info.get("fold_subjects") or []
    source = {"run": str(run.resolve()), "fold": int(fold), "epoch": int(epoch),
              "criterion": criterion, "value": value, "fold_choice": reason,
              "dataset": info.get("dataset"), "store": info.get("store"),
              "test_subjects": list(fold_subjects[fold - 1]) if len(fold_subjects) >= fold else None}
    reference = None
    normalize = str(cfg["normalize"])
    if normalize == "subject":
        from pattnet.store.reference import load_references, population_reference

        refs = load_references(rd.references)
        test = set(source["test_subjects"] or [])
        reference = population_reference(refs, [s for s in refs if s not in test])
    path = save_checkpoint(out, model, threshold=float(thr), mean=float(cfg["mean"]),
                           std=float(cfg["std"]), source=source, normalize=normalize,
                           reference=reference)
    return ExportResult(path=path, fold=int(fold), epoch=int(epoch), criterion=criterion,
                        value=value, reason=reason)


__all__ = ["Checkpoint", "CheckpointError", "ExportResult", "checkpoint_dict", "choose_fold",
           "export_run", "load_checkpoint", "read_checkpoint", "save_checkpoint"]
