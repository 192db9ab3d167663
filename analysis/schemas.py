"""pyarrow schemas of every store table: the single source of truth for writers and readers.

Column contracts come from ``ARCHITECTURE.md`` (required columns) plus the extras documented per
table below. Writers (``pipelines``) build their tables with :data:`TABLES`; readers
(:mod:`analysis.db`) use them to expose an empty, correctly typed view for tables without files.

Categories are the 16 entry-level ImageNet categories of Geirhos et al., "ImageNet-trained CNNs are
biased towards texture; increasing shape bias improves accuracy and robustness", ICLR 2019.
"""

from __future__ import annotations

import pyarrow as pa

from analysis.errors import UnknownTableError

__all__ = ["CATEGORIES", "KEY_COLUMNS", "TABLES", "empty_table", "schema"]

#: The 16 Geirhos et al. (2019) categories, alphabetically. Duplicated from ``nstcore`` on purpose:
#: ``analysis`` must not import ``nstcore`` (it runs on machines without torch).
CATEGORIES: tuple[str, ...] = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
    "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
)

_STR = pa.string()
_F32_LIST = pa.list_(pa.float32())
_UTC_US = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


# Column groups that several tables share, in the order they stand in (a table's column order is part
# of its schema: parts written in it are read without union_by_name).
_RUN_UNIT = (_f("run_id", _STR, False), _f("unit_id", _STR))
_IMAGE = (_f("image_id", _STR, False), _f("image", _STR))
_WEIGHTS = (_f("weights_tag", _STR), _f("weights_sha256", _STR))
_LABELS = (_f("dataset", _STR), _f("shape_category", _STR), _f("texture_category", _STR))
_FEATURE_MAP = (
    _f("channels", pa.int32()),
    _f("height", pa.int32()),           # feature map size
    _f("width", pa.int32()),
    _f("input_height", pa.int32()),     # image size after the run's resize policy
    _f("input_width", pa.int32()),
)


TRIALS = pa.schema([
    _f("run_id", _STR, False),
    _f("source", _STR, False),          # 'texprobe' | 'model-vs-human' | 'texture-vs-shape'
    _f("source_file", _STR),            # imported CSV file name; NULL for own runs
    _f("dataset", _STR),                # 'cue-conflict', 'edges', 'filled-silhouettes', user-given
    _f("observer", _STR, False),
    _f("observer_kind", _STR, False),   # 'model' | 'human'
    _f("image", _STR, False),           # file name, e.g. 'cat1-airplane1.png'
    _f("image_id", _STR),               # sha256 of the image bytes; NULL for imports
    _f("shape_category", _STR),         # NULL for unlabelled images (no shape cue known)
    _f("texture_category", _STR),       # NULL where the image has no texture cue (edges, silhouettes)
    _f("texture_source", _STR),         # texture image of a stimulus ('<texture><m>' or style image id); NULL = from the name
    _f("conflict", pa.bool_(), False),  # shape_category != texture_category
    _f("decision", _STR),               # one of CATEGORIES, NULL = missing response
    _f("probs16", _F32_LIST),           # 16-class probabilities, order = CATEGORIES
    _f("top5", pa.list_(pa.int32())),   # ImageNet-1k indices, best first
    _f("shape_rank", pa.int32()),       # 1-based rank, in the full 1000-way ImageNet ranking, of the best-ranked class of the shape category
    _f("texture_rank", pa.int32()),
    *_WEIGHTS,
    _f("session", pa.int32()),
    _f("trial", pa.int32()),
    _f("rt", pa.float64()),             # response time in seconds (humans)
    _f("unit_id", _STR),
    _f("resize_policy", _STR),          # classifier input: 'model' | 'native' | 'shorter' | 'exact'
    _f("resize_kernel", _STR),          # interpolation used; NULL when the pixels were not resampled
    _f("cropped", pa.bool_()),          # centre-cropped to the input size
    _f("input_height", pa.int32()),     # the classifier's input size for this image
    _f("input_width", pa.int32()),
])

