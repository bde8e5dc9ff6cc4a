"""Model zoo: published sizes, shapes for any length and channel count, identity at init,
gradients, determinism, receptive fields, the registry and the building blocks."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from upband.errors import ModelError
from upband.models import MODELS, WaveModel, build_model, describe_model, describe_models
from upband.models.arunet import ARUNet
from upband.models.audiounet import AudioUNet
from upband.models.layers import PQMF, space_to_depth, subpixel
from upband.models.registry import format_models_table
from upband.models.seanet import SEANet
from upband.models.sulun_resnet import SulunResNet
from upband.models.sulun_unet import SulunUNet

LENGTHS = (1, 777, 8192, 44_103)
BIG = ("arunet", "sulun-unet", "sulun-unet-bn", "sulun-unet-do", "sulun-resnet",
       "sulun-resnet-bn", "sulun-resnet-do", "audiounet", "lattner", "lattner-det")
SMALL = tuple(name for name in MODELS if name not in BIG)
#: Published sizes (docs/readings/sulun-davies.md) and the sizes our reading of the papers gives.
PARAMETERS = {
    "sulun-unet": 56_424_324,
    "sulun-unet-bn": 56_424_324 + 2_816,
    "sulun-unet-do": 56_424_324,
    "sulun-resnet": 55_074_306,
    "sulun-resnet-bn": 55_074_306 + 15_360,
    "sulun-resnet-do": 55_074_306,
    "audiounet": 56_411_394,
    "arunet": 85_214_488,
    "seanet": 10_428_545,
    "arunet-s": 3_479_872,
    "arunet-xs": 1_059_520,
    "upband_unittest": 4_724,
    "stft-restore": 1_740_162,
    "tfgan": 5_912_706,  # TD-PR Table 1: "+6M"
    "tfgan-s": 425_432,
    "lattner": 322_577_148,  # Lattner & Nistal Table 1 (4 096 frequency-aggregation maps)
    "lattner-det": 322_429_692,
}
#: Vocoders re-synthesise their input rather than add a correction to it: never the identity.
VOCODERS = ("tfgan", "tfgan-s")


def meta_model(name: str, **overrides: object) -> WaveModel:
    with torch.device("meta"):
        return build_model(name, **overrides)


def perturb_zero_parameters_(model: torch.nn.Module, std: float = 0.02, seed: int = 0) -> None:
    """Give every all-zero parameter tensor small random values.

    The additive models start with a zero output layer, so at init the gradient reaching every
    earlier layer is exactly zero (d out / d hidden = W_last = 0) and the output equals the
    input. Perturbing the zero tensors (output layers, and harmlessly zero biases / BN shifts)
    turns them into generic random networks for gradient, determinism and round-trip checks.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)


@pytest.fixture(scope="module", params=list(MODELS))
def model(request: pytest.FixtureRequest) -> WaveModel:
    """Every registered model, built once per module (real weights, CPU)."""
    torch.manual_seed(0)
    return build_model(request.param).eval()


# --------------------------------------------------------------------------------------------
# registry


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ModelError) as info:
        build_model("no-such-net")
    message = str(info.value)
    assert "no-such-net" in message
    for name in MODELS:
        assert name in message


def test_unknown_argument_and_bad_value_raise_model_error() -> None:
    with pytest.raises(ModelError, match="no argument"):
        build_model("arunet-s", depth=3)
    with pytest.raises(ModelError, match="odd"):
        build_model("arunet-s", kernels=(8, 7, 5, 5, 3))
    with pytest.raises(ModelError, match="channels"):
        build_model("upband_unittest", channels=0)


def test_registry_defaults_are_constructor_arguments() -> None:
    for name, factory in MODELS.items():
        assert set(factory.defaults) <= set(factory.parameters()), name
        assert factory.description and "\n" not in factory.description


