"""``upband models``: the registered architectures and the pretrained models
(:mod:`upband.models.registry`)."""

from __future__ import annotations

import argparse
import json

from upband.cli.base import EXIT_OK
from upband.models.registry import (
    describe_models,
    format_models_table,
    format_pretrained_table,
    pretrained_records,
)

DESCRIPTION = ("One line per registered model: parameters, receptive field, MACs per second of "
               "44.1 kHz audio and a description.")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband models``."""
    p.description = DESCRIPTION
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the architectures, then the pretrained models."""
    infos = describe_models()
    if args.json:
        print(json.dumps({"architectures": [i.to_dict() for i in infos],
                          "pretrained": pretrained_records()}, indent=2))
    else:
        print(format_models_table(infos))
        print()
        print(format_pretrained_table())
    return EXIT_OK
