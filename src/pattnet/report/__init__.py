"""``pattnet report``: the paper's Tables 1-3 and Figures 2-4 from one or more run directories.

Why a separate stage from ``evaluate``: ``evaluate`` looks at one run; the paper's results are a
comparison of several (sigmoid vs softmax attention, single patches, holistic), so the report
takes any number of runs, finds out from each ``run.json`` what kind of run it is, and lays them
out side by side with the paper's numbers beside ours. It evaluates each run without writing into
it (``evaluate_run(write=False)``), so a report can be made from runs on a read-only disk or
shared with others.

Everything lands in one output directory: ``report.md`` (all tables, figure links, notes),
``table1_f1.{csv,md}``, ``table2_auc.{csv,md}``, ``table3_ablation.{csv,md}`` (more than one kind
of run), ``fig4_attention.{png,pdf,csv}`` (attention runs), ``fig2_patches.{png,pdf}``,
``fig3_cooccurrence.{png,pdf,csv}`` (when a patch store is at hand) and ``bars_f1``/``bars_auc``
``.{png,pdf}``. Table CSVs are in percent, like the paper; values are *pooled* over folds (each
metric computed once on the concatenated test predictions), the definition ``compare_runs`` uses.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.evaluate import MODEL_ORDER, EvalResult, RunInfo, compare_runs, evaluate_run, load_fold
from pattnet.evaluate.metrics import mean_attention
from pattnet.io.atomic import atomic_write_text
from pattnet.paper import (
    AUC_PATTNET,
    AUC_ROWS,
    BEST_SINGLE_PATCH,
    F1_BY_MODEL,
    F1_PATTNET,
    F1_ROWS,
    PAPER_AUS,
    PAPER_DATASET,
    PaperRow,
)
from pattnet.report.figures import (
    figure_paths,
    plot_attention,
    plot_cooccurrence,
    plot_metric_bars,
    plot_patches,
)

PATCH_COLUMNS = tuple(f"P{i}" for i in range(1, 10))
#: Attention rows of Figure 4: which test frames each mean is over.
CODED, PRESENT = "coded frames", "AU present"
#: Column order of Tables 1 and 2: the paper's Table 1 rows (sigmoid, softmax, holistic).
_TABLE1_ORDER = ("pattnet", "pattnet-multilabel", "pattnet-softmax", "holistic", "single-patch")
#: Attention models, sigmoid first: the paper's Fig. 4 shows sigmoid (its method), then softmax.
_ATT_ORDER = ("pattnet", "pattnet-multilabel", "pattnet-softmax")


@dataclass
class ReportRun:
    """One run in the report: its unique column label and its evaluation."""

    key: str
    result: EvalResult

    @property
    def run(self) -> RunInfo:
        return self.result.run


@dataclass
class Report:
    """What :func:`make_report` computed and wrote; tables are in percent."""

    out: Path
    runs: list[ReportRun]
    tables: dict[str, pd.DataFrame]  # "table1_f1", "table2_auc", "table3_ablation"
    attention: pd.DataFrame | None  # long: run, model, frames, au, n, P1..P9
    files: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    markdown: str = ""


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------
def _kind_key(run: RunInfo) -> tuple[int, int]:
    k = MODEL_ORDER.index(run.model) if run.model in MODEL_ORDER else len(MODEL_ORDER)
    return (k, run.patch or 0)


def _table1_key(run: RunInfo) -> tuple[int, int]:
    k = _TABLE1_ORDER.index(run.model) if run.model in _TABLE1_ORDER else len(_TABLE1_ORDER)
    return (k, run.patch or 0)


def load_runs(run_dirs: Sequence[str | Path], threshold: float | None = None) -> list[ReportRun]:
    """Evaluate each run (without writing into it), in Table 3's order: single patches,
    holistic, softmax, sigmoid, then anything else. A directory given twice counts once; two
    runs of the same kind are told apart by their directory name."""
    if not run_dirs:
        raise PattnetError("no run directories given")
    seen: set[Path] = set()
    results: list[EvalResult] = []
    for d in run_dirs:
        p = Path(d)
        key = p.resolve() if p.exists() else p
        if key in seen:
            continue
        seen.add(key)
        results.append(evaluate_run(p, threshold=threshold, write=False))
    results.sort(key=lambda r: _kind_key(r.run))
    labels = [r.run.label for r in results]
    runs = []
    for r, label in zip(results, labels, strict=True):
        key = label if labels.count(label) == 1 else f"{label} ({r.run.path.name})"
        if any(x.key == key for x in runs):
            key = f"{key} [{r.run.path}]"
        runs.append(ReportRun(key, r))
    return runs


def _au_union(runs: Sequence[ReportRun]) -> list[int]:
    """AUs of all runs: the paper's in its order, then the others ascending."""
    have = {a for r in runs for a in r.run.aus}
    return [a for a in PAPER_AUS if a in have] + sorted(have - set(PAPER_AUS))


