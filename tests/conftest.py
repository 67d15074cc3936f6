"""Shared fixtures. Real faces come from ../shared/data/faces and are never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_FACES = REPO.parent / "shared" / "data" / "faces"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """../shared/data/faces, or skip: a user's fresh clone has no ../shared."""
    if not SHARED_FACES.is_dir():
        pytest.skip("../shared/data/faces is absent")
    return SHARED_FACES


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()
