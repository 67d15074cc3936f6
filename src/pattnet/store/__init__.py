"""The patch store: the contract between ``prepare`` (which writes it) and ``train`` (which reads it).

Layout of a store directory::

    store.json            format, version, AU list, array shapes, chunk list, free-form meta
    frames.csv            one row per frame, in chunk order: subject, session, frame, success,
                          confidence, pitch, yaw, roll, visible_fraction, AU01, AU02, ... (1/0/-1)
    chunks/<name>.patches.u8    raw uint8, C order, shape (n, 9, 100, 100, 3)
    chunks/<name>.holistic.u8   raw uint8, C order, shape (n, 200, 200, 3)
    chunks/<name>.mesh.f4       raw little-endian float32, shape (n, 478, 3): the canonical
                                mesh (x, y, depth in canonical pixels; NaN if not registered);
                                format 2 on (a format-1 store has none and still reads)

Why raw chunks rather than one ``.npy``: a full dataset's patches are far larger than memory, so
the arrays are never held in memory (they are memory-mapped and read a batch at a time), and
``prepare`` can write one chunk per session, atomically, and resume or merge shards by listing
chunks instead of copying tens of gigabytes. The sizes in ``store.json`` let the reader detect a
truncated chunk.
"""

from pattnet.constants import HOLISTIC_SHAPE, HOLISTIC_SIZE, N_PATCHES, PATCH_SHAPE, PATCH_SIZE
from pattnet.store.layout import (
    ARRAY_DTYPES,
    ARRAY_SHAPES,
    CHUNK_KINDS,
    CHUNKS_DIR,
    FORMAT,
    META_COLUMNS,
    META_FILE,
    TABLE_FILE,
    VERSION,
    array_bytes,
    au_columns,
    chunk_path,
    is_store,
)
from pattnet.store.merge import link_or_copy, merge_stores
from pattnet.store.reader import FrameLabels, PatchStore, read_frame_labels, read_frame_table, read_meta
from pattnet.store.writer import ChunkWriter, StoreWriter, frame_table, write_store

__all__ = [
    "ARRAY_DTYPES",
    "ARRAY_SHAPES",
    "CHUNK_KINDS",
    "CHUNKS_DIR",
    "FORMAT",
    "HOLISTIC_SHAPE",
    "HOLISTIC_SIZE",
    "META_COLUMNS",
    "META_FILE",
    "TABLE_FILE",
    "N_PATCHES",
    "PATCH_SHAPE",
    "PATCH_SIZE",
    "VERSION",
    "ChunkWriter",
    "FrameLabels",
    "PatchStore",
    "StoreWriter",
    "array_bytes",
    "au_columns",
    "chunk_path",
    "frame_table",
    "is_store",
    "link_or_copy",
    "merge_stores",
    "read_frame_labels",
    "read_frame_table",
    "read_meta",
    "write_store",
]
