"""The report's figures (analysis.plots), checked against independent references: the published
model-vs-human CSVs read here with the csv module, hand-computed Cohen's kappa (Geirhos et al. 2020),
hand-built clustered similarity matrices."""

from __future__ import annotations

import csv
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import report_store as rs
from shared_data import SHARED_DATA

MVH = SHARED_DATA / "model-vs-human" / "cue-conflict"
HUMAN_RED = (165 / 255, 30 / 255, 55 / 255)


@pytest.fixture(scope="module")
def mvh_store(tmp_path_factory) -> Path:
    if not MVH.is_dir():
        pytest.skip(f"shared data missing: {MVH}")
    store = tmp_path_factory.mktemp("mvh") / "store"
    rs.import_csvs(store, sorted(MVH.glob("*.csv")), "20260101T000000Z-aaaaaa", started_at="2026-01-01T00:00:00Z")
    return store


@pytest.fixture(scope="module")
def probe_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("probe") / "store"
    rs.probe_tables(store, "20260108T000000Z-bbbbbb", started_at="2026-01-08T00:00:00Z")
    return store


def _csv_hits() -> dict[str, dict[str, list[int]]]:
    """Per decision maker (humans pooled) and shape category: [shape hits, texture hits], from the raw CSVs."""
    tail = re.compile(r"([a-z]+)\d+-([a-z]+)\d+\.png$")
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for path in sorted(MVH.glob("*.csv")):
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                shape, texture = tail.search(row["imagename"]).groups()
                if shape == texture:
                    continue
                who = "humans" if row["subj"].startswith("subject-") else f"mvh:{row['subj']}"
                if row["object_response"] == shape:
                    hits[who][shape][0] += 1
                elif row["object_response"] == texture:
                    hits[who][shape][1] += 1
    return hits


@pytest.mark.shared_data("model-vs-human/cue-conflict")
def test_matrix_plot_positions_order_and_colours_match_the_published_trials(mvh_store):
    from analysis.db import connect
    from analysis.plots import PlotContext, shape_bias_matrix

    hits = _csv_hits()
    con = connect(mvh_store)
    fig = shape_bias_matrix.render(PlotContext(con=con, store=str(mvh_store)))
    ax = fig.axes[0]
    cats = [t.get_text() for t in ax.get_yticklabels()]
    human_sb = {c: s / (s + t) for c, (s, t) in hits["humans"].items()}
    # rows bottom to top: most shape-biased category (humans) first, as in Geirhos et al. 2019, Fig. 4
    assert cats == sorted(human_sb, key=lambda c: -human_sb[c])
    assert ax.get_xlabel() == "Fraction of 'texture' decisions"
    lines = {l.get_gid().split(":", 1)[1]: l for l in ax.get_lines() if (l.get_gid() or "").startswith("overall:")}
    points = {c.get_gid().split(":", 1)[1]: c for c in ax.collections if (c.get_gid() or "").startswith("categories:")}
    assert set(lines) == set(hits) == set(points)
    for who, per_cat in hits.items():
        s = sum(v[0] for v in per_cat.values())
        t = sum(v[1] for v in per_cat.values())
        assert lines[who].get_xdata()[0] == pytest.approx(t / (s + t), abs=1e-12)  # texture fraction
        xy = points[who].get_offsets()
        expected = [per_cat[c][1] / sum(per_cat[c]) if sum(per_cat[c]) else np.nan for c in cats]
        np.testing.assert_allclose(np.asarray(xy[:, 0], dtype=float), expected, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(xy[:, 1]), np.arange(len(cats)))
    # published: humans' shape bias on cue-conflict is about 0.96, ResNet-50's about 0.21 (Geirhos et al.)
    assert 1 - lines["humans"].get_xdata()[0] == pytest.approx(0.96, abs=0.01)
    assert 1 - lines["mvh:resnet50"].get_xdata()[0] == pytest.approx(0.21, abs=0.02)
    assert tuple(points["humans"].get_facecolor()[0][:3]) == pytest.approx(HUMAN_RED)
    assert tuple(lines["humans"].get_color()) == pytest.approx(HUMAN_RED)
    # a diamond marker path (matplotlib 'D' is a square rotated by 45 degrees: vertices on the axes)
    verts = points["humans"].get_paths()[0].vertices
    assert np.allclose(np.abs(verts[:4]).max(axis=1), np.abs(verts[:4]).sum(axis=1))
    # the mirrored top axis: fraction of shape decisions = 1 - x
    (top,) = ax.child_axes
    assert top.get_xlabel() == "Fraction of 'shape' decisions"
    assert top._functions[0](np.array([0.0, 0.25, 1.0])).tolist() == [1.0, 0.75, 0.0]


