"""Streaming video registration: every decoded frame gives a row, ids stay stable."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pattnet.registration import register_video


def test_face_noface_never_drops_frames(faces_dir):
    frames = list(register_video(faces_dir / "face_noface.mov"))
    assert len(frames) == 169
    assert [f.index for f in frames] == list(range(169))
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts) and ts[0] >= 0
    with_face = np.array([bool(f.faces) for f in frames])
    assert with_face[:30].all()  # a face first ...
    assert (~with_face[-40:]).all()  # ... then the animation without one
    for f in frames:
        for face in f.faces:
            assert face.image.shape == (512, 512, 3) and face.face_id == 0


def test_video_is_streamed_and_ids_stable(faces_dir):
    gen = register_video(faces_dir / "WolfgangLanger_Pexels.mp4")
    first = list(itertools.islice(gen, 40))
    gen.close()
    assert all(len(f.faces) == 1 and f.faces[0].face_id == 0 for f in first)
    assert abs(first[1].timestamp - 1 / 23.98) < 2e-3
    lm = np.stack([f.faces[0].landmarks for f in first])
    jitter = np.linalg.norm(np.diff(lm, axis=0), axis=2).mean()
    assert jitter < 3.0


def test_truncated_video_keeps_frames(faces_dir, tmp_path):
    from pattnet.io import DecodeError

    data = (faces_dir / "WolfgangLanger_Pexels.mp4").read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 8])
    got = []
    with pytest.raises(DecodeError) as exc:
        for fr in register_video(bad):
            got.append(fr.index)
    assert got and exc.value.frames_read == len(got) == got[-1] + 1
    assert "ends early" in str(exc.value)


def test_pipelined_stream_equals_frame_by_frame(faces_dir):
    """register_stream warps frame i on a worker while MediaPipe reads frame i+1: same output."""
    from pattnet.io import DecodeError, iter_frames
    from pattnet.registration import Registrar

    src = list(itertools.islice(iter_frames(faces_dir / "WolfgangLanger_Pexels.mp4"), 12))

    def broken():  # the source fails after 12 frames, as a damaged video does
        yield from src
        raise DecodeError("cut.mp4: ends early", frames_read=len(src))

    runs = []
    for pipelined in (False, True):
        with Registrar(static_image_mode=False) as reg:
            got = []
            with pytest.raises(DecodeError):
                for fr in reg.register_stream(broken(), pipelined=pipelined):
                    got.append(fr)
            runs.append(got)
    seq, pipe = runs
    assert [f.index for f in pipe] == [f.index for f in seq] == list(range(12))
    for a, b in zip(seq, pipe, strict=True):
        assert a.timestamp == b.timestamp and a.shape == b.shape
        assert [f.face_id for f in a.faces] == [f.face_id for f in b.faces] == [0]
        np.testing.assert_array_equal(a.faces[0].landmarks, b.faces[0].landmarks)
        np.testing.assert_array_equal(a.faces[0].image, b.faces[0].image)


def test_stream_takes_bare_arrays_and_reports_a_bad_frame_after_the_good_ones(astronaut):
    from pattnet.errors import PattnetError
    from pattnet.registration import Registrar

    frames = [astronaut, astronaut, astronaut[:, :, 0]]
    got = []
    with Registrar(static_image_mode=True) as reg, pytest.raises(PattnetError, match="RGB uint8"):
        for fr in reg.register_stream(frames):
            got.append(fr)
    assert [f.index for f in got] == [0, 1] and all(len(f.faces) == 1 for f in got)
