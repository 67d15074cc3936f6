"""Label statistics: base rates, w_pos per fold and the Jaccard co-occurrence, against hand
counts; ``pattnet stats`` on a store and on a raw root."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pattnet.cli import main
from pattnet.datasets.folds import make_split, subject_folds
from pattnet.datasets.labels import (
    NO_POSITIVE_WEIGHT,
    base_rates,
    compute_stats,
    fold_pos_weights,
    jaccard,
    pos_weights,
    weights_table,
)
from pattnet.errors import PattnetError


def table(rows: dict[str, list], **aus: list[int]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for k, v in aus.items():
        df[k] = np.asarray(v, dtype=np.int8)
    return df


@pytest.fixture
def tiny() -> pd.DataFrame:
    n = 5
    return table({"subject": ["S"] * n, "session": ["T"] * n, "frame": range(n)},
                 AU01=[1, 1, 0, 0, -1], AU02=[1, 0, 1, 0, 1], AU04=[0, 0, 0, 0, 0])


def test_jaccard_by_hand(tiny: pd.DataFrame):
    j = jaccard(tiny)
    assert list(j.index) == list(j.columns) == ["AU01", "AU02", "AU04"]
    # AU01 & AU02 over rows 0-3 (row 4 has AU01 not coded): both in row 0; either in 0, 1, 2
    assert j.loc["AU01", "AU02"] == pytest.approx(1 / 3)
    assert j.loc["AU02", "AU01"] == pytest.approx(1 / 3)
    assert j.loc["AU01", "AU01"] == 1.0 and j.loc["AU02", "AU02"] == 1.0
    assert j.loc["AU01", "AU04"] == 0.0 and j.loc["AU02", "AU04"] == 0.0
    assert math.isnan(j.loc["AU04", "AU04"])  # never present: 0 / 0


def test_jaccard_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, size=(200, 4))
    df = table({"subject": ["S"] * 200}, **{f"AU0{i + 1}": x[:, i] for i in range(4)})
    j = jaccard(df).to_numpy()
    for a in range(4):
        for b in range(4):
            both = (x[:, a] != -1) & (x[:, b] != -1)
            inter = np.sum(both & (x[:, a] == 1) & (x[:, b] == 1))
            union = np.sum(both & ((x[:, a] == 1) | (x[:, b] == 1)))
            assert j[a, b] == pytest.approx(inter / union)


def test_base_rates(tiny: pd.DataFrame):
    br = base_rates(tiny)
    assert br.loc["AU01"].tolist() == [2, 2, 4, 1, 0.5]
    assert br.loc["AU02", "base_rate"] == pytest.approx(3 / 5)
    assert br.loc["AU04", "base_rate"] == 0.0


@pytest.fixture
def three_subjects() -> pd.DataFrame:
    """One subject from each published BP4D part."""
    subj = ["F001"] * 4 + ["M011"] * 4 + ["F007"] * 4
    return table({"subject": subj, "session": ["T1"] * 12, "frame": list(range(12))},
                 AU01=[1, 0, 0, 0, 1, 1, 0, -1, 0, 0, 0, 0],
                 AU02=[0, 0, -1, -1, 1, 0, 0, 0, 1, 1, 1, 0],
                 AU04=[-1] * 12)


def test_pos_weights_per_fold_by_hand(three_subjects: pd.DataFrame):
    weights, splits = fold_pos_weights(three_subjects, "bp4d", val_fraction=0)
    w = weights_table(weights, pos_weights(three_subjects))
    w.index = w.index.astype(str).map(lambda s: int(s) if s.isdigit() else s)
    assert [s.test for s in splits] == [("F001",), ("M011",), ("F007",)]
    # fold 1 trains on M011 + F007: AU01 2 pos / 5 neg; AU02 4 pos / 4 neg
    assert w.loc[1, "AU01"] == pytest.approx(5 / 2) and w.loc[1, "AU02"] == pytest.approx(1.0)
    # fold 2 trains on F001 + F007: AU01 1 / 7; AU02 3 / 3
    assert w.loc[2, "AU01"] == pytest.approx(7.0) and w.loc[2, "AU02"] == pytest.approx(1.0)
    # fold 3 trains on F001 + M011: AU01 3 / 4; AU02 1 / 5
    assert w.loc[3, "AU01"] == pytest.approx(4 / 3) and w.loc[3, "AU02"] == pytest.approx(5.0)
    # never coded: undefined, and shown as the weight training uses there
    assert (w["AU04"] == NO_POSITIVE_WEIGHT).all()
    assert all("AU04" in u.split() for u in w["undefined"])


def test_pos_weights_no_positives_is_the_weight_training_uses(three_subjects: pd.DataFrame):
    w = pos_weights(three_subjects, ["F007"])
    s = w.series()
    assert s["AU01"] == NO_POSITIVE_WEIGHT and s["AU02"] == pytest.approx(1 / 3)
    assert list(w.undefined) == [True, False, True]
    assert w.notes()[0] == ("AU01 has 0 positive and 4 negative frames in the training fold; "
                            "w_pos is undefined, using 1")


def test_stats_and_training_use_one_weight_for_every_fold(three_subjects: pd.DataFrame):
    from pattnet.datasets.folds import make_split, subject_folds
    from pattnet.train import pos_weights as train_pos_weights

    weights, _ = fold_pos_weights(three_subjects, "bp4d", val_fraction=0)
    folds = subject_folds(three_subjects["subject"].unique(), "bp4d", 3, 0)
    for fold, w in enumerate(weights, start=1):
        train_subjects = make_split(folds, fold, 0, 0).train
        rows = three_subjects["subject"].isin(train_subjects)
        labels = three_subjects.loc[rows, ["AU01", "AU02", "AU04"]].to_numpy()
        with pytest.warns(UserWarning) as caught:
            used = train_pos_weights(labels, [1, 2, 4])
        np.testing.assert_array_equal(used, w.values)
        assert [str(c.message) for c in caught] == w.notes()


def test_fold_weights_leave_out_validation_subjects():
    subjects = [f"P{i}" for i in range(8)]
    rng = np.random.default_rng(1)
    rows = {"subject": np.repeat(subjects, 10), "session": ["s"] * 80, "frame": range(80)}
    df = table(rows, AU01=rng.integers(0, 2, 80), AU02=rng.integers(-1, 2, 80))
    w, splits = fold_pos_weights(df, None, k=3, seed=4, val_fraction=0.25)
    folds = subject_folds(subjects, None, 3, 4)
    for fold, split in enumerate(splits, start=1):
        assert split == make_split(folds, fold, 0.25, 4)
        assert split.val and not set(split.val) & set(split.train)
        sel = df[df.subject.isin(split.train)]
        for au in ("AU01", "AU02"):
            pos, neg = int((sel[au] == 1).sum()), int((sel[au] == 0).sum())
            assert w[fold - 1].series()[au] == pytest.approx(neg / pos)


def test_compute_stats_keeps_going_without_folds(tiny: pd.DataFrame):
    s = compute_stats(tiny, None, k=3)  # one subject cannot make 3 folds
    assert s.fold_weights is None and "subject" in s.fold_error
    assert s.overall_weights["AU01"] == 1.0
    with pytest.raises(PattnetError, match="no coded frames"):
        compute_stats(tiny.iloc[:0])


# -- the command ------------------------------------------------------------------------------
def write_store(path: Path, df: pd.DataFrame, dataset: str | None = "bp4d") -> Path:
    path.mkdir(parents=True)
    aus = [int(c[2:]) for c in df.columns if c.startswith("AU")]
    meta = {"format": "pattnet-store", "version": 1, "aus": aus, "n": len(df), "chunks": [],
            "complete": True}
    if dataset:
        meta["dataset"] = dataset
    (path / "store.json").write_text(json.dumps(meta))
    df = df.copy()
    for i, col in enumerate(("success", "confidence", "pitch", "yaw", "roll", "visible_fraction")):
        if col not in df.columns:  # a real store's frame table has every registration column
            df.insert(3 + i, col, 1.0 if col != "success" else 1)
    df.to_csv(path / "frames.csv", index=False)
    return path


def test_cli_stats_on_store(tmp_path: Path, three_subjects: pd.DataFrame, capsys):
    df = three_subjects.copy()
    df.insert(3, "success", 1)
    extra = df.iloc[[0]].copy()
    extra["frame"], extra["success"], extra["AU01"] = 99, 0, 1  # failed registration
    store = write_store(tmp_path / "store", pd.concat([df, extra], ignore_index=True))
    assert main(["stats", str(store), "--val-fraction", "0"]) == 0
    out = capsys.readouterr().out
    assert "12 coded frames" in out and "registration failed" in out
    d = store / "stats"
    w = pd.read_csv(d / "pos_weights.csv", index_col=0)
    assert list(w.index.astype(str)) == ["1", "2", "3", "all"]
    w.index = w.index.astype(str)
    assert w.loc["1", "AU01"] == pytest.approx(2.5) and w.loc["2", "AU01"] == pytest.approx(7.0)
    assert w.loc["all", "AU01"] == pytest.approx(8 / 3)  # 3 positives, 8 negatives
    j = pd.read_csv(d / "cooccurrence_jaccard.csv", index_col=0)
    pd.testing.assert_frame_equal(j, jaccard(three_subjects), check_names=False)
    assert (d / "cooccurrence_jaccard.png").read_bytes()[:4] == b"\x89PNG"
    assert (d / "cooccurrence_jaccard.pdf").read_bytes()[:4] == b"%PDF"
    br = pd.read_csv(d / "base_rates.csv", index_col=0)
    assert br.loc["AU01", "positives"] == 3
    summary = json.loads((d / "stats.json").read_text())
    assert summary["folds"][0]["test"] == ["F001"] and summary["dataset"] == "bp4d"


def test_cli_stats_marks_undefined_weights(tmp_path: Path, three_subjects: pd.DataFrame, capsys):
    df = three_subjects.copy()
    df.loc[df.subject != "F001", "AU01"] = 0  # fold 1 trains without an AU01 positive
    store = write_store(tmp_path / "store", df)
    assert main(["stats", str(store), "--val-fraction", "0", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert ("AU01 has 0 positive and 8 negative frames among the training subjects of fold 1; "
            "w_pos is undefined, using 1") in out
    assert "1.0000*" in out
    w = pd.read_csv(tmp_path / "o" / "pos_weights.csv", index_col=0)
    assert w.iloc[0]["AU01"] == NO_POSITIVE_WEIGHT and "AU01" in w.iloc[0]["undefined"].split()


def test_cli_stats_on_bp4d_root(tmp_path: Path, capsys, monkeypatch):
    root = tmp_path / "BP4D"
    occ = root / "AUCoding" / "AU_OCC"
    occ.mkdir(parents=True)
    header = "Frame,1,2,4,6,7,10,12,14,15,17,23,24\n"
    for subj in ("F001", "M011", "F007"):
        (occ / f"{subj}_T1.csv").write_text(
            header + "1,1,0,0,0,0,0,0,0,0,0,0,9\n2,0,1,0,0,0,0,0,0,0,0,0,9\n")
    (occ / "F001_T2.csv").write_text(header + "1,x,0,0,0,0,0,0,0,0,0,0,0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["stats", str(root)]) == 0  # no images needed, dataset guessed
    out = capsys.readouterr().out
    assert "6 coded frames, 3 subjects" in out and "line 2" in out  # the bad row is reported
    j = pd.read_csv(tmp_path / "stats" / "cooccurrence_jaccard.csv", index_col=0)
    assert j.loc["AU01", "AU02"] == 0.0 and math.isnan(j.loc["AU24", "AU24"])


def test_cli_stats_errors(tmp_path: Path, capsys):
    assert main(["stats", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pattnet: error:")
    assert main(["stats", str(tmp_path), "--dataset", "bp4d"]) == 2
    assert "AUCoding" in capsys.readouterr().err
    store = write_store(tmp_path / "s", pd.DataFrame({"subject": ["S"], "session": ["T"],
                                                      "frame": [0], "AU01": [1]}))
    assert main(["stats", str(store), "--threshold", "3"]) == 2
    assert "threshold applies to a dataset root" in capsys.readouterr().err
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "store.json").write_text("{")
    assert main(["stats", str(tmp_path / "d")]) == 2
    assert "store.json" in capsys.readouterr().err
