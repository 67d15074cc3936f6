"""Training under the paper's protocol: subject-independent folds, weighted BCE, SGD.

Why a small hand-written loop instead of PyTorch Lightning: the paper trains 12 independent AU
networks (4.2M parameters and 108 encoder passes for a batch). Putting all 12 in one autograd
graph at batch 50 needs more than 24 GiB of activations (measured: the process was OOM-killed on
this 24 GiB machine), so each batch is read once and every AU network then runs its own
forward/backward, which is the same gradient as training it alone because the networks share no
parameters. Lightning's automatic optimisation assumes one backward per step, and its DDP wrapper
one reducer per module; here each independent network is wrapped in its own
``DistributedDataParallel`` instead. bf16 autocast, channels_last, per-epoch checkpoints, exact
resume, progress and CSV logs are a few lines each.

Layout of a run directory (read by ``evaluate`` and ``report``, nothing else needed)::

    RUN/config.yaml   RUN/run.json
    RUN/fold1/split.json  checkpoints/epoch-01.pt ...  history.csv  selected.json  predictions.npz
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from pattnet.config import from_dict, read_config_file, save_config
from pattnet.constants import au_name
from pattnet.datasets.folds import Split, make_split, subject_folds
from pattnet.datasets.labels import NO_POSITIVE_WEIGHT, PosWeights
from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_json, atomic_write_text, tmp_path_for
from pattnet.models import AUModel, model_from_settings
from pattnet.models.encoder import set_fused
from pattnet.models.inputs import to_model_input
from pattnet.runs import RunDir
from pattnet.runtime import (
    Dist,
    init_dist,
    intra_op_threads,
    resolve_device,
    resolve_precision,
    tune_cpu_allocator,
)
from pattnet.store import PatchStore
from pattnet.store.reference import MODES as NORMALIZE_MODES
from pattnet.store.reference import load_references, save_references, subject_references

log = logging.getLogger("pattnet.train")


@dataclass
class TrainConfig:
    """Training configuration; defaults are the paper's (section 4, paper-notes section 3)."""

    model: str = "pattnet"
    mode: str | None = None  # per-au | multilabel; None = the model's default
    order: Literal["relu-bn", "bn-relu"] = "relu-bn"
    attention_bias: bool = True
    patch: int = 1  # single-patch baseline only
    init: Literal["authors", "pytorch"] = "authors"
    epochs: int = 10
    batch_size: int = 50  # global: split across DDP processes
    optimizer: Literal["sgd", "adam"] = "sgd"  # sgd = the paper; adam converges in fewer steps
    lr: float = 1e-3
    # lr of the patch attention (W_f, b_f, c_f); None = lr (the paper). c_f starts at zero, so
    # with few steps a larger rate lets attention leave uniform
    attention_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    mean: float = 0.5
    std: float = 0.5
    # global = the paper (mean/std above); subject = difference from each person's mean face
    # (pattnet.store.reference), labels unused; detect then calibrates on the video it is given
    normalize: Literal["global", "subject"] = "global"
    reference_frames: int = 500  # frames per subject averaged for its reference
    seed: int = 0
    folds: int = 3
    dataset: str | None = None  # bp4d | disfa use the published folds; None = store.json's
    val_fraction: float = 0.15  # share of training subjects held out to pick the epoch
    select_metric: Literal["f1", "auc", "loss"] = "f1"
    threshold: float = 0.5
    include_failed: bool = False  # frames whose registration failed are excluded by default
    no_positive_weight: float = NO_POSITIVE_WEIGHT  # w_pos where undefined (warned; never NaN)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    tune_allocator: bool = True  # CPU: keep freed activation memory for reuse (see tune_cpu_allocator)
    # CPU, per-AU mode: independent networks trained side by side on this many threads (each op
    # on fewer cores); None = auto (one per core, at most one per network; 1 on GPU or with DDP)
    network_threads: int | None = None
    # CPU, bf16: each encoder layer's ReLU -> BN -> max-pool as one fused step (pattnet.models.fused;
    # same model and checkpoints, closer to float64 than PyTorch's bf16 ops); False = PyTorch's
    fused_kernels: bool = True
    device: str = "auto"
    num_workers: int = 1
    max_batches: int | None = None  # cap batches per epoch (smoke tests); None = all frames
    aus: list[int] | None = None  # subset of the store's AUs; None = all
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# loss


