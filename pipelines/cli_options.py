"""Command-line plumbing shared by every command: option types declared once, the run options
(store, cluster placement, retries, watchdogs, resume) added to a command by one decorator and handed
to it as one :class:`RunOptions`, and one-line errors (exit code 2, no traceback) for bad input."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Annotated, Any, Callable, Optional

import click
import typer
from typer.core import TyperGroup

from pipelines.ray_runtime import Placement


#: click's exception base class (typer may vendor its own copy of click, so found through typer).
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(TyperGroup):
    """Usage errors (bad option values, unknown options) as ONE line on stderr, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: ANN001
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
        except _ClickException as exc:
            if not standalone_mode:
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                click.echo(exc.ctx.get_help() if getattr(exc, "ctx", None) else exc.format_message())
                raise SystemExit(0) from None
            where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
            message = " ".join(exc.format_message().split())
            click.echo(f"error: {where}{message} (see --help)", err=True)
            raise SystemExit(exc.exit_code) from None
        except (typer.Abort, KeyboardInterrupt):
            if not standalone_mode:
                raise
            click.echo("aborted", err=True)
            raise SystemExit(130) from None
        if standalone_mode:
            raise SystemExit(rv if isinstance(rv, int) else 0)
        return rv


# ---------------------------------------------------------------------- fixed sets (enums)
def choices(name: str, values: Sequence[str]) -> type[Enum]:
    """A str Enum for a typer option with a fixed set of ``values`` (member ``clip_at_end`` is 'clip-at-end')."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str, module=__name__, qualname=name)


#: The values mirror nstcore's sets (NORMALIZATIONS, RESIZE_POLICIES, BOX_POLICIES, PRECISIONS, ...), which
#: cannot be imported here: the CLI loads without torch.
Normalization = choices("Normalization", ("hw", "chw", "none"))
Pooling = choices("Pooling", ("max", "avg"))
Kind = choices("Kind", ("content", "texture"))
OptimizerName = choices("OptimizerName", ("lbfgs", "adam"))
Resize = choices("Resize", ("model", "native", "shorter", "exact"))
Box = choices("Box", ("bounded", "clip-at-end", "clamp-each-step"))
Precision = choices("Precision", ("float32", "float64"))
GramDtype = choices("GramDtype", ("float32", "float16", "bfloat16"))
Init = choices("Init", ("content", "noise", "style"))
Format = choices("Format", ("table", "csv", "json"))


def value(x: Any) -> Any:
    """An enum option's string value (None stays None)."""
    return x.value if isinstance(x, Enum) else x


def pairs_value(text: str) -> str:
    if text in ("conflict", "all") or os.path.isfile(text):
        return text
    raise typer.BadParameter(f"{text!r} is not 'conflict', 'all' or an existing CSV file (columns content, style)")


# ---------------------------------------------------------------------- shared option types
WeightsOpt = Annotated[str, typer.Option(help="'imagenet', 'random', or a local state-dict file.")]
SeedOpt = Annotated[int, typer.Option(min=0, help="Seed for random weights.")]
Bf16Opt = Annotated[bool, typer.Option(help="bf16 autocast for the network (Grams, losses, optimiser stay float32).")]
BoxOpt = Annotated[Optional[Box], typer.Option(help="Pixel box: bounded (optimise inside [0,1], the stored image is the optimum; default), clip-at-end (Gatys' code), clamp-each-step.")]
PrecisionOpt = Annotated[Optional[Precision], typer.Option(help="float64: a batched run equals its single-image runs (slower); float32 default.")]
ChannelsLastOpt = Annotated[bool, typer.Option(help="channels_last memory format.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Images (or pairs) per forward pass / optimisation.")]
UnitOpt = Annotated[int, typer.Option(min=1, help="Images per work unit (one Parquet part per table each).")]
StoreOpt = Annotated[str, typer.Option("--store", envvar="TEXPROBE_STORE", help="Store directory or URI.")]
DEFAULT_STORE = "./texprobe-store"


