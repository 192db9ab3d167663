-- Per-category shape bias of POOLED observers (the human subjects as one decision maker, 'humans') in
-- both definitions researchers put side by side (issue 23):
--   pooled            the subjects' cue-conflict trials pooled: sum(shape hits) / sum(shape + texture hits)
--                     (texprobe's shape_bias_by_category summed over the subjects)
--   mean_of_subjects  each subject's own per-category shape bias, averaged over the subjects that made
--                     at least one shape or texture decision in that category: what model-vs-human's box
--                     plot shows for humans (Geirhos et al., NeurIPS 2021, Fig. 4)
-- n_subjects: subjects with a decision in the category; subjects_min / subjects_max: their range.
CREATE OR REPLACE VIEW shape_bias_by_category_subjects AS
WITH per_subject AS (
    SELECT observer, dataset, shape_category, shape_hits, texture_hits,
           safe_ratio(shape_hits, shape_hits + texture_hits) AS subject_bias
    FROM shape_bias_by_category
    WHERE observer_kind = 'human' AND observer <> 'humans' AND shape_category IS NOT NULL
)
SELECT 'humans' AS observer, 'human' AS observer_kind, dataset, shape_category,
       count(subject_bias) AS n_subjects,
       CAST(sum(shape_hits) AS BIGINT) AS shape_hits,
       CAST(sum(texture_hits) AS BIGINT) AS texture_hits,
       safe_ratio(sum(shape_hits), sum(shape_hits + texture_hits)) AS pooled,
       avg(subject_bias) AS mean_of_subjects,
       min(subject_bias) AS subjects_min,
       max(subject_bias) AS subjects_max
FROM per_subject
GROUP BY dataset, shape_category
ORDER BY dataset, shape_category;