# --------------------------------------------------------------------------------------------
# Tables 1 and 2
# --------------------------------------------------------------------------------------------
def paper_row_for(model: str, metric: str) -> PaperRow | None:
    """The paper's row to print beside a run of ``model``. The multi-label variant has the
    paper's sigmoid attention (trained as one network for all AUs), so it sits beside PAttNet."""
    if metric == "f1":
        if model == "pattnet-multilabel":
            return F1_PATTNET
        return F1_BY_MODEL.get(model)
    if metric == "auc" and model in ("pattnet", "pattnet-multilabel"):
        return AUC_PATTNET
    return None


def metric_table(runs: Sequence[ReportRun], metric: str) -> pd.DataFrame:
    """Per-AU ``metric`` ("f1" or "auc") in percent: AU rows, one column per run ("ours: ..."),
    each followed by the paper's matching column; paper rows matching no run come last.
    Columns follow the paper's Table 1 order: sigmoid attention, softmax, holistic, patches.

    Rows: the AUs of the runs, then "Avg" (each run over its own AUs, the paper's as printed,
    over its 12) and, when the AUs are not exactly the paper's, "Avg shared": each run over the
    AUs it shares with the paper, and each paper column over the same AUs as the run beside it
    (over all shown AUs when it stands alone), so that unequal AU sets never pass for a
    like-for-like average.
    """
    if metric not in ("f1", "auc"):
        raise PattnetError(f"metric must be f1 or auc, got {metric!r}")
    aus = _au_union(runs)
    index = [f"AU{a}" for a in aus] + ["Avg"]
    cols: dict[str, list[float]] = {}
    shared_of: dict[str, list[int]] = {}  # column -> AUs its "Avg shared" is over
    used: list[PaperRow] = []

    def add_paper(pr: PaperRow, over: Sequence[int]) -> None:
        cols[pr.label] = [np.nan if pr.get(a) is None else float(pr.get(a)) for a in aus]
        cols[pr.label].append(float(pr.avg))
        shared_of[pr.label] = [a for a in over if a in PAPER_AUS]
        used.append(pr)

    for rr in sorted(runs, key=lambda r: _table1_key(r.run)):
        p = rr.result.pooled
        vals = [100.0 * float(p.loc[au_name(a), metric]) if a in rr.run.aus else np.nan for a in aus]
        vals.append(100.0 * float(p.loc["Avg", metric]))
        key = f"ours: {rr.key}"
        cols[key] = vals
        shared_of[key] = [a for a in rr.run.aus if a in PAPER_AUS]
        pr = paper_row_for(rr.run.model, metric)
        if pr is not None and pr not in used:
            add_paper(pr, rr.run.aus)
    for pr in F1_ROWS if metric == "f1" else AUC_ROWS:
        if pr not in used:
            add_paper(pr, aus)
    df = pd.DataFrame(cols, index=pd.Index(index, name="au"), dtype=float)
    if set(aus) != set(PAPER_AUS) and any(shared_of.values()):
        with warnings.catch_warnings():  # a column with no shared AU stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            df.loc["Avg shared"] = [
                float(np.nanmean(df.loc[[f"AU{a}" for a in shared_of[c]], c])) if shared_of[c]
                else np.nan for c in df.columns]
    return df


