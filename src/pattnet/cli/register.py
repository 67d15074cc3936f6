"""``pattnet register``: faces of images, folders or videos into the canonical 512x512 frame.

Writes, per input, ``DIR/<stem>/<frame:06d>.png`` (registered face; extra faces of a frame as
``<frame:06d>_f<face_id>.png``) and ``DIR/<stem>.csv`` with one row per face per frame, and one
``success=0`` row for a frame without a face, so a CSV never has fewer rows than the input has
frames. A video damaged part way keeps the frames before the damage; its CSV then ends with a
``# stopped ...`` comment line (read it with ``pandas.read_csv(path, comment="#")``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
from pathlib import Path

HELP = "register faces (images, folders, videos) into the paper's canonical 512x512 frame"

N_POINTS = 478
COLUMNS = (
    ["frame", "face_id", "timestamp", "success", "confidence", "pitch", "yaw", "roll",
     "visible_fraction"]
    + [f"x_{i}" for i in range(N_POINTS)]
    + [f"y_{i}" for i in range(N_POINTS)]
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders of images/videos, or video files")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--max-faces", type=int, default=None, metavar="N",
                        help="faces per frame (default 1)")
    parser.add_argument("--patches", action="store_true",
                        help="also write the Figure 2 picture of the 9 patches per face")
    parser.add_argument("--no-images", action="store_true",
                        help="write the CSV only, not the registered frames")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML/TOML file with RegistrationConfig fields")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a RegistrationConfig field")


def _fmt(x: float, nd: int) -> str:
    return "" if x != x else f"{x:.{nd}f}"  # NaN -> empty cell


def face_row(index: int, timestamp: float, face) -> list[str]:
    """One CSV row (strings) for a registered face, or a success=0 row when ``face`` is None."""
    if face is None:
        return [str(index), "0", f"{timestamp:.4f}", "0"] + [""] * (len(COLUMNS) - 4)
    lm = face.landmarks
    return (
        [str(index), str(face.face_id), f"{timestamp:.4f}", str(int(face.success)),
         _fmt(face.confidence, 3), _fmt(face.pitch, 2), _fmt(face.yaw, 2), _fmt(face.roll, 2),
         _fmt(face.visible_fraction, 3)]
        + [f"{v:.2f}" for v in lm[:, 0].tolist()]
        + [f"{v:.2f}" for v in lm[:, 1].tolist()]
    )


def _stems(paths: list[Path]) -> list[str]:
    """Output names: the input's stem, made unique (``a/x.jpg``, ``b/x.jpg`` -> ``x``, ``x-2``)."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = p.stem
        k = seen.get(stem, 0) + 1
        seen[stem] = k
        out.append(stem if k == 1 else f"{stem}-{k}")
    return out


def register_one(path: Path, stem: str, out_dir: Path, cfg, image_registrar, *,
                 patches: bool, images: bool) -> tuple[int, int, str | None]:
    """Register one input; returns (frames, faces, problem or None). Raises PattnetError when
    nothing could be read."""
    from pattnet.io import DecodeError, is_video, iter_frames
    from pattnet.io.atomic import tmp_path_for, write_png_atomic
    from pattnet.io.stream import read_ahead
    from pattnet.patches import save_patch_figure
    from pattnet.registration import Registrar

    frame_dir = out_dir / stem
    csv_path = out_dir / f"{stem}.csv"
    video = is_video(path)
    frames = iter_frames(path)
    first = next(frames)  # an unreadable file fails here, before anything is written
    reg = Registrar(cfg, static_image_mode=False) if video else image_registrar
    n_frames = n_faces = 0
    problem = None
    tmp = tmp_path_for(csv_path)
    try:
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)

            def handle(fr) -> None:
                nonlocal n_frames, n_faces
                n_frames += 1
                if not fr.faces:
                    w.writerow(face_row(fr.index, fr.timestamp, None))
                    return
                for f in fr.faces:
                    w.writerow(face_row(fr.index, fr.timestamp, f))
                    n_faces += 1
                    if (images or patches) and f.success:
                        frame_dir.mkdir(parents=True, exist_ok=True)
                        name = f"{fr.index:06d}" + (f"_f{f.face_id}" if f.face_id else "")
                        if images:
                            write_png_atomic(frame_dir / f"{name}.png", f.image)
                        if patches:
                            save_patch_figure(f, frame_dir / f"{name}_patches.png")

            try:
                for fr in reg.register_stream(read_ahead(itertools.chain([first], frames))):
                    handle(fr)
            except DecodeError as exc:
                problem = str(exc)
                fh.write(f"# stopped after frame {exc.frames_read - 1}: {exc}\n")
        os.replace(tmp, csv_path)
    finally:
        if tmp.exists():
            tmp.unlink()
        if video:
            reg.close()
    return n_frames, n_faces, problem


def run(args: argparse.Namespace) -> int:
    from pattnet.config import load_config
    from pattnet.errors import PattnetError
    from pattnet.io import expand_inputs
    from pattnet.registration import Registrar, RegistrationConfig

    overrides = list(args.overrides)
    if args.max_faces is not None:
        if args.max_faces < 1:
            raise PattnetError(f"--max-faces must be at least 1, got {args.max_faces}")
        overrides.append(f"max_faces={args.max_faces}")
    cfg = load_config(RegistrationConfig, args.config, overrides)
    paths = expand_inputs(args.inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with Registrar(cfg, static_image_mode=True) as image_reg:
        for path, stem in zip(paths, _stems(paths), strict=True):
            try:
                n, k, problem = register_one(path, stem, args.out, cfg, image_reg,
                                             patches=args.patches, images=not args.no_images)
            except PattnetError as exc:
                print(f"pattnet: skipped: {exc}", file=sys.stderr)
                failed.append(str(path))
                continue
            if problem:
                print(f"pattnet: incomplete: {problem}", file=sys.stderr)
                failed.append(str(path))
            print(f"{path}: {n} frame(s), {k} face(s) -> {args.out / stem}.csv")
    if failed and len(failed) == len(paths):
        raise PattnetError(f"no input could be registered ({len(failed)} failed)")
    if failed:
        print(f"pattnet: {len(failed)} of {len(paths)} input(s) had problems: "
              + ", ".join(failed), file=sys.stderr)
        return 1
    return 0
