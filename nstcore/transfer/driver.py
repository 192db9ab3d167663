"""Batched neural style transfer (Gatys, Ecker & Bethge 2016, "Image Style Transfer Using CNNs").

``stylize`` optimises B images at once, one (content, style) pair each, in one forward/backward pass
per step, with per-image targets and per-image optimiser state (:mod:`nstcore.pixelopt`), so every
output equals its single-pair run up to floating-point error (exactly, with ``precision="float64"``).

Reported losses: ``content_loss`` and ``style_loss`` include the per-layer weights but not the global
``content_weight`` / ``style_weight``; ``total`` is the full objective. They are those of the STORED
image (clipped to [0, 1]; for ``luminance_only``: of the optimised luminance image);
``optimized_*`` are those of the iterate the optimiser returned, which differs from the stored image
only with ``box="clip-at-end"`` (Gatys' code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nstcore.backbones import FeatureExtractor
from nstcore.color import combine_luminance_with_chroma, gray_to_rgb, luminance, match_luminance
from nstcore.losses import ContentLoss, LossTerms, PerceptualLoss, StyleLoss
from nstcore.pixelopt import at_precision, minimize_pixels
from nstcore.transfer.config import TransferConfig, TransferConfigError, TransferInputError
from nstcore.transfer.images import check_batch, initial_image, resize_shorter, stack_styles
from nstcore.transfer.presets import warn_if_gatys_balance_off

__all__ = ["TransferResult", "stylize"]

_PRECISION = {"float32": torch.float32, "float64": torch.float64}


@dataclass(repr=False)
class TransferResult:
    """Output of :func:`stylize`. ``images`` ``[B, 3, H, W]`` in ``[0, 1]`` (the stored images);
    per-image ``[B]`` losses of the stored images and ``optimized_*`` of the optimiser's result (see
    the module docstring); ``n_iter`` ``[B]`` optimiser iterations; ``curves``: ``(step, total[B],
    content[B], style[B])`` every ``record_every`` steps, the last record being that of the stored
    images (one record per step); ``box_method``: how the [0, 1] box was enforced (``bounds``,
    ``projection``, ``none``); ``balance_warning``: why the Gatys balance does not hold, if it does not."""

    images: Tensor
    content_loss: Tensor
    style_loss: Tensor
    total: Tensor
    n_iter: Tensor
    curves: list[tuple[int, Tensor, Tensor, Tensor]] = field(default_factory=list)
    config: TransferConfig | None = None
    optimized_total: Tensor | None = None
    optimized_content_loss: Tensor | None = None
    optimized_style_loss: Tensor | None = None
    box_method: str = "none"
    balance_warning: str | None = None

    def __repr__(self) -> str:
        return (
            f"TransferResult(images={tuple(self.images.shape)}, content_loss={self.content_loss.tolist()}, "
            f"style_loss={self.style_loss.tolist()}, total={self.total.tolist()}, n_iter={self.n_iter.tolist()}, "
            f"box_method={self.box_method!r}, curves={len(self.curves)} records)"
        )


def _loss_fields(terms: LossTerms, *, prefix: str = "") -> dict[str, Tensor]:
    """:class:`TransferResult`'s loss fields (``total``, ``content_loss``, ``style_loss``, with ``prefix``)."""
    return {f"{prefix}total": terms.total, f"{prefix}content_loss": terms.content, f"{prefix}style_loss": terms.style}


def _build_loss(model: FeatureExtractor, config: TransferConfig) -> PerceptualLoss:
    content = [ContentLoss(layer, weight=w) for layer, w in config.content_layers.items()]
    style = StyleLoss(dict(config.style_layers), statistic=config.build_statistic()) if config.style_layers else None
    layers = [*config.content_layers, *config.style_layers]
    for layer in layers:
        model.layer_index(layer)  # UnknownLayerError listing the valid names, before any copy
    return PerceptualLoss(
        at_precision(model, layers, config.precision),
        content=content,
        style=style,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        autocast=config.dtype,
        channels_last=config.channels_last,
        per_image=config.precision == "float64",
    )


