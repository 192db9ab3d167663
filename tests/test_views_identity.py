"""Issue 8 "Why" findings on the view side, each failing on the old views: identity = observer x weights x
dataset, deduplication per (observer, weights_sha256, dataset, image_id) by manifest time, the same rules
for layer stats / discriminability / reconstructions, pooled humans."""

from __future__ import annotations

import pytest

from analysis import connect
from tests.views_helpers import fetch_dicts, write_manifest, write_part

CONFLICT = [("cat", "dog"), ("bear", "clock"), ("car", "oven"), ("boat", "knife")]


def _trial(i: int, decision: str | None, **extra) -> dict:
    shape, texture = CONFLICT[i % len(CONFLICT)]
    row = dict(observer="efficientnet_lite0", image=f"{shape}{i}-{texture}{i % 3}.png",
               image_id=f"sha-{i:04d}", shape_category=shape, texture_category=texture, decision=decision,
               weights_tag="imagenet", weights_sha256="w-imagenet")
    row.update(extra)
    return row


def test_weights_are_part_of_the_observer(tmp_path):
    # classify imgs, then classify imgs --weights random: both figures stay (old view: only the latest)
    write_part(tmp_path, "trials", "r1", [_trial(i, "cat" if i % 2 == 0 else None) for i in range(8)])
    write_part(tmp_path, "trials", "r2", [
        _trial(i, CONFLICT[i % 4][1], weights_tag="random", weights_sha256="w-random") for i in range(8)])
    write_manifest(tmp_path, "r1", "2026-01-01T00:00:00Z")
    write_manifest(tmp_path, "r2", "2026-01-02T00:00:00Z")
    rows = fetch_dicts(connect(tmp_path), "SELECT * FROM shape_bias ORDER BY weights")
    assert [(r["observer"], r["weights"], r["weights_sha256"], r["n_conflict"], r["shape_hits"], r["texture_hits"])
            for r in rows] == [("efficientnet_lite0", "imagenet", "w-imagenet", 8, 2, 0),
                               ("efficientnet_lite0", "random", "w-random", 8, 0, 8)]


def test_same_images_in_two_datasets_are_not_counted_twice(tmp_path):
    # 18 images in two datasets: shape_bias has one row per dataset (18 each); the pooled view counts 18
    rows = [_trial(i, "cat" if i < 3 else "dog", image_id=f"sha-{i}") for i in range(18)]
    for row in rows:
        row["shape_category"], row["texture_category"] = "cat", "dog"
    write_part(tmp_path, "trials", "r1", [dict(r, dataset="cue-conflict") for r in rows])
    write_part(tmp_path, "trials", "r2", [dict(r, dataset="my-set") for r in rows])
    con = connect(tmp_path)
    per_dataset = fetch_dicts(con, "SELECT dataset, n_conflict, shape_hits, ci_low, ci_high FROM shape_bias")
    assert sorted((r["dataset"], r["n_conflict"], r["shape_hits"]) for r in per_dataset) == [
        ("cue-conflict", 18, 3), ("my-set", 18, 3)]
    pooled = fetch_dicts(con, "SELECT * FROM shape_bias_pooled")
    assert len(pooled) == 1 and pooled[0]["n_conflict"] == 18 and pooled[0]["dataset"] is None
    # Wilson(3, 18) = 0.0584-0.3922 (not the falsely narrow Wilson(6, 36) of the doubled count)
    assert pooled[0]["ci_low"] == pytest.approx(0.05838, abs=1e-4)
    assert pooled[0]["ci_high"] == pytest.approx(0.39218, abs=1e-4)


def test_same_file_name_different_images_in_one_run_are_all_kept(tmp_path):
    # edges/cat/cat1.png and filled-silhouettes/cat/cat1.png in one run: 12 trials, not 6
    rows = []
    for folder in ("edges", "filled-silhouettes"):
        for i in range(6):
            rows.append(dict(observer="net", image=f"cat{i}.png", image_id=f"{folder}-{i}",
                             shape_category="cat", texture_category=None, decision="cat",
                             dataset="shapes", weights_sha256="w"))
    write_part(tmp_path, "trials", "r1", rows)
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM trial_outcomes_latest").fetchone() == (12,)
    assert con.execute("SELECT n, correct FROM shape_accuracy").fetchone() == (12, 12)


