"""``texprobe visualize`` (activation maximisation), ``gram-clusters``, ``exemplars`` (dataset exemplars) and
``featuremaps``, registered in pipelines/cli.py with :func:`register` (the command module stays small)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipelines.cli_options import (
    BatchOpt,
    Bf16Opt,
    ChannelsLastOpt,
    RunOptions,
    WeightsOpt,
    friendly,
    run_command,
    value,
)

__all__ = ["exemplars", "featuremaps", "gram_clusters", "register", "visualize"]


class Param(str, Enum):
    fft = "fft"
    pixel = "pixel"


class Transforms(str, Enum):
    standard = "standard"
    none = "none"


def visualize(
    objectives: Annotated[list[str], typer.Argument(help=(
        "channel:LAYER:C, neuron:LAYER:C (centre position), layer:LAYER (deep dream), direction:LAYER:FILE.npy, "
        "channels:LAYER:C1,C2,... (their mean), channels-correlation:LAYER:C1,C2,... (their normalised Gram "
        "entries), all-channels:LAYER (one objective per channel), gram-cluster:LAYER:K and "
        "cluster-correlation:LAYER:K (cluster K of `texprobe gram-clusters`)."))],
    backbone: Annotated[str, typer.Option(help="Backbone (see `texprobe models`).")] = "efficientnet_lite0",
    weights: WeightsOpt = "imagenet",
    size: Annotated[int, typer.Option(min=16, help="Side of the optimised image (px).")] = 128,
    steps: Annotated[int, typer.Option(min=0, help="Adam steps.")] = 512,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 0.05,
    param: Annotated[Param, typer.Option(help="fft: spatial-frequency-scaled, colour-decorrelated; pixel: plain.")] = Param.fft,
    transforms: Annotated[Transforms, typer.Option(help="Robustness transforms (pad, jitter, scale, rotate) or none.")] = Transforms.standard,
    greyscale: Annotated[bool, typer.Option("--greyscale", help="Optimise a grey image (pattern without colour).")] = False,
    start: Annotated[Optional[Path], typer.Option("--from", help="Start from this image (deep dream on an input).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Objective k starts from noise seed seed + k (and random weights use it).")] = 0,
    batch_size: BatchOpt = 8,
    bf16: Bf16Opt = False,
    channels_last: ChannelsLastOpt = False,
    *,
    run: RunOptions,
) -> None:
    """What channels, neurons, layers and channel clusters respond to: activation maximisation, B objectives
    per batch (each image its own optimiser state), images in the store, rows in `visualizations`."""
    from pipelines.cli import _done, _run
    from pipelines.ops.visualize import visualize_config
    from pipelines.reporting import console, print_run

    config = visualize_config(backbone=backbone, objectives=list(objectives), store_root=run.store,
                              weights=weights, size=size,
                              steps=steps, lr=lr, param=value(param), transforms=value(transforms),
                              greyscale=greyscale, init_image=str(start) if start else None, seed=seed,
                              batch_size=batch_size, bf16=bf16, channels_last=channels_last)
    report = _run("visualize", config, run)
    print_run(report, what=f"{report.counts['visualizations']} visualizations of {len(config.objectives)} objectives")
    console.print(f"images: {run.store}/images/<image_id>.png; rows: SELECT * FROM visualizations "
                  f"WHERE run_id = '{report.run_id}'")
    _done(report)


def gram_clusters(
    backbone: Annotated[str, typer.Option(help="Backbone whose Grams are in the store.")],
    layer: Annotated[str, typer.Option(help="The layer whose channels are clustered.")],
    clusters: Annotated[int, typer.Option(min=1, help="Number of clusters.")],
    dataset: Annotated[Optional[str], typer.Option(help="Only the Grams of this dataset (default: all).")] = None,
    weights_sha256: Annotated[Optional[str], typer.Option(help="Only Grams of these weights (when several).")] = None,
    store: Annotated[str, typer.Option("--store", envvar="TEXPROBE_STORE", help="Store directory or URI.")] = "./texprobe-store",
) -> None:
    """Cluster a layer's channels by co-activation (mean normalised Gram over the stored Grams) into table
    `gram_clusters`; visualise a cluster with `texprobe visualize gram-cluster:LAYER:K`."""
    from pipelines.jobs.gram_clusters import cluster_channels_command
    from pipelines.reporting import console
    from pipelines.store import Store

    run_id, table = cluster_channels_command(store=Store(store), backbone=backbone, layer=layer, clusters=clusters,
                                             dataset=dataset, weights_sha256=weights_sha256)
    sizes = {}
    for row in table.to_pylist():
        sizes[row["cluster"]] = (row["cluster_size"], row["within_correlation"])
    console.print(f"run [bold]{run_id}[/]: {len(sizes)} clusters of {table.num_rows} channels of {backbone} {layer} "
                  f"from {table.column('n_images')[0].as_py()} images")
    for cluster, (size, within) in sorted(sizes.items()):
        console.print(f"  cluster {cluster}: {size} channels, mean within-cluster correlation "
                      f"{'-' if within is None else f'{within:.3f}'}")


def exemplars(
    images: Annotated[list[str], typer.Argument(help="Image files, folders (recursive) or manifest CSVs.")],
    layer: Annotated[str, typer.Option("--layer", help="Layer(s), comma-separated, or 'all'.")],
    channels: Annotated[str, typer.Option(help="'all' or comma-separated channel numbers.")] = "all",
    top: Annotated[int, typer.Option(min=1, help="Images kept per channel.")] = 9,
    backbone: Annotated[str, typer.Option(help="Backbone (see `texprobe models`).")] = "efficientnet_lite0",
    weights: WeightsOpt = "imagenet",
    size: Annotated[int, typer.Option(min=0, help="Shorter side resized to this (0: native size).")] = 224,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset name of the images (default: the folder's).")] = None,
    batch_size: BatchOpt = 16,
    *,
    run: RunOptions,
) -> None:
    """Dataset exemplars: per channel, the images (and position) that activate it most, in one distributed
    pass; table `exemplars`, view `channel_exemplars`."""
    from pipelines.cli import _done, _run
    from pipelines.ops.exemplars import exemplars_config
    from pipelines.reporting import console, print_run

    config = exemplars_config(backbone=backbone, layers=layer, channels=channels, inputs=tuple(images), top=top,
                              weights=weights, size=size, dataset=dataset, batch_size=batch_size)
    report = _run("exemplars", config, run)
    print_run(report, what=f"{report.counts['exemplars']} exemplar rows of {report.counts['inputs']} images")
    console.print(f"SELECT * FROM channel_exemplars WHERE rank <= {top}   (texprobe sql --store {run.store})")
    _done(report)


def featuremaps(
    image: Annotated[Path, typer.Argument(help="One image (e.g. a cue-conflict stimulus).")],
    layer: Annotated[str, typer.Option("--layer", help="The layer whose channel maps are drawn.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Figure file (.png, .svg or .pdf).")] = None,
    store: Annotated[Optional[str], typer.Option("--store", help="Also record the maps in this store (table feature_maps; the report shows them).")] = None,
    backbone: Annotated[str, typer.Option(help="Backbone (see `texprobe models`).")] = "efficientnet_lite0",
    weights: WeightsOpt = "imagenet",
    channels: Annotated[int, typer.Option(min=1, help="How many channels (the strongest by mean activation).")] = 16,
    size: Annotated[int, typer.Option(min=0, help="Shorter side resized to this (0: native size).")] = 224,
) -> None:
    """The image beside a grid of one layer's channel maps, strongest channel first (no Ray): a figure
    (--out) and/or a run of table feature_maps (--store)."""
    from pipelines.errors import OptionError
    from pipelines.jobs.feature_maps import feature_map_figure, feature_maps, record_feature_maps
    from pipelines.reporting import console
    from pipelines.store import Store

    if out is None and store is None:
        raise OptionError("featuremaps: give --out FILE (a figure) and/or --store STORE (table feature_maps)")
    if out is not None and out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise OptionError(f"--out {out}: the figure's format is its suffix: .png, .svg or .pdf")
    found = feature_maps(str(image), backbone=backbone, weights=weights, layer=layer, size=size, channels=channels)
    shown = ", ".join(f"{c} ({m:.3g})" for c, m in zip(found.channels, found.means))
    if out is not None:
        feature_map_figure(found, str(image), out)
        console.print(f"{out}: {found.backbone} {found.layer}, channels (strongest first) {shown}", soft_wrap=True)
    if store is not None:
        run_id = record_feature_maps(Store(store), str(image), found)
        console.print(f"feature_maps run {run_id}: {len(found.channels)} channels of {found.layer} in {store}",
                      soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("visualize")(run_command(visualize))
    app.command("gram-clusters")(friendly(gram_clusters))
    app.command("exemplars")(run_command(exemplars))
    app.command("featuremaps")(friendly(featuremaps))