def test_error_consistency_kappa_is_cohens_kappa_hand_computed(tmp_path):
    """A right on images 1,2; B right on 1 only, over 4 shared images: c_obs = 3/4, p = (1/2, 1/4),
    c_exp = 1/8 + 3/8 = 1/2, kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2. C = A: kappa 1."""
    from analysis.db import connect
    from analysis.plots import PlotContext
    from analysis.plots.error_consistency import kappa_rows

    trials = []
    for obs, right in (("A", {1, 2}), ("B", {1}), ("C", {1, 2})):
        for i in range(1, 5):
            shape, texture = ("cat", "dog") if i % 2 else ("bear", "boat")
            trials.append(dict(run_id="20260101T000000Z-aaaaaa", source="texprobe", dataset="cue-conflict",
                               observer=obs, observer_kind="model", image=f"{shape}{i}-{texture}1.png",
                               shape_category=shape, texture_category=texture, conflict=True,
                               decision=shape if i in right else texture))
    rs.write_part(tmp_path, "trials", "20260101T000000Z-aaaaaa", trials)
    con = connect(tmp_path)
    got = {}
    for r in kappa_rows(PlotContext(con=con))[0]:  # the view lists unordered pairs once
        got[(r["observer_a"], r["observer_b"])] = got[(r["observer_b"], r["observer_a"])] = r["kappa"]
    assert got[("A", "B")] == pytest.approx(0.5)
    assert got[("A", "C")] == pytest.approx(1.0)
    assert got[("B", "C")] == pytest.approx(0.5)


def test_cluster_order_puts_each_block_of_coactivating_channels_together():
    from analysis.plots.gram_heatmaps import cluster_order, cosine, full_gram

    blocks = [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8, 10, 11]]  # interleaved channel ids
    sim = np.full((12, 12), 0.1)
    for b in blocks:
        sim[np.ix_(b, b)] = 0.9
    np.fill_diagonal(sim, 1.0)
    order = list(cluster_order(sim))
    assert sorted(order) == list(range(12))
    pos = {ch: k for k, ch in enumerate(order)}
    for b in blocks:
        where = sorted(pos[c] for c in b)
        assert where == list(range(where[0], where[0] + len(b))), (b, order)
    # upper triangle (row-major, diagonal included) back to the full symmetric matrix
    g = np.array([[4.0, 1.0, 2.0], [1.0, 9.0, 3.0], [2.0, 3.0, 16.0]])
    np.testing.assert_array_equal(full_gram(np.array([4, 1, 2, 9, 3, 16]), 3), g)
    np.testing.assert_allclose(cosine(g)[0, 1], 1.0 / (2 * 3))


def test_every_figure_renders_to_each_format(probe_store):
    from analysis.db import connect
    from analysis.plots import PLOTS, NoDataError, PlotContext, figure_bytes

    magic = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg", "pdf": b"%PDF"}
    ctx = PlotContext(con=connect(probe_store), store=str(probe_store))
    drawn = []
    for name, module in PLOTS.items():
        try:
            fig = module.render(ctx)
        except NoDataError:
            continue  # the shape-bias figures: this store has no trials
        for fmt, head in magic.items():
            assert head in figure_bytes(fig, fmt)[:400], (name, fmt)
        drawn.append(name)
    assert {"layer-stats", "texture-discriminability", "reconstructions", "loss-curves", "gram-heatmaps"} <= set(drawn)


def test_empty_store_every_figure_says_no_data(tmp_path):
    from analysis.db import connect
    from analysis.plots import PLOTS, NoDataError, PlotContext

    con = connect(tmp_path, read_only=False)
    for name, module in PLOTS.items():
        with pytest.raises(NoDataError):
            module.render(PlotContext(con=con, store=str(tmp_path)))


