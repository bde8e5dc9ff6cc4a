#!/usr/bin/env python3
"""Write a copy of a model file with other constructor arguments and the same tensors.

    python scripts/reconfigure_model.py MODEL OUT.safetensors NAME=VALUE [NAME=VALUE ...]

``MODEL`` is a ``.safetensors`` model file or a pretrained name. Only arguments that leave
every tensor's shape as it is can change (for ``stft-restore``: ``smooth_bins``,
``patch_peak_db``, ``max_gain_db``); the copy then computes something else with the same
weights, so it is a starting point for training (``model.init=OUT.safetensors``), not a model
to ship untrained. VALUE is read as JSON (``6.0``, ``null``, ``9``), else taken as a string.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from upband.errors import UpbandError
from upband.models import build_model
from upband.states import load_model_or_pretrained, save_model


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model file or pretrained name")
    p.add_argument("out", type=Path, help="the copy (.safetensors)")
    p.add_argument("changes", nargs="+", metavar="NAME=VALUE")
    args = p.parse_args(argv)
    try:
        model = load_model_or_pretrained(args.model)
        config = dict(model.config)
        for change in args.changes:
            name, sep, value = change.partition("=")
            if not sep or name not in config:
                raise UpbandError(f"{change!r}: expected NAME=VALUE with NAME one of "
                                  f"{', '.join(config)}")
            config[name] = _value(value)
        copy = build_model(model.name, **config)
        if {k: v.shape for k, v in copy.state_dict().items()} != {
                k: v.shape for k, v in model.state_dict().items()}:
            raise UpbandError(f"{', '.join(args.changes)} changes the tensors' shapes: only "
                              "arguments that keep every tensor as it is can change")
        copy.load_state_dict(model.state_dict(), strict=True)
        digest = save_model(copy, args.out, sample_rate=model.sample_rate)
    except (UpbandError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {model.name} with {config}; sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
