"""``pattnet register``: faces of images, folders or videos into the canonical 512x512 frame.

Writes, per input, ``DIR/<stem>/<frame:06d>.png`` (registered face; extra faces of a frame as
``<frame:06d>_f<face_id>.png``) and ``DIR/<stem>.csv`` with one row per face per frame, and one
``success=0`` row for a frame without a face, so a CSV never has fewer rows than the input has
frames. A video damaged part way keeps the frames before the damage; its CSV then ends with a
``# stopped ...`` comment line (read it with ``pandas.read_csv(path, comment="#")``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pattnet.cli.outcome import Outcome

HELP = "register faces (images, folders, videos) into the paper's canonical 512x512 frame"


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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace results of the same name in DIR (default: keep them and "
                             "write the new ones beside them, e.g. clip-2.csv, clip-2/)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML/TOML file with RegistrationConfig fields")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[],
                        metavar="KEY=VALUE", help="override RegistrationConfig fields (repeatable)")


def run(args: argparse.Namespace) -> int:
    from pattnet.config import load_config
    from pattnet.errors import PattnetError
    from pattnet.io import expand_inputs, output_stems
    from pattnet.io.atomic import ensure_output_dir
    from pattnet.patches import save_patch_figure
    from pattnet.registration import Registrar, RegistrationConfig
    from pattnet.registration.output import register_to_files

    overrides = list(args.overrides)
    if args.max_faces is not None:
        if args.max_faces < 1:
            raise PattnetError(f"--max-faces must be at least 1, got {args.max_faces}")
        overrides.append(f"max_faces={args.max_faces}")
    cfg = load_config(RegistrationConfig, args.config, overrides)
    paths = expand_inputs(args.inputs)
    ensure_output_dir(args.out)
    outcome = Outcome(len(paths))
    with Registrar(cfg, static_image_mode=True) as image_reg:
        for path, stem in zip(paths, output_stems(paths), strict=True):
            try:
                s = register_to_files(path, stem, args.out, cfg, image_reg,
                                      images=not args.no_images,
                                      picture=save_patch_figure if args.patches else None,
                                      overwrite=args.overwrite)
            except PattnetError as exc:
                outcome.fail(path, str(exc))
                continue
            if s.problem:
                outcome.stopped_early(path, s.problem)
            if s.stem != stem:
                print(f"pattnet: note: {args.out / stem} holds another run's result; kept it and "
                      f"wrote {s.stem} beside it (--overwrite replaces it)", file=sys.stderr)
            print(f"{path}: {s.frames} frame(s), {s.faces} face(s) -> {s.csv}")
    return outcome.exit_code()
