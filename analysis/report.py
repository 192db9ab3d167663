"""The texprobe report: ONE self-contained HTML file built from the store's SQL views.

``texprobe report --store S --out report.html [--study NAME]``. Every section is always present
(:data:`SECTION_IDS`); a section whose views are empty says so in a "No data." note instead of
showing a figure. Figures come from :mod:`analysis.plots` and are embedded as base64 PNG (or SVG).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import duckdb

from analysis.db import connect
from analysis.errors import AnalysisError
from analysis.plots import PLOTS, NoDataError, PlotContext, figure_bytes
from analysis.plots._common import columns_of, rows
from analysis.report_html import Section, error_html, figure_html, no_data_html, page_html, table_html

__all__ = ["SECTION_IDS", "build_report", "write_report", "write_quickstart_report"]

log = logging.getLogger(__name__)

#: Section ids in page order (tables and figures); every report has all of them.
SECTION_IDS: tuple[str, ...] = (
    "shape-bias-table", "shape-bias-matrix", "shape-bias-box", "error-consistency", "layer-stats",
    "texture-discriminability", "reconstructions", "loss-curves", "gram-heatmaps", "visualizations", "exemplars",
    "gram-clusters", "feature-maps", "dislocator-effect", "study-over-time", "errors", "runs",
)
_FIGURE_FORMATS = ("png", "svg")
_SHAPE_BIAS_NOTE = ("shape_bias = shape hits / (shape + texture hits) over cue-conflict trials (Geirhos et al. "
                    "2019). Intervals, 95%: 'bootstrap' resamples texture sources x content sources (x subjects "
                    "for the pooled humans; view shape_bias_intervals, Owen's pigeonhole bootstrap) - the one to "
                    "quote; 'texture-source bootstrap' resamples texture sources only (shape_bias.boot_*); Wilson "
                    "assumes independent trials (narrowest). frac_correct_*: hits / conflict trials.")


_DISLOCATOR_SQL = """
    SELECT classifier, statistic, style_layers, style_weight, n_conflict, round(shape_rate, 3) AS shape_rate,
           round(texture_rate, 3) AS texture_rate, round(shape_bias, 3) AS shape_bias,
           '[' || round(boot_low, 3) || ', ' || round(boot_high, 3) || ']' AS bootstrap_95,
           round(ref_gram, 3) AS ref_gram, round(ref_mean_std, 3) AS ref_mean_std,
           round(ref_sliced_wasserstein, 3) AS ref_sw, round(content_error, 3) AS content_error,
           round(content_ssim, 3) AS content_ssim
    FROM dislocator_effect"""


def _add_table(section: Section, con: Any, title: str, sql: str) -> None:
    """A table of ``sql``'s rows under ``section`` (nothing when it has none)."""
    found = rows(con, sql)
    if found:
        section.add(f"<h3>{title}</h3>" + table_html(list(found[0]), [list(r.values()) for r in found]))


def _figure_section(ctx: PlotContext, name: str, fmt: str) -> Section:
    module = PLOTS[name]
    sec = Section(sid=name, title=module.TITLE, description=module.DESCRIPTION)
    try:
        fig = module.render(ctx)
    except NoDataError as exc:
        return sec.add(no_data_html(str(exc)))
    except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the whole report
        log.warning("report: figure %s failed: %s: %s", name, type(exc).__name__, exc)
        return sec.add(error_html(f"{type(exc).__name__}: {exc}"))
    return sec.add(figure_html(figure_bytes(fig, fmt), fmt, alt=module.TITLE, name=name))


def _interval(row: dict[str, Any], low: str, high: str) -> str | None:
    lo, hi = row.get(low), row.get(high)
    if lo is None or hi is None:
        return None
    return f"[{lo:.3f}, {hi:.3f}]"


