"""The ``texprobe`` command line (typer). Every command takes ``--store`` (default ``./texprobe-store``
or ``$TEXPROBE_STORE``); Ray commands start a private local cluster unless ``--address``/``$RAY_ADDRESS``
names one. Options are validated where they are typed (bounds, fixed sets); every user error is one
line with exit code 2 and no traceback, before Ray starts. A run whose units failed after their retries
ends ``partial`` with exit code 3 and says how to resume it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipelines.cli_options import (
    DEFAULT_STORE, BatchOpt, BatchOptions, Bf16Opt, BoxOpt, PrecisionOpt, Resize, ChannelsLastOpt, Format, Init, Kind,
    GramDtype, Normalization, OneLineErrors, OptimizerName, Pooling, RunOptions, SeedOpt, StoreOpt, WeightsOpt, batch_options,
    friendly, pairs_value, run_command, value,
)
from pipelines.reporting import console, err_console
from pipelines.studies.cli import study_app

app = typer.Typer(
    name="texprobe",
    cls=OneLineErrors,
    help="Batch probes of texture vs shape bias in CNNs: classify, Gram matrices, style transfer, "
    "reconstructions on Ray; Parquet store; DuckDB SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
store_app = typer.Typer(help="The store's integrity and layout: damaged parts, quarantine, compaction.",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")
data_app = typer.Typer(help="Public datasets: list and fetch into a local cache (sha256-checked).", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")

#: Exit code of a run that ended ``partial`` (some units failed after their retries).
EXIT_PARTIAL = 3
ImagesArg = Annotated[list[str], typer.Argument(help="Image files, folders (recursive) or manifest CSVs.")]
BackboneOpt = Annotated[str, typer.Option(help="Backbone (see `texprobe models`).")]


def _run(name: str, config, run: RunOptions):
    from pipelines.runner import run_operation
    from pipelines.store import Store

    return run_operation(name, config, store=Store(run.store), placement=run.placement, resume=run.resume,
                         compact=run.compact)


def _label_map_sha256(path: Path | None) -> str | None:
    """The label map's sha256 (recorded in the run's config); a bad map is a one-line error here."""
    if path is None:
        return None
    from nstcore.label_maps import read_label_map

    return read_label_map(path).sha256


def _done(report) -> None:
    if report.status == "partial":
        raise typer.Exit(code=EXIT_PARTIAL)


@app.command()
@run_command
@batch_options(batch_size=32, unit_size=64)
def classify(
    images: ImagesArg,
    model: Annotated[str, typer.Option(help="Registered classifier (see `texprobe models`).")] = "efficientnet_lite0",
    weights: WeightsOpt = "imagenet",
    seed: SeedOpt = 0,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset name in `trials` (default: folder name).")] = None,
    label_map: Annotated[Optional[Path], typer.Option("--label-map", help="CSV (index,category or name,category) mapping the network's outputs to the 16 categories; not needed for ImageNet-1k or 16-output networks.")] = None,
    resize: Annotated[Resize, typer.Option(help="model: the weights' own resize + crop (an image already at the input size is used as is); native: never resized; shorter: shorter side to the input size, centre crop; exact: squashed to the input size.")] = Resize.model,
    *,
    batch: BatchOptions,
    run: RunOptions,
) -> None:
    """Classify images into the 16 Geirhos categories on Ray; write `trials` (and `errors`)."""
    from pipelines.ops.classify import ClassifyConfig
    from pipelines.reporting import print_run, print_shape_bias

    config = ClassifyConfig(inputs=tuple(images), model=model, weights=weights, seed=seed, dataset=dataset,
                            label_map=str(label_map) if label_map else None, resize=value(resize),
                            label_map_sha256=_label_map_sha256(label_map), **asdict(batch))
    report = _run("classify", config, run)
    print_run(report, what=f"{report.counts['trials']} trials of {report.counts['inputs']} images")
    print_shape_bias(run.store, observers=[model])
    _done(report)


@app.command()
@run_command
@batch_options(batch_size=16, unit_size=32)
def grams(
    images: ImagesArg,
    backbone: BackboneOpt = "efficientnet_lite0",
    weights: WeightsOpt = "imagenet",
    layers: Annotated[Optional[str], typer.Option(help="Comma-separated layer names, or 'all' (default: the backbone's texture layers).")] = None,
    size: Annotated[int, typer.Option(min=0, help="Resize the shorter side to this many px, aspect kept, no crop (0: native size).")] = 224,
    normalization: Annotated[Normalization, typer.Option(help="Gram normalisation: hw (Gatys), chw or none.")] = Normalization.hw,
    stats_only: Annotated[bool, typer.Option("--stats-only", help="Keep only layer_stats (no Gram matrices: they can be large).")] = False,
    gram_dtype: Annotated[GramDtype, typer.Option("--gram-dtype", help="Precision the Grams are stored at: float32, float16 (~0.43x the bytes) or bfloat16 (~0.33x); see README for what it costs.")] = GramDtype.float32,
    pooling: Annotated[Pooling, typer.Option(help="max or avg pooling (VGG; Gatys used avg).")] = Pooling.max,
    seed: SeedOpt = 0,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset name (default: folder name).")] = None,
    statistic: Annotated[Optional[list[str]], typer.Option("--statistic", help="Also summarise every layer by this style statistic (repeatable: cov, corr, mean_std, skewness, kurtosis, moments:K, ...; `texprobe stats`) into style_vectors, with texture discriminability per statistic.")] = None,
    *,
    batch: BatchOptions,
    run: RunOptions,
) -> None:
    """Gram matrices (`grams`) and per-layer style statistics (`layer_stats`) on Ray, then texture
    discriminability by layer (`texture_discriminability`), per statistic with --statistic."""
    from pipelines.ops.grams import grams_config
    from pipelines.reporting import print_best_layers, print_run

    config = grams_config(backbone=backbone, layers=layers, size=size, inputs=tuple(images), weights=weights,
                          seed=seed, pooling=value(pooling), normalization=value(normalization),
                          keep_grams=not stats_only, gram_dtype=value(gram_dtype), dataset=dataset,
                          statistics=tuple(statistic or ()), **asdict(batch))
    report = _run("grams", config, run)
    print_run(report, what=f"{report.counts['layer_stats']} layer_stats rows ({len(config.layers)} layers)")
    print_best_layers(run.store, backbone)
    _done(report)


@app.command()
@run_command
def stylize(
    content: Annotated[list[str], typer.Option("--content", help="Content images: folder(s) or manifest CSV(s).")],
    style: Annotated[list[str], typer.Option("--style", help="Style images: folder(s) or manifest CSV(s).")],
    pairs: Annotated[str, typer.Option(callback=pairs_value, help="conflict (content and style of different categories), all, or a PAIRS.csv (content, style).")] = "conflict",
    preset: Annotated[Optional[str], typer.Option("--preset", help="Named settings, e.g. gatys-geirhos (VGG-19, conv4_2 / conv1_1..conv5_1, 1e3/C², L-BFGS 500 steps, 512 px).")] = None,
    backbone: BackboneOpt = "vgg19",
    weights: WeightsOpt = "imagenet",
    size: Annotated[Optional[int], typer.Option(min=8, help="Output size in px (content resized and centre-cropped to size x size).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimiser steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed (noise init, random weights).")] = None,
    batch_size: BatchOpt = 4,
    content_layer: Annotated[Optional[str], typer.Option(help="Content layer (default conv4_2 for VGG).")] = None,
    style_layers: Annotated[Optional[str], typer.Option(help="Comma-separated style layers, weighted 1e3/C².")] = None,
    content_weight: Annotated[Optional[float], typer.Option(min=0.0, help="Content loss weight.")] = None,
    style_weight: Annotated[Optional[float], typer.Option(min=0.0, help="Style loss weight.")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(min=0.0, help="Total-variation weight.")] = None,
    box: BoxOpt = None,
    precision: PrecisionOpt = None,
    statistic: Annotated[Optional[str], typer.Option(help="Style statistic plug-in: gram, cov, corr, mean_std, skewness, kurtosis, moments:K, sliced_wasserstein[:P], mmd_* (`texprobe stats` lists them).")] = None,
    init: Annotated[Optional[Init], typer.Option(help="Initial image.")] = None,
    optimizer: Annotated[Optional[OptimizerName], typer.Option(help="Optimiser.")] = None,
    lr: Annotated[Optional[float], typer.Option(min=1e-12, help="Learning rate / L-BFGS step.")] = None,
    style_scale: Annotated[Optional[float], typer.Option(min=1e-12, help="Style image size relative to the content.")] = None,
    luminance_only: Annotated[Optional[bool], typer.Option("--luminance-only/--full-color", help="Keep the content's colours (Gatys et al. 2016).")] = None,
    pooling: Annotated[Optional[Pooling], typer.Option(help="VGG pooling.")] = None,
    record_every: Annotated[int, typer.Option(min=1, help="Record losses every k steps into loss_curves.")] = 10,
    bf16: Bf16Opt = False,
    channels_last: ChannelsLastOpt = False,
    export: Annotated[Optional[str], typer.Option(help="Folder for the named stimuli; may contain {run_id} (default <store>/exports/{run_id}).")] = None,
    classify_with: Annotated[Optional[str], typer.Option("--classify", help="Classify the generated set with this model in the same command.")] = None,
    *,
    run: RunOptions,
) -> None:
    """Batched Gatys style transfer: generate cue-conflict stimuli `<shape><n>-<texture><m>.png`."""
    from pipelines.ops.classify import ClassifyConfig
    from pipelines.ops.checks import check_weights
    from pipelines.ops.stylize import StylizeConfig
    from pipelines.ops.transfer_options import build_transfer_config
    from pipelines.reporting import print_dataset_shape_bias, print_run
    from pipelines.runner import session

    transfer = build_transfer_config(
        backbone=backbone, weights=weights, preset_name=preset, content_layer=content_layer, style_layers=style_layers,
        size=size, steps=steps, seed=seed, content_weight=content_weight, style_weight=style_weight,
        tv_weight=tv_weight, statistic=statistic, init=value(init), optimizer=value(optimizer), lr=lr,
        style_scale=style_scale, luminance_only=luminance_only, pooling=value(pooling), record_every=record_every,
        dtype="bfloat16" if bf16 else None, channels_last=channels_last or None, box=value(box),
        precision=value(precision),
    )
    if classify_with:
        check_weights(classify_with, "imagenet")
    config = StylizeConfig(content=tuple(content), style=tuple(style), transfer=transfer.to_dict(),
                           config_hash=transfer.config_hash(), backbone=backbone, weights=weights, pairs=pairs,
                           batch_size=batch_size, export_dir=export or "{store}/exports/{run_id}")
    with session(run.placement):
        report = _run("stylize", config, run)
        print_run(report, what=f"{report.counts['stimuli']} stimuli; images in {report.extra.get('export_dir')}")
        folder = report.extra.get("export_dir")
        if classify_with and folder and Path(folder).is_dir():
            dataset = f"stylized:{report.run_id}"
            follow = _run("classify", ClassifyConfig(inputs=(folder,), model=classify_with, dataset=dataset),
                          RunOptions(store=run.store, resume=None, placement=run.placement, compact=run.compact))
            print_run(follow, what=f"{follow.counts['trials']} trials")
            print_dataset_shape_bias(run.store, dataset, classify_with)
    _done(report)


@app.command()
@run_command
def reconstruct(
    images: ImagesArg,
    kind: Annotated[Kind, typer.Option(help="content (from one layer each) or texture (Grams of growing layer sets).")] = Kind.content,
    layers: Annotated[Optional[str], typer.Option(help="Comma-separated layers (default: the backbone's reconstruction layers).")] = None,
    backbone: BackboneOpt = "vgg19",
    weights: WeightsOpt = "imagenet",
    size: Annotated[int, typer.Option(min=8, help="Images resized and centre-cropped to size x size px.")] = 128,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps per reconstruction.")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the noise initialisation (and random weights).")] = 0,
    batch_size: BatchOpt = 4,
    pooling: Annotated[Pooling, typer.Option(help="VGG pooling.")] = Pooling.max,
    optimizer: Annotated[OptimizerName, typer.Option(help="Optimiser.")] = OptimizerName.lbfgs,
    tv_weight: Annotated[float, typer.Option(min=0.0, help="Total-variation weight.")] = 0.0,
    box: BoxOpt = None,
    precision: PrecisionOpt = None,
    record_every: Annotated[int, typer.Option(min=1, help="Record losses every k steps into loss_curves.")] = 10,
    classifier: Annotated[str, typer.Option(help="Classifier that judges each reconstruction ('none' to skip).")] = "efficientnet_lite0",
    statistic: Annotated[str, typer.Option(help="Texture: the statistic matched, NAME[:VALUE] (`texprobe stats`).")] = "gram",
    *,
    run: RunOptions,
) -> None:
    """Per-layer reconstructions (content) or texture syntheses (Grams or --statistic) with quality metrics."""
    from pipelines.ops.reconstruct import reconstruct_config
    from pipelines.reporting import print_reconstruction_quality, print_run

    config = reconstruct_config(backbone=backbone, kind=value(kind), layers=layers, inputs=tuple(images),
                                weights=weights, steps=steps, size=size, seed=seed, pooling=value(pooling),
                                optimizer=value(optimizer), tv_weight=tv_weight, record_every=record_every,
                                classifier=None if classifier == "none" else classifier, batch_size=batch_size,
                                box=value(box) or "bounded", precision=value(precision) or "float32",
                                statistic=statistic)
    report = _run("reconstruct", config, run)
    print_run(report, what=f"{report.counts['reconstructions']} reconstructions of {report.counts['inputs']} images")
    print_reconstruction_quality(run.store, report.run_id)
    _done(report)


@app.command("import-mvh")
@friendly
def import_mvh(
    paths: Annotated[list[str], typer.Argument(help="Per-trial CSV files or folders (model-vs-human / texture-vs-shape).")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Import published per-trial CSVs (humans and models) into `trials`."""
    from pipelines.jobs.imports import run_import_mvh
    from pipelines.store import Store

    run_id, table = run_import_mvh(paths, store=Store(store))
    n_obs = len(set(table.column("observer").to_pylist()))
    console.print(f"run [bold]{run_id}[/]: imported {table.num_rows} trials of {n_obs} observers")


