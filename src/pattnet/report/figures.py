"""The paper's figures, drawn from our own results: one function per figure, PNG and PDF.

Why a module of its own: ``report`` assembles these, but a user reproducing one figure (say Fig. 4
for a run of their own) should be able to call one function with a DataFrame and get files,
without running the whole report. Every function takes the data already computed, writes each of
``paths`` (format from the suffix) atomically through a temporary sibling plus rename, so an
interrupted report never leaves a half-written PDF, closes its figure, and returns the paths.

matplotlib is imported inside the functions with the Agg back-end: no display is needed and
``import pattnet.report.figures`` stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_path

#: Formats every report figure is written in.
FORMATS = ("png", "pdf")
_DPI = 150


def _palette(name: str) -> Sequence[Any]:
    """The colours of one of matplotlib's qualitative (listed) colour maps, in order."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    cmap = colormaps[name]
    if not isinstance(cmap, ListedColormap):
        raise PattnetError(f"colour map {name!r} is not a list of colours")
    return cast(Sequence[Any], cmap.colors)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_paths(out_dir: str | Path, stem: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """``out_dir/stem.png``, ``out_dir/stem.pdf``: the paths one figure is saved to."""
    return [Path(out_dir) / f"{stem}.{ext}" for ext in formats]


def save_figure(fig: Any, paths: Sequence[str | Path]) -> list[Path]:
    """Save ``fig`` to each path atomically and close it, even on error."""
    plt = _plt()
    saved = []
    try:
        for p in paths:
            path = Path(p)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=_DPI, format=path.suffix.lstrip(".") or "png")
            saved.append(path)
    finally:
        plt.close(fig)
    return saved


# --------------------------------------------------------------------------------------------
# Figure 4: attention maps
# --------------------------------------------------------------------------------------------
def plot_attention(
    panels: Mapping[str, Mapping[str, pd.DataFrame]],
    paths: Sequence[str | Path],
    title: str = "",
) -> list[Path]:
    """Attention maps as heat maps, AU rows x patch columns, values written in the cells.

    ``panels`` maps a row label (e.g. "coded frames", "AU present") to ``{column title: frame}``
    with each frame indexed by AU and with columns P1..P9; the grid has one row per outer key
    and one column per run, so sigmoid and softmax sit side by side as in the paper's Fig. 4.
    The colour scale is fixed to [0, 1] in every panel: sigmoid weights live in [0, 1] each,
    softmax weights sum to 1 over the patches, and only a shared fixed scale lets the eye
    compare them (the softmax maps look pale, which is the point). NaN cells (an AU never
    present in the test frames) are grey with a dash.
    """
    plt = _plt()
    import matplotlib

    rows = [(r, cols) for r, cols in panels.items() if cols]
    if not rows:
        raise PattnetError("no attention maps to draw")
    n_rows = len(rows)
    n_cols = max(len(cols) for _, cols in rows)
    n_aus = max(len(df) for _, cols in rows for df in cols.values())
    n_patch = max(df.shape[1] for _, cols in rows for df in cols.values())
    w = 0.55 * n_patch + 1.4
    h = 0.42 * n_aus + 1.3
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(w * n_cols + 1.2, h * n_rows + 0.9),
                             squeeze=False, layout="constrained")
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#cccccc")
    im = None
    font = 7 if n_aus <= 12 else 5
    for i, (row_label, cols) in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            if j >= len(cols):
                ax.axis("off")
                continue
            col_title, df = list(cols.items())[j]
            vals = df.to_numpy(dtype=float)
            im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, vmin=0.0, vmax=1.0,
                           aspect="auto")
            ax.set_xticks(range(vals.shape[1]), [str(c) for c in df.columns], fontsize=8)
            ax.set_yticks(range(vals.shape[0]), [str(a) for a in df.index], fontsize=8)
            for r in range(vals.shape[0]):
                for c in range(vals.shape[1]):
                    v = vals[r, c]
                    ax.text(c, r, "–" if math.isnan(v) else f"{v:.2f}", ha="center",
                            va="center", fontsize=font,
                            color="black" if math.isnan(v) or v > 0.6 else "white")
            ax.set_title(f"{col_title}\n{row_label}", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, aspect=30,
                     label="attention weight")
    fig.suptitle(title or "Attention per AU and patch (mean over test frames, then folds)",
                 fontsize=10)
    return save_figure(fig, paths)


