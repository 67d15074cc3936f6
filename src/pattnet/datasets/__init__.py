"""Datasets and their labels: one adapter per layout (BP4D, DISFA, a manifest CSV), subject folds,
label statistics."""

from pattnet.datasets.base import LOGGER_NAME, DatasetAdapter
from pattnet.datasets.bp4d import BP4DAdapter
from pattnet.datasets.disfa import DISFAAdapter
from pattnet.datasets.folds import PUBLISHED, Split, make_split, subject_folds
from pattnet.datasets.frames import IMAGE_SUFFIXES
from pattnet.datasets.labels import (
    NO_POSITIVE_WEIGHT,
    PosWeights,
    Stats,
    base_rates,
    compute_stats,
    fold_pos_weights,
    format_stats,
    jaccard,
    plot_jaccard,
    pos_weights,
    weights_table,
    write_stats,
)
from pattnet.datasets.manifest import ManifestAdapter
from pattnet.datasets.records import FrameRecord, Problem, Session
from pattnet.datasets.registry import ADAPTERS, detect_dataset, get_adapter, list_adapters
from pattnet.datasets.sources import Labels, au_columns, dataset_labels

__all__ = [
    "ADAPTERS",
    "IMAGE_SUFFIXES",
    "LOGGER_NAME",
    "NO_POSITIVE_WEIGHT",
    "PUBLISHED",
    "BP4DAdapter",
    "DISFAAdapter",
    "DatasetAdapter",
    "FrameRecord",
    "Labels",
    "ManifestAdapter",
    "PosWeights",
    "Problem",
    "Session",
    "Split",
    "Stats",
    "au_columns",
    "base_rates",
    "compute_stats",
    "detect_dataset",
    "fold_pos_weights",
    "format_stats",
    "get_adapter",
    "jaccard",
    "list_adapters",
    "dataset_labels",
    "make_split",
    "plot_jaccard",
    "pos_weights",
    "subject_folds",
    "weights_table",
    "write_stats",
]
