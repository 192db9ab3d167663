-- Identity and deduplication (ARCHITECTURE.md, issue 8 part 1). An observer is a model WITH its weights:
-- trials are told apart by (observer, weights_sha256, dataset, image_key), image_key = image_id (sha256
-- of the image bytes) or, for imported trials without one, the image name. Of several trials of one key
-- the most recent RUN BY MANIFEST TIME wins (runs.started_at; run_id only breaks ties and orders runs
-- without a manifest, which count as older than every run with one), then the later CSV file / session /
-- trial of an import.

-- One start time per run (the manifests).
CREATE OR REPLACE VIEW run_times AS
SELECT run_id, max(started_at) AS started_at FROM runs GROUP BY run_id;

-- The rows of table `tbl` (its own columns) from the most recent run by manifest time per `key`, a row
-- of key columns such as (backbone, layer); run_id breaks ties.
CREATE OR REPLACE MACRO latest_by_run_time(tbl, key) AS TABLE
SELECT * EXCLUDE (_rank) FROM (
    SELECT s.*, row_number() OVER (PARTITION BY key ORDER BY r.started_at DESC NULLS LAST, s.run_id DESC) AS _rank
    FROM query_table(tbl) AS s LEFT JOIN run_times AS r ON r.run_id = s.run_id
)
WHERE _rank = 1;

