"""Shared fixtures. Real faces come from ../shared/data/faces and are never copied here.

A fresh clone has no ../shared: the face tests then run on stand-ins built once per session from
faces that installed packages ship (tests/bundled_faces.py). ``PATTNET_TEST_FACES=bundled``
forces the stand-ins, to check them where ../shared exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_FACES = REPO.parent / "shared" / "data" / "faces"
FACES_ENV = "PATTNET_TEST_FACES"


@pytest.fixture(scope="session")
def faces_are_bundled() -> bool:
    """True when ``faces_dir`` holds the stand-ins, for the few checks only the real files pass."""
    choice = os.environ.get(FACES_ENV, "").strip().lower()
    if choice not in ("", "bundled"):
        raise pytest.UsageError(f"{FACES_ENV}={choice!r}: the only value is 'bundled'")
    return choice == "bundled" or not SHARED_FACES.is_dir()


@pytest.fixture(scope="session")
def faces_dir(faces_are_bundled, tmp_path_factory) -> Path:
    """../shared/data/faces, or the same file names built from bundled faces."""
    if not faces_are_bundled:
        return SHARED_FACES
    from bundled_faces import build

    return build(tmp_path_factory.mktemp("bundled_faces"))


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def _session_threads() -> int:
    import torch

    return torch.get_num_threads()


@pytest.fixture(autouse=True)
def _torch_threads_restored(_session_threads):
    """A Detector sets torch's process-wide thread count (CPUs / workers), and training results
    depend on it: every test runs with the count the session started with."""
    import torch

    torch.set_num_threads(_session_threads)
    yield
    torch.set_num_threads(_session_threads)
