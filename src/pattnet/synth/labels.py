"""Which AUs an image gets: co-occurrence as an ordered rule list, so the set has the structure
the paper's networks are meant to exploit (AUs that appear together, antagonists kept apart)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pattnet.constants import BP4D_AUS, au_name

__all__ = [
    "AUS",
    "INTENSITY_RANGE",
    "LABEL_RULES",
    "MIN_VISIBLE",
    "label_rates",
    "sample_intensities",
    "sample_labels",
]

#: The AUs synthesised: the paper's 12 BP4D AUs.
AUS: tuple[int, ...] = BP4D_AUS
#: An AU whose effective intensity (after the fold guard) is below this is labelled absent.
MIN_VISIBLE = 0.2
#: Intensity of an active AU in a sampled image: uniform in this range (1 = the table's maximum).
INTENSITY_RANGE = (0.4, 1.0)

#: (AU, probability when no listed parent is on, ((parent AU, probability if that parent is on),
#: ...)). Rules are evaluated in order; the first listed parent that is on decides. Positive
#: couplings follow the prototypes of FACS/EMFACS (6+12 happiness, 1+2 surprise, 1+4+15
#: sadness, 4+7 and 4+7+23/24 anger, 17 with 15 and 24); negative ones keep antagonists apart
#: (12 against 15, 23, 24).
LABEL_RULES: tuple[tuple[int, float, tuple[tuple[int, float], ...]], ...] = (
    (12, 0.40, ()),
    (6, 0.10, ((12, 0.70),)),
    (1, 0.30, ()),
    (2, 0.06, ((1, 0.70),)),
    (4, 0.30, ((1, 0.15), (12, 0.08))),
    (7, 0.20, ((4, 0.60), (6, 0.50))),
    (10, 0.15, ((12, 0.45), (4, 0.35))),
    (15, 0.20, ((12, 0.03), (1, 0.35))),
    (14, 0.22, ((12, 0.20), (15, 0.10))),
    (23, 0.15, ((12, 0.05), (4, 0.40))),
    (24, 0.12, ((12, 0.05), (23, 0.45))),
    (17, 0.18, ((12, 0.08), (15, 0.60), (24, 0.60), (23, 0.45))),
)


def sample_labels(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """(n, 12) int8 occurrence labels in :data:`AUS` order, drawn from :data:`LABEL_RULES`."""
    on: dict[int, np.ndarray] = {}
    for au, base, parents in LABEL_RULES:
        p = np.full(n, base)
        decided = np.zeros(n, dtype=bool)
        for parent, q in parents:
            hit = on[parent] & ~decided
            p[hit] = q
            decided |= hit
        on[au] = rng.random(n) < p
    return np.stack([on[a] for a in AUS], axis=1).astype(np.int8)


def label_rates(n: int = 200_000, seed: int = 12345) -> dict[str, object]:
    """Rates the sampler produces (measured on ``n`` draws): marginals, P(row | column) and the
    Jaccard index of the paper's Fig. 3, for synth.json and the docs."""
    y = sample_labels(np.random.default_rng(seed), n).astype(bool)
    names = [au_name(a) for a in AUS]
    both = (y[:, :, None] & y[:, None, :]).sum(axis=0).astype(np.float64)
    either = (y[:, :, None] | y[:, None, :]).sum(axis=0).astype(np.float64)
    cnt = y.sum(axis=0).astype(np.float64)
    cond = both / np.maximum(cnt[None, :], 1)  # P(row | column)
    jac = both / np.maximum(either, 1)
    return {
        "draws": n,
        "marginal": {k: round(float(v), 3) for k, v in zip(names, y.mean(axis=0), strict=True)},
        "no_au": round(float((~y.any(axis=1)).mean()), 3),
        "mean_aus_per_image": round(float(y.sum(axis=1).mean()), 2),
        "p_row_given_col": {r: {c: round(float(cond[i, j]), 3) for j, c in enumerate(names)}
                            for i, r in enumerate(names)},
        "jaccard": {r: {c: round(float(jac[i, j]), 3) for j, c in enumerate(names)}
                    for i, r in enumerate(names)},
    }


def sample_intensities(rng: np.random.Generator, labels: Iterable[int]) -> dict[int, float]:
    """Requested intensity per AU: uniform in :data:`INTENSITY_RANGE` where ``labels`` says on,
    so the set covers weak and strong AUs rather than one fixed strength."""
    lo, hi = INTENSITY_RANGE
    return {a: (float(rng.uniform(lo, hi)) if y else 0.0) for a, y in zip(AUS, labels, strict=True)}
