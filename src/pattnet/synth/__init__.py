"""A controlled AU set from real faces: FACS-based mesh deformations warped back into photos.

Why: with no licensed AU dataset at hand, pattnet still needs labelled data whose ground truth is
known exactly, to show end to end that registration, patches, training and detection work. Each
image is a real photo of a real person in which chosen AUs have been *applied* (see
:mod:`pattnet.synth.deformations` and docs/synth.md).

Modules, in the order they build on each other: :mod:`~pattnet.synth.face_frame` (the frame
deformations live in), :mod:`~pattnet.synth.deformations` (the FACS table),
:mod:`~pattnet.synth.furrows` (wrinkle shading), :mod:`~pattnet.synth.labels` (which AUs an
image gets), :mod:`~pattnet.synth.sources` (registered real faces), :mod:`~pattnet.synth.render`
(one image), :mod:`~pattnet.synth.tables` (CSV writing), :mod:`~pattnet.synth.schedule` (the
schedule video) and :mod:`~pattnet.synth.build` (the whole set).
"""

from __future__ import annotations

from pattnet.synth.build import CONFIG, DETAILS, IMAGES, MANIFEST, synthesize
from pattnet.synth.deformations import (
    DEFORMATIONS,
    REGIONS,
    AUDeformation,
    Furrow,
    Pull,
    Region,
    deform_mesh,
    region_indices,
)
from pattnet.synth.face_frame import N_MESH, FaceFrame, template_face
from pattnet.synth.furrows import shade_furrows
from pattnet.synth.labels import (
    AUS,
    INTENSITY_RANGE,
    LABEL_RULES,
    MIN_VISIBLE,
    label_rates,
    sample_intensities,
    sample_labels,
)
from pattnet.synth.render import ImageParams, SynthImage, apply_aus, render, sample_image_params
from pattnet.synth.schedule import (
    SCHEDULE_CSV,
    SCHEDULE_VIDEO,
    Segment,
    schedule_motion,
    schedule_segments,
    schedule_table,
    write_schedule_video,
)
from pattnet.synth.sources import SourceFace, bundled_faces, load_sources

__all__ = [
    "AUS",
    "CONFIG",
    "DEFORMATIONS",
    "DETAILS",
    "IMAGES",
    "INTENSITY_RANGE",
    "LABEL_RULES",
    "MANIFEST",
    "MIN_VISIBLE",
    "N_MESH",
    "REGIONS",
    "SCHEDULE_CSV",
    "SCHEDULE_VIDEO",
    "AUDeformation",
    "FaceFrame",
    "Furrow",
    "ImageParams",
    "Pull",
    "Region",
    "Segment",
    "SourceFace",
    "SynthImage",
    "apply_aus",
    "bundled_faces",
    "deform_mesh",
    "label_rates",
    "load_sources",
    "region_indices",
    "render",
    "sample_image_params",
    "sample_intensities",
    "sample_labels",
    "schedule_motion",
    "schedule_segments",
    "schedule_table",
    "shade_furrows",
    "synthesize",
    "template_face",
    "write_schedule_video",
]