GRAMS = pa.schema([
    *_RUN_UNIT,
    *_IMAGE,
    _f("backbone", _STR, False),
    *_WEIGHTS,
    *_LABELS,
    _f("layer", _STR, False),
    _f("layer_index", pa.int32()),      # depth order of the layer in its backbone
    *_FEATURE_MAP,
    _f("normalization", _STR),          # 'hw' | 'chw' | 'none'
    _f("gram", _F32_LIST),              # upper triangle incl. diagonal, row-major
    _f("dtype", _STR),                  # precision kept: 'float32' | 'float16' | 'bfloat16' (values rounded to it,
                                        # stored as float32; NULL = float32, written before the option existed)
])

LAYER_STATS = pa.schema([
    *_RUN_UNIT,
    *_IMAGE,
    *_LABELS,
    _f("backbone", _STR, False),
    *_WEIGHTS,
    _f("layer", _STR, False),
    _f("layer_index", pa.int32()),      # depth order of the layer in its backbone
    _f("normalization", _STR),
    *_FEATURE_MAP,
    _f("trace", pa.float64()),
    _f("fro_norm", pa.float64()),
    _f("offdiag_energy", pa.float64()),
    _f("effective_rank", pa.float64()),          # of the uncentred Gram (Roy & Vetterli 2007)
    _f("top_eig_share", pa.float64()),           # of the uncentred Gram
    _f("effective_rank_centred", pa.float64()),  # of the centred channel covariance (dimensionality)
    _f("top_eig_share_centred", pa.float64()),
    _f("mean_activation", pa.float64()),
    _f("sparsity", pa.float64()),
])

STYLE_VECTORS = pa.schema([
    *_RUN_UNIT,
    *_IMAGE,
    _f("backbone", _STR, False),
    *_WEIGHTS,
    *_LABELS,
    _f("layer", _STR, False),
    _f("layer_index", pa.int32()),
    _f("statistic", _STR, False),       # '--statistic' spec, e.g. 'mean_std', 'moments:4'
    _f("vector", _F32_LIST),            # the statistic's target flattened (nstcore.stats.summary)
])

STIMULI = pa.schema([
    *_RUN_UNIT,
    _f("stimulus_id", _STR, False),     # sha256 of the generated PNG
    _f("content_image_id", _STR),
    _f("style_image_id", _STR),
    _f("content_image", _STR),
    _f("style_image", _STR),
    _f("image", _STR),                  # '<shape><n>-<texture><m>.png'
    _f("shape_category", _STR),
    _f("texture_category", _STR),
    _f("backbone", _STR),
    _f("weights_tag", _STR),
    _f("config_hash", _STR),
    _f("seed", pa.int64()),
    _f("steps", pa.int32()),
    _f("final_content_loss", pa.float64()),
    _f("final_style_loss", pa.float64()),   # losses of the STORED image
    _f("path", _STR),
    _f("optimized_content_loss", pa.float64()),  # of the optimiser's result (differs only for box=clip-at-end)
    _f("optimized_style_loss", pa.float64()),
    _f("box", _STR),
    _f("precision", _STR),
    # what generated it (issue 21: the dislocator sweep groups on these)
    _f("statistic", _STR),              # style statistic plug-in name, e.g. 'gram', 'sliced_wasserstein'
    _f("statistic_options", _STR),      # its options as JSON
    _f("style_layers", pa.list_(_STR)),
    _f("style_weight", pa.float64()),
    # one yardstick whatever the statistic (nstcore.reference_metrics), at the backbone's default layers
    _f("ref_layers", pa.list_(_STR)),   # the reference style layers
    _f("ref_gram", pa.float64()),       # relative Gram error to the style, mean over ref_layers
    _f("ref_mean_std", pa.float64()),   # relative mean/std error to the style
    _f("ref_sliced_wasserstein", pa.float64()),  # SW_2^2 to the style / the style's mean squared projection
    _f("content_error", pa.float64()),  # normalised feature error to the content at the content layer
    _f("content_ssim", pa.float64()),   # SSIM to the content image
])

