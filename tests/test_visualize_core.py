"""Feature visualisation core (issue 22, first slice: nstcore.visualize), on a synthetic network with known
answers: a one-layer bank of Gabor filters of known orientation and frequency. The visualisation of each
channel must show that orientation (within 10 degrees) and frequency (within 20 %), for the pixel and the
Fourier parameterisations, and raise its objective more than 10x. Batching must not change any image,
greyscale must be grey, and 0 steps from an image must give that image back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nstcore.visualize import parse_objective, render
from nstcore.visualize.objectives import ObjectiveError

THETAS = (0.0, 45.0, 90.0, 135.0, 30.0, 120.0)     # degrees
FREQS = (0.10, 0.15, 0.20, 0.12, 0.18, 0.08)        # cycles per pixel
K = 21


def _gabor_bank() -> torch.Tensor:
    r = torch.arange(K, dtype=torch.float32) - K // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    kernels = []
    for theta, f in zip(THETAS, FREQS):
        t = math.radians(theta)
        u = xx * math.cos(t) + yy * math.sin(t)
        kernels.append(torch.exp(-(xx ** 2 + yy ** 2) / (2 * 5.0 ** 2)) * torch.cos(2 * math.pi * f * u))
    w = torch.stack(kernels)[:, None]
    return w - w.mean(dim=(2, 3), keepdim=True)


class GaborNet(torch.nn.Module):
    """``model(x, layers) -> {'g': relu(gabor * luminance)}``: channel c is tuned to (THETAS[c], FREQS[c])."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", _gabor_bank())

    def forward(self, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        lum = x.mean(dim=1, keepdim=True) - 0.5
        return {"g": torch.relu(torch.nn.functional.conv2d(lum, self.w, padding=K // 2))}


def _orientation_and_frequency(image: torch.Tensor) -> tuple[float, float]:
    """The dominant orientation of the luminance's Fourier spectrum (Hann-windowed peak, degrees mod 180) and
    the power-weighted mean frequency of its main lobe (bins above a quarter of the peak power)."""
    lum = image.mean(0).numpy().astype(np.float64)
    n = lum.shape[0]
    window = np.hanning(n)[:, None] * np.hanning(n)[None, :]
    power = np.abs(np.fft.fft2((lum - lum.mean()) * window)) ** 2
    power[0, 0] = 0
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    i = np.unravel_index(power.argmax(), power.shape)
    angle = math.degrees(math.atan2(fy[i], fx[i])) % 180
    lobe = power >= 0.25 * power.max()
    return angle, float((np.hypot(fx, fy) * power)[lobe].sum() / power[lobe].sum())


@pytest.mark.parametrize(("param", "steps"), [("pixel", 128), ("fft", 400)])
def test_gabor_channels_are_seen_at_their_orientation_and_frequency(param, steps):
    result = render(GaborNet(), [parse_objective(f"channel:g:{c}") for c in range(len(THETAS))], size=64,
                    steps=steps, lr=0.05, param=param, transforms="none")
    for c, (theta, f) in enumerate(zip(THETAS, FREQS)):
        angle, freq = _orientation_and_frequency(result.images[c])
        off = abs(angle - theta) % 180
        assert min(off, 180 - off) <= 10, (param, c, angle)
        assert abs(freq / f - 1) <= 0.2, (param, c, freq)
        assert result.value_end[c] >= 10 * result.value_start[c] > 0, (param, c)


def test_bf16_channels_last_network_still_sees_each_gabor_at_its_orientation_and_frequency():
    """The fast path (network in bf16 autocast, channels_last) optimises the same objective: the known answers
    hold as in float32, and the features reach the objective as float32."""
    from nstcore.visualize import with_precision

    net = with_precision(GaborNet(), bf16=True, channels_last=True)
    assert net(torch.rand(1, 3, 8, 8), ["g"])["g"].dtype == torch.float32
    result = render(net, [parse_objective(f"channel:g:{c}") for c in range(len(THETAS))], size=64, steps=128,
                    lr=0.05, param="pixel", transforms="none")
    for c, (theta, f) in enumerate(zip(THETAS, FREQS)):
        angle, freq = _orientation_and_frequency(result.images[c])
        off = abs(angle - theta) % 180
        assert min(off, 180 - off) <= 10, (c, angle)
        assert abs(freq / f - 1) <= 0.2, (c, freq)
        assert result.value_end[c] >= 10 * result.value_start[c] > 0, c


def test_batching_does_not_change_an_image_and_transforms_are_per_image():
    objectives = [parse_objective(f"channel:g:{c}") for c in range(4)]
    together = render(GaborNet(), objectives, size=32, steps=12, seeds=[5, 6, 7, 8])
    alone = render(GaborNet(), objectives[2:3], size=32, steps=12, seeds=[7])
    assert torch.allclose(together.images[2], alone.images[0], atol=1e-6)


def test_greyscale_is_grey_and_zero_steps_from_an_image_return_it():
    grey = render(GaborNet(), [parse_objective("layer:g")], size=32, steps=5, greyscale=True)
    assert torch.equal(grey.images[0, 0], grey.images[0, 1]) and torch.equal(grey.images[0, 1], grey.images[0, 2])
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 0.9 + 0.05
    for param in ("pixel", "fft"):
        same = render(GaborNet(), [parse_objective("layer:g")], size=32, steps=0, param=param, init=image)
        assert torch.allclose(same.images, image, atol=1e-4), param


def test_cluster_objectives_and_spec_errors():
    from nstcore.visualize.objectives import OBJECTIVES

    f = torch.rand(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    mean = parse_objective("channels:g:0,2").value(f)
    assert torch.allclose(mean, f[:, [0, 2]].mean(dim=(1, 2, 3)))
    corr = parse_objective("channels-correlation:g:0,1,3").value(f.double())
    flat = f.double()[:, [0, 1, 3]].flatten(2).numpy()
    for b in range(2):
        g = flat[b] @ flat[b].T / flat.shape[2]
        c = g / np.sqrt(np.outer(np.diag(g), np.diag(g)))
        assert corr[b].item() == pytest.approx((c.sum() - np.trace(c)) / 6, rel=1e-6)  # (eps 1e-8 in the root)
    assert set(OBJECTIVES) >= {"channel", "neuron", "layer", "direction", "channels", "channels-correlation"}
    with pytest.raises(ObjectiveError, match="KIND:LAYER"):
        parse_objective("chanel:g:1")
    with pytest.raises(ObjectiveError, match="must be an integer"):
        parse_objective("channel:g:x")
    with pytest.raises(ObjectiveError, match="has 4 channels"):
        parse_objective("channel:g:9").check(4)


def test_cluster_correlation_raises_the_within_cluster_gram_above_every_input_texture():
    """Issue 22: `cluster-correlation` on a cluster of differently tuned channels (0, 45 and 90 degrees)
    synthesises an image whose normalised Gram entries among them exceed those of every input texture (the
    bundled cue-conflict stimuli), computed here in float64 from the definition G_ij / sqrt(G_ii G_jj)."""
    from pathlib import Path

    from nstcore.images import load_image, pil_to_tensor, resize_shorter

    cluster = [0, 1, 2]

    def within(image: torch.Tensor) -> float:
        with torch.no_grad():
            f = GaborNet()(image[None], ["g"])["g"][0, cluster].double().flatten(1).numpy()
        g = f @ f.T / f.shape[1]
        c = g / np.sqrt(np.outer(np.diag(g), np.diag(g)))
        return float((c.sum() - np.trace(c)) / (len(cluster) * (len(cluster) - 1)))

    stimuli = sorted((Path(__file__).resolve().parents[1] / "data" / "cue-conflict").rglob("*.png"))[::24]
    inputs = [within(pil_to_tensor(resize_shorter(load_image(p), 64))[:, :64, :64]) for p in stimuli]
    result = render(GaborNet(), [parse_objective("channels-correlation:g:0,1,2")], size=64, steps=200, lr=0.05,
                    param="pixel", transforms="none")
    assert len(inputs) == 10 and within(result.images[0]) > max(inputs), (within(result.images[0]), inputs)
