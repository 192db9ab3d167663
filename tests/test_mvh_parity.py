"""Model-vs-human parity (issue 23): the figures researchers put side by side with model-vs-human's, each
recomputed here from the published per-trial CSVs with the csv module (never through texprobe's views):
per-category shape bias of the pooled humans in both definitions, error-consistency aggregates, and the
crossed (texture x content [x subject]) bootstrap interval."""

from __future__ import annotations

import csv
import itertools
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import report_store as rs
from shared_data import SHARED_DATA

MVH = SHARED_DATA / "model-vs-human" / "cue-conflict"
needs_mvh = pytest.mark.shared_data("model-vs-human/cue-conflict")
_NAME = re.compile(r"(([a-z]+)\d+)-(([a-z]+)\d+)\.png$")


def _csv_trials() -> list[dict]:
    """Every trial of the CSVs: who, stimulus key, shape/texture category, response."""
    out = []
    for path in sorted(MVH.glob("*.csv")):
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                m = _NAME.search(row["imagename"])
                out.append(dict(who=row["subj"], key=m.group(0), content=m.group(1), shape=m.group(2),
                                texture_source=m.group(3), texture=m.group(4), response=row["object_response"]))
    return out


@pytest.fixture(scope="module")
def mvh(tmp_path_factory):
    if not MVH.is_dir():
        pytest.skip(f"shared data missing: {MVH}")
    from analysis.db import connect

    store = tmp_path_factory.mktemp("mvh") / "store"
    rs.import_csvs(store, sorted(MVH.glob("*.csv")), "20260101T000000Z-aaaaaa", started_at="2026-01-01T00:00:00Z")
    return store, connect(store), _csv_trials()


def _subject_category_bias(trials: list[dict]) -> dict[str, dict[str, float]]:
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for t in trials:
        if t["who"].startswith("subject-") and t["shape"] != t["texture"]:
            cell = hits[t["who"]][t["shape"]]
            cell[0] += t["response"] == t["shape"]
            cell[1] += t["response"] == t["texture"]
    return {who: {c: s / (s + x) for c, (s, x) in cats.items() if s + x} for who, cats in hits.items()}, hits


@needs_mvh
def test_per_category_shape_bias_of_humans_in_both_definitions(mvh):
    _, con, trials = mvh
    per_subject, hits = _subject_category_bias(trials)
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT shape_category, pooled, mean_of_subjects, n_subjects FROM shape_bias_by_category_subjects "
        "WHERE dataset = 'cue-conflict'").fetchall()}
    assert len(got) == 16
    for cat, (pooled, mean_of_subjects, n_subjects) in got.items():
        s = sum(h[cat][0] for h in hits.values())
        x = sum(h[cat][1] for h in hits.values())
        values = [v[cat] for v in per_subject.values() if cat in v]
        assert pooled == pytest.approx(s / (s + x), abs=1e-12), cat
        assert mean_of_subjects == pytest.approx(sum(values) / len(values), abs=1e-12), cat
        assert n_subjects == len(values)
    # the independent figures: knife 0.891 pooled vs 0.871 mean of subjects; boat 0.872 vs 0.863
    assert (round(got["knife"][0], 3), round(got["knife"][1], 3)) == (0.891, 0.871)
    assert (round(got["boat"][0], 3), round(got["boat"][1], 3)) == (0.872, 0.863)