@app.command()
@friendly
def sql(
    query: Annotated[Optional[str], typer.Argument(help="SQL over the views; omitted: list the views.")] = None,
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """DuckDB SQL over the store; views (trials, grams, shape_bias, …) are preloaded."""
    import duckdb

    from analysis.db import connect
    from analysis.formatting import format_result

    con = connect(store)
    if query is None:
        query = "SELECT table_name AS view, count(*) AS columns FROM information_schema.columns GROUP BY 1 ORDER BY 1"
    try:
        rel = con.sql(query)
    except duckdb.Error as exc:
        err_console.print(f"[bold red]SQL error:[/] {' '.join(str(exc).split())}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if rel is None:
        return
    typer.echo(format_result(rel, value(format)))


@app.command()
@friendly
def models(
    name: Annotated[Optional[str], typer.Argument(help="One backbone (own, torchvision:<arch>, timm:<name>, module:factory).")] = None,
    layers: Annotated[bool, typer.Option("--layers", help="List its layers with output shapes.")] = False,
    weights: WeightsOpt = "imagenet",
) -> None:
    """Backbones (own, every torchvision classifier, module:factory), whether their weights are present."""
    from pipelines.commands_models import models_command

    typer.echo(models_command(name=name, layers=layers, weights=weights))


@app.command("export-mvh")
@friendly
def export_mvh(
    out: Annotated[Path, typer.Option("--out", help="Folder for the model-vs-human raw-data CSVs.")],
    observer: Annotated[Optional[list[str]], typer.Option("--observer", help="Only these observers.")] = None,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", help="Only these datasets.")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Trials as model-vs-human raw-data CSVs (one file per observer and dataset) for its plotting code."""
    from pipelines.commands_models import export_mvh_command

    typer.echo(export_mvh_command(store=store, out=out, observers=observer or None, datasets=dataset or None))


@app.command()
@friendly
def runs(
    store: StoreOpt = DEFAULT_STORE,
    stale_after: Annotated[float, typer.Option(min=1.0, help="A running run without a heartbeat for this many seconds is shown as stale (its driver died: resume it).")] = 600.0,
) -> None:
    """Runs with status (running | finished | partial | failed; stale) and row counts from the store."""
    from pipelines.commands_store import runs as list_runs

    raise typer.Exit(code=list_runs(store=store, echo=typer.echo, stale_after=stale_after))


@store_app.command("check")
@friendly
def store_check(
    store: StoreOpt = DEFAULT_STORE,
    quarantine: Annotated[bool, typer.Option("--quarantine", help="Move damaged parts under <store>/quarantine/ (never deletes).")] = False,
) -> None:
    """List damaged parts (unreadable, schema drift, broken manifests); exit 1 while damage remains."""
    from pipelines.commands_store import store_check as check

    raise typer.Exit(code=check(store=store, quarantine=quarantine, echo=typer.echo))


@store_app.command("compact")
@friendly
def store_compact(
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[Optional[list[str]], typer.Option("--run", help="Compact this run (repeatable; default every run).")] = None,
    table: Annotated[Optional[list[str]], typer.Option("--table", help="Compact this table (repeatable; default every table).")] = None,
) -> None:
    """Rewrite runs' many unit parts into a few large sorted files, crash-safe (readers never see both);
    also indexes the parts so queries need not open every file. Exit 1 when a run was refused (damage)."""
    from pipelines.commands_store import store_compact as compact

    raise typer.Exit(code=compact(store=store, run_ids=run_id, tables=table, echo=typer.echo))


@data_app.command("list")
def data_list() -> None:
    """Datasets that `texprobe data fetch` knows."""
    from pipelines.datasets import list_datasets

    for name in list_datasets():
        console.print(name)


@data_app.command("fetch")
@friendly
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (see `texprobe data list`).")],
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where to put it (default ~/.cache/texprobe/datasets).")] = None,
) -> None:
    """Download a public dataset into the local cache, checking every file's sha256."""
    from pipelines.datasets import fetch_dataset

    path = fetch_dataset(name, cache_dir=cache_dir)
    console.print(f"{name}: {path}")


@app.command()
@friendly
def quickstart(
    store: StoreOpt = DEFAULT_STORE,
    address: Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="Ray cluster to join.")] = None,
    model: Annotated[str, typer.Option(help="Bundled classifier to use.")] = "efficientnet_lite0",
) -> None:
    """The main job on the bundled sample, end to end: classify cue-conflict, edge and silhouette
    stimuli on Ray, write the store, and report shape bias from DuckDB."""
    from pipelines.jobs.quickstart import bundled_data_dir, run_quickstart

    if not run_quickstart(store=store, address=address, model=model, data_dir=bundled_data_dir()):
        raise typer.Exit(code=EXIT_PARTIAL)


from pipelines import commands_models, commands_report, commands_visualize  # noqa: E402  (registered below)

commands_report.register(app)
commands_visualize.register(app)
commands_models.register(app)


def main() -> None:  # pragma: no cover - console entry
    import warnings

    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"  # one line each
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