def test_latest_run_is_by_manifest_time_not_run_id_string(tmp_path):
    # a run id that sorts last ('2099...') but started first must not hide the later run
    write_part(tmp_path, "trials", "20990101T000000Z-abcdef", [_trial(0, "dog")])
    write_part(tmp_path, "trials", "20260102T000000Z-123456", [_trial(0, "cat")])
    write_manifest(tmp_path, "20990101T000000Z-abcdef", "2026-01-01T00:00:00Z")
    write_manifest(tmp_path, "20260102T000000Z-123456", "2026-01-02T00:00:00Z")
    con = connect(tmp_path)
    assert con.execute("SELECT shape_hits, texture_hits FROM shape_bias").fetchone() == (1, 0)
    assert con.execute("SELECT decision FROM trial_outcomes_latest").fetchone() == ("cat",)


def _layer_row(image: int, trace: float) -> dict:
    return dict(image_id=f"img{image}", backbone="efficientnet_lite0", weights_tag="imagenet",
                weights_sha256="w", dataset="cue-conflict", layer="stage1", layer_index=1,
                normalization="hw", channels=16, trace=trace, texture_category="dog")


def test_layer_style_stats_deduplicate_across_runs(tmp_path):
    # grams run again on 1 of 4 images: 4 images, the re-run's value replaces the old one
    write_part(tmp_path, "layer_stats", "r1", [_layer_row(i, t) for i, t in enumerate([500.0, 510.0, 530.0, 542.0])])
    write_part(tmp_path, "layer_stats", "r2", [_layer_row(3, 700.0)])
    write_manifest(tmp_path, "r1", "2026-01-01T00:00:00Z", "grams")
    write_manifest(tmp_path, "r2", "2026-01-02T00:00:00Z", "grams")
    con = connect(tmp_path)
    n, mean = con.execute("SELECT n_images, trace_mean FROM layer_style_stats").fetchone()
    assert n == 4 and mean == pytest.approx((500 + 510 + 530 + 700) / 4)
    assert con.execute("SELECT n_images FROM layer_style_stats_by_texture").fetchone() == (4,)


def test_reconstruction_quality_deduplicates_across_runs(tmp_path):
    base = dict(backbone="efficientnet_lite0", weights_tag="imagenet", weights_sha256="w", kind="content",
                layer="stage2", layer_index=2, dataset="cue-conflict")
    write_part(tmp_path, "reconstructions", "r1",
               [dict(base, image_id=f"img{i}", psnr=10.0 + i) for i in range(3)])
    write_part(tmp_path, "reconstructions", "r2", [dict(base, image_id="img0", psnr=20.0)])
    write_manifest(tmp_path, "r1", "2026-01-01T00:00:00Z", "reconstruct")
    write_manifest(tmp_path, "r2", "2026-01-02T00:00:00Z", "reconstruct")
    n, psnr = connect(tmp_path).execute("SELECT n, psnr FROM reconstruction_quality").fetchone()
    assert n == 3 and psnr == pytest.approx((20.0 + 11.0 + 12.0) / 3)


def test_discriminability_latest_run_by_manifest_time_and_weights(tmp_path):
    base = dict(backbone="vgg19", layer="relu1_1", layer_index=1, statistic="gram", grouping="texture_source",
                dataset="cue-conflict", permuted_accuracy=0.1)
    write_part(tmp_path, "texture_discriminability", "20990101T000000Z-aaaaaa",
               [dict(base, weights_tag="imagenet", weights_sha256="a", accuracy=0.3)])
    write_part(tmp_path, "texture_discriminability", "20260102T000000Z-bbbbbb",
               [dict(base, weights_tag="imagenet", weights_sha256="a", accuracy=0.5),
                dict(base, weights_tag="random", weights_sha256="r", accuracy=0.2)])
    write_manifest(tmp_path, "20990101T000000Z-aaaaaa", "2026-01-01T00:00:00Z", "grams")
    write_manifest(tmp_path, "20260102T000000Z-bbbbbb", "2026-01-02T00:00:00Z", "grams")
    rows = connect(tmp_path).sql(
        "SELECT weights_tag, accuracy FROM best_texture_layer ORDER BY weights_tag").fetchall()
    assert rows == [("imagenet", 0.5), ("random", 0.2)]


