"""Perceptual losses for image optimisation: content, style and total-variation terms, per image.

A loss is a representation plus a distance (the design of pystiche's loss classes):

* :class:`ContentLoss` — the activations of one layer, compared by their mean squared difference
  (Gatys, Ecker & Bethge 2016, "Image Style Transfer Using CNNs", eq. 1, with the mean instead of
  ``1/2 sum``: the convention of Gatys' own PyTorch code, ``nn.MSELoss``).
* :class:`StyleLoss` — a :class:`~nstcore.stats.StyleStatistic` (Gram matrix by default) over several
  layers, weighted per layer (Gatys et al. 2016, eq. 5: ``L_style = sum_l w_l E_l``).
* :func:`total_variation` — the squared-difference image prior of Mahendran & Vedaldi 2015
  ("Understanding Deep Image Representations by Inverting Them", eq. 4 with beta = 2).
* :class:`PerceptualLoss` — all of them from ONE forward pass of a (trimmed) feature extractor, with
  targets computed once and held per image: B different (content, style) pairs in one batch.

Every loss is returned per image, ``[B]`` (float32, or float64 for float64 inputs); nothing is summed
over the batch, so a batched optimisation stays a set of independent problems.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from nstcore.backbones import FeatureExtractor
from nstcore.batch_checks import check_image_batch
from nstcore.errors import NstcoreError
from nstcore.stats import Gram, StyleStatistic

__all__ = [
    "ContentLoss",
    "LossInputError",
    "LossTerms",
    "PerceptualLoss",
    "StyleLoss",
    "total_variation",
]

_AUTOCAST_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LossInputError(NstcoreError):
    """A loss got inputs it cannot use (wrong shape, missing targets, missing layer features)."""


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_images(x: Tensor, *, where: str) -> None:
    """A floating-point RGB batch (values unchecked: iterates may leave [0, 1] before clipping)."""
    check_image_batch(x, where=where, error=LossInputError, values=False,
                      fix="convert grayscale images to 3 channels (nstcore.color.gray_to_rgb) and add a batch dimension.")


def _feature(features: Mapping[str, Tensor], layer: str, *, where: str) -> Tensor:
    try:
        return features[layer]
    except KeyError:
        raise LossInputError(
            f"{where}: no features for layer {layer!r} (got {sorted(features)}); request it in the forward pass."
        ) from None


def total_variation(x: Tensor) -> Tensor:
    """Squared total variation per image, ``[B, C, H, W] -> [B]``.

    ``TV(x) = mean_{c,i,j} (x_{c,i+1,j} - x_{c,i,j})^2 + mean_{c,i,j} (x_{c,i,j+1} - x_{c,i,j})^2``
    (Mahendran & Vedaldi 2015, eq. 4, beta = 2; means instead of sums so that the weight does not
    depend on the image size). A constant image has TV 0.
    """
    if not isinstance(x, Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise LossInputError(f"total_variation: expected images [B, C, H, W], got {got}.")
    xf = x.to(_accumulation_dtype(x.dtype))
    b = x.shape[0]
    dh = (xf[:, :, 1:, :] - xf[:, :, :-1, :]).reshape(b, -1)
    dw = (xf[:, :, :, 1:] - xf[:, :, :, :-1]).reshape(b, -1)
    zero = xf.new_zeros(b)
    tv_h = dh.square().mean(dim=1) if dh.shape[1] else zero
    tv_w = dw.square().mean(dim=1) if dw.shape[1] else zero
    return tv_h + tv_w


class ContentLoss:
    """Content loss at one layer: ``weight * mean (F - P)^2`` per image (Gatys et al. 2016, eq. 1).

    ``F`` are the layer's activations for the image being optimised, ``P`` those of the content image
    (the target). ``normalized=True`` divides by ``mean P^2`` per image, which makes the loss the
    normalised feature error of Mahendran & Vedaldi 2015 (``||F - P||^2 / ||P||^2``), comparable
    across layers.
    """

    def __init__(self, layer: str, *, weight: float = 1.0, normalized: bool = False) -> None:
        if not isinstance(layer, str) or not layer:
            raise LossInputError(f"ContentLoss: layer must be a non-empty layer name, got {layer!r}.")
        self.layer = layer
        self.weight = float(weight)
        self.normalized = bool(normalized)

    def target(self, features: Mapping[str, Tensor]) -> Tensor:
        """The content target: the layer's activations ``[B, C, H, W]`` (float32/float64, detached)."""
        f = _feature(features, self.layer, where="ContentLoss.target")
        return f.detach().to(_accumulation_dtype(f.dtype))

    def loss(self, features: Mapping[str, Tensor], target: Tensor) -> Tensor:
        """Weighted per-image loss ``[B]``."""
        f = _feature(features, self.layer, where="ContentLoss.loss")
        f = f.to(_accumulation_dtype(f.dtype))
        if f.shape != target.shape:
            raise LossInputError(
                f"ContentLoss({self.layer!r}): features of shape {tuple(f.shape)} do not match the target "
                f"{tuple(target.shape)}; the image being optimised must have the content image's size and batch."
            )
        b = f.shape[0]
        err = (f - target.to(f.dtype)).reshape(b, -1).square().mean(dim=1)
        if self.normalized:
            err = err / target.to(f.dtype).reshape(b, -1).square().mean(dim=1).clamp_min(1e-30)
        return self.weight * err

    def __repr__(self) -> str:
        return f"ContentLoss(layer={self.layer!r}, weight={self.weight!r}, normalized={self.normalized!r})"


