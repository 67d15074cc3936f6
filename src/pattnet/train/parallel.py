"""The independent networks of a model, trained side by side on one batch.

Per-AU networks share no parameters, so each batch is read once and every network then runs its
own forward/backward: the same gradient as training it alone, at a fraction of the memory of one
autograd graph over all of them. On a CPU, groups of networks can run on separate threads; how
many threads is decided here (cores are shared out with :func:`pattnet.runtime.intra_op_threads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from pattnet.errors import PattnetError
from pattnet.models import AUModel
from pattnet.runtime import intra_op_threads
from pattnet.train.loss import weighted_bce

NetGroup = Sequence[tuple[nn.Module, list[int]]]


def networks(model: AUModel) -> list[tuple[nn.Module, list[int]]]:
    """The independent networks of a model and the AU columns each one predicts."""
    from pattnet.models.networks import PerAU

    if isinstance(model.net, PerAU) and not (model.net.batched and model.net.can_batch()):
        return [(net, [k]) for k, net in enumerate(model.net.nets)]
    # one network, or per-AU networks run as one grouped computation (pattnet.models.batched)
    return [(model.net, list(range(len(model.aus))))]


def network_threads(requested: int | None, n_nets: int, device: torch.device, world: int = 1
                    ) -> int:
    """How many threads train the independent networks side by side (1 = one after another).

    Why: on a CPU the per-AU networks' convolutions already run at the bf16 GEMM peak, and the
    rest (batch norm, max-pooling, ReLU backward on large feature maps) waits on memory and
    scales poorly across cores; two networks at once, each on one core, overlap one's
    convolutions with the other's memory-bound ops. A GPU runs one network's ops at a time
    anyway, and DDP needs every rank to start its collectives in the same order, so both stay
    at 1.
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


def split_networks(nets: NetGroup, threads: int) -> list[list[tuple[nn.Module, list[int]]]]:
    """Round-robin groups of networks, one group per thread."""
    return [list(nets[i::threads]) for i in range(threads) if nets[i::threads]]


def backward_networks(parts: Sequence[NetGroup], x: torch.Tensor | dict[str, torch.Tensor],
                      y: torch.Tensor,
                      pos_weight: torch.Tensor, autocast: Any, pool: Any = None) -> torch.Tensor:
    """Forward + backward of every independent network on one batch; returns the summed loss,
    a 0-d tensor on the batch's device (no host round trip: read it when you need it).

    With a thread ``pool`` each group of ``parts`` runs on its own thread. The networks share no
    parameters, so each gets exactly the gradient it would get alone, whatever runs beside it;
    losses are summed in group order, so the result does not depend on thread timing.
    """
    def run(part: NetGroup) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float32, device=y.device)
        for net, cols in part:
            with autocast():
                out = net(x)
            loss = weighted_bce(out.logits, y[:, cols], pos_weight[cols])
            for aux in out.aux:  # parts trained to predict on their own as well
                loss = loss + weighted_bce(aux, y[:, cols], pos_weight[cols])
            loss.backward()
            total = total + loss.detach().float()
        return total

    if pool is None or len(parts) < 2:
        totals = [run(part) for part in parts]
    else:
        totals = [f.result() for f in [pool.submit(run, part) for part in parts]]
    return torch.stack(totals).sum()


__all__ = ["NetGroup", "backward_networks", "network_pool", "network_threads", "networks",
           "split_networks"]
