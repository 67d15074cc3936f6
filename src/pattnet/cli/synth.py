"""``pattnet synth``: a controlled AU set from real faces (a manifest dataset + a schedule video).

Writes ``DIR/images/<identity>_<k>.png``, ``DIR/manifest.csv`` (for ``pattnet prepare --dataset
manifest``), ``DIR/synth_labels.csv`` (intensities and nuisance transform per image),
``DIR/schedule.mp4`` + ``DIR/schedule.csv`` (AUs on and off on a known schedule) and
``DIR/synth.json`` (config, seed, co-occurrence rates). See docs/synth.md.

With ``--meshes`` it writes a store of face meshes instead (no images, no prepare needed):
``DIR`` is then ready for ``pattnet train DIR --model pattnet-geometry``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "make a controlled AU dataset by applying FACS deformations to real faces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--faces", nargs="+", default=None, metavar="PATH",
                        help="photos, videos or folders of them; one identity per person (a video "
                             "is one person, each face of a group photo is one); 'bundled' or "
                             "no --faces: the 3 faces shipped with scikit-image and matplotlib")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--per-identity", type=int, default=100, metavar="N",
                        help="images per identity (default 100)")
    parser.add_argument("--frames-per-video", type=int, default=8, metavar="N",
                        help="source frames taken from each video, spread over it (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--folds", type=int, default=3,
                        help="subject-independent folds the set must support: at least this many "
                             "identities are required (default 3)")
    parser.add_argument("--size", type=int, default=384, help="image side in pixels (default 384)")
    parser.add_argument("--fps", type=int, default=12, help="schedule video frame rate (default 12)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="schedule video duration (default 10)")
    parser.add_argument("--no-video", action="store_true", help="skip the schedule video")
    parser.add_argument("--workers", type=int, default=1, help="rendering threads (default 1)")
    parser.add_argument("--sensor", action="store_true",
                        help="also degrade each image as a camera and a file would (exposure, "
                             "white balance, blur, noise, JPEG)")
    parser.add_argument("--relief", action="store_true",
                        help="also shade each deformed face under a light drawn for the image "
                             "(the change of the 3D surface's shading, in linear light)")
    parser.add_argument("--jaw", type=float, default=0.0, metavar="SHARE",
                        help="share of images whose mouth is also opened (a jaw drop, not "
                             "labelled: a dropped jaw is none of the 12 AUs; default 0)")
    parser.add_argument("--meshes", action="store_true",
                        help="write a store of synthetic face meshes (14 AUs: the 12 and lips "
                             "part, jaw drop) for models of the mesh, instead of images")
    parser.add_argument("--neutral", type=float, default=0.3, metavar="SHARE",
                        help="--meshes: share of neutral samples (default 0.3)")
    parser.add_argument("--lfw", type=int, default=40, metavar="N",
                        help="bundled faces: how many of scikit-image's LFW faces to add "
                             "(default 40, at most 100)")


def run(args: argparse.Namespace) -> int:
    from pattnet.errors import PattnetError
    from pattnet.synth import synthesize

    if args.fps < 1 or args.seconds <= 0:
        raise PattnetError("--fps and --seconds must be positive")
    if args.meshes:
        from pattnet.synth.meshes import MeshSettings, synthesize_meshes

        synthesize_meshes(args.out, args.faces, MeshSettings(
            per_identity=args.per_identity, seed=args.seed, neutral=args.neutral,
            bundled_lfw=args.lfw, folds=args.folds))
        return 0
    synthesize(
        args.out, args.faces, per_identity=args.per_identity,
        frames_per_video=args.frames_per_video, seed=args.seed, folds=args.folds,
        size=args.size, fps=args.fps, seconds=args.seconds, video=not args.no_video,
        workers=args.workers, sensor=args.sensor, bundled_lfw=args.lfw, jaw=args.jaw,
        relief=args.relief,
    )
    return 0
