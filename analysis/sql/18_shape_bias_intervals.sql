-- Shape-bias intervals over the stimulus design (issue 23), one row per observer x weights x dataset as in
-- shape_bias, plus the pooled 'humans' row:
--   boot_low / boot_high     one-way cluster bootstrap over texture sources (= shape_bias.boot_*)
--   boot2_low / boot2_high   crossed bootstrap over texture sources x content sources, x subjects for the
--                            pooled humans (analysis.crossed_bootstrap: Owen's pigeonhole bootstrap, 1000
--                            replicates, seed 0) - wider, and what a reader assumes "the interval" covers
--   ways                     the factors boot2 resamples
--   n_texture_sources, n_content_sources, n_subjects
-- The content source of a trial: '<shape><n>' of a Geirhos '<shape><n>-<texture><m>' name (prefixes of
-- the human experiment's file names allowed), else the image itself.
CREATE OR REPLACE MACRO content_source(image, image_key) AS coalesce(
    nullif(regexp_extract(lower(regexp_replace(image, '^.*/', '')),
           '^(?:\d+_[^_]+_[^_]+_[^_]+_[a-z]+_\d+_)?([a-z]+\d+)-[a-z]+\d+\.[a-z0-9]+$', 1), ''),
    'image:' || image_key);

CREATE OR REPLACE VIEW shape_bias_intervals AS
WITH cells AS (
    SELECT observer, observer_kind, min(weights_tag) AS weights, weights_sha256, dataset,
           cluster AS texture_source, content_source(image, image_key) AS content_source,
           count(*) FILTER (WHERE shape_hit) AS s, count(*) FILTER (WHERE texture_hit) AS t
    FROM trial_cues
    WHERE is_conflict
    GROUP BY observer, observer_kind, weights_sha256, dataset, texture_source, content_source
),
u AS (
    SELECT observer, observer_kind, weights, weights_sha256, dataset, texture_source, content_source,
           NULL::VARCHAR AS subject, s, t
    FROM cells
    UNION ALL
    SELECT 'humans', 'human', NULL, NULL, dataset, texture_source, content_source, observer, s, t
    FROM cells WHERE observer_kind = 'human'
),
per_texture AS (
    SELECT observer, weights_sha256, dataset, texture_source, sum(s) AS s, sum(t) AS t
    FROM u GROUP BY observer, weights_sha256, dataset, texture_source
),
one_way AS (
    SELECT observer, weights_sha256, dataset,
           cluster_bootstrap(list(CAST(s AS BIGINT) ORDER BY texture_source),
                             list(CAST(t AS BIGINT) ORDER BY texture_source)) AS b
    FROM per_texture GROUP BY observer, weights_sha256, dataset
),
two_way AS (
    SELECT observer, any_value(observer_kind) AS observer_kind, min(weights) AS weights, weights_sha256, dataset,
           CAST(sum(s) AS BIGINT) AS shape_hits, CAST(sum(t) AS BIGINT) AS texture_hits,
           count(DISTINCT texture_source) AS n_texture_sources,
           count(DISTINCT content_source) AS n_content_sources,
           count(DISTINCT subject) AS n_subjects,
           crossed_bootstrap(list(texture_source), list(content_source),
                             CASE WHEN observer = 'humans' THEN list(subject) END,
                             list(CAST(s AS BIGINT)), list(CAST(t AS BIGINT))) AS b2
    FROM u GROUP BY observer, weights_sha256, dataset
)
SELECT w.observer, w.observer_kind, w.weights, w.weights_sha256, w.dataset, w.shape_hits, w.texture_hits,
       safe_ratio(w.shape_hits, w.shape_hits + w.texture_hits) AS shape_bias,
       o.b.low AS boot_low, o.b.high AS boot_high,
       w.b2.low AS boot2_low, w.b2.high AS boot2_high,
       CASE WHEN w.observer = 'humans' THEN 'texture x content x subject' ELSE 'texture x content' END AS ways,
       w.n_texture_sources, w.n_content_sources, w.n_subjects
FROM two_way AS w
JOIN one_way AS o ON o.observer = w.observer AND o.weights_sha256 IS NOT DISTINCT FROM w.weights_sha256
                 AND o.dataset IS NOT DISTINCT FROM w.dataset
ORDER BY w.observer_kind, w.observer, w.weights, w.dataset;
