"""Frames and images in, RGB uint8 out; broken files give one clear PattnetError."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pattnet.errors import PattnetError
from pattnet.io import expand_inputs, is_video, iter_frames, read_image, to_rgb_uint8


def test_read_image_variants(tmp_path, astronaut):
    bgr = astronaut[:, :, ::-1]
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    assert (read_image(tmp_path / "c.png") == astronaut).all()  # RGB order
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (512, 512, 3) and (g[..., 0] == gray).all()
    rgba = np.dstack([bgr, np.full(gray.shape, 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    assert (read_image(tmp_path / "a.png") == astronaut).all()
    cv2.imwrite(str(tmp_path / "d.png"), bgr.astype(np.uint16) * 257)
    d = read_image(tmp_path / "d.png")
    assert d.dtype == np.uint8 and (d == astronaut).all()


def test_to_rgb_uint8_float():
    a = to_rgb_uint8(np.full((4, 4), 0.5, np.float32))
    assert a.shape == (4, 4, 3) and a.dtype == np.uint8 and a[0, 0, 0] == 127


@pytest.mark.parametrize("content", [b"", b"this is not a JPEG at all" * 10])
def test_bad_images(tmp_path, content):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(PattnetError) as exc:
        read_image(p)
    assert "bad.jpg" in str(exc.value) and "\n" not in str(exc.value)


def test_missing(tmp_path):
    with pytest.raises(PattnetError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(PattnetError, match="no such file"):
        list(iter_frames(tmp_path / "nope.mp4"))
    with pytest.raises(PattnetError, match="no such file"):
        expand_inputs([tmp_path / "nope"])


def test_bad_video(tmp_path):
    p = tmp_path / "v.mp4"
    p.write_bytes(b"\x00" * 1000)
    with pytest.raises(PattnetError, match="not a readable video"):
        list(iter_frames(p))
    p.write_bytes(b"")
    with pytest.raises(PattnetError, match="empty"):
        list(iter_frames(p))


def test_video_frames(faces_dir):
    frames = iter_frames(faces_dir / "single_face.mp4")
    f0 = next(frames)
    assert f0.rgb.dtype == np.uint8 and f0.rgb.ndim == 3 and f0.index == 0
    rest = list(frames)
    assert len(rest) == 71 and rest[-1].index == 71
    assert abs(rest[0].timestamp - 1 / 30) < 2e-3


def test_lying_container_is_fine(faces_dir):
    assert len(list(iter_frames(faces_dir / "no_face.mp4"))) == 95


def test_expand_inputs(tmp_path, astronaut):
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "b.png"), astronaut)
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub" / "c.png").write_bytes(b"")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.jpg", "b.png"]
    assert [p.name for p in expand_inputs([tmp_path], recursive=True)] == [
        "a.jpg", "b.png", "c.png"]
    assert is_video("x.MOV") and not is_video("x.png")


def test_image_as_single_frame(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    frames = list(iter_frames(tmp_path / "a.png", max_side=256))
    assert len(frames) == 1 and frames[0].rgb.shape == (256, 256, 3)
    assert frames[0].timestamp == 0.0


def test_read_ahead_keeps_order_errors_and_stops_on_close():
    import threading

    from pattnet.io.stream import read_ahead

    assert list(read_ahead(range(50), depth=3)) == list(range(50))

    def broken():
        yield from range(5)
        raise ValueError("damaged at 5")

    got = []
    with pytest.raises(ValueError, match="damaged at 5"):
        for x in read_ahead(broken(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()  # the source is closed on the reading thread when the reader stops

    gen = read_ahead(endless(), depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert closed.is_set()
    assert not any(t.name == "pattnet-read-ahead" for t in threading.enumerate())


# --------------------------------------------------------------------------------------------
# atomic outputs


def test_temporary_names_are_unique_per_writer(tmp_path):
    from pattnet.io.atomic import GrowingFile, atomic_path

    target = tmp_path / "out.csv"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == tmp_path and a.suffix == ".csv"
        a.write_text("first")
        b.write_text("second")
    assert target.read_text() == "first"  # a finishes last (inner block b first); none left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    g1, g2 = GrowingFile(target), GrowingFile(target)
    assert g1.partial != g2.partial and g1.partial.name.endswith(".partial")


def test_a_failed_block_leaves_the_old_file(tmp_path):
    from pattnet.io.atomic import atomic_path

    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]


def test_no_clobber_publish_refuses_and_keeps_the_first_result(tmp_path):
    from pattnet.io.atomic import GrowingFile, OutputExistsError, atomic_write_text

    target = tmp_path / "clip.csv"
    first = GrowingFile(target, overwrite=False)
    second = GrowingFile(target, overwrite=False)
    first.open().write("a,b\n1,2\n")
    second.open().write("a,b\n3,4\n")
    first.commit()
    with pytest.raises(OutputExistsError, match="clip.csv: already exists"):
        second.commit()
    assert target.read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.csv"]
    with pytest.raises(OutputExistsError):
        atomic_write_text(target, "z", overwrite=False)
    assert target.read_text() == "a,b\n1,2\n"


def test_growing_file_keeps_its_rows_on_request(tmp_path):
    from pattnet.io.atomic import GrowingFile

    g = GrowingFile(tmp_path / "v.csv")
    g.open().write("frame\n0\n")
    kept = g.abort(keep=True)
    assert kept is not None and kept.read_text() == "frame\n0\n" and not (tmp_path / "v.csv").exists()
    g2 = GrowingFile(tmp_path / "w.csv")
    g2.open()
    assert g2.abort(keep=False) is None and list(tmp_path.glob("w.csv*")) == []


def test_output_stems_are_unique_within_a_call():
    from pathlib import Path

    from pattnet.io import output_stems

    assert output_stems([Path("a/clip.mp4"), Path("b/clip.mov"), Path("c/x.jpg"),
                         Path("d/clip.avi")]) == ["clip", "clip-2", "x", "clip-3"]
