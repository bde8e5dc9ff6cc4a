"""Model checkpoints: safetensors weights plus a JSON header that can rebuild the architecture.

A checkpoint is one ``.safetensors`` file. Its metadata (the string map in the safetensors
header) holds one key, ``"upband"``, whose value is a JSON object::

    {"format": "upband-model", "format_version": 1,
     "architecture": "arunet-s",            # a name in upband.models.MODELS
     "kwargs": {...},                         # model.config: every constructor argument
     "sample_rate": 44100,                    # the rate the weights were trained for
     "upband_version": "0.1.0",
     "metadata": {...}}                       # free JSON: training config, data, metrics ...

Loading never executes code: the header is parsed as JSON, the architecture is looked up in the
registry (never imported by name), the tensors are read by ``safetensors`` and copied into the
freshly built model with strict key and shape checks. Every failure is a
:class:`~upband.errors.ModelError` with a one-line message. The header is part of the
safetensors file itself (readable with :func:`read_header` or any safetensors tool), so no
sidecar file can get out of step with the weights.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from upband.common.hashing import bytes_sha256, file_sha256
from upband.common.jsonnum import dumps_strict
from upband.common.tensorfile import TensorFileError, read_metadata, read_shapes, read_tensors
from upband.common.version import __version__
from upband.errors import ModelError
from upband.fsutil import atomic_write_bytes
from upband.models.base import WaveModel
from upband.models.registry import MODELS, PRETRAINED, build_model

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelHeader", "file_sha256", "load_model",
           "load_model_or_pretrained", "load_pretrained", "read_header", "save_model"]

FORMAT = "upband-model"
FORMAT_VERSION = 1
_META_KEY = "upband"

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ModelHeader:
    """The JSON header of a checkpoint."""

    architecture: str
    kwargs: dict[str, Any]
    sample_rate: int
    upband_version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return dumps_strict({
            "format": FORMAT,
            "format_version": self.format_version,
            "architecture": self.architecture,
            "kwargs": self.kwargs,
            "sample_rate": self.sample_rate,
            "upband_version": self.upband_version,
            "metadata": self.metadata,
        }, indent=None, sort_keys=True)


def save_model(model: WaveModel, path: PathLike, *, sample_rate: int,
               metadata: dict[str, Any] | None = None) -> str:
    """Write ``model`` to ``path`` (``.safetensors``) atomically; returns the file's SHA-256.

    The file is written to a temporary name in the same folder and renamed into place, so a
    crash never leaves a partial checkpoint. ``metadata`` must be JSON-serialisable (e.g. the
    resolved training config). Tensors are stored as they are (float32 for a float32 model),
    on the CPU.
    """
    if not isinstance(model, WaveModel):
        raise ModelError(f"save_model expects an upband WaveModel, got {type(model).__name__}")
    if model.name not in MODELS:
        raise ModelError(f"model architecture {model.name!r} is not registered; "
                         f"valid names: {', '.join(MODELS)}")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ModelError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    header = ModelHeader(architecture=model.name, kwargs=model.config,
                         sample_rate=int(sample_rate), upband_version=__version__,
                         metadata=dict(metadata or {}))
    try:
        header_json = header.to_json()
    except (TypeError, ValueError) as exc:
        raise ModelError(f"checkpoint metadata is not JSON-serialisable: {exc}") from exc
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    blob = safetensors_save(tensors, metadata={_META_KEY: header_json})

    atomic_write_bytes(path, blob)
    return bytes_sha256(blob)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")


def read_header(path: PathLike) -> ModelHeader:
    """Parse and validate the upband header of a checkpoint without reading the tensors."""
    path = Path(path)
    _check_file(path)
    try:
        meta = read_metadata(path)
    except TensorFileError as exc:
        raise ModelError(str(exc)) from exc
    if _META_KEY not in meta:
        raise ModelError(f"{path}: not an upband model (the safetensors header has no "
                         f"{_META_KEY!r} entry)")
    try:
        raw = json.loads(meta[_META_KEY])
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: malformed upband header ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelError(f"{path}: not an upband model header")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(f"{path}: checkpoint format version {version!r} is newer than this "
                         f"upband understands ({FORMAT_VERSION}); upgrade upband")
    arch, kwargs, rate = raw.get("architecture"), raw.get("kwargs"), raw.get("sample_rate")
    if not isinstance(arch, str) or not isinstance(kwargs, dict):
        raise ModelError(f"{path}: upband header lacks 'architecture' or 'kwargs'")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ModelError(f"{path}: upband header has an invalid sample_rate {rate!r}")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ModelError(f"{path}: upband header 'metadata' is not an object")
    return ModelHeader(architecture=arch, kwargs=kwargs, sample_rate=rate,
                       upband_version=str(raw.get("upband_version", "unknown")),
                       metadata=metadata, format_version=version)


def _check_tensors(path: Path, model: WaveModel, shapes: dict[str, tuple[int, ...]]) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s) (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} shape mismatch(es) (e.g. {k}: file {shapes[k]}, "
                        f"model {expected[k]})")
    if problems:
        raise ModelError(f"{path}: weights do not match architecture {model.name!r}: "
                         + "; ".join(problems))


def load_model(path: PathLike, *, sha256: str | None = None,
               map_location: str | torch.device = "cpu") -> WaveModel:
    """Rebuild the model stored at ``path`` and load its weights strictly.

    ``sha256``: expected hex digest of the file; a mismatch raises ModelError before anything
    else is read. The model is returned in eval mode on ``map_location`` with
    ``model.sample_rate`` set from the header.
    """
    path = Path(path)
    _check_file(path)
    if sha256 is not None:
        actual = file_sha256(path)
        if actual.lower() != sha256.strip().lower():
            raise ModelError(f"{path}: SHA-256 mismatch (expected {sha256}, got {actual}); "
                             "the file is corrupt or not the one expected")
    header = read_header(path)
    if header.architecture not in MODELS:
        raise ModelError(f"{path}: unknown architecture {header.architecture!r}; "
                         f"valid names: {', '.join(MODELS)}")
    # Validate the architecture against the file's tensor shapes on the meta device first, so a
    # bad header cannot make us allocate a model unrelated to the file's size.
    try:
        shapes = read_shapes(path)
    except TensorFileError as exc:
        raise ModelError(str(exc)) from exc
    try:
        with torch.device("meta"):
            skeleton = build_model(header.architecture, **header.kwargs)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    _check_tensors(path, skeleton, shapes)

    model = build_model(header.architecture, **header.kwargs)
    try:
        model.load_state_dict(read_tensors(path), strict=True)
    except (TensorFileError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot load weights ({exc})") from exc
    model.sample_rate = header.sample_rate
    return model.to(map_location).eval()


def pretrained_path(name: str, directory: PathLike | None = None) -> Path:
    """The file of the released checkpoint ``name``: in ``directory``, or else in the installed
    ``upband/pretrained/`` folder."""
    try:
        entry = PRETRAINED[name]
    except KeyError:
        known = ", ".join(PRETRAINED) or "none are installed"
        raise ModelError(f"unknown pretrained model {name!r}; available: {known}") from None
    if directory is not None:
        return Path(directory) / entry.file
    return Path(str(importlib.resources.files("upband") / "pretrained" / entry.file))


def load_pretrained(name: str, *, directory: PathLike | None = None,
                    map_location: str | torch.device = "cpu") -> WaveModel:
    """Load a released checkpoint of :data:`upband.models.PRETRAINED` by name.

    The file is looked up in ``directory`` or else in the installed ``upband/pretrained/``
    folder, checked against its SHA-256, and its header against the entry's architecture,
    arguments and sample rate.
    """
    path = pretrained_path(name, directory)
    entry = PRETRAINED[name]
    model = load_model(path, sha256=entry.sha256, map_location=map_location)
    with torch.device("meta"):
        expected = build_model(entry.architecture, **entry.kwargs).config
    if model.name != entry.architecture or model.config != expected \
            or model.sample_rate != entry.sample_rate:
        raise ModelError(f"{path}: header does not match the pretrained entry {name!r}")
    model.pretrained_name = name
    return model


def names_pretrained(spec: PathLike) -> bool:
    """Whether ``spec`` names a shipped model rather than a file (a file of that name wins)."""
    return str(spec) in PRETRAINED and not Path(spec).exists()


def load_model_or_pretrained(spec: PathLike) -> WaveModel:
    """:func:`load_pretrained` for the name of a shipped model (unless a file of that name
    exists), else :func:`load_model` of the file ``spec``."""
    if names_pretrained(spec):
        return load_pretrained(str(spec))
    return load_model(spec)
