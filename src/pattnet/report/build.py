"""``make_report``: every table and figure of the report written into one directory, in steps.

Why inputs are all read first: a bad run, photo or ``--frame`` fails with one line before the
output directory is created, so a failed report never leaves a half-filled directory behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_text
from pattnet.models import attention_models
from pattnet.report.attention import (
    CODED,
    PRESENT,
    RunMaps,
    all_attention_maps,
    attention_long,
)
from pattnet.report.faces import FaceSource, face_from_image, face_from_store, find_stores
from pattnet.report.figures import (
    figure_paths,
    plot_attention,
    plot_cooccurrence,
    plot_metric_bars,
    plot_patches,
)
from pattnet.report.markdown import metric_section, report_markdown, run_notes
from pattnet.report.runs import Report, ReportRun, load_runs
from pattnet.report.tables import metric_table, table3_frame

_FIG4_TITLE = ("Attention per AU and patch (paper Fig. 4), mean over test frames then folds:\n"
               "top, frames where the AU is coded; bottom, frames where it is present")


def _fig2_source(face: str | Path | None, frame: int | None, stores: list[Path],
                 notes: list[str]) -> FaceSource | None:
    """The face Figure 2 shows; a note instead when there is none (or ``frame`` is unused)."""
    src = None
    if face is not None:
        src = face_from_image(face)
    elif stores:
        try:
            src = face_from_store(stores[0], frame)
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
    return src


class _Writer:
    """Writes the report's files into ``out``, remembering each file and note for the text."""

    def __init__(self, out: Path, notes: list[str]):
        self.out = out
        self.notes = notes
        self.files: dict[str, list[Path]] = {}
        self.tables: dict[str, pd.DataFrame] = {}

    def table(self, stem: str, df: pd.DataFrame, md: str) -> None:
        csv, mdp = self.out / f"{stem}.csv", self.out / f"{stem}.md"
        atomic_write_text(csv, df.to_csv(float_format="%.4g"))
        atomic_write_text(mdp, md)
        self.files[stem] = [csv, mdp]
        self.tables[stem] = df

    def tables_1_to_3(self, runs: Sequence[ReportRun], threshold: float | None) -> list[str]:
        """Tables 1-3; returns their markdown (Table 3's empty when only one kind of run)."""
        t1, t2 = metric_table(runs, "f1"), metric_table(runs, "auc")
        t1_md = metric_section("Table 1: F1 (%) per AU", t1)
        t2_md = metric_section("Table 2: AUC (%) per AU", t2)
        self.table("table1_f1", t1, t1_md)
        self.table("table2_auc", t2, t2_md)
        t3_md = ""
        if len({rr.run.label for rr in runs}) > 1:
            t3, t3_md = table3_frame(runs, threshold)
            self.table("table3_ablation", t3, t3_md)
        else:
            self.notes.append("Table 3 skipped: it compares kinds of run (single patches, "
                              "holistic, softmax, sigmoid) and only one kind was given.")
        return [t1_md, t2_md, t3_md]

    def figure4(self, runs: Sequence[ReportRun]) -> tuple[dict[str, RunMaps], pd.DataFrame | None]:
        """Attention maps and their long table; ``({}, None)`` when no run has attention."""
        maps = all_attention_maps(runs)
        if not maps:
            self.notes.append("Figure 4 skipped: no run has attention weights (attention models: "
                              + ", ".join(attention_models()) + ").")
            return maps, None
        attention = attention_long(maps, {rr.key: rr for rr in runs})
        csv = self.out / "fig4_attention.csv"
        atomic_write_text(csv, attention.to_csv(index=False, float_format="%.4f"))
        panels = {frames: {k: v[frames][0] for k, v in maps.items()} for frames in (CODED, PRESENT)}
        self.files["fig4_attention"] = plot_attention(
            panels, figure_paths(self.out, "fig4_attention"), title=_FIG4_TITLE) + [csv]
        return maps, attention

    def figure2(self, src: FaceSource | None) -> str:
        """The patches of one face; returns where the face came from ("" when not drawn)."""
        if src is None:
            return ""
        img, patches, desc = src
        self.files["fig2_patches"] = plot_patches(img, patches,
                                                  figure_paths(self.out, "fig2_patches"),
                                                  title=f"The 9 patches (paper Fig. 2): {desc}")
        return desc

    def figure3(self, stores: list[Path]) -> str:
        """AU co-occurrence in the first store; returns what it was counted on ("" if not)."""
        if not stores:
            self.notes.append("Figure 3 skipped: no run's patch store exists (its labels are "
                              "needed).")
            return ""
        from pattnet.datasets import jaccard
        from pattnet.store import read_frame_labels

        try:
            labels = read_frame_labels(stores[0])
            jac = jaccard(labels.table)
        except PattnetError as exc:
            self.notes.append(f"Figure 3 skipped: {exc}")
            return ""
        csv = self.out / "fig3_cooccurrence.csv"
        atomic_write_text(csv, jac.to_csv(float_format="%.4f"))
        n = len(labels.table)
        self.files["fig3_cooccurrence"] = plot_cooccurrence(
            jac, figure_paths(self.out, "fig3_cooccurrence"),
            title=f"AU co-occurrence, Jaccard (paper Fig. 3), {n} frames") + [csv]
        return f"{n} frames of {stores[0]}"

    def bars(self) -> None:
        """F1 and AUC per AU, ours beside the paper's, from Tables 1 and 2."""
        for metric, stem, bars in (("F1", "table1_f1", "bars_f1"), ("AUC", "table2_auc", "bars_auc")):
            table = self.tables[stem]
            rows = [i for i in table.index if i != "Avg shared"]
            paper_cols = [c for c in table.columns if not c.startswith("ours: ")]
            self.files[bars] = plot_metric_bars(table.loc[rows], figure_paths(self.out, bars),
                                                metric, paper_columns=paper_cols)


def make_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    face: str | Path | None = None,
    frame: int | None = None,
    threshold: float | None = None,
) -> Report:
    """Evaluate ``run_dirs`` and write every table and figure into ``out`` (see the package doc).

    Fig. 2 uses ``face`` (a photo, registered here) when given, else a frame of the first run
    store that still exists (``frame``: its row), else it is skipped with a note; Fig. 3 needs
    a store. All inputs are read and checked before anything is written, so a bad run or face
    fails with one line and leaves ``out`` untouched.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PattnetError(f"--out {out} exists and is not a directory")
    runs = load_runs(run_dirs, threshold)
    stores, gone = find_stores(runs)
    notes = [f"patch store {g} (named in run.json) no longer exists." for g in gone]
    fig2_src = _fig2_source(face, frame, stores, notes)

    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out, notes)
    tables_md = w.tables_1_to_3(runs, threshold)
    maps, attention = w.figure4(runs)
    fig2_desc = w.figure2(fig2_src)
    fig3_desc = w.figure3(stores)
    w.bars()

    rep = Report(out=out, runs=runs, tables=w.tables, attention=attention, files=w.files,
                 notes=w.notes + run_notes(runs))
    rep.markdown = report_markdown(rep, tables_md, maps, fig2_desc, fig3_desc)
    md_path = out / "report.md"
    atomic_write_text(md_path, rep.markdown)
    rep.files = {"report": [md_path], **w.files}
    return rep


__all__ = ["make_report"]
