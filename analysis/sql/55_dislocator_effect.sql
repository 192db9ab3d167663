-- Which statistic makes a texture (issue 21): per generating condition (the stimuli's config_hash: statistic,
-- its options, style layers, style weight, backbone, every other transfer setting) x classifier (observer
-- with its weights_sha256) x dataset, how the classifier decides on the generated cue-conflict stimuli and
-- how far the stimuli are from their style and content on one yardstick (nstcore.reference_metrics, at the
-- backbone's default layers, whatever statistic generated them).
--   n_stimuli, n_conflict      stimuli judged; of them cue conflicts (shape category <> texture category)
--   shape_rate / texture_rate  shape (texture) decisions / n_conflict
--   shape_bias                 shape / (shape + texture) decisions (Geirhos et al., ICLR 2019)
--   boot_low / boot_high       95% cluster-bootstrap interval over texture sources (the style images;
--                              analysis.bootstrap: 1000 replicates, seed 0)
--   ref_*, content_*           means over the judged stimuli of the stimuli table's reference metrics
-- Trials are deduplicated as in shape_bias (trial_cues); a stimulus is the latest run's row per
-- (stimulus_id, config_hash).
CREATE OR REPLACE VIEW stimuli_latest AS
SELECT * FROM latest_by_run_time(stimuli, (stimulus_id, config_hash));

CREATE OR REPLACE VIEW dislocator_effect AS
WITH judged AS (
    SELECT s.config_hash, s.backbone, s.weights_tag AS backbone_weights, s.statistic, s.statistic_options,
           array_to_string(s.style_layers, ',') AS style_layers, s.style_weight, s.steps,
           t.observer AS classifier, t.weights_sha256, t.dataset, s.style_image_id AS texture_source,
           t.is_conflict, t.shape_hit, t.texture_hit,
           s.ref_gram, s.ref_mean_std, s.ref_sliced_wasserstein, s.content_error, s.content_ssim
    FROM trial_cues AS t JOIN stimuli_latest AS s ON t.image_id = s.stimulus_id
    WHERE t.observer_kind = 'model'
),
per_source AS (
    SELECT config_hash, classifier, weights_sha256, dataset, texture_source,
           count(*) FILTER (WHERE is_conflict AND shape_hit) AS s,
           count(*) FILTER (WHERE is_conflict AND texture_hit) AS t
    FROM judged GROUP BY ALL
),
boot AS (
    SELECT config_hash, classifier, weights_sha256, dataset,
           cluster_bootstrap(list(CAST(s AS BIGINT) ORDER BY texture_source),
                             list(CAST(t AS BIGINT) ORDER BY texture_source)) AS b,
           count(*) AS n_texture_sources
    FROM per_source GROUP BY ALL
),
cells AS (
    SELECT config_hash, classifier, weights_sha256, dataset,
           any_value(backbone) AS backbone, any_value(backbone_weights) AS backbone_weights,
           any_value(statistic) AS statistic, any_value(statistic_options) AS statistic_options,
           any_value(style_layers) AS style_layers, any_value(style_weight) AS style_weight,
           any_value(steps) AS steps,
           count(*) AS n_stimuli, count(*) FILTER (WHERE is_conflict) AS n_conflict,
           count(*) FILTER (WHERE is_conflict AND shape_hit) AS shape_hits,
           count(*) FILTER (WHERE is_conflict AND texture_hit) AS texture_hits,
           avg(ref_gram) AS ref_gram, avg(ref_mean_std) AS ref_mean_std,
           avg(ref_sliced_wasserstein) AS ref_sliced_wasserstein,
           avg(content_error) AS content_error, avg(content_ssim) AS content_ssim
    FROM judged GROUP BY config_hash, classifier, weights_sha256, dataset
)
SELECT c.statistic, c.statistic_options, c.style_layers, c.style_weight, c.backbone, c.backbone_weights,
       c.classifier, c.weights_sha256, c.dataset, c.n_stimuli, c.n_conflict, c.shape_hits, c.texture_hits,
       safe_ratio(c.shape_hits, c.n_conflict) AS shape_rate,
       safe_ratio(c.texture_hits, c.n_conflict) AS texture_rate,
       safe_ratio(c.shape_hits, c.shape_hits + c.texture_hits) AS shape_bias,
       b.b.low AS boot_low, b.b.high AS boot_high, b.n_texture_sources,
       c.ref_gram, c.ref_mean_std, c.ref_sliced_wasserstein, c.content_error, c.content_ssim,
       c.steps, c.config_hash
FROM cells AS c JOIN boot AS b USING (config_hash, classifier, weights_sha256, dataset)
ORDER BY c.classifier, c.statistic, c.style_layers, c.style_weight, c.config_hash;
