"""Cluster bootstrap over texture sources (issue 9 part 4) and the README's Wilson figure (issue 13 part 5)."""

from __future__ import annotations

import math

import pytest

from analysis import connect, wilson_interval
from analysis.bootstrap import cluster_bootstrap
from tests.views_helpers import write_part


def test_one_trial_per_cluster_matches_the_binomial_interval():
    # independent trials: the bootstrap percentile interval approaches p -/+ 1.96 sqrt(p(1-p)/n)
    n, k = 800, 200
    low, high = cluster_bootstrap([1] * k + [0] * (n - k), [0] * k + [1] * (n - k), n_boot=4000, seed=3)
    half = 1.959963984540054 * math.sqrt(0.25 * 0.75 / n)
    assert low == pytest.approx(0.25 - half, abs=0.006) and high == pytest.approx(0.25 + half, abs=0.006)


def test_clustered_trials_widen_the_interval_and_the_seed_is_fixed():
    # 20 texture sources of 10 trials each, the sources disagree: wider than Wilson on 200 trials
    shape = [10 if i % 4 == 0 else 1 for i in range(20)]
    texture = [10 - s for s in shape]
    low, high = cluster_bootstrap(shape, texture)
    k = sum(shape)
    w_low, w_high = wilson_interval(k, 200)
    assert high - low > 1.5 * (w_high - w_low)
    assert cluster_bootstrap(shape, texture) == (low, high)
    assert cluster_bootstrap([], []) == (None, None) and cluster_bootstrap([0, 0], [0, 0]) == (None, None)


def test_view_uses_texture_sources_as_clusters(tmp_path):
    # 3 texture sources (dog1, dog2, dog3): n_clusters 3 whatever the number of trials
    rows = [dict(observer="net", image=f"cat{i}-dog{i % 3 + 1}.png", image_id=f"i{i}", shape_category="cat",
                 texture_category="dog", decision="cat" if i % 3 == 0 else "dog") for i in range(30)]
    rows.append(dict(observer="net", image="cat99.png", image_id="x", shape_category="cat", texture_category=None,
                     decision="cat"))  # no cue conflict: no cluster
    write_part(tmp_path, "trials", "r1", rows)
    n_clusters, low, high = connect(tmp_path).execute(
        "SELECT n_clusters, boot_low, boot_high FROM shape_bias").fetchone()
    # clusters sorted by name: dog1 (10 shape / 0 texture), dog2 (0/10), dog3 (0/10)
    assert n_clusters == 3 and (low, high) == cluster_bootstrap([10, 0, 0], [0, 10, 10])
    assert 0.0 <= low < 1 / 3 < high <= 1.0


def test_readme_lite0_full_set_interval_is_wilson_197_of_823():
    # README: EfficientNet-Lite0 on the 1,280: 197 shape / 626 texture -> Wilson 0.2115-0.2697 = 0.211-0.270
    low, high = wilson_interval(197, 197 + 626)
    assert (round(low, 3), round(high, 3)) == (0.211, 0.270)


def test_cached_counts_and_direct_draws_agree(monkeypatch):
    import analysis.bootstrap as boot

    shape = [3, 0, 5, 1, 2, 7, 0, 4]
    texture = [1, 6, 0, 3, 2, 1, 5, 0]
    cached = boot.cluster_bootstrap(shape, texture)
    monkeypatch.setattr(boot, "_CACHE_LIMIT", 0)
    assert boot.cluster_bootstrap(shape, texture) == pytest.approx(cached, rel=1e-15)


def test_clusters_come_from_the_stored_texture_source_column(tmp_path):
    """Issue 23: trials whose texture source is stored (generated stimuli: names say nothing of it) are
    clustered by that column. 24 images named by hash, 4 texture sources of 6 images each; a view that
    fell back to one cluster per image would report 24 clusters and a narrower interval. Rows without a
    stored source are still clustered from a Geirhos name, in the same view."""
    sources = ["style-a", "style-b", "style-c", "style-d"]
    rows = [dict(observer="net", image=f"{i:08x}.png", image_id=f"s{i}", shape_category="cat",
                 texture_category="dog", texture_source=sources[i % 4],
                 decision="cat" if sources[i % 4] == "style-a" else ("dog" if i % 3 else "bear"))
            for i in range(24)]
    write_part(tmp_path, "trials", "r1", rows)
    n_clusters, shape, texture, low, high = connect(tmp_path).execute(
        "SELECT n_clusters, shape_hits, texture_hits, boot_low, boot_high FROM shape_bias").fetchone()
    # by hand, sources in name order: style-a 6 shape / 0 texture; b, c, d: texture unless i % 3 == 0
    per_source = {s: [0, 0] for s in sources}
    for r in rows:
        per_source[r["texture_source"]][0] += r["decision"] == "cat"
        per_source[r["texture_source"]][1] += r["decision"] == "dog"
    assert n_clusters == 4 and (shape, texture) == (6, sum(v[1] for v in per_source.values()))
    assert (low, high) == cluster_bootstrap([per_source[s][0] for s in sources], [per_source[s][1] for s in sources])
    # one more run's rows without a stored source: their cluster is parsed from the name
    write_part(tmp_path, "trials", "r2", [dict(observer="net2", image=f"cat{i}-dog{i % 2 + 1}.png", image_id=f"n{i}",
                                               shape_category="cat", texture_category="dog", decision="cat")
                                          for i in range(6)])
    got = dict(connect(tmp_path).execute("SELECT observer, n_clusters FROM shape_bias").fetchall())
    assert got == {"net": 4, "net2": 2}
