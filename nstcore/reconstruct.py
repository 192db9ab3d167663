"""Image reconstructions from one layer's activations, and texture synthesis from Gram matrices.

* Content reconstruction (Mahendran & Vedaldi 2015, "Understanding Deep Image Representations by
  Inverting Them"; Gatys, Ecker & Bethge 2016, Fig. 1): optimise an image from noise so that ONE
  layer's activations match those of the original. The objective is the normalised feature error
  ``||phi(x) - phi_0||^2 / ||phi_0||^2`` (M&V's normalised loss), plus an optional total-variation prior.
* Texture synthesis (Gatys, Ecker & Bethge 2015, "Texture Synthesis Using CNNs"): optimise an image
  from noise so that the Gram matrices of a set of layers match; growing layer sets give textures of
  growing spatial scale. Each layer's Gram error is divided by the mean square of its target Gram
  (a scale-free relative error, so that layers of very different activation scale count alike) and
  the layers are averaged.

Both run batched with per-image optimiser state (:mod:`nstcore.pixelopt`), in ``[0, 1]`` pixel space
INSIDE the box by default (``box="bounded"``: the stored image is the optimised one, its feature error
is its own, and with ``keep_best`` more steps never store a worse result; ``box="clip-at-end"`` is the
older unconstrained run clipped when stored, with both losses reported), and start from ONE uniform
noise image ``[3, H, W]`` drawn from a ``torch.Generator`` seeded with ``seed``, shared by every image
of the batch. ``precision="float64"`` makes a batched run equal its single-image runs exactly; in
float32 the same call twice gives identical results, other batch sizes differ slightly.
Default layers come from the backbone spec (``spec.default_layers("reconstruction" | "texture")``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from nstcore.backbones import FeatureExtractor, get_backbone_spec
from nstcore.batch_checks import check_image_batch
from nstcore.errors import NstcoreError
from nstcore.losses import ContentLoss, PerceptualLoss, StyleLoss
from nstcore.metrics import normalized_feature_error, pixel_mse, psnr, ssim
from nstcore.pixelopt import PRECISIONS, PixelOptError, PixelOptOptions, at_precision, minimize_pixels
from nstcore.stats import StyleStatistic, gram_matrix

__all__ = [
    "ReconstructionError",
    "ReconstructionOptions",
    "ReconstructionResult",
    "default_layers",
    "reconstruct_content",
    "reconstruction_series",
    "synthesize_texture",
]

Kind = Literal["content", "texture"]
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ReconstructionError(NstcoreError):
    """Invalid input or option for a reconstruction or texture synthesis."""


class _FamilyDefaults(Mapping):
    """Deprecated view ``family -> reconstruction layers`` (read from the registered backbone specs;
    use ``get_backbone_spec(name).default_layers("reconstruction" | "texture")``)."""

    def _table(self) -> dict[str, tuple[str, ...]]:
        from nstcore.backbones import list_backbones

        out: dict[str, tuple[str, ...]] = {}
        for name in list_backbones():
            spec = get_backbone_spec(name)
            if spec.family not in out and "reconstruction" in spec.feature_info.defaults:
                out[spec.family] = spec.default_layers("reconstruction")
        return out

    def __getitem__(self, family: str) -> tuple[str, ...]:
        return self._table()[family]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: Deprecated: kept for callers of the old per-family table; the specs are the only source.
DEFAULT_LAYERS: Mapping[str, tuple[str, ...]] = _FamilyDefaults()


@dataclass(repr=False)
class ReconstructionResult:
    """One reconstruction (or synthesis) of B images from one layer set.

    ``images`` ``[B, 3, H, W]`` in ``[0, 1]`` (the stored images); per-image ``[B]`` metrics of them
    against the originals: ``feature_error`` (content: ``||phi(x*) - phi_0||^2 / ||phi_0||^2`` at the
    layer, Mahendran & Vedaldi 2015; texture: the same ratio for the Gram matrices, averaged over the
    layers), ``pixel_mse``, ``psnr``, ``ssim`` (:mod:`nstcore.metrics`; for textures these only say how
    far the synthesis is from the original pixels), ``n_iter``, the loss ``history``;
    ``stored_loss`` / ``optimized_loss``: the objective at the stored image and at the optimiser's
    result (equal unless ``box="clip-at-end"``); ``box``, ``box_method``, ``precision``: how it ran.
    """

    kind: str
    layers: tuple[str, ...]
    steps: int
    images: Tensor
    feature_error: Tensor
    pixel_mse: Tensor
    psnr: Tensor
    ssim: Tensor
    n_iter: Tensor
    history: list[tuple[int, Tensor]] = field(default_factory=list)
    stored_loss: Tensor | None = None
    optimized_loss: Tensor | None = None
    box: str = "bounded"
    box_method: str = "none"
    precision: str = "float32"

    def records(self) -> list[dict[str, Any]]:
        """One dict per image with the ``reconstructions`` table's metric columns (``image`` = batch index)."""
        return [
            {
                "image": b,
                "kind": self.kind,
                "layers": list(self.layers),
                "steps": self.steps,
                "n_iter": int(self.n_iter[b]),
                "feature_error": float(self.feature_error[b]),
                "pixel_mse": float(self.pixel_mse[b]),
                "psnr": float(self.psnr[b]),
                "ssim": float(self.ssim[b]),
                "stored_loss": float(self.stored_loss[b]) if self.stored_loss is not None else None,
                "optimized_loss": float(self.optimized_loss[b]) if self.optimized_loss is not None else None,
                "box": self.box,
                "box_method": self.box_method,
                "precision": self.precision,
            }
            for b in range(self.images.shape[0])
        ]

    def __repr__(self) -> str:
        return (
            f"ReconstructionResult(kind={self.kind!r}, layers={list(self.layers)}, steps={self.steps}, "
            f"images={tuple(self.images.shape)}, feature_error={self.feature_error.tolist()}, "
            f"psnr={self.psnr.tolist()}, box={self.box!r})"
        )