-- Whether a trial is a cue conflict (a texture cue of another category than the shape): the stored
-- `conflict` flag (the writers' contract: shape_category != texture_category), derived from the
-- categories where a part lacks it; NULL when neither tells.
CREATE OR REPLACE MACRO cue_conflict(conflict, shape_category, texture_category) AS
    coalesce(conflict, texture_category IS NOT NULL AND shape_category <> texture_category);

-- Narrow per-trial flags (the canned views read only these columns).
-- is_conflict: cue_conflict, false when unknown; shape_hit / texture_hit: the decision names that cue
-- (NULL decision = missing: neither).
-- cluster: the texture source of a cue-conflict trial (issue 9 part 4): the texture_source column, else
-- '<texture><m>' of a Geirhos '<shape><n>-<texture><m>' name, else the image (by name) itself. Two scans
-- split on texture_source: rows that have it (every own run) never read the image names, and the other scan
-- skips their row groups by the Parquet null counts (issue 19: 10 M trials, shape_bias 0.52 -> 0.43 s).
-- trial_flag_rows(tbl, by_name): the trials of view `tbl` without (true) or with (false) a texture_source.
CREATE OR REPLACE MACRO trial_flag_rows(tbl, by_name) AS TABLE
SELECT
    run_id, source_file, session, trial, observer, observer_kind, weights_tag, weights_sha256, dataset,
    coalesce(image_id, image) AS image_key, image_id, image, shape_category, texture_category, decision,
    coalesce(cue_conflict(conflict, shape_category, texture_category), false) AS is_conflict,
    coalesce(decision = shape_category, false) AS shape_hit,
    coalesce(decision = texture_category, false) AS texture_hit,
    CASE WHEN cue_conflict(conflict, shape_category, texture_category) THEN
        CASE WHEN NOT by_name THEN texture_source
             ELSE coalesce(nullif(regexp_extract(lower(regexp_replace(image, '^.*/', '')),
                                  '^(?:\d+_[^_]+_[^_]+_[^_]+_[a-z]+_\d+_)?[a-z]+\d+-([a-z]+\d+)\.[a-z0-9]+$', 1),
                                  ''), 'image:' || image) END END AS cluster
FROM query_table(tbl) WHERE (texture_source IS NULL) = by_name;

CREATE OR REPLACE VIEW trial_flags AS
SELECT * FROM trial_flag_rows('trials', false) UNION ALL SELECT * FROM trial_flag_rows('trials', true);

-- The same over the trials of the runs whose trial_counts are missing or stale (analysis.db).
CREATE OR REPLACE VIEW trial_flags_unsummarised AS
SELECT * FROM trial_flag_rows('trials_unsummarised', false)
UNION ALL SELECT * FROM trial_flag_rows('trials_unsummarised', true);

-- What analysis.trial_counts stores for a settled run: the cue counts per (run, CSV file, observer,
-- weights, dataset, texture source, shape category), the finest grain the shape-bias views aggregate.
CREATE OR REPLACE VIEW trial_count_rows AS
SELECT run_id, source_file, observer, observer_kind, min(weights_tag) AS weights_tag, weights_sha256, dataset,
       cluster, shape_category, unnest(cue_counts(is_conflict, shape_hit, texture_hit))
FROM trial_flags
GROUP BY run_id, source_file, observer, observer_kind, weights_sha256, dataset, cluster, shape_category;

-- Every trial with its outcome flags (no deduplication).
CREATE OR REPLACE VIEW trial_outcomes AS
SELECT
    t.*,
    coalesce(t.image_id, t.image) AS image_key,
    coalesce(cue_conflict(t.conflict, t.shape_category, t.texture_category), false) AS is_conflict,
    coalesce(t.decision = t.shape_category, false) AS shape_hit,
    coalesce(t.decision = t.texture_category, false) AS texture_hit,
    r.started_at AS run_started_at
FROM trials AS t
LEFT JOIN run_times AS r ON r.run_id = t.run_id;

-- One row per (observer, weights_sha256, dataset, image_key), all columns: the trial of the most recent
-- run by manifest time. Re-running a model, or importing the same human CSV twice (model-vs-human and
-- texture-vs-shape hold identical human trials), does not double-count.
CREATE OR REPLACE VIEW trial_outcomes_latest AS
SELECT * EXCLUDE (_rank)
FROM (
    SELECT
        o.*,
        row_number() OVER (
            PARTITION BY o.observer, o.weights_sha256, o.dataset, o.image_key
            ORDER BY o.run_started_at DESC NULLS LAST, o.run_id DESC, o.source_file DESC NULLS LAST,
                     o.session DESC NULLS LAST, o.trial DESC NULLS LAST, o.decision NULLS LAST
        ) AS _rank
    FROM trial_outcomes AS o
)
WHERE _rank = 1;

-- Deduplicated narrow trials (run_id, identity, image, categories, decision, flags, cluster), fast at
-- scale (issue 8 part 5): deduplication on narrow keys, and the window runs only for (observer,
-- weights_sha256, dataset) groups whose trials come from more than one (run, CSV file) or that a run's
-- duplicate_images rows name; any other group is taken as it is (its run wrote each image once). pooled = true pools the datasets: then the key is (observer, weights_sha256, image_key) and
-- dataset is NULL.
CREATE OR REPLACE MACRO keyed_rows(tbl, pooled) AS TABLE
SELECT * EXCLUDE (dataset), CASE WHEN pooled THEN NULL ELSE dataset END AS dataset,
       dataset AS _dataset,
       hash(observer, weights_sha256, CASE WHEN pooled THEN NULL ELSE dataset END) AS _g,
       hash(run_id, source_file, dataset) AS _h
FROM query_table(tbl);

CREATE OR REPLACE MACRO keyed_trials(pooled) AS TABLE SELECT * FROM keyed_rows('trial_flags', pooled);

-- Cue counts at (_g, cluster) grain with the (run, CSV file) spread (_h0, _h1) that tells whether a group
-- needs deduplication: the settled runs' from their trial_counts (issue 19: the views then read thousands
-- of summary rows, not millions of trials), the other runs' from their trials.
CREATE OR REPLACE MACRO cluster_counts(pooled) AS TABLE
SELECT hash(observer, weights_sha256, CASE WHEN pooled THEN NULL ELSE dataset END) AS _g, cluster,
       any_value(observer) AS observer, any_value(observer_kind) AS observer_kind,
       any_value(weights_sha256) AS weights_sha256, any_value(CASE WHEN pooled THEN NULL ELSE dataset END) AS dataset,
       min(weights_tag) AS weights, sum(n_trials)::BIGINT AS n_trials, sum(n_conflict)::BIGINT AS n_conflict,
       sum(shape_hits)::BIGINT AS shape_hits, sum(texture_hits)::BIGINT AS texture_hits,
       min(hash(run_id, source_file, dataset)) AS _h0, max(hash(run_id, source_file, dataset)) AS _h1
FROM trial_counts WHERE list_contains(getvariable('__texprobe_summarised_runs'), run_id)
GROUP BY 1, cluster
UNION ALL
SELECT _g, cluster, any_value(observer), any_value(observer_kind), any_value(weights_sha256), any_value(dataset),
       min(weights_tag), unnest(cue_counts(is_conflict, shape_hit, texture_hit)), min(_h), max(_h)
