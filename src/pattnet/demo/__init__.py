"""The embedded default job: the whole pipeline on a controlled AU set made from real faces.

BP4D and DISFA are licensed, so a fresh install has no labelled AU data. ``pattnet demo`` makes
its own: real faces that ship inside installed packages (scikit-image's astronaut and 40 LFW
faces, matplotlib's Grace Hopper; more with ``--faces``) get FACS-based AU deformations of their
face mesh (``pattnet synth``), then the real pipeline runs on them: prepare -> train (the
paper's patch network, and the fusion model with the mesh branch) -> evaluate -> report ->
export -> detect on a video whose AUs switch on and off on a known schedule, with the timeline
compared to that schedule.

The numbers it prints are about synthetic deformations of a few real faces, not about
spontaneous expressions: BP4D/DISFA results need those datasets (``pattnet prepare``).
"""

from __future__ import annotations

from pattnet.demo.checks import EXPECTED_PATCHES, attention_check, schedule_agreement
from pattnet.demo.config import DISCLAIMER, DemoConfig, tiny_config
from pattnet.demo.run import DemoModel, DemoPaths, check_faces, run_demo

__all__ = ["DISCLAIMER", "EXPECTED_PATCHES", "DemoConfig", "DemoModel", "DemoPaths",
           "attention_check", "check_faces", "run_demo", "schedule_agreement", "tiny_config"]
