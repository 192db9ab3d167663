-- Per-layer style statistics by backbone x weights x dataset x layer x normalization (Gatys et al. 2015:
-- the Gram of a layer as its texture descriptor): mean and standard deviation over images of each
-- summary statistic of layer_stats, layers in depth order (layer_index). Same identity rules as the
-- trials: one row per (backbone, weights_sha256, dataset, image_id, layer, normalization), from the most
-- recent run by manifest time (run_times).
CREATE OR REPLACE VIEW layer_stats_latest AS
SELECT * FROM latest_by_run_time(layer_stats, (backbone, weights_sha256, dataset, image_id, layer, normalization));

CREATE OR REPLACE VIEW layer_style_stats AS
SELECT
    backbone,
    min(weights_tag) AS weights_tag,
    weights_sha256,
    layer,
    min(layer_index) AS layer_index,
    dataset,
    normalization,
    any_value(channels) AS channels,
    count(*) AS n_images,
    avg(trace) AS trace_mean,              stddev_samp(trace) AS trace_std,
    avg(fro_norm) AS fro_norm_mean,        stddev_samp(fro_norm) AS fro_norm_std,
    avg(offdiag_energy) AS offdiag_energy_mean, stddev_samp(offdiag_energy) AS offdiag_energy_std,
    avg(effective_rank) AS effective_rank_mean, stddev_samp(effective_rank) AS effective_rank_std,
    avg(effective_rank / channels) AS effective_rank_frac_mean,
    avg(top_eig_share) AS top_eig_share_mean,   stddev_samp(top_eig_share) AS top_eig_share_std,
    avg(effective_rank_centred) AS effective_rank_centred_mean,
    stddev_samp(effective_rank_centred) AS effective_rank_centred_std,
    avg(top_eig_share_centred) AS top_eig_share_centred_mean,
    avg(mean_activation) AS mean_activation_mean, stddev_samp(mean_activation) AS mean_activation_std,
    avg(sparsity) AS sparsity_mean,        stddev_samp(sparsity) AS sparsity_std
FROM layer_stats_latest
GROUP BY backbone, weights_sha256, layer, dataset, normalization
ORDER BY backbone, weights_tag, weights_sha256, dataset, min(layer_index), layer;

-- The same statistics per texture category (which textures are "richer" at a layer).
CREATE OR REPLACE VIEW layer_style_stats_by_texture AS
SELECT
    backbone,
    min(weights_tag) AS weights_tag,
    weights_sha256,
    dataset,
    layer,
    texture_category,
    count(*) AS n_images,
    avg(effective_rank) AS effective_rank_mean,
    avg(offdiag_energy) AS offdiag_energy_mean,
    avg(fro_norm) AS fro_norm_mean,
    avg(sparsity) AS sparsity_mean
FROM layer_stats_latest
WHERE texture_category IS NOT NULL
GROUP BY backbone, weights_sha256, dataset, layer, normalization, texture_category
ORDER BY backbone, weights_tag, weights_sha256, dataset, min(layer_index), texture_category;
