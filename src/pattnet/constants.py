"""Facts every stage shares: the AU lists, the canonical frame and the paper's patch geometry.

One module so that the registration, the patch cutter, the store, the models and the report
can never disagree on a size or an AU order.
"""

from __future__ import annotations

#: The paper's 12 BP4D action units, in the paper's order.
BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
#: DISFA's 8 coded action units (docs/paper-notes.md).
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)

#: Side of the canonical registered frame in pixels (ZFace's frame, ~100 px between the eyes).
CANONICAL_SIZE = 512

#: The 9 patches, P1..P9, in the paper's order (docs/paper-notes.md section 2).
N_PATCHES = 9
PATCH_IDS: tuple[str, ...] = tuple(f"P{i}" for i in range(1, N_PATCHES + 1))
PATCH_NAMES: tuple[str, ...] = (
    "right eyebrow", "left eyebrow", "right eye", "between eyebrows and nose root", "left eye",
    "right cheek and lip corner", "nose and upper mouth", "left cheek and lip corner",
    "mouth and chin",
)
#: Side of a patch's box in the canonical frame (MATLAB imcrop [x y 125 125] is 126 pixels).
BOX_SIZE = 126
#: Side of a patch as the network sees it (the box resized).
PATCH_SIZE = 100
#: Side of the holistic baseline's input (the whole canonical frame resized).
HOLISTIC_SIZE = 200
#: One sample of each input kind, as stored (uint8, RGB last).
PATCH_SHAPE: tuple[int, int, int, int] = (N_PATCHES, PATCH_SIZE, PATCH_SIZE, 3)
HOLISTIC_SHAPE: tuple[int, int, int] = (HOLISTIC_SIZE, HOLISTIC_SIZE, 3)
#: The face mesh: MediaPipe's 478 landmarks (468 + 2 x 5 iris points).
N_LANDMARKS = 478
#: One face's canonical mesh as stored (float32: x, y in canonical pixels, depth in the same
#: unit), the expression with pose removed.
MESH_SHAPE: tuple[int, int] = (N_LANDMARKS, 3)


#: The action unit codes FACS defines (Ekman, Friesen & Hager, 2002): the face's 1-46 (there is
#: no AU3 and no AU40), the head's 51-58 and the eyes' 61-66. A model file's AU list must name
#: these; a 99 is a writer's bug, not an AU.
FACS_AUS: frozenset[int] = frozenset({*range(1, 47), *range(51, 59), *range(61, 67)} - {3, 40})


def au_name(au: int) -> str:
    """Column name of an AU everywhere in pattnet (``AU01``), as in OpenFace's output."""
    return f"AU{int(au):02d}"

#: The paper's protocol: subject-independent k-fold cross-validation, with a seeded share of each
#: fold's training subjects held out to select the epoch. ``pattnet stats`` and training read
#: these defaults here so the weights a user checks are the ones training computes.
N_FOLDS = 3
VAL_FRACTION = 0.15
SPLIT_SEED = 0

#: The layouts ``pattnet detect --format`` writes (pattnet.detect.openface: OpenFace 2.0's).
DETECT_FORMATS: tuple[str, ...] = ("pattnet", "openface")