def weighted_bce(
    logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor
) -> torch.Tensor:
    """Masked weighted BCE, summed over AUs of each AU's mean over its coded frames.

    L_au = mean over frames with label != -1 of -(w_pos y log p + (1 - y) log(1 - p)).
    Summing (not averaging) over AUs keeps each AU's gradient the size it would have if its
    network were trained alone, as in the paper.
    """
    labels = labels.to(logits.dtype)
    mask = labels >= 0
    target = labels.clamp(min=0)
    per = nn.functional.binary_cross_entropy_with_logits(
        logits.float(), target.float(), pos_weight=pos_weight.float(), reduction="none"
    )
    per = per * mask
    counts = mask.sum(0)
    per_au = per.sum(0) / counts.clamp(min=1)
    return per_au.sum()


def pos_weights(labels: np.ndarray, aus: Sequence[int],
                no_positive: float = NO_POSITIVE_WEIGHT) -> np.ndarray:
    """The training fold's w_pos per AU (:class:`~pattnet.datasets.labels.PosWeights`, the same
    numbers ``pattnet stats`` shows); each AU whose ratio is undefined is warned about."""
    w = PosWeights.of(labels, [au_name(a) for a in aus], no_positive)
    for note in w.notes():
        warnings.warn(note, stacklevel=2)
    return w.values


# --------------------------------------------------------------------------------------------
# data