RECONSTRUCTIONS = pa.schema([
    *_RUN_UNIT,
    *_IMAGE,
    _f("backbone", _STR),
    *_WEIGHTS,
    _f("kind", _STR, False),            # 'content' | 'texture'
    _f("layers", pa.list_(_STR)),
    _f("layer", _STR),                  # grouping label: the layer names joined by '+'
    _f("layer_index", pa.int32()),      # depth order of the (deepest) layer in its backbone
    _f("steps", pa.int32()),
    _f("seed", pa.int64()),
    _f("feature_error", pa.float64()),
    _f("pixel_mse", pa.float64()),
    _f("psnr", pa.float64()),
    _f("ssim", pa.float64()),
    _f("n_iter", pa.int32()),
    *_LABELS,
    _f("classifier", _STR),             # the classifier that judged the reconstruction
    _f("decision", _STR),               # its 16-way decision on the reconstruction
    _f("path", _STR),                   # images/<sha256>.png in the store
    _f("stored_loss", pa.float64()),    # objective at the stored image
    _f("optimized_loss", pa.float64()), # objective at the optimiser's result (differs only for box=clip-at-end)
    _f("box", _STR),                    # 'bounded' | 'clip-at-end' | 'clamp-each-step'
    _f("precision", _STR),              # 'float32' | 'float64'
    _f("statistic", _STR),              # texture: the statistic matched ('gram', 'mean_std', 'sliced_wasserstein:64'...);
                                        # feature_error is the Gram error whatever it is (NULL: content / before)
])

ERRORS = pa.schema([
    *_RUN_UNIT,
    _f("input", _STR),
    _f("stage", _STR),
    _f("error_type", _STR),
    _f("message", _STR),
    _f("created_at", _UTC_US),
])

LOSS_CURVES = pa.schema([
    *_RUN_UNIT,
    _f("item_id", _STR),
    _f("kind", _STR),                   # 'transfer' | 'content' | 'texture'
    _f("step", pa.int32()),
    _f("total_loss", pa.float64()),
    _f("content_loss", pa.float64()),
    _f("style_loss", pa.float64()),
])

TEXTURE_DISCRIMINABILITY = pa.schema([  # analysis.discriminability.discriminability_rows
    _f("run_id", _STR, False),
    _f("backbone", _STR),
    *_WEIGHTS,
    _f("dataset", _STR),
    _f("layer", _STR),
    _f("layer_index", pa.int32()),      # depth order of the layer in its backbone
    _f("statistic", _STR),
    _f("grouping", _STR),               # held out together: 'texture_source' (quote this) | 'image' (LOO)
    _f("n_images", pa.int32()),
    _f("n_groups", pa.int32()),         # texture sources (an image without a known source is its own)
    _f("n_categories", pa.int32()),
    _f("accuracy", pa.float64()),
    _f("chance", pa.float64()),           # 1 / n_categories
    _f("majority_rate", pa.float64()),
    _f("permuted_accuracy", pa.float64()),  # mean accuracy with labels permuted between texture sources
    _f("permuted_p95", pa.float64()),
    _f("p_value", pa.float64()),          # (1 + #permuted >= accuracy) / (1 + n_permutations)
    _f("n_permutations", pa.int32()),
    _f("permutation_unit", _STR),         # 'texture_source' | 'image' (when no source is known)
])

DUPLICATE_IMAGES = pa.schema([  # analysis.duplicates.find_duplicates, written when a run settles
    _f("run_id", _STR, False),
    _f("observer", _STR),
    _f("weights_sha256", _STR),
    _f("dataset", _STR),
    _f("image_id", _STR),               # the bytes that more than one of the run's trials hold
    _f("n_trials", pa.int64()),         # how many (>= 2): the views count one
    _f("images", pa.list_(_STR)),       # the names they came under (all kept in trials)
])

