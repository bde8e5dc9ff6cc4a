"""Networks, one file per network.

The waveform networks (all ``[B, C, T] -> [B, C, T]``, see :class:`WaveModel`) are built by name
from :data:`MODELS` with :func:`build_model`; :func:`describe_models` summarises them.
``vggish`` is a metric network and not part of the registry.
"""

from upband.models.base import WaveModel
from upband.models.registry import (
    MODELS,
    PRETRAINED,
    ModelFactory,
    ModelInfo,
    PretrainedModel,
    build_model,
    describe_model,
    describe_models,
    format_models_table,
    list_models,
)

__all__ = [
    "MODELS",
    "PRETRAINED",
    "ModelFactory",
    "ModelInfo",
    "PretrainedModel",
    "WaveModel",
    "build_model",
    "describe_model",
    "describe_models",
    "format_models_table",
    "list_models",
]
