"""The runs' cue counts (table ``trial_counts``, issue 19 part 3): the shape-bias views read a settled run's
summary instead of its trials, and give exactly what they give from the trials (``connect(summaries=False)``)
in every state a store goes through: nothing recorded, recorded, a part added by a resume (stale until the
run settles again), a part damaged, a part quarantined; re-runs of the same images (the deduplicating
window) and imported human trials (CSV files, texture source from the image name) included. The counts are
also checked against a plain-Python count of the rows written."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from analysis.db import connect
from analysis.trial_counts import record_trial_counts, settle_trial_counts
from pipelines.commands_store import runs, store_check, store_compact
from pipelines.store import Store

RUN_A, RUN_B, RUN_H = "20250101T120000Z-aaaaaa", "20250102T120000Z-bbbbbb", "20250103T120000Z-hhhhhh"
VIEWS = ["SELECT * FROM shape_bias", "SELECT * FROM shape_bias_pooled", "SELECT * FROM shape_bias_by_category"]
SHAPES = ("cat", "dog", "bear", "boat")


def model_trial(i: int, *, observer: str = "m", dataset: str = "d1", twist: int = 0) -> dict:
    shape, texture = SHAPES[i % 4], SHAPES[(i // 4 + 1 + i) % 4]
    decision = (shape, texture, "knife", None)[(i + twist) % 4]
    return {"source": "texprobe", "observer": observer, "observer_kind": "model", "image": f"{shape}{i}-{texture}{i % 5}.png",
            "image_id": f"{i:064x}", "dataset": dataset, "shape_category": shape, "texture_category": texture,
            "conflict": shape != texture, "decision": decision, "weights_tag": "w", "weights_sha256": "a" * 64,
            "texture_source": f"{texture}{i % 5}"}


def human_trial(i: int, subject: int) -> dict:
    shape, texture = SHAPES[i % 4], SHAPES[(i + 1 + subject) % 4]
    return {"source": "model-vs-human", "source_file": f"subject-{subject:02d}.csv", "observer": f"subject-{subject:02d}",
            "observer_kind": "human", "image": f"0{i}_cue-conflict_s{subject:02d}_{shape}{i}-{texture}{i % 3}.png",
            "dataset": "cue-conflict", "shape_category": shape, "texture_category": texture, "conflict": shape != texture,
            "decision": (shape, shape, texture)[(i + subject) % 3], "session": 1, "trial": i}


def build(root: Path) -> Store:
    store = Store(str(root))
    for run, day in ((RUN_A, "01"), (RUN_B, "02"), (RUN_H, "03")):
        store.write_manifest(run, {"run_id": run, "command": "classify", "status": "finished",
                                   "started_at": f"2025-01-{day}T12:00:00Z", "config": {}})
    for u in range(4):  # run A: two observers, two datasets, four unit parts
        rows = [model_trial(10 * u + k) for k in range(10)] + [model_trial(10 * u + k, observer="n", dataset="d2")
                                                              for k in range(6)]
        store.write_table("trials", RUN_A, rows, part=f"unit-{u}")
    # one image's bytes under a second name in run A (analysis.duplicates): its group goes through the window
    twin = dict(model_trial(3, observer="n", dataset="d2"), image="cat3-dog3copy.png", decision="knife")
    store.write_table("trials", RUN_A, [twin], part="unit-twin")
    # run B re-classifies some of observer m's images with other decisions: the latest run counts for those
    store.write_table("trials", RUN_B, [model_trial(k, twist=1) for k in range(0, 40, 3)], part="unit-0")
    for subject in (1, 2):
        store.write_table("trials", RUN_H, [human_trial(i, subject) for i in range(12)], part=f"subject-{subject}")
    return store


def results(root: Path, *, summaries: bool) -> list[list]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con = connect(root, summaries=summaries)
    try:
        return [con.execute(q).fetchall() for q in VIEWS]
    finally:
        con.close()


def summarised(root: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con = connect(root)
    try:
        return con.execute("SELECT getvariable('__texprobe_summarised_runs')").fetchone()[0]
    finally:
        con.close()


def test_views_from_the_runs_counts_equal_the_views_from_the_trials_in_every_state(tmp_path):
    root = tmp_path / "store"
    store = build(root)
    unsummarised = results(root, summaries=False)
    assert summarised(root) == [] and results(root, summaries=True) == unsummarised

    from analysis.duplicates import record_duplicates

    assert record_duplicates(store, RUN_A) == 1
    unsummarised = results(root, summaries=False)
    for run in (RUN_A, RUN_B, RUN_H):
        assert record_trial_counts(store, run) > 0
    assert summarised(root) == [RUN_A, RUN_B, RUN_H]
    assert results(root, summaries=True) == unsummarised
    with connect(root) as con:
        assert con.execute("SELECT count(*) FROM trials_unsummarised").fetchone()[0] == 0
        # observer n (run A only): shape / texture hits counted by hand from the rows written
        rows = [model_trial(10 * u + k, observer="n", dataset="d2") for u in range(4) for k in range(6)]
        conflict = [r for r in rows if r["conflict"]]
        want = (sum(r["decision"] == r["shape_category"] for r in conflict),
                sum(r["decision"] == r["texture_category"] for r in conflict), len(conflict), len(rows))
        got = con.execute("SELECT shape_hits, texture_hits, n_conflict, n_trials FROM shape_bias "
                          "WHERE observer = 'n'").fetchone()
        assert got == want

    # a resume adds a unit to run A: its counts are stale until it settles again, the views see the new rows
    store.write_table("trials", RUN_A, [model_trial(100 + k, observer="n", dataset="d2") for k in range(8)],
                      part="unit-9")
    grown = results(root, summaries=False)
    assert grown != unsummarised
    assert summarised(root) == [RUN_B, RUN_H] and results(root, summaries=True) == grown
    listed: list[str] = []
    runs(store=str(root), echo=listed.append)  # `texprobe runs` says which run is counted from its trials
    assert [line.split()[0] for line in listed if "trial_counts stale" in line] == [RUN_A]
    record_trial_counts(store, RUN_A)
    assert summarised(root) == [RUN_A, RUN_B, RUN_H] and results(root, summaries=True) == grown

    # a part damaged after its run was counted: left out with a warning, and the run's counts with it
    part = root / "tables" / "trials" / f"run_id={RUN_A}" / "unit-1.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    damaged = results(root, summaries=False)
    assert damaged != grown
    assert summarised(root) == [RUN_B, RUN_H] and results(root, summaries=True) == damaged
    # quarantined: still not counted from the stale summary (compaction refuses the run, by design); counted
    # anew, the run is read from its summary again
    assert store_check(store=str(root), quarantine=True, echo=lambda _: None) == 0
    assert results(root, summaries=True) == results(root, summaries=False) == damaged
    assert store_compact(store=str(root), run_ids=[RUN_A], echo=lambda _: None) == 1
    record_trial_counts(store, RUN_A)
    assert RUN_A in summarised(root) and results(root, summaries=True) == damaged
    # `store compact` of a clean run settles it: compacted files, counts for them
    assert store_compact(store=str(root), run_ids=[RUN_B], echo=lambda _: None) == 0
    assert summarised(root) == [RUN_A, RUN_B, RUN_H] and results(root, summaries=True) == damaged


def test_a_run_that_settles_records_its_counts(ray_cluster, small_stimuli, tmp_path):
    """A real classify run (Ray, EfficientNet-Lite0): its settle task stores trial_counts for the parts it
    leaves, so the next query reads no trials for shape_bias; the numbers are those of the trials."""
    from pipelines.ops.classify import ClassifyConfig
    from pipelines.runner import run_operation

    root = tmp_path / "store"
    config = ClassifyConfig(inputs=(str(small_stimuli),), unit_size=3, batch_size=4)
    report = run_operation("classify", config, store=Store(str(root)), show_progress=False)
    assert report.status == "finished"
    assert summarised(root) == [report.run_id]
    assert results(root, summaries=True) == results(root, summaries=False)


def test_counts_that_cannot_be_recorded_warn_and_the_views_count_the_trials(tmp_path, monkeypatch):
    """Recording is an accelerator: where it fails (here: DuckDB cannot be reached), the settle step warns
    with the run and the cause, the run's rows stay, and the views count them from the trials."""
    import analysis.trial_counts as trial_counts

    root = tmp_path / "store"
    store = build(root)
    want = results(root, summaries=False)

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trial_counts, "count_trials", broken)
    with pytest.warns(UserWarning, match=f"run {RUN_A}: trial_counts not recorded \\(OSError: disk full\\)"):
        assert settle_trial_counts(store, RUN_A) is None
    assert summarised(root) == [] and results(root, summaries=True) == want
