"""Image parameterisations for activation maximisation, one tensor for the whole batch.

* ``pixel``: ``x = sigmoid(p)``, ``p`` per pixel (the box [0, 1] holds by construction);
* ``fft``: ``p`` is the image's 2-D real Fourier spectrum in a decorrelated colour space, each frequency
  scaled by ``1 / max(|f|, 1/size)`` (Olah, Mordvintsev & Schubert, Distill 2017, "Feature Visualization",
  section "The Enemy of Feature Visualization": gradient steps of equal size then change all spatial
  frequencies alike, instead of letting high frequencies dominate); colours decorrelated through YIQ
  (luminance and two opponent chroma axes, NTSC matrix of :mod:`nstcore.color`), then ``sigmoid``.

Greyscale: one channel, repeated into R = G = B (separates colour from pattern). Every image of the batch is
its own parameter slice, initialised from its own seed (N(0, 0.01^2), as a small random start), or from an
image (``init``): then 0 optimisation steps give back that image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nstcore.color import rgb_to_yiq, yiq_to_rgb

__all__ = ["ImageParam", "PARAMETERISATIONS"]

PARAMETERISATIONS = ("fft", "pixel")
_EPS = 1e-4


def _freq_scale(h: int, w: int) -> Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return 1.0 / torch.sqrt(fx * fx + fy * fy).clamp_min(1.0 / max(h, w))


class ImageParam(torch.nn.Module):
    """``B`` images ``[B, 3, size, size]`` in [0, 1] from one parameter tensor (see the module doc)."""

    def __init__(self, *, kind: str, batch: int, size: int, seeds: list[int], greyscale: bool = False,
                 init: Tensor | None = None) -> None:
        super().__init__()
        if kind not in PARAMETERISATIONS:
            raise ValueError(f"parameterisation {kind!r}: use one of {', '.join(PARAMETERISATIONS)}")
        self.kind, self.size, self.greyscale = kind, size, greyscale
        channels = 1 if greyscale else 3
        self.register_buffer("scale", _freq_scale(size, size), persistent=False)
        if init is not None:
            start = self._from_image(init.expand(batch, -1, -1, -1), channels)
        else:
            noise = [torch.randn(channels, size, size, generator=torch.Generator().manual_seed(s)) * 0.01 for s in seeds]
            start = torch.stack(noise)
            if kind == "fft":
                start = torch.view_as_real(torch.fft.rfft2(start)) / self.scale[..., None]
        self.param = torch.nn.Parameter(start)

    def _from_image(self, image: Tensor, channels: int) -> Tensor:
        """The parameter that renders ``image`` exactly (up to float rounding)."""
        x = image.clamp(_EPS, 1 - _EPS)
        if self.greyscale:
            x = x.mean(dim=1, keepdim=True)
        logits = torch.logit(x)
        if self.kind == "pixel":
            return logits
        if not self.greyscale:
            logits = rgb_to_yiq(logits)
        return torch.view_as_real(torch.fft.rfft2(logits)) / self.scale[..., None]

    def forward(self) -> Tensor:
        if self.kind == "pixel":
            logits = self.param
        else:
            spectrum = torch.view_as_complex(self.param * self.scale[..., None])
            logits = torch.fft.irfft2(spectrum, s=(self.size, self.size))
            if not self.greyscale:
                logits = yiq_to_rgb(logits)
        x = torch.sigmoid(logits)
        return x.expand(-1, 3, -1, -1) if self.greyscale else x
