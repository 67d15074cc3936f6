"""The deployable model file: what one checkpoint holds, and writing and reading it safely.

Why a format of its own (and not the trainer's ``epoch-NN.pt``): a training checkpoint holds the
optimiser and history but not what a user of the model must know — which architecture, which
AUs, how the input was normalised, which registration template cut the patches and at which
threshold an AU counts as present. Getting any of these wrong gives plausible but wrong
probabilities, so the file carries them and :func:`pattnet.checkpoint.load_checkpoint` refuses
what does not fit.

The file is a plain ``torch.save`` of a dict holding only tensors, dicts, lists, str, int, float
and bool, so it loads with ``torch.load(..., weights_only=True)``: opening a model someone sent
you runs no pickled code. Layout (``format_version`` 1)::

    format           "pattnet-checkpoint"
    format_version   1
    pattnet_version  "0.1.0"            the version that wrote it
    model            "pattnet-multilabel"
    mode             "multilabel" | "per-au"
    model_config     {dim, order, attention_bias, patch, init}   (ModelConfig fields)
    input_kind       "patches" | "holistic" | "mesh"   the model's first input
    input_kinds      ["patches", "mesh"]   (optional, default [input_kind]) all its inputs
    aus              [1, 2, 4, ...]
    threshold        [0.5, 0.5, ...]    one per AU (occurrence = probability >= threshold)
    mean, std        0.5, 0.5           normalisation of to_model_input
    normalize        "global" | "subject"   (optional, default global) subject: the model takes
                                        the difference from the person's mean face
    reference        float32 tensor     (subject only) the training population's mean face, the
                                        prior of detect's running per-person reference
    mesh_reference   float32 (478, 3)   (models of the mesh) the training population's mean
                                        canonical mesh: the reference of a face seen once, and
                                        the prior of detect's running per-person mean mesh
    person_reference "mean" | "neutral" (optional, default mean) which of a person's frames
                                        the model was trained against (TrainConfig.reference):
                                        what detect's --reference auto estimates
    threshold_source ["...", ...]       (optional) one per AU: how its threshold was chosen
    template_version "pattnet-mp478-v1" the registration template the patches were cut with
    state_dict       {name: tensor}
    weights_dtype    "float16"          (optional) floating weights stored at half precision to
                                        make the file small; loaded back into float32
    weights_sha256   hex digest         of every tensor above (names, types, shapes, bytes):
                                        :func:`read_checkpoint` refuses a file whose weights no
                                        longer match it (a disk or copy error inside the file
                                        that still loads). Files written before it have none.
    source           {run, fold, epoch, criterion, value, ...}   provenance, free-form
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from pattnet.errors import PattnetError
from pattnet.io.atomic import atomic_write_bytes

FORMAT = "pattnet-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "model", "mode", "model_config", "aus", "threshold",
             "mean", "std", "template_version", "state_dict")


class CheckpointError(PattnetError):
    """A checkpoint file that is missing, damaged, not pattnet's or does not fit this install."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the ready model (eval mode) and what is needed to feed and read it."""

    model: Any  # pattnet.models.AUModel
    aus: list[int]
    threshold: list[float]
    mean: float
    std: float
    template_version: str
    pattnet_version: str
    path: Path | None = None
    source: dict[str, Any] = field(default_factory=dict)
    normalize: str = "global"
    reference: Any = None  # numpy float32, the shape of one image sample (subject only)
    mesh_reference: Any = None  # numpy float32 (478, 3), models of the mesh only
    person_reference: str = "mean"  # TrainConfig.reference: mean | neutral
    threshold_source: list[str] | None = None  # per AU, how its threshold was chosen

    @property
    def input_kind(self) -> str:
        return self.model.input_kind

    @property
    def input_kinds(self) -> tuple[str, ...]:
        return tuple(self.model.input_kinds)


def _model_mode(model: Any) -> str:
    from pattnet.models.networks import PerAU

    return "per-au" if isinstance(model.net, PerAU) else "multilabel"


def _thresholds(threshold: float | Sequence[float], n: int) -> list[float]:
    """One occurrence threshold per AU, each in [0, 1]: what the writer and the loader accept."""
    seq = [threshold] * n if isinstance(threshold, (int, float)) else list(threshold)
    vals = [float(t) for t in seq]
    if len(vals) != n:
        raise CheckpointError(f"{len(vals)} threshold(s) for {n} AU(s)")
    if not all(0.0 < t < 1.0 for t in vals):  # NaN fails both comparisons
        raise CheckpointError(f"thresholds must lie between 0 and 1 (exclusive), got {vals}")
    return vals


