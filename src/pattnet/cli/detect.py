"""``pattnet detect INPUT... [--model model.pt] [--out DIR]``: AU probabilities per frame and face.

Without ``--model`` the model that ships inside pattnet is used (``pattnet models`` says what it
was trained on and how it does on real faces); without ``--out`` results go to ``./detections``.

Writes ``DIR/<stem>.csv`` per input (one row per frame and face; a frame without a face keeps a
``success=0`` row), in OpenFace 2.0's style: ``frame, timestamp, face_id, success, confidence,
pitch, yaw, roll, AU01_p ..., AU01_c ...``. The CSV grows as ``<stem>.csv.<pid>-<token>.partial``
and is renamed when the input is done; a damaged video keeps the frames before the damage and ends
with ``# stopped after frame N: ...`` (read with ``pandas.read_csv(path, comment="#")``).
``--overlay`` adds the video with face boxes and AU bars, ``--plot`` a timeline PNG.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pattnet.cli.outcome import Outcome
from pattnet.constants import DETECT_FORMATS

if TYPE_CHECKING:
    from pattnet.detect import Detector

HELP = "detect action units in videos, images, folders or a webcam (CSV, overlay video, plot)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="video files, image files, or folders of either")
    parser.add_argument("--webcam", type=int, default=None, metavar="N",
                        help="read camera N (e.g. 0) instead of files; stop with Ctrl-C")
    parser.add_argument("--model", type=Path, default=None, metavar="CKPT",
                        help="model file made by 'pattnet export' (default: the bundled model, "
                             "see 'pattnet models')")
    parser.add_argument("--out", type=Path, default=Path("detections"), metavar="DIR",
                        help="output folder (default ./detections)")
    parser.add_argument("--max-faces", type=int, default=1, metavar="N",
                        help="faces per frame (default 1)")
    parser.add_argument("--aus", default=None,
                        help="comma-separated AUs to report (default: all the model has)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="occurrence threshold for *_c (default: the model's)")
    parser.add_argument("--overlay", nargs="?", const="", default=None, metavar="FILE",
                        help="also write the input with face boxes and AU bars: FILE for a single "
                             "input, else DIR/<stem>_overlay.mp4 (.png for a photo)")
    parser.add_argument("--plot", action="store_true",
                        help="also write DIR/<stem>_timeline.png (AU probabilities over time)")
    parser.add_argument("--batch-size", type=int, default=32, help="faces per model call (default 32)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="stop each input after N frames")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default auto)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="auto: bf16 autocast where the CPU/GPU supports it")
    parser.add_argument("--workers", type=int, default=None,
                        help="model batches scored in parallel threads (default: 2 on a CPU, 1 "
                             "on a GPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default on a CPU: CPUs / workers)")
    parser.add_argument("--calibration-frames", type=int, default=60, metavar="N",
                        help="models trained with person-specific normalisation: video frames "
                             "read to build the person's reference face before the first is "
                             "scored (default 60)")
    parser.add_argument("--reference", default="auto", metavar="auto|neutral|mean|prior|FILE",
                        help="models trained with person-specific normalisation: what each face "
                             "is scored against. neutral: the person's least expressive frames; "
                             "mean: the mean of their frames; prior: the training population's "
                             "neutral face; FILE: a neutral photo of the person (the most "
                             "accurate); auto (default): prior for a photo, the model's own "
                             "choice for a video. neutral or mean with several photos takes them "
                             "as one person's and pools them")
    parser.add_argument("--hysteresis", type=float, default=0.1, metavar="M",
                        help="videos: an AU turns on at its threshold + M and off below its "
                             "threshold - M, so that jitter does not make it flicker (default "
                             "0.1; 0 = the bare threshold)")
    parser.add_argument("--format", choices=DETECT_FORMATS, default="pattnet",
                        help="the CSV's layout: pattnet (default) or openface (OpenFace 2.0's "
                             "column names, order and units, frames from 1; docs/detect.md)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace results of the same name in DIR (default: keep them and "
                             "write the new ones beside them, e.g. clip-2.csv)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parse_aus(text: str | None) -> list[int] | None:
    from pattnet.errors import PattnetError

    if text is None:
        return None
    try:
        aus = [int(a.upper().removeprefix("AU")) for a in text.replace(" ", "").split(",") if a]
    except ValueError as exc:
        raise PattnetError(f"--aus {text!r}: expected numbers like 1,2,4,12") from exc
    if not aus:
        raise PattnetError("--aus is empty")
    return aus


def _sources(args: argparse.Namespace) -> tuple[list[Path | int], list[str]]:
    """What to read and the output name of each; bad combinations refused before any work."""
    from pattnet.errors import PattnetError
    from pattnet.io import expand_inputs, output_stems

    if args.webcam is not None and args.inputs:
        raise PattnetError("give input files or --webcam N, not both")
    if args.webcam is None and not args.inputs:
        raise PattnetError("no input: give video/image files or folders, or --webcam N")
    if args.max_faces < 1:
        raise PattnetError(f"--max-faces must be at least 1, got {args.max_faces}")
    if args.max_frames is not None and args.max_frames < 1:
        raise PattnetError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.webcam is not None:
        if args.webcam < 0:
            raise PattnetError(f"--webcam must be a camera index (0, 1, ...), got {args.webcam}")
        return [args.webcam], [f"webcam{args.webcam}"]
    paths = expand_inputs(args.inputs)
    if args.overlay and len(paths) > 1:
        raise PattnetError(f"--overlay {args.overlay}: one file for {len(paths)} inputs; give "
                           "--overlay without a file name to write DIR/<stem>_overlay.mp4 per input")
    if args.overlay:
        from pattnet.detect.overlay import OVERLAY_SUFFIXES
        from pattnet.io.atomic import check_output_file

        check_output_file(args.overlay, "--overlay", OVERLAY_SUFFIXES)
    return list(paths), output_stems(paths)


def _detect_one(det: Detector, src: Path | int, stem: str, args: argparse.Namespace,
                outcome: Outcome) -> bool:
    """Detect one input into its files; False when the user interrupted (stop the rest)."""
    from pattnet.errors import PattnetError
    from pattnet.io import is_image, is_video

    if isinstance(src, Path) and not (is_video(src) or is_image(src)):
        outcome.fail(src, f"unsupported file type '{src.suffix or src.name}' (expected an image "
                          "or a video file)")
        return True
    overlay = None
    if args.overlay is not None:
        photo = isinstance(src, Path) and is_image(src)
        overlay = Path(args.overlay) if args.overlay else \
            args.out / f"{stem}_overlay{'.png' if photo else '.mp4'}"
    plot = args.out / f"{stem}_timeline.png" if args.plot else None
    try:
        s = det.detect_to_files(src, args.out / f"{stem}.csv", overlay=overlay, plot=plot,
                                max_frames=args.max_frames, progress=not args.no_progress,
                                overwrite=args.overwrite, layout=args.format)
    except PattnetError as exc:
        outcome.fail(src, str(exc))
        return True
    except OSError as exc:  # one input's files that cannot be written never stop the others
        from pattnet.io.atomic import os_error_line

        outcome.fail(src, f"cannot write its results ({os_error_line(exc, args.out)})")
        return True
    if s.problem:  # a file cut short by damage or by Ctrl-C/SIGTERM: kept, and exit 1
        outcome.stopped_early(src, s.problem)
    if s.renamed_from is not None:
        print(f"pattnet: note: {s.renamed_from} holds another run's result; kept it and wrote "
              f"{s.csv.name} beside it (--overwrite replaces it)", file=sys.stderr)
    extra = "".join(f", {p}" for p in (s.overlay, s.plot) if p is not None)
    print(f"{src if isinstance(src, Path) else f'camera {src}'}: {s.frames} frame(s), "
          f"{s.faces} face(s), {s.fps:.1f} frames/s -> {s.csv}{extra}")
    if isinstance(src, Path) and is_image(src):
        _print_photo(det, s.csv)
    return not s.interrupted


def _print_photo(det: Detector, csv: Path) -> None:
    """A photo's result on screen: per face, the AUs at or above their thresholds."""
    from pattnet.detect import read_detections

    df = read_detections(csv)
    for _, row in df[df["success"] == 1].iterrows():
        on = [f"AU{a} {row[f'AU{a:02d}_p']:.2f}" for a in det.aus if row[f"AU{a:02d}_c"] == 1]
        print(f"  face {int(row['face_id'])}: " + (", ".join(on) if on else "no AU at its "
                                                     "threshold"))


