"""What the commands print after a run: a run's outcome, and results read back through the DuckDB views
(never from the workers' return values), so the printout shows what the store holds."""

from __future__ import annotations

from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_run(report: Any, *, what: str) -> None:
    """One line per run; for a partial run, which units/inputs are missing and how to resume."""
    c = report.counts
    console.print(
        f"run [bold]{report.run_id}[/] ({report.status}): {what}, {c.get('errors', 0)} errors rows; "
        f"{report.n_units} units ({report.n_resumed} already done), {report.plan}, {report.seconds:.1f} s"
    )
    if report.new_inputs:
        err_console.print(
            f"[yellow]note:[/] {max(report.n_new_inputs, len(report.new_inputs))} input(s) found now are not in run {report.run_id}'s plan "
            f"(e.g. {report.new_inputs[0]}); they were NOT added. Start a new run (without --resume) for them."
        )
    if report.status != "partial":
        return
    n_inputs = sum(len(m["inputs"]) for m in report.missing)
    err_console.print(f"[bold red]partial run:[/] {len(report.missing)} unit(s) ({n_inputs} inputs) failed after "
                      "their retries:")
    for m in report.missing[:10]:
        shown = ", ".join(m["inputs"][:3]) + (" ..." if len(m["inputs"]) > 3 else "")
        err_console.print(f"  {m['unit_id']}: {shown} - {m['error']}", highlight=False)
    err_console.print(f"Complete it with the same command plus [bold]--resume {report.run_id}[/] "
                      "(finished units are kept, the missing ones run again).")


def print_shape_bias(store: str, *, observers: list[str] | None = None) -> None:
    """The ``shape_bias`` rows (observer x weights x dataset) of ``observers`` that have conflict trials:
    Wilson and texture-source bootstrap intervals, as the README's SQL shows them."""
    from analysis.db import connect

    where, params = "WHERE n_conflict > 0", []
    if observers:
        where += " AND observer IN (" + ",".join("?" for _ in observers) + ")"
        params = list(observers)
    rel = connect(store).execute(f"SELECT * FROM shape_bias {where} ORDER BY observer, weights, dataset", params)
    cols = [d[0] for d in rel.description]
    for row in rel.fetchall():
        r = dict(zip(cols, row))
        label = f"{r['observer']} ({r['weights']}) on {r['dataset']}" if r.get("weights") else \
            f"{r['observer']} on {r['dataset']}"
        if r["shape_bias"] is None:
            console.print(f"{label}: no shape or texture decision among {r['n_conflict']} conflict trials")
            continue
        boot = (f"; bootstrap over {r['n_clusters']} texture sources {r['boot_low']:.3f}–{r['boot_high']:.3f}"
                if r.get("boot_low") is not None else "")
        console.print(
            f"[bold]shape bias of {label}[/]: {r['shape_bias']:.3f} (95% Wilson CI {r['ci_low']:.3f}–"
            f"{r['ci_high']:.3f}{boot}; {r['shape_hits']} shape vs {r['texture_hits']} texture decisions among "
            f"{r['n_conflict']} cue-conflict trials)"
        )


def print_dataset_shape_bias(store: str, dataset: str, observer: str) -> None:
    from analysis.db import connect

    row = connect(store).execute(
        "SELECT n_conflict, shape_hits, texture_hits, shape_bias, ci_low, ci_high FROM shape_bias_by_dataset "
        "WHERE dataset = ? AND observer = ?", [dataset, observer]).fetchall()
    if row and row[0][3] is None:
        console.print(f"{observer} on {dataset}: no shape or texture decision among {row[0][0]} conflict stimuli")
    elif row:
        n, sh, th, sb, lo, hi = row[0]
        console.print(f"[bold]shape bias of {observer} on {dataset}[/]: {sb:.3f} (95% CI {lo:.3f}–{hi:.3f}; "
                      f"{sh} shape vs {th} texture among {n} conflict stimuli)")


def print_best_layers(store: str, backbone: str) -> None:
    """The best texture layer (``best_texture_layer``): ranked by the leave-one-texture-source-out accuracy
    (siblings of one texture image never sit in the held-out image's centroid), with its source-level
    permutation baseline and, for comparison, the image-level figure of the same layer."""
    from analysis.db import connect

    rel = connect(store).execute("SELECT * FROM best_texture_layer WHERE backbone = ? AND statistic = 'gram' "
                                 "ORDER BY weights_tag", [backbone])
    cols = [d[0] for d in rel.description]
    for r in (dict(zip(cols, row)) for row in rel.fetchall()):
        grouped = r["grouping"] == "texture_source"
        how = f"leave-one-texture-source-out ({r['n_groups']} sources)" if grouped else "leave-one-image-out"
        image = (f"; leave-one-image-out {r['image_accuracy']:.3f}" if grouped and r.get("image_accuracy") is not None
                 else "")
        console.print(f"[bold]best texture layer of {backbone}[/] ({r['weights_tag']}): {r['layer']} — {how} "
                      f"nearest-centroid accuracy {r['accuracy']:.3f} over {r['n_images']} images (permuted "
                      f"labels {r['permuted_accuracy']:.3f}, 95th percentile {r['permuted_p95']:.3f}; chance "
                      f"{r['chance']:.3f}{image})")


def print_reconstruction_quality(store: str, run_id: str) -> None:
    import typer

    from analysis.db import connect
    from analysis.formatting import format_result

    rel = connect(store).sql(
        "SELECT kind, layer, count(*) AS n, round(avg(psnr), 2) AS psnr_db, round(avg(ssim), 3) AS ssim, "
        "round(avg(feature_error), 4) AS feature_error, "
        "count(*) FILTER (WHERE decision = shape_category) AS shape_recognised "
        "FROM reconstructions WHERE run_id = ? GROUP BY kind, layer ORDER BY kind, max(layer_index), layer",
        params=[run_id])
    typer.echo(format_result(rel, "table"))