# --------------------------------------------------------------------------------------------
# Figure 2: the 9 patches of one registered face
# --------------------------------------------------------------------------------------------
def plot_patches(
    face: np.ndarray,
    patches: np.ndarray,
    paths: Sequence[str | Path],
    title: str = "",
) -> list[Path]:
    """The registered face with the 9 patch boxes, and the 9 patches with their regions.

    ``face`` is the registered face at any square size (the full 512x512 frame, or a patch
    store's 200x200 holistic image: stores do not keep the 512 frame), drawn on the 512 grid so
    that :data:`pattnet.patches.PATCH_BOXES` outline the boxes at their true place.
    ``patches`` (9, 100, 100, 3) are shown as given: from a store they are exactly what the
    network was trained on, from a fresh face they come from :func:`pattnet.patches.crop_patches`.
    """
    from matplotlib.patches import Rectangle

    from pattnet.paper import PATCH_REGIONS
    from pattnet.patches import PATCH_BOXES, REGISTERED_SIZE

    face = np.asarray(face)
    patches = np.asarray(patches)
    if face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1]:
        raise PattnetError(f"the face must be a square RGB image, got shape {face.shape}")
    if patches.shape[0] != len(PATCH_BOXES) or patches.ndim != 4:
        raise PattnetError(f"expected 9 patches (9, H, W, 3), got shape {patches.shape}")
    plt = _plt()

    colours = _palette("tab10")
    fig = plt.figure(figsize=(11.5, 5.6))
    grid = fig.add_gridspec(3, 5, width_ratios=[1.0, 1.0, 0.36, 0.36, 0.36], wspace=0.12,
                            hspace=0.45)
    ax = fig.add_subplot(grid[:, :2])
    s = REGISTERED_SIZE
    ax.imshow(face, extent=(0, s, s, 0), interpolation="bilinear")
    for i, (x0, y0, x1, y1) in enumerate(PATCH_BOXES):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.6,
                               edgecolor=colours[i % len(colours)]))
        ax.text(x0 + 4, y0 + 4, f"P{i + 1}", color=colours[i % len(colours)], fontsize=8,
                va="top", ha="left", fontweight="bold")
    ax.set_xlim(0, s)
    ax.set_ylim(s, 0)
    ax.axis("off")
    size = f"{face.shape[0]}x{face.shape[1]}"
    ax.set_title(f"registered face ({size})" if face.shape[0] == s
                 else f"registered face ({size}, drawn on the {s}x{s} grid)", fontsize=9)
    for i in range(len(PATCH_BOXES)):
        r, c = divmod(i, 3)
        pa = fig.add_subplot(grid[r, 2 + c])
        pa.imshow(patches[i], interpolation="nearest")
        pa.set_xticks([])
        pa.set_yticks([])
        for spine in pa.spines.values():
            spine.set_edgecolor(colours[i % len(colours)])
            spine.set_linewidth(2.0)
        region = PATCH_REGIONS.get(i + 1, "").replace(" and ", "\nand ", 1)
        pa.set_title(f"P{i + 1}: {region}", fontsize=6.5)
    fig.suptitle(title or "The 9 patches of one registered face (paper Fig. 2)", fontsize=10)
    return save_figure(fig, paths)


# --------------------------------------------------------------------------------------------
# Figure 3: co-occurrence
# --------------------------------------------------------------------------------------------
def plot_cooccurrence(matrix: pd.DataFrame, paths: Sequence[str | Path], title: str = "") -> list[Path]:
    """The Jaccard co-occurrence matrix (paper Fig. 3); draws with
    :func:`pattnet.datasets.labels.plot_jaccard` so that ``stats`` and ``report`` show the same picture."""
    from pattnet.datasets import plot_jaccard

    plot_jaccard(matrix, paths, title=title)
    return [Path(p) for p in paths]


# --------------------------------------------------------------------------------------------
# Per-AU bars: ours vs paper
# --------------------------------------------------------------------------------------------
def plot_metric_bars(
    values: pd.DataFrame,
    paths: Sequence[str | Path],
    metric: str = "F1",
    paper_columns: Sequence[str] = (),
    title: str = "",
) -> list[Path]:
    """Grouped bars, one group per AU (rows of ``values``), one bar per column, in percent.

    Columns named in ``paper_columns`` are drawn hatched and paler, so the paper's numbers are
    told apart from ours at a glance even in a greyscale print. Missing values leave a gap.
    """
    if values.empty or values.shape[1] == 0:
        raise PattnetError(f"no {metric} values to draw")
    plt = _plt()

    vals = values.to_numpy(dtype=float)
    n_groups, n_series = vals.shape
    width = 0.8 / n_series
    x = np.arange(n_groups)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n_groups * max(1, n_series) ** 0.5 + 2.5), 4.2))
    ours_c = _palette("tab10")
    paper_c = _palette("Pastel1")
    k_ours = k_paper = 0
    for j, col in enumerate(values.columns):
        is_paper = col in paper_columns
        if is_paper:
            colour, k_paper = paper_c[k_paper % len(paper_c)], k_paper + 1
        else:
            colour, k_ours = ours_c[k_ours % len(ours_c)], k_ours + 1
        ax.bar(x - 0.4 + width * (j + 0.5), np.nan_to_num(vals[:, j], nan=0.0), width,
               label=str(col), color=colour, edgecolor="black" if is_paper else colour,
               linewidth=0.5, hatch="//" if is_paper else None)
    ax.set_xticks(x, [str(i) for i in values.index], rotation=45 if n_groups > 14 else 0)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title or f"{metric} per AU: ours vs the paper", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, paths)


__all__ = ["FORMATS", "figure_paths", "save_figure", "plot_attention", "plot_patches",
           "plot_cooccurrence", "plot_metric_bars"]
