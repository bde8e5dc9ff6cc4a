"""Perceptual and learned metrics that wrap external models: ViSQOL and the VGG distance.

Both see the mono downmix (mean of the channels). ViSQOL needs the optional ``visqol-python``
package (``upband[visqol]``); the VGG distance needs VGGish weights the user supplies (upband
never downloads weights). Definitions: docs/readings/metrics.md.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from upband.audio import resample
from upband.errors import MissingDependencyError, ModelError, SpecError
from upband.metrics._shapes import MetricValue, PathLike, as_value, check_pair, check_rate

if TYPE_CHECKING:  # torch is imported only by the VGG functions, keeping `import` fast
    import torch

    from upband.models.vggish import VGGish

#: ViSQOL v3 audio mode runs at 48 kHz.
VISQOL_SAMPLE_RATE = 48_000
#: Longer signals are scored by ViSQOL in segments of this many seconds (see :func:`visqol`).
VISQOL_SEGMENT_SECONDS = 30.0

#: VGGish examples (0.96 s each) per signal embedded at once (bounds activation memory).
_EMBED_BATCH = 32

_VGGISH_HELP = (
    "get the torchvggish release files vggish-10086976.pth and vggish_pca_params-970ea276.pth "
    "(github.com/harritaylor/torchvggish/releases) or any state dict with the same keys, "
    "ideally converted to .safetensors; upband never downloads weights"
)



# --------------------------------------------------------------------------------------------
# ViSQOL (optional extra)
# --------------------------------------------------------------------------------------------


def visqol_available() -> bool:
    """Whether the optional ``visqol-python`` package (module ``visqol``) is importable."""
    try:
        return hasattr(importlib.import_module("visqol"), "VisqolApi")
    except ImportError:
        return False


@functools.lru_cache(maxsize=1)
def _visqol_api() -> Any:
    try:
        module = importlib.import_module("visqol")
        api = module.VisqolApi()
    except (ImportError, AttributeError):
        raise MissingDependencyError(
            "ViSQOL needs the optional visqol-python package: pip install 'upband[visqol]'"
        ) from None
    api.create(mode="audio")
    return api


def visqol(reference: Any, estimate: Any, sample_rate: int, *,
           segment_seconds: float | None = VISQOL_SEGMENT_SECONDS) -> MetricValue:
    """ViSQOL v3 in audio mode: MOS-LQO from 1 (bad) to 5 (excellent); identical input ~ 4.73.

    Runs the pure-Python port ``visqol-python`` (optional extra ``upband[visqol]``, with numba
    for its patch search; it scores like Google's C++ v3 release) on the mono downmix (mean of
    the channels, as ViSQOL does for a multichannel file), resampled to 48 kHz with
    :func:`upband.audio.resample` when ``sample_rate`` (Hz) differs. ViSQOL aligns the signals
    itself and compares gammatone patches of about 0.5 s, so give it at least a second or two.

    ViSQOL's patch search grows faster than linearly with length (a 5-minute song took 2 minutes
    and 3.5 GB in one piece), so signals longer than ``segment_seconds`` are scored in
    consecutive segments of that length (a last piece under half a segment joins the one
    before) and the mean is returned; ``segment_seconds=None`` scores the whole signal at once.
    Segment scores are what upband's tables report for whole songs.

    Raises:
        MissingDependencyError: when ``visqol-python`` is not installed.
        SpecError: when ViSQOL refuses the pair (e.g. under about a second of audio).
    """
    sr = check_rate(sample_rate)
    x, y, lead = check_pair(reference, estimate)
    api = _visqol_api()
    xm, ym = x.mean(axis=1), y.mean(axis=1)  # [N, T]
    if sr != VISQOL_SAMPLE_RATE:
        xm = resample(xm, sr, VISQOL_SAMPLE_RATE).astype(np.float64)
        ym = resample(ym, sr, VISQOL_SAMPLE_RATE).astype(np.float64)
    t = xm.shape[-1]
    seg = t if segment_seconds is None else int(segment_seconds * VISQOL_SAMPLE_RATE)
    starts = list(range(0, max(t - seg // 2, 1), max(seg, 1)))
    bounds = [(a, b) for a, b in zip(starts, [*starts[1:], t], strict=True)]
    values = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        scores = []
        for a, b in bounds:
            try:
                result = api.measure_from_arrays(xm[i, a:b], ym[i, a:b], VISQOL_SAMPLE_RATE)
            except ValueError as err:
                raise SpecError(f"ViSQOL cannot score this pair: {err}") from None
            scores.append(float(result.moslqo))
        values[i] = float(np.mean(scores))
    return as_value(values, lead)


# --------------------------------------------------------------------------------------------
# VGG distance (needs user-supplied VGGish weights)
# --------------------------------------------------------------------------------------------

#: Key names other releases use for the PCA parameters -> our state-dict keys.
_PCA_ALIASES = {
    "pca_eigen_vectors": "pproc._pca_matrix",
    "pproc.pca_matrix": "pproc._pca_matrix",
    "pca_means": "pproc._pca_means",
    "pproc.pca_means": "pproc._pca_means",
}


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of one weights file, never executing code from it."""
    import torch  # here, not at the top: `import upband.metrics` stays free of torch

    from upband.common.tensorfile import TensorFileError, read_tensors  # imports torch

    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return read_tensors(path)
        except TensorFileError as err:
            reason = str(err).removeprefix(f"{path}: ")
            raise ModelError(f"{path}: cannot read VGGish weights: {reason}") from None
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: torch.from_numpy(np.array(data[k])) for k in data.files}
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():
            raise ModelError(
                f"{path}: holds Python objects that loading would have to execute; save a "
                "plain state dict of tensors (.safetensors preferred)"
            ) from None
        raise ModelError(f"{path}: cannot read VGGish weights: not a torch state dict") from None
    except Exception as err:  # corrupt or truncated file: any reader error
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{path}: cannot read VGGish weights: {first}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelError(f"{path}: is not a state dict of named tensors")
    return dict(state)


