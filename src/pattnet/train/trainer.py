"""One fold of one run, trained under the paper's protocol and resumable from its checkpoints.

Why a small hand-written loop instead of PyTorch Lightning: the paper trains 12 independent AU
networks, and putting all of them in one autograd graph at the paper's batch size needs more
activation memory than a workstation has. So each batch is read once and every AU network then
runs its own forward/backward (:mod:`pattnet.train.parallel`), which is the same gradient as
training it alone because the networks share no parameters. Lightning's automatic optimisation
assumes one backward per step, and its DDP wrapper one reducer per module; here each
independent network is wrapped in its own ``DistributedDataParallel`` instead. bf16 autocast,
channels_last, per-epoch checkpoints, exact resume, progress and CSV logs are a few lines each.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pattnet.constants import au_name
from pattnet.datasets.folds import make_split
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_path, atomic_write_json
from pattnet.models.batched import sync_batch_stats, use_batched
from pattnet.models.inputs import model_inputs
from pattnet.runs import RunDir
from pattnet.runtime import init_dist, resolve_device, resolve_precision, tune_cpu_allocator
from pattnet.store import PatchStore
from pattnet.store.reference import least_expressive, mean_of_rows, population_reference
from pattnet.train.batches import EpochBatches, StoreBatches, batch_loader, fold_indices
from pattnet.train.build import fold_model, make_optimizer
from pattnet.train.config import TrainConfig
from pattnet.train.history import select_epoch, write_history
from pattnet.train.loss import pos_weights, weighted_bce
from pattnet.train.parallel import backward_networks, network_pool, network_threads, networks, split_networks
from pattnet.train.references import fold_references

log = logging.getLogger("pattnet.train")

#: Steps between reading the loss back from a GPU (each read waits for the device).
_READ_EVERY = 25


class Trainer:
    """Trains one fold of one run directory; resumable from its per-epoch checkpoints."""

    def __init__(self, cfg: TrainConfig, store: PatchStore, run_dir: Path, fold: int,
                 folds: list[list[str]], au_cols: np.ndarray, aus: list[int],
                 progress: bool = True):
        self.cfg, self.store, self.fold = cfg, store, fold
        self.aus = aus
        self.au_cols = au_cols
        self.run_dir = RunDir(run_dir)
        self.fold_dir = self.run_dir.fold(fold)
        self.progress = progress
        self.device = resolve_device(cfg.device)
        self.dist = init_dist(self.device)
        self.amp_dtype = resolve_precision(cfg.precision, self.device)
        if cfg.tune_allocator and self.device.type == "cpu":
            tune_cpu_allocator()
        split = make_split(folds, fold, cfg.val_fraction, cfg.seed)
        self.data = fold_indices(store, split, au_cols, cfg.include_failed)
        if len(self.data.train) == 0:
            raise PattnetError(f"fold {fold}: no usable training frames in {store.path}")
        self.model = fold_model(cfg, aus, fold, self.device)
        # grouped per-AU networks under DDP: batch statistics of the global batch, so that the
        # processes train as one process with the whole batch would
        sync_batch_stats(self.dist.world > 1 and use_batched(cfg.batched, self.device))
        weights = (pos_weights(store.labels[self.data.train][:, au_cols], aus, cfg.no_positive_weight)
                   if cfg.positive_weight == "balanced" else np.ones(len(aus)))
        self.pos_weight = torch.tensor(weights, dtype=torch.float32, device=self.device)
        self._setup_networks()
        if self._gates_from_validation():
            gate: Any = self.model.net.gate
            gate.requires_grad_(False)  # fitted on held-out subjects instead
        self.opt = make_optimizer(self.model, cfg)
        self._setup_batches()
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 1

    def _setup_networks(self) -> None:
        self.nets = networks(self.model)
        self.ddp_nets = [self._wrap(net) for net, _ in self.nets]
        # the groups of networks trained side by side, one thread each (one group = in turn)
        self.parts = split_networks(
            [(d, cols) for d, (_, cols) in zip(self.ddp_nets, self.nets, strict=True)],
            network_threads(self.cfg.network_threads, len(self.nets), self.device, self.dist.world))

    def _setup_batches(self) -> None:
        cfg = self.cfg
        self.kinds = self.model.input_kinds
        refs = fold_references(self.store, self.run_dir, cfg, self.dist, self.kinds,
                               self.data.split.train)
        self.refs = refs
        self.ds = StoreBatches(self.store, self.kinds, self.au_cols, refs)
        priors = {k: population_reference(r, self.data.split.train) for k, r in refs.items()}
        self.priors = priors
        # training batches may stand some faces against the population reference instead
        self.train_ds = self.ds
        if cfg.prior_share > 0 and cfg.normalize == "subject":
            self.train_ds = StoreBatches(self.store, self.kinds, self.au_cols, refs, priors,
                                         cfg.prior_share, cfg.seed)
        # global batch; EpochBatches gives each DDP rank its share of every batch
        self.sampler = EpochBatches(self.data.train, max(1, cfg.batch_size), cfg.seed, self.dist.rank,
                                    self.dist.world, True, cfg.max_batches)

    def _wrap(self, net: nn.Module) -> nn.Module:
        if self.dist.world <= 1:
            return net
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(net, device_ids=ids)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _input(self, batch: dict[str, Any]) -> torch.Tensor | dict[str, torch.Tensor]:
        return model_inputs(batch["x"], self.kinds, self.cfg.mean, self.cfg.std,
                            self.cfg.channels_last, self.device, batch.get("ref"), self.amp_dtype)

    # -- checkpoints ------------------------------------------------------------------------
    def ckpt_path(self, epoch: int) -> Path:
        return self.fold_dir.checkpoint(epoch)

    def save_checkpoint(self, epoch: int) -> None:
        if not self.dist.main:
            return
        with atomic_path(self.ckpt_path(epoch)) as tmp:
            torch.save({"epoch": epoch, "model": self.model.state_dict(),
                        "optimizer": self.opt.state_dict(), "history": self.history,
                        "pos_weight": self.pos_weight.cpu()}, tmp)

    def latest_checkpoint(self) -> int:
        eps = self.fold_dir.epochs()
        return eps[-1] if eps else 0

    def load_checkpoint(self, epoch: int, optimizer: bool = True) -> dict[str, Any]:
        path = self.ckpt_path(epoch)
        try:
            ck = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise PattnetError(f"{path}: unreadable checkpoint ({type(exc).__name__})") from exc
        self.model.load_state_dict(ck["model"])
        if optimizer:
            self.opt.load_state_dict(ck["optimizer"])
        self.history = list(ck["history"])
        return ck

    # -- loops ------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        self.sampler.set_epoch(epoch)
        loader = batch_loader(self.train_ds, self.sampler, self.cfg.num_workers,
                              pin=self.device.type == "cuda")
        n_batches = len(self.sampler)
        # the losses add up on the device: reading one back waits for the GPU, so it happens
        # only every few steps (every step on a CPU, where it costs nothing)
        total = torch.zeros((), device=self.device)
        every = 1 if self.device.type == "cpu" else _READ_EVERY
        bar = _progress(n_batches, f"fold {self.fold} epoch {epoch}/{self.cfg.epochs}",
                        self.progress and self.dist.main, unit="batch")
        seen, t0 = 0, time.perf_counter()
        with network_pool(len(self.parts)) as pool:
            for step, batch in enumerate(loader, start=1):
                x = self._input(batch)
                y = batch["y"].to(self.device, non_blocking=True)
                self.opt.zero_grad(set_to_none=True)
                step_loss = backward_networks(self.parts, x, y, self.pos_weight, self._autocast,
                                              pool)
                total += step_loss
                seen += len(batch["index"])
                if step % every == 0 or step == n_batches:
                    self._check_finite(float(total), epoch)  # before a non-finite update lands
                    fps = seen * self.dist.world / (time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{float(step_loss):.3f}", fps=f"{fps:.1f}")
                self.opt.step()
                bar.update(1)
        bar.close()
        return float(total) / max(1, n_batches)

    def _check_finite(self, total: float, epoch: int) -> None:
        if not math.isfinite(total):
            raise PattnetError(f"fold {self.fold} epoch {epoch}: the loss became {total}; the "
                               "epoch's checkpoint is not written (try a lower lr)")

    @torch.no_grad()
    def predict(self, indices: np.ndarray, desc: str, ds: StoreBatches | None = None
                ) -> dict[str, np.ndarray]:
        """Probabilities (and attention) for store rows ``indices``, in that order, each face
        against its reference in ``ds`` (default: the run's references)."""
        self.model.eval()
        sampler = EpochBatches(indices, max(self.cfg.batch_size, 64), 0, shuffle=False)
        loader = batch_loader(ds or self.ds, sampler, self.cfg.num_workers)
        probs, atts, labels, branches = [], [], [], []
        bar = _progress(len(sampler), desc, self.progress and self.dist.main, unit="batch")
        for batch in loader:
            with self._autocast():
                out = self.model(self._input(batch))
            probs.append(torch.sigmoid(out.logits.float()).cpu().numpy())
            if out.aux:
                branches.append(torch.sigmoid(torch.stack(out.aux, 1).float()).cpu().numpy())
            labels.append(batch["y"].numpy())
            if out.attention is not None:
                atts.append(out.attention.float().cpu().numpy().astype(np.float16))
            bar.update(1)
        bar.close()
        a = len(self.aus)
        res = {
            "index": np.asarray(indices, dtype=np.int64),
            "prob": np.concatenate(probs) if probs else np.zeros((0, a), np.float32),
            "label": np.concatenate(labels) if labels else np.zeros((0, a), np.int8),
        }
        if atts:
            res["attention"] = np.concatenate(atts)
        if branches:  # (N, branches, A): a fusion model's branches on their own, patches first
            res["branch_prob"] = np.concatenate(branches)
        return res

    def heldout(self, indices: np.ndarray) -> StoreBatches:
        """The batches of held-out rows ``indices``: under ``reference: neutral`` (subject
        normalisation) each held-out person's reference is estimated as detection estimates
        it, without their labels: the mean of their least expressive frames as the model scores
        them against the population's neutral face (:func:`~pattnet.store.reference.
        least_expressive`). Otherwise the run's references."""
        if self.cfg.reference != "neutral" or self.cfg.normalize != "subject" or not len(indices):
            return self.ds
        subj = self.store.subjects[indices]
        people = np.unique(subj)
        against_prior = {k: {**r, **dict.fromkeys(people.tolist(), self.priors[k])}
                         for k, r in self.refs.items()}
        prob = self.predict(indices, f"fold {self.fold} reference",
                            StoreBatches(self.store, self.kinds, self.au_cols, against_prior))["prob"]
        estimated = {k: dict(r) for k, r in self.refs.items()}
        for person in people:
            mine = subj == person
            rows = indices[mine][least_expressive(prob[mine])]
            for k in estimated:
                est = mean_of_rows(self.store, k, rows, self.cfg.reference_frames)
                if est is not None:
                    estimated[k][str(person)] = est
        return StoreBatches(self.store, self.kinds, self.au_cols, estimated)

    def _gates_from_validation(self) -> bool:
        """A fusion model's per-AU gates are fitted on the validation subjects, when there are
        any (on the training frames a branch that memorises them looks perfect)."""
        return hasattr(self.model.net, "fit_gates") and len(self.data.val) > 0

    def fit_gates(self) -> None:
        """Fit the gates on the validation frames (rank 0), the same on every DDP rank."""
        net: Any = self.model.net
        if self.dist.main:
            self.model.eval()
            sampler = EpochBatches(self.data.val, max(self.cfg.batch_size, 64), 0, shuffle=False)
            parts, labels = [], []
            val_ds = self.heldout(self.data.val)
            with torch.no_grad():
                for batch in batch_loader(val_ds, sampler, self.cfg.num_workers):
                    with self._autocast():
                        parts.append(net.branch_logits(self._input(batch)).float().cpu())
                    labels.append(batch["y"])
            y = torch.cat(labels)
            pw = self.pos_weight.cpu()
            net.fit_gates(torch.cat(parts), lambda z: weighted_bce(z, y, pw))
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.broadcast(net.gate.data, 0)

    def validate(self) -> dict[str, float]:
        from pattnet.evaluate.metrics import au_metrics

        if len(self.data.val) == 0:
            return {}
        pred = self.predict(self.data.val, f"fold {self.fold} validate", self.heldout(self.data.val))
        m = au_metrics(pred["prob"], pred["label"], self.aus, threshold=self.cfg.threshold)
        avg = m.loc["Avg"] if "Avg" in m.index else m.iloc[-1]
        y = torch.from_numpy(pred["label"])
        p = torch.from_numpy(pred["prob"]).clamp(1e-7, 1 - 1e-7)
        loss = float(weighted_bce(torch.logit(p), y, self.pos_weight.cpu()))
        return {"val_f1": float(avg["f1"]), "val_auc": float(avg["auc"]), "val_loss": loss}

    def run(self, stop_after: int | None = None) -> None:
        """Train all epochs (continuing after the latest checkpoint), select, predict the test."""
        if self.fold_dir.finished:
            log.info("fold %d already finished; skipping", self.fold)
            return
        self.fold_dir.checkpoints.mkdir(parents=True, exist_ok=True)
        if self.dist.main:
            self._write_split()
        last = self._resume()
        for epoch in range(last + 1, self.cfg.epochs + 1):
            self._run_epoch(epoch)
            if stop_after is not None and epoch >= stop_after:
                return
        self._barrier()
        if self.dist.main:
            self.finish()
        self._barrier()

    def _write_split(self) -> None:
        sp = self.data.split
        atomic_write_json(self.fold_dir.split, {
            "fold": self.fold, "train": list(sp.train), "val": list(sp.val),
            "test": list(sp.test), "n_train": int(len(self.data.train)),
            "n_val": int(len(self.data.val)), "n_test": int(len(self.data.test)),
            "pos_weight": {au_name(a): float(w) for a, w in
                           zip(self.aus, self.pos_weight.cpu().tolist(), strict=True)},
        })

    def _resume(self) -> int:
        """Load the latest checkpoint, if any; the last epoch done (0 = none)."""
        last = self.latest_checkpoint()
        if last:
            self.load_checkpoint(last)
            log.info("fold %d: resuming after epoch %d", self.fold, last)
        return last

    def _run_epoch(self, epoch: int) -> None:
        """Train one epoch, validate it, and record it (history row, checkpoint, history.csv)."""
        t0 = time.perf_counter()
        train_loss = self.train_epoch(epoch)
        if self._gates_from_validation():
            self.fit_gates()
        row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
        if self.dist.main:
            row.update(self.validate())
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["world"] = self.dist.world
        self.history.append(row)
        self.save_checkpoint(epoch)
        if self.dist.main:
            write_history(self.fold_dir.history, self.history)
            log.info("fold %d epoch %d: %s", self.fold, epoch,
                     ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))

    def _barrier(self) -> None:
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def select_epoch(self) -> dict[str, Any]:
        return select_epoch(self.history, self.cfg.select_metric)

    def finish(self) -> None:
        sel = self.select_epoch()
        self.load_checkpoint(sel["epoch"], optimizer=False)
        pred = self.predict(self.data.test, f"fold {self.fold} test", self.heldout(self.data.test))
        pred["subject"] = self.store.subjects[pred["index"]]
        atomic_write_json(self.fold_dir.selected, sel)
        with atomic_path(self.fold_dir.predictions) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **pred)


def _progress(total: int, desc: str, enabled: bool, unit: str = "it") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit=unit, leave=False,
                dynamic_ncols=True, mininterval=1.0)


__all__ = ["Trainer"]
