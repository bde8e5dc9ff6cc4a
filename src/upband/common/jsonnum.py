"""Numbers in strict JSON: one rule for every JSON file and ``--json`` output upband writes.

Strict JSON has no NaN or infinity. upband writes ``+inf`` / ``-inf`` as the strings ``"inf"`` /
``"-inf"`` (an SNR of identical signals is infinite, and that is a result, not an error) and NaN
(an undefined value, e.g. ViSQOL of a clip too short for it) as ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_number(value: float) -> float | str | None:
    """``value`` fit for strict JSON: ``"inf"`` / ``"-inf"`` for the limits, ``None`` for NaN."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def dumps_strict(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.dumps`` that refuses NaN and infinity (convert them with :func:`json_number`)."""
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False)


def strict_values(obj: Any) -> Any:
    """``obj`` with every float inside its dicts and lists passed through :func:`json_number`."""
    if isinstance(obj, dict):
        return {k: strict_values(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_values(v) for v in obj]
    return json_number(obj) if isinstance(obj, float) else obj
