"""Evaluation protocols -> tables and figures (``upband evaluate``).

    from upband.evaluate import evaluate
    ev = evaluate("music/", "sulun", models=["upband_unittest"], output="report")

writes ``report/report.md`` (the paper's table with Δ against the input, the command, the
files), ``results.csv`` (file x condition x system x metric), ``summary.json`` (means and Δ)
and PNG figures. The pieces: :mod:`~upband.evaluate.protocols` (the papers' conditions as data),
:mod:`~upband.evaluate.baselines` (input, spline, sinc, SBR, oracle),
:mod:`~upband.evaluate.scoring` (metrics by name; limits), :mod:`~upband.evaluate.runner`
(files, workers), :mod:`~upband.evaluate.report`, :mod:`~upband.evaluate.figures` and
:mod:`~upband.evaluate.evaluation` (:func:`evaluate` itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from upband.common.lazy import lazy_names
from upband.evaluate.baselines import BASELINES, DEFAULT_BASELINES, sbr
from upband.evaluate.protocols import PROTOCOLS, Protocol, get_protocol

if TYPE_CHECKING:
    from upband.evaluate.evaluation import Evaluation, evaluate
    from upband.evaluate.runner import FileResult

__all__ = ["BASELINES", "CSV_NAME", "DEFAULT_BASELINES", "DEFAULT_BEST_OF", "DEFAULT_JOBS",
           "DEFAULT_SEED", "JSON_NAME", "PROTOCOLS", "REPORT_NAME", "SCATTER_NAME", "Evaluation",
           "FileResult", "Protocol", "evaluate", "get_protocol", "sbr"]

#: The files of a report folder.
REPORT_NAME = "report.md"
CSV_NAME = "results.csv"
JSON_NAME = "summary.json"
SCATTER_NAME = "snr_scatter.png"
#: Defaults of :func:`evaluate` that the command line shows.
DEFAULT_JOBS = 1
DEFAULT_BEST_OF = 1
DEFAULT_SEED = 0

#: Names that load the models' stack (torch) and so are imported on first use: the command
#: line builds its parser from this package without it.
_LAZY = {"evaluate": "evaluation", "Evaluation": "evaluation", "FileResult": "runner"}


#: :func:`evaluate`, :class:`Evaluation` and :class:`FileResult`, imported on first use.
__getattr__ = lazy_names(__name__, _LAZY)