@dataclass(frozen=True, kw_only=True)
class ReconstructionOptions:
    """The keyword options of :func:`reconstruct_content` and :func:`synthesize_texture`.

    ``lr`` defaults to 1.0 for L-BFGS and 0.02 for Adam; ``tv_weight``: weight of the total-variation
    prior (Mahendran & Vedaldi 2015); ``box``, ``keep_best``, ``precision``: see the module docstring
    and :mod:`nstcore.pixelopt`.
    """

    steps: int = 200
    seed: int = 0
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float | None = None
    tv_weight: float = 0.0
    record_every: int = 0
    history_size: int = 100
    box: str = "bounded"
    keep_best: bool = True
    precision: str = "float32"


# -------------------------------------------------------------------------------------------- helpers


def _check_images(images: Tensor, *, where: str) -> None:
    if isinstance(images, Tensor) and images.dim() == 3:
        raise ReconstructionError(f"{where}: expected a batch [B, 3, H, W], got {tuple(images.shape)}; use images.unsqueeze(0).")
    check_image_batch(images, where=where, error=ReconstructionError, fix="convert to RGB first.")


def _noise(images: Tensor, seed: int) -> Tensor:
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.rand((1, *images.shape[1:]), generator=generator, dtype=torch.float64)
    return noise.to(device=images.device, dtype=images.dtype).expand_as(images).clone()


def _prepare(model: FeatureExtractor, images: Tensor, layers: Sequence[str], options: dict[str, Any],
             where: str) -> tuple[ReconstructionOptions, PixelOptOptions]:
    """Validate the call; the run's options and the optimiser's (``lr`` defaulting per optimiser)."""
    opts = ReconstructionOptions(**options)
    if not isinstance(model, FeatureExtractor):
        raise ReconstructionError(f"{where}: model must be a FeatureExtractor (create_backbone), got {type(model).__name__}.")
    _check_images(images, where=where)
    if not isinstance(opts.steps, int) or opts.steps < 1:
        raise ReconstructionError(f"{where}: steps must be an int >= 1, got {opts.steps!r}.")
    if opts.precision not in PRECISIONS:
        raise ReconstructionError(f"{where}: precision must be one of {PRECISIONS}, got {opts.precision!r}.")
    for layer in layers:
        model.layer_index(layer)  # UnknownLayerError listing the valid names
    default_lr = {"lbfgs": 1.0, "adam": 0.02}.get(opts.optimizer, 1.0)
    try:
        return opts, PixelOptOptions(
            optimizer=opts.optimizer, steps=opts.steps, lr=default_lr if opts.lr is None else opts.lr, box=opts.box,
            keep_best=opts.keep_best, record_every=opts.record_every, history_size=opts.history_size,
        )
    except PixelOptError as exc:
        raise ReconstructionError(f"{where}: {exc}") from None


