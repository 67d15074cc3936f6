"""Open 3D face registration into the paper's canonical 512x512 frame.

``register_image`` / ``register_video`` for one-off use, :class:`Registrar` to register many
frames with one MediaPipe instance, :func:`piecewise_affine_warp` as the project's single warp,
:class:`FaceTracker` for face ids across video frames.
See docs/registration.md.
"""

from __future__ import annotations

from pattnet.registration.core import Registrar, register_image, register_video
from pattnet.registration.faces import RegisteredFace, RegisteredFrame, RegistrationConfig
from pattnet.registration.landmarks import (
    N_LANDMARKS,
    Detection,
    LandmarkBackend,
    list_backends,
    load_backend,
    register_backend,
)
from pattnet.registration.pose import euler_to_rotation, rotation_to_euler, similarity_fit
from pattnet.registration.template import CANONICAL_SIZE, Template, load_template
from pattnet.registration.tracking import FaceTracker
from pattnet.registration.warp import piecewise_affine_warp

__all__ = [
    "CANONICAL_SIZE",
    "N_LANDMARKS",
    "Detection",
    "FaceTracker",
    "LandmarkBackend",
    "RegisteredFace",
    "RegisteredFrame",
    "Registrar",
    "RegistrationConfig",
    "Template",
    "euler_to_rotation",
    "list_backends",
    "load_backend",
    "load_template",
    "piecewise_affine_warp",
    "register_backend",
    "register_image",
    "register_video",
    "rotation_to_euler",
    "similarity_fit",
]
