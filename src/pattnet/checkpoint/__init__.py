"""Deployable model checkpoints: one file with the weights and everything needed to use them.

:mod:`~pattnet.checkpoint.format` is the file (what it holds, writing and reading it),
:mod:`~pattnet.checkpoint.load` turns it into a ready model, :mod:`~pattnet.checkpoint.export`
makes one from a training run, :mod:`~pattnet.checkpoint.bundled` is the model that ships
inside pattnet.
"""

from __future__ import annotations

from pattnet.checkpoint.bundled import bundled_model_about, bundled_model_path
from pattnet.checkpoint.export import ExportResult, choose_fold, export_run
from pattnet.checkpoint.format import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    checkpoint_dict,
    read_checkpoint,
    save_checkpoint,
)
from pattnet.checkpoint.load import load_checkpoint

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "CheckpointError", "ExportResult",
           "bundled_model_about", "bundled_model_path", "checkpoint_dict", "choose_fold",
           "export_run", "load_checkpoint", "read_checkpoint", "save_checkpoint"]