def table3_frame(runs: Sequence[ReportRun], threshold: float | None) -> tuple[pd.DataFrame, str]:
    """Table 3 (F1 of every run side by side, AU rows) in percent, with the paper's best
    single patch and PAttNet columns, and its markdown from :func:`compare_runs`."""
    comp = compare_runs({rr.key: rr.run.path for rr in runs}, threshold=threshold)
    df = 100.0 * comp.f1
    df.index = pd.Index([i if i == "Avg" else f"AU{int(i[2:])}" for i in df.index], name="au")
    best_p, best_v, paper = [], [], []
    for name in df.index:
        a = None if name == "Avg" else int(name[2:])
        bp = BEST_SINGLE_PATCH.get(a) if a is not None else None
        best_p.append(f"P{bp[0]}" if bp else "")
        best_v.append(bp[1] if bp else np.nan)
        pv = F1_PATTNET.avg if a is None else F1_PATTNET.get(a)
        paper.append(np.nan if pv is None else pv)
    df["paper best patch"] = best_p
    df["paper best patch F1"] = best_v
    df["paper PAttNet"] = paper
    return df, comp.markdown


# --------------------------------------------------------------------------------------------
# Figure 4 data
# --------------------------------------------------------------------------------------------
def attention_maps(rr: ReportRun) -> dict[str, tuple[pd.DataFrame, np.ndarray]] | None:
    """Mean attention of one run over the coded test frames and over the frames where the AU is
    present, each as ``(AU x P1..P9 frame, frames counted per AU)``; None without attention.

    Means are taken per fold over that fold's frames, then averaged over folds (the paper's
    Fig. 4; the "coded" map equals ``evaluate``'s ``attention``). The "present" map exists
    because attention here is strongly conditional on the AU showing: averaged over all coded
    frames, where most AUs are absent, the map mostly shows what the model looks at when
    nothing is there.
    """
    res = rr.result
    if res.attention is None:
        return None
    per: dict[str, list[np.ndarray]] = {CODED: [], PRESENT: []}
    counts: dict[str, Any] = {CODED: 0, PRESENT: 0}
    rows: list[str] = []
    for f in res.folds:
        fp = load_fold(res.run, f)
        att, lab = fp.attention, fp.label
        if att is None:
            return None
        if att.ndim == 3 and att.shape[1] == lab.shape[1]:
            masks = {CODED: lab >= 0, PRESENT: lab == 1}
            rows = [f"AU{a}" for a in res.run.aus]
        else:  # one attention shared by all AUs: rows "all" and "any AU present"
            masks = {CODED: np.ones(lab.shape[0], bool), PRESENT: (lab == 1).any(axis=1)}
            rows = ["all"]
        for k, m in masks.items():
            per[k].append(mean_attention(att, m))
            counts[k] = counts[k] + (m.sum(axis=0) if m.ndim == 2 else np.array([m.sum()]))
        del fp
    out = {}
    for k, maps in per.items():
        with warnings.catch_warnings():  # an AU never present in any fold stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.stack(maps), axis=0)
        cols = PATCH_COLUMNS[: mean.shape[1]] if mean.shape[1] <= 9 else [
            f"P{i + 1}" for i in range(mean.shape[1])]
        out[k] = (pd.DataFrame(mean, index=pd.Index(rows, name="au"), columns=list(cols)),
                  np.asarray(counts[k]).reshape(-1))
    return out


def attention_long(maps: dict[str, dict[str, tuple[pd.DataFrame, np.ndarray]]],
                   runs: dict[str, ReportRun]) -> pd.DataFrame:
    """All maps in one long table: run, model, frames, au, n (frames averaged over), P1..P9."""
    parts = []
    for key, by_frames in maps.items():
        for frames, (df, n) in by_frames.items():
            d = df.reset_index()
            d.insert(0, "frames", "coded" if frames == CODED else "present")
            d.insert(0, "model", runs[key].run.label)
            d.insert(0, "run", key)
            d.insert(4, "n", n.astype(np.int64))
            parts.append(d)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Figures 2 and 3: sources
# --------------------------------------------------------------------------------------------
def _stores(runs: Sequence[ReportRun]) -> tuple[list[Path], list[str]]:
    """Patch stores named by the runs that still exist, and a note for those that do not."""
    found, gone = [], []
    for rr in runs:
        s = rr.run.meta.get("store")
        if not s:
            continue
        p = Path(str(s))
        if (p / "store.json").is_file():
            if p not in found:
                found.append(p)
        elif str(p) not in gone:
            gone.append(str(p))
    return found, gone


