"""Masked per-AU metrics agree with scikit-learn on the coded frames, and -1 never counts."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from pattnet.constants import BP4D_AUS
from pattnet.errors import PattnetError
from pattnet.evaluate.metrics import au_metrics, mean_attention


def _random(n: int = 500, a: int = 12, seed: int = 0, uncoded: float = 0.15):
    rng = np.random.default_rng(seed)
    label = (rng.random((n, a)) < rng.uniform(0.1, 0.6, a)).astype(np.int8)
    prob = np.clip(0.35 * label + rng.random((n, a)) * 0.65, 0, 1).astype(np.float32)
    label[rng.random((n, a)) < uncoded] = -1
    return prob, label


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.7])
def test_equals_sklearn_on_coded_subset(threshold):
    prob, label = _random(seed=1)
    df = au_metrics(prob, label, BP4D_AUS, threshold=threshold)
    assert list(df.index) == [f"AU{a:02d}" for a in BP4D_AUS] + ["Avg"]
    for j, au in enumerate(BP4D_AUS):
        keep = label[:, j] != -1
        y, p = label[keep, j], prob[keep, j].astype(np.float64)
        pred = (p >= threshold).astype(int)
        row = df.loc[f"AU{au:02d}"]
        assert row["au"] == au
        assert row["n"] == keep.sum() and row["n_pos"] == y.sum()
        assert row["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
        assert row["precision"] == pytest.approx(precision_score(y, pred), abs=1e-12)
        assert row["recall"] == pytest.approx(recall_score(y, pred), abs=1e-12)
        assert row["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert row["base_rate"] == pytest.approx(y.mean())
    avg = df.loc["Avg"]
    assert avg["f1"] == pytest.approx(df["f1"].iloc[:-1].mean())
    assert avg["auc"] == pytest.approx(df["auc"].iloc[:-1].mean())
    assert avg["n"] == (label != -1).sum()


def test_uncoded_frames_never_count():
    prob, label = _random(seed=2, a=3)
    base = au_metrics(prob, label, (1, 2, 4))
    # Whatever the probability of an uncoded frame, the metrics must not move.
    prob2 = prob.copy()
    prob2[label == -1] = np.where(np.random.default_rng(0).random((label == -1).sum()) < 0.5,
                                  0.0, 1.0)
    moved = au_metrics(prob2, label, (1, 2, 4))
    cols = ["n", "n_pos", "precision", "recall", "f1", "auc"]
    np.testing.assert_array_equal(base[cols].to_numpy(float), moved[cols].to_numpy(float))
    # Dropping the uncoded rows of one AU gives that AU's numbers exactly.
    keep = label[:, 0] != -1
    only = au_metrics(prob[keep, :1], label[keep, :1], (1,))
    assert only.loc["AU01", "f1"] == base.loc["AU01", "f1"]
    assert only.loc["AU01", "auc"] == base.loc["AU01", "auc"]


def test_single_class_gives_nan_auc_with_reason():
    prob = np.array([[0.9, 0.2], [0.8, 0.7], [0.1, 0.4], [0.6, 0.5]], np.float32)
    label = np.array([[1, 0], [1, 0], [1, 0], [-1, -1]], np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scikit-learn UndefinedMetricWarning either
        df = au_metrics(prob, label, (6, 12))
    assert math.isnan(df.loc["AU06", "auc"])
    assert "one class" in df.loc["AU06", "note"]
    assert df.loc["AU06", "f1"] == pytest.approx(f1_score([1, 1, 1], [1, 1, 0]))
    # No positives at all: F1 and AUC undefined, not 0.
    assert math.isnan(df.loc["AU12", "f1"]) and math.isnan(df.loc["AU12", "auc"])
    assert "no positive" in df.loc["AU12", "note"]
    # The average skips undefined AUs and says so.
    assert df.loc["Avg", "f1"] == pytest.approx(df.loc["AU06", "f1"])
    assert math.isnan(df.loc["Avg", "auc"])
    assert "AU12" in df.loc["Avg", "note"]


def test_all_uncoded_au():
    prob = np.full((4, 1), 0.7, np.float32)
    df = au_metrics(prob, np.full((4, 1), -1, np.int8), (4,))
    assert df.loc["AU04", "n"] == 0
    assert math.isnan(df.loc["AU04", "f1"]) and "no coded" in df.loc["AU04", "note"]


def test_no_predicted_positive_gives_zero_f1():
    df = au_metrics(np.zeros((4, 1)), np.array([[1], [0], [1], [0]]), (1,))
    assert df.loc["AU01", "f1"] == 0.0 and df.loc["AU01", "precision"] == 0.0


def test_bad_input_is_a_user_error():
    with pytest.raises(PattnetError, match="1, 0 or -1"):
        au_metrics(np.zeros((2, 1)), np.array([[9], [0]]), (1,))
    with pytest.raises(PattnetError, match="AUs"):
        au_metrics(np.zeros((2, 2)), np.zeros((2, 2)), (1,))
    with pytest.raises(PattnetError, match="NaN"):
        au_metrics(np.full((2, 1), np.nan), np.zeros((2, 1)), (1,))


def test_mean_attention():
    rng = np.random.default_rng(3)
    att = rng.random((1000, 3, 9)).astype(np.float16)
    np.testing.assert_allclose(mean_attention(att), att.astype(np.float64).mean(0), atol=1e-12)
    mask = rng.random((1000, 3)) < 0.5
    mask[:, 2] = False
    out = mean_attention(att, mask)
    assert out.shape == (3, 9)
    for j in range(2):
        np.testing.assert_allclose(out[j], att[mask[:, j], j].astype(np.float64).mean(0),
                                   atol=1e-12)
    assert np.isnan(out[2]).all()
    # Shared attention (N, 9) is one row.
    assert mean_attention(att[:, 0]).shape == (1, 9)


def test_f1_thresholds_pick_the_best_cut_on_coded_frames():
    from pattnet.evaluate import f1_thresholds

    prob = np.array([[0.9, 0.2], [0.7, 0.6], [0.65, 0.1], [0.3, 0.8], [0.2, 0.3]])
    label = np.array([[1, 0], [1, -1], [0, 0], [0, 0], [0, 0]])
    thr = f1_thresholds(prob, label, [1, 12])
    assert 0.65 < thr[0] <= 0.7  # both positives above, the negative at 0.65 below
    assert thr[1] == 0.5  # AU12 has no coded positive: the default
