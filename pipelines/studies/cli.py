"""``texprobe study run|status|submit SPEC.toml`` (registered in :mod:`pipelines.cli` as ``study``)."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from typing import Annotated, Optional

import typer

from pipelines.cli_options import friendly
from pipelines.reporting import console

study_app = typer.Typer(help="Scheduled dataset studies from a TOML spec: run incrementally, status, submit as a Ray Job.",
                        no_args_is_help=True)

#: Exit code when work is missing (status) or a run ended partial (run).
EXIT_MISSING = 3
SpecArg = Annotated[str, typer.Argument(help="The study spec (TOML; see examples/).")]
StoreOverride = Annotated[Optional[str], typer.Option("--store", help="Store to use instead of the spec's [study].store.")]


class StatusFormat(str, Enum):
    table = "table"
    json = "json"


def _spec(path: str, store: str | None):
    from pipelines.studies.spec import load_spec

    return load_spec(path, store=store)


@study_app.command("run")
@friendly
def study_run(
    spec: SpecArg,
    store: StoreOverride = None,
    address: Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="Ray cluster to join (default: the spec's [study].address, else a private local cluster).")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also retry images whose load or compute failed before.")] = False,
) -> None:
    """Run every (operation x dataset x model) of the study on the images it has not done yet."""
    from rich.markup import escape

    from pipelines.reporting import err_console
    from pipelines.studies.run import run_study, study_placement

    study = _spec(spec, store)

    def say(result) -> None:
        p = result.plan
        if result.status == "error":
            err_console.print(f"[bold red]error:[/] {escape(p.task.label)}: {escape(result.error or '')}", highlight=False,
                              soft_wrap=True)
        elif result.run_id is None:
            console.print(f"{p.task.label}: up to date ({p.done} images done, {len(p.failed)} failed before)")
        else:
            console.print(f"{p.task.label}: run [bold]{result.run_id}[/] {result.status}: "
                          f"{result.processed} of {len(p.missing)} new images")

    results = run_study(study, placement=study_placement(study, address=address), retry_failed=retry_failed, on_task=say)
    console.print(f"study [bold]{study.name}[/]: {sum(r.run_id is not None for r in results)} run(s); store {study.store}")
    if any(r.status == "error" for r in results):
        raise typer.Exit(code=2)
    if any(r.status == "partial" for r in results):
        raise typer.Exit(code=EXIT_MISSING)


@study_app.command("status")
@friendly
def study_status(
    spec: SpecArg,
    store: StoreOverride = None,
    format: Annotated[StatusFormat, typer.Option("--format", help="table or json.")] = StatusFormat.table,
    address: Annotated[Optional[str], typer.Option("--address", envvar="RAY_JOB_ADDRESS", help="Also list the study's submitted Ray jobs and their states (the head's job server).")] = None,
) -> None:
    """What the study has done and what is missing (nothing runs), and with --address its submitted jobs.
    Exit 0: nothing missing; 3: work missing; 1: the latest submitted job failed."""
    from pipelines.studies.plan import plan_study

    study = _spec(spec, store)
    plans = plan_study(study)
    missing = sum(p.n_missing for p in plans)
    jobs = _jobs(study.name, address) if address else []
    if format == StatusFormat.json:
        typer.echo(json.dumps({"study": study.name, "store": study.store, "missing": missing,
                               "tasks": [p.to_json() for p in plans],
                               "jobs": [dataclasses.asdict(j) for j in jobs]}, indent=2))
    else:
        from rich.table import Table

        table = Table(title=f"study {study.name} ({study.store})")
        for col in ("operation", "dataset", "model", "task key", "images", "done", "failed", "missing"):
            table.add_column(col, no_wrap=True, min_width=len(col))
        for p in plans:
            table.add_row(p.task.operation_label, p.task.dataset.name, p.task.model.id, p.key[:8],
                          str(p.n_images), str(p.done), str(len(p.failed)),
                          f"[yellow]{p.n_missing}[/]" if p.n_missing else "0")
        console.print(table)
        console.print("nothing missing" if not missing else f"{missing} image(s) missing: `texprobe study run {spec}`")
        for job in jobs:
            console.print(f"job {job.submission_id}: {job.status}" + (f" ({job.message})" if job.message else ""),
                          highlight=False)
        if address and not jobs:
            console.print(f"no jobs submitted for study {study.name} at {address}", highlight=False)
    if jobs and jobs[-1].status in ("FAILED", "STOPPED"):
        raise typer.Exit(code=1)
    if missing:
        raise typer.Exit(code=EXIT_MISSING)


def _jobs(study: str, address: str) -> list:
    from pipelines.studies.jobs import study_jobs
    from pipelines.studies.submit import client_for

    return study_jobs(client_for(address), study)


@study_app.command("submit")
@friendly
def study_submit(
    spec: SpecArg,
    address: Annotated[str, typer.Option("--address", envvar="RAY_JOB_ADDRESS", help="The head's job server, e.g. http://HEAD:8265 (token auth: set RAY_AUTH_TOKEN).")],
    store: StoreOverride = None,
    python: Annotated[Optional[str], typer.Option("--python", help="Python interpreter on the head node that has texprobe installed (default: this interpreter when the head is on this machine, else `python` on the head's PATH).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end, streaming its log; exit with its result.")] = False,
) -> None:
    """Submit the study as a Ray Job `texprobe-<study>-<YYYYMMDD>` (a second submission the same day finds the
    first), check that it starts, and with --wait follow it. Exit 0: submitted/succeeded; 1: the job failed."""
    from pipelines.studies.jobs import JobFailedError, follow, wait_started
    from pipelines.studies.submit import client_for, default_python, submit_study

    study = _spec(spec, store)
    client = client_for(address)
    interpreter, why = (python, "--python") if python else default_python(address)
    sub = submit_study(study, address=address, python=interpreter, store=study.store if store else None, client=client)
    console.print(f"{'submitted' if sub.created else 'already submitted'}: {sub.submission_id}, {sub.status} "
                  f"(interpreter {interpreter}: {why})", highlight=False)
    try:
        state = wait_started(client, sub.submission_id, address)
        if wait:
            state = follow(client, sub.submission_id, address, echo=lambda line: typer.echo(line))
    except JobFailedError as exc:
        from rich.markup import escape

        from pipelines.reporting import err_console

        err_console.print(f"[bold red]error:[/] {escape(' '.join(str(exc).split()))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    if wait:
        console.print(f"job {sub.submission_id} succeeded", highlight=False)
    else:
        console.print(f"job {sub.submission_id} is {state.status.lower()}; follow it with `texprobe study status {spec} "
                      f"--address {address}` or `ray job logs {sub.submission_id} -f --address {address}`",
                      highlight=False)
