"""Evaluate a training run directory: per-fold and pooled metrics, tables beside the paper's.

Why it reads only the run directory: a run is self-describing (``run.json``, ``foldN/
predictions.npz``), so evaluation can be repeated, re-thresholded or done on another machine
without the patch store or the model. Two summaries over folds are reported because papers
differ in which they mean: *pooled* computes each metric once on the concatenated test
predictions of all folds; *fold mean* averages the per-fold metrics. Both are written, and
every output says which is which.

Layout written under ``RUN/eval/``: ``metrics_per_fold.csv``, ``metrics_pooled.csv``,
``attention_mean.csv`` (when the model has attention), ``tables.md`` and ``summary.json``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.evaluate.metrics import au_metrics, mean_attention
from pattnet.io.atomic import atomic_write_json, atomic_write_text

PATCHES = tuple(f"P{i}" for i in range(1, 10))
_FOLD_DIR = re.compile(r"^fold(\d+)$")
#: Model names a run can have (``run.json`` "model"), in Table 3's column order.
MODEL_ORDER = ("single-patch", "holistic", "pattnet-softmax", "pattnet", "pattnet-multilabel")


# --------------------------------------------------------------------------------------------
# Reading a run
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """What ``run.json`` says about a run, checked."""

    path: Path
    model: str
    aus: tuple[int, ...]
    folds: tuple[int, ...]  # folds the run declares
    dataset: str | None
    threshold: float
    patch: int | None = None  # single-patch runs only
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short description of the model, e.g. ``single-patch P7``."""
        return f"{self.model} P{self.patch}" if self.patch else self.model


@dataclass
class FoldPredictions:
    """Test predictions of one fold, as training saved them."""

    fold: int
    prob: np.ndarray  # (N, A) float
    label: np.ndarray  # (N, A) int8 in {1, 0, -1}
    attention: np.ndarray | None  # (N, A, 9) or None
    selected: dict[str, Any] | None  # selected.json, if present


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PattnetError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except OSError as exc:
        raise PattnetError(f"cannot read {path}: {exc.strerror}") from exc


