"""Names a package imports on first use: the one ``__getattr__`` of the packages whose heavy
parts (torch, scipy) the command line's start-up must not load."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is imported from the submodule
    ``package.<where[name]>`` when first asked for, then kept in the package.

    Args:
        package: the package's ``__name__``.
        where: name -> submodule (relative to ``package``).
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
