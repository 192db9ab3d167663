"""A frozen CNN cut into named layers: one forward pass returns any subset of them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from nstcore.backbones.feature_info import FeatureInfo
from nstcore.backbones.preprocessing import Preprocessing
from nstcore.errors import ClassifierUnavailableError, UnknownLayerError, UnsupportedOptionError

__all__ = ["FeatureExtractor"]


class FeatureExtractor(nn.Module):
    """Named-layer feature extractor (eval mode, parameters frozen).

    ``body`` is an ordered :class:`~torch.nn.ModuleDict`; each entry maps the previous entry's output
    to the named layer's output, so ``forward`` runs the entries in order and stops after the deepest
    requested one. ``head`` (optional) maps the last body output to ImageNet logits.
    ``feature_info`` (from the backbone spec): channels / stride / role of each layer.
    ``weights_format`` names the state-dict layout the weights came in (e.g. ``torchvision``,
    ``gatys-vgg_conv``, ``caffe``); ``weights_normalized``: Gatys-normalised weights (Gatys et al. 2015).
    """

    #: the constructor arguments that describe the network rather than its modules (a trimmed copy keeps them)
    _DESCRIPTION = ("name", "family", "preprocessing", "weights_tag", "weights_sha256", "pooling", "feature_info",
                    "weights_format", "weights_normalized")

    def __init__(
        self,
        *,
        name: str,
        family: str,
        layers: Iterable[tuple[str, nn.Module]],
        head: nn.Module | None,
        preprocessing: Preprocessing,
        weights_tag: str,
        weights_sha256: str,
        pooling: str,
        feature_info: FeatureInfo | None = None,
        weights_format: str = "native",
        weights_normalized: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.family = family
        self.body = nn.ModuleDict(dict(layers))
        self.head = head
        self.preprocessing = preprocessing
        self.weights_tag = weights_tag
        self.weights_sha256 = weights_sha256
        self.pooling = pooling
        self.weights_format = weights_format
        self.weights_normalized = bool(weights_normalized)
        #: optional :class:`~nstcore.label_maps.LabelMap` (set by create_backbone(label_map=...)) and the
        #: network's output names (torchvision weights' categories, a factory module's ``class_names``)
        self.label_map = None
        self.class_names: tuple[str, ...] | None = None
        self.layer_names: tuple[str, ...] = tuple(self.body.keys())
        self.feature_info = feature_info.subset(self.layer_names) if feature_info is not None else None
        self._index = {n: i for i, n in enumerate(self.layer_names)}
        self._bgr = preprocessing.channel_order == "BGR"
        self._scale = float(preprocessing.pixel_scale)
        # float64 constants: exact in a float64 (``.double()``) copy, rounded once for float32 inputs
        self.register_buffer("_mean", torch.tensor(preprocessing.mean, dtype=torch.float64).view(3, 1, 1),
                             persistent=False)
        self.register_buffer("_std", torch.tensor(preprocessing.std, dtype=torch.float64).view(3, 1, 1),
                             persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @property
    def has_classifier(self) -> bool:
        """Whether :meth:`logits` is available (False for trimmed extractors and classifier-free nets)."""
        return self.head is not None

    def train(self, mode: bool = True) -> "FeatureExtractor":
        """Feature extractors always stay in eval mode (BatchNorm statistics and dropout frozen)."""
        return super().train(False)

    def layer_index(self, layer: str) -> int:
        """Position of ``layer`` in forward order; raises :class:`UnknownLayerError` if absent."""
        try:
            return self._index[layer]
        except KeyError:
            raise UnknownLayerError(layer, self.name, self.layer_names) from None

    def _indices(self, layers: Sequence[str] | str) -> list[int]:
        if isinstance(layers, str):
            layers = [layers]
        if len(layers) == 0:
            raise UnsupportedOptionError(
                f"no layers requested from backbone {self.name!r}; pass at least one of {self.layer_names}"
            )
        return [self.layer_index(layer) for layer in layers]

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB -> network input: channel order, pixel scale, then ``(x - mean) / std`` per channel
        (constants from :attr:`preprocessing`; e.g. Caffe: BGR, x 255, minus the BGR mean)."""
        x = x01.flip(-3) if self._bgr else x01
        if self._scale != 1.0:
            x = x * self._scale
        return (x - self._mean.to(x01.dtype)) / self._std.to(x01.dtype)

    def channels(self, layers: Sequence[str] | str) -> dict[str, int]:
        """Channel count of each of ``layers`` (from the spec's feature info; else one probe forward pass)."""
        names = [layers] if isinstance(layers, str) else list(layers)
        self._indices(names)
        if self.feature_info is not None:
            return self.feature_info.channels(names)
        p = next(self.parameters(), None)
        x = torch.full((1, 3, 64, 64), 0.5, dtype=p.dtype if p is not None else torch.float32,
                       device=p.device if p is not None else "cpu")
        with torch.no_grad():
            feats = self(self.normalize(x), names)
        return {layer: int(f.shape[1]) for layer, f in feats.items()}

    def forward(self, x: torch.Tensor, layers: Sequence[str] | str) -> dict[str, torch.Tensor]:
        """Outputs of ``layers`` for a NORMALISED batch ``x`` ``[B, 3, H, W]``, in one pass.

        Returns a dict keyed by the requested names (request order). Later modules are not run.
        """
        wanted = set(layers if not isinstance(layers, str) else [layers])
        last = max(self._indices(layers))
        found: dict[str, torch.Tensor] = {}
        h = x
        for i, (name, module) in enumerate(self.body.items()):
            h = module(h)
            if name in wanted:
                found[name] = h
            if i == last:
                break
        return {layer: found[layer] for layer in (layers if not isinstance(layers, str) else [layers])}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[B, 1000]`` for a NORMALISED batch ``x``."""
        if self.head is None:
            raise ClassifierUnavailableError(
                f"backbone {self.name!r} (weights {self.weights_tag!r}) has no classifier head "
                "(it was trimmed, or the architecture has none); create it with create_backbone() "
                "and do not trim it to get logits."
            )
        h = x
        for module in self.body.values():
            h = module(h)
        return self.head(h)

    def trimmed(self, layers: Sequence[str] | str) -> "FeatureExtractor":
        """A copy that keeps only the modules up to the deepest of ``layers`` (no classifier).

        The modules (and frozen parameters) are shared with this extractor, not duplicated.
        """
        last = max(self._indices(layers))
        kept = [(n, m) for i, (n, m) in enumerate(self.body.items()) if i <= last]
        out = FeatureExtractor(layers=kept, head=None, **{key: getattr(self, key) for key in self._DESCRIPTION})
        return out.to(self._mean.device)

    def __repr__(self) -> str:
        return (
            f"FeatureExtractor(name={self.name!r}, weights={self.weights_tag!r}, "
            f"sha256={self.weights_sha256[:12]!r}, format={self.weights_format!r}, "
            f"preprocessing={self.preprocessing.name!r}, pooling={self.pooling!r}, "
            f"layers={len(self.layer_names)} [{self.layer_names[0]} .. {self.layer_names[-1]}], "
            f"classifier={self.has_classifier})"
        )
