"""Recipe text to nested tables: TOML files and ``section.key=value`` overrides.

Nothing here knows the keys; :mod:`upband.train.config` validates the tables (the two helpers
at the end word its error messages).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from upband.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
    import tomli as tomllib

PathLike = str | os.PathLike[str]


class ConfigError(SpecError):
    """A training config or override is malformed: unknown key, wrong type or bad value."""


def plain(value: Any) -> Any:
    """``value`` with tuples as lists and keys as strings, all the way down (JSON-ready)."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def read_toml(path: PathLike) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-4"`` -> ``("optim.lr", 0.0001)``.

    The value is parsed as a TOML literal (numbers, booleans, quoted strings, lists, inline
    tables); anything that is not valid TOML is kept as a bare string, so paths need no quotes.
    """
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} must look like section.key=value "
                          "(e.g. optim.lr=1e-4)")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except Exception:  # not a TOML literal: a bare string such as a path
        parsed = value
    return key, parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[tuple[str, Any]]
                    ) -> dict[str, Any]:
    """A deep copy of ``raw`` with each dotted ``(key, value)`` set; the keys are checked when
    the result goes through :func:`config_from_dict`."""
    out: dict[str, Any] = json.loads(json.dumps(raw))
    for key, value in overrides:
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key!r}: {'.'.join(parts[:i + 1])} is not a table")
            node = child
        node[parts[-1]] = plain(value)
    return out


def describe_type(hint: Any) -> str:
    """``hint`` (a field type) in the words of an error message."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return describe_type(args[0])
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {describe_type(args[0])}"
        return f"a list of {len(args)} numbers"
    if origin is dict:
        return "a table"
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(hint, str(hint))


def unknown_error(kind: str, name: str, valid: Iterable[str]) -> ConfigError:
    """An unknown table or key ``name``, with the closest valid one as a hint."""
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config {kind} {name!r}{hint}; valid: {', '.join(valid)}")
