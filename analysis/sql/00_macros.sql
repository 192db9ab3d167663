-- Canned views of texprobe, executed in file-name order by analysis.db.connect().
-- Numbering (a view may only use views of files with a smaller number):
--   00-09  helpers: macros, per-trial outcome views
--   10-19  shape bias (cue-conflict)             Geirhos et al., ICLR 2019
--   20-29  per-layer style statistics            (layer_stats, grams)
--   30-39  texture discriminability
--   40-49  reconstruction quality by layer       (reconstructions)
--   50-59  style transfer / stimuli, loss curves
--   90-99  report summaries built on the views above
--
-- Wilson (1927) score interval for k successes out of n, z = Phi^-1(0.975); NULL when n = 0.
-- Same formula as analysis.shape_bias.wilson_interval.
CREATE OR REPLACE MACRO wilson_low(k, n) AS
    CASE WHEN n > 0 THEN GREATEST(0.0,
        (CAST(k AS DOUBLE) / n + 1.959963984540054 ^ 2 / (2.0 * n)
         - 1.959963984540054 * sqrt((CAST(k AS DOUBLE) / n) * (1.0 - CAST(k AS DOUBLE) / n) / n
                                     + 1.959963984540054 ^ 2 / (4.0 * n * n)))
        / (1.0 + 1.959963984540054 ^ 2 / n)) END;

CREATE OR REPLACE MACRO wilson_high(k, n) AS
    CASE WHEN n > 0 THEN LEAST(1.0,
        (CAST(k AS DOUBLE) / n + 1.959963984540054 ^ 2 / (2.0 * n)
         + 1.959963984540054 * sqrt((CAST(k AS DOUBLE) / n) * (1.0 - CAST(k AS DOUBLE) / n) / n
                                     + 1.959963984540054 ^ 2 / (4.0 * n * n)))
        / (1.0 + 1.959963984540054 ^ 2 / n)) END;

-- a / b as DOUBLE, NULL when b = 0
CREATE OR REPLACE MACRO safe_ratio(a, b) AS
    CASE WHEN b > 0 THEN CAST(a AS DOUBLE) / b END;

-- The cue counts of a group of trials (an aggregate): all trials, cue-conflict ones, and the conflict
-- trials decided for the shape / the texture. A struct: unnest() it into the four columns.
CREATE OR REPLACE MACRO cue_counts(is_conflict, shape_hit, texture_hit) AS {
    'n_trials': count(*),
    'n_conflict': count(*) FILTER (WHERE is_conflict),
    'shape_hits': count(*) FILTER (WHERE is_conflict AND shape_hit),
    'texture_hits': count(*) FILTER (WHERE is_conflict AND texture_hit)};

-- Shape bias = shape hits / (shape hits + texture hits) with its 95% Wilson interval; unnest() into
-- shape_bias, ci_low, ci_high.
CREATE OR REPLACE MACRO shape_bias_ci(shape_hits, texture_hits) AS {
    'shape_bias': safe_ratio(shape_hits, shape_hits + texture_hits),
    'ci_low': wilson_low(shape_hits, shape_hits + texture_hits),
    'ci_high': wilson_high(shape_hits, shape_hits + texture_hits)};

-- The hits as fractions of the cue-conflict trials and of all trials (model-vs-human's denominator);
-- unnest() into frac_correct_shape, frac_correct_texture, frac_correct_shape_of_all, _texture_of_all.
CREATE OR REPLACE MACRO cue_fractions(shape_hits, texture_hits, n_conflict, n_trials) AS {
    'frac_correct_shape': safe_ratio(shape_hits, n_conflict),
    'frac_correct_texture': safe_ratio(texture_hits, n_conflict),
    'frac_correct_shape_of_all': safe_ratio(shape_hits, n_trials),
    'frac_correct_texture_of_all': safe_ratio(texture_hits, n_trials)};