def _references(det: Detector, choice: str, sources: list[Path | int]
                ) -> Callable[[Path | int], Any]:
    """The reference each input gets: ``choice`` (a name), the person's reference made from a
    photo FILE, or, for neutral/mean with several photos, those photos pooled as one person's."""
    from pattnet.detect.calibration import CHOICES
    from pattnet.errors import PattnetError
    from pattnet.io import is_image

    if choice not in CHOICES:
        ref_file = Path(choice)
        if not ref_file.is_file():
            raise PattnetError(f"--reference {choice}: not one of {', '.join(CHOICES)} and no "
                               "such file (give a neutral photo of the person)")
        ref = det.person_reference([ref_file], "mean")
        print(f"pattnet: reference: {ref_file} (the person's own face)", file=sys.stderr)
        return lambda src: ref
    photos = [s for s in sources if isinstance(s, Path) and is_image(s)]
    if choice in ("neutral", "mean") and len(photos) > 1:
        pooled = det.person_reference(photos, choice)
        print(f"pattnet: reference: {choice} of {len(photos)} photos taken as one person's "
              f"({pooled.frames} averaged)", file=sys.stderr)
        return lambda src: pooled if src in photos else choice
    return lambda src: choice


def run(args: argparse.Namespace) -> int:
    from pattnet.detect import Detector
    from pattnet.io.atomic import ensure_output_dir

    sources, stems = _sources(args)
    # --out was checked by pattnet.cli.check_outputs; the model and the device are checked
    # before the folder is made: a refused --model leaves no empty folder behind
    det = Detector(args.model, aus=_parse_aus(args.aus), threshold=args.threshold,
                   max_faces=args.max_faces, batch_size=args.batch_size, device=args.device,
                   precision=args.precision, workers=args.workers, threads=args.threads,
                   calibration_frames=args.calibration_frames, hysteresis=args.hysteresis)
    try:
        ensure_output_dir(args.out)
    except BaseException:
        det.close()
        raise
    outcome = Outcome(len(sources))
    try:
        reference_of = _references(det, args.reference, sources)
        for src, stem in zip(sources, stems, strict=True):
            det.reference = reference_of(src)
            if not _detect_one(det, src, stem, args, outcome):
                break
    finally:
        det.close()
    return outcome.exit_code()
