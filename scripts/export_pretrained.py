"""Turn a training checkpoint into a shipped pretrained model file.

    python scripts/export_pretrained.py RUN_DIR/checkpoints/step-00006000/model.safetensors \
        --name upband-default --out src/upband/pretrained/upband-default.safetensors

Loads the checkpoint (weights + JSON header only), keeps its step, training config and
validation record as metadata (and, for a mean written by ``scripts/average_models.py``, what
it averages; local paths reduced to their last component, so the file does not carry the
trainer's folder layout), writes the file atomically and prints its size,
SHA-256 and the ``PretrainedModel`` entry to paste into ``src/upband/models/registry.py``.
Refuses files over 16 MB (the repository's limit for shipped weights).

``--output-gain G`` multiplies the model's ``out_scale`` (the constant factor on its correction,
ARUNet variants) by G: the shipped correction is then exactly G times the trained one. Choose G
on the validation split (``upband evaluate --split validation``), never on the test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from upband import states
from upband.errors import UpbandError
from upband.models import build_model

MAX_BYTES = 16 * 1000 * 1000


def _strip_paths(value: Any) -> Any:
    """Replace absolute paths inside a config by their last component."""
    if isinstance(value, dict):
        return {k: _strip_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return Path(value).name
    return value


def export(checkpoint: Path, out: Path, name: str, description: str,
           output_gain: float = 1.0) -> str:
    header = states.read_header(checkpoint)
    model = states.load_model(checkpoint)
    if output_gain != 1.0:
        if "out_scale" not in model.config:
            raise UpbandError(f"{header.architecture} has no out_scale to apply a gain to")
        kwargs = {**model.config, "out_scale": model.config["out_scale"] * output_gain}
        scaled = build_model(header.architecture, **kwargs)
        scaled.load_state_dict(model.state_dict(), strict=True)
        model = scaled
    meta = header.metadata
    metadata = {
        "pretrained_name": name,
        "description": description,
        "trained_step": meta.get("step", meta.get("best", {}).get("step")),
        "output_gain": output_gain,
        "validation": meta.get("validation"),
        "training_config": _strip_paths(meta.get("config", {})),
        "model_card": f"docs/models/{name}.md",
    }
    if "average_of" in meta:  # a mean of checkpoints (scripts/average_models.py)
        metadata["average_of"] = _strip_paths(meta["average_of"])
    sha = states.save_model(model, out, sample_rate=header.sample_rate, metadata=metadata)
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise UpbandError(f"{out}: {size} bytes is over the 16 MB limit for shipped weights")
    print(f"{out}: {size} bytes, sha256 {sha}")
    print("registry entry:")
    print(f'    "{name}": PretrainedModel(\n'
          f'        name="{name}", architecture="{header.architecture}",\n'
          f"        kwargs={model.config!r},\n"
          f"        sample_rate={header.sample_rate}, file=\"{out.name}\",\n"
          f'        sha256="{sha}",\n'
          f'        description="{description}"),')
    return sha


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (.safetensors)")
    parser.add_argument("--name", required=True, help="pretrained model name")
    parser.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    parser.add_argument("--description", default="", help="one-line description")
    parser.add_argument("--output-gain", type=float, default=1.0,
                        help="factor on the model's out_scale (default 1)")
    args = parser.parse_args(argv)
    try:
        export(args.checkpoint, args.out, args.name, args.description, args.output_gain)
    except UpbandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
