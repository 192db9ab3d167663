-- Shape bias per run and observer x weights x dataset, without deduplication across runs (compare
-- re-runs). Within one run each (observer, weights_sha256, dataset, image_key) still counts once.
CREATE OR REPLACE VIEW shape_bias_by_run AS
WITH per_run AS (
    SELECT * EXCLUDE (_rank)
    FROM (
        SELECT f.*, row_number() OVER (
            PARTITION BY f.run_id, f.observer, f.weights_sha256, f.dataset, f.image_key
            ORDER BY f.source_file DESC NULLS LAST, f.session DESC NULLS LAST, f.trial DESC NULLS LAST,
                     f.decision NULLS LAST) AS _rank
        FROM trial_flags AS f
    )
    WHERE _rank = 1
),
counts AS (
    SELECT run_id, observer, observer_kind, min(weights_tag) AS weights, weights_sha256, dataset,
           unnest(cue_counts(is_conflict, shape_hit, texture_hit))
    FROM per_run
    GROUP BY run_id, observer, observer_kind, weights_sha256, dataset
)
SELECT
    c.run_id, observer, observer_kind, weights, weights_sha256, dataset, n_trials, n_conflict,
    shape_hits, texture_hits,
    unnest(shape_bias_ci(shape_hits, texture_hits)),
    unnest(cue_fractions(shape_hits, texture_hits, n_conflict, n_trials))
FROM counts AS c LEFT JOIN run_times AS r ON r.run_id = c.run_id
ORDER BY r.started_at NULLS FIRST, c.run_id, observer_kind, observer, weights, dataset;

-- Per run: its trials and how many of them repeat an image already in the run for the same observer
-- (identical bytes under two names; image_id = sha256 of the bytes), shown by `texprobe runs` and the
-- report.
CREATE OR REPLACE VIEW run_duplicates AS
SELECT run_id, count(*) AS n_trials,
       count(*) - count(DISTINCT (observer, weights_sha256, dataset, image_id)) AS duplicate_images
FROM trials
WHERE image_id IS NOT NULL
GROUP BY run_id;