def read_run(run_dir: str | Path) -> RunInfo:
    """Read and check ``RUN/run.json``; errors name the file and what is wrong."""
    path = Path(run_dir)
    if not path.is_dir():
        raise PattnetError(f"run directory {path} does not exist")
    rj = path / "run.json"
    if not rj.is_file():
        raise PattnetError(f"{path} is not a run directory: {rj.name} is missing")
    meta = _read_json(rj)
    if not isinstance(meta, dict):
        raise PattnetError(f"{rj} must hold a JSON object")
    try:
        aus = tuple(int(a) for a in meta["aus"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PattnetError(f"{rj} needs \"aus\": a list of AU numbers") from exc
    if not aus:
        raise PattnetError(f"{rj} lists no AUs")
    declared = meta.get("folds") or []
    try:
        folds = tuple(int(f) for f in declared)
        threshold = float(meta.get("threshold", 0.5))
        patch = int(meta["patch"]) if meta.get("patch") is not None else None
    except (TypeError, ValueError) as exc:
        raise PattnetError(f"{rj}: \"folds\", \"threshold\" or \"patch\" is malformed") from exc
    ds = meta.get("dataset")
    return RunInfo(path=path, model=str(meta.get("model", "unknown")), aus=aus, folds=folds,
                   dataset=str(ds).lower() if ds else None, threshold=threshold, patch=patch,
                   meta=meta)


def find_folds(run: RunInfo) -> tuple[list[int], list[int]]:
    """(folds with predictions, folds declared or present but without predictions)."""
    present = set(run.folds)
    for d in run.path.iterdir():
        m = _FOLD_DIR.match(d.name)
        if m and d.is_dir():
            present.add(int(m.group(1)))
    have = sorted(f for f in present if (run.path / f"fold{f}" / "predictions.npz").is_file())
    missing = sorted(present - set(have))
    return have, missing


def load_fold(run: RunInfo, fold: int) -> FoldPredictions:
    """Load ``foldN/predictions.npz`` and check shapes against the run's AU list."""
    d = run.path / f"fold{fold}"
    f = d / "predictions.npz"
    try:
        with np.load(f, allow_pickle=False) as z:
            keys = set(z.files)
            need = {"prob", "label"} - keys
            if need:
                raise PattnetError(f"{f} lacks {', '.join(sorted(need))}")
            prob = np.asarray(z["prob"])
            label = np.asarray(z["label"])
            att = np.asarray(z["attention"]) if "attention" in keys else None
    except (OSError, ValueError) as exc:  # truncated / not an npz
        raise PattnetError(f"cannot read {f}: {exc}") from exc
    if prob.ndim == 1:
        prob, label = prob[:, None], label.reshape(-1, 1)
    a = len(run.aus)
    if prob.ndim != 2 or prob.shape[1] != a or label.shape != prob.shape:
        raise PattnetError(
            f"{f}: prob {prob.shape} and label {label.shape} do not match the run's {a} AUs"
        )
    if att is not None:
        if att.size == 0 and prob.shape[0] > 0:
            att = None
        elif att.shape[0] != prob.shape[0] or att.ndim not in (2, 3):
            raise PattnetError(f"{f}: attention {att.shape} does not match prob {prob.shape}")
    sel = d / "selected.json"
    selected = _read_json(sel) if sel.is_file() else None
    return FoldPredictions(fold=fold, prob=prob, label=label, attention=att, selected=selected)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """Everything ``evaluate_run`` computed; metric values are fractions in [0, 1]."""

    run: RunInfo
    threshold: float
    folds: tuple[int, ...]  # folds evaluated
    missing_folds: tuple[int, ...]  # declared/present folds without predictions
    per_fold: pd.DataFrame  # au_metrics rows with a leading "fold" column
    pooled: pd.DataFrame  # au_metrics on concatenated folds + *_fold_mean columns
    attention: pd.DataFrame | None  # AU x P1..P9, mean over frames then folds
    selected: dict[int, dict[str, Any]]
    frames: dict[int, int]  # test frames per fold
    markdown: str = ""
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def pooling(self) -> str:
        """The sentence that says what "pooled" means for this result."""
        return (f"pooled = metrics on the concatenated test predictions of folds "
                f"{_join(self.folds)}; fold mean = mean of the per-fold values")

    def fold(self, fold: int) -> pd.DataFrame:
        """Per-AU metrics of one fold."""
        df = self.per_fold[self.per_fold["fold"] == fold].drop(columns="fold")
        df.index = pd.Index(df["name"].tolist())
        return df


def _join(xs: Sequence[Any]) -> str:
    return ", ".join(str(x) for x in xs)


def _fold_mean(per_fold: pd.DataFrame, col: str) -> pd.Series:
    """Mean over folds of ``col`` per AU row name, skipping folds where it is NaN."""
    return per_fold.groupby("name", sort=False)[col].mean()


def evaluate_run(
    run_dir: str | Path, threshold: float | None = None, write: bool = True
) -> EvalResult:
    """Metrics of every fold with predictions, pooled over folds, and tables beside the paper.

    ``threshold`` defaults to the run's own (``run.json`` "threshold", else 0.5). With
    ``write`` the results go to ``RUN/eval/`` (atomically, so a killed evaluation never leaves
    half a CSV); ``compare_runs`` evaluates without writing.
    """
    run = read_run(run_dir)
    thr = run.threshold if threshold is None else float(threshold)
    if not 0.0 <= thr <= 1.0:
        raise PattnetError(f"threshold must be between 0 and 1, got {thr}")
    have, missing = find_folds(run)
    if not have:
        expect = _join(f"fold{f}/predictions.npz" for f in (run.folds or (1, 2, 3)))
        raise PattnetError(
            f"no predictions in {run.path}: expected {expect} (has training finished?)"
        )

    frames, probs, labels, atts, selected, n_frames = [], [], [], [], {}, {}
    for f in have:
        fp = load_fold(run, f)
        m = au_metrics(fp.prob, fp.label, run.aus, threshold=thr)
        m.insert(0, "fold", f)
        frames.append(m)
        n_frames[f] = int(fp.prob.shape[0])
        probs.append(fp.prob)
        labels.append(fp.label)
        if fp.attention is not None:
            atts.append(mean_attention(fp.attention, _att_mask(fp)))
        if fp.selected is not None:
            selected[f] = fp.selected
        del fp
    per_fold = pd.concat(frames, ignore_index=True)

    pooled = au_metrics(np.concatenate(probs), np.concatenate(labels), run.aus, threshold=thr)
    for col in ("f1", "auc", "precision", "recall"):
        pooled[f"{col}_fold_mean"] = _fold_mean(per_fold, col).reindex(pooled.index).to_numpy()
    pooled["folds"] = _join(have)
    pooled["pooling"] = "concatenated predictions"

    attention = None
    if atts and len(atts) == len(have):
        mean = np.nanmean(np.stack(atts), axis=0) if len(atts) > 1 else atts[0]
        rows = [au_name(a) for a in run.aus] if mean.shape[0] == len(run.aus) else ["all"]
        attention = pd.DataFrame(mean, index=pd.Index(rows, name="au"),
                                 columns=[f"P{i + 1}" for i in range(mean.shape[1])])

    res = EvalResult(run=run, threshold=thr, folds=tuple(have), missing_folds=tuple(missing),
                     per_fold=per_fold, pooled=pooled, attention=attention, selected=selected,
                     frames=n_frames)
    res.markdown = tables_markdown(res)
    if write:
        res.files = write_eval(res)
    return res


def _att_mask(fp: FoldPredictions) -> np.ndarray | None:
    """Average attention over the frames where that AU was coded (the frames it is tested on)."""
    att = fp.attention
    if att is None or att.ndim != 3 or att.shape[1] != fp.label.shape[1]:
        return None  # shared attention: all test frames
    return fp.label >= 0


def _csv(df: pd.DataFrame, **kw: Any) -> str:
    return df.to_csv(float_format="%.6g", **kw)


def write_eval(res: EvalResult) -> dict[str, Path]:
    """Write the CSVs, ``tables.md`` and ``summary.json`` under ``RUN/eval/``."""
    out = res.run.path / "eval"
    files = {
        "metrics_per_fold": out / "metrics_per_fold.csv",
        "metrics_pooled": out / "metrics_pooled.csv",
        "tables": out / "tables.md",
        "summary": out / "summary.json",
    }
    atomic_write_text(files["metrics_per_fold"], _csv(res.per_fold, index=False))
    atomic_write_text(files["metrics_pooled"], _csv(res.pooled, index=False))
    if res.attention is not None:
        files["attention_mean"] = out / "attention_mean.csv"
        atomic_write_text(files["attention_mean"], _csv(res.attention))
    else:
        stale = out / "attention_mean.csv"
        if stale.exists():
            stale.unlink()
    atomic_write_text(files["tables"], res.markdown)
    atomic_write_json(files["summary"], _summary(res))
    return files


def _num(x: Any) -> float | None:
    """JSON-safe float (NaN -> null)."""
    if x is None or x is pd.NA:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _summary(res: EvalResult) -> dict[str, Any]:
    avg = res.pooled.loc["Avg"]
    per = {}
    for f in res.folds:
        fa = res.fold(f).loc["Avg"]
        per[str(f)] = {"f1": _num(fa["f1"]), "auc": _num(fa["auc"]), "frames": res.frames[f]}
    return {
        "run": str(res.run.path),
        "model": res.run.model,
        "patch": res.run.patch,
        "dataset": res.run.dataset,
        "aus": list(res.run.aus),
        "threshold": res.threshold,
        "folds_evaluated": list(res.folds),
        "folds_missing": list(res.missing_folds),
        "pooling": res.pooling,
        "pooled": {"f1": _num(avg["f1"]), "auc": _num(avg["auc"])},
        "fold_mean": {"f1": _num(avg["f1_fold_mean"]), "auc": _num(avg["auc_fold_mean"])},
        "per_fold": per,
        "selected": {str(k): v for k, v in res.selected.items()},
    }


# --------------------------------------------------------------------------------------------
# Markdown tables in the paper's layout
# --------------------------------------------------------------------------------------------
def _pct(x: Any) -> str:
    """A fraction as the paper prints it: percent with one decimal; undefined -> n/a."""
    v = _num(x)
    return "n/a" if v is None else f"{100.0 * v:.1f}"


def _md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def ours_label(run: RunInfo) -> str:
    return f"ours (this run, {run.label})"


def _paper_table(res: EvalResult, metric: str, paper_rows: Sequence[Any]) -> str:
    from pattnet.paper import PAPER_AUS

    aus = list(res.run.aus)
    shared = [a for a in aus if a in PAPER_AUS]
    extra_col = bool(shared) and set(aus) != set(PAPER_AUS)
    header = ["Method"] + [f"AU{a}" for a in aus] + ["Avg"] + (["Avg shared"] if extra_col else [])
    rows = []
    for pr in paper_rows:
        r = [pr.label] + [("–" if pr.get(a) is None else f"{pr.get(a):.1f}") for a in aus]
        r.append(f"{pr.avg:.1f}")
        if extra_col:
            r.append(f"{np.mean([pr.get(a) for a in shared]):.1f}")
        rows.append(r)
    p = res.pooled
    name = ours_label(res.run)
    for suffix, col in ((", pooled", metric), (", fold mean", f"{metric}_fold_mean")):
        if suffix == ", fold mean" and len(res.folds) < 2:
            continue
        r = [name + suffix] + [_pct(p.loc[au_name(a), col]) for a in aus]
        r.append(_pct(p.loc["Avg", col]))
        if extra_col:
            vals = p.loc[[au_name(a) for a in shared], col].to_numpy(dtype=float)
            r.append(_pct(np.nanmean(vals) if not np.isnan(vals).all() else np.nan))
        rows.append(r)
    return _md(header, rows)


def _context_notes(res: EvalResult) -> list[str]:
    from pattnet.paper import PAPER_AUS, PAPER_DATASET

    run, notes = res.run, []
    notes.append(f"Values in %, threshold {res.threshold:g}. {res.pooling[0].upper()}"
                 f"{res.pooling[1:]}.")
    if res.missing_folds:
        notes.append(f"Only folds {_join(res.folds)} have predictions; fold(s) "
                     f"{_join(res.missing_folds)} are missing, so this is not the paper's full "
                     "3-fold protocol.")
    if run.dataset != PAPER_DATASET:
        notes.append(f"The paper reports BP4D only; this run is on {run.dataset or 'an unnamed'} "
                     "data, so the paper's rows are context, not a like-for-like comparison.")
    lacking = [a for a in run.aus if a not in PAPER_AUS]
    if lacking:
        notes.append(f"{_join(f'AU{a}' for a in lacking)}: not in the paper, ours only.")
    if set(run.aus) != set(PAPER_AUS):
        shared = [a for a in run.aus if a in PAPER_AUS]
        s = (f"The paper's Avg is over its {len(PAPER_AUS)} AUs, ours over this run's "
             f"{len(run.aus)}")
        s += (f"; 'Avg shared' averages both over the {len(shared)} AUs they share."
              if shared else "; the two share no AU.")
        notes.append(s)
    undefined = [f"{n}: {t}" for n, t in zip(res.pooled["name"], res.pooled["note"], strict=True)
                 if t]
    if undefined:
        notes.append("Undefined (n/a) or partial: " + "; ".join(undefined) + ".")
    return notes


def tables_markdown(res: EvalResult) -> str:
    """Tables 1 and 2 of the paper with this run's row added, per-fold detail and attention."""
    from pattnet.paper import AUC_ROWS, F1_ROWS, LATER_BP4D_F1_AVG

    run = res.run
    out = [f"# Evaluation of {run.path.name}", ""]
    out.append(f"- model: {run.label}; dataset: {run.dataset or 'unknown'}; "
               f"AUs: {_join(run.aus)}")
    out.append(f"- folds evaluated: {_join(res.folds)}"
               + (f" (missing: {_join(res.missing_folds)})" if res.missing_folds else ""))
    out.append(f"- threshold: {res.threshold:g}")
    out.append(f"- {res.pooling}")
    for f, sel in sorted(res.selected.items()):
        val = sel.get("value")
        val_s = f"{val:.3f}" if isinstance(val, int | float) else str(val)
        out.append(f"- fold {f}: epoch {sel.get('epoch')} selected by "
                   f"{sel.get('criterion', '?')} = {val_s}")
    notes = _context_notes(res)

    out += ["", "## Table 1: F1 (%)", "", _paper_table(res, "f1", F1_ROWS), ""]
    out += [f"- {n}" for n in notes]
    out.append("- Later published BP4D F1 averages, same protocol (context): "
               + ", ".join(f"{k} {v:.1f}" for k, v in LATER_BP4D_F1_AVG.items()) + ".")
    out += ["", "## Table 2: AUC (%)", "", _paper_table(res, "auc", AUC_ROWS), ""]
    out += [f"- {n}" for n in notes[:1]]

    out += ["", "## Per fold (ours)", ""]
    header = ["Fold", "Metric", "frames"] + [f"AU{a}" for a in run.aus] + ["Avg"]
    rows = []
    for f in res.folds:
        m = res.fold(f)
        for metric in ("f1", "auc"):
            rows.append([str(f), metric.upper(), str(res.frames[f])]
                        + [_pct(m.loc[au_name(a), metric]) for a in run.aus]
                        + [_pct(m.loc["Avg", metric])])
    out += [_md(header, rows), ""]
    fold_notes = [f"fold {f} {n}: {t}" for f in res.folds
                  for n, t in zip(res.fold(f)["name"], res.fold(f)["note"], strict=True) if t]
    out += [f"- {n}" for n in fold_notes]

    if res.attention is not None:
        att = res.attention
        out += ["", "## Mean attention (Figure 4 data)", "",
                "Weights averaged over the coded test frames of each fold, then over folds.", ""]
        rows = [[str(i)] + [f"{v:.2f}" for v in att.loc[i]] for i in att.index]
        out += [_md(["AU"] + list(att.columns), rows)]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# Table 3: runs side by side
# --------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """F1 of several runs per AU in Table 3's layout (rows AUs, columns runs)."""

    f1: pd.DataFrame  # index AU names + "Avg", columns run labels, fractions
    runs: dict[str, RunInfo]
    markdown: str

    def to_csv(self) -> str:
        return _csv(self.f1, index_label="au")

    def write(self, out_dir: str | Path, stem: str = "table3") -> dict[str, Path]:
        """Write ``<stem>.csv`` and ``<stem>.md`` into ``out_dir`` atomically."""
        out = Path(out_dir)
        files = {"csv": out / f"{stem}.csv", "markdown": out / f"{stem}.md"}
        atomic_write_text(files["csv"], self.to_csv())
        atomic_write_text(files["markdown"], self.markdown)
        return files


def _kind_key(run: RunInfo) -> tuple[int, int]:
    k = MODEL_ORDER.index(run.model) if run.model in MODEL_ORDER else len(MODEL_ORDER)
    return (k, run.patch or 0)


def compare_runs(
    runs: Mapping[str, str | Path], threshold: float | None = None
) -> Comparison:
    """Pooled F1 per AU of several runs side by side, as the paper's Table 3.

    ``runs`` maps a column label to a run directory. Columns are ordered as in the paper:
    single patches P1..P9, holistic, softmax attention, sigmoid attention (PAttNet), then
    anything else; the paper's best single patch per AU and its PAttNet F1 are added for
    reference, and our best single patch per AU is set in bold.
    """
    from pattnet.paper import BEST_SINGLE_PATCH, F1_PATTNET

    if not runs:
        raise PattnetError("no runs to compare")
    infos: dict[str, RunInfo] = {}
    cols: dict[str, pd.Series] = {}
    for label, d in runs.items():
        res = evaluate_run(d, threshold=threshold, write=False)
        infos[label] = res.run
        cols[label] = res.pooled["f1"]
    order = sorted(infos, key=lambda k: _kind_key(infos[k]))
    aus = sorted({a for r in infos.values() for a in r.aus})
    index = [au_name(a) for a in aus] + ["Avg"]
    f1 = pd.DataFrame({k: cols[k].reindex(index) for k in order}, index=index)

    patch_cols = [k for k in order if infos[k].model == "single-patch"]
    header = ["AU"] + order + ["paper best patch", "paper PAttNet"]
    rows = []
    for a, name in zip(aus + [None], index, strict=True):
        best = None
        if patch_cols:
            vals = f1.loc[name, patch_cols].to_numpy(dtype=float)
            if not np.isnan(vals).all():
                best = patch_cols[int(np.nanargmax(vals))]
        cells = []
        for k in order:
            s = _pct(f1.loc[name, k]) if (a is None or a in infos[k].aus) else "–"
            cells.append(f"**{s}**" if k == best and s not in ("–", "n/a") else s)
        if a is None:
            paper = ["–", f"{F1_PATTNET.avg:.1f}"]
        else:
            bp = BEST_SINGLE_PATCH.get(a)
            pv = F1_PATTNET.get(a)
            paper = [f"P{bp[0]} {bp[1]:.1f}" if bp else "–", f"{pv:.1f}" if pv is not None else "–"]
        rows.append([f"AU{a}" if a is not None else "Avg"] + cells + paper)

    legend = [f"- {k}: {infos[k].label}, dataset {infos[k].dataset or 'unknown'}, "
              f"folds {_join(find_folds(infos[k])[0])} ({infos[k].path})" for k in order]
    md = "\n".join([
        "## Table 3: F1 (%) per AU, single patches and full models", "",
        _md(header, rows), "",
        "- Pooled F1 (concatenated test predictions of the evaluated folds); bold = our best "
        "single patch for that AU; the paper's columns are BP4D, 3 folds.",
        "- Each Avg is over that run's own AUs.",
        *legend,
    ]) + "\n"
    return Comparison(f1=f1, runs={k: infos[k] for k in order}, markdown=md)
