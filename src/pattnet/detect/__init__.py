"""AU detection on videos, images and webcams: checkpoint + streaming frames -> per-frame table.

Pipeline (one input)::

    background thread:  decode (PyAV) -> register (MediaPipe + warp) -> crop 9 patches
                             |  bounded queue (a few batches: memory does not grow with length)
    calling thread:     batch faces -> model (bf16 autocast where the CPU has it) -> rows

Why two threads: decoding and registration are C++ (PyAV, MediaPipe, OpenCV) and the model is
PyTorch; all of them release the GIL, so on a 2-core machine registration of frame n+1 runs
while the model scores frame n. The queue is bounded, so a slow model makes the decoder wait
instead of filling memory.

Output: one row per frame and face, in the style of OpenFace 2.0 (``frame, timestamp, face_id,
success, confidence, pitch, yaw, roll, AU01_p ... AU01_c ...``). A frame without a face keeps a
row with ``success=0`` and empty values; ``*_p`` is the probability, ``*_c`` is 1 when the
probability reaches the model's threshold for that AU. Values are rounded (probabilities to 4
decimals, confidence 3, pose 2, time 4) identically in the DataFrame and the CSV, so the
DataFrame returned by :meth:`Detector.detect` equals :func:`read_detections` of the CSV.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.io.probe import try_probe_video
from pattnet.io.stream import put_until_stopped

log = logging.getLogger("pattnet.detect")

BASE_COLUMNS = ["frame", "timestamp", "face_id", "success", "confidence", "pitch", "yaw", "roll"]
_INT_COLUMNS = ("frame", "face_id", "success")
PROB_DECIMALS = 4


def columns(aus: Sequence[int]) -> list[str]:
    """Column names of a detection table for ``aus``."""
    return (BASE_COLUMNS + [f"{au_name(a)}_p" for a in aus] + [f"{au_name(a)}_c" for a in aus])


@dataclass
class FaceResult:
    """One face of one frame. ``prob`` (A,) is None when registration failed (``success`` False);
    ``attention`` (A, 9) is the patch attention of attention models, else None."""

    face_id: int
    success: bool
    confidence: float
    pitch: float
    yaw: float
    roll: float
    bbox: tuple[float, float, float, float]
    prob: np.ndarray | None = None
    attention: np.ndarray | None = None


@dataclass
class FrameResult:
    """One decoded frame: ``faces`` is empty when none was found. ``rgb`` only with keep_frames."""

    index: int
    timestamp: float
    faces: list[FaceResult] = field(default_factory=list)
    rgb: np.ndarray | None = None


def _r(x: float, nd: int) -> float:
    return round(float(x), nd) if x is not None and math.isfinite(x) else math.nan


def frame_rows(fr: FrameResult, threshold: np.ndarray) -> list[list[Any]]:
    """The table rows (Python values, already rounded) of one frame."""
    n = len(threshold)
    t = _r(fr.timestamp, 4)
    if not fr.faces:
        return [[fr.index, t, 0, 0] + [math.nan] * (4 + 2 * n)]
    rows = []
    for f in fr.faces:
        head = [fr.index, t, int(f.face_id), int(bool(f.success) and f.prob is not None),
                _r(f.confidence, 3), _r(f.pitch, 2), _r(f.yaw, 2), _r(f.roll, 2)]
        if f.prob is None or not f.success:
            rows.append(head + [math.nan] * (2 * n))
            continue
        p = [round(float(v), PROB_DECIMALS) for v in f.prob]
        c = [1.0 if pv >= th else 0.0 for pv, th in zip(p, threshold, strict=True)]
        rows.append(head + p + c)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return ""
        return "1" if v == 1.0 else "0" if v == 0.0 else repr(v)
    return str(v)


def to_dataframe(rows: list[list[Any]], aus: Sequence[int]) -> Any:
    """Rows -> DataFrame with the table's dtypes (ints for frame/face_id/success, else float)."""
    import pandas as pd

    cols = columns(aus)
    df = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
    return _fix_dtypes(df)


def _fix_dtypes(df: Any) -> Any:
    for c in df.columns:
        df[c] = df[c].astype("int64") if c in _INT_COLUMNS else df[c].astype("float64")
    return df


