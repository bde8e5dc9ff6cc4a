"""Model registry: a plain ``name -> factory`` table (encodec's ``MODELS``), and model summaries.

``build_model(name, **overrides)`` returns a fresh, randomly initialised model; a checkpoint
stores the name and ``model.config`` and :func:`upband.states.load_model` rebuilds it here.
:func:`describe_models` gives the ``upband models`` table.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from upband.errors import ModelError
from upband.models.arunet import ARUNet
from upband.models.audiounet import AudioUNet
from upband.models.base import WaveModel
from upband.models.lattner import LattnerGenerator
from upband.models.layers import conv_macs
from upband.models.seanet import SEANet
from upband.models.stft_restore import STFTRestorer
from upband.models.sulun_resnet import SulunResNet
from upband.models.sulun_unet import SulunUNet
from upband.models.tfgan import TFGANVocoder

__all__ = [
    "MODELS",
    "PRETRAINED",
    "ModelFactory",
    "ModelInfo",
    "PretrainedModel",
    "build_model",
    "describe_model",
    "describe_models",
    "format_models_table",
    "list_models",
]

#: Sample rate at which receptive fields (ms) and MACs per second are reported.
REPORT_SAMPLE_RATE = 44_100


@dataclass(frozen=True)
class ModelFactory:
    """A registered architecture: a class, its default constructor arguments, one line of text."""

    cls: type[WaveModel]
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def parameters(self) -> tuple[str, ...]:
        """Names of the constructor arguments the architecture accepts."""
        return tuple(inspect.signature(self.cls.__init__).parameters)[1:]

    def __call__(self, **overrides: Any) -> WaveModel:
        return self.cls(**{**self.defaults, **overrides})


#: The fast variants: 8-band PQMF front end, stereo, no dropout (small models underfit rather
#: than overfit; pass ``dropout=`` to change), output scale 0.01. Design notes in ``arunet.py``.
_ARUNET_S = {
    "channels": 2, "front": "pqmf", "bands": 8,
    "widths": (64, 96, 128, 160, 224), "kernels": (9, 7, 5, 5, 3),
    "res_convs": 1, "batchnorm": True, "dropout": 0.0, "init_std": None, "out_scale": 0.01,
}
_ARUNET_XS = {
    "channels": 2, "front": "pqmf", "bands": 8,
    "widths": (32, 48, 64, 96, 128), "kernels": (9, 7, 5, 5, 3),
    "res_convs": 1, "batchnorm": True, "dropout": 0.0, "init_std": None, "out_scale": 0.01,
}

MODELS: dict[str, ModelFactory] = {
    "arunet": ModelFactory(
        ARUNet, "ARUNet (Ou & Chen): residual U-Net, BN down / dropout up, stereo, stride 64"),
    "arunet-s": ModelFactory(
        ARUNet, "fast ARUNet: 8-band PQMF front end, stereo, CPU real-time factor < 0.05",
        _ARUNET_S),
    "arunet-xs": ModelFactory(
        ARUNet, "smaller fast ARUNet: 8-band PQMF front end, stereo", _ARUNET_XS),
    "sulun-unet": ModelFactory(
        SulunUNet, "U-Net of Sulun & Davies (Kuleshov's AudioUNet made stereo)"),
    "sulun-unet-bn": ModelFactory(
        SulunUNet, "U-Net of Sulun & Davies with batch norm in the down blocks",
        {"batchnorm": True}),
    "sulun-unet-do": ModelFactory(
        SulunUNet, "U-Net of Sulun & Davies with dropout 0.5 in the up blocks",
        {"dropout": 0.5}),
    "sulun-resnet": ModelFactory(
        SulunResNet, "ResNet of Sulun & Davies: 15 residual blocks of 512 channels, stereo"),
    "sulun-resnet-bn": ModelFactory(
        SulunResNet, "ResNet of Sulun & Davies with batch norm", {"batchnorm": True}),
    "sulun-resnet-do": ModelFactory(
        SulunResNet, "ResNet of Sulun & Davies with dropout 0.5", {"dropout": 0.5}),
    "audiounet": ModelFactory(
        AudioUNet, "AudioUNet of Kuleshov et al. (mono, for a spline-upsampled input)"),
    "seanet": ModelFactory(
        SEANet, "SEANet generator (Tagliasacchi et al.), the TD-PR baseline, mono"),
    "stft-restore": ModelFactory(
        STFTRestorer, "cutoff-aware frame-domain restorer: gains on the input and a copied-up "
        "patch above the cutoff, ConvNeXt over STFT frames"),
    "tfgan": ModelFactory(
        TFGANVocoder, "TFGAN vocoder as TD-PR trained it: 16 kHz, 80 mels, magnitude only "
        "(phase repair)"),
    "tfgan-s": ModelFactory(
        TFGANVocoder, "small 44.1 kHz TFGAN vocoder (4 PQMF bands): upband's phase repair",
        {"sample_rate_hz": 44_100, "n_fft": 2048, "hop": 512, "mels": 128, "ratios": (8, 4, 4),
         "mult": 64, "res_layers": 3, "bands": 4}),
    "lattner": ModelFactory(
        LattnerGenerator, "stochastic MP3 restorer of Lattner & Nistal (Table 1): complex STFT "
        "2048/512, frequency aggregation, self-gated dilated convs, noise z; mono"),
    "lattner-det": ModelFactory(
        LattnerGenerator, "Lattner & Nistal's deterministic generator (no noise z), mono",
        {"noise_maps": 0}),
    "upband_unittest": ModelFactory(
        ARUNet, "tiny random model for tests (not the identity): do not use for audio",
        {"channels": 2, "front": "pqmf", "bands": 4, "widths": (6, 8), "kernels": (5, 3),
         "dropout": 0.0, "init_std": None, "identity_init": False}),
}


@dataclass(frozen=True)
class PretrainedModel:
    """A released checkpoint: ``file`` (in ``upband/pretrained/``) must hash to ``sha256`` and
    its header must name ``architecture`` with ``kwargs`` at ``sample_rate``."""

    name: str
    architecture: str
    kwargs: Mapping[str, Any]
    sample_rate: int
    file: str
    sha256: str
    description: str = ""


#: The shipped Lattner & Nistal generators' architecture: Table 1 at the CPU width of
#: ``configs/lattner-mp3.toml``'s header (the noise maps differ between the two).
_LATTNER_CPU_WIDTH: dict[str, Any] = {
    "n_fft": 2048, "hop": 512, "front": [2, 4, 4], "agg_maps": 4, "agg_rows": 32,
    "dilations": [2, 4, 8, 16, 1, 2, 4, 8, 16], "residual": True, "equalized": True}

#: Released weights by name; loaded by :func:`upband.states.load_pretrained`.
PRETRAINED: dict[str, PretrainedModel] = {
    # docs/models/upband-default.md; made by scripts/export_pretrained.py
    "upband-default": PretrainedModel(
        name="upband-default", architecture="stft-restore",
        kwargs={"blocks": 6, "channels": 1, "dim": 192, "hop": 256, "kernel": 7,
                "max_gain_db": 30.0, "n_fft": 1024},
        sample_rate=44100, file="upband-default.safetensors",
        sha256="ede1f7399bf868584d914b11b519429d1ca915f356bef12a233e9d9c49c461e1",
        description="stft-restore, versatile degradations, MSE on the merged band (interim)"),
    # docs/models/upband-vocoder.md: TD-PR phase repair (upband enhance --phase-repair)
    "upband-vocoder": PretrainedModel(
        name="upband-vocoder", architecture="tfgan-s",
        kwargs={"sample_rate_hz": 44100, "n_fft": 2048, "hop": 512, "mels": 128, "fmax": None,
                "ratios": [8, 4, 4], "mult": 64, "res_layers": 3, "bands": 4},
        sample_rate=44100, file="upband-vocoder.safetensors",
        sha256="cc75f647d9c6006f88db47fcc1865d76866e2310d92a1f7a7b956e046986c0d2",
        description="tfgan-s: TD-PR's phase-repair vocoder at 44.1 kHz, 9 500 CPU iterations"),
    # docs/models/upband-arunet-s.md: the default until 2026-12-05, kept to compare and to
    # continue its training (model.init=upband-arunet-s)
    "upband-arunet-s": PretrainedModel(
        name="upband-arunet-s", architecture="arunet-s",
        kwargs={"channels": 2, "widths": [64, 96, 128, 160, 224], "kernels": [9, 7, 5, 5, 3],
                "res_convs": 1, "batchnorm": True, "dropout": 0.0, "negative_slope": 0.2,
                "front": "pqmf", "bands": 8, "init_std": None, "identity_init": True,
                "out_scale": 0.01},
        sample_rate=44100, file="upband-arunet-s.safetensors",
        sha256="6b201be2230d6557fa343f42e64fc67f445611d94dac8baf12f9704038b8975e",
        description="arunet-s, versatile degradations, 6000 CPU iterations (the first default)"),
    # docs/models/upband-lattner.md: the MP3 restorer of Lattner & Nistal (upband enhance
    # --model upband-lattner --seed N, or --model auto --lossy-model upband-lattner)
    "upband-lattner": PretrainedModel(
        name="upband-lattner", architecture="lattner",
        kwargs={**_LATTNER_CPU_WIDTH, "noise_maps": 16},
        sample_rate=44100, file="upband-lattner.safetensors",
        sha256="bbcdebdd2661a08e7356b135c4c645d6a0932f6f9eabd9b84e65aeb233837443",
        description="lattner at CPU width: Lattner & Nistal's stochastic MP3 restorer, 2 300 "
                    "CPU iterations (the last 1 900 with a band-envelope anchor)"),
    # docs/models/upband-lattner-raw.md: Table 2's stochastic model, chosen by its raw output
    # (no merge, no guard) as the paper scores it; upband-lattner is the product's
    "upband-lattner-raw": PretrainedModel(
        name="upband-lattner-raw", architecture="lattner",
        kwargs={**_LATTNER_CPU_WIDTH, "noise_maps": 16},
        sample_rate=44100, file="upband-lattner-raw.safetensors",
        sha256="80652f84c2a178dd33acfedc4b0472e9fd04d74d1bb04048b764fa6d64d4dc4d",
        description="lattner at CPU width: upband-lattner continued 600 CPU iterations with a "
                    "waveform anchor; Table 2's raw output (docs/results/lattner)"),
    # docs/models/upband-lattner-det.md: Table 2's deterministic model (upband evaluate
    # --protocol lattner), the same recipe as upband-lattner without noise or profile loss
    "upband-lattner-det": PretrainedModel(
        name="upband-lattner-det", architecture="lattner-det",
        kwargs={**_LATTNER_CPU_WIDTH, "noise_maps": 0},
        sample_rate=44100, file="upband-lattner-det.safetensors",
        sha256="6f861673b14c6a09437803d3e16a096aa5990f51246dd6bddf8ddad5ad4df615",
        description="lattner-det at CPU width: Lattner & Nistal's deterministic MP3 restorer, "
                    "900 CPU iterations (the last 500 with the envelope and waveform anchors)"),
}

#: The pretrained model ``upband enhance`` uses by default.
DEFAULT_PRETRAINED = "upband-default"


def list_models() -> list[str]:
    """Registered architecture names, in registry order."""
    return list(MODELS)


def _factory(name: str) -> ModelFactory:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; valid names: {', '.join(MODELS)}") from None


def build_model(name: str, **overrides: Any) -> WaveModel:
    """A fresh model of the registered architecture ``name``.

    ``overrides`` replace the registered constructor arguments; unknown argument names and
    invalid values raise :class:`~upband.errors.ModelError`.
    """
    factory = _factory(name)
    unknown = sorted(set(overrides) - set(factory.parameters()))
    if unknown:
        raise ModelError(f"model {name!r} has no argument(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(factory.parameters())}")
    try:
        model = factory(**overrides)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build model {name!r}: {exc}") from exc
    model.name = name
    return model


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``upband models``."""

    name: str
    parameters: int
    receptive_field: int
    receptive_field_ms: float
    macs_per_second: int
    channels: int
    stride: int
    description: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_model(name: str, **overrides: Any) -> ModelInfo:
    """Size, receptive field and cost of one registered model.

    MACs per second: multiply-accumulates of every Conv1d / ConvTranspose1d / Linear for one
    second of audio at 44.1 kHz with the model's own channel count (a stereo model sees one
    ``[1, 2, 44100]`` tensor, a mono model ``[1, 1, 44100]``: double it for stereo audio),
    including the padding to ``valid_length``. The model is built on the ``meta`` device, so
    nothing is allocated or computed.
    """
    with torch.device("meta"):
        model = build_model(name, **overrides).eval()
        example = torch.empty(1, model.channels, REPORT_SAMPLE_RATE)
    macs = conv_macs(model, example)
    rf = model.receptive_field
    return ModelInfo(
        name=name,
        parameters=model.num_parameters(),
        receptive_field=rf,
        receptive_field_ms=round(1000.0 * rf / REPORT_SAMPLE_RATE, 2),
        macs_per_second=macs,
        channels=model.channels,
        stride=model.stride,
        description=MODELS[name].description,
    )