def _pixel_metrics(x: Tensor, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    ref = images.to(x.dtype)
    small = min(x.shape[-2:]) < 11
    s = torch.full((x.shape[0],), float("nan"), dtype=torch.float32) if small else ssim(x, ref)
    return pixel_mse(x, ref), psnr(x, ref), s


def _feature_error(kind: Kind, layers: tuple[str, ...], fx: Mapping[str, Tensor], fr: Mapping[str, Tensor]) -> Tensor:
    """Content: ``||phi(x*) - phi_0||^2 / ||phi_0||^2`` at the layer (Mahendran & Vedaldi 2015); texture: the
    same ratio for the Gram matrices, averaged over the layers (Gatys et al. 2015)."""
    if kind == "content":
        return normalized_feature_error(fx[layers[0]], fr[layers[0]])
    errors = [normalized_feature_error(gram_matrix(fx[layer]), gram_matrix(fr[layer])) for layer in layers]
    return torch.stack(errors).mean(dim=0)


def _reconstruct(kind: Kind, model: FeatureExtractor, images: Tensor, layers: tuple[str, ...],
                 opts: ReconstructionOptions, pixel_options: PixelOptOptions, *, content: ContentLoss | None = None,
                 style: StyleLoss | None = None) -> ReconstructionResult:
    """Optimise from seeded noise against ``content`` / ``style`` (targets: ``images``) and measure the result."""
    images = images.to(_DTYPES[opts.precision])
    loss_fn = PerceptualLoss(at_precision(model, layers, opts.precision), content=content, style=style,
                             tv_weight=opts.tv_weight, per_image=opts.precision == "float64")
    loss_fn.set_targets(content=images, style=images)  # each term takes its targets from the originals
    result = minimize_pixels(lambda x: loss_fn(x).total, _noise(images, opts.seed), options=pixel_options)
    x = result.stored
    with torch.no_grad():
        stored_loss = loss_fn(x).total
        feature_error = _feature_error(kind, layers, loss_fn.features(x), loss_fn.features(images))
    mse, p, s = _pixel_metrics(x, images)
    return ReconstructionResult(
        kind=kind, layers=layers, steps=opts.steps, images=x, feature_error=feature_error, pixel_mse=mse, psnr=p,
        ssim=s, n_iter=result.n_iter, history=result.history, stored_loss=stored_loss,
        optimized_loss=result.objective_optimized, box=opts.box, box_method=result.box_method, precision=opts.precision,
    )


# -------------------------------------------------------------------------------------------- API


def reconstruct_content(model: FeatureExtractor, images: Tensor, *, layer: str, **options: Any) -> ReconstructionResult:
    """Reconstruct ``images`` ``[B, 3, H, W]`` (in ``[0, 1]``) from noise through the activations of ``layer``.

    Minimises ``||phi(x) - phi_0||^2 / ||phi_0||^2 + tv_weight * TV(x)`` per image (Mahendran &
    Vedaldi 2015, eq. 1 with their normalisation, TV as :func:`nstcore.losses.total_variation`).
    ``options``: the keyword options of :class:`ReconstructionOptions` (``steps``, ``seed``, ``optimizer``,
    ``lr``, ``tv_weight``, ``record_every``, ``history_size``, ``box``, ``keep_best``, ``precision``).
    """
    opts, pixel_options = _prepare(model, images, [layer], options, "reconstruct_content")
    return _reconstruct("content", model, images, (layer,), opts, pixel_options,
                        content=ContentLoss(layer, normalized=True))


def synthesize_texture(model: FeatureExtractor, images: Tensor, *, layers: Sequence[str],
                       statistic: StyleStatistic | None = None, **options: Any) -> ReconstructionResult:
    """Synthesise a texture per image by matching the Gram matrices of ``layers`` from noise.

    Gatys et al. 2015: the loss is ``(1/L) sum_l mean (G_l - A_l)^2 / mean A_l^2`` per image, Grams
    normalised by ``H*W`` (see the module docstring for the per-layer normalisation). ``statistic``: any
    other :mod:`nstcore.stats` plug-in to match instead (its loss divided by the mean square of its target,
    per layer); ``feature_error`` stays the Gram error, the yardstick shared by every statistic.
    ``options``: as for :func:`reconstruct_content`.
    """
    layers = tuple(layers)
    if not layers:
        raise ReconstructionError("synthesize_texture: layers must name at least one layer.")
    opts, pixel_options = _prepare(model, images, layers, options, "synthesize_texture")
    weight = 1.0 / len(layers)
    return _reconstruct("texture", model, images, layers, opts, pixel_options,
                        style=StyleLoss({layer: weight for layer in layers}, statistic=statistic, normalized=True))


def default_layers(model: FeatureExtractor, kind: Kind = "content") -> tuple[str, ...]:
    """The default layer series of ``model`` from its backbone spec: ``reconstruction`` layers for
    ``kind='content'``, ``texture`` layers for ``kind='texture'``."""
    info = model.feature_info if model.feature_info is not None else get_backbone_spec(model.name).feature_info
    role = "reconstruction" if kind == "content" else "texture"
    try:
        return info.default_layers(role)
    except ValueError:
        raise ReconstructionError(
            f"no default {role} layers for backbone {model.name!r}; pass layer_sets explicitly "
            f"(valid layers: {', '.join(model.layer_names)})."
        ) from None


def reconstruction_series(
    model: FeatureExtractor,
    images: Tensor,
    *,
    kind: Kind = "content",
    layer_sets: Sequence[Sequence[str] | str] | None = None,
    steps: int = 200,
    seed: int = 0,
    statistic: StyleStatistic | None = None,
    **options: Any,
) -> list[ReconstructionResult]:
    """Reconstructions of ``images`` over a series of layers (Gatys et al. 2016, Fig. 1; 2015, Fig. 1).

    ``kind='content'``: one reconstruction per layer (default: the spec's ``reconstruction`` layers,
    relu1_1 .. relu5_1 for VGG; each entry of ``layer_sets`` must then be one layer). ``kind='texture'``:
    one synthesis per layer set (default: the growing sets ``[l1], [l1, l2], ...`` of the spec's
    ``texture`` layers; VGG: relu1_1, pool1 .. pool4 as in Gatys et al. 2015). ``options`` go to
    :func:`reconstruct_content` / :func:`synthesize_texture`. Images with ``[3, H, W]`` are treated as a
    batch of one. Use ``ReconstructionResult.records()`` for table rows.
    """
    if isinstance(images, Tensor) and images.dim() == 3:
        images = images.unsqueeze(0)
    if kind not in ("content", "texture"):
        raise ReconstructionError(f"reconstruction_series: kind must be 'content' or 'texture', got {kind!r}.")
    if statistic is not None and kind != "texture":
        raise ReconstructionError("reconstruction_series: a statistic applies to texture synthesis (kind='texture').")
    if layer_sets is None:
        base = default_layers(model, kind)
        layer_sets = list(base) if kind == "content" else [base[: i + 1] for i in range(len(base))]
    results: list[ReconstructionResult] = []
    for entry in layer_sets:
        group = (entry,) if isinstance(entry, str) else tuple(entry)
        if kind == "content":
            if len(group) != 1:
                raise ReconstructionError(
                    f"reconstruction_series: content reconstructions use one layer each, got {list(group)}."
                )
            results.append(reconstruct_content(model, images, layer=group[0], steps=steps, seed=seed, **options))
        else:
            results.append(synthesize_texture(model, images, layers=group, steps=steps, seed=seed, statistic=statistic,
                                              **options))
    return results
