-- Shape bias per observer x weights x dataset and shape category (Wilson interval; no bootstrap).
CREATE OR REPLACE VIEW shape_bias_by_category AS
WITH counts AS (
    SELECT observer, observer_kind, min(weights_tag) AS weights, weights_sha256, dataset, shape_category,
           unnest(cue_counts(is_conflict, shape_hit, texture_hit))
    FROM trial_cues
    GROUP BY observer, observer_kind, weights_sha256, dataset, shape_category
)
SELECT
    observer, observer_kind, weights, weights_sha256, dataset, shape_category, n_trials, n_conflict,
    shape_hits, texture_hits,
    unnest(shape_bias_ci(shape_hits, texture_hits)),
    unnest(cue_fractions(shape_hits, texture_hits, n_conflict, n_trials))
FROM counts
ORDER BY observer_kind, observer, weights, dataset, shape_category;