def _check_call(model: FeatureExtractor, content: Tensor, style: Tensor | Sequence[Tensor], config: TransferConfig) -> None:
    if not isinstance(config, TransferConfig):
        raise TransferConfigError(f"stylize: config must be a TransferConfig, got {type(config).__name__}.")
    if not isinstance(model, FeatureExtractor):
        raise TransferInputError(f"stylize: model must be a FeatureExtractor (create_backbone), got {type(model).__name__}.")
    if model.pooling != config.pooling:
        raise TransferConfigError(
            f"stylize: config.pooling is {config.pooling!r} but the extractor uses {model.pooling!r}; create it "
            f"with create_backbone(..., pooling={config.pooling!r}) or set pooling={model.pooling!r}."
        )
    check_batch(content, where="stylize(content)")
    n_style = style.shape[0] if isinstance(style, Tensor) else len(style)
    if n_style != content.shape[0]:
        raise TransferInputError(
            f"stylize: {content.shape[0]} content images but {n_style} style images; pass one style per content "
            "image (repeat a single style with style.expand(B, -1, -1, -1))."
        )


def stylize(
    model: FeatureExtractor,
    content: Tensor,
    style: Tensor | Sequence[Tensor],
    *,
    config: TransferConfig,
) -> TransferResult:
    """Gatys style transfer of B (content, style) pairs in one batch (Gatys et al. 2016).

    ``content``: ``[B, 3, H, W]`` in ``[0, 1]``; ``style``: ``[B, 3, h, w]`` in ``[0, 1]`` or a list of
    B images ``[3, h_i, w_i]`` of any sizes (all resized to one common size, see
    :mod:`nstcore.transfer.images`). ``luminance_only`` (Gatys, Bethge, Hertzmann & Shechtman 2016,
    "Preserving color in neural artistic style transfer"): the transfer runs on the content's luminance
    (replicated to 3 channels) with the style luminance matched to the content's mean and std; the
    result's luminance is recombined with the content's I, Q chroma (YIQ) and clamped to ``[0, 1]``.
    The Gatys preset on weights other than Gatys' normalised Caffe VGG-19 emits a
    :class:`~nstcore.transfer.GatysBalanceWarning`.
    """
    _check_call(model, content, style, config)
    balance = warn_if_gatys_balance_off(model, config)
    dtype = _PRECISION[config.precision]
    content = content.to(dtype)
    if config.size is not None:
        content = resize_shorter(content, config.size)
    height, width = content.shape[-2:]
    style_h = max(1, round(height * config.style_scale))
    style_w = max(1, round(width * config.style_scale))
    style_batch = stack_styles(style, style_h, style_w).to(device=content.device, dtype=dtype)
    content_rgb = content
    if config.luminance_only:
        content_lum = luminance(content)
        style_lum = match_luminance(luminance(style_batch), content_lum)
        content = gray_to_rgb(content_lum)
        style_batch = gray_to_rgb(style_lum).clamp(0.0, 1.0)

    loss_fn = _build_loss(model, config)
    loss_fn.set_targets(content=content if config.content_layers else None,
                        style=style_batch if config.style_layers else None)
    x0 = initial_image(config.init, content, style_batch, seed=config.seed)

    curves: list[tuple[int, Tensor, Tensor, Tensor]] = []

    def record(step: int, x: Tensor) -> None:
        with torch.no_grad():
            terms = loss_fn(x)
        curves.append((step, terms.total.detach().clone(), terms.content.detach().clone(), terms.style.detach().clone()))

    callback = None
    if config.record_every > 0:
        record(0, x0.clamp(0.0, 1.0) if config.box != "clip-at-end" else x0)

        def callback(step: int, x: Tensor) -> None:
            if step % config.record_every == 0:
                record(step, x)

    result = minimize_pixels(
        lambda x: loss_fn(x).total, x0, options=config.optimizer_options(), callback=callback,
        objective_of=lambda b: (lambda x: loss_fn.subset(b)(x).total),
    )
    with torch.no_grad():
        final: LossTerms = loss_fn(result.stored)
        optimized = final if config.box != "clip-at-end" else loss_fn(result.optimized)
    last_step = int(result.n_iter.max())
    if curves and curves[-1][0] == last_step:
        curves.pop()  # one record per step: the final one is of the stored image
    curves.append((last_step, final.total.clone(), final.content.clone(), final.style.clone()))
    images = result.stored
    if config.luminance_only:
        images = combine_luminance_with_chroma(luminance(images), content_rgb).clamp(0.0, 1.0)
    return TransferResult(images=images, n_iter=result.n_iter, curves=curves, config=config,
                          box_method=result.box_method, balance_warning=balance,
                          **_loss_fields(final), **_loss_fields(optimized, prefix="optimized_"))