def test_plot_command_one_line_errors(probe_store, tmp_path):
    import typer

    from pipelines import commands_report

    app = typer.Typer()
    commands_report.register(app)
    run = CliRunner().invoke
    res = run(app, ["plot", "no-such-figure", "--out", str(tmp_path / "x.png"), "--store", str(probe_store)])
    assert res.exit_code == 2 and "unknown figure 'no-such-figure'" in res.output and "Traceback" not in res.output
    res = run(app, ["plot", "layer-stats", "--out", str(tmp_path / "x.jpg"), "--store", str(probe_store)])
    assert res.exit_code == 2 and ".png, .svg or .pdf" in res.output
    res = run(app, ["plot", "study-over-time", "--out", str(tmp_path / "x.png"), "--store", str(probe_store)])
    assert res.exit_code == 1 and res.output.startswith("no data:")
    res = run(app, ["plot", "layer-stats", "--out", str(tmp_path / "sub" / "ls.svg"), "--store", str(probe_store)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sub" / "ls.svg").read_bytes().lstrip().startswith(b"<?xml")
    shutil.rmtree(tmp_path / "sub")


@pytest.mark.shared_data("model-vs-human/cue-conflict")
def test_box_plot_medians_are_the_median_category_shape_bias_of_the_csvs(mvh_store):
    from analysis.db import connect
    from analysis.plots import PlotContext, shape_bias_box

    hits = _csv_hits()
    # the pooled definition for the humans here; model-vs-human's default (mean of subjects) is checked in
    # tests/test_mvh_parity.py
    fig = shape_bias_box.render(PlotContext(con=connect(mvh_store), store=str(mvh_store),
                                            options={"category_definition": "pooled"}))
    medians = {l.get_gid().split(":", 1)[1]: l for l in fig.axes[0].get_lines() if (l.get_gid() or "").startswith("median:")}
    assert set(medians) == set(hits)
    for who, per_cat in hits.items():
        expected = np.median([s / (s + t) for s, t in per_cat.values() if s + t])
        assert medians[who].get_ydata()[0] == pytest.approx(expected, abs=1e-12), who


def _trial(run: str, obs: str, kind: str, i: int, hit: str) -> dict:
    shape, texture = ("cat", "dog") if i % 2 else ("bear", "boat")
    return dict(run_id=run, source="texprobe", dataset="cue-conflict", observer=obs, observer_kind=kind,
                image=f"{shape}{i}-{texture}1.png", shape_category=shape, texture_category=texture, conflict=True,
                decision={"shape": shape, "texture": texture, "other": "knife"}[hit])


def test_study_over_time_latest_run_per_day_and_humans_pooled(tmp_path):
    """M: day 1 run a 3 shape / 1 texture, later run b the same day 1/1 (latest wins: 0.5); day 5: 2/0 (1.0).
    Humans on day 1: subject-01 1/1, subject-02 2/0 -> pooled 3/4. A run of another study is left out."""
    from analysis.db import connect
    from analysis.plots import PlotContext, study_over_time

    runs = {"20260101T080000Z-aaaaaa": ("2026-01-01T08:00:00Z", ["shape", "shape", "shape", "texture"]),
            "20260101T200000Z-bbbbbb": ("2026-01-01T20:00:00Z", ["shape", "texture", "other"]),
            "20260105T080000Z-cccccc": ("2026-01-05T08:00:00Z", ["shape", "shape"])}
    for run, (started, hits) in runs.items():
        rs.write_part(tmp_path, "trials", run, [_trial(run, "M", "model", i, h) for i, h in enumerate(hits)])
        rs.write_manifest(tmp_path, run, command="classify", started_at=started, config={"study": "weekly"})
    hrun = "20260101T090000Z-dddddd"
    rs.write_part(tmp_path, "trials", hrun, [_trial(hrun, "subject-01", "human", 0, "shape"),
                                             _trial(hrun, "subject-01", "human", 1, "texture"),
                                             _trial(hrun, "subject-02", "human", 0, "shape"),
                                             _trial(hrun, "subject-02", "human", 1, "shape")])
    rs.write_manifest(tmp_path, hrun, command="import-mvh", started_at="2026-01-01T09:00:00Z", config={"study": "weekly"})
    other = "20260103T080000Z-eeeeee"
    rs.write_part(tmp_path, "trials", other, [_trial(other, "M", "model", 0, "texture")])
    rs.write_manifest(tmp_path, other, command="classify", started_at="2026-01-03T08:00:00Z", config={"study": "other"})

    fig = study_over_time.render(PlotContext(con=connect(tmp_path), store=str(tmp_path), study="weekly"))
    got = {}
    for c in fig.axes[0].containers:
        line = c.lines[0]
        got[c.get_label()] = [(x.date().isoformat(), y) for x, y in zip(line.get_xdata(), line.get_ydata())]
    assert got["M"] == [("2026-01-01", pytest.approx(0.5)), ("2026-01-05", pytest.approx(1.0))]
    assert got["humans"] == [("2026-01-01", pytest.approx(0.75))]
    everything = study_over_time.render(PlotContext(con=connect(tmp_path), store=str(tmp_path)))
    dates = [x.date().isoformat() for c in everything.axes[0].containers if c.get_label() == "M"
             for x in c.lines[0].get_xdata()]
    assert dates == ["2026-01-01", "2026-01-03", "2026-01-05"]


def test_matrix_plot_falls_back_to_the_dataset_that_has_conflict_trials(tmp_path):
    """No 'cue-conflict' dataset in the store: the figure shows the one that has conflict trials."""
    from analysis.db import connect
    from analysis.plots import PlotContext, shape_bias_matrix

    run = "20260101T000000Z-aaaaaa"
    trials = [{**_trial(run, "M", "model", i, h), "dataset": "my-conflicts"}
              for i, h in enumerate(["shape", "texture", "texture", "texture"])]
    rs.write_part(tmp_path, "trials", run, trials)
    fig = shape_bias_matrix.render(PlotContext(con=connect(tmp_path), store=str(tmp_path)))
    (line,) = [l for l in fig.axes[0].get_lines() if l.get_gid() == "overall:M"]
    assert line.get_xdata()[0] == pytest.approx(0.75)
    if fig._suptitle is not None:  # views with a dataset column name it
        assert fig._suptitle.get_text() == "dataset: my-conflicts"


def test_dislocator_figure_bars_are_the_hand_counted_shape_biases(probe_store):
    """Issue 21: one bar per statistic and layer set, its height the shape bias of the 4 stimuli counted by
    hand (rs.SWEEP_SHAPE_HITS shape decisions, the rest texture), whiskers inside [0, 1] around it."""
    from analysis.db import connect
    from analysis.plots import PlotContext, get_plot

    fig = get_plot("dislocator-effect").render(PlotContext(con=connect(probe_store), store=str(probe_store)))
    (ax,) = fig.axes
    assert ax.get_title() == "toynet-clf"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1_1", "conv1_1…conv2_1 (2)"]
    for statistic in ("gram", "mean_std"):
        bars = sorted((p for p in ax.patches if p.get_gid() == f"bars:toynet-clf:{statistic}"), key=lambda p: p.get_x())
        expected = [rs.SWEEP_SHAPE_HITS[(statistic, layers)] / 4 for layers in ("conv1_1", "conv1_1,conv2_1")]
        assert [b.get_height() for b in bars] == pytest.approx(expected)


def test_gram_cluster_and_feature_map_figures_show_the_stored_rows(probe_store):
    """Issue 22 part 4: a cluster's row shows its visualisation where one of exactly its channels exists, says
    'not visualised' where none does, and the top patches of its channels; the feature-map figure draws the
    stored maps, strongest first."""
    from analysis.db import connect
    from analysis.plots import PlotContext, get_plot

    ctx = PlotContext(con=connect(probe_store), store=str(probe_store))
    fig = get_plot("gram-clusters").render(ctx)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["stage3 cluster 0\n2 ch, r=0.60", "stage3 cluster 1\n1 ch, r=1.00"]
    cluster0 = fig.axes[:2]
    assert cluster0[0].images and cluster0[0].get_xlabel() == "0.2 → 4"  # the channels:stage3:1,0 image
    assert not cluster0[1].images and cluster0[1].texts[0].get_text() == "not\nvisualised"
    assert sorted(ax.get_title().split()[1] for ax in fig.axes[2:4]) == ["0", "1"]  # its channels' patches
    maps = get_plot("feature-maps").render(ctx)
    assert [ax.get_title() for ax in maps.axes[1:]] == [f"ch {c}  mean {m:.2f}" for c, m in ((5, 4), (2, 3), (7, 2), (1, 1))]
