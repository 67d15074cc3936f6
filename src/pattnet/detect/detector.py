"""The detector: a loaded model and its registration, turning one input into frame results.

Why one object for many inputs: loading the checkpoint and starting MediaPipe cost far more than
a photo's detection, so a :class:`Detector` is built once and reused; each input gets its own
threads (:mod:`pattnet.detect.pipeline`) that end with it.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pattnet.detect.calibration import (
    Calibration,
    PersonReference,
    check_choice,
    first_faces,
    person_reference,
)
from pattnet.detect.occurrence import Occurrence
from pattnet.detect.options import registration_settings, select_aus, thresholds
from pattnet.detect.pipeline import FrameProducer, InOrderScorer, consume, score_items
from pattnet.detect.schema import FrameResult, frame_rows, to_dataframe
from pattnet.detect.sources import check_source, default_threads, default_workers, is_moving
from pattnet.detect.writers import DetectionFiles, DetectSummary, progress_bar
from pattnet.errors import PattnetError


class Detector:
    """A loaded model plus the registration that feeds it; reuse it for many inputs.

    ``model``: path of a checkpoint made by ``pattnet export`` / :func:`pattnet.checkpoint.
    save_checkpoint`, or an already loaded :class:`~pattnet.checkpoint.Checkpoint`; None (the
    default) is the model that ships inside pattnet (:mod:`pattnet.checkpoint.bundled`).
    ``aus``: report only these AUs (each must be one the model was trained for).
    ``threshold``: occurrence threshold for all AUs (default: the checkpoint's, per AU).
    ``precision``: ``auto`` (bf16 autocast where the CPU/GPU has it), ``bf16`` or ``fp32``.
    ``workers``: batches scored at the same time, each in its own thread (default: 2 on a CPU,
    1 on a GPU). On a small shared CPU two workers with one torch thread each beat one worker
    with two threads: they need no per-operator synchronisation, which stalls when other
    processes hold the cores.
    ``threads``: torch intra-op threads per worker; torch's setting is process-wide, so on a
    CPU the default (None) sets it to CPUs / workers; 0 leaves torch's setting alone.
    ``calibration_frames``: for a model trained with person-specific normalisation
    (``normalize: subject``), the frames of a video read before the first is scored, so that
    its first frames already have a reference face of that person (:mod:`pattnet.store.reference`);
    later frames use the running mean of the frames so far. ``prior_weight``: how many frames
    the training population's mean face counts for in that mean. A photo has only itself, so it
    is scored against (mostly) the population mean: less accurate than a video of the person.
    ``hysteresis``: in a video an AU turns on at its threshold plus this and off below its
    threshold minus this (:mod:`pattnet.detect.occurrence`), so that jitter near the threshold
    does not make it flicker; 0 uses the bare threshold, as for a photo.
    ``reference``: what each face of a subject-normalised model is scored against: ``auto``,
    ``neutral``, ``mean``, ``prior`` or a :class:`~pattnet.detect.calibration.PersonReference`
    (:meth:`person_reference` makes one from a neutral photo of the person, or pools a folder of
    their photos); :mod:`pattnet.detect.calibration` says what each means.
    """

    def __init__(
        self,
        model: str | Path | Any = None,
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
        hysteresis: float = 0.1,
        reference: str | PersonReference = "auto",
    ) -> None:
        from pattnet.runtime import resolve_device, resolve_precision

        if batch_size < 1:
            raise PattnetError(f"batch size must be at least 1, got {batch_size}")
        if max_faces < 1:
            raise PattnetError(f"max faces must be at least 1, got {max_faces}")
        self.device = resolve_device(device)
        self.workers = _workers(workers, self.device.type)
        _set_torch_threads(threads, self.device.type, self.workers)
        if precision not in ("auto", "bf16", "fp32"):
            raise PattnetError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        self.amp_dtype = resolve_precision(precision, self.device)
        self.checkpoint = _load(model, self.device, check_template)
        ck = self.checkpoint
        self.aus = select_aus(aus, ck.aus)
        self._cols = np.array([ck.aus.index(a) for a in self.aus], dtype=np.int64)
        self.threshold = thresholds(threshold, ck.threshold, self._cols)
        self.registration = registration_settings(registration, max_faces)
        self.batch_size = int(batch_size)
        self.queue_batches = max(1, int(queue_batches))
        if calibration_frames < 0 or prior_weight < 0:
            raise PattnetError("calibration frames and prior weight must be 0 or more")
        self.calibration_frames = int(calibration_frames)
        self.prior_weight = float(prior_weight)
        if not 0.0 <= hysteresis < 0.5:
            raise PattnetError(f"hysteresis must lie in [0, 0.5), got {hysteresis}")
        self.hysteresis = float(hysteresis)
        self.reference = reference
        self._image_registrar: Any = None
        self._lock = threading.Lock()

    @property
    def reference(self) -> str | PersonReference:
        """What each face is scored against (see the class docs); settable between inputs."""
        return self._reference

    @reference.setter
    def reference(self, choice: str | PersonReference) -> None:
        choice = check_choice(choice)
        if self.checkpoint.normalize != "subject" and choice not in ("auto", "prior"):
            raise PattnetError("this model was trained without person references (normalize: "
                               "global): it scores every face against its training population, "
                               "so a reference does not apply")
        self._reference = choice

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

    def predict(self, inputs: np.ndarray | dict[str, np.ndarray],
                reference: np.ndarray | dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Model probabilities for a batch: ``(prob (N, A) float32, attention (N, A, 9) float32
        or None)`` for the detector's AUs. The same normalisation as training
        (:func:`~pattnet.models.inputs.model_inputs`).

        ``inputs``: a uint8 batch of patches (N, 9, 100, 100, 3) or holistic faces
        (N, 200, 200, 3) for a model of one image input, or a dict by input kind (``mesh``:
        (N, 478, 3) canonical meshes). ``reference``, the same way: each face's person
        reference (``normalize: subject``); what is not given is the training population's.
        """
        prob, att = self._probabilities(inputs, reference)
        return prob[:, self._cols], (None if att is None else att[:, self._cols])

    def _probabilities(self, inputs: np.ndarray | dict[str, np.ndarray],
                       reference: np.ndarray | dict[str, np.ndarray] | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`predict` for every AU of the model (the reference estimate counts them all,
        whichever the caller reports)."""
        import torch

        from pattnet.models.inputs import model_inputs

        ck = self.checkpoint
        kinds = ck.input_kinds
        arrays = inputs if isinstance(inputs, dict) else {kinds[0]: inputs}
        n = len(next(iter(arrays.values())))
        if n == 0:
            return np.zeros((0, len(ck.aus)), np.float32), None
        given = reference if isinstance(reference, dict) else (
            {} if reference is None else {kinds[0]: reference})
        refs: dict[str, Any] = {}
        for k in kinds:
            prior = ck.mesh_reference if k == "mesh" else (
                ck.reference if ck.normalize == "subject" else None)
            if k in given:
                refs[k] = given[k]
            elif prior is not None:
                refs[k] = torch.from_numpy(prior).expand(n, *prior.shape)
        with torch.inference_mode():
            x = model_inputs(arrays, kinds, ck.mean, ck.std, True, self.device, refs,
                             self.amp_dtype)
            with self._autocast():
                out = ck.model(x)
            prob = torch.sigmoid(out.logits.float()).cpu().numpy()
            if not np.isfinite(prob).all():
                # never written out as an empty cell that reads as "no AU"
                raise PattnetError(f"{ck.path}: the model gave a non-finite probability "
                                   "(NaN) for a face; the model is unusable, not the input")
            att = None
            if out.attention is not None:
                att = out.attention.float().cpu().numpy()
        return prob, att

    def _prior_prob(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Every AU's probability of each face against the population's reference."""
        return self._probabilities(arrays)[0]

    def person_reference(self, sources: Sequence[str | Path], mode: str = "mean",
                         max_frames: int | None = None) -> PersonReference:
        """One person's reference made from their own faces: ``mean`` of every face in
        ``sources`` (a neutral photo of the person: the most accurate reference there is), or
        ``neutral``, the least expressive of them (a folder of the person's photos with
        expressions among them). Each photo or frame must show that one person (the first
        face found is taken). Use it as ``Detector(reference=...)``, or set :attr:`reference`.
        """
        if self.checkpoint.normalize != "subject":
            raise PattnetError("this model was trained without person references (normalize: "
                               "global); a reference does not apply")
        faces: list[dict[str, np.ndarray]] = []
        for src in sources:
            check_source(src)
            producer = FrameProducer(src, self._registrar_for, kinds=self.checkpoint.input_kinds,
                                     maxsize=8, keep_frames=False, max_frames=max_frames,
                                     max_side=None)
            faces += first_faces(producer)
        return person_reference(faces, mode, ", ".join(str(s) for s in sources), self._prior_prob)

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
        # the queue holds registered frames (nine patches per face); a few batches ahead is
        # enough to keep the model busy and bounds memory whatever the video's length
        producer = FrameProducer(source, self._registrar_for, kinds=self.checkpoint.input_kinds,
                                 maxsize=max(4, self.queue_batches * self.batch_size),
                                 keep_frames=keep_frames, max_frames=max_frames, max_side=max_side)
        producer.start()
        scorer = InOrderScorer(partial(score_items, predict=self.predict), self.workers)
        calibration = Calibration.for_source(self.checkpoint, source, self.calibration_frames,
                                             self.prior_weight, self.reference,
                                             score_prior=self._prior_prob, live=live)
        occurrence = Occurrence(self.threshold, self.hysteresis if is_moving(source) else 0.0)
        try:
            for fr in consume(producer, scorer, calibration, self.batch_size, live):
                yield occurrence.update(fr)
        finally:
            producer.close()
            scorer.close()

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

        check_source(source)
        rows: list[list[Any]] = []
        problem = None
        bar = progress_bar(source, max_frames, progress)
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
        overwrite: bool = False,
        layout: str = "pattnet",
    ) -> DetectSummary:
        """Stream one input to a CSV (written as it goes), and optionally an overlay and a plot.

        The CSV grows in ``<name>.<pid>-<token>.partial`` (flushed every batch) and is renamed to
        ``csv_path`` at the end, so a crash part way leaves the rows written so far in that
        partial file and never a half-written ``csv_path``. A damaged video or Ctrl-C (on a file) ends the
        CSV with a ``# stopped after frame N: ...`` line and keeps it; Ctrl-C is how a webcam run
        ends, so there it just closes the table.

        A finished file already at one of these names (an earlier run's, or another process's
        writing the same names at the same time) is never replaced unless ``overwrite``: the new
        files take the next free names (``clip-2.csv``), and the summary's ``csv`` and
        ``renamed_from`` say so.

        ``layout="openface"`` writes OpenFace 2.0's columns, units and 1-based frames
        (:mod:`pattnet.detect.openface`); :func:`pattnet.detect.read_detections` reads both.
        """
        check_source(source)
        files = DetectionFiles(source, csv_path, self.aus, self.threshold, overlay=overlay,
                               plot=plot, overwrite=overwrite, layout=layout)
        frames = self.stream(source, max_frames=max_frames, keep_frames=files.overlay is not None)
        return files.write(frames, max_frames=max_frames, progress=progress, on_frame=on_frame)


def _workers(workers: int | None, device_type: str) -> int:
    workers = default_workers(device_type) if workers is None else int(workers)
    if workers < 1:
        raise PattnetError(f"workers must be at least 1, got {workers}")
    return workers


def _set_torch_threads(threads: int | None, device_type: str, workers: int) -> None:
    """torch's intra-op threads are process-wide: set them once, for all the workers."""
    import torch

    if threads is None and device_type == "cpu":
        threads = default_threads(workers)
    if threads:
        if threads < 0:
            raise PattnetError(f"threads must be 0 (torch's default) or more, got {threads}")
        torch.set_num_threads(int(threads))


def _load(model: str | Path | Any, device: Any, check_template: bool) -> Any:
    from pattnet.checkpoint import Checkpoint, bundled_model_path, load_checkpoint

    if model is None:
        model = bundled_model_path()
    from pattnet.models.batched import set_batched

    if isinstance(model, Checkpoint):
        model.model.to(device)
    else:
        model = load_checkpoint(model, device, check_template=check_template)
    set_batched(model.model, device.type == "cuda")  # one grouped kernel per layer on a GPU
    return model


__all__ = ["Detector"]
