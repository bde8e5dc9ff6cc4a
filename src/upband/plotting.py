"""matplotlib for upband's figures: imported only when a figure is drawn (optional extra
``plot``), with the Agg backend so no display is needed; PNGs are written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from upband.errors import MissingDependencyError
from upband.fsutil import atomic_write_bytes


def pyplot(purpose: str) -> Any:
    """``matplotlib.pyplot``, or a :class:`MissingDependencyError` saying ``purpose`` needs it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose}: matplotlib is not installed (pip install 'upband[plot]')") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | os.PathLike[str], *, dpi: int, tight: bool = False) -> None:
    """Render ``fig`` as PNG, close it, and write the bytes to ``path`` atomically."""
    plt = pyplot("figures")
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    finally:
        plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
