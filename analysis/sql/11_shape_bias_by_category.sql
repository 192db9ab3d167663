-- Shape bias per observer x weights x dataset and shape category (Wilson interval; no bootstrap).
CREATE OR REPLACE VIEW shape_bias_by_category AS
-- Counts from the runs' trial_counts and the unsummarised trials (category_counts); the groups written by
-- several runs (or holding one image under two names) go through the deduplicating window as in shape_bias.
WITH per_category AS MATERIALIZED (
    SELECT _g, observer_kind, shape_category, any_value(observer) AS observer,
           any_value(weights_sha256) AS weights_sha256, any_value(dataset) AS dataset, min(weights) AS weights,
           sum(n_trials)::BIGINT AS n_trials, sum(n_conflict)::BIGINT AS n_conflict,
           sum(shape_hits)::BIGINT AS shape_hits, sum(texture_hits)::BIGINT AS texture_hits,
           min(_h0) AS _h0, max(_h1) AS _h1
    FROM category_counts()
    GROUP BY _g, observer_kind, shape_category
),
multi AS MATERIALIZED (
    SELECT _g FROM per_category GROUP BY _g HAVING min(_h0) <> max(_h1)
    UNION
    SELECT _g FROM duplicate_groups(false)
),
counts AS (
    SELECT observer, observer_kind, weights, weights_sha256, dataset, shape_category, n_trials, n_conflict,
           shape_hits, texture_hits
    FROM per_category AS p ANTI JOIN multi AS m ON p._g = m._g
    UNION ALL
    SELECT observer, observer_kind, min(weights_tag), weights_sha256, dataset, shape_category,
           unnest(cue_counts(is_conflict, shape_hit, texture_hit))
    FROM latest_keyed_trials(false, multi)
    GROUP BY observer, observer_kind, weights_sha256, dataset, shape_category
)
SELECT
    observer, observer_kind, weights, weights_sha256, dataset, shape_category, n_trials, n_conflict,
    shape_hits, texture_hits,
    unnest(shape_bias_ci(shape_hits, texture_hits)),
    unnest(cue_fractions(shape_hits, texture_hits, n_conflict, n_trials))
FROM counts
ORDER BY observer_kind, observer, weights, dataset, shape_category;