class EpochBatches(torch.utils.data.Sampler):
    """Batches of store indices, shuffled by (seed, epoch) and sharded by DDP rank.

    The order depends only on the seed and the epoch number, so a resumed run sees exactly the
    batches an uninterrupted one would.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1, shuffle: bool = True, max_batches: int | None = None):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.seed, self.rank, self.world = seed, rank, world
        self.shuffle = shuffle
        self.max_batches = max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        idx = self.indices
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            idx = idx[torch.randperm(len(idx), generator=g).numpy()]
        out = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        if self.max_batches is not None:
            out = out[: self.max_batches]
        if self.world > 1:
            # Every rank takes its share of every global batch (equal number of steps).
            out = [b[self.rank::self.world] for b in out if len(b) >= self.world]
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class StoreBatches(torch.utils.data.Dataset):
    """Maps a batch of indices to one uint8 batch (one memmap read per batch, not per frame).

    With ``references`` (subject -> mean face) each batch also carries ``ref``, the reference of
    every row's subject (person-specific normalisation, :mod:`pattnet.store.reference`).
    """

    def __init__(self, store: PatchStore, kind: str, au_cols: np.ndarray,
                 references: dict[str, np.ndarray] | None = None):
        self.store, self.kind, self.au_cols = store, kind, au_cols
        self.refs: np.ndarray | None = None
        self.codes: np.ndarray | None = None
        if references:
            names = sorted(references)
            self.refs = np.stack([references[n] for n in names])
            lookup = {n: i for i, n in enumerate(names)}
            self.codes = np.array([lookup.get(s, -1) for s in store.subjects], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        idx = np.asarray(idx, dtype=np.int64)
        x = self.store.patches(idx) if self.kind == "patches" else self.store.holistic(idx)
        out = {
            "x": torch.from_numpy(x),
            "y": torch.from_numpy(self.store.labels[idx][:, self.au_cols].astype(np.int8)),
            "index": torch.from_numpy(idx),
        }
        if self.refs is not None and self.codes is not None:
            codes = self.codes[idx]
            if (codes < 0).any():
                raise PattnetError(f"{self.store.path}: no reference face for subject "
                                   f"{self.store.subjects[idx[codes < 0][0]]!r}")
            out["ref"] = torch.from_numpy(self.refs[codes])
        return out


def _loader(ds: StoreBatches, sampler: EpochBatches, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        ds, sampler=sampler, batch_size=None, num_workers=workers,
        persistent_workers=False, prefetch_factor=2 if workers > 0 else None,
    )


# --------------------------------------------------------------------------------------------
# helpers


def networks(model: AUModel) -> list[tuple[nn.Module, list[int]]]:
    """The independent networks of a model and the AU columns each one predicts."""
    from pattnet.models.networks import PerAU

    if isinstance(model.net, PerAU):
        return [(net, [k]) for k, net in enumerate(model.net.nets)]
    return [(model.net, list(range(len(model.aus))))]


def network_threads(requested: int | None, n_nets: int, device: torch.device, world: int = 1
                    ) -> int:
    """How many threads train the independent networks side by side (1 = one after another).

    Why: on a CPU the per-AU networks' convolutions already run at the bf16 GEMM peak, and the
    rest (batch norm, max-pooling, ReLU backward on 96x96x32 maps) waits on memory and scales
    poorly across cores; two networks at once, each on one core, overlap one's convolutions with
    the other's memory-bound ops (a 2-core CPU: 1.05-1.13x, benchmarks/train_throughput.py
    and docs/training.md). A GPU runs one network's ops at a time anyway, and DDP needs every
    rank to start its collectives in the same order, so both stay at 1.
    """
    if requested is not None:
        if requested < 1:
            raise PattnetError(f"network_threads must be at least 1, got {requested}")
        return min(requested, max(1, n_nets))
    if device.type != "cpu" or world > 1 or n_nets < 2:
        return 1
    return max(1, min(n_nets, torch.get_num_threads()))


@contextlib.contextmanager
def network_pool(n_groups: int) -> Iterator[Any]:
    """A thread pool for ``n_groups`` groups of networks, the cores shared out between them
    (None for one group: the networks then run on the calling thread with every core)."""
    if n_groups < 2:
        yield None
        return
    from concurrent.futures import ThreadPoolExecutor

    with intra_op_threads(max(1, torch.get_num_threads() // n_groups)), \
            ThreadPoolExecutor(n_groups, thread_name_prefix="pattnet-net") as pool:
        yield pool


NetGroup = Sequence[tuple[nn.Module, list[int]]]


def split_networks(nets: NetGroup, threads: int) -> list[list[tuple[nn.Module, list[int]]]]:
    """Round-robin groups of networks, one group per thread."""
    return [list(nets[i::threads]) for i in range(threads) if nets[i::threads]]


def backward_networks(parts: Sequence[NetGroup], x: torch.Tensor, y: torch.Tensor,
                      pos_weight: torch.Tensor, autocast: Any, pool: Any = None) -> float:
    """Forward + backward of every independent network on one batch; returns the summed loss.

    With a thread ``pool`` each group of ``parts`` runs on its own thread. The networks share no
    parameters, so each gets exactly the gradient it would get alone, whatever runs beside it;
    losses are summed in group order, so the result does not depend on thread timing.
    """
    def run(part: NetGroup) -> float:
        total = 0.0
        for net, cols in part:
            with autocast():
                out = net(x)
            loss = weighted_bce(out.logits, y[:, cols], pos_weight[cols])
            loss.backward()
            total += float(loss.detach())
        return total

    if pool is None or len(parts) < 2:
        return sum(run(part) for part in parts)
    return sum(f.result() for f in [pool.submit(run, part) for part in parts])


def model_from_config(cfg: TrainConfig, aus: Sequence[int]) -> AUModel:
    return model_from_settings(dataclasses.asdict(cfg), aus)


def param_groups(model: nn.Module, lr: float, attention_lr: float | None) -> list[dict[str, Any]]:
    """Optimiser groups: the patch attention at ``attention_lr`` (when given), the rest at ``lr``."""
    if attention_lr is None or attention_lr == lr:
        return [{"params": list(model.parameters()), "lr": lr}]
    att = [p for n, p in model.named_parameters() if ".attention." in f".{n}"]
    rest = [p for n, p in model.named_parameters() if ".attention." not in f".{n}"]
    groups = [{"params": rest, "lr": lr}]
    if att:
        groups.append({"params": att, "lr": attention_lr})
    return groups


# --------------------------------------------------------------------------------------------
# the fold trainer


@dataclass
class FoldData:
    split: Split
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def fold_indices(store: PatchStore, split: Split, au_cols: np.ndarray,
                 include_failed: bool) -> FoldData:
    subj = store.subjects
    usable = np.ones(len(store), dtype=bool) if include_failed else store.success.copy()
    usable &= (store.labels[:, au_cols] >= 0).any(1)  # frames with no coded AU teach nothing

    def sel(subjects: Sequence[str]) -> np.ndarray:
        return np.nonzero(np.isin(subj, list(subjects)) & usable)[0]

    return FoldData(split, sel(split.train), sel(split.val), sel(split.test))


class Trainer:
    """Trains one fold of one run directory; resumable from its per-epoch checkpoints."""

    def __init__(self, cfg: TrainConfig, store: PatchStore, run_dir: Path, fold: int,
                 folds: list[list[str]], au_cols: np.ndarray, aus: list[int],
                 progress: bool = True):
        self.cfg, self.store, self.fold = cfg, store, fold
        self.aus = aus
        self.au_cols = au_cols
        self.dir = run_dir / f"fold{fold}"
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
        torch.manual_seed(cfg.seed * 1000 + fold)
        self.model = model_from_config(cfg, aus).to(self.device)
        set_fused(self.model, cfg.fused_kernels)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.pos_weight = torch.tensor(
            pos_weights(store.labels[self.data.train][:, au_cols], aus, cfg.no_positive_weight),
            dtype=torch.float32, device=self.device,
        )
        self.nets = networks(self.model)
        self.ddp_nets = [self._wrap(net) for net, _ in self.nets]
        # the groups of networks trained side by side, one thread each (one group = in turn)
        self.parts = split_networks(
            [(d, cols) for d, (_, cols) in zip(self.ddp_nets, self.nets, strict=True)],
            network_threads(cfg.network_threads, len(self.nets), self.device, self.dist.world))
        groups = param_groups(self.model, cfg.lr, cfg.attention_lr)
        if cfg.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(
                groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        self.kind = self.model.input_kind
        refs = (_references(store, RunDir(run_dir), cfg, self.dist, self.kind)
                if cfg.normalize == "subject" else None)
        self.ds = StoreBatches(store, self.kind, au_cols, refs)
        # global batch; EpochBatches gives each DDP rank its share of every batch
        self.sampler = EpochBatches(self.data.train, max(1, cfg.batch_size), cfg.seed, self.dist.rank,
                                    self.dist.world, True, cfg.max_batches)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 1

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

    def _input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return to_model_input(batch["x"], self.kind, self.cfg.mean, self.cfg.std,
                              self.cfg.channels_last, self.device, batch.get("ref"), self.amp_dtype)

    # -- checkpoints ------------------------------------------------------------------------
    def ckpt_path(self, epoch: int) -> Path:
        return self.dir / "checkpoints" / f"epoch-{epoch:02d}.pt"

    def save_checkpoint(self, epoch: int) -> None:
        if not self.dist.main:
            return
        path = self.ckpt_path(epoch)
        tmp = tmp_path_for(path)
        torch.save({"epoch": epoch, "model": self.model.state_dict(),
                    "optimizer": self.opt.state_dict(), "history": self.history,
                    "pos_weight": self.pos_weight.cpu()}, tmp)
        os.replace(tmp, path)

    def latest_checkpoint(self) -> int:
        ckpts = (self.dir / "checkpoints").glob("epoch-*.pt")
        eps = sorted(int(p.stem.split("-")[1]) for p in ckpts)
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
        loader = _loader(self.ds, self.sampler, self.cfg.num_workers)
        total, n_batches = 0.0, len(self.sampler)
        bar = _progress(n_batches, f"fold {self.fold} epoch {epoch}/{self.cfg.epochs}",
                        self.progress and self.dist.main, unit="batch")
        seen = 0
        t0 = time.perf_counter()
        with network_pool(len(self.parts)) as pool:
            for batch in loader:
                x = self._input(batch)
                y = batch["y"].to(self.device)
                self.opt.zero_grad(set_to_none=True)
                step_loss = backward_networks(self.parts, x, y, self.pos_weight, self._autocast,
                                              pool)
                if not math.isfinite(step_loss):
                    raise PattnetError(f"fold {self.fold} epoch {epoch}: loss became {step_loss}")
                self.opt.step()
                total += step_loss
                seen += len(batch["index"])
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.3f}",
                                fps=f"{seen * self.dist.world / (time.perf_counter() - t0):.1f}")
        bar.close()
        return total / max(1, n_batches)

    @torch.no_grad()
    def predict(self, indices: np.ndarray, desc: str) -> dict[str, np.ndarray]:
        """Probabilities (and attention) for store rows ``indices``, in that order."""
        self.model.eval()
        sampler = EpochBatches(indices, max(self.cfg.batch_size, 64), 0, shuffle=False)
        loader = _loader(self.ds, sampler, self.cfg.num_workers)
        probs, atts, labels = [], [], []
        bar = _progress(len(sampler), desc, self.progress and self.dist.main, unit="batch")
        for batch in loader:
            with self._autocast():
                out = self.model(self._input(batch))
            probs.append(torch.sigmoid(out.logits.float()).cpu().numpy())
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
        return res

    def validate(self) -> dict[str, float]:
        from pattnet.evaluate.metrics import au_metrics

        if len(self.data.val) == 0:
            return {}
        pred = self.predict(self.data.val, f"fold {self.fold} validate")
        m = au_metrics(pred["prob"], pred["label"], self.aus, threshold=self.cfg.threshold)
        avg = m.loc["Avg"] if "Avg" in m.index else m.iloc[-1]
        y = torch.from_numpy(pred["label"])
        p = torch.from_numpy(pred["prob"]).clamp(1e-7, 1 - 1e-7)
        loss = float(weighted_bce(torch.logit(p), y, self.pos_weight.cpu()))
        return {"val_f1": float(avg["f1"]), "val_auc": float(avg["auc"]), "val_loss": loss}

    def run(self, stop_after: int | None = None) -> None:
        """Train all epochs (continuing after the latest checkpoint), select, predict the test."""
        done = self.dir / "predictions.npz"
        if done.is_file():
            log.info("fold %d already finished; skipping", self.fold)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "checkpoints").mkdir(exist_ok=True)
        if self.dist.main:
            sp = self.data.split
            atomic_write_json(self.dir / "split.json", {
                "fold": self.fold, "train": list(sp.train), "val": list(sp.val),
                "test": list(sp.test), "n_train": int(len(self.data.train)),
                "n_val": int(len(self.data.val)), "n_test": int(len(self.data.test)),
                "pos_weight": {au_name(a): float(w) for a, w in
                               zip(self.aus, self.pos_weight.cpu().tolist(), strict=True)},
            })
        last = self.latest_checkpoint()
        if last:
            self.load_checkpoint(last)
            log.info("fold %d: resuming after epoch %d", self.fold, last)
        for epoch in range(last + 1, self.cfg.epochs + 1):
            t0 = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
            if self.dist.main:
                row.update(self.validate())
            row["seconds"] = round(time.perf_counter() - t0, 2)
            row["world"] = self.dist.world
            self.history.append(row)
            self.save_checkpoint(epoch)
            if self.dist.main:
                _write_history(self.dir / "history.csv", self.history)
                log.info("fold %d epoch %d: %s", self.fold, epoch,
                         ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
            if stop_after is not None and epoch >= stop_after:
                return
        self._barrier()
        if self.dist.main:
            self.finish()
        self._barrier()

    def _barrier(self) -> None:
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def select_epoch(self) -> dict[str, Any]:
        metric = self.cfg.select_metric
        key = f"val_{metric}"
        rows = [r for r in self.history if key in r and np.isfinite(r[key])]
        if not rows:
            return {"epoch": self.history[-1]["epoch"], "criterion": "last epoch (no validation)",
                    "value": None}
        best = (min if metric == "loss" else max)(rows, key=lambda r: r[key])
        return {"epoch": int(best["epoch"]), "criterion": key, "value": float(best[key]),
                "note": "selected on validation subjects drawn from the training fold"}

    def finish(self) -> None:
        sel = self.select_epoch()
        self.load_checkpoint(sel["epoch"], optimizer=False)
        pred = self.predict(self.data.test, f"fold {self.fold} test")
        pred["subject"] = self.store.subjects[pred["index"]]
        atomic_write_json(self.dir / "selected.json", sel)
        tmp = tmp_path_for(self.dir / "predictions.npz")
        with open(tmp, "wb") as fh:
            np.savez(fh, **pred)
        os.replace(tmp, self.dir / "predictions.npz")


def _references(store: PatchStore, run: RunDir, cfg: TrainConfig, dist: Dist,
                kind: str) -> dict[str, np.ndarray]:
    """Every subject's mean ``kind`` input, computed once per run (RUN/references.npz) and
    reused by the other folds, a resumed run and ``export``. Under DDP rank 0 writes it and the
    others wait."""
    if dist.main and not run.references.is_file():
        usable = None if cfg.include_failed else store.success
        refs = subject_references(store, kind, np.unique(store.subjects), usable,
                                  max_frames=cfg.reference_frames)
        save_references(run.references, refs)
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return load_references(run.references)


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in history]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _progress(total: int, desc: str, enabled: bool, unit: str = "it") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit=unit, leave=False,
                dynamic_ncols=True, mininterval=1.0)


# --------------------------------------------------------------------------------------------
# entry point


def train(
    store_path: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    folds: Sequence[int] | str = "all",
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Train ``cfg.model`` on the store under k-fold subject-independent cross-validation.

    ``resume`` continues a run directory from its last checkpoints; the config saved there wins
    (a resumed run must be the same run). ``stop_after`` ends each fold after that epoch (used to
    test resumption).
    """
    run_dir = Path(out)
    cfg_path = run_dir / "config.yaml"
    world_rank = int(os.environ.get("RANK", "0"))
    # Only rank 0 decides whether the run exists: under DDP the other ranks may look after rank 0
    # has already written config.yaml for this very run.
    if cfg_path.is_file() and (resume or world_rank == 0):
        if not resume:
            raise PattnetError(f"{run_dir}: a run already exists here; pass --resume to continue "
                               "it or choose another --out")
        cfg = from_dict(TrainConfig, read_config_file(cfg_path))
    elif cfg is None:
        cfg = TrainConfig()
    if cfg.normalize not in NORMALIZE_MODES:
        raise PattnetError(f"normalize must be one of {', '.join(NORMALIZE_MODES)}, "
                           f"got {cfg.normalize!r}")
    store = PatchStore(store_path)
    aus = list(store.aus) if cfg.aus is None else [int(a) for a in cfg.aus]
    missing = [a for a in aus if a not in store.aus]
    if missing:
        raise PattnetError(f"AUs {missing} are not in {store.path} (it has {store.aus})")
    au_cols = np.array([store.aus.index(a) for a in aus], dtype=np.int64)
    dataset = cfg.dataset or store.dataset
    subjects = np.unique(store.subjects)
    fold_lists = subject_folds(subjects, dataset, cfg.folds, cfg.seed)
    which = list(range(1, len(fold_lists) + 1)) if folds == "all" else [int(f) for f in folds]
    if world_rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not cfg_path.is_file():
            save_config(cfg, cfg_path)
        info = {
            "model": cfg.model, "aus": aus, "folds": which, "dataset": dataset,
            "store": str(Path(store_path).resolve()), "threshold": cfg.threshold,
            "n_folds": len(fold_lists), "fold_subjects": fold_lists,
            "torch": torch.__version__,
        }
        if cfg.model == "single-patch":
            info["patch"] = cfg.patch
        atomic_write_json(run_dir / "run.json", info)
    for f in which:
        trainer = Trainer(cfg, store, run_dir, f, fold_lists, au_cols, aus, progress)
        trainer.run(stop_after=stop_after)
    return run_dir


__all__ = ["TrainConfig", "train", "weighted_bce", "pos_weights", "EpochBatches"]
