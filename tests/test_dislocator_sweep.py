"""Issue 21 part 2: the `[sweep]` study (statistic x layer set x style weight, generated and classified),
its spec errors, its incrementality (a statistic added runs only the new cell), and the `dislocator_effect`
view against hand-counted trials and an independent recomputation from the stored tables."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.bootstrap import cluster_bootstrap
from analysis.db import connect
from pipelines.cli import app
from pipelines.store import Store
from pipelines.studies.spec import SpecError, load_spec
from views_helpers import fetch_dicts, write_manifest, write_part

REPO = Path(__file__).resolve().parents[1]

SPEC = """\
[study]
name = "sweep-test"
store = "store"

[[datasets]]
name = "cc"
path = "{data}"

[[models]]
id = "vgg"
name = "vgg19"
weights = "random"

[[models]]
name = "efficientnet_lite0"

[sweep]
content = "cc"
backbone = "vgg"
classifiers = ["efficientnet_lite0"]
statistics = {statistics}
pairs = 3
seed = 1
[sweep.layers]
low = ["conv1_1"]
[sweep.settings]
size = 32
steps = 3
init = "noise"
"""


def _spec(tmp_path: Path, statistics: str = '["gram", "mean_std"]', replace: tuple[str, str] = ("", "")) -> Path:
    text = SPEC.format(data=REPO / "data" / "cue-conflict", statistics=statistics)
    if replace[0]:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("replace", "expected"), [
    (('statistics = ["gram", "mean_std"]', 'statistics = ["gram", "gramm"]'), "line 21, sweep.statistics: "),
    (('low = ["conv1_1"]', 'low = ["conv9_9"]'), "line 25, sweep.layers.low: "),
    (('classifiers = ["efficientnet_lite0"]', 'classifiers = ["resnet"]'), "line 20, sweep.classifiers: unknown model"),
    (("pairs = 3", "pairs = 0"), "line 22, sweep.pairs: must be a number of pairs"),
    (("steps = 3", "stepz = 3"), "line 28, sweep.settings.stepz: unknown setting"),
    (('content = "cc"', 'content = "nope"'), "line 18, sweep.content: unknown dataset 'nope'"),
    (("seed = 1", "seed = 1\nstyle_weights = {sliced_wasserstein = [1.0]}"),
     "sweep.style_weights.sliced_wasserstein: not one of the sweep's statistics"),
])
def test_sweep_spec_errors_name_key_path_and_line(tmp_path: Path, replace, expected):
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, replace=replace))
    assert expected in str(err.value)


def test_sweep_cells_and_per_statistic_weights(tmp_path: Path):
    spec = load_spec(_spec(tmp_path, replace=("seed = 1", "seed = 1\nstyle_weights = {mean_std = [10, 100]}")))
    cells = [(c.statistic, c.layer_set, c.style_weight) for c in spec.sweep.cells()]
    assert cells == [("gram", "low", 1.0), ("mean_std", "low", 10.0), ("mean_std", "low", 100.0)]
    assert spec.operations == ()


def _stimulus(sid: str, config_hash: str, statistic: str, style: str, ref_gram: float, **extra) -> dict:
    return {"stimulus_id": sid, "config_hash": config_hash, "statistic": statistic, "style_layers": ["conv1_1"],
            "style_weight": 1.0, "style_image_id": style, "backbone": "vgg19", "ref_gram": ref_gram,
            "content_ssim": 0.5, **extra}


def _trial(image_id: str, shape: str, texture: str, decision: str, **extra) -> dict:
    return {"observer": "netA", "weights_sha256": "w", "image": f"{image_id}.png", "image_id": image_id,
            "shape_category": shape, "texture_category": texture, "decision": decision, **extra}


def test_dislocator_effect_counts_by_hand(tmp_path: Path):
    """Two conditions, hand-counted: gram 4 stimuli (2 shape, 1 texture, 1 neither decision), mean_std 2
    stimuli (0 shape, 2 texture) plus a no-conflict stimulus; a re-run's trial of the same stimulus counts
    once (the later run), human trials and stimuli never classified are not counted."""
    store = tmp_path / "store"
    write_part(store, "stimuli", "gen", [
        _stimulus("g1", "h-gram", "gram", "s1", 0.1), _stimulus("g2", "h-gram", "gram", "s1", 0.3),
        _stimulus("g3", "h-gram", "gram", "s2", 0.2), _stimulus("g4", "h-gram", "gram", "s2", 0.2),
        _stimulus("m1", "h-ms", "mean_std", "s1", 1.0), _stimulus("m2", "h-ms", "mean_std", "s2", 3.0),
        _stimulus("m3", "h-ms", "mean_std", "s3", 5.0), _stimulus("never", "h-ms", "mean_std", "s3", 100.0),
    ])
    write_manifest(store, "gen", "2026-01-01T00:00:00+00:00", command="stylize")
    write_part(store, "trials", "old", [_trial("g1", "cat", "dog", "dog")])
    write_manifest(store, "old", "2026-01-01T00:00:00+00:00")
    write_part(store, "trials", "new", [
        _trial("g1", "cat", "dog", "cat"), _trial("g2", "cat", "dog", "cat"), _trial("g3", "cat", "dog", "dog"),
        _trial("g4", "cat", "dog", "car"), _trial("m1", "cat", "dog", "dog"), _trial("m2", "bear", "cat", "cat"),
        _trial("m3", "bear", "bear", "bear"),
        _trial("g1", "cat", "dog", "dog", observer="subject-01", observer_kind="human", weights_sha256=None),
    ])
    write_manifest(store, "new", "2026-02-01T00:00:00+00:00")
    rows = {r["statistic"]: r for r in fetch_dicts(connect(store), "SELECT * FROM dislocator_effect")}
    assert set(rows) == {"gram", "mean_std"}
    g, m = rows["gram"], rows["mean_std"]
    assert (g["n_stimuli"], g["n_conflict"], g["shape_hits"], g["texture_hits"]) == (4, 4, 2, 1)
    assert g["shape_rate"] == 0.5 and g["texture_rate"] == 0.25 and g["shape_bias"] == pytest.approx(2 / 3)
    assert g["ref_gram"] == pytest.approx(0.2) and g["classifier"] == "netA" and g["style_layers"] == "conv1_1"
    assert (m["n_stimuli"], m["n_conflict"], m["shape_hits"], m["texture_hits"]) == (3, 2, 0, 2)
    assert m["shape_bias"] == 0.0 and m["ref_gram"] == pytest.approx(3.0)
    # the interval resamples texture sources: gram's per-source (shape, texture) counts are s1 (2, 0), s2 (0, 1)
    expected = cluster_bootstrap([2, 0], [0, 1])
    assert (g["boot_low"], g["boot_high"]) == pytest.approx(tuple(expected))
    assert g["n_texture_sources"] == 2 and g["boot_low"] <= g["shape_bias"] <= g["boot_high"]


def _runs(store: Path) -> dict[str, str]:
    """run id -> command, from the store's manifests."""
    return {p.stem: json.loads(p.read_text())["command"] for p in (store / "runs").glob("*.json")}


