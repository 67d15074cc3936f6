"""Label statistics: AU base rates, positive-class weights per fold, AU co-occurrence (Fig. 3).

Why these three: base rates show how unbalanced each AU is (some AUs are rare, others present in
most frames), ``w_pos`` is exactly the weight the paper's weighted BCE uses for each fold (so
:func:`pos_weights` is shared with training, and the numbers can be checked before hours of
training), and the Jaccard matrix is the paper's Figure 3, which explains why some AUs are hard
to separate.

All computations take a labels DataFrame (columns subject, session, frame, AU01, ... with 1 / 0
/ -1) and count only coded frames (-1 is excluded per AU, or per AU pair for co-occurrence).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pattnet.constants import N_FOLDS, SPLIT_SEED, VAL_FRACTION
from pattnet.datasets.folds import make_split, subject_folds
from pattnet.datasets.sources import au_columns
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_path, atomic_write_json, atomic_write_text


def _aus(df: pd.DataFrame, aus: Sequence[str] | None) -> list[str]:
    cols = au_columns(df) if aus is None else list(aus)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PattnetError(f"labels table has no column {', '.join(missing)}")
    if not cols:
        raise PattnetError("labels table has no AU columns (AU01, AU02, ...)")
    return cols


def base_rates(df: pd.DataFrame, aus: Sequence[str] | None = None) -> pd.DataFrame:
    """Per AU: positives, negatives, coded and not-coded frame counts, and the base rate
    positives / coded (NaN when the AU is never coded)."""
    cols = _aus(df, aus)
    x = df[cols].to_numpy()
    pos = (x == 1).sum(axis=0)
    neg = (x == 0).sum(axis=0)
    coded = pos + neg
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(coded > 0, pos / np.maximum(coded, 1), np.nan)
    out = pd.DataFrame(
        {"positives": pos, "negatives": neg, "coded": coded,
         "not_coded": len(df) - coded, "base_rate": rate},
        index=pd.Index(cols, name="au"),
    )
    return out


#: The w_pos of an AU whose ratio is undefined in a fold (no positive or no negative frame there).
NO_POSITIVE_WEIGHT = 1.0


@dataclass(frozen=True)
class PosWeights:
    """The weighted-BCE weights ``w_pos = negatives / positives`` of one set of frames.

    The one place that turns label counts into the weights training uses, so that what
    ``pattnet stats`` shows is what training applies. Where the ratio is undefined (no positive
    or no negative frame) training cannot balance the loss; it uses ``no_positive`` there and
    says so, and the statistics mark the same AUs (:attr:`undefined`, :meth:`notes`).
    """

    aus: tuple[str, ...]
    positives: np.ndarray
    negatives: np.ndarray
    no_positive: float = NO_POSITIVE_WEIGHT

    @classmethod
    def of(cls, labels: np.ndarray, aus: Sequence[str],
           no_positive: float = NO_POSITIVE_WEIGHT) -> PosWeights:
        """Counts of an (N, A) label array with 1 / 0 / -1 (not coded) per AU column."""
        x = np.asarray(labels).reshape(-1, len(aus))
        return cls(tuple(aus), (x == 1).sum(0).astype(np.int64), (x == 0).sum(0).astype(np.int64),
                   float(no_positive))

    @property
    def undefined(self) -> np.ndarray:
        return (self.positives == 0) | (self.negatives == 0)

    @property
    def values(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = self.negatives / np.maximum(self.positives, 1)
        return np.where(self.undefined, self.no_positive, ratio).astype(np.float64)

    def __getitem__(self, au: str) -> float:
        return float(self.values[self.aus.index(au)])

    def series(self) -> pd.Series:
        return pd.Series(self.values, index=pd.Index(self.aus, name="au"), name="w_pos")

    def notes(self, where: str = "in the training fold") -> list[str]:
        """One sentence per AU whose ratio is undefined, naming the value used instead."""
        return [f"{au} has {int(p)} positive and {int(n)} negative frames {where}; w_pos is "
                f"undefined, using {self.no_positive:g}"
                for au, p, n, u in zip(self.aus, self.positives, self.negatives, self.undefined,
                                       strict=True) if u]


def pos_weights(
    df: pd.DataFrame,
    subjects: Sequence[str] | None = None,
    aus: Sequence[str] | None = None,
    no_positive: float = NO_POSITIVE_WEIGHT,
) -> PosWeights:
    """The weights of the frames of ``subjects`` (all frames when None), as training computes
    them on its training fold."""
    cols = _aus(df, aus)
    if subjects is not None:
        df = df[df["subject"].astype(str).isin({str(s) for s in subjects})]
    return PosWeights.of(df[cols].to_numpy(), cols, no_positive)


def fold_pos_weights(
    df: pd.DataFrame,
    dataset: str | None = None,
    k: int = N_FOLDS,
    seed: int = SPLIT_SEED,
    val_fraction: float = VAL_FRACTION,
    aus: Sequence[str] | None = None,
) -> tuple[list[PosWeights], list[Any]]:
    """The weights of each fold's training subjects (test part and validation subjects
    removed, exactly as :func:`~pattnet.datasets.folds.make_split` gives them to training),
    and the splits."""
    folds = subject_folds(df["subject"].astype(str).unique(), dataset, k, seed)
    splits = [make_split(folds, fold, val_fraction, seed) for fold in range(1, len(folds) + 1)]
    return [pos_weights(df, split.train, aus) for split in splits], splits


def weights_table(fold_weights: Sequence[PosWeights] | None, overall: PosWeights) -> pd.DataFrame:
    """One row per fold and one for all frames: the w_pos training uses, and which AUs are
    undefined there (space-separated names)."""
    rows = [(str(i), w) for i, w in enumerate(fold_weights or [], start=1)] + [("all", overall)]
    table = pd.DataFrame([w.values for _, w in rows], columns=list(overall.aus),
                         index=pd.Index([name for name, _ in rows], name="fold"))
    table["undefined"] = [" ".join(a for a, u in zip(w.aus, w.undefined, strict=True) if u)
                          for _, w in rows]
    return table


def jaccard(df: pd.DataFrame, aus: Sequence[str] | None = None) -> pd.DataFrame:
    """AU co-occurrence as the Jaccard index |A and B| / |A or B| (the paper's Figure 3).

    For each pair only frames where both AUs are coded count. The diagonal is 1 for an AU that
    occurs at all; NaN marks a pair with no positive frame in common coded frames (0 / 0).
    """
    cols = _aus(df, aus)
    x = df[cols].to_numpy()
    p = (x == 1).astype(np.int64)
    c = (x != -1).astype(np.int64)
    inter = p.T @ p                     # both positive (positive implies coded)
    pc = p.T @ c                        # [i, j]: i positive and j coded
    union = pc + pc.T - inter           # i or j positive, both coded
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return pd.DataFrame(j, index=pd.Index(cols, name="au"), columns=cols)


def plot_jaccard(matrix: pd.DataFrame, paths: Sequence[str | Path], title: str = "") -> None:
    """Draw the co-occurrence matrix as a heat map with its values (Figure 3) to each of
    ``paths`` (format from the suffix: .png, .pdf), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(matrix.columns)
    n = len(names)
    vals = matrix.to_numpy(dtype=float)
    size = max(4.0, 0.55 * n + 1.8)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, vmin=0.0, vmax=1.0)
    labels = [re.sub(r"^AU0*", "AU", s) for s in names]
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    font = 8 if n <= 12 else 6
    for i in range(n):
        for jj in range(n):
            v = vals[i, jj]
            text = "-" if math.isnan(v) else f"{v:.2f}"
            ax.text(jj, i, text, ha="center", va="center", fontsize=font,
                    color="white" if not math.isnan(v) and v > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="Jaccard index")
    ax.set_title(title or "AU co-occurrence (Jaccard index)")
    fig.tight_layout()
    try:
        for path in paths:
            with atomic_path(path) as tmp:  # keeps the suffix, which tells savefig the format
                fig.savefig(tmp, dpi=150)
    finally:
        plt.close(fig)


