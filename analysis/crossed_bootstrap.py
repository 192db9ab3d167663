"""Two-way (and three-way) bootstrap of the shape bias over crossed random factors (issue 23).

Cue-conflict stimuli cross two sources: a texture image and a content (shape) image, each reused across
many stimuli; human trials add a third crossed factor, the subject. The one-way cluster bootstrap of
:mod:`analysis.bootstrap` resamples texture sources only and treats content images as fixed, so its
interval is too narrow for a reader who asks how the figure would move with other stimuli.

The crossed-factor ("pigeonhole") bootstrap resamples every factor independently and weights each trial
by the product of its levels' multiplicities: Owen, "The pigeonhole bootstrap", *Annals of Applied
Statistics* 1(2), 2007, Sec. 2 (McCullagh, *Bernoulli* 6, 2000, for why no exact bootstrap exists for
crossed designs; the pigeonhole bootstrap is the conservative choice Owen recommends). Replicate ``b``
draws, for each factor ``w`` with ``K_w`` levels, ``K_w`` levels with replacement (multiplicities
``m_w[b, k]``); the replicate's shape bias is ``sum(W s) / sum(W (s + t))`` with cell weights
``W = prod_w m_w[b, level_w(cell)]``. The interval is the 2.5 / 97.5 percentiles (numpy's linear
interpolation); replicates without any shape or texture decision are left out.

Deterministic: levels are indexed in sorted order of their names (the cells' order does not matter);
draws come from one ``numpy.random.default_rng(seed)``, one ``integers(0, K_w, size=(n_boot, K_w))``
call per factor in the order the factors are given. A factor with one level has weight 1 everywhere.

The views call :func:`crossed_bootstrap` through the DuckDB function ``crossed_bootstrap(textures,
contents, subjects, shape_hits, texture_hits)`` registered by :func:`register` (per-cell lists ->
struct low/high).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
from duckdb.sqltypes import BIGINT, DOUBLE, VARCHAR
import numpy as np

from analysis.bootstrap import N_BOOT, SEED

__all__ = ["crossed_bootstrap", "register"]

#: Replicates computed at once (bounds the weight matrix to about this many x cells doubles).
_CHUNK = 64


def _multiplicities(rng: np.random.Generator, k: int, n_boot: int) -> np.ndarray:
    """[n_boot, k] how often each of ``k`` levels is drawn in each replicate (k draws with replacement)."""
    draws = rng.integers(0, k, size=(n_boot, k), dtype=np.int32)
    flat = (np.arange(n_boot, dtype=np.int64)[:, None] * k + draws).ravel()
    return np.bincount(flat, minlength=n_boot * k).reshape(n_boot, k).astype(np.float64)


def crossed_bootstrap(factors: Sequence[Sequence[object]], shape_hits: Sequence[int], texture_hits: Sequence[int],
                      *, n_boot: int = N_BOOT, seed: int = SEED, level: float = 0.95
                      ) -> tuple[float | None, float | None]:
    """Percentile interval of the shape bias resampling every factor of ``factors`` (see module doc).

    ``factors``: one sequence per crossed factor, each giving every cell's level (e.g. texture source,
    content source, subject); ``shape_hits`` / ``texture_hits``: the cells' counts. None, None when no cell
    has a decision.
    """
    s = np.asarray(shape_hits, dtype=np.float64)
    t = np.asarray(texture_hits, dtype=np.float64)
    if s.shape != t.shape or s.ndim != 1 or any(len(f) != s.size for f in factors):
        raise ValueError("crossed_bootstrap needs one level per cell for every factor and equal-length counts; got "
                         f"{[len(f) for f in factors]} levels for {s.size} / {t.size} cells")
    if s.size == 0 or float((s + t).sum()) == 0.0:
        return (None, None)
    rng = np.random.default_rng(seed)
    ways = []
    for levels in factors:
        _, index = np.unique(np.asarray([str(v) for v in levels]), return_inverse=True)
        ways.append((index, _multiplicities(rng, int(index.max()) + 1, n_boot)))
    shape = np.empty(n_boot)
    cues = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        stop = min(n_boot, start + _CHUNK)
        weights = np.ones((stop - start, s.size))
        for index, counts in ways:
            weights *= counts[start:stop][:, index]
        shape[start:stop] = weights @ s
        cues[start:stop] = shape[start:stop] + weights @ t
    ok = cues > 0
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(shape[ok] / cues[ok], [alpha, 1.0 - alpha])
    return (float(low), float(high))


def _udf(textures: list[str] | None, contents: list[str] | None, subjects: list[str] | None,
         shape_hits: list[int] | None, texture_hits: list[int] | None) -> dict[str, float | None]:
    if textures is None or contents is None or shape_hits is None or texture_hits is None:
        return {"low": None, "high": None}
    factors = [textures, contents] + ([subjects] if subjects is not None else [])
    low, high = crossed_bootstrap(factors, shape_hits, texture_hits)
    return {"low": low, "high": high}


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register ``crossed_bootstrap(LIST<VARCHAR> x3, LIST<BIGINT> x2) -> STRUCT(low DOUBLE, high DOUBLE)``
    (subjects may be NULL: two factors)."""
    con.create_function(
        "crossed_bootstrap", _udf,
        [duckdb.list_type(VARCHAR), duckdb.list_type(VARCHAR), duckdb.list_type(VARCHAR),
         duckdb.list_type(BIGINT), duckdb.list_type(BIGINT)],
        duckdb.struct_type({"low": DOUBLE, "high": DOUBLE}),
        null_handling="special", side_effects=False,
    )