@pytest.mark.ray
def test_sweep_runs_incrementally_and_its_view_matches_the_tables(ray_cluster, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    path = _spec(tmp_path)
    assert runner.invoke(app, ["study", "status", str(path)]).exit_code == 3
    store = tmp_path / "store"
    first = runner.invoke(app, ["study", "run", str(path)])
    assert first.exit_code == 0, first.output
    assert sorted(_runs(store).values()) == ["classify", "stylize", "stylize"]  # two cells and the classifier
    again = runner.invoke(app, ["study", "run", str(path)])
    assert again.exit_code == 0 and len(_runs(store)) == 3 and "up to date" in again.output

    grown = _spec(tmp_path, statistics='["gram", "mean_std", "sliced_wasserstein:8"]')
    status = runner.invoke(app, ["study", "status", str(grown), "--format", "json"])
    assert status.exit_code == 3
    tasks = json.loads(status.output)["tasks"]
    assert [(t["operation"], t["done"], t["missing"]) for t in tasks] == [
        ("stylize", 3, 0), ("stylize", 3, 0), ("stylize", 0, 3), ("classify", 6, 3)]
    before = _runs(store)
    third = runner.invoke(app, ["study", "run", str(grown)])
    assert third.exit_code == 0, third.output
    new = {run: command for run, command in _runs(store).items() if run not in before}
    assert sorted(new.values()) == ["classify", "stylize"]  # the new cell, then only its stimuli classified
    stimuli = Store(store).read_table("stimuli").to_pylist()  # the raw rows, not through the views
    # the new cell's stimuli that no earlier cell stored with the same bytes (3 steps, 8-bit PNG: a collision
    # happens now and then, and identical bytes are one stimulus, classified once)
    earlier = {s["stimulus_id"] for s in stimuli if s["run_id"] in before}
    unseen = {s["stimulus_id"] for s in stimuli if s["run_id"] in new} - earlier
    assert 1 <= len(unseen) <= 3
    for run, command in new.items():
        manifest = json.loads((store / "runs" / f"{run}.json").read_text())
        assert manifest["study"] == "sweep-test"
        if command == "stylize":
            assert manifest["counts"]["inputs"] == 3
            assert manifest["config"]["transfer"]["statistic"] == "sliced_wasserstein"
        else:
            assert manifest["counts"]["inputs"] == len(unseen)

    trials = Store(store).read_table("trials").to_pylist()
    # two cells may store the same bytes (3 steps, 8-bit PNG): each stimulus is classified once
    assert len(stimuli) == 9 and len(trials) == len({s["stimulus_id"] for s in stimuli}) and all(s["ref_sliced_wasserstein"] is not None for s in stimuli)
    by_id = {t["image_id"]: t for t in trials}
    expected: dict[str, dict] = defaultdict(lambda: {"n": 0, "shape": 0, "texture": 0, "gram": []})
    for s in stimuli:
        t, e = by_id[s["stimulus_id"]], expected[s["statistic"]]
        e["n"] += 1
        e["shape"] += t["decision"] == t["shape_category"]
        e["texture"] += t["decision"] == t["texture_category"]
        e["gram"].append(s["ref_gram"])
    rows = fetch_dicts(connect(store), "SELECT * FROM dislocator_effect")
    assert sorted(r["statistic"] for r in rows) == ["gram", "mean_std", "sliced_wasserstein"]
    for r in rows:
        e = expected[r["statistic"]]
        assert (r["n_stimuli"], r["n_conflict"], r["shape_hits"], r["texture_hits"]) == (e["n"], e["n"], e["shape"],
                                                                                      e["texture"])
        assert r["ref_gram"] == pytest.approx(sum(e["gram"]) / len(e["gram"]))
        assert r["dataset"] == "sweep:sweep-test" and r["classifier"] == "efficientnet_lite0"


def test_a_sweep_without_conflicting_pairs_is_one_line(tmp_path: Path):
    import shutil

    only_cats = tmp_path / "cats"
    only_cats.mkdir()
    shutil.copyfile(REPO / "data" / "cue-conflict" / "cat" / "cat4-cat3.png", only_cats / "cat4-cat3.png")
    path = _spec(tmp_path, replace=(str(REPO / "data" / "cue-conflict"), str(only_cats)))
    res = CliRunner().invoke(app, ["study", "status", str(path)])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "[sweep] cc x cc: no (content, style) pair to generate" in text
    assert 'or set pairs = "all"' in text and "Traceback" not in res.output
