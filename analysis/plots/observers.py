"""Per-observer shape bias by category, read from the canned views, with the humans pooled.

Both shape-bias figures follow model-vs-human (Geirhos et al., NeurIPS 2021): the human subjects are
pooled into one decision maker, "humans" (their shape and texture hits summed per category), and
every model (observer + weights) is its own. Shape bias = shape hits / (shape hits + texture hits)
over cue-conflict trials (Geirhos et al., ICLR 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from analysis.plots._common import NoDataError, PlotContext, columns_of, rows

__all__ = ["ObserverBias", "category_bias", "pick_dataset", "plotted_observers", "DEFAULT_DATASET"]

DEFAULT_DATASET = "cue-conflict"


@dataclass(frozen=True)
class ObserverBias:
    """One decision maker: its label, kind, overall and per-category hits."""

    label: str
    kind: str
    shape_hits: int
    texture_hits: int
    by_category: dict[str, tuple[int, int]]   # category -> (shape hits, texture hits)
    members: tuple[str, ...] = ()            # pooled subjects (humans)

    @property
    def shape_bias(self) -> float:
        n = self.shape_hits + self.texture_hits
        return self.shape_hits / n if n else math.nan

    def category_shape_bias(self, category: str) -> float:
        s, t = self.by_category.get(category, (0, 0))
        return s / (s + t) if s + t else math.nan


def _identity_label(observer: str, weights: str | None, multi: bool) -> str:
    return f"{observer} [{weights}]" if multi and weights else observer


def pick_dataset(con: duckdb.DuckDBPyConnection, requested: str | None) -> str | None:
    """The dataset the shape-bias figures show: ``requested`` if given; else cue-conflict when it has
    conflict trials, else the dataset with the most conflict trials. None when the views have no
    ``dataset`` column (then every conflict trial counts)."""
    if "dataset" not in columns_of(con, "shape_bias_by_category"):
        return None
    if requested is not None:
        return requested
    found = rows(con, """
        SELECT dataset, sum(shape_hits + texture_hits) AS n FROM shape_bias_by_category
        WHERE dataset IS NOT NULL GROUP BY dataset HAVING n > 0
        ORDER BY dataset = ? DESC, n DESC, dataset LIMIT 1""", [DEFAULT_DATASET])
    return found[0]["dataset"] if found else DEFAULT_DATASET


def category_bias(con: duckdb.DuckDBPyConnection, *, dataset: str | None = DEFAULT_DATASET,
                  pool_humans: bool = True) -> list[ObserverBias]:
    """Decision makers with their per-category shape/texture hits, humans first (pooled).

    ``dataset`` filters on the view's ``dataset`` column when it has one (the views add it with
    observer identity); ``None`` keeps every dataset.
    """
    cols = columns_of(con, "shape_bias_by_category")
    where, params = ["shape_category IS NOT NULL"], []
    if dataset is not None and "dataset" in cols:
        where.append("dataset = ?")
        params.append(dataset)
    id_col = next((c for c in ("weights_sha256", "weights", "weights_tag") if c in cols), None)
    tag_col = next((c for c in ("weights", "weights_tag") if c in cols), None)
    wid = f"CAST({id_col} AS VARCHAR)" if id_col else "NULL"
    wtag = f"min(CAST({tag_col} AS VARCHAR))" if tag_col else "NULL"
    data = rows(con, f"""
        SELECT observer, observer_kind AS kind, {wid} AS weights_id, {wtag} AS weights,
               shape_category AS category, sum(shape_hits)::BIGINT AS s, sum(texture_hits)::BIGINT AS t
        FROM shape_bias_by_category WHERE {' AND '.join(where)}
        GROUP BY observer, observer_kind, weights_id, shape_category
        HAVING sum(shape_hits) + sum(texture_hits) > 0
        ORDER BY observer, weights_id, category""", params)
    # a pooled 'humans' row of the view (if it has one) would count the subjects twice
    if any(r["kind"] == "human" and r["observer"] != "humans" for r in data):
        data = [r for r in data if not (r["kind"] == "human" and r["observer"] == "humans")]
    weights_per_observer: dict[str, set] = {}
    for r in data:
        weights_per_observer.setdefault(r["observer"], set()).add(r["weights_id"])
    groups: dict[tuple[str, str], dict[str, list[int]]] = {}
    members: dict[tuple[str, str], set[str]] = {}
    for r in data:
        if pool_humans and r["kind"] == "human":
            key = ("humans", "human")
        else:
            label = _identity_label(r["observer"], r["weights"] or (r["weights_id"] or "")[:10],
                                    len(weights_per_observer[r["observer"]]) > 1)
            key = (label, r["kind"] or "model")
        cat = groups.setdefault(key, {}).setdefault(r["category"], [0, 0])
        cat[0] += int(r["s"])
        cat[1] += int(r["t"])
        members.setdefault(key, set()).add(r["observer"])
    out = []
    for (label, kind), cats in groups.items():
        out.append(ObserverBias(
            label=label, kind=kind,
            shape_hits=sum(v[0] for v in cats.values()), texture_hits=sum(v[1] for v in cats.values()),
            by_category={c: (v[0], v[1]) for c, v in cats.items()},
            members=tuple(sorted(members[(label, kind)]))))
    out.sort(key=lambda o: (o.kind != "human", o.label))
    return out


def plotted_observers(ctx: PlotContext) -> tuple[str | None, list[ObserverBias]]:
    """The dataset a shape-bias figure shows (``ctx.options['dataset']``, default: :func:`pick_dataset`)
    and its decision makers (:func:`category_bias`); :class:`NoDataError` when there are none."""
    dataset = pick_dataset(ctx.con, ctx.options.get("dataset"))
    observers = category_bias(ctx.con, dataset=dataset)
    if not observers:
        raise NoDataError("no cue-conflict trials with shape or texture decisions"
                          + (f" in dataset {dataset!r}" if dataset else ""))
    return dataset, observers
