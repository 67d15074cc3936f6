"""Input and output below every stage: decoding images and videos, probing them, atomic files."""

from __future__ import annotations

from pattnet.io.frames import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    DecodeError,
    Frame,
    exif_orientation,
    expand_inputs,
    is_image,
    is_video,
    iter_frames,
    output_stems,
    read_image,
    source_orientation,
    to_rgb_uint8,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DecodeError",
    "Frame",
    "exif_orientation",
    "expand_inputs",
    "is_image",
    "is_video",
    "iter_frames",
    "output_stems",
    "read_image",
    "source_orientation",
    "to_rgb_uint8",
]
