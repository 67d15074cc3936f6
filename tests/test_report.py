"""``pattnet report``: tables beside the paper's, Figures 2-4 and bars, on tiny in-test runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import toy_store
from pattnet.cli import main
from pattnet.errors import PattnetError
from pattnet.evaluate import evaluate_run
from pattnet.paper import AUC_PATTNET, F1_PATTNET, F1_SOFTMAX
from pattnet.report import CODED, PRESENT, make_report

FIGURES = ("fig4_attention", "fig2_patches", "fig3_cooccurrence", "bars_f1", "bars_auc")
TABLES = ("table1_f1", "table2_auc", "table3_ablation")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A store, a tiny multi-label (sigmoid) run and a 1-AU softmax run: 1 epoch, fold 1."""
    from pattnet.train import TrainConfig, train

    root = tmp_path_factory.mktemp("report")
    toy_store(root / "store", n=48, aus=(1, 12), signal_patch={1: 0, 12: 6})
    kw = {"epochs": 1, "batch_size": 16, "num_workers": 0}
    train(root / "store", root / "sigmoid", TrainConfig(model="pattnet-multilabel", **kw),
          folds=[1], progress=False)
    train(root / "store", root / "softmax", TrainConfig(model="pattnet-softmax", aus=[12], **kw),
          folds=[1], progress=False)
    return {"store": root / "store", "sigmoid": root / "sigmoid", "softmax": root / "softmax"}