@dataclass(frozen=True)
class RunOptions:
    """The options every Ray command shares, parsed once."""

    store: str
    resume: str | None
    placement: Placement
    compact: bool = True


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_RUN_PARAMS = [
    _param("actors", Annotated[Optional[int], typer.Option(min=1, help="Actors (default: one per GPU, else one per node).")], None),
    _param("gpus_per_actor", Annotated[Optional[float], typer.Option(min=0.0, help="GPUs per actor (default 1 when the cluster has GPUs).")], None),
    _param("cpus_per_actor", Annotated[Optional[float], typer.Option(min=0.01, help="CPUs per actor.")], None),
    _param("retries", Annotated[int, typer.Option(min=0, help="Extra attempts per unit when its actor dies or stalls.")], 3),
    _param("unit_timeout", Annotated[Optional[float], typer.Option(min=1.0, help="Watchdog: seconds a unit may run before its actor is replaced and the unit retried (default: none).")], None),
    _param("startup_timeout", Annotated[float, typer.Option(min=1.0, help="Seconds an actor may take to start (load its model).")], 300.0),
    _param("resume", Annotated[Optional[str], typer.Option(help="Complete this run id's planned units (same options).")], None),
    _param("store", StoreOpt, DEFAULT_STORE),
    _param("no_compact", Annotated[bool, typer.Option("--no-compact", help="Leave the run's unit parts as they are (default: compact them into a few large files when the run finishes).")], False),
    _param("address", Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="Ray cluster to join (host:port); a private local cluster if unset.")], None),
]
_PLACEMENT_FIELDS = {f.name for f in fields(Placement)}


def _with_params(fn: Callable, arg: str, params: list[inspect.Parameter], pack: Callable[[dict], Any]) -> Callable:
    """``fn`` with ``params`` added to its signature; their values reach it as one argument ``arg``
    (``pack`` of them by name)."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != arg]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        packed = pack({p.name: kwargs.pop(p.name) for p in params})
        return fn(**kwargs, **{arg: packed})

    wrapper.__signature__ = sig.replace(parameters=[*own, *params])  # type: ignore[attr-defined]
    return wrapper


def _run_options(shared: dict[str, Any]) -> RunOptions:
    shared["unit_timeout_s"] = shared.pop("unit_timeout")
    shared["startup_timeout_s"] = shared.pop("startup_timeout")
    shared["device"] = os.environ.get("TEXPROBE_DEVICE") or None  # test/debug override
    placement = Placement(**{k: v for k, v in shared.items() if k in _PLACEMENT_FIELDS})
    return RunOptions(store=shared["store"], resume=shared["resume"], placement=placement,
                      compact=not shared["no_compact"])


def run_command(fn: Callable) -> Callable:
    """Add the shared run options to a command; it receives them as ``run: RunOptions``."""
    return friendly(_with_params(fn, "run", _RUN_PARAMS, _run_options))


@dataclass(frozen=True)
class BatchOptions:
    """How a command batches its images and runs the network, parsed once (config fields of the same names)."""

    batch_size: int
    unit_size: int
    bf16: bool
    channels_last: bool


def batch_options(*, batch_size: int, unit_size: int) -> Callable[[Callable], Callable]:
    """Add --batch-size, --unit-size (these defaults), --bf16 and --channels-last to a command (below
    :func:`run_command`); it receives them as ``batch: BatchOptions``."""
    params = [_param("batch_size", BatchOpt, batch_size), _param("unit_size", UnitOpt, unit_size),
              _param("bf16", Bf16Opt, False), _param("channels_last", ChannelsLastOpt, False)]
    return lambda fn: _with_params(fn, "batch", params, lambda values: BatchOptions(**values))


def friendly(fn: Callable) -> Callable:
    """The project's input/environment errors become one red line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rich.markup import escape

        from pipelines.errors import user_errors
        from pipelines.reporting import err_console

        try:
            return fn(*args, **kwargs)
        except user_errors() as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper
