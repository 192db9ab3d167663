-- Error-consistency aggregates as model-vs-human reports them (Geirhos et al., NeurIPS 2020 / 2021):
-- per observer (with its weights) and dataset, Cohen's kappa to the HUMAN SUBJECTS, itself excluded:
--   n_pairs, mean_kappa, sd_kappa (sample standard deviation), min_kappa, max_kappa
-- plus one row observer = 'humans': the mean over all pairs of distinct human subjects (the humans'
-- own consistency; n_pairs = subjects choose 2). Built on the error_consistency view (pairs a < b).
CREATE OR REPLACE VIEW error_consistency_summary AS
WITH both_ways AS (
    SELECT dataset, observer_a AS observer, weights_a AS weights, weights_sha256_a AS weights_sha256,
           observer_b AS other, kappa FROM error_consistency
    UNION ALL
    SELECT dataset, observer_b, weights_b, weights_sha256_b, observer_a, kappa FROM error_consistency
),
kinds AS (
    SELECT DISTINCT observer, observer_kind FROM trial_cues
),
to_humans AS (
    SELECT w.dataset, w.observer, k.observer_kind, w.weights, w.weights_sha256, w.kappa
    FROM both_ways AS w
    JOIN kinds AS o ON o.observer = w.other AND o.observer_kind = 'human'
    JOIN kinds AS k ON k.observer = w.observer
    WHERE w.observer <> w.other
),
human_pairs AS (
    SELECT e.dataset, e.kappa
    FROM error_consistency AS e
    JOIN kinds AS a ON a.observer = e.observer_a AND a.observer_kind = 'human'
    JOIN kinds AS b ON b.observer = e.observer_b AND b.observer_kind = 'human'
    WHERE e.observer_a <> e.observer_b
)
SELECT dataset, observer, observer_kind, min(weights) AS weights, weights_sha256,
       count(kappa) AS n_pairs, avg(kappa) AS mean_kappa, stddev_samp(kappa) AS sd_kappa,
       min(kappa) AS min_kappa, max(kappa) AS max_kappa
FROM to_humans
GROUP BY dataset, observer, observer_kind, weights_sha256
UNION ALL
SELECT dataset, 'humans', 'human', NULL, NULL, count(kappa), avg(kappa), stddev_samp(kappa), min(kappa), max(kappa)
FROM human_pairs
GROUP BY dataset
ORDER BY dataset, observer_kind, observer, weights;
