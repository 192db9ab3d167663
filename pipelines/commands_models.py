"""Command functions for ``texprobe models [NAME --layers]``, ``texprobe stats`` and ``texprobe export-mvh`` (plain
functions: ``pipelines/cli.py`` registers them and prints what they return; bad input raises a one-line error)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["models_command", "export_mvh_command", "register", "stats"]


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _listing() -> str:
    from nstcore.backbones import get_backbone_spec, list_backbones, weights_status
    from nstcore.backbones.external import entry_point_names
    from nstcore.backbones.torchvision_models import PREFIX, torchvision_architectures, _enums
    from nstcore.backbones.torchvision_models import CachedHubWeights

    rows: list[tuple[str, ...]] = []
    for name in list_backbones():
        status = weights_status(name, "imagenet")
        rows.append((name, str(len(get_backbone_spec(name).layer_names)), "present" if status.present else "absent",
                     status.location if status.present else status.detail))
    for arch in torchvision_architectures():  # not traced here: `models NAME --layers` lists the layers
        enum = _enums(arch).get("imagenet")
        if enum is None:
            rows.append((PREFIX + arch, "-", "none", "no published weights"))
            continue
        status = CachedHubWeights(url=enum.url, description=f"{type(enum).__name__}.{enum.name}").status()
        rows.append((PREFIX + arch, "-", "present" if status.present else "absent",
                     status.location if status.present else status.detail))
    for name in entry_point_names():
        rows.append((name, "-", "factory", "entry point texprobe.models"))
    return (_table(rows, ("backbone", "layers", "imagenet", "where / what to do")) +
            "\nEvery backbone also takes --weights random (seeded) or --weights FILE (a state dict); "
            "--model package.module:factory runs your own network; `texprobe models NAME --layers` lists its layers.")


def models_command(*, name: str | None = None, layers: bool = False, weights: str = "imagenet") -> str:
    """The text of ``texprobe models``: every backbone and whether its ImageNet weights are present;
    with ``name``: its description, preprocessing and weights status, and with ``layers`` its layer
    names (channels, output shape for one image at the input size)."""
    if name is None:
        return _listing()
    from nstcore.backbones import get_backbone_spec, weights_status

    spec = get_backbone_spec(name)
    status = weights_status(name, weights)
    prep = spec.preprocessing.describe()
    lines = [f"{spec.name}: {spec.description}",
             f"family {spec.family}; layers {len(spec.layer_names)}; poolings {', '.join(spec.poolings)}",
             "preprocessing " + ", ".join(f"{k}={v}" for k, v in prep.items() if k != "resize_policy"),
             f"weights {weights!r}: {'present' if status.present else 'absent'} ({status.source}) {status.detail}"]
    if layers:
        info = spec.feature_info
        if hasattr(info, "shapes"):
            shapes = info.shapes(spec.layer_names)
            rows = [(n, str(shapes[n][1] if len(shapes[n]) > 1 else "-"), "x".join(map(str, shapes[n][1:])))
                    for n in spec.layer_names]
            lines.append(_table(rows, ("layer", "channels", f"output at {spec.preprocessing.input_size} px")))
        else:
            rows = [(i.name, str(i.channels), str(i.stride or "global"), i.role) for i in info]
            lines.append(_table(rows, ("layer", "channels", "stride", "role")))
    return "\n".join(lines)


def export_mvh_command(*, store: str | os.PathLike[str], out: str | os.PathLike[str],
                       observers: list[str] | None = None, datasets: list[str] | None = None) -> str:
    """``texprobe export-mvh``: model-vs-human raw-data CSVs of the store's trials into ``out``; returns
    one line per written file."""
    from analysis.mvh_export import export_mvh

    files = export_mvh(store, out, observers=observers or None, datasets=datasets or None)
    lines = [f"{f.path}  ({f.n_trials} trials; observer {f.observer}, dataset {f.dataset})" for f in files]
    lines.append(f"wrote {len(files)} file(s) to {Path(out)}; model-vs-human reads them from raw-data/<dataset>/")
    return "\n".join(lines)


def stats() -> None:
    """The style statistics `--statistic` accepts (stylize, reconstruct --kind texture, grams, a study's [sweep]):
    name, what it matches, default options."""
    from rich.table import Table

    from nstcore.stats import describe_statistics
    from pipelines.reporting import console

    table = Table("statistic", "what it matches", "default options", show_lines=False)
    for name, doc, options in describe_statistics():
        table.add_row(name, doc, ", ".join(f"{k}={v}" for k, v in options.items()))
    console.print(table)


def register(app) -> None:
    app.command("stats")(stats)