class StyleLoss:
    """Style loss ``sum_l w_l * statistic.loss(F_l, A_l)`` over layers (Gatys et al. 2016, eq. 5).

    ``layers`` maps layer name -> weight ``w_l``; ``statistic`` is any :mod:`nstcore.stats` plug-in
    (default: Gram matrices normalised by ``H*W``, mean squared difference: Gatys' code).
    ``normalized=True`` divides each layer's loss by the mean square of its target, per image
    (a scale-free relative error; used for texture synthesis over layers of very different scale).
    """

    def __init__(
        self,
        layers: Mapping[str, float],
        *,
        statistic: StyleStatistic | None = None,
        normalized: bool = False,
    ) -> None:
        if not isinstance(layers, Mapping) or len(layers) == 0:
            raise LossInputError(
                f"StyleLoss: layers must be a non-empty mapping layer -> weight, got {layers!r}."
            )
        self.layers: dict[str, float] = {str(k): float(v) for k, v in layers.items()}
        self.statistic = statistic if statistic is not None else Gram(normalization="hw")
        if not isinstance(self.statistic, StyleStatistic):
            raise LossInputError(
                f"StyleLoss: statistic must be a nstcore.stats.StyleStatistic (get_statistic(name)), "
                f"got {type(self.statistic).__name__}."
            )
        self.normalized = bool(normalized)

    def target(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """One detached statistic target per layer."""
        with torch.no_grad():
            return {
                layer: self.statistic.target(_feature(features, layer, where="StyleLoss.target")).detach()
                for layer in self.layers
            }

    def layer_losses(self, features: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Unweighted per-image loss ``[B]`` of every layer."""
        out: dict[str, Tensor] = {}
        for layer in self.layers:
            if layer not in targets:
                raise LossInputError(f"StyleLoss: no target for layer {layer!r}; build targets with .target().")
            f = _feature(features, layer, where="StyleLoss.loss")
            t = targets[layer]
            value = self.statistic.loss(f, t)
            if self.normalized:
                scale = t.reshape(t.shape[0], -1).square().mean(dim=1).to(value.dtype).clamp_min(1e-30)
                value = value / scale
            out[layer] = value
        return out

    def loss(self, features: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
        """Weighted per-image loss ``[B]``."""
        losses = self.layer_losses(features, targets)
        return sum(self.layers[layer] * value for layer, value in losses.items())  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"StyleLoss(layers={self.layers!r}, statistic={self.statistic!r}, normalized={self.normalized!r})"


class LossTerms(NamedTuple):
    """Per-image loss terms ``[B]``: ``total = content_weight*content + style_weight*style + tv_weight*tv``.

    ``content`` and ``style`` already include their per-layer weights, not the global ones.
    """

    total: Tensor
    content: Tensor
    style: Tensor
    tv: Tensor


class PerceptualLoss:
    """Content + style + total-variation loss from ONE forward pass, with per-image targets.

    Takes images in ``[0, 1]`` (it normalises them with the extractor's preprocessing constants), runs
    the extractor trimmed after the deepest needed layer once, and returns :class:`LossTerms`.
    Targets are set once with :meth:`set_targets` (content and style batches of the same batch size B as
    the images later optimised; image ``b`` is compared with content ``b`` and style ``b`` only).

    ``autocast``: ``"float32"`` (none), ``"bfloat16"`` or ``"float16"``: autocast for the network only;
    statistics and losses are computed in float32. ``channels_last``: feed the network channels-last
    tensors (faster convolutions on GPUs). ``per_image``: compute targets, features and losses one
    image at a time (network passes of batch 1), so that image ``b``'s numbers are bit for bit those of
    a batch-of-one run whatever the batch (batched kernels may change the floating-point reduction
    order with the batch size; texprobe's float64 mode uses this for exact batch invariance).
    """

    def __init__(
        self,
        model: FeatureExtractor,
        *,
        content: ContentLoss | Sequence[ContentLoss] | None = None,
        style: StyleLoss | None = None,
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        autocast: str = "float32",
        channels_last: bool = False,
        per_image: bool = False,
    ) -> None:
        if isinstance(content, ContentLoss):
            content = [content]
        self.content: tuple[ContentLoss, ...] = tuple(content or ())
        self.style = style
        if not self.content and self.style is None:
            raise LossInputError("PerceptualLoss: give at least a content loss or a style loss.")
        if autocast not in _AUTOCAST_DTYPES:
            raise LossInputError(
                f"PerceptualLoss: autocast must be one of {sorted(_AUTOCAST_DTYPES)}, got {autocast!r}."
            )
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.autocast = autocast
        self.channels_last = bool(channels_last)
        self.per_image = bool(per_image)
        needed: list[str] = [c.layer for c in self.content]
        if self.style is not None:
            needed += list(self.style.layers)
        self.layers: tuple[str, ...] = tuple(dict.fromkeys(needed))
        for layer in self.layers:
            model.layer_index(layer)  # UnknownLayerError listing the valid names
        self.model = model.trimmed(self.layers)
        self._content_targets: list[Tensor] | None = None
        self._style_targets: dict[str, Tensor] | None = None
        self._batch: int | None = None

    # ------------------------------------------------------------------ forward
    @contextlib.contextmanager
    def _autocast(self, x: Tensor) -> Iterator[None]:
        dtype = _AUTOCAST_DTYPES[self.autocast]
        if dtype is None:
            yield
            return
        with torch.autocast(device_type=x.device.type, dtype=dtype):
            yield

    def features(self, x01: Tensor) -> dict[str, Tensor]:
        """Features of every needed layer for images in ``[0, 1]`` (one pass; per image if ``per_image``)."""
        _check_images(x01, where="PerceptualLoss")
        if self.per_image and x01.shape[0] > 1:
            parts = [self._features(x01[b : b + 1]) for b in range(x01.shape[0])]
            return {layer: torch.cat([p[layer] for p in parts]) for layer in self.layers}
        return self._features(x01)

    def _features(self, x01: Tensor) -> dict[str, Tensor]:
        x = self.model.normalize(x01)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(x):
            return self.model(x, self.layers)

    # ------------------------------------------------------------------ targets
    def set_targets(self, *, content: Tensor | None = None, style: Tensor | None = None) -> None:
        """Compute and hold the targets (no gradient) from content and/or style images in ``[0, 1]``."""
        batches = set()
        with torch.no_grad():
            if self.content:
                if content is None:
                    raise LossInputError("PerceptualLoss.set_targets: content images are needed for the content loss.")
                _check_images(content, where="PerceptualLoss.set_targets(content)")
                self._content_targets = self._per_image_targets(
                    content, lambda feats: [c.target(feats) for c in self.content])
                batches.add(content.shape[0])
            if self.style is not None:
                if style is None:
                    raise LossInputError("PerceptualLoss.set_targets: style images are needed for the style loss.")
                _check_images(style, where="PerceptualLoss.set_targets(style)")
                self._style_targets = self._per_image_targets(style, self.style.target)
                batches.add(style.shape[0])
        if len(batches) > 1:
            raise LossInputError(
                f"PerceptualLoss.set_targets: content and style batch sizes differ ({sorted(batches)}); "
                "pass one style image per content image."
            )
        self._batch = batches.pop()

    def _per_image_targets(self, images: Tensor, make):
        """``make(features)`` for the whole batch, or image by image and concatenated (``per_image``)."""
        if not self.per_image or images.shape[0] == 1:
            return make(self.features(images))
        parts = [make(self.features(images[b : b + 1])) for b in range(images.shape[0])]
        if isinstance(parts[0], dict):
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return [torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))]

    def subset(self, index: int) -> "PerceptualLoss":
        """The same loss with the targets of image ``index`` only (batch size 1; model shared)."""
        if self._batch is None:
            raise LossInputError("PerceptualLoss.subset: call set_targets(...) first.")
        if not 0 <= index < self._batch:
            raise LossInputError(f"PerceptualLoss.subset: index {index} is outside the batch of {self._batch}.")
        out = object.__new__(PerceptualLoss)
        out.__dict__.update(self.__dict__)
        if self._content_targets is not None:
            out._content_targets = [t[index : index + 1] for t in self._content_targets]
        if self._style_targets is not None:
            out._style_targets = {k: t[index : index + 1] for k, t in self._style_targets.items()}
        out._batch = 1
        return out

    # ------------------------------------------------------------------ loss
    def __call__(self, x01: Tensor) -> LossTerms:
        """Per-image :class:`LossTerms` of images ``x01`` ``[B, 3, H, W]`` in ``[0, 1]``."""
        if self._batch is None:
            raise LossInputError("PerceptualLoss: call set_targets(...) before evaluating the loss.")
        _check_images(x01, where="PerceptualLoss")
        if x01.shape[0] != self._batch:
            raise LossInputError(
                f"PerceptualLoss: got {x01.shape[0]} images but targets for {self._batch}; "
                "optimise exactly one image per target pair."
            )
        if self.per_image and x01.shape[0] > 1:
            parts = [self.subset(b)(x01[b : b + 1]) for b in range(x01.shape[0])]
            return LossTerms(*(torch.cat(list(values)) for values in zip(*parts)))
        feats = self.features(x01)
        acc = _accumulation_dtype(x01.dtype)
        zero = torch.zeros(x01.shape[0], dtype=acc, device=x01.device)
        content = zero
        if self.content:
            targets = self._content_targets or []
            for c, t in zip(self.content, targets):
                content = content + c.loss(feats, t)
        style = zero
        if self.style is not None:
            if self._style_targets is None:
                raise LossInputError("PerceptualLoss: no style targets; pass style=... to set_targets().")
            style = self.style.loss(feats, self._style_targets).to(acc)
        tv = total_variation(x01) if self.tv_weight != 0.0 else zero
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return LossTerms(total=total, content=content, style=style, tv=tv)

    def __repr__(self) -> str:
        return (
            f"PerceptualLoss(model={self.model.name!r}, content={list(self.content)!r}, style={self.style!r}, "
            f"content_weight={self.content_weight!r}, style_weight={self.style_weight!r}, "
            f"tv_weight={self.tv_weight!r}, autocast={self.autocast!r}, channels_last={self.channels_last!r})"
        )