def test_config_rebuilds_same_architecture() -> None:
    for name in MODELS:
        model = meta_model(name)
        assert model.name == name
        config = model.config
        json.dumps(config)  # JSON-ready
        rebuilt = meta_model(name, **config)
        assert rebuilt.config == config
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
            {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_parameter_counts(name: str) -> None:
    assert meta_model(name).num_parameters() == PARAMETERS[name]


def test_fast_variants_meet_budget() -> None:
    for name in ("arunet-s", "arunet-xs"):
        model = meta_model(name)
        params = model.num_parameters()
        assert params <= 4_000_000
        assert params * 4 <= 16 * 2**20  # float32 weights fit a 16 MB file
        assert model.receptive_field >= 4096  # "a few thousand samples at least"
        info = describe_model(name)
        # Speed is measured by benchmarks/speed.py; this is its deterministic proxy.
        assert info.macs_per_second < 2.0e9
        assert model.stride >= 16  # E_0 does not run at the full sample rate


def test_describe_models() -> None:
    infos = describe_models()
    assert [i.name for i in infos] == list(MODELS)
    for info in infos:
        assert info.parameters == PARAMETERS[info.name]
        assert info.receptive_field_ms == pytest.approx(info.receptive_field / 44.1, abs=0.01)
        assert info.macs_per_second > 0
        json.dumps(info.to_dict())
    by_name = {i.name: i for i in infos}
    # conv MACs of the ResNet: 31 convs of 512 x 512 x 7 plus head and tail, per sample
    resnet = 44_100 * (30 * 512 * 512 * 7 + 2 * 512 * 7 + 512 * 2)
    assert by_name["sulun-resnet"].macs_per_second == resnet
    table = format_models_table(infos)
    assert len(table.splitlines()) == len(MODELS) + 1


# --------------------------------------------------------------------------------------------
# shapes, identity, gradients, determinism


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("name", list(MODELS))
def test_output_shape_any_length_meta(name: str, length: int, channels: int) -> None:
    """Shape bookkeeping (padding to valid_length, channel folding, cropping) of the real
    configurations, on the meta device (no arithmetic, so the 56 M models cost nothing)."""
    model = meta_model(name).eval()
    for batch in (1, 2):
        out = model(torch.empty(batch, channels, length, device="meta"))
        assert out.shape == (batch, channels, length)


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("name", ["arunet-s", "arunet-xs", "upband_unittest"])
def test_output_shape_any_length_real(name: str, length: int, channels: int) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(1, channels, length) * 0.1
    with torch.inference_mode():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_fresh_model_is_identity(model: WaveModel) -> None:
    torch.manual_seed(1)
    length = 333 if model.name in BIG else 8192
    for channels in (1, 2):
        x = torch.randn(1, channels, length) * 0.3
        with torch.inference_mode():
            y = model(x)
        assert y.shape == x.shape
        if model.name in ("upband_unittest", *VOCODERS):  # deliberately not the identity
            assert (y - x).abs().max() > 1e-4
        else:
            assert torch.equal(y, x), model.name


def test_every_parameter_gets_a_gradient(model: WaveModel) -> None:
    torch.manual_seed(2)
    net = model
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    perturb_zero_parameters_(net)
    length = 2 * net.stride if net.name in BIG else max(2 * net.stride, 2048)
    x = torch.randn(2, net.channels, length) * 0.3
    try:
        net.train()
        net(x).pow(2).mean().backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.any()]
        assert not missing, f"{net.name}: no gradient for {missing[:5]}"
    finally:
        net.zero_grad(set_to_none=True)
        net.load_state_dict(saved)
        net.eval()


def test_eval_mode_is_deterministic(model: WaveModel) -> None:
    torch.manual_seed(3)
    net = model
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    perturb_zero_parameters_(net)
    length = 333 if net.name in BIG else 5000
    x = torch.randn(1, 2, length) * 0.3
    try:
        with torch.inference_mode():
            first, second = net(x), net(x)
        assert torch.equal(first, second)
        assert not torch.equal(first, x)  # a perturbed model is not the identity
    finally:
        net.load_state_dict(saved)


def test_out_scale_scales_the_correction() -> None:
    torch.manual_seed(9)
    full = build_model("upband_unittest").eval()
    half = build_model("upband_unittest", out_scale=0.5).eval()
    half.load_state_dict(full.state_dict())
    x = torch.randn(1, 2, 700)
    with torch.inference_mode():
        torch.testing.assert_close(half(x) - x, 0.5 * (full(x) - x))
    assert meta_model("arunet-s").config["out_scale"] == 0.01


def test_dropout_is_active_only_in_training() -> None:
    torch.manual_seed(4)
    net = ARUNet(widths=(8, 8), kernels=(5, 3), dropout=0.5)
    perturb_zero_parameters_(net)
    x = torch.randn(2, 2, 512)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


# --------------------------------------------------------------------------------------------
# channel handling


def test_channel_folding_semantics() -> None:
    """A k-channel model processes k channels jointly, more channels in groups of k (5.1 as
    three pairs) and the channels left over one by one (each as k identical copies, outputs
    averaged)."""
    torch.manual_seed(5)
    stereo = build_model("upband_unittest").eval()
    mono = AudioUNet(widths=(4, 4), kernels=(9, 5)).eval()
    perturb_zero_parameters_(mono)
    x = torch.randn(2, 3, 1000)
    with torch.inference_mode():
        # mono model on 3 channels == each channel on its own
        y = mono(x)
        for c in range(3):
            torch.testing.assert_close(y[:, c:c + 1], mono(x[:, c:c + 1]))
        # stereo model on 3 channels: the first two as a pair, the third as dual mono
        y = stereo(x)
        torch.testing.assert_close(y[:, :2], stereo(x[:, :2]))
        torch.testing.assert_close(y[:, 2], stereo(x[:, 2:3].repeat(1, 2, 1)).mean(dim=1))
        # on 1 channel: dual mono, averaged
        torch.testing.assert_close(stereo(x[:, :1])[:, 0],
                                   stereo(x[:, :1].repeat(1, 2, 1)).mean(dim=1))
        # the pair is joint, not per channel
        per_channel = torch.stack([stereo(x[:, c:c + 1].repeat(1, 2, 1)).mean(dim=1)
                                   for c in range(2)], dim=1)
        assert not torch.allclose(per_channel, y[:, :2])
        # 5.1: three pairs, in order
        six = torch.randn(2, 6, 1000)
        y = stereo(six)
        for c in (0, 2, 4):
            torch.testing.assert_close(y[:, c:c + 2], stereo(six[:, c:c + 2]))


def test_padding_to_valid_length_is_transparent() -> None:
    torch.manual_seed(6)
    net = build_model("upband_unittest").eval()
    x = torch.randn(1, 2, 300)
    padded = F.pad(x, (0, net.valid_length(300) - 300))
    assert net.valid_length(300) % net.stride == 0
    with torch.inference_mode():
        torch.testing.assert_close(net(x), net(padded)[..., :300])
        assert net(torch.empty(1, 2, 0)).shape == (1, 2, 0)


def test_forward_rejects_bad_input() -> None:
    net = build_model("upband_unittest")
    with pytest.raises(ValueError, match="batch, channels, time"):
        net(torch.zeros(2, 100))
    with pytest.raises(TypeError, match="floating"):
        net(torch.zeros(1, 2, 100, dtype=torch.int16))


# --------------------------------------------------------------------------------------------
# receptive field