def contents_problem(data: dict[str, Any]) -> str | None:
    """The first field of a checkpoint dict whose contents cannot be what a trained model holds
    (a weight or reference that is not a finite number, ``std`` not above 0, an AU that FACS
    does not define), as a phrase; None when all are sound.

    Why beside the checksum: a model whose training diverged is saved with a valid checksum and
    would detect with every probability NaN, read downstream as "no AU"; a NaN or infinite
    normalisation gives plausible-looking probabilities. Both are refused where they are written
    and again where they are read.
    """
    from pattnet.constants import FACS_AUS

    bad = [a for a in data.get("aus", []) if a not in FACS_AUS]
    if bad:
        return f"AU {bad[0]} is not a FACS action unit"
    for key in ("mean", "std"):
        v = data.get(key)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"normalisation {key} is {v!r}, not a finite number"
    if data["std"] <= 0:
        return f"normalisation std is {data['std']!r}; it must be above 0"
    tensors = [(f"weight {k}", v) for k, v in sorted(data.get("state_dict", {}).items())]
    tensors += [(k, data[k]) for k in ("reference", "mesh_reference") if k in data]
    for name, t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and \
                not bool(torch.isfinite(t).all()):
            return f"{name} holds {'NaN' if bool(torch.isnan(t).any()) else 'infinite'} values"
    return None


def _threshold_source(source: Sequence[str], n: int) -> list[str]:
    """One line per AU saying how its threshold was chosen: what the writer and loader accept."""
    if isinstance(source, str) or len(source) != n or not all(isinstance(v, str) for v in source):
        raise CheckpointError(f"threshold_source must be one string per AU ({n}), got {source!r}")
    return list(source)


def _plain(obj: Any) -> Any:
    """Only types ``weights_only`` accepts: refuse numpy scalars, paths, dataclasses silently."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalar
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _normalisation(model: Any, normalize: str, reference: Any, mesh_reference: Any,
                   person_reference: str = "mean") -> dict[str, Any]:
    """The ``normalize`` entry, the population reference face a subject model needs and the
    population mean mesh a model of the mesh needs."""
    from pattnet.store.reference import MODES, REFERENCES

    if normalize not in MODES:
        raise CheckpointError(f"normalize must be one of {', '.join(MODES)}, got {normalize!r}")
    if person_reference not in REFERENCES:
        raise CheckpointError(f"person_reference must be one of {', '.join(REFERENCES)}, got "
                              f"{person_reference!r}")
    kinds = tuple(model.input_kinds)
    images = [k for k in kinds if k != "mesh"]
    if normalize == "subject" and images and reference is None:
        raise CheckpointError("a subject-normalised model needs its population reference face")
    extra: dict[str, Any] = {"normalize": normalize, "input_kinds": list(kinds),
                             "person_reference": person_reference}
    if normalize == "subject" and images:
        extra["reference"] = torch.tensor(reference, dtype=torch.float32).contiguous()
    if "mesh" in kinds:
        if mesh_reference is None:
            raise CheckpointError("a model of the mesh needs its population mean mesh")
        extra["mesh_reference"] = torch.tensor(mesh_reference, dtype=torch.float32).contiguous()
    return extra


def checkpoint_dict(
    model: Any,
    *,
    threshold: float | Sequence[float] = 0.5,
    mean: float = 0.5,
    std: float = 0.5,
    template_version: str | None = None,
    source: dict[str, Any] | None = None,
    normalize: str = "global",
    reference: Any = None,
    mesh_reference: Any = None,
    weights_dtype: str | None = None,
    person_reference: str = "mean",
    threshold_source: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The dict :func:`save_checkpoint` writes (exposed for tests and for other writers)."""
    from pattnet import __version__
    from pattnet.registration.template import load_template

    aus = [int(a) for a in model.aus]
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    extra = _normalisation(model, normalize, reference, mesh_reference, person_reference)
    if threshold_source is not None:
        extra["threshold_source"] = _threshold_source(threshold_source, len(aus))
    if weights_dtype is not None:
        if weights_dtype != "float16":
            raise CheckpointError(f"weights_dtype must be float16 or None, got {weights_dtype!r}")
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        extra["weights_dtype"] = weights_dtype
    extra["weights_sha256"] = weights_digest({"state_dict": state, **extra})
    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pattnet_version": __version__,
        "model": str(model.name),
        "mode": _model_mode(model),
        "model_config": _plain(asdict(model.cfg)),
        "input_kind": str(model.input_kind),
        "aus": aus,
        "threshold": _thresholds(threshold, len(aus)),
        "mean": float(mean),
        "std": float(std),
        "template_version": template_version or load_template().version,
        "state_dict": state,
        "source": _plain(source or {}),
        **extra,
    }
    problem = contents_problem(data)
    if problem:
        raise CheckpointError(f"refused to write a model whose {problem}")
    return data