def face_from_image(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Register the face in a photo: (512x512 face, its 9 patches, description)."""
    from pattnet.patches import crop_patches
    from pattnet.registration import register_image

    p = Path(path)
    if not p.is_file():
        raise PattnetError(f"--face {p}: no such file")
    faces = register_image(p)
    faces = [f for f in faces if f.success]
    if not faces:
        raise PattnetError(f"--face {p}: no face could be registered in this image")
    patches, _ = crop_patches(faces[0])
    return faces[0].image, patches, f"face registered from {p}"


def face_from_store(store_path: Path, frame: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """A stored frame: its 200x200 holistic face and its 9 patches as training saw them.
    ``frame`` is a store row; by default the first frame whose registration succeeded."""
    from pattnet.store import PatchStore

    store = PatchStore(store_path)
    if len(store) == 0:
        raise PattnetError(f"{store_path}: the store holds no frames")
    if frame is None:
        ok = np.nonzero(store.success)[0] if "success" in store.table.columns else np.arange(1)
        i = int(ok[0]) if ok.size else 0
    else:
        i = int(frame)
        if not 0 <= i < len(store):
            raise PattnetError(f"--frame {i} is outside the store's rows 0..{len(store) - 1}")
    row = store.table.iloc[i]
    desc = (f"store {store_path}, row {i} (subject {row['subject']}, session {row['session']}, "
            f"frame {row['frame']})")
    return store.holistic(i), store.patches(i), desc


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def _cell(v: Any) -> str:
    if isinstance(v, str):
        return v or "–"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{float(v):.1f}"


def frame_markdown(df: pd.DataFrame, first: str = "AU") -> str:
    """A table of percent values as the paper prints them (one decimal, missing as –)."""
    header = [first] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in df.iterrows():
        lines.append("| " + " | ".join([str(name)] + [_cell(v) for v in row]) + " |")
    return "\n".join(lines)


def _attention_md(df: pd.DataFrame, n: np.ndarray) -> str:
    header = ["AU"] + list(df.columns) + ["frames"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (name, row), k in zip(df.iterrows(), n, strict=True):
        cells = ["–" if math.isnan(v) else f"{v:.2f}" for v in row]
        lines.append("| " + " | ".join([str(name)] + cells + [str(int(k))]) + " |")
    return "\n".join(lines)


def _run_notes(runs: Sequence[ReportRun]) -> list[str]:
    notes = []
    for rr in runs:
        r, res = rr.run, rr.result
        if r.dataset != PAPER_DATASET:
            notes.append(f"{rr.key}: dataset {r.dataset or 'unnamed'}, not BP4D; the paper's "
                         "numbers are context, not a like-for-like comparison.")
        if res.missing_folds or len(res.folds) < 3:
            notes.append(f"{rr.key}: folds {', '.join(map(str, res.folds))} evaluated"
                         + (f" (missing {', '.join(map(str, res.missing_folds))})"
                            if res.missing_folds else "")
                         + "; the paper's protocol is 3 folds.")
        undefined = [f"{n}: {t}" for n, t in zip(res.pooled["name"], res.pooled["note"],
                                                   strict=True) if t]
        if undefined:
            notes.append(f"{rr.key}: " + "; ".join(undefined) + ".")
    return notes


def _fig_md(title: str, paths: Sequence[Path] | None, out: Path) -> list[str]:
    if not paths:
        return []
    png = next((p for p in paths if p.suffix == ".png"), paths[0])
    others = ", ".join(f"[{p.suffix.lstrip('.').upper()}]({p.relative_to(out)})" for p in paths)
    return [f"![{title}]({png.relative_to(out)})", "", f"Files: {others}", ""]


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------
def make_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    face: str | Path | None = None,
    frame: int | None = None,
    threshold: float | None = None,
) -> Report:
    """Evaluate ``run_dirs`` and write every table and figure into ``out`` (see module doc).

    Fig. 2 uses ``face`` (a photo, registered here) when given, else a frame of the first run
    store that still exists (``frame``: its row), else it is skipped with a note; Fig. 3 needs
    a store. All inputs are read and checked before anything is written, so a bad run or face
    fails with one line and leaves ``out`` untouched.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PattnetError(f"--out {out} exists and is not a directory")
    runs = load_runs(run_dirs, threshold)
    by_key = {rr.key: rr for rr in runs}
    notes: list[str] = []

    stores, gone = _stores(runs)
    for g in gone:
        notes.append(f"patch store {g} (named in run.json) no longer exists.")
    fig2_src = None
    if face is not None:
        fig2_src = face_from_image(face)
    elif stores:
        try:
            fig2_src = face_from_store(stores[0], frame)
        except PattnetError as exc:
            if frame is not None:
                raise
            notes.append(f"Figure 2 skipped: {exc}")
    else:
        notes.append("Figure 2 skipped: no run's patch store exists and no --face was given "
                     "(pass --face IMAGE to register a photo for it).")
    if frame is not None and (face is not None or not stores):
        notes.append(f"--frame {frame} ignored: Figure 2 "
                     + ("shows the --face photo." if face is not None else "has no store to read."))

    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    tables: dict[str, pd.DataFrame] = {}

    def write_table(stem: str, df: pd.DataFrame, md: str) -> None:
        csv, mdp = out / f"{stem}.csv", out / f"{stem}.md"
        atomic_write_text(csv, df.to_csv(float_format="%.4g"))
        atomic_write_text(mdp, md)
        files[stem] = [csv, mdp]
        tables[stem] = df

    t1 = metric_table(runs, "f1")
    t2 = metric_table(runs, "auc")
    pooled_note = ("Pooled over folds (each metric computed once on the concatenated test "
                   "predictions); percent; paper columns are BP4D, 3 folds, as printed; "
                   "Avg = over each column's own AUs.")
    t1_md = "## Table 1: F1 (%) per AU\n\n" + frame_markdown(t1) + f"\n\n- {pooled_note}\n"
    t2_md = "## Table 2: AUC (%) per AU\n\n" + frame_markdown(t2) + f"\n\n- {pooled_note}\n"
    write_table("table1_f1", t1, t1_md)
    write_table("table2_auc", t2, t2_md)
    t3_md = ""
    if len({rr.run.label for rr in runs}) > 1:
        t3, t3_md = table3_frame(runs, threshold)
        write_table("table3_ablation", t3, t3_md)
    else:
        notes.append("Table 3 skipped: it compares kinds of run (single patches, holistic, "
                     "softmax, sigmoid) and only one kind was given.")

    # Figure 4
    maps: dict[str, dict[str, tuple[pd.DataFrame, np.ndarray]]] = {}
    att_runs = sorted((rr for rr in runs if rr.result.attention is not None),
                      key=lambda rr: (_ATT_ORDER.index(rr.run.model)
                                      if rr.run.model in _ATT_ORDER else len(_ATT_ORDER)))
    for rr in att_runs:
        m = attention_maps(rr)
        if m is not None:
            maps[rr.key] = m
    attention = None
    if maps:
        attention = attention_long(maps, by_key)
        csv = out / "fig4_attention.csv"
        atomic_write_text(csv, attention.to_csv(index=False, float_format="%.4f"))
        panels = {frames: {k: v[frames][0] for k, v in maps.items()} for frames in (CODED, PRESENT)}
        files["fig4_attention"] = plot_attention(
            panels, figure_paths(out, "fig4_attention"),
            title="Attention per AU and patch (paper Fig. 4), mean over test frames then folds:\n"
                  "top, frames where the AU is coded; bottom, frames where it is present") + [csv]
    else:
        notes.append("Figure 4 skipped: no run has attention weights (attention models: "
                     + ", ".join(_ATT_ORDER) + ").")

    # Figure 2
    fig2_desc = ""
    if fig2_src is not None:
        img, patches, fig2_desc = fig2_src
        files["fig2_patches"] = plot_patches(img, patches, figure_paths(out, "fig2_patches"),
                                             title=f"The 9 patches (paper Fig. 2): {fig2_desc}")

    # Figure 3
    fig3_desc = ""
    if stores:
        from pattnet.datasets.labels import jaccard, read_store_labels

        try:
            labels = read_store_labels(stores[0])
            jac = jaccard(labels.table)
        except PattnetError as exc:
            notes.append(f"Figure 3 skipped: {exc}")
        else:
            csv = out / "fig3_cooccurrence.csv"
            atomic_write_text(csv, jac.to_csv(float_format="%.4f"))
            fig3_desc = f"{len(labels.table)} frames of {stores[0]}"
            files["fig3_cooccurrence"] = plot_cooccurrence(
                jac, figure_paths(out, "fig3_cooccurrence"),
                title=f"AU co-occurrence, Jaccard (paper Fig. 3), {len(labels.table)} frames") + [csv]
    else:
        notes.append("Figure 3 skipped: no run's patch store exists (its labels are needed).")

    # Bars
    for metric, table, stem in (("F1", t1, "bars_f1"), ("AUC", t2, "bars_auc")):
        rows = [i for i in table.index if i != "Avg shared"]
        paper_cols = [c for c in table.columns if not c.startswith("ours: ")]
        files[stem] = plot_metric_bars(table.loc[rows], figure_paths(out, stem), metric,
                                       paper_columns=paper_cols)

    rep = Report(out=out, runs=runs, tables=tables, attention=attention, files=files,
                 notes=notes + _run_notes(runs))
    rep.markdown = _markdown(rep, t1_md, t2_md, t3_md, maps, fig2_desc, fig3_desc)
    md_path = out / "report.md"
    atomic_write_text(md_path, rep.markdown)
    rep.files = {"report": [md_path], **files}
    return rep


def _markdown(rep: Report, t1: str, t2: str, t3: str,
              maps: dict[str, dict[str, tuple[pd.DataFrame, np.ndarray]]],
              fig2_desc: str, fig3_desc: str) -> str:
    out, files = rep.out, rep.files
    lines = ["# PAttNet report", "", "## Runs", ""]
    for rr in rep.runs:
        r, res = rr.run, rr.result
        frames = sum(res.frames.values())
        lines.append(f"- **{rr.key}**: model {r.model}, dataset {r.dataset or 'unknown'}, AUs "
                     f"{', '.join(map(str, r.aus))}, folds {', '.join(map(str, res.folds))} "
                     f"({frames} test frames), threshold {res.threshold:g}; `{r.path}`")
    lines += ["", t1, t2]
    if t3:
        lines += [t3]
    lines += ["## Figure 4: attention maps", ""]
    if maps:
        lines += ["AU rows x patch columns, colour scale fixed to [0, 1]. Mean over the test "
                  "frames of each fold, then over folds: first over the frames where the AU is "
                  "coded (the paper's Fig. 4), then over those where it is present, because the "
                  "attention is strongly conditional on the AU showing.", ""]
        lines += _fig_md("Figure 4", [p for p in files["fig4_attention"] if p.suffix != ".csv"], out)
        for key, by_frames in maps.items():
            for frames, (df, n) in by_frames.items():
                lines += [f"### {key}, {frames}", "", _attention_md(df, n), ""]
    else:
        lines += ["Not drawn: no attention run.", ""]
    lines += ["## Figure 2: the 9 patches", ""]
    lines += ([f"Source: {fig2_desc}.", ""] + _fig_md("Figure 2", files["fig2_patches"], out)
              if "fig2_patches" in files else ["Not drawn (see notes).", ""])
    lines += ["## Figure 3: AU co-occurrence (Jaccard)", ""]
    lines += ([f"Labels: {fig3_desc}.", ""]
              + _fig_md("Figure 3", [p for p in files["fig3_cooccurrence"] if p.suffix != ".csv"],
                        out) if "fig3_cooccurrence" in files else ["Not drawn (see notes).", ""])
    lines += ["## F1 and AUC per AU: ours vs the paper", ""]
    lines += _fig_md("F1 per AU", files.get("bars_f1"), out)
    lines += _fig_md("AUC per AU", files.get("bars_auc"), out)
    if rep.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in rep.notes]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["Report", "ReportRun", "make_report", "load_runs", "metric_table", "table3_frame",
           "attention_maps", "attention_long", "paper_row_for", "face_from_image",
           "face_from_store", "frame_markdown"]
