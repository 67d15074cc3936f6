"""Training under the paper's protocol: subject-independent folds, weighted BCE, SGD.

``train()`` (:mod:`.api`) writes a run folder laid out by :class:`pattnet.runs.RunDir`, which
``evaluate``, ``export`` and ``report`` read; :mod:`.trainer` trains one fold of it.
"""

from pattnet.runtime import intra_op_threads, tune_cpu_allocator
from pattnet.train.api import train
from pattnet.train.batches import EpochBatches, FoldData, StoreBatches, batch_loader, fold_indices
from pattnet.train.branches import branch_run
from pattnet.train.build import fold_model, make_optimizer, model_from_config, param_groups
from pattnet.train.config import TrainConfig
from pattnet.train.history import select_epoch, write_history
from pattnet.train.loss import pos_weights, weighted_bce
from pattnet.train.parallel import (
    NetGroup,
    backward_networks,
    network_pool,
    network_threads,
    networks,
    split_networks,
)
from pattnet.train.references import fold_references, run_references
from pattnet.train.trainer import Trainer

__all__ = [
    "EpochBatches",
    "FoldData",
    "NetGroup",
    "StoreBatches",
    "TrainConfig",
    "Trainer",
    "backward_networks",
    "batch_loader",
    "branch_run",
    "fold_indices",
    "fold_model",
    "intra_op_threads",
    "make_optimizer",
    "model_from_config",
    "network_pool",
    "network_threads",
    "networks",
    "param_groups",
    "pos_weights",
    "fold_references",
    "run_references",
    "select_epoch",
    "split_networks",
    "train",
    "tune_cpu_allocator",
    "weighted_bce",
    "write_history",
]