def read_detections(path: str | Path) -> Any:
    """Read a detection CSV into the DataFrame :meth:`Detector.detect` returns.

    ``#`` lines (the ``# stopped after frame N`` marker of a damaged video) are skipped; floats
    are parsed exactly (``round_trip``), so the values equal the API's.
    """
    import pandas as pd

    df = pd.read_csv(path, comment="#", float_precision="round_trip")
    return _fix_dtypes(df)


# --------------------------------------------------------------------------------------------
# producer side: decode + register + crop, in a background thread


@dataclass
class _Item:
    index: int
    timestamp: float
    faces: list[FaceResult]
    inputs: list[np.ndarray]  # one model input (uint8) per successful face, in ``faces`` order
    rgb: np.ndarray | None
    refs: list[np.ndarray] | None = None  # person references (subject-normalised models)

    def face_ids(self) -> list[int]:
        return [f.face_id for f in self.faces if f.success]


class _End:
    pass


@dataclass
class _Failure:
    exc: BaseException


def frame_count(source: str | Path | int) -> int | None:
    """Frames a video declares (for the progress bar's ETA); 1 for an image; None if unknown."""
    from pattnet.io import is_image, is_video

    if isinstance(source, int):
        return None
    if is_image(source):
        return 1
    if not is_video(source):
        return None
    info = try_probe_video(source)
    return (info.frames or None) if info else None


def frame_rate(source: str | Path | int) -> float | None:
    """Average frame rate of a video (for the overlay video), None if unknown."""
    from pattnet.io import is_video

    if isinstance(source, int) or not is_video(source):
        return None
    info = try_probe_video(source)
    return info.rate if info else None


def check_source(source: str | Path | int) -> None:
    """Refuse what is neither an image nor a video file before starting any thread."""
    from pattnet.io import is_image, is_video

    if isinstance(source, int):
        if source < 0:
            raise PattnetError(f"camera index must be 0 or more, got {source}")
        return
    p = Path(source)
    if p.is_dir():
        raise PattnetError(f"{p}: is a folder; Detector.detect takes one file (the CLI expands "
                           "folders)")
    if not p.exists():
        raise PattnetError(f"{p}: no such file")
    if not (is_image(p) or is_video(p)):
        raise PattnetError(f"{p}: unsupported file type '{p.suffix or p.name}' (expected an image "
                           "or a video file)")


# --------------------------------------------------------------------------------------------
# the detector


def default_workers(device_type: str = "cpu") -> int:
    """Model batches scored at once: 2 on a CPU (see :class:`Detector`), 1 on a GPU."""
    if device_type == "cuda":
        return 1
    return min(2, os.cpu_count() or 1)