def test_imported_humans_get_a_pooled_row(tmp_path):
    rows = []
    for subject, decisions in (("subject-01", ["cat", "cat", "dog"]), ("subject-02", ["cat", None, "cat"])):
        for i, decision in enumerate(decisions):
            rows.append(dict(observer=subject, observer_kind="human", source="model-vs-human",
                             source_file=f"{subject}.csv", image=f"cat{i}-dog{i}.png", shape_category="cat",
                             texture_category="dog", decision=decision))
    write_part(tmp_path, "trials", "r1", rows)
    got = {r["observer"]: r for r in fetch_dicts(connect(tmp_path), "SELECT * FROM shape_bias")}
    assert set(got) == {"subject-01", "subject-02", "humans"}
    humans = got["humans"]
    assert (humans["observer_kind"], humans["n_observers"], humans["n_conflict"], humans["shape_hits"],
            humans["texture_hits"]) == ("human", 2, 6, 4, 1)
    assert humans["shape_bias"] == pytest.approx(4 / 5)
    assert got["subject-01"]["n_observers"] == 1


def test_identical_bytes_under_two_names_in_one_run_are_reported(tmp_path):
    """Issue 20: the same image file under two names (a copy in another folder) in ONE run: `run_duplicates`,
    `texprobe runs` and the report's run table say how many such images a run holds (both names stay in
    `trials`). Counting them once: the next test."""
    from analysis.db import connect
    from pipelines.commands_store import runs
    from views_helpers import write_manifest, write_part

    rows = [dict(observer="net", image=f"cat{i}-dog{i % 2}.png", image_id=f"{i:064x}", shape_category="cat",
                 texture_category="dog", decision="cat" if i < 3 else "dog") for i in range(8)]
    rows.append(dict(rows[0], image="copies/cat0-dog0.png"))  # the same bytes again
    write_part(tmp_path, "trials", "r1", rows)
    write_manifest(tmp_path, "r1", "2026-01-01T00:00:00Z")
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM trials").fetchone() == (9,)
    assert con.execute("SELECT n_trials, duplicate_images FROM run_duplicates").fetchone() == (9, 1)
    lines: list[str] = []
    runs(store=str(tmp_path), echo=lines.append)
    assert "duplicate_images=1" in lines[-1]


def test_identical_bytes_under_two_names_count_once_in_the_views(tmp_path):
    """Issue 20 part 4: one run holds the same bytes (image_id) under two names. When the run settles its
    duplicates are recorded (table duplicate_images, both names listed), and the shape-bias views count the
    image once per observer and run; the trials table keeps both names. Reference counted by hand: images
    0..7, shape hits 0,1,2 (3), texture hits 3..7 (5); the copy of image 0 (a shape hit) must not add a 4th."""
    from analysis.duplicates import record_duplicates
    from pipelines.store import Store

    rows = [dict(observer="net", image=f"cat{i}-dog{i % 2}.png", image_id=f"{i:064x}", shape_category="cat",
                 texture_category="dog", decision="cat" if i < 3 else "dog") for i in range(8)]
    rows.append(dict(rows[0], image="copies/cat0-dog0.png"))
    write_part(tmp_path, "trials", "r1", rows)
    write_manifest(tmp_path, "r1", "2026-01-01T00:00:00Z")
    assert connect(tmp_path).execute("SELECT shape_hits FROM shape_bias").fetchone() == (4,)  # before: twice
    assert record_duplicates(Store(str(tmp_path)), "r1") == 1
    con = connect(tmp_path)
    assert con.execute("SELECT n_trials, images FROM duplicate_images").fetchone() == (
        2, ["cat0-dog0.png", "copies/cat0-dog0.png"])
    for view in ("shape_bias", "shape_bias_pooled"):
        assert con.execute(f"SELECT shape_hits, texture_hits, n_conflict FROM {view}").fetchone() == (3, 5, 8)
    assert con.execute("SELECT count(*) FROM trial_cues").fetchone() == (8,)
    assert con.execute("SELECT count(*) FROM trials").fetchone() == (9,)
