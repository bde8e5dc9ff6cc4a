#!/usr/bin/env python3
"""Write the weighted mean of model files of one architecture, parameter by parameter.

    python scripts/average_models.py OUT.safetensors MODEL MODEL [MODEL ...] [--weights W W ...]

Every ``MODEL`` (a ``.safetensors`` model file or a pretrained name) must have the same
architecture, constructor arguments, sample rate and tensor names and shapes; the mean is taken
in float64 and stored in each tensor's own dtype (integer buffers, such as counters, are taken
from the first model). The weights default to equal and are normalised to sum to one.

Averaging works between checkpoints of one lineage: a run and its own continuation share a
basin, and the mean of a continuation and the file it started from keeps part of each
(docs/results/lattner/README.md measures such means of ``upband-lattner`` and its
waveform-anchored continuation). Between two networks trained from different initialisations
it gives nothing useful. The output's metadata records each input as given (file or name), its
SHA-256, weight, step and training config; ``scripts/export_pretrained.py`` carries them into a
shipped file (paths reduced to their last component). Choose the weights on the validation
split, never on the test split.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upband import states
from upband.common.hashing import file_sha256
from upband.errors import UpbandError
from upband.models.base import WaveModel

if TYPE_CHECKING:
    import torch


def _record(spec: str, weight: float) -> dict[str, Any]:
    # the file load_model_or_pretrained reads: a pretrained name's packaged file, else spec
    path = states.pretrained_path(spec) if states.names_pretrained(spec) else Path(spec)
    meta: dict[str, Any] = states.read_header(path).metadata
    return {"model": spec, "sha256": file_sha256(path), "weight": weight,
            "step": meta.get("step", meta.get("trained_step")),
            "config": meta.get("config", meta.get("training_config"))}


def average(models: Sequence[WaveModel], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of the models' state dicts (weights normalised to sum to one)."""
    if len(models) != len(weights) or len(models) < 2:
        raise UpbandError("expected two or more models and one weight per model")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UpbandError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    first = models[0]
    for other in models[1:]:
        if other.name != first.name or other.config != first.config:
            raise UpbandError(f"cannot average {first.name} {first.config} with "
                              f"{other.name} {other.config}: architecture and arguments differ")
        if other.sample_rate != first.sample_rate:
            raise UpbandError(f"cannot average models at {first.sample_rate} and "
                              f"{other.sample_rate} Hz")
    total = float(sum(weights))
    states_ = [m.state_dict() for m in models]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in states_[0].items():
        if not tensor.is_floating_point():
            out[key] = tensor.clone()
            continue
        acc = tensor.double() * (weights[0] / total)
        for state, w in zip(states_[1:], weights[1:], strict=True):
            acc += state[key].double() * (w / total)
        out[key] = acc.to(tensor.dtype)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the mean (.safetensors)")
    p.add_argument("models", nargs="+", help="model files or pretrained names (two or more)")
    p.add_argument("--weights", type=float, nargs="+", help="one per model (default: equal)")
    args = p.parse_args(argv)
    weights = args.weights or [1.0] * len(args.models)
    try:
        models = [states.load_model_or_pretrained(spec) for spec in args.models]
        mean = average(models, weights)
        total = float(sum(weights))
        records = [_record(spec, w / total) for spec, w in zip(args.models, weights, strict=True)]
        target = models[0]
        target.load_state_dict(mean, strict=True)
        digest = states.save_model(target, args.out, sample_rate=target.sample_rate,
                                   metadata={"average_of": records, "step": None,
                                             "config": records[0]["config"]})
    except (UpbandError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parts = ", ".join(f"{r['model']} x {r['weight']:.3g}" for r in records)
    print(f"{args.out}: mean of {parts}; sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