def synthetic_run(root: Path, name: str = "syn", model: str = "pattnet", aus=(1, 2, 4),
                  store: str | None = None, n: int = 200, folds=(1, 2)) -> Path:
    """A run whose attention depends on the labels: AU j looks at patch j+1 only when present."""
    run = root / name
    run.mkdir(parents=True)
    meta = {"model": model, "aus": list(aus), "folds": list(folds), "dataset": "bp4d",
            "threshold": 0.5}
    if store:
        meta["store"] = store
    (run / "run.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(1)
    a = len(aus)
    for f in folds:
        d = run / f"fold{f}"
        d.mkdir()
        label = (rng.random((n, a)) < 0.3).astype(np.int8)
        prob = np.clip(0.4 * label + 0.6 * rng.random((n, a)), 0, 1).astype(np.float32)
        label[rng.random((n, a)) < 0.1] = -1
        att = rng.uniform(0.0, 0.6, size=(n, a, 9))
        for j in range(a):
            att[label[:, j] == 1, j, j + 1] = 0.95
        np.savez(d / "predictions.npz", index=np.arange(n), subject=np.array(["S1"] * n),
                 prob=prob, label=label, attention=att.astype(np.float16))
        (d / "selected.json").write_text('{"epoch": 1}')  # a finished fold has both files
    return run


def check_png(path: Path, min_side: int = 200) -> np.ndarray:
    """Load a PNG, check its size and that it is not blank; return it as float RGB."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    assert img.shape[0] >= min_side and img.shape[1] >= min_side, (path, img.shape)
    assert img.std() > 0.05, f"{path} looks blank (pixel std {img.std():.4f})"
    return img


def check_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 1000, path


def viridis_colours(img: np.ndarray) -> int:
    """Distinct viridis colours among the heat-map pixels, the colour bar (right edge) excluded."""
    import matplotlib

    lut = matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3]
    px = img[:, : int(img.shape[1] * 0.8)].reshape(-1, 3)
    px = np.unique(np.round(px, 2), axis=0)
    d = np.abs(px[:, None, :] - lut[None, :, :]).max(axis=2)
    near = d.min(axis=1) < 0.01
    return len(np.unique(d[near].argmin(axis=1)))


def test_report_on_trained_runs(trained, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["report", str(trained["sigmoid"]), str(trained["softmax"]), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(out / "report.md") in printed and "fig4_attention.pdf" in printed

    for stem in TABLES:
        assert (out / f"{stem}.csv").is_file() and (out / f"{stem}.md").is_file(), stem
    for stem in FIGURES:
        check_png(out / f"{stem}.png")
        check_pdf(out / f"{stem}.pdf")
    md = (out / "report.md").read_text()
    for stem in FIGURES:
        assert f"]({stem}.png)" in md, stem
    assert "Table 1" in md and "Table 2" in md and "Table 3" in md

    # Table 1: the paper's numbers beside ours (pooled F1 from evaluate, in percent).
    t1 = pd.read_csv(out / "table1_f1.csv", index_col="au")
    cols = list(t1.columns)
    assert cols.index(F1_PATTNET.label) == cols.index("ours: pattnet-multilabel") + 1
    assert cols.index(F1_SOFTMAX.label) == cols.index("ours: pattnet-softmax") + 1
    assert t1.loc["AU1", F1_PATTNET.label] == pytest.approx(46.1)
    assert t1.loc["Avg", F1_PATTNET.label] == pytest.approx(F1_PATTNET.avg)
    assert t1.loc["AU12", F1_SOFTMAX.label] == pytest.approx(82.0)
    ev = evaluate_run(trained["sigmoid"], write=False)
    for au, name in ((1, "AU01"), (12, "AU12")):
        ours = 100 * ev.pooled.loc[name, "f1"]
        assert t1.loc[f"AU{au}", "ours: pattnet-multilabel"] == pytest.approx(ours, abs=0.01)
    assert np.isnan(t1.loc["AU1", "ours: pattnet-softmax"])  # a 1-AU run: AU1 not its own
    t2 = pd.read_csv(out / "table2_auc.csv", index_col="au")
    assert t2.loc["AU12", AUC_PATTNET.label] == pytest.approx(86.4)
    t3 = pd.read_csv(out / "table3_ablation.csv", index_col="au")
    assert {"pattnet-multilabel", "pattnet-softmax", "paper PAttNet"} <= set(t3.columns)

    # Figure 4 data: in [0, 1]; the coded map is evaluate's attention; softmax rows sum to 1.
    att = pd.read_csv(out / "fig4_attention.csv")
    p = att[[f"P{i}" for i in range(1, 10)]].to_numpy()
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert set(att["frames"]) == {"coded", "present"}
    coded = att[(att["run"] == "pattnet-multilabel") & (att["frames"] == "coded")]
    np.testing.assert_allclose(coded[[f"P{i}" for i in range(1, 10)]].to_numpy(),
                               ev.attention.to_numpy(), atol=1e-4)
    soft = att[att["run"] == "pattnet-softmax"][[f"P{i}" for i in range(1, 10)]].to_numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=0.02)
    # report is read-only on runs: no eval/ written into them
    assert not (trained["sigmoid"] / "eval").exists()


def test_attention_heat_map_conditional_on_presence(tmp_path):
    run = synthetic_run(tmp_path)
    rep = make_report([run], tmp_path / "rep")
    att = rep.attention.set_index(["frames", "au"])
    for j, au in enumerate(("AU1", "AU2", "AU4")):
        p = f"P{j + 2}"
        assert att.loc[("present", au), p] == pytest.approx(0.95, abs=0.01)
        assert att.loc[("coded", au), p] < 0.7  # diluted by the frames without the AU
        assert att.loc[("present", au), "n"] < att.loc[("coded", au), "n"]
    img = check_png(tmp_path / "rep" / "fig4_attention.png")
    assert viridis_colours(img) >= 12  # a varied map, not one flat colour
    md = rep.markdown
    assert f"pattnet, {CODED}" in md and f"pattnet, {PRESENT}" in md
    # no store, no face: Figures 2 and 3 are skipped with a note; one kind: no Table 3
    assert "Figure 2 skipped" in md and "Figure 3 skipped" in md and "Table 3 skipped" in md
    assert not (tmp_path / "rep" / "fig2_patches.png").exists()
    assert not (tmp_path / "rep" / "table3_ablation.csv").exists()
    for stem in ("bars_f1", "bars_auc"):
        check_png(tmp_path / "rep" / f"{stem}.png")


def test_flat_attention_is_not_varied(tmp_path):
    """The colour-variety check itself tells a flat map from a varied one."""
    run = synthetic_run(tmp_path, aus=(1,))
    for f in (1, 2):
        z = dict(np.load(run / f"fold{f}" / "predictions.npz"))
        z["attention"] = np.full_like(z["attention"], 0.5)
        np.savez(run / f"fold{f}" / "predictions.npz", **z)
    make_report([run], tmp_path / "rep")
    img = check_png(tmp_path / "rep" / "fig4_attention.png")
    assert viridis_colours(img) <= 4


def test_fig2_from_store_frame_and_bad_frame(trained, tmp_path):
    rep = make_report([trained["softmax"]], tmp_path / "rep", frame=5)
    assert "row 5" in rep.markdown
    check_png(tmp_path / "rep" / "fig2_patches.png")
    with pytest.raises(PattnetError, match="outside the store"):
        make_report([trained["softmax"]], tmp_path / "rep2", frame=10_000)


@pytest.mark.parametrize("case", ["missing", "no_predictions", "no_face_file"])
def test_bad_input_one_line_exit_2(trained, tmp_path, capsys, case):
    if case == "missing":
        args = [str(tmp_path / "nope")]
    elif case == "no_predictions":
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "run.json").write_text(json.dumps({"model": "pattnet", "aus": [1], "folds": [1]}))
        args = [str(trained["sigmoid"]), str(empty)]
    else:
        args = [str(trained["sigmoid"]), "--face", str(tmp_path / "no.jpg")]
    out = tmp_path / "rep"
    assert main(["report", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pattnet: error:"), err
    assert not out.exists()  # checked before anything is written


def test_fig2_from_registered_face(trained, tmp_path, faces_dir):
    rep = make_report([trained["softmax"]], tmp_path / "rep", face=faces_dir / "single_face.jpg")
    assert "face registered from" in rep.markdown
    img = check_png(tmp_path / "rep" / "fig2_patches.png")
    assert img.shape[1] > img.shape[0]  # face beside the 3x3 grid of patches
