"""Enhancement: restore the high band of a signal or a file, in stages.

* :mod:`~upband.enhancement.settings`: defaults, :class:`Settings` and the :class:`ClipPolicy`
  shared by arrays and files (no torch: the command line reads its defaults here);
* :mod:`~upband.enhancement.loading`: :func:`load_enhancer`, the model and its device
  (:func:`load_models`: also ``--model auto``, a :class:`CodecRouter`);
* :mod:`~upband.enhancement.chunking`: :class:`ChunkRunner` / :func:`run_chunked`, the one chunker;
* :mod:`~upband.enhancement.merge`: :class:`BandMerge`, the do-no-harm band merge;
* :mod:`~upband.enhancement.guard` and :mod:`~upband.enhancement.limiter`: the level guard of
  the added band and the look-ahead limiter around overs;
* :mod:`~upband.enhancement.pipeline`: :func:`choose_route` (every per-input decision: output rate,
  pass-through, merge cutoff) and the streaming :class:`Pipeline`; the model enters through
  :func:`model_stage`;
* :mod:`~upband.enhancement.arrays`: :func:`enhance`, on arrays;
* :mod:`~upband.enhancement.planning`: where every output of a batch goes
  (:func:`plan_outputs`), decided before any work;
* :mod:`~upband.enhancement.files`: :func:`enhance_file`, batches (:func:`run_batch`) and their
  report.

Every name is importable from ``upband.enhancement``; those that need torch or scipy are
imported on first use, so ``from upband.enhancement import CHUNK_SECONDS`` stays light. The
two functions of the top-level API are ``upband.enhance`` (:func:`enhance`) and
``upband.enhance_file`` (:func:`enhance_file`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from upband.common.lazy import lazy_names
from upband.enhancement.settings import (
    CHUNK_SECONDS,
    CLIP_MODES,
    OUTPUT_TEMPLATE,
    OVERLAP_SECONDS,
    UNITTEST_MODEL,
    ClipPolicy,
    Settings,
    default_model_name,
)

if TYPE_CHECKING:
    from upband.enhancement.arrays import enhance
    from upband.enhancement.chunking import ChunkRunner, run_chunked
    from upband.enhancement.files import (
        DETECT_SECONDS,
        READ_SECONDS,
        FileReport,
        check_output,
        enhance_file,
        run_batch,
        write_report,
    )
    from upband.enhancement.loading import (
        CodecRouter,
        ModelSpec,
        default_batch_size,
        is_stochastic,
        load_enhancer,
        load_models,
        pick_model,
        resolve_device,
    )
    from upband.enhancement.merge import (
        MERGE_ATTENUATION_DB,
        MERGE_TRANSITION,
        BandMerge,
        merge_filter,
    )
    from upband.enhancement.pipeline import (
        RATE_FAMILY_48K,
        Pipeline,
        Route,
        Stage,
        choose_route,
        model_stage,
        output_rate,
        route_output,
    )
    from upband.enhancement.planning import check_template, draw_outputs, plan_outputs

#: Where each name that needs torch or scipy lives (imported on first use).
_LAZY = {
    **dict.fromkeys(["enhance"], "arrays"),
    **dict.fromkeys(["ChunkRunner", "run_chunked"], "chunking"),
    **dict.fromkeys(["DETECT_SECONDS", "READ_SECONDS", "FileReport", "check_output",
                     "enhance_file", "run_batch", "write_report"], "files"),
    **dict.fromkeys(["check_template", "draw_outputs", "plan_outputs"], "planning"),
    **dict.fromkeys(["CodecRouter", "ModelSpec", "default_batch_size", "is_stochastic",
                     "load_enhancer", "load_models", "pick_model", "resolve_device"],
                    "loading"),
    **dict.fromkeys(["MERGE_ATTENUATION_DB", "MERGE_TRANSITION", "BandMerge", "merge_filter"],
                    "merge"),
    **dict.fromkeys(["RATE_FAMILY_48K", "Pipeline", "Route", "Stage", "choose_route",
                     "model_stage", "output_rate", "route_output"], "pipeline"),
}

__all__ = [
    "CHUNK_SECONDS", "CLIP_MODES", "DETECT_SECONDS", "MERGE_ATTENUATION_DB", "MERGE_TRANSITION",
    "OUTPUT_TEMPLATE", "OVERLAP_SECONDS", "RATE_FAMILY_48K", "READ_SECONDS", "UNITTEST_MODEL",
    "BandMerge", "ChunkRunner", "ClipPolicy", "CodecRouter", "FileReport", "ModelSpec",
    "Pipeline", "Route", "Settings", "Stage", "check_output", "check_template", "choose_route",
    "default_batch_size", "default_model_name", "draw_outputs", "enhance", "enhance_file",
    "is_stochastic", "load_enhancer", "load_models", "merge_filter", "model_stage",
    "output_rate", "pick_model", "plan_outputs", "resolve_device", "route_output", "run_batch",
    "run_chunked", "write_report",
]


#: The names that need torch or scipy, imported from their module on first use.
__getattr__ = lazy_names(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
