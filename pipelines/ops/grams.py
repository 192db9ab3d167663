"""``grams``: Gram matrices (``grams``, upper triangles, float32) and per-layer statistics
(``layer_stats``) of an image set; one forward pass per batch serves every layer. After the units,
the texture discriminability of every layer (``texture_discriminability``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipelines.ops.base import ImageOperation
from pipelines.ops.checks import check_weights, parse_layers

def _stat_columns() -> tuple[str, ...]:
    from nstcore.layer_stats import LAYER_STAT_KEYS

    return tuple(k for k in LAYER_STAT_KEYS if k not in ("channels", "height", "width"))


@dataclass(frozen=True)
class GramsConfig:
    inputs: tuple[str, ...]
    layers: tuple[str, ...]
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"
    seed: int = 0
    pooling: str = "max"
    size: int = 224
    resize_policy: str = "shorter side to size, aspect kept, no crop"
    normalization: str = "hw"
    keep_grams: bool = True
    gram_dtype: str = "float32"
    dataset: str | None = None
    batch_size: int = 16
    unit_size: int = 32
    bf16: bool = False
    channels_last: bool = False
    statistics: tuple[str, ...] = ()  # more style statistics summarised per image x layer (style_vectors)


def grams_config(*, backbone: str, layers: str | None, size: int, **options: Any) -> GramsConfig:
    """A GramsConfig from command-line style options: ``layers`` None / 'all' / 'a,b' resolved here;
    ``statistics`` checked (known, with a fixed-size summary)."""
    options["statistics"] = tuple(dict.fromkeys(options.get("statistics") or ()))
    for spec in options["statistics"]:
        _summary_statistic(spec)
    return GramsConfig(
        backbone=backbone, layers=tuple(parse_layers(backbone, layers, role="texture")), size=size,
        resize_policy="shorter side to size, aspect kept, no crop" if size else "native size", **options,
    )


class GramsOp(ImageOperation):
    name: ClassVar[str] = "grams"
    config_type: ClassVar[type] = GramsConfig
    tables: ClassVar[tuple[str, ...]] = ("grams", "style_vectors", "layer_stats")  # layer_stats last: completion

    def output_tables(self, config: GramsConfig) -> tuple[str, ...]:
        return tuple(t for t in self.tables if (t != "grams" or config.keep_grams)
                     and (t != "style_vectors" or config.statistics))

    def validate(self, config: GramsConfig) -> None:
        check_weights(config.backbone, config.weights, seed=config.seed)

    def setup(self, config: GramsConfig, device: str) -> None:
        from nstcore.backbones import create_backbone

        super().setup(config, device)
        model = create_backbone(config.backbone, weights=config.weights, seed=config.seed, pooling=config.pooling,
                                device=device)
        self.model = self.memory_format(model.trimmed(list(config.layers)))
        self.statistics = {spec: _summary_statistic(spec) for spec in config.statistics}

    def load(self, item: dict) -> Any:
        from pipelines.ops.imaging import load_shorter_side

        return load_shorter_side(item, self.config.size)

    def _features(self, x):
        return self.forward(x, lambda x: self.model(x, list(self.config.layers)))

    def compute(self, batch: list[tuple[dict, Any]]) -> dict[str, list[dict]]:
        import torch

        from nstcore.layer_stats import summarize_layer
        from nstcore.stats import gram_matrix, gram_upper_triangle

        cfg = self.config
        loaded = [value for _, value in batch]
        x = torch.stack([t for _, _, t in loaded])
        h, w = x.shape[2:]
        feats = self._features(x)
        grams, stats, vectors = [], [], []
        for layer in cfg.layers:
            f = feats[layer]
            g = gram_matrix(f, normalization=cfg.normalization)
            summary = summarize_layer(f, normalization=cfg.normalization, gram=g)
            tri = gram_upper_triangle(g).float().cpu() if cfg.keep_grams else None
            dtypes = [cfg.gram_dtype] * len(loaded)
            if tri is not None and cfg.gram_dtype != "float32":
                tri, dtypes = round_to_dtype(tri, cfg.gram_dtype)
            cols = {k: summary[k].tolist() for k in _stat_columns()}
            for b, (it, image_id, _) in enumerate(loaded):
                common = {
                    "image_id": image_id, "image": it.image, "dataset": it.dataset,
                    "shape_category": it.shape_category, "texture_category": it.texture_category,
                    "backbone": self.model.name, "weights_tag": self.model.weights_tag,
                    "weights_sha256": self.model.weights_sha256, "layer": layer,
                    "layer_index": self.model.layer_index(layer), "normalization": cfg.normalization,
                    "channels": int(f.shape[1]), "height": int(f.shape[2]), "width": int(f.shape[3]),
                    "input_height": int(h), "input_width": int(w),
                }
                stats.append({**common, **{k: v[b] for k, v in cols.items()}})
                if tri is not None:
                    grams.append({**common, "gram": tri[b].numpy(), "dtype": dtypes[b]})
            vectors.extend(self._vectors(f, layer, loaded))
        out = {"grams": grams, "style_vectors": vectors, "layer_stats": stats}
        return {t: out[t] for t in self.output_tables(cfg)}

    def _vectors(self, f: Any, layer: str, loaded: list) -> list[dict]:
        """One style_vectors row per image x configured statistic (nstcore.stats.summary)."""
        from nstcore.stats.summary import summary_vectors

        rows = []
        for spec, statistic in self.statistics.items():
            vec = summary_vectors(statistic, f).cpu().numpy()
            for b, (it, image_id, _) in enumerate(loaded):
                rows.append({"image_id": image_id, "image": it.image, "backbone": self.model.name,
                             "weights_tag": self.model.weights_tag, "weights_sha256": self.model.weights_sha256,
                             "dataset": it.dataset, "shape_category": it.shape_category,
                             "texture_category": it.texture_category, "layer": layer,
                             "layer_index": self.model.layer_index(layer), "statistic": spec, "vector": vec[b]})
        return rows

    def to_table(self, table: str, rows: list[dict]) -> Any:
        if table in ("grams", "style_vectors"):
            return _vector_table(rows, table, "gram" if table == "grams" else "vector")
        return rows

    def finish(self, store: Any, run_id: str, config: GramsConfig) -> dict:
        import pyarrow as pa

        from pipelines.ops.texture_layers import compute_discriminability

        parts = [compute_discriminability(store, run_id, list(config.layers))] if config.keep_grams else []
        parts += [compute_discriminability(store, run_id, list(config.layers), statistic=spec)
                  for spec in config.statistics]
        parts = [t for t in parts if t is not None]
        if parts:
            store.write_table("texture_discriminability", run_id, pa.concat_tables(parts), part="all")
        return {"discriminability_layers": sum(t.num_rows for t in parts)} if parts or config.keep_grams else {}


def _summary_statistic(spec: str) -> Any:
    """The statistic of ``--statistic spec`` if it has a fixed-size summary (OptionError otherwise)."""
    from nstcore.errors import NstcoreError
    from nstcore.stats import statistic_from_spec
    from nstcore.stats.summary import has_fixed_size_summary
    from pipelines.errors import OptionError

    try:
        statistic = statistic_from_spec(spec)
    except NstcoreError as exc:
        raise OptionError(f"--statistic {spec}: {exc}") from None
    if not has_fixed_size_summary(statistic):
        raise OptionError(f"--statistic {spec}: it keeps the feature vectors themselves (its summary grows with the "
                          "image), so images cannot be compared by it here; use gram, cov, corr, mean, std, mean_std, "
                          "skewness, kurtosis or moments:K (`texprobe stats`)")
    return statistic


def round_to_dtype(tri, dtype: str):
    """Gram vectors ``[B, K]`` (float32) rounded to ``dtype`` ('float16' / 'bfloat16') and back to float32, and
    each row's dtype: stored as float32 with byte-stream-split encoding, the bits a lower precision zeroes
    compress away (VGG-19 conv1_1..conv5_1: 1.14 MB -> 0.49 / 0.37 MB per image, BENCHMARKS.md), and every
    reader keeps reading float32. A row outside float16's range (|x| > 65504) keeps float32 and says so."""
    import torch

    low = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    rounded = tri.to(low).float()
    finite = torch.isfinite(rounded).all(dim=1)
    rounded = torch.where(finite[:, None], rounded, tri)
    return rounded, [dtype if ok else "float32" for ok in finite.tolist()]


def _vector_table(rows: list[dict], table: str, column: str):
    """The ``table`` (grams, style_vectors) Arrow table built column-wise: the vectors of ``column`` go in as one
    flat float32 buffer, not as Python floats (a VGG conv5 Gram has 131k values)."""
    import numpy as np
    import pyarrow as pa

    from analysis.schemas import TABLES

    schema = TABLES[table]
    if not rows:
        return schema.empty_table()
    arrays, fields = [], []
    for field in schema:
        if field.name == "run_id":  # the store stamps the run it writes to
            continue
        fields.append(field)
        if field.name == column:
            vecs = [r[column] for r in rows]
            offsets = np.zeros(len(vecs) + 1, dtype=np.int32)
            offsets[1:] = np.cumsum([len(v) for v in vecs])
            values = pa.array(np.concatenate(vecs).astype(np.float32, copy=False))
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), values))
        else:
            arrays.append(pa.array([r.get(field.name) for r in rows], type=field.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _grams_table(rows: list[dict]):
    """The grams Arrow table of ``rows`` (:func:`_vector_table`)."""
    return _vector_table(rows, "grams", "gram")
