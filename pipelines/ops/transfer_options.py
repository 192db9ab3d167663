"""Building a TransferConfig from command-line options: a named preset or the backbone's defaults,
with only the options the user actually set overriding them."""

from __future__ import annotations

import functools
from typing import Any

from nstcore.backbones import create_backbone
from nstcore.transfer import TransferConfig, default_config, layer_channels, preset


def _statistic_overrides(spec: str) -> dict[str, Any]:
    """``--statistic NAME[:VALUE]`` -> statistic and its options (``normalization='hw'`` where the statistic
    takes one, as the presets' Gram; no option it does not accept)."""
    from nstcore.stats import statistic_options

    name, options = statistic_options(spec)
    return {"statistic": name, "statistic_options": options}


@functools.lru_cache(maxsize=4)
def _layer_model(backbone: str, weights: str, seed: int, pooling: str) -> Any:
    """The backbone whose layer names, channels and defaults the config is built from (read only; cached:
    a sweep builds one config per cell)."""
    return create_backbone(backbone, weights=weights, seed=seed, pooling=pooling)


def build_transfer_config(
    *,
    backbone: str,
    weights: str,
    preset_name: str | None,
    content_layer: str | None = None,
    style_layers: str | None = None,
    **overrides: Any,
) -> TransferConfig:
    """``preset_name`` (e.g. 'gatys-geirhos') or the family default of ``backbone``; ``overrides`` that are
    ``None`` are ignored. ``style_layers`` 'a,b,c' are weighted 1e3/C² (Gatys et al. 2016)."""
    set_overrides = {k: v for k, v in overrides.items() if v is not None}
    if "statistic" in set_overrides:
        set_overrides.update(_statistic_overrides(set_overrides.pop("statistic")))
    pooling = set_overrides.get("pooling", "max")
    model = _layer_model(backbone, weights, set_overrides.get("seed", 0), pooling)
    if preset_name:
        config = preset(preset_name, **set_overrides)
    else:
        config = default_config(model, **set_overrides)
    if content_layer:
        config = config.replace(content_layers={content_layer: 1.0})
    if style_layers:
        names = [s.strip() for s in style_layers.split(",") if s.strip()]
        channels = layer_channels(model, names)
        config = config.replace(style_layers={n: 1e3 / channels[n] ** 2 for n in names})
    for layer in [*config.content_layers, *config.style_layers]:
        model.layer_index(layer)  # UnknownLayerError lists the valid names
    return config