FROM keyed_rows('trial_flags_unsummarised', pooled)
GROUP BY _g, cluster;

-- The same at (_g, observer_kind, shape_category) grain, datasets apart (shape_bias_by_category).
CREATE OR REPLACE MACRO category_counts() AS TABLE
SELECT hash(observer, weights_sha256, dataset) AS _g, observer_kind, shape_category,
       any_value(observer) AS observer, any_value(weights_sha256) AS weights_sha256, any_value(dataset) AS dataset,
       min(weights_tag) AS weights, sum(n_trials)::BIGINT AS n_trials, sum(n_conflict)::BIGINT AS n_conflict,
       sum(shape_hits)::BIGINT AS shape_hits, sum(texture_hits)::BIGINT AS texture_hits,
       min(hash(run_id, source_file, dataset)) AS _h0, max(hash(run_id, source_file, dataset)) AS _h1
FROM trial_counts WHERE list_contains(getvariable('__texprobe_summarised_runs'), run_id)
GROUP BY 1, observer_kind, shape_category
UNION ALL
SELECT _g, observer_kind, shape_category, any_value(observer), any_value(weights_sha256), any_value(dataset),
       min(weights_tag), unnest(cue_counts(is_conflict, shape_hit, texture_hit)), min(_h), max(_h)
FROM keyed_rows('trial_flags_unsummarised', false)
GROUP BY _g, observer_kind, shape_category;

-- The groups (_g) in which a run holds one image (image_id) under several names (issue 20 part 4): found
-- once per run when it settles (table duplicate_images, analysis/duplicates.py), not by every query.
CREATE OR REPLACE MACRO duplicate_groups(pooled) AS TABLE
SELECT DISTINCT hash(observer, weights_sha256, CASE WHEN pooled THEN NULL ELSE dataset END) AS _g
FROM duplicate_images;

-- The groups (_g) that need the deduplicating window: written by more than one (run, CSV file), or
-- holding one image under two names.
CREATE OR REPLACE MACRO multi_run_groups(pooled) AS TABLE
SELECT _g FROM keyed_trials(pooled) GROUP BY _g HAVING min(_h) <> max(_h)
UNION
SELECT _g FROM duplicate_groups(pooled);

-- Of the trials of the groups (_g) listed in table `groups` (a table or CTE name with a _g column), the
-- one that counts per (observer, weights_sha256, dataset, image_key): the window of the slow path.
CREATE OR REPLACE MACRO latest_keyed_trials(pooled, groups) AS TABLE
SELECT * EXCLUDE (_rank)
FROM (
    SELECT f.*, row_number() OVER (
        PARTITION BY f.observer, f.weights_sha256, f.dataset, f.image_key
        ORDER BY r.started_at DESC NULLS LAST, f.run_id DESC, f.source_file DESC NULLS LAST,
                 f.session DESC NULLS LAST, f.trial DESC NULLS LAST, f._dataset DESC NULLS LAST,
                 f.decision NULLS LAST, f.image) AS _rank
    FROM (SELECT * FROM keyed_trials(pooled) AS k SEMI JOIN query_table(groups) AS m ON k._g = m._g) AS f
    LEFT JOIN run_times AS r ON r.run_id = f.run_id
)
WHERE _rank = 1;

-- The slow path: the window over the trials of the multi-run groups only.
CREATE OR REPLACE MACRO dedup_slow(pooled) AS TABLE
WITH multi AS (SELECT _g FROM multi_run_groups(pooled))
SELECT run_id, observer, observer_kind, weights_tag, weights_sha256, dataset, image_key, image_id, image,
       shape_category, texture_category, decision, is_conflict, shape_hit, texture_hit, cluster
FROM latest_keyed_trials(pooled, multi);

CREATE OR REPLACE MACRO dedup_trials(pooled) AS TABLE
SELECT run_id, observer, observer_kind, weights_tag, weights_sha256, dataset, image_key, image_id, image,
       shape_category, texture_category, decision, is_conflict, shape_hit, texture_hit, cluster
FROM keyed_trials(pooled) AS k ANTI JOIN multi_run_groups(pooled) AS m ON k._g = m._g
UNION ALL
SELECT * FROM dedup_slow(pooled);

CREATE OR REPLACE VIEW trial_cues AS SELECT * FROM dedup_trials(false);
