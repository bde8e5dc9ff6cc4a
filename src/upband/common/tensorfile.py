"""Strict, code-free reading of safetensors files: the only place upband opens one.

A safetensors file holds raw tensors and a string-to-string header; reading it never executes
code (unlike a pickle). Every reader raises :class:`TensorFileError` (a one-line message naming
the file) for a missing, truncated or foreign file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from upband.errors import UpbandError

PathLike = str | os.PathLike[str]


class TensorFileError(UpbandError):
    """A safetensors file that cannot be read."""


def _open(path: PathLike):  # type: ignore[no-untyped-def]
    return safe_open(str(path), framework="pt", device="cpu")


def read_metadata(path: PathLike) -> dict[str, str]:
    """The file's string header (empty when it has none), without reading any tensor."""
    try:
        with _open(path) as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise TensorFileError(f"{Path(path)}: not a safetensors file ({exc})") from exc


def read_shapes(path: PathLike) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor, without reading the data."""
    try:
        with _open(path) as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise TensorFileError(f"{Path(path)}: unreadable tensors ({exc})") from exc


def read_tensors(path: PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of the file, on the CPU."""
    try:
        with _open(path) as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise TensorFileError(f"{Path(path)}: unreadable tensors ({exc})") from exc


def load_strict(module: torch.nn.Module, path: PathLike) -> None:
    """Load the file's tensors into ``module`` strictly: a missing or extra key is an error."""
    tensors = read_tensors(path)
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise TensorFileError(f"{Path(path)}: does not fit the model ({exc})") from exc