@dataclass
class Stats:
    n_frames: int
    n_subjects: int
    n_sessions: int
    base_rates: pd.DataFrame
    overall_weights: PosWeights
    fold_weights: list[PosWeights] | None
    fold_error: str | None
    splits: list[Any]
    jaccard: pd.DataFrame


def compute_stats(
    df: pd.DataFrame,
    dataset: str | None = None,
    k: int = N_FOLDS,
    seed: int = SPLIT_SEED,
    val_fraction: float = VAL_FRACTION,
) -> Stats:
    """Everything ``pattnet stats`` reports. Folds that cannot be formed (too few subjects,
    subjects outside the published split) do not stop the rest; the reason is kept."""
    if len(df) == 0:
        raise PattnetError("no coded frames: nothing to count")
    fold_w: list[PosWeights] | None = None
    err: str | None = None
    splits: list[Any] = []
    try:
        fold_w, splits = fold_pos_weights(df, dataset, k, seed, val_fraction)
    except PattnetError as exc:
        err = str(exc)
    return Stats(
        n_frames=len(df),
        n_subjects=int(df["subject"].nunique()),
        n_sessions=int(df[["subject", "session"]].drop_duplicates().shape[0]),
        base_rates=base_rates(df),
        overall_weights=pos_weights(df),
        fold_weights=fold_w,
        fold_error=err,
        splits=splits,
        jaccard=jaccard(df),
    )


