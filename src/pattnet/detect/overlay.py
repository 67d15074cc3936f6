"""Pictures of a detection: the input video with face boxes and live AU bars, and a timeline.

Why here and not in ``detect``: drawing and encoding are optional extras with their own
dependencies (PyAV's encoder, matplotlib); keeping them apart keeps the detector's streaming
loop readable. Both writers finish atomically (temporary sibling, then rename), like every
result file pattnet writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pattnet.constants import au_name
from pattnet.errors import PattnetError
from pattnet.io.atomic import publish_as, unique_tmp

_ON = (235, 64, 52)  # RGB: AU present (probability >= threshold)
_OFF = (190, 190, 190)
_BOX_OK = (60, 200, 90)
_BOX_FAIL = (250, 160, 30)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: Containers the overlay video is written in (PyAV picks the muxer from the ending).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")
OVERLAY_SUFFIXES = VIDEO_SUFFIXES + IMAGE_SUFFIXES


def draw_overlay(rgb: np.ndarray, frame: Any, aus: Sequence[int], threshold: np.ndarray
                 ) -> np.ndarray:
    """Draw every face's box, id and one bar per AU (probability; red at/above threshold) on a
    copy of ``rgb``. ``frame`` is a :class:`pattnet.detect.FrameResult`."""
    img = np.ascontiguousarray(rgb).copy()
    h, w = img.shape[:2]
    s = max(0.5, min(2.0, h / 540))  # text and bar size follow the frame size
    font = cv2.FONT_HERSHEY_SIMPLEX
    row_h = max(9, round(13 * s))
    text_w = round(34 * s)
    bar_w = round(90 * s)
    pad = round(4 * s)
    panel_w = text_w + bar_w + 3 * pad
    panel_h = row_h * len(aus) + 2 * pad
    for face in frame.faces:  # boxes first, so no box is drawn over another face's bars
        x0, y0, x1, y1 = (int(round(v)) for v in face.bbox)
        colour = _BOX_OK if face.success else _BOX_FAIL
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, max(1, round(2 * s)), cv2.LINE_AA)
        cv2.putText(img, f"face {face.face_id}", (x0, max(row_h, y0 - pad)), font, 0.45 * s,
                    colour, 1, cv2.LINE_AA)
    for face in frame.faces:
        if face.prob is None:
            continue
        x0, y0, x1, _ = (int(round(v)) for v in face.bbox)
        # panel right of the box if it fits, else left of it, else inside the frame's edge
        px = x1 + pad if x1 + pad + panel_w <= w else x0 - pad - panel_w
        px = int(np.clip(px, 0, max(0, w - panel_w)))
        py = int(np.clip(y0, 0, max(0, h - panel_h)))
        region = img[py:py + panel_h, px:px + panel_w]
        region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken: bars stay legible
        for k, au in enumerate(aus):
            p = float(face.prob[k])
            yy = py + pad + k * row_h
            on = p >= threshold[k]
            cv2.putText(img, au_name(au), (px + pad, yy + row_h - 3), font, 0.33 * s,
                        (255, 255, 255), 1, cv2.LINE_AA)
            bx = px + 2 * pad + text_w
            cv2.rectangle(img, (bx, yy + 2), (bx + bar_w, yy + row_h - 2), (70, 70, 70), -1)
            cv2.rectangle(img, (bx, yy + 2), (bx + round(p * bar_w), yy + row_h - 2),
                          _ON if on else _OFF, -1)
            tx = bx + round(float(threshold[k]) * bar_w)
            cv2.line(img, (tx, yy + 1), (tx, yy + row_h - 1), (255, 255, 255), 1)
    return img


def _encoder() -> str:
    import av

    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    raise PattnetError("no video encoder (libx264 or mpeg4) in this PyAV build; use a .png overlay")


class OverlayWriter:
    """Writes drawn frames to a video (``.mp4``/``.mkv``/... via PyAV) or, for an image path
    (``.png``/``.jpg``), the last frame as an image (the overlay of a photo)."""

    def __init__(self, path: str | Path, aus: Sequence[int], threshold: np.ndarray,
                 fps: float = 30.0) -> None:
        self.path = Path(path)
        self.aus = list(aus)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.fps = fps if fps and fps > 0 else 30.0
        self.image = self.path.suffix.lower() in IMAGE_SUFFIXES
        self._tmp = unique_tmp(self.path)
        self._container: Any = None
        self._stream: Any = None
        self._last: np.ndarray | None = None
        self.frames = 0

    def write(self, frame: Any) -> None:
        if frame.rgb is None:
            raise ValueError("overlay needs frames decoded with keep_frames=True")
        img = draw_overlay(frame.rgb, frame, self.aus, self.threshold)
        self.frames += 1
        if self.image:
            self._last = img
            return
        img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]  # yuv420p needs even sides
        if self._container is None:
            self._open(img.shape[1], img.shape[0])
        import av

        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def _open(self, width: int, height: int) -> None:
        import av

        codec = _encoder()
        self._container = av.open(str(self._tmp), "w")
        st = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        st.width, st.height = width, height
        st.pix_fmt = "yuv420p"
        if codec == "libx264":
            st.options = {"preset": "veryfast", "crf": "23"}
        else:
            st.bit_rate = 4_000_000
        self._stream = st

    def close(self, overwrite: bool = True) -> Path | None:
        """Finish the file and move it into place (beside another run's file of that name,
        unless ``overwrite``); the name it got, None when no frame was written."""
        if self.image:
            if self._last is None:
                return None
            ok, buf = cv2.imencode(self.path.suffix, self._last[:, :, ::-1])
            if not ok:  # pragma: no cover
                raise PattnetError(f"{self.path}: could not encode the overlay image")
            self._tmp.write_bytes(buf.tobytes())
            return publish_as(self._tmp, self.path, overwrite=overwrite)
        if self._container is None:
            return None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return publish_as(self._tmp, self.path, overwrite=overwrite)

    def abort(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        if self._tmp.exists():
            self._tmp.unlink()


def plot_timeline(df: Any, aus: Sequence[int], threshold: np.ndarray, path: str | Path,
                  title: str = "", overwrite: bool = True) -> Path:
    """PNG of AU probabilities over time (one row per AU, one line per face, threshold dashed,
    frames at/above it shaded); for a single frame (a photo) a bar chart per face instead."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    aus = list(aus)
    path = Path(path)
    ok = df[df["success"] == 1]
    faces = sorted(int(f) for f in ok["face_id"].unique())
    if df["frame"].nunique() <= 1:
        fig = _bar_chart(ok, faces, aus, threshold)
    else:
        fig = _timeline(df, faces, aus, threshold)
    fig.suptitle(f"AU probabilities{': ' + title if title else ''}", fontsize=10)
    FigureCanvasAgg(fig)
    tmp = unique_tmp(path)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        return publish_as(tmp, path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def _bar_chart(ok: Any, faces: list[int], aus: list[int], threshold: np.ndarray) -> Any:
    """One bar per AU and face, for the single frame of a photo."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 0.5 * len(aus) + 2), 3.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(faces))
    x = np.arange(len(aus))
    for i, fid in enumerate(faces):
        row = ok[ok["face_id"] == fid].iloc[0]
        ax.bar(x + i * width - 0.4 + width / 2, [row[f"{au_name(a)}_p"] for a in aus], width,
               label=f"face {fid}")
    ax.scatter(x, threshold, marker="_", s=200, color="k", label="threshold", zorder=3)
    ax.set_xticks(x, [au_name(a) for a in aus])
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    if faces:
        ax.legend(fontsize=7, ncols=min(len(faces) + 1, 6))
    else:
        ax.text(0.5, 0.5, "no face", transform=ax.transAxes, ha="center")
    return fig


def _timeline(df: Any, faces: list[int], aus: list[int], threshold: np.ndarray) -> Any:
    """One row per AU over time, one line per face."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 0.75 * len(aus) + 1.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(aus), 1, sharex=True))
    t_all = df["timestamp"].to_numpy()
    for k, (ax, au) in enumerate(zip(axes, aus, strict=True)):
        name = au_name(au)
        for fid in faces:
            # every frame on the time axis, NaN where this face is absent: gaps, not lines
            sub = df[(df["face_id"] == fid) | (df["success"] == 0)]
            sub = sub.drop_duplicates("frame")
            p = sub[f"{name}_p"].where(sub["face_id"] == fid)
            t = sub["timestamp"].to_numpy()
            (line,) = ax.plot(t, p.to_numpy(), lw=0.9, label=f"face {fid}")
            on = (p >= threshold[k]).to_numpy()
            ax.fill_between(t, 0, 1, where=on, color=line.get_color(), alpha=0.12, lw=0,
                            step="mid")
        ax.axhline(threshold[k], color="k", lw=0.6, ls="--")
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 1])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("time (s)")
    if len(t_all):
        axes[-1].set_xlim(float(np.nanmin(t_all)), float(np.nanmax(t_all)) or 1.0)
    if len(faces) > 1:
        axes[0].legend(fontsize=7, ncols=len(faces), loc="upper right")
    return fig


__all__ = ["OverlayWriter", "draw_overlay", "plot_timeline"]