def _shape_bias_table(con: duckdb.DuckDBPyConnection) -> Section:
    """Key columns of ``shape_bias``; Wilson and (when the view has it) bootstrap interval side by side."""
    sec = Section(sid="shape-bias-table", title="Shape bias per observer", description=_SHAPE_BIAS_NOTE)
    cols = columns_of(con, "shape_bias")
    order = ["CASE WHEN observer = 'humans' THEN 0 WHEN observer_kind = 'human' THEN 1 ELSE 2 END"]
    order.append("shape_bias DESC NULLS LAST" if "shape_bias" in cols else "observer")
    data = rows(con, f"SELECT * FROM shape_bias ORDER BY {', '.join(order)}, observer")
    if not data:
        return sec.add(no_data_html("no cue-conflict trials in the store (run `texprobe classify` on "
                                    "cue-conflict stimuli or `texprobe import-mvh`)."))
    boot = next(((lo, lo.replace("low", "high")) for lo in cols
                 if "boot" in lo.lower() and lo.endswith("low") and lo.replace("low", "high") in cols), None)
    if boot is None:
        sec.add('<p class="note">This store\'s shape_bias view has no bootstrap interval columns; '
                "only the Wilson interval is shown.</p>")
    crossed = _crossed_intervals(con)
    for r in data:
        r.update(crossed.get((r.get("observer"), r.get("weights_sha256"), r.get("dataset")), {}))
    plain = [c for c in ("observer", "observer_kind", "weights", "dataset", "n_observers", "n_conflict",
                         "shape_hits", "texture_hits", "shape_bias") if c in cols]
    if "weights" in plain and all(r.get("weights") is None for r in data):
        plain.remove("weights")
    tail = [c for c in ("n_clusters", "frac_correct_shape", "frac_correct_texture") if c in cols]
    header = plain + (["bootstrap 95%"] if crossed else []) + ["Wilson 95%"] + (
        ["texture-source bootstrap 95%"] if boot else []) + tail
    table = []
    for r in data:
        cells = [r[c] for c in plain] + ([_interval(r, "boot2_low", "boot2_high")] if crossed else [])
        cells += [_interval(r, "ci_low", "ci_high")]
        cells += [_interval(r, *boot)] if boot else []
        table.append(cells + [r[c] for c in tail])
    sec.add(table_html(header, table,
                       row_class=["human" if r.get("observer_kind") == "human" else "" for r in data]))
    return sec


def _crossed_intervals(con: duckdb.DuckDBPyConnection) -> dict[tuple, dict[str, Any]]:
    """(observer, weights_sha256, dataset) -> the crossed-bootstrap interval of ``shape_bias_intervals``
    (empty when the store's views have none)."""
    if "boot2_low" not in columns_of(con, "shape_bias_intervals"):
        return {}
    return {(r["observer"], r["weights_sha256"], r["dataset"]): {"boot2_low": r["boot2_low"], "boot2_high": r["boot2_high"]}
            for r in rows(con, "SELECT observer, weights_sha256, dataset, boot2_low, boot2_high FROM shape_bias_intervals")}


_CONSISTENCY_SQL = """
SELECT observer, observer_kind, weights, dataset, n_pairs, round(mean_kappa, 3) AS mean_kappa,
       round(sd_kappa, 3) AS sd_kappa, round(min_kappa, 3) AS min_kappa, round(max_kappa, 3) AS max_kappa
FROM error_consistency_summary
ORDER BY dataset, observer <> 'humans', observer_kind, mean_kappa DESC NULLS LAST, observer
"""


def _add_consistency_summary(sec: Section, con: duckdb.DuckDBPyConnection) -> None:
    """The error-consistency aggregates under the heatmap: each observer's mean kappa to the human subjects
    (itself excluded) and the humans' mean over subject pairs (model-vs-human's summary)."""
    if not columns_of(con, "error_consistency_summary"):
        return
    data = rows(con, _CONSISTENCY_SQL)
    if data:
        sec.add("<h3>Error consistency to the human subjects</h3><p class=\"note\">mean_kappa: mean Cohen's kappa "
                "to the human subjects (an observer's own pairs excluded; n_pairs subjects); row humans: mean over "
                "all pairs of distinct subjects; sd_kappa: sample standard deviation over those pairs.</p>"
                + table_html(list(data[0]), [list(r.values()) for r in data]))


def _simple_table(con: duckdb.DuckDBPyConnection, *, sid: str, title: str, description: str, sql: str,
                  params: list[Any] | None, empty: str) -> Section:
    sec = Section(sid=sid, title=title, description=description)
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    data = cur.fetchall()
    if not data:
        return sec.add(no_data_html(empty))
    return sec.add(table_html(cols, data))