TRIAL_COUNTS = pa.schema([  # analysis.trial_counts: a settled run's cue counts, what the shape-bias views read
    _f("run_id", _STR, False),
    _f("parts_fingerprint", _STR),      # the trials parts counted (names, sizes, mtimes, rows): stale if they change
    _f("source_file", _STR),
    _f("observer", _STR),
    _f("observer_kind", _STR),
    _f("weights_tag", _STR),            # min(weights_tag) of the cell
    _f("weights_sha256", _STR),
    _f("dataset", _STR),
    _f("cluster", _STR),                # trial_flags' texture source of a cue-conflict trial (NULL otherwise)
    _f("shape_category", _STR),
    _f("n_trials", pa.int64()),
    _f("n_conflict", pa.int64()),
    _f("shape_hits", pa.int64()),
    _f("texture_hits", pa.int64()),
])

VISUALIZATIONS = pa.schema([  # pipelines.ops.visualize: one activation-maximisation image per objective
    *_RUN_UNIT,
    _f("backbone", _STR),
    *_WEIGHTS,
    _f("objective", _STR),              # the spec, e.g. 'channel:stage5:12'
    _f("kind", _STR),                   # channel | neuron | layer | direction | channels | channels-correlation
    _f("layer", _STR),
    _f("layer_index", pa.int32()),
    _f("channels", pa.list_(pa.int32())),  # the channels it reads (empty: all of the layer)
    _f("param", _STR),                  # 'fft' | 'pixel'
    _f("transforms", _STR),             # 'standard' | 'none'
    _f("greyscale", pa.bool_()),
    _f("precision", _STR),              # the network's: 'float32' | 'bfloat16' (--bf16 autocast)
    _f("size", pa.int32()),
    _f("steps", pa.int32()),
    _f("lr", pa.float64()),
    _f("seed", pa.int64()),
    _f("init_image_id", _STR),          # sha256 of the start image (deep dream on an input), else NULL
    _f("value_start", pa.float64()),    # the objective at the start image and at the result (no transform)
    _f("value_end", pa.float64()),
    _f("image_id", _STR),               # sha256 of the PNG
    _f("path", _STR),                   # images/<sha256>.png in the store
])

FEATURE_MAPS = pa.schema([  # pipelines.jobs.feature_maps: one image's strongest channel maps at a layer
    _f("run_id", _STR, False),
    *_IMAGE,                            # the input (image_id: sha256 of its file)
    _f("backbone", _STR),
    *_WEIGHTS,
    _f("layer", _STR),
    _f("layer_index", pa.int32()),
    _f("rank", pa.int32()),             # 1 = the channel with the highest mean activation
    _f("channel", pa.int32()),
    _f("mean", pa.float64()),           # its mean activation over positions
    _f("height", pa.int32()),           # the map's size
    _f("width", pa.int32()),
    _f("map", _F32_LIST),               # row-major height x width activations
    _f("input_path", _STR),             # images/<sha256>.png: the input as the network saw it (resized)
])

GRAM_CLUSTERS = pa.schema([  # analysis.gram_clusters: a layer's channels clustered by co-activation
    _f("run_id", _STR, False),
    _f("backbone", _STR),
    _f("weights_sha256", _STR),
    _f("layer", _STR),
    _f("dataset", _STR),                # the image set the Grams came from (NULL: every dataset)
    _f("method", _STR),
    _f("n_clusters", pa.int32()),
    _f("cluster", pa.int32()),          # 0 = the largest
    _f("channel", pa.int32()),
    _f("cluster_size", pa.int32()),
    _f("within_correlation", pa.float64()),  # mean normalised Gram entry among the cluster's channels
    _f("n_images", pa.int64()),
])

