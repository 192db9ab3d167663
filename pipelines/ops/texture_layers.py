"""The grams operation's finish step: texture discriminability per layer from a run's stored Grams."""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from nstcore.backbones import get_backbone_spec


def compute_discriminability(
    store: Store, run_id: str, layers: Sequence[str], *, n_permutations: int = 1000, seed: int = 0,
    source_runs: Sequence[str] | None = None, statistic: str = "gram",
) -> pa.Table | None:
    """Texture discriminability per layer from this run's stored Grams (one layer in memory at a time), or
    with ``statistic`` another statistic's summaries (``style_vectors`` rows of that statistic).

    Per layer, :func:`analysis.discriminability.discriminability_rows` (the single entry point): nearest-
    centroid accuracy of the texture categories on standardised Gram vectors, leave-one-texture-source-out
    (``grouping='texture_source'``) and leave-one-image-out (``'image'``), each beside its baseline with
    the labels permuted between texture sources ``n_permutations`` times (seeded). Texture sources: the
    style image of generated stimuli (``stimuli.style_image_id``), else ``<texture><m>`` of the file name.
    """
    from analysis.discriminability import discriminability_rows, texture_sources
    from analysis.schemas import TABLES

    table, column = ("grams", "gram") if statistic == "gram" else ("style_vectors", "vector")
    try:
        if source_runs is None:
            dataset = store.dataset(table, run_id=run_id)  # the store owns the layout (URIs included)
        else:  # the Grams of several runs (a study's task grown image set by image set), labelled ``run_id``
            import pyarrow.dataset as pads

            dataset = pads.dataset([store.dataset(table, run_id=r) for r in source_runs])
    except (FileNotFoundError, OSError):
        return None
    style_of = {r["stimulus_id"]: r["style_image_id"] for r in
                store.read_table("stimuli").select(["stimulus_id", "style_image_id"]).to_pylist()}
    rows = []
    for layer in layers:
        wanted = pc.field("layer") == layer
        if table == "style_vectors":
            wanted = wanted & (pc.field("statistic") == statistic)
        t = dataset.to_table(columns=["backbone", "weights_tag", "weights_sha256", "dataset", "layer", "image_id",
                                      "image", "texture_category", column], filter=wanted)
        t = t.filter(pc.is_valid(t["texture_category"]))
        if t.num_rows < 3 or len(set(t["texture_category"].to_pylist())) < 2:
            continue
        t = t.append_column("style_image_id", pa.array([style_of.get(i) for i in t["image_id"].to_pylist()], pa.string()))
        flat = pc.list_flatten(t[column].combine_chunks()).to_numpy(zero_copy_only=False)
        backbone = t["backbone"][0].as_py()
        datasets = sorted({d for d in t["dataset"].to_pylist() if d})
        common = {"run_id": run_id, "backbone": backbone, "weights_tag": t["weights_tag"][0].as_py(),
                  "weights_sha256": t["weights_sha256"][0].as_py(), "dataset": "+".join(datasets) or None,
                  "layer": layer,
                  "layer_index": list(get_backbone_spec(backbone).layer_names).index(layer), "statistic": statistic}
        for row in discriminability_rows(flat.reshape(t.num_rows, -1), labels=t["texture_category"].to_pylist(),
                                         sources=texture_sources(t), n_permutations=n_permutations, seed=seed):
            rows.append({**common, **row})
        del flat
    if not rows:
        return None
    return pa.Table.from_pylist(rows, schema=TABLES["texture_discriminability"])