def load_vggish(weights: PathLike | Sequence[PathLike], *, final_relu: bool = True,
                device: str | torch.device = "cpu") -> VGGish:
    """Build :class:`~upband.models.vggish.VGGish` from weights files, strictly.

    Args:
        weights: one file or several whose tensors are merged (e.g. torchvggish's network file
            plus its PCA file). ``.safetensors`` (preferred), ``.npz`` (no pickles) or a torch
            ``.pth``/``.pt`` state dict read with ``weights_only=True`` (never full unpickling).
            Keys must be exactly the torchvggish ones (``features.N.*``, ``embeddings.N.*``,
            ``pproc._pca_matrix``, ``pproc._pca_means``); the PCA names of the TF / torchvggish
            PCA files (``pca_eigen_vectors``, ``pca_means``) are accepted too. Floating tensors
            are cast to float32.
        final_relu: see :class:`~upband.models.vggish.VGGish`.
        device: where the returned model (in eval mode) lives.

    Raises:
        ModelError: missing or unreadable file, missing/unexpected keys or wrong shapes.
    """
    import torch  # lazy, as in _read_state: torch only when VGGish is used

    from upband.models.vggish import VGGish

    paths = [Path(weights)] if isinstance(weights, (str, os.PathLike)) else [
        Path(p) for p in weights
    ]
    if not paths:
        raise ModelError(f"no VGGish weights file given: {_VGGISH_HELP}")
    merged: dict[str, torch.Tensor] = {}
    for path in paths:
        if not path.is_file():
            raise ModelError(f"{path}: VGGish weights file not found ({_VGGISH_HELP})")
        for key, value in _read_state(path).items():
            key = _PCA_ALIASES.get(key, key)
            if key in merged:
                raise ModelError(f"{path}: key {key!r} is given by more than one weights file")
            merged[key] = value
    with torch.device("meta"):  # no point in initialising 72 M weights about to be replaced
        model = VGGish(final_relu=final_relu)
    expected = model.state_dict()
    if "pproc._pca_means" in merged and merged["pproc._pca_means"].dim() == 1:
        merged["pproc._pca_means"] = merged["pproc._pca_means"].reshape(-1, 1)
    missing = sorted(set(expected) - set(merged))
    unexpected = sorted(set(merged) - set(expected))
    if missing or unexpected:
        hint = " (the PCA parameters come in a separate file: pass both)" if any(
            k.startswith("pproc.") for k in missing) else ""
        raise ModelError(
            f"VGGish weights do not match the torchvggish layout: missing {missing[:4]}"
            f"{'...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
            f"{'...' if len(unexpected) > 4 else ''}{hint}"
        )
    for key, ref in expected.items():
        got = merged[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise ModelError(
                f"VGGish weight {key!r} has shape {tuple(got.shape)}, expected {tuple(ref.shape)}"
            )
        if not got.is_floating_point():
            raise ModelError(f"VGGish weight {key!r} is not floating point ({got.dtype})")
        merged[key] = got.to(torch.float32)
    model.load_state_dict(merged, strict=True, assign=True)
    return model.to(device).eval()


def vgg_distance(reference: Any, estimate: Any, sample_rate: int,
                 weights: PathLike | Sequence[PathLike] | VGGish | None = None, *,
                 full_band: bool = False, device: str | torch.device = "cpu") -> MetricValue:
    """VGG distance, Sulun & Davies eq. 2: ``mean_i |y_i - y^_i|`` of post-processed VGGish
    embeddings (integers 0..255), over every example and embedding dimension.

    Both signals are downmixed to mono (mean of the channels, as the reference implementation
    does). With ``full_band=False`` (the published VGGish) they are resampled to 16 kHz and the
    mel bands end at 7.5 kHz, so the distance is **blind above 7.5 kHz** -- it cannot see
    restored highs. ``full_band=True`` is Sulun & Davies' variant: the front end runs at the
    input ``sample_rate`` (they used 44.1 kHz) with the top mel edge at the Nyquist frequency
    (22 050 Hz), on weights trained at 16 kHz. Each signal needs at least 0.975 s.

    Args:
        weights: a model from :func:`load_vggish` (load once when scoring many files) or the
            file(s) to load it from. upband never downloads weights.
        device: where the network runs when ``weights`` are files.

    Raises:
        ModelError: when no weights are given or they cannot be loaded.
    """
    import torch  # lazy, as in _read_state: torch only when VGGish is used

    from upband.models.vggish import (
        EMBEDDING_SIZE,
        MEL_MAX_HZ,
        VGGISH_SAMPLE_RATE,
        VGGish,
        log_mel_examples,
    )

    sr = check_rate(sample_rate)
    x, y, lead = check_pair(reference, estimate)
    if weights is None:
        raise ModelError(f"VGG distance needs VGGish weights (weights=PATH): {_VGGISH_HELP}")
    model = weights if isinstance(weights, VGGish) else load_vggish(weights, device=device)
    model_device = next(model.parameters()).device
    xm, ym = x.mean(axis=1), y.mean(axis=1)  # [N, T]
    if full_band:
        front_rate, mel_max = sr, sr / 2.0
    else:
        front_rate, mel_max = VGGISH_SAMPLE_RATE, MEL_MAX_HZ
        if sr != VGGISH_SAMPLE_RATE:
            xm = resample(xm, sr, VGGISH_SAMPLE_RATE)
            ym = resample(ym, sr, VGGISH_SAMPLE_RATE)
    values = np.empty(x.shape[0])
    with torch.inference_mode():
        for i in range(x.shape[0]):
            ex = log_mel_examples(torch.from_numpy(np.asarray(xm[i], np.float64)), front_rate,
                                  mel_max_hz=mel_max)
            ey = log_mel_examples(torch.from_numpy(np.asarray(ym[i], np.float64)), front_rate,
                                  mel_max_hz=mel_max)
            total = 0.0
            for start in range(0, ex.shape[0], _EMBED_BATCH):  # bounds activation memory
                stop = start + _EMBED_BATCH
                both = model.embed(torch.cat([ex[start:stop], ey[start:stop]]).to(model_device))
                half = both.shape[0] // 2
                total += float((both[:half] - both[half:]).abs().sum())
            values[i] = total / (ex.shape[0] * EMBEDDING_SIZE)
    return as_value(values, lead)