_ERRORS_SQL = """
SELECT run_id, stage, error_type, count(*) AS n, any_value(input) AS example_input,
       any_value(message) AS example_message
FROM errors GROUP BY run_id, stage, error_type ORDER BY run_id DESC, n DESC LIMIT 100
"""
_RUNS_SQL = """
SELECT run_id, command, status, strftime(timezone('UTC', started_at), '%Y-%m-%d %H:%M:%S UTC') AS started_at,
       strftime(timezone('UTC', finished_at), '%Y-%m-%d %H:%M:%S UTC') AS finished_at, CAST(counts AS VARCHAR) AS counts,
       coalesce(d.duplicate_images, 0) AS duplicate_images
FROM runs LEFT JOIN run_duplicates AS d USING (run_id)
WHERE CAST(? AS VARCHAR) IS NULL
   OR coalesce(manifest ->> 'study', config ->> 'study', manifest -> 'study' ->> 'name',
               config -> 'study' ->> 'name') = ?
ORDER BY started_at DESC NULLS LAST, run_id DESC LIMIT 200
"""
_BEST_LAYER_SQL = "SELECT * FROM best_texture_layer"


def build_report(store: str | os.PathLike, *, study: str | None = None, figure_format: str = "png",
                 title: str | None = None, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """The report of ``store`` as one HTML string (figures embedded)."""
    if figure_format not in _FIGURE_FORMATS:
        raise AnalysisError(f"--figure-format {figure_format!r}: use png or svg")
    own = con is None
    con = con or connect(store)
    try:
        ctx = PlotContext(con=con, store=os.fspath(store), study=study)
        sections = [_shape_bias_table(con)]
        for name in ("shape-bias-matrix", "shape-bias-box", "error-consistency", "layer-stats",
                     "texture-discriminability"):
            sections.append(_figure_section(ctx, name, figure_format))
            if name == "error-consistency":
                _add_consistency_summary(sections[-1], con)
        best = rows(con, _BEST_LAYER_SQL)
        if best:
            sections[-1].add("<h3>Best texture layer</h3>" + table_html(list(best[0]), [list(r.values()) for r in best]))
        for name in ("reconstructions", "loss-curves", "gram-heatmaps", "visualizations", "exemplars",
                     "gram-clusters", "feature-maps", "dislocator-effect", "study-over-time"):
            sections.append(_figure_section(ctx, name, figure_format))
            if name == "dislocator-effect":
                _add_table(sections[-1], con, "Conditions", _DISLOCATOR_SQL)
        sections.append(_simple_table(
            con, sid="errors", title="Errors", params=None, sql=_ERRORS_SQL,
            description="Failed inputs and work units, by run, stage and error type (table errors).",
            empty="no errors recorded."))
        sections.append(_simple_table(
            con, sid="runs", title="Run manifests", params=[study, study], sql=_RUNS_SQL,
            description="Every run with its command, status, times and counts (runs/<run_id>.json); "
                        "duplicate_images: images a run's trials hold twice (same bytes under two names).",
            empty="no run manifests" + (f" for study {study!r}." if study else " in the store.")))
    finally:
        if own:
            con.close()
    assert tuple(s.sid for s in sections) == SECTION_IDS
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"store {os.fspath(store)}" + (f" · study {study}" if study else "") + f" · generated {now}"
    return page_html(title=title or "texprobe report", subtitle=subtitle, sections=sections)


def write_report(store: str | os.PathLike, *, out: str | os.PathLike, study: str | None = None,
                 figure_format: str = "png") -> Path:
    """Build the report of ``store`` and write it to ``out`` (parent folders created); returns the path."""
    path = Path(out)
    if path.suffix.lower() not in (".html", ".htm"):
        raise AnalysisError(f"--out {path}: the report is an HTML file; name it .html")
    text = build_report(store, study=study, figure_format=figure_format)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path.resolve()


def write_quickstart_report(store: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """The quickstart's last step: the report of ``store`` at ``out`` (default ``<store>/report.html``)."""
    target = Path(out) if out is not None else Path(os.fspath(store)) / "report.html"
    return write_report(store, out=target)