def format_stats(stats: Stats) -> str:
    """A plain-text summary for the terminal."""
    cols = list(stats.base_rates.index)
    lines = [f"{stats.n_frames} coded frames, {stats.n_subjects} subjects, "
             f"{stats.n_sessions} sessions", ""]
    head = f"{'':12s}" + "".join(f"{c:>9s}" for c in cols)
    lines.append(head)
    br = stats.base_rates
    lines.append(f"{'positives':12s}" + "".join(f"{int(v):9d}" for v in br["positives"]))
    lines.append(f"{'coded':12s}" + "".join(f"{int(v):9d}" for v in br["coded"]))
    lines.append(f"{'base rate':12s}" + "".join(
        f"{'n/a':>9s}" if math.isnan(v) else f"{v:9.3f}" for v in br["base_rate"]))
    named = [(f"w_pos fold {i}", w) for i, w in enumerate(stats.fold_weights or [], start=1)]
    for label, w in [*named, ("w_pos all", stats.overall_weights)]:
        lines.append(f"{label:12s}" + "".join(
            f"{f'{v:.4f}' + ('*' if u else ''):>9s}" for v, u in zip(w.values, w.undefined, strict=True)))
    notes = [n for i, w in enumerate(stats.fold_weights or [], start=1)
             for n in w.notes(f"among the training subjects of fold {i}")]
    notes += stats.overall_weights.notes("in all frames")
    if notes:
        lines.append("*: " + "; ".join(notes))
    if stats.fold_error:
        lines.append(f"w_pos per fold not available: {stats.fold_error}")
    return "\n".join(lines)


def write_stats(stats: Stats, out: str | Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """base_rates.csv, pos_weights.csv, cooccurrence_jaccard.{csv,png,pdf}, stats.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def csv_out(name: str, frame: pd.DataFrame) -> None:
        path = out / name
        atomic_write_text(path, frame.to_csv())
        written.append(path)

    csv_out("base_rates.csv", stats.base_rates)
    w = weights_table(stats.fold_weights, stats.overall_weights)
    csv_out("pos_weights.csv", w)
    csv_out("cooccurrence_jaccard.csv", stats.jaccard)
    figs = [out / "cooccurrence_jaccard.png", out / "cooccurrence_jaccard.pdf"]
    plot_jaccard(stats.jaccard, figs)
    written += figs
    summary = {
        "n_frames": stats.n_frames,
        "n_subjects": stats.n_subjects,
        "n_sessions": stats.n_sessions,
        "folds": [{"fold": s.fold, "train": list(s.train), "val": list(s.val),
                   "test": list(s.test)} for s in stats.splits],
        "fold_error": stats.fold_error,
        **(extra or {}),
    }
    atomic_write_json(out / "stats.json", summary)
    written.append(out / "stats.json")
    return written


__all__ = [
    "NO_POSITIVE_WEIGHT",
    "PosWeights",
    "Stats",
    "base_rates",
    "compute_stats",
    "fold_pos_weights",
    "format_stats",
    "jaccard",
    "plot_jaccard",
    "pos_weights",
    "weights_table",
    "write_stats",
]