def default_threads(workers: int) -> int:
    """torch threads per worker: the CPUs shared out among the workers, at least 1 each."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class Detector:
    """A loaded model plus the registration that feeds it; reuse it for many inputs.

    ``model``: path of a checkpoint made by ``pattnet export`` / :func:`pattnet.checkpoint.
    save_checkpoint`, or an already loaded :class:`~pattnet.checkpoint.Checkpoint`.
    ``aus``: report only these AUs (each must be one the model was trained for).
    ``threshold``: occurrence threshold for all AUs (default: the checkpoint's, per AU).
    ``precision``: ``auto`` (bf16 autocast where the CPU/GPU has it), ``bf16`` or ``fp32``.
    ``workers``: batches scored at the same time, each in its own thread (default: 2 on a CPU,
    1 on a GPU). On a small shared CPU two workers with one torch thread each beat one worker
    with two threads: they need no per-operator synchronisation, which stalls when other
    processes hold the cores (measured on the project's 2-core machine: 39 vs 18 frames/s).
    ``threads``: torch intra-op threads per worker; torch's setting is process-wide, so on a
    CPU the default (None) sets it to CPUs / workers; 0 leaves torch's setting alone.
    ``calibration_frames``: for a model trained with person-specific normalisation
    (``normalize: subject``), the frames of a video read before the first is scored, so that
    its first frames already have a reference face of that person (:mod:`pattnet.store.reference`);
    later frames use the running mean of the frames so far. ``prior_weight``: how many frames
    the training population's mean face counts for in that mean. A photo has only itself, so it
    is scored against (mostly) the population mean: less accurate than a video of the person.
    """

    def __init__(
        self,
        model: str | Path | Any,
        *,
        aus: Sequence[int] | None = None,
        threshold: float | None = None,
        max_faces: int = 1,
        batch_size: int = 32,
        device: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
        registration: Any = None,
        check_template: bool = True,
        queue_batches: int = 2,
        workers: int | None = None,
        calibration_frames: int = 60,
        prior_weight: float = 10.0,
    ) -> None:
        import torch

        from pattnet.checkpoint import Checkpoint, load_checkpoint
        from pattnet.registration import RegistrationConfig
        from pattnet.runtime import resolve_device, resolve_precision

        if batch_size < 1:
            raise PattnetError(f"batch size must be at least 1, got {batch_size}")
        if max_faces < 1:
            raise PattnetError(f"max faces must be at least 1, got {max_faces}")
        self.device = resolve_device(device)
        workers = default_workers(self.device.type) if workers is None else int(workers)
        if workers < 1:
            raise PattnetError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        if threads is None and self.device.type == "cpu":
            threads = default_threads(workers)
        if threads:
            if threads < 0:
                raise PattnetError(f"threads must be 0 (torch's default) or more, got {threads}")
            torch.set_num_threads(int(threads))
        if precision not in ("auto", "bf16", "fp32"):
            raise PattnetError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        self.amp_dtype = resolve_precision(precision, self.device)
        if isinstance(model, Checkpoint):
            self.checkpoint = model
            self.checkpoint.model.to(self.device)
        else:
            self.checkpoint = load_checkpoint(model, self.device, check_template=check_template)
        ck = self.checkpoint
        if aus is None:
            self.aus = list(ck.aus)
        else:
            want = [int(a) for a in aus]
            lacking = [a for a in want if a not in ck.aus]
            if lacking:
                raise PattnetError(
                    f"the model was trained for {', '.join(au_name(a) for a in ck.aus)}; it has no "
                    f"{', '.join(au_name(a) for a in lacking)}")
            if len(set(want)) != len(want):
                raise PattnetError(f"AUs requested twice: {want}")
            self.aus = want
        self._cols = np.array([ck.aus.index(a) for a in self.aus], dtype=np.int64)
        if threshold is not None:
            if not 0.0 <= float(threshold) <= 1.0:
                raise PattnetError(f"threshold must lie in [0, 1], got {threshold}")
            self.threshold = np.full(len(self.aus), float(threshold))
        else:
            self.threshold = np.asarray(ck.threshold, dtype=np.float64)[self._cols]
        if registration is None:
            registration = RegistrationConfig(max_faces=max_faces)
        elif registration.max_faces != max_faces and max_faces != 1:
            registration = RegistrationConfig(**{**registration.__dict__, "max_faces": max_faces})
        self.registration = registration
        self.batch_size = int(batch_size)
        self.queue_batches = max(1, int(queue_batches))
        if calibration_frames < 0 or prior_weight < 0:
            raise PattnetError("calibration frames and prior weight must be 0 or more")
        self.calibration_frames = int(calibration_frames)
        self.prior_weight = float(prior_weight)
        self._image_registrar: Any = None
        self._lock = threading.Lock()

    # -- model ------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self.checkpoint.model

    @property
    def input_kind(self) -> str:
        return self.checkpoint.input_kind

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def predict(self, inputs: np.ndarray,
                reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Model probabilities for a uint8 batch of patches (N, 9, 100, 100, 3) or holistic faces
        (N, 200, 200, 3): ``(prob (N, A) float32, attention (N, A, 9) float32 or None)`` for the
        detector's AUs. The same normalisation as training (:func:`to_model_input`).

        ``reference`` (float, the shape of ``inputs``): each face's person reference, for a model
        trained with ``normalize: subject``; None uses the training population's mean face.
        """
        import torch

        from pattnet.models.inputs import to_model_input

        ck = self.checkpoint
        if len(inputs) == 0:
            return np.zeros((0, len(self.aus)), np.float32), None
        ref: Any = None
        if ck.normalize == "subject":
            ref = (torch.from_numpy(ck.reference).expand(len(inputs), *ck.reference.shape)
                   if reference is None else reference)
        with torch.inference_mode():
            x = to_model_input(inputs, ck.input_kind, ck.mean, ck.std, True, self.device, ref,
                               self.amp_dtype)
            with self._autocast():
                out = ck.model(x)
            prob = torch.sigmoid(out.logits.float()).cpu().numpy()[:, self._cols]
            att = None
            if out.attention is not None:
                att = out.attention.float().cpu().numpy()[:, self._cols]
        return prob, att

    # -- registration -------------------------------------------------------------------------
    def _registrar_for(self, source: str | Path | int) -> tuple[Any, bool]:
        """(registrar, owned): a tracking one per video/webcam, one shared static one for photos."""
        from pattnet.io import is_video
        from pattnet.registration import Registrar

        if isinstance(source, int) or is_video(source):
            return Registrar(self.registration, static_image_mode=False), True
        with self._lock:
            if self._image_registrar is None:
                self._image_registrar = Registrar(self.registration, static_image_mode=True)
        return self._image_registrar, False

    def close(self) -> None:
        """Release MediaPipe (the model stays usable; a new registrar starts when needed)."""
        if self._image_registrar is not None:
            self._image_registrar.close()
            self._image_registrar = None

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _produce(self, source: str | Path | int, q: queue.Queue, stop: threading.Event,
                 keep_frames: bool, max_frames: int | None, max_side: int | None) -> None:
        from pattnet.io import Frame, iter_frames
        from pattnet.io.stream import read_ahead
        from pattnet.patches import crop_patches

        reg = None
        owned = False
        cv_level = _quiet_opencv() if isinstance(source, int) else None
        try:
            reg, owned = self._registrar_for(source)
            holistic = self.input_kind == "holistic"
            shown: dict[int, np.ndarray] = {}  # the frames in flight, when the caller wants them

            def frames() -> Iterator[Frame]:
                decoded = iter_frames(source, max_side=max_side)
                if not isinstance(source, int):  # a file: decode ahead (a camera: latest frame)
                    decoded = read_ahead(decoded)
                for fr in decoded:
                    if keep_frames:
                        shown[fr.index] = fr.rgb
                    yield fr

            for n, fr in enumerate(reg.register_stream(frames()), start=1):
                if stop.is_set():
                    break
                faces, inputs = [], []
                for f in fr.faces:
                    res = FaceResult(int(f.face_id), bool(f.success), float(f.confidence),
                                     float(f.pitch), float(f.yaw), float(f.roll),
                                     tuple(float(v) for v in f.bbox))
                    faces.append(res)
                    if f.success:
                        patches, whole = crop_patches(f.image)
                        inputs.append(whole if holistic else patches)
                item = _Item(fr.index, fr.timestamp, faces, inputs, shown.pop(fr.index, None))
                if not put_until_stopped(q, item, stop):
                    return
                if max_frames is not None and n >= max_frames:
                    break
            put_until_stopped(q, _End(), stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put_until_stopped(q, _Failure(exc), stop)
        finally:
            _restore_opencv(cv_level)
            if owned and reg is not None:
                reg.close()

    # -- streaming ------------------------------------------------------------------------------
    def stream(
        self,
        source: str | Path | int,
        *,
        max_frames: int | None = None,
        keep_frames: bool = False,
        live: bool | None = None,
        max_side: int | None = None,
    ) -> Iterator[FrameResult]:
        """Yield one :class:`FrameResult` per decoded frame, in order, with bounded memory.

        ``live`` (default: True for a webcam) scores whatever has been registered as soon as the
        model is free instead of waiting for a full batch (lower latency, smaller batches).
        ``keep_frames`` attaches the source RGB frame (for overlays). A video damaged part way
        yields the frames before the damage, then raises :class:`pattnet.io.DecodeError`.
        """
        check_source(source)
        if live is None:
            live = isinstance(source, int)
        # the queue holds registered frames (patches: 9x30 kB per face); a few batches ahead is
        # enough to keep the model busy and bounds memory whatever the video's length
        maxsize = max(4, self.queue_batches * self.batch_size)
        q: queue.Queue = queue.Queue(maxsize=maxsize)
        stop = threading.Event()
        th = threading.Thread(target=self._produce, name="pattnet-detect-decode",
                              args=(source, q, stop, keep_frames, max_frames, max_side),
                              daemon=True)
        th.start()
        pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pattnet-detect-model")
        inflight: collections.deque = collections.deque()  # futures, in frame order
        pending: list[_Item] = []
        n_inputs = 0
        ck = self.checkpoint
        running = None
        calib: list[_Item] = []
        calib_left = 0
        if ck.normalize == "subject":
            from pattnet.io import is_video
            from pattnet.store.reference import RunningReference

            running = RunningReference(ck.reference, self.prior_weight)
            if isinstance(source, int) or is_video(source):
                calib_left = self.calibration_frames

        def submit(batch: list[_Item]) -> Iterator[FrameResult]:
            """Score ``batch``; with several workers, return finished batches in order."""
            if pool is None:
                yield from self._score(batch)
                return
            inflight.append(pool.submit(self._score, batch))
            while len(inflight) >= self.workers or (inflight and inflight[0].done()):
                yield from inflight.popleft().result()

        def drain() -> Iterator[FrameResult]:
            while inflight:
                yield from inflight.popleft().result()

        def end_calibration() -> list[_Item]:
            """References of the buffered first frames: each face's mean over all of them."""
            nonlocal calib, calib_left
            calib_left = 0
            assert running is not None
            refs = {fid: running.reference(fid) for it in calib for fid in it.face_ids()}
            for it in calib:
                it.refs = [refs[fid] for fid in it.face_ids()]
            out, calib = calib, []
            return out

        def ready(item: _Item) -> list[_Item]:
            """Items ready to score once ``item`` has arrived (subject-normalised models hold
            the first ``calibration_frames`` back)."""
            if running is None:
                return [item]
            for fid, x in zip(item.face_ids(), item.inputs, strict=True):
                running.update(fid, x)
            if calib_left > 0:
                calib.append(item)
                return end_calibration() if len(calib) >= calib_left else []
            item.refs = [running.reference(fid) for fid in item.face_ids()]
            return [item]

        def flush() -> list[_Item]:
            return pending + (end_calibration() if calib else [])

        try:
            while True:
                item = q.get()
                if isinstance(item, _End):
                    yield from submit(flush())
                    yield from drain()
                    return
                if isinstance(item, _Failure):
                    yield from submit(flush())  # frames before the damage are kept
                    yield from drain()
                    raise item.exc
                for it in ready(item):
                    pending.append(it)
                    n_inputs += len(it.inputs)
                    if n_inputs >= self.batch_size or (live and q.empty()):
                        batch, pending, n_inputs = pending, [], 0
                        yield from submit(batch)
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    q.get_nowait()
            th.join(timeout=5.0)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _score(self, items: list[_Item]) -> list[FrameResult]:
        """Run the model on every successful face of ``items`` (one batch) -> frame results."""
        inputs = [x for it in items for x in it.inputs]
        refs = None
        if inputs and all(it.refs is not None for it in items):
            refs = np.stack([r for it in items for r in it.refs])  # type: ignore[union-attr]
        prob, att = self.predict(np.stack(inputs), refs) if inputs else (None, None)
        k = 0
        out = []
        for it in items:
            for f in it.faces:
                if f.success:
                    f.prob = prob[k]
                    f.attention = att[k] if att is not None else None
                    k += 1
            out.append(FrameResult(it.index, it.timestamp, it.faces, it.rgb))
        return out

    # -- whole inputs -------------------------------------------------------------------------
    def detect(
        self,
        source: str | Path | int,
        *,
        max_frames: int | None = None,
        progress: bool = False,
    ) -> Any:
        """Detection table (pandas DataFrame) of one video, image or webcam (an int).

        One row per frame and face; a frame without a face has one ``success=0`` row. A video
        damaged part way returns the frames before the damage, with a warning and the reason in
        ``df.attrs["problem"]``; one with no decodable frame raises :class:`PattnetError`.
        """
        from pattnet.io import DecodeError

        rows: list[list[Any]] = []
        problem = None
        bar = _progress(_total(source, max_frames),
                        _label(source), progress)
        try:
            for fr in self.stream(source, max_frames=max_frames):
                rows.extend(frame_rows(fr, self.threshold))
                bar.update(1)
        except DecodeError as exc:
            if exc.frames_read == 0:
                raise
            problem = str(exc)
            warnings.warn(problem, stacklevel=2)
        finally:
            bar.close()
        df = to_dataframe(rows, self.aus)
        if problem:
            df.attrs["problem"] = problem
        return df

    def detect_to_files(
        self,
        source: str | Path | int,
        csv_path: str | Path,
        *,
        overlay: str | Path | None = None,
        plot: str | Path | None = None,
        max_frames: int | None = None,
        progress: bool = True,
        on_frame: Callable[[FrameResult], None] | None = None,
    ) -> DetectSummary:
        """Stream one input to a CSV (written as it goes), and optionally an overlay and a plot.

        The CSV grows in ``<name>.partial`` (flushed every batch) and is renamed to ``csv_path``
        at the end, so a crash at frame 9,000 leaves the rows of frames 1..~8,999 in the
        ``.partial`` file and never a half-written ``csv_path``. A damaged video or Ctrl-C (on a
        file) ends the CSV with a ``# stopped after frame N: ...`` line and keeps it; Ctrl-C is
        how a webcam run ends, so there it just closes the table.
        """
        from pattnet.io import DecodeError

        check_source(source)
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        live = isinstance(source, int)
        partial = csv_path.with_name(csv_path.name + ".partial")
        writer = None
        if overlay is not None:
            from pattnet.detect.overlay import OverlayWriter

            writer = OverlayWriter(overlay, self.aus, self.threshold,
                                   fps=frame_rate(source) or 30.0)
        summary = DetectSummary(source=str(source), csv=csv_path)
        bar = _progress(_total(source, max_frames),
                        _label(source), progress)
        t0 = time.perf_counter()
        last = -1
        fh: TextIO | None = None
        try:
            frames = self.stream(source, max_frames=max_frames, keep_frames=writer is not None)
            fh = partial.open("w", newline="")
            fh.write(",".join(columns(self.aus)) + "\n")
            try:
                for fr in frames:
                    for row in frame_rows(fr, self.threshold):
                        fh.write(",".join(_fmt(v) for v in row) + "\n")
                    summary.frames += 1
                    summary.faces += sum(1 for f in fr.faces if f.success)
                    last = fr.index
                    if writer is not None:
                        writer.write(fr)
                    if on_frame is not None:
                        on_frame(fr)
                    bar.update(1)
                    if summary.frames % 32 == 0:  # a crash loses at most ~one batch of rows
                        fh.flush()
            except DecodeError as exc:
                if exc.frames_read == 0 or summary.frames == 0:
                    raise
                summary.problem = str(exc)
                fh.write(f"# stopped after frame {last}: {exc}\n")
            except KeyboardInterrupt:
                if summary.frames == 0:
                    raise
                summary.interrupted = True
                if not live:
                    summary.problem = f"interrupted after frame {last}"
                    fh.write(f"# stopped after frame {last}: interrupted\n")
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            fh = None
            os.replace(partial, csv_path)
        except BaseException:
            if fh is not None:
                fh.close()
            # nothing useful written: do not leave an empty .partial behind
            if summary.frames == 0 and partial.exists():
                partial.unlink()
            if writer is not None:
                writer.abort()
            raise
        finally:
            bar.close()
        summary.seconds = time.perf_counter() - t0
        if writer is not None:
            summary.overlay = writer.close()
        if plot is not None and summary.frames:
            from pattnet.detect.overlay import plot_timeline

            summary.plot = plot_timeline(read_detections(csv_path), self.aus, self.threshold, plot,
                                         title=_label(source))
        return summary


@dataclass
class DetectSummary:
    source: str
    csv: Path
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    problem: str | None = None
    interrupted: bool = False
    overlay: Path | None = None
    plot: Path | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _total(source: str | Path | int, max_frames: int | None) -> int | None:
    n = frame_count(source)
    if max_frames is None:
        return n
    return max_frames if n is None else min(n, max_frames)


def _label(source: str | Path | int) -> str:
    return f"camera {source}" if isinstance(source, int) else Path(source).name


def _progress(total: int | None, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="frame", leave=False,
                dynamic_ncols=True, mininterval=0.5)


def _quiet_opencv() -> int | None:
    """Silence OpenCV's own warnings (a missing camera index prints two lines of them; pattnet's
    one-line error says it better). Returns the previous level for :func:`_restore_opencv`."""
    try:
        import cv2

        prev = int(cv2.getLogLevel())
        cv2.setLogLevel(0)  # 0 = silent
        return prev
    except Exception:  # pragma: no cover - OpenCV without the logging API
        return None


def _restore_opencv(level: int | None) -> None:
    if level is not None:
        import cv2

        cv2.setLogLevel(level)


__all__ = ["BASE_COLUMNS", "DetectSummary", "Detector", "FaceResult", "FrameResult", "columns",
           "default_threads", "default_workers", "frame_rows", "read_detections", "to_dataframe"]
