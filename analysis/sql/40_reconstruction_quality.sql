-- Reconstruction quality by layer (Mahendran & Vedaldi 2015; Gatys et al. 2016 Fig. 1): per backbone x
-- weights x dataset x kind x layer set, the mean normalised feature error, pixel MSE, PSNR, SSIM, and how
-- often the classifier still recognises the image's shape category in the reconstruction. Same identity
-- rules as the trials: one reconstruction per (backbone, weights_sha256, dataset, image_id, kind, layer),
-- from the most recent run by manifest time.
CREATE OR REPLACE VIEW reconstructions_latest AS
SELECT * FROM latest_by_run_time(reconstructions, (backbone, weights_sha256, dataset, image_id, kind, layer));

CREATE OR REPLACE VIEW reconstruction_quality AS
SELECT
    backbone,
    min(weights_tag) AS weights_tag,
    weights_sha256,
    dataset,
    kind,
    layer,
    max(layer_index) AS layer_index,
    any_value(len(layers)) AS n_layers,
    count(*) AS n,
    avg(feature_error) AS feature_error,
    avg(pixel_mse) AS pixel_mse,
    avg(psnr) AS psnr,
    avg(ssim) AS ssim,
    safe_ratio(count(*) FILTER (WHERE decision = shape_category), count(*) FILTER (WHERE shape_category IS NOT NULL)) AS shape_recognised
FROM reconstructions_latest
GROUP BY backbone, weights_sha256, dataset, kind, layer
ORDER BY backbone, weights_tag, weights_sha256, dataset, kind, max(layer_index), layer;
