-- Dataset exemplars (issue 22 part 3): per backbone x weights_sha256 x dataset x layer x channel, the images
-- that activate the channel most (rank 1 = the highest maximum activation; rank_mean by mean activation), from the latest exemplars run by
-- manifest time per image (run_times; run_id breaks ties). Each unit stored only its own top images per
-- channel, which always contain the set's top (pipelines/ops/exemplars.py).
CREATE OR REPLACE VIEW exemplars_latest AS
SELECT * FROM latest_by_run_time(exemplars, (backbone, weights_sha256, dataset, image_id, layer, channel));

CREATE OR REPLACE VIEW channel_exemplars AS
SELECT backbone, weights_tag, weights_sha256, dataset, layer, layer_index, channel,
       row_number() OVER (PARTITION BY backbone, weights_sha256, dataset, layer, channel
                          ORDER BY value DESC, image_id) AS rank,
       row_number() OVER (PARTITION BY backbone, weights_sha256, dataset, layer, channel
                          ORDER BY mean DESC, image_id) AS rank_mean,
       image_id, image, value, mean, y, x, stride, height, width, input_height, input_width,
       box_left, box_top, box_right, box_bottom, path, run_id
FROM exemplars_latest
ORDER BY backbone, weights_sha256, dataset, layer_index, channel, rank;