EXEMPLARS = pa.schema([  # pipelines.ops.exemplars: a unit's top images per layer and channel
    *_RUN_UNIT,
    *_IMAGE,
    _f("dataset", _STR),
    _f("backbone", _STR),
    *_WEIGHTS,
    _f("layer", _STR),
    _f("layer_index", pa.int32()),
    _f("channel", pa.int32()),
    _f("value", pa.float64()),          # the channel's maximum activation over positions
    _f("mean", pa.float64()),           # its mean activation over positions
    _f("y", pa.int32()),                # where the maximum is, in the feature map ...
    _f("x", pa.int32()),
    _f("height", pa.int32()),
    _f("width", pa.int32()),
    _f("stride", pa.int32()),           # ... and input pixels per feature-map step (the patch: y*stride, x*stride)
    _f("input_height", pa.int32()),
    _f("input_width", pa.int32()),
    _f("box_left", pa.int32()),         # the patch shown (input pixels, resized input): PATCH_STRIDES strides
    _f("box_top", pa.int32()),          # around the peak, clipped to the image
    _f("box_right", pa.int32()),
    _f("box_bottom", pa.int32()),
    _f("path", _STR),                   # the input file (the report crops the patch from it)
])

#: Every store table by name (``<store>/tables/<name>/run_id=<id>/*.parquet``).
TABLES: dict[str, pa.Schema] = {
    "trials": TRIALS,
    "grams": GRAMS,
    "layer_stats": LAYER_STATS,
    "style_vectors": STYLE_VECTORS,
    "stimuli": STIMULI,
    "reconstructions": RECONSTRUCTIONS,
    "errors": ERRORS,
    "loss_curves": LOSS_CURVES,
    "texture_discriminability": TEXTURE_DISCRIMINABILITY,
    "duplicate_images": DUPLICATE_IMAGES,
    "trial_counts": TRIAL_COUNTS,
    "visualizations": VISUALIZATIONS,
    "gram_clusters": GRAM_CLUSTERS,
    "feature_maps": FEATURE_MAPS,
    "exemplars": EXEMPLARS,
}

#: Tables a run writes as one part (``run``) when it settles, replaced whole when it settles again: never
#: compacted (a compacted copy beside the next replacement would count twice).
SETTLE_TABLES: tuple[str, ...] = ("duplicate_images", "trial_counts")

#: Columns every Parquet part of a table must carry (the views key, deduplicate and count on them): a
#: part without one (e.g. ``decision`` renamed) would read as NULLs that shadow older runs, so
#: :func:`analysis.parts.check_parts` rejects it by name. Other schema columns may be absent (older parts).
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "trials": ("run_id", "observer", "observer_kind", "image", "shape_category", "texture_category",
               "decision"),
    "grams": ("run_id", "image_id", "backbone", "layer", "gram"),
    "layer_stats": ("run_id", "image_id", "backbone", "layer"),
    "style_vectors": ("run_id", "image_id", "backbone", "layer", "statistic", "vector"),
    "stimuli": ("run_id", "stimulus_id"),
    "reconstructions": ("run_id", "image_id", "kind"),
    "errors": ("run_id",),
    "loss_curves": ("run_id",),
    "texture_discriminability": ("run_id", "backbone", "layer", "statistic", "accuracy"),
    "duplicate_images": ("run_id", "observer", "image_id", "n_trials"),
    "trial_counts": ("run_id", "parts_fingerprint", "observer", "n_trials", "shape_hits", "texture_hits"),
    "visualizations": ("run_id", "backbone", "objective", "value_end", "image_id"),
    "gram_clusters": ("run_id", "backbone", "layer", "cluster", "channel"),
    "feature_maps": ("run_id", "image_id", "layer", "channel", "map"),
    "exemplars": ("run_id", "image_id", "backbone", "layer", "channel", "value"),
}


def schema(name: str) -> pa.Schema:
    """The schema of store table ``name``; :class:`UnknownTableError` if there is none."""
    try:
        return TABLES[name]
    except KeyError:
        raise UnknownTableError(name, sorted(TABLES)) from None


def empty_table(name: str) -> pa.Table:
    """A zero-row table with the schema of store table ``name``."""
    return schema(name).empty_table()
