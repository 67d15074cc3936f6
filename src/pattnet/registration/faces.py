"""What registration takes and gives: its settings, and each face and frame it returns.

Plain data, kept apart from :class:`~pattnet.registration.Registrar`: code that only reads
registered faces (patch cutting, the dataset store, detection output) needs the fields, not the
detector and warp that made them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, PositiveInt

from pattnet.config import STAGE_CONFIG

#: A share or a confidence: [0, 1].
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


@dataclass
class RegistrationConfig:
    """Settings of the registration stage (defaults reproduce the paper's frame)."""

    __pydantic_config__: ClassVar = STAGE_CONFIG

    backend: str = "mediapipe"
    max_faces: PositiveInt = 1
    min_detection_confidence: Unit = 0.5
    min_tracking_confidence: Unit = 0.5
    # the template's frame; other sizes are scaled copies of it
    output_size: Annotated[int, Field(ge=16)] = 512
    grid_step: PositiveInt = 4  # coarse map spacing of the warp (1 = exact per-pixel map)
    min_facing: Unit = 0.1  # a triangle is visible when its source area / frontal area > this
    min_confidence: Unit = 0.1  # below this a fit is reported with success=False
    # larger frames are shrunk for landmark detection only
    max_detect_side: Annotated[int, Field(ge=64)] = 1920
    track_iou: Unit = 0.3  # video: a face keeps its id when its box overlaps the previous one


@dataclass
class RegisteredFace:
    """One face in the canonical frame, with what is needed to trace it back to the source.

    ``image`` (S, S, 3) uint8 with S = output_size (512); ``landmarks`` (478, 2) float32 in the
    canonical frame; ``pitch``/``yaw``/``roll`` in degrees (convention in
    :mod:`pattnet.registration.pose`); ``confidence`` in [0, 1] from the rigid-fit residual;
    ``visible_fraction`` the share of the face area not self-occluded in the source; ``bbox``
    (x0, y0, x1, y1) and ``source_landmarks`` (478, 3) in source pixels.
    """

    image: np.ndarray
    landmarks: np.ndarray
    pitch: float
    yaw: float
    roll: float
    success: bool
    confidence: float
    visible_fraction: float
    face_id: int
    bbox: tuple[float, float, float, float]
    source_landmarks: np.ndarray
    landmarks_3d: np.ndarray | None = None  # (478, 3) canonical x, y and depth
    scale: float = 1.0  # source pixels -> canonical pixels


@dataclass
class RegisteredFrame:
    """Result for one decoded frame: ``faces`` is empty when no face was found."""

    index: int
    timestamp: float
    faces: list[RegisteredFace] = field(default_factory=list)
    shape: tuple[int, int] = (0, 0)  # source (height, width)
