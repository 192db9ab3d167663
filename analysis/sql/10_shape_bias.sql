-- Shape bias (Geirhos et al., ICLR 2019): shape hits / (shape hits + texture hits) over cue-conflict
-- trials, one row per observer x weights x dataset, each image counted once (dedup_trials). Imported
-- human subjects also get one pooled row, observer 'humans' (n_observers = the subjects pooled).
--   ci_low / ci_high     95% Wilson (1927) interval: assumes independent trials (too narrow here)
--   boot_low / boot_high 95% cluster-bootstrap percentile interval over texture sources (n_clusters
--                        clusters; analysis.bootstrap: 1000 replicates, seed 0) - the one to quote
--   frac_correct_shape / _texture          hits / n_conflict (cue-conflict trials)
--   frac_correct_shape_of_all / _texture   hits / n_trials (ALL trials of the observer in the dataset,
--                                          model-vs-human's denominator)
CREATE OR REPLACE MACRO shape_bias_rows(pooled) AS TABLE
WITH per_cluster AS MATERIALIZED (
    -- (group, cluster) grain from the runs' trial_counts and one pass over the unsummarised trials; _h0/_h1
    -- tell whether a group needs deduplication
    SELECT _g, cluster, any_value(observer) AS observer, any_value(observer_kind) AS observer_kind,
           any_value(weights_sha256) AS weights_sha256, any_value(dataset) AS dataset,
           min(weights) AS weights, sum(n_trials)::BIGINT AS n_trials, sum(n_conflict)::BIGINT AS n_conflict,
           sum(shape_hits)::BIGINT AS shape_hits, sum(texture_hits)::BIGINT AS texture_hits,
           min(_h0) AS _h0, max(_h1) AS _h1
    FROM cluster_counts(pooled)
    GROUP BY _g, cluster  -- _g = hash(observer, weights_sha256, dataset): narrow key
),
multi AS MATERIALIZED (
    SELECT _g FROM per_cluster GROUP BY _g HAVING min(_h0) <> max(_h1)
    UNION
    SELECT _g FROM duplicate_groups(pooled)  -- one image under two names in a run (issue 20 part 4)
),
c AS (
    SELECT observer, observer_kind, weights_sha256, dataset, cluster, weights, n_trials, n_conflict,
           shape_hits, texture_hits
    FROM per_cluster AS p ANTI JOIN multi AS m ON p._g = m._g
    UNION ALL
    SELECT observer, observer_kind, weights_sha256, dataset, cluster,
           min(weights_tag), unnest(cue_counts(is_conflict, shape_hit, texture_hit))
    FROM latest_keyed_trials(pooled, multi)  -- the slow path, only for the groups in multi
    GROUP BY observer, observer_kind, weights_sha256, dataset, cluster
),
humans AS (
    SELECT 'humans' AS observer, 'human' AS observer_kind, NULL::VARCHAR AS weights_sha256, dataset, cluster,
           NULL::VARCHAR AS weights, sum(n_trials) AS n_trials, sum(n_conflict) AS n_conflict,
           sum(shape_hits) AS shape_hits, sum(texture_hits) AS texture_hits
    FROM c WHERE observer_kind = 'human'
    GROUP BY dataset, cluster
),
n_humans AS (
    SELECT dataset, count(DISTINCT observer) AS n_observers FROM c WHERE observer_kind = 'human' GROUP BY dataset
),
u AS (
    SELECT *, 1 AS n_observers FROM c
    UNION ALL BY NAME
    SELECT h.*, n.n_observers FROM humans AS h JOIN n_humans AS n ON h.dataset IS NOT DISTINCT FROM n.dataset
),
r AS (
    SELECT observer, observer_kind, min(weights) AS weights, weights_sha256, dataset,
           any_value(n_observers) AS n_observers,
           CAST(sum(n_trials) AS BIGINT) AS n_trials,
           CAST(sum(n_conflict) AS BIGINT) AS n_conflict,
           CAST(sum(shape_hits) AS BIGINT) AS shape_hits,
           CAST(sum(texture_hits) AS BIGINT) AS texture_hits,
           count(cluster) AS n_clusters,
           list(CAST(shape_hits AS BIGINT) ORDER BY cluster) FILTER (WHERE cluster IS NOT NULL) AS _s,
           list(CAST(texture_hits AS BIGINT) ORDER BY cluster) FILTER (WHERE cluster IS NOT NULL) AS _t
    FROM u
    GROUP BY observer, observer_kind, weights_sha256, dataset
)
SELECT
    observer, observer_kind, weights, weights_sha256, dataset, n_observers, n_trials, n_conflict,
    shape_hits, texture_hits,
    unnest(shape_bias_ci(shape_hits, texture_hits)),
    n_clusters,
    _boot.low AS boot_low,
    _boot.high AS boot_high,
    unnest(cue_fractions(shape_hits, texture_hits, n_conflict, n_trials))
FROM (SELECT *, cluster_bootstrap(_s, _t) AS _boot FROM r);

CREATE OR REPLACE VIEW shape_bias AS
SELECT * FROM shape_bias_rows(false)
ORDER BY observer_kind, observer, weights, weights_sha256, dataset;

-- The same per observer x weights with the datasets pooled, each image (image_id) counted once even
-- when it is in several datasets; dataset is NULL.
CREATE OR REPLACE VIEW shape_bias_pooled AS
SELECT * FROM shape_bias_rows(true)
ORDER BY observer_kind, observer, weights, weights_sha256;
