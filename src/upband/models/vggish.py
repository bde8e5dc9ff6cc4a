"""VGGish (Hershey et al., "CNN architectures for large-scale audio classification", ICASSP 2017).

The audio embedding network behind the *VGG distance* of Sulun & Davies (eq. 2) and Li et al.,
written in plain torch so that upband needs neither TensorFlow, torchaudio nor torchvision.

Three parts, as in the published model:

* :func:`log_mel_examples` -- the log-mel front end (no weights): mono waveform -> 0.96 s examples
  of 96 frames x 64 mel bands. At the published settings (16 kHz, 25 ms Hann window, 10 ms hop,
  64 HTK-mel bands 125-7500 Hz, ``log(mel + 0.01)`` on the *magnitude* spectrum) the network sees
  nothing above 7.5 kHz, so it is blind to the band that bandwidth extension restores. Sulun &
  Davies ran the same front end at 44.1 kHz with the top band edge at 22 050 Hz; both settings are
  parameters here.
* :class:`VGGish` -- VGG conv stack (64, 128, 256, 256, 512, 512 channels, 3x3 convs, four 2x2 max
  pools) and fully connected 12 288 -> 4096 -> 4096 -> 128: 72 141 184 parameters.
* :class:`Postprocessor` -- the AudioSet PCA whitening, clipping to [-2, 2] and 8-bit quantisation
  to the integers 0..255.

State-dict keys follow the widely used torchvggish port (``features.N.*``, ``embeddings.N.*``,
``pproc._pca_matrix``, ``pproc._pca_means``) so its published weights load unchanged. This file
holds no I/O: loading weights from a file is :func:`upband.metrics.load_vggish`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from upband.errors import SpecError

#: Front-end settings of the published model (TF ``vggish_params``).
VGGISH_SAMPLE_RATE = 16_000
WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
NUM_MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
#: Added to the mel magnitudes before the natural log (stabilises silence).
LOG_OFFSET = 0.01
#: Example length and hop in seconds (96 frames of 10 ms, no overlap).
EXAMPLE_SECONDS = 0.96
EXAMPLE_FRAMES = 96
EMBEDDING_SIZE = 128
#: Post-processing clip range of the PCA output before 8-bit quantisation.
QUANTIZE_MIN = -2.0
QUANTIZE_MAX = 2.0
QUANTIZE_LEVELS = 255.0

#: Conv channel plan; "M" is a 2x2 max pool. Module indices in ``features`` follow from it.
_CONV_PLAN: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
#: Time x mel size of the last feature map for a 96 x 64 example (four /2 pools).
_FEATURE_TIME, _FEATURE_MEL = EXAMPLE_FRAMES // 16, NUM_MEL_BANDS // 16


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``1127 ln(1 + f / 700)``; ``hz`` in Hz, result in mel."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(num_bins: int, sample_rate: int, num_bands: int = NUM_MEL_BANDS,
               min_hz: float = MEL_MIN_HZ, max_hz: float = MEL_MAX_HZ) -> np.ndarray:
    """Triangular HTK-mel weights ``[num_bins, num_bands]`` mapping an rFFT magnitude to mel bands.

    Triangles are spaced evenly in mel between ``min_hz`` and ``max_hz`` (Hz) with their feet on
    the neighbouring centres; the DC bin gets no weight (as in the published front end).
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= min_hz < max_hz <= nyquist:
        raise SpecError(
            f"mel band edges must satisfy 0 <= min_hz < max_hz <= {nyquist:g} Hz, "
            f"got {min_hz:g}..{max_hz:g}"
        )
    bins_mel = hz_to_mel(np.linspace(0.0, nyquist, num_bins))
    edges = np.linspace(float(hz_to_mel(min_hz)), float(hz_to_mel(max_hz)), num_bands + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def frame_lengths(sample_rate: int) -> tuple[int, int, int]:
    """(window, hop, fft) lengths in samples of the front end at ``sample_rate`` Hz.

    Window and hop are the 25 ms / 10 ms of the published model rounded to samples (Python's
    round, as the reference code); the FFT length is the next power of two of the window.
    """
    window = round(sample_rate * WINDOW_SECONDS)
    hop = round(sample_rate * HOP_SECONDS)
    n_fft = 2 ** math.ceil(math.log2(window))
    return window, hop, n_fft


def log_mel_examples(wav: Tensor, sample_rate: int = VGGISH_SAMPLE_RATE, *,
                     mel_max_hz: float = MEL_MAX_HZ) -> Tensor:
    """The VGGish front end: mono waveform -> log-mel examples.

    Args:
        wav: ``Tensor[T]``, mono float audio in [-1, 1] sampled at ``sample_rate`` Hz (the caller
            resamples; the published model expects 16 kHz).
        sample_rate: Hz; sets the 25 ms window / 10 ms hop in samples.
        mel_max_hz: top edge of the 64 mel bands in Hz (7500 published, 22 050 in Sulun & Davies).

    Returns:
        ``Tensor[N, 1, 96, 64]`` (examples, channel, frames, mel bands) of ``ln(mel + 0.01)``
        with ``mel`` the mel-weighted STFT magnitude; frames are not centred (the first window
        starts at sample 0) and a trailing partial example is dropped.

    Raises:
        SpecError: for a non-1-D input or one shorter than one example (0.975 s at 16 kHz).
    """
    if wav.dim() != 1:
        raise SpecError(f"VGGish front end expects mono audio [T], got shape {tuple(wav.shape)}")
    window, hop, n_fft = frame_lengths(sample_rate)
    need = window + (EXAMPLE_FRAMES - 1) * hop
    if wav.shape[0] < need:
        raise SpecError(
            f"audio too short for VGGish: {wav.shape[0]} samples, needs at least {need} "
            f"({need / sample_rate:.3f} s at {sample_rate} Hz)"
        )
    x = wav.to(torch.float64)
    frames = x.unfold(0, window, hop)  # [F, window]
    hann = 0.5 - 0.5 * torch.cos(
        2.0 * math.pi * torch.arange(window, dtype=torch.float64, device=x.device) / window
    )
    magnitude = torch.fft.rfft(frames * hann, n=n_fft).abs()  # [F, n_fft // 2 + 1]
    weights = torch.from_numpy(mel_matrix(n_fft // 2 + 1, sample_rate, max_hz=mel_max_hz))
    log_mel = torch.log(magnitude @ weights.to(x.device) + LOG_OFFSET)  # [F, 64]
    n_examples = log_mel.shape[0] // EXAMPLE_FRAMES
    examples = log_mel[: n_examples * EXAMPLE_FRAMES].reshape(
        n_examples, 1, EXAMPLE_FRAMES, NUM_MEL_BANDS
    )
    return examples.to(torch.float32)


class Postprocessor(nn.Module):
    """AudioSet PCA whitening + 8-bit quantisation of raw VGGish embeddings.

    ``q = round((clip(P (e - m), -2, 2) + 2) * 255 / 4)`` with ``P = _pca_matrix [128, 128]`` and
    ``m = _pca_means [128, 1]`` (buffers; identity / zeros until weights are loaded). Rounding is
    to nearest as in torchvggish; the TF reference truncates (``astype(uint8)``), which can differ
    by one level.
    """

    _pca_matrix: Tensor
    _pca_means: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_pca_matrix", torch.eye(EMBEDDING_SIZE))
        self.register_buffer("_pca_means", torch.zeros(EMBEDDING_SIZE, 1))

    def forward(self, embeddings: Tensor) -> Tensor:
        """``Tensor[N, 128]`` raw embeddings -> ``Tensor[N, 128]`` float integers in 0..255."""
        pca = (self._pca_matrix @ (embeddings.T - self._pca_means)).T
        clipped = pca.clamp(QUANTIZE_MIN, QUANTIZE_MAX)
        scale = QUANTIZE_LEVELS / (QUANTIZE_MAX - QUANTIZE_MIN)
        return torch.round((clipped - QUANTIZE_MIN) * scale)


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 1
    for item in _CONV_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out_channels = int(item)
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                       nn.ReLU(inplace=True)]
            in_channels = out_channels
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish embedding network (Hershey et al. 2017), torchvggish key layout.

    ``forward(examples: Tensor[N, 1, 96, 64]) -> Tensor[N, 128]`` raw embeddings;
    ``embed(examples) -> Tensor[N, 128]`` post-processed to integers 0..255 (the embeddings that
    Sulun & Davies, eq. 2, compare). Input examples come from :func:`log_mel_examples`.

    Args:
        final_relu: keep the ReLU after the 128-d layer, as the torchvggish port (and the TF
            release it was converted from) does; the current TF release has no final activation.
    """

    def __init__(self, final_relu: bool = True) -> None:
        super().__init__()
        self.final_relu = final_relu
        self.features = _make_features()
        flat = 512 * _FEATURE_TIME * _FEATURE_MEL
        head: list[nn.Module] = [
            nn.Linear(flat, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_SIZE),
        ]
        if final_relu:
            head.append(nn.ReLU(inplace=True))
        self.embeddings = nn.Sequential(*head)
        self.pproc = Postprocessor()

    def forward(self, examples: Tensor) -> Tensor:
        """``Tensor[N, 1, 96, 64]`` log-mel examples -> ``Tensor[N, 128]`` raw embeddings."""
        if examples.dim() != 4 or tuple(examples.shape[1:]) != (1, EXAMPLE_FRAMES, NUM_MEL_BANDS):
            raise SpecError(
                f"VGGish expects examples [N, 1, {EXAMPLE_FRAMES}, {NUM_MEL_BANDS}], "
                f"got {tuple(examples.shape)}"
            )
        x = self.features(examples)  # [N, 512, 6, 4]
        # flatten in (time, mel, channel) order, the TF layout the fc weights were trained on
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)

    def embed(self, examples: Tensor) -> Tensor:
        """``Tensor[N, 1, 96, 64]`` -> post-processed ``Tensor[N, 128]``, integers 0..255."""
        return self.pproc(self.forward(examples))