def describe_models() -> list[ModelInfo]:
    """:func:`describe_model` for every registered architecture."""
    return [describe_model(name) for name in MODELS]


def format_models_table(infos: list[ModelInfo]) -> str:
    """Plain-text table of :func:`describe_models` (one line per model)."""
    header = f"{'name':<16} {'params':>11} {'RF samples':>10} {'RF ms':>8} {'GMAC/s':>8} " \
             f"{'ch':>2}  description"
    lines = [header]
    for info in infos:
        lines.append(
            f"{info.name:<16} {info.parameters:>11,} {info.receptive_field:>10,} "
            f"{info.receptive_field_ms:>8.1f} {info.macs_per_second / 1e9:>8.2f} "
            f"{info.channels:>2}  {info.description}")
    return "\n".join(lines)


def format_pretrained_table() -> str:
    """Plain-text list of the shipped pretrained models (``upband models``)."""
    if not PRETRAINED:
        return "pretrained: none shipped"
    lines = ["pretrained models (use with 'upband enhance --model NAME'):"]
    for p in PRETRAINED.values():
        default = " (default)" if p.name == DEFAULT_PRETRAINED else ""
        lines.append(f"  {p.name}{default}: {p.architecture} at {p.sample_rate} Hz, {p.file}, "
                     f"sha256 {p.sha256[:12]}...; {p.description}")
    return "\n".join(lines)


def pretrained_records() -> list[dict[str, Any]]:
    """The shipped pretrained models as JSON-ready records."""
    return [{**asdict(p), "kwargs": dict(p.kwargs), "default": p.name == DEFAULT_PRETRAINED}
            for p in PRETRAINED.values()]