@needs_mvh
def test_box_plot_takes_model_vs_humans_definition_by_default_and_pooled_on_request(mvh):
    from analysis.plots import PlotContext, shape_bias_box

    store, con, trials = mvh
    per_subject, hits = _subject_category_bias(trials)
    cats = sorted({c for v in per_subject.values() for c in v})
    mean_of_subjects = [np.mean([v[c] for v in per_subject.values() if c in v]) for c in cats]
    pooled = [sum(h[c][0] for h in hits.values()) / sum(h[c][0] + h[c][1] for h in hits.values()) for c in cats]

    def human_median(**options) -> float:
        fig = shape_bias_box.render(PlotContext(con=con, store=str(store), options=options))
        line = next(l for l in fig.axes[0].get_lines() if l.get_gid() == "median:humans")
        return line.get_ydata()[0]

    assert np.median(mean_of_subjects) != pytest.approx(np.median(pooled), abs=1e-4)  # the choice matters
    assert human_median() == pytest.approx(np.median(mean_of_subjects), abs=1e-12)
    assert human_median(category_definition="pooled") == pytest.approx(np.median(pooled), abs=1e-12)
    assert "mean_of_subjects" in shape_bias_box.DESCRIPTION
    with pytest.raises(ValueError, match="category_definition 'median'"):
        human_median(category_definition="median")


def _kappa(a: dict[str, bool], b: dict[str, bool]) -> float:
    common = sorted(set(a) & set(b))
    pa = sum(a[k] for k in common) / len(common)
    pb = sum(b[k] for k in common) / len(common)
    c_obs = sum(a[k] == b[k] for k in common) / len(common)
    c_exp = pa * pb + (1 - pa) * (1 - pb)
    return (c_obs - c_exp) / (1 - c_exp)


@needs_mvh
def test_error_consistency_aggregates_equal_a_recomputation_from_the_csvs(mvh):
    _, con, trials = mvh
    correct: dict[str, dict[str, bool]] = defaultdict(dict)
    for t in trials:
        correct[t["who"]][t["key"]] = t["response"] == t["shape"]
    subjects = sorted(w for w in correct if w.startswith("subject-"))
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT observer, n_pairs, mean_kappa, sd_kappa FROM error_consistency_summary "
        "WHERE dataset = 'cue-conflict'").fetchall()}
    pairs = [_kappa(correct[a], correct[b]) for a, b in itertools.combinations(subjects, 2)]
    assert got["humans"][0] == 45 and got["humans"][1] == pytest.approx(np.mean(pairs), abs=1e-12)
    assert got["humans"][2] == pytest.approx(np.std(pairs, ddof=1), abs=1e-12)
    for who in correct:
        label = who if who.startswith("subject-") else f"mvh:{who}"
        others = [s for s in subjects if s != who]
        kappas = [_kappa(correct[who], correct[s]) for s in others]
        assert got[label][0] == len(others), label
        assert got[label][1] == pytest.approx(np.mean(kappas), abs=1e-12), label
    # model-vs-human's summary figures (the recomputation): resnet50 0.068, humans 0.331
    assert round(got["mvh:resnet50"][1], 3) == 0.068 and round(got["humans"][1], 3) == 0.331


def _pigeonhole_reference(cells: list[tuple], n_boot: int, seed: int) -> tuple[float, float]:
    """The crossed bootstrap written out from its definition (Owen 2007), one replicate and cell at a time:
    cells are (level per factor..., shape hits, texture hits); levels indexed in sorted order; one draw per
    factor from one generator, in factor order."""
    n_factors = len(cells[0]) - 2
    rng = np.random.default_rng(seed)
    levels = [sorted({str(c[w]) for c in cells}) for w in range(n_factors)]
    draws = [rng.integers(0, len(lv), size=(n_boot, len(lv)), dtype=np.int32) for lv in levels]
    ratios = []
    for b in range(n_boot):
        mult = [np.bincount(draws[w][b], minlength=len(levels[w])) for w in range(n_factors)]
        s = x = 0.0
        for c in cells:
            weight = 1.0
            for w in range(n_factors):
                weight *= mult[w][levels[w].index(str(c[w]))]
            s += weight * c[-2]
            x += weight * c[-1]
        if s + x > 0:
            ratios.append(s / (s + x))
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def test_crossed_bootstrap_equals_its_definition_written_out():
    from analysis.crossed_bootstrap import crossed_bootstrap

    rng = np.random.default_rng(5)
    cells = [(f"t{i}", f"c{j}", f"s{k}", int(rng.integers(0, 3)), int(rng.integers(0, 3)))
             for i in range(4) for j in range(3) for k in range(2)]
    rng.shuffle(cells)  # the cells' order must not matter
    factors = [[c[w] for c in cells] for w in range(3)]
    got = crossed_bootstrap(factors, [c[3] for c in cells], [c[4] for c in cells], n_boot=300, seed=7)
    assert got == pytest.approx(_pigeonhole_reference(cells, 300, 7), abs=1e-12)
    assert crossed_bootstrap([[], []], [], []) == (None, None)


