import numpy as np
import pytest

from helpers import toy_store
from pattnet.errors import StoreError
from pattnet.store import PatchStore, StoreWriter, frame_table, write_store


def test_roundtrip_and_memmap(tmp_path):
    rng = np.random.default_rng(1)
    n = 7
    p = rng.integers(0, 255, (n, 9, 100, 100, 3), dtype=np.uint8)
    h = rng.integers(0, 255, (n, 200, 200, 3), dtype=np.uint8)
    lab = rng.integers(-1, 2, (n, 3)).astype(np.int8)
    st = write_store(tmp_path / "s", frame_table(["A"] * n, ["T1"] * n, range(n), lab, [1, 2, 4]), p, h,
                     [1, 2, 4])
    assert len(st) == n and st.aus == [1, 2, 4]
    assert np.array_equal(st.patches([4, 1, 4]), p[[4, 1, 4]])
    assert np.array_equal(st.holistic(3), h[3])
    assert np.array_equal(st.labels, lab)
    st2 = PatchStore(tmp_path / "s")
    assert isinstance(st2._map(st2._chunks[0], "patches"), np.memmap)


def test_multi_chunk_and_resume(tmp_path):
    def chunk(k, n=3):
        lab = np.full((n, 1), k % 2, np.int8)
        t = frame_table([f"S{k}"] * n, ["T"] * n, range(n), lab, [12])
        return t, np.full((n, 9, 100, 100, 3), k, np.uint8), np.full((n, 200, 200, 3), k, np.uint8)

    w = StoreWriter(tmp_path / "s", [12])
    w.add_chunk("a", *chunk(1))
    # a "killed" writer: a new writer continues with the chunks already written
    w = StoreWriter(tmp_path / "s", [12])
    assert w.chunk_names == {"a"}
    with pytest.raises(StoreError, match="incomplete"):
        PatchStore(tmp_path / "s")
    w.add_chunk("b", *chunk(2, 4))
    st = w.finalize()
    assert len(st) == 7
    assert st.patches(2)[0, 0, 0, 0] == 1 and st.patches(3)[0, 0, 0, 0] == 2
    assert list(st.subjects) == ["S1"] * 3 + ["S2"] * 4


def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match="store not found"):
        PatchStore(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="store.json missing"):
        PatchStore(tmp_path / "empty")


def test_truncated_store(tmp_path):
    st = toy_store(tmp_path / "s", n=12)
    f = st.chunk_file("chunk-000000", "patches")
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size - 1000)
    with pytest.raises(StoreError, match="truncated"):
        PatchStore(tmp_path / "s")


def test_au_columns_must_match(tmp_path):
    toy_store(tmp_path / "s", n=12)
    frames = tmp_path / "s" / "frames.csv"
    text = frames.read_text().replace("AU12", "AU15")
    frames.write_text(text)
    with pytest.raises(StoreError, match="does not match"):
        PatchStore(tmp_path / "s")


def test_frame_labels_of_a_store_still_being_prepared(tmp_path):
    """Statistics work while prepare runs: the chunks recorded so far count, with a note; a
    frame whose registration failed is left out unless asked for."""
    from pattnet.store import read_frame_labels

    w = StoreWriter(tmp_path / "s", [12], {"dataset": "bp4d"})
    lab = np.array([[1], [0], [1]], np.int8)
    t = frame_table(["S1"] * 3, ["T"] * 3, range(3), lab, [12], success=[1, 1, 0])
    w.add_chunk("c0", t, np.zeros((3, 9, 100, 100, 3), np.uint8), np.zeros((3, 200, 200, 3), np.uint8))
    fl = read_frame_labels(tmp_path / "s")
    assert fl.dataset == "bp4d" and len(fl.table) == 2 and list(fl.table.columns)[-1] == "AU12"
    assert any("incomplete" in n for n in fl.notes) and any("failed" in n for n in fl.notes)
    assert len(read_frame_labels(tmp_path / "s", registered_only=False).table) == 3
    w.finalize()
    assert read_frame_labels(tmp_path / "s").notes == ["1 frame(s) whose registration failed are "
                                                       "left out (training never sees them; "
                                                       "--all-frames counts them)"]


def test_meshes_round_trip_and_failed_frames_are_nan(tmp_path):
    rng = np.random.default_rng(3)
    n = 5
    mesh = rng.normal(256, 50, (n, 478, 3)).astype(np.float32)
    t = frame_table(["A"] * n, ["T"] * n, range(n), np.zeros((n, 1), np.int8), [12])
    st = write_store(tmp_path / "s", t, np.zeros((n, 9, 100, 100, 3), np.uint8),
                     np.zeros((n, 200, 200, 3), np.uint8), [12], mesh=mesh)
    assert st.kinds == ("patches", "holistic", "mesh") and st.version == 2
    assert np.array_equal(st.mesh([3, 0]), mesh[[3, 0]]) and st.mesh(1).dtype == np.float32
    assert (tmp_path / "s" / "chunks" / "chunk-000000.mesh.f4").stat().st_size == n * 478 * 3 * 4
    st2 = write_store(tmp_path / "s2", t, np.zeros((n, 9, 100, 100, 3), np.uint8),
                      np.zeros((n, 200, 200, 3), np.uint8), [12])
    assert np.isnan(st2.mesh(np.arange(n))).all()  # meshes not given: unknown


def _as_format_1(path):
    """A store as pattnet wrote it before meshes: version 1, no mesh files."""
    import json

    meta = json.loads((path / "store.json").read_text())
    meta["version"] = 1
    (path / "store.json").write_text(json.dumps(meta))
    for f in (path / "chunks").glob("*.mesh.f4"):
        f.unlink()


def test_a_format_1_store_still_reads_but_has_no_mesh(tmp_path):
    store = toy_store(tmp_path / "s", n=12)
    _as_format_1(store.path)
    st = PatchStore(store.path)
    assert st.kinds == ("patches", "holistic") and st.patches(0).shape == (9, 100, 100, 3)
    with pytest.raises(StoreError, match=r"has no mesh array \(store format 1.*prepare again"):
        st.mesh([0, 1])
    with pytest.raises(StoreError, match="cannot be added to; prepare into a new folder"):
        StoreWriter(store.path, st.aus)
    from pattnet.store import merge_stores

    with pytest.raises(StoreError, match="cannot be merged"):
        merge_stores([store.path], tmp_path / "merged")