def probe_receptive_field(model: WaveModel) -> int:
    """Largest input span with a non-zero gradient, over one stride period of output positions.

    Batch element ``i`` back-propagates from output position ``centre + i`` only, so one
    backward pass probes every alignment modulo the total stride.
    """
    torch.manual_seed(7)
    model = model.double().eval()
    perturb_zero_parameters_(model, std=0.05)
    rf, stride = model.receptive_field, model.stride
    length = model.valid_length(rf + 4 * stride + 2)
    centre = model.valid_length(length // 2 - stride)
    positions = torch.arange(centre, centre + stride)
    x = torch.randn(stride, model.channels, length, dtype=torch.float64, requires_grad=True)
    y = model(x)
    y[torch.arange(stride), :, positions].sum().backward()
    assert x.grad is not None
    support = x.grad.abs().sum(dim=1) > 0
    spans = []
    for row in support:
        idx = torch.nonzero(row).flatten()
        assert idx[0] > 0 and idx[-1] < length - 1  # the support fits inside the input
        spans.append(int(idx[-1] - idx[0] + 1))
    return max(spans)


@pytest.mark.parametrize("factory", [
    lambda: SulunResNet(width=8, blocks=4),
    lambda: SulunUNet(widths=(8, 8, 8, 8)),
    lambda: AudioUNet(widths=(8, 8, 8), kernels=(33, 17, 9)),
    lambda: ARUNet(widths=(4, 4, 4), kernels=(9, 7, 5), dropout=0.0),
    lambda: ARUNet(widths=(4, 4, 4), kernels=(9, 5, 3), front="pqmf", bands=4, dropout=0.0,
                   init_std=None),
    lambda: ARUNet(widths=(4, 4), kernels=(7, 5), front="polyphase", bands=4, dropout=0.0,
                   res_convs=2),
    lambda: SEANet(width=2, strides=(2, 4), latent=4),
], ids=["resnet", "sulun-unet", "audiounet", "arunet", "arunet-pqmf", "arunet-polyphase",
        "seanet"])
def test_receptive_field_matches_gradient_probe(factory) -> None:  # type: ignore[no-untyped-def]
    """The computed receptive field is the exact maximum over output positions.

    Narrow networks with the same layer arithmetic (the receptive field does not depend on the
    widths) keep the probe fast.
    """
    model = factory()
    assert probe_receptive_field(model) == model.receptive_field


def test_published_receptive_fields() -> None:
    # docs/readings/sulun-davies.md: U-Net ~1441 samples, ResNet 187 (1 + 6 + 15 x 2 x 6).
    assert meta_model("sulun-unet").receptive_field == 1441
    assert meta_model("audiounet").receptive_field == 1441
    assert meta_model("sulun-resnet").receptive_field == 187
    assert meta_model("arunet").receptive_field == 3457
    # same kernels and strides as the narrow probes above at full width
    assert SulunUNet(widths=(8, 8, 8, 8)).receptive_field == 1441


# --------------------------------------------------------------------------------------------
# building blocks


def test_subpixel_order_and_inverse() -> None:
    x = torch.arange(2 * 6 * 5, dtype=torch.float32).reshape(2, 6, 5)
    y = subpixel(x, 3)
    assert y.shape == (2, 2, 15)
    for c in range(2):
        for w in range(5):
            for k in range(3):
                # TensorFlow batch_to_space order: out[c, w*r + k] = in[k*C + c, w]
                assert y[1, c, w * 3 + k] == x[1, k * 2 + c, w]
    torch.testing.assert_close(space_to_depth(y, 3), x)


@pytest.mark.parametrize("bands", [2, 4, 8])
def test_pqmf_reconstructs_and_matches_direct_convolution(bands: int) -> None:
    torch.manual_seed(8)
    pqmf = PQMF(bands).double()
    x = torch.randn(2, 2, 512 * bands, dtype=torch.float64)
    sub = pqmf.analysis(x)
    assert sub.shape == (2, 2 * bands, 512)
    # polyphase form == strided convolution with the analysis impulse responses
    h = torch.tensor(pqmf.analysis_impulse)[:, None, :]
    direct = F.conv1d(x.reshape(4, 1, -1), h, stride=bands, padding=pqmf.taps // 2)
    torch.testing.assert_close(sub, direct.reshape(2, 2 * bands, 512), atol=1e-6, rtol=0)
    # near-perfect reconstruction away from the edges
    err = (pqmf.synthesis(sub) - x)[..., pqmf.taps:-pqmf.taps]
    snr = 10 * math.log10(x.pow(2).mean().item() / err.pow(2).mean().item())
    assert snr > 55


def test_pqmf_band_separation() -> None:
    bands, sr = 8, 44_100
    pqmf = PQMF(bands)
    t = torch.arange(16_384) / sr
    for k in range(bands):
        freq = (k + 0.5) * sr / (2 * bands)  # centre of band k
        sub = pqmf.analysis(torch.sin(2 * math.pi * freq * t)[None, None])
        energy = sub[0, :, 64:-64].pow(2).mean(dim=-1)
        assert int(energy.argmax()) == k
        assert energy[k] / energy.sum() > 0.99