def save_checkpoint(
    path: str | Path,
    model: Any,
    *,
    threshold: float | Sequence[float] = 0.5,
    mean: float = 0.5,
    std: float = 0.5,
    template_version: str | None = None,
    source: dict[str, Any] | None = None,
    normalize: str = "global",
    reference: Any = None,
    mesh_reference: Any = None,
    weights_dtype: str | None = None,
    person_reference: str = "mean",
    threshold_source: Sequence[str] | None = None,
) -> Path:
    """Write ``model`` (an :class:`~pattnet.models.AUModel`) and its usage facts to ``path``.

    Written to a temporary sibling and renamed, so an interrupted export never leaves a
    truncated model file that ``detect`` would later trip over. ``template_version`` defaults to
    the template of this install (the one ``prepare`` used when the store was made here).
    """
    p = Path(path)
    try:
        data = checkpoint_dict(model, threshold=threshold, mean=mean, std=std,
                               template_version=template_version, source=source,
                               normalize=normalize, reference=reference,
                               mesh_reference=mesh_reference, weights_dtype=weights_dtype,
                               person_reference=person_reference,
                               threshold_source=threshold_source)
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from exc
    # Through memory rather than a temporary file: torch.save names the archive inside the file
    # after the file, so a temporary name would make the same model give different bytes.
    buf = io.BytesIO()
    torch.save(data, buf)
    atomic_write_bytes(p, buf.getvalue())
    return p


def weights_digest(data: dict[str, Any]) -> str:
    """SHA-256 over every tensor of a checkpoint dict (the state dict and the references), by
    name, type, shape and bytes: what a file's ``weights_sha256`` must equal."""
    h = hashlib.sha256()

    def add(name: str, t: torch.Tensor) -> None:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())

    for k in sorted(data.get("state_dict", {})):
        add(f"state_dict.{k}", data["state_dict"][k])
    for k in ("reference", "mesh_reference"):
        if isinstance(data.get(k), torch.Tensor):
            add(k, data[k])
    return h.hexdigest()


def _first_sentence(exc: BaseException, default: str) -> str:
    """The cause's first sentence, whole: never a message cut in the middle of a word."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else default
    return text.split(". ")[0].rstrip(".")


#: How the files torch.save writes begin: a zip archive (torch >= 1.6), or the legacy pickle.
_MAGIC = (b"PK\x03\x04", b"\x80\x02")


def _torch_load(p: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; each way it fails becomes one clear line."""
    with p.open("rb") as fh:
        head = fh.read(4)
    if not head.startswith(_MAGIC):
        raise CheckpointError(f"{p}: not a model file (not a file PyTorch wrote; make one with "
                              "'pattnet export RUN --out model.pt')")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{p}: refused: the file contains pickled Python objects, not only weights "
                "(pattnet loads models with weights_only=True)") from exc
        raise CheckpointError(f"{p}: damaged model file ({_first_sentence(exc, 'unreadable')})"
                              ) from exc
    except Exception as exc:  # zip/EOF errors from torch.load vary by version
        why = _first_sentence(exc, type(exc).__name__)
        if "zip" in why.lower() or "central directory" in why.lower():
            why = "the archive is incomplete or damaged: truncated by a copy or a full disk?"
        raise CheckpointError(f"{p}: damaged model file ({why})") from exc


def _check_file(p: Path) -> None:
    if not p.exists():
        raise CheckpointError(f"{p}: model file not found")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder; give a model file (make one with "
                              "'pattnet export RUN --out model.pt')")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty model file (0 bytes)")


def _check_layout(p: Path, data: Any) -> None:
    """Refuse what is not an exported pattnet model of a format this version reads."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = ""
        if isinstance(data, dict) and "optimizer" in data and "model" in data:
            hint = "; this is a training checkpoint: turn the run into a model with " \
                   "'pattnet export RUN --out model.pt'"
        raise CheckpointError(f"{p}: not a pattnet model file{hint}")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format {version!r} is newer than this pattnet reads "
            f"({FORMAT_VERSION}); written by pattnet {data.get('pattnet_version')}, upgrade pattnet")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"{p}: incomplete checkpoint, missing {', '.join(missing)}")
    aus = data["aus"]
    if not isinstance(aus, list) or not aus or not all(isinstance(a, int) for a in aus):
        raise CheckpointError(f"{p}: AU list must be a non-empty list of integers, got {aus!r}")
    if len(set(aus)) != len(aus):
        raise CheckpointError(f"{p}: AU list has duplicates: {aus}")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw dict of a checkpoint file, loaded with ``weights_only=True`` and checked for shape.

    Every way a file can be wrong (missing, empty, not a torch file, a pickle with code in it,
    a training checkpoint instead of an exported one, a newer format) ends in one
    :class:`CheckpointError` line naming the file.
    """
    p = Path(path)
    _check_file(p)
    data = _torch_load(p)
    _check_layout(p, data)
    want = data.get("weights_sha256")
    if want is not None and weights_digest(data) != want:
        raise CheckpointError(f"{p}: damaged model file: its weights no longer match the "
                              "checksum written with them (a disk or copy error?); export it again")
    problem = contents_problem(data)
    if problem:
        raise CheckpointError(f"{p}: not a usable model: its {problem} (a training run that "
                              "diverged? export another epoch or train again)")
    return data