def _design(shape_hit) -> list[dict]:
    """8 texture x 8 content sources, one cue-conflict trial each; ``shape_hit(i, j)`` decides."""
    return [dict(observer="net", image=f"cat{j}-dog{i}.png", image_id=f"{i}-{j}", shape_category="cat",
                 texture_category="dog", decision="cat" if shape_hit(i, j) else "dog")
            for i in range(8) for j in range(8)]


def test_only_content_sources_varying_widens_the_two_way_interval_and_not_the_one_way(tmp_path):
    """Two designs with the same shape/texture counts per texture source (2 of 8 each): in A every content
    source has 2 of 8 shape decisions too; in B two content sources decide for the shape, the others never.
    The one-way interval (texture sources) cannot tell them apart; the crossed one widens for B."""
    from analysis.db import connect
    from tests.views_helpers import write_part

    spread = lambda i, j: (i + j) % 4 == 0  # noqa: E731
    by_content = lambda i, j: j < 2  # noqa: E731
    widths = {}
    for name, rule in (("A", spread), ("B", by_content)):
        write_part(tmp_path / name, "trials", "r1", _design(rule))
        row = connect(tmp_path / name).execute(
            "SELECT shape_bias, boot_low, boot_high, boot2_low, boot2_high, n_texture_sources, n_content_sources "
            "FROM shape_bias_intervals").fetchone()
        assert row[0] == 0.25 and row[5:] == (8, 8)
        widths[name] = (row[2] - row[1], row[4] - row[3])
    assert widths["A"][0] == widths["B"][0] == 0.0  # one-way: every texture source is 2 shape / 6 texture
    assert widths["B"][1] > 0.5 and widths["B"][1] > 2 * widths["A"][1]


@needs_mvh
def test_published_trials_one_way_interval_is_the_views_and_the_crossed_one_is_wider(mvh):
    _, con, _ = mvh
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT i.observer, i.boot_low, i.boot_high, i.boot2_low, i.boot2_high, s.boot_low, s.boot_high "
        "FROM shape_bias_intervals AS i JOIN shape_bias AS s USING (observer, dataset) "
        "WHERE i.observer IN ('humans', 'mvh:resnet50')").fetchall()}
    for who, (lo, hi, lo2, hi2, s_lo, s_hi) in got.items():
        assert (lo, hi) == (s_lo, s_hi), who
        assert lo2 < lo and hi2 > hi, who
    # the independent recomputation (its own draws): resnet50 0.142-0.297, humans 0.940-0.974
    assert got["mvh:resnet50"][2:4] == pytest.approx((0.142, 0.297), abs=0.01)
    assert got["humans"][2:4] == pytest.approx((0.940, 0.974), abs=0.01)


@needs_mvh
def test_report_quotes_the_crossed_interval_and_shows_the_consistency_aggregates(mvh):
    from analysis.report import build_report

    store, _, _ = mvh
    html = build_report(store)
    table = html.split('id="shape-bias-table"', 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th[^>]*>(.*?)</th>", table)
    assert headers.index("bootstrap 95%") < headers.index("Wilson 95%") < headers.index("texture-source bootstrap 95%")
    consistency = html.split('id="error-consistency"', 1)[1].split("</section>", 1)[0]
    assert "Error consistency to the human subjects" in consistency and "0.331" in consistency
