"""Builds test stores for the report and plot tests: Parquet parts in the layout of ARCHITECTURE.md
(``<store>/tables/<table>/run_id=<id>/<part>.parquet``, ``<store>/runs/<id>.json``), written with
pyarrow against :data:`analysis.schemas.TABLES`. Trials come from the published model-vs-human CSVs
(``analysis.mvh_import``); the probe tables hold values computed here with numpy (real Gram matrices
of random feature maps, real PNG images)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.mvh_import import read_trial_csvs
from analysis.schemas import CATEGORIES, TABLES


def write_part(store: Path, table: str, run_id: str, data: list[dict] | pa.Table, *, part: str = "part-0") -> None:
    schema = TABLES[table]
    if isinstance(data, list):
        data = pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in data], schema=schema)
    folder = store / "tables" / table / f"run_id={run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, folder / f"{part}.parquet")


def write_manifest(store: Path, run_id: str, *, command: str, started_at: str, status: str = "finished",
                   config: dict | None = None, counts: dict | None = None) -> None:
    (store / "runs").mkdir(parents=True, exist_ok=True)
    (store / "runs" / f"{run_id}.json").write_text(json.dumps({
        "run_id": run_id, "command": command, "argv": ["texprobe", command], "status": status,
        "started_at": started_at, "finished_at": started_at, "config": config or {},
        "versions": {"python": "3.11"}, "counts": counts or {}, "hostname": "test"}))


def import_csvs(store: Path, paths: list[Path], run_id: str, *, started_at: str) -> pa.Table:
    table = read_trial_csvs([str(p) for p in paths], run_id=run_id)
    write_part(store, "trials", run_id, table)
    write_manifest(store, run_id, command="import-mvh", started_at=started_at, counts={"trials": table.num_rows})
    return table


def _png(rgb: np.ndarray) -> bytes:
    import matplotlib.image as mpimg

    buf = io.BytesIO()
    mpimg.imsave(buf, rgb, format="png")
    return buf.getvalue()


#: shape decisions (of 4 cue-conflict stimuli, 2 texture sources) per (statistic, style layers) of the sweep rows
SWEEP_SHAPE_HITS = {("gram", "conv1_1,conv2_1"): 0, ("gram", "conv1_1"): 1, ("mean_std", "conv1_1,conv2_1"): 3,
                    ("mean_std", "conv1_1"): 2}


def sweep_rows(run_id: str) -> tuple[list[dict], list[dict]]:
    """stimuli of a [sweep] (2 statistics x 2 layer sets x 4 stimuli) and one classifier's trials on them:
    SWEEP_SHAPE_HITS shape decisions, texture decisions for the rest."""
    stimuli, trials = [], []
    for (statistic, layers), hits in SWEEP_SHAPE_HITS.items():
        chash = f"{statistic}-{layers}"
        for k in range(4):
            sid = hashlib.sha256(f"{chash}/{k}".encode()).hexdigest()
            shape, texture = CATEGORIES[k], CATEGORIES[8 + k]
            stimuli.append(dict(run_id=run_id, stimulus_id=sid, config_hash=chash, statistic=statistic,
                                style_layers=layers.split(","), style_weight=1.0, style_image_id=f"style{k % 2}",
                                backbone="toynet", image=f"{shape}1-{texture}1.png", shape_category=shape,
                                texture_category=texture, ref_gram=0.1 * (k + 1), content_ssim=0.5))
            trials.append(dict(run_id=run_id, source="texprobe", dataset="sweep:probe", observer="toynet-clf",
                               observer_kind="model", image=f"{shape}1-{texture}1.png", image_id=sid,
                               shape_category=shape, texture_category=texture, conflict=True,
                               decision=shape if k < hits else texture, weights_sha256="c" * 64))
    return stimuli, trials


def probe_tables(store: Path, run_id: str, *, started_at: str, seed: int = 0) -> None:
    """layer_stats, grams, texture_discriminability, reconstructions (+ images), loss_curves, visualizations
    (+ images), exemplars (+ input files beside the store), errors."""
    rng = np.random.default_rng(seed)
    layers = [("stem", 0, 8), ("stage2", 1, 16), ("stage3", 2, 24)]
    grams, stats, disc, recs, curves = [], [], [], [], []
    for k in range(4):
        cat = CATEGORIES[k]
        for name, idx, ch in layers:
            feats = rng.standard_normal((ch, 64)) * np.repeat(rng.uniform(0.5, 2, (ch // 4, 1)), 4, axis=0)
            feats[: ch // 2] += 2 * rng.standard_normal(64)   # a co-activating block of channels
            feats = np.maximum(feats, 0)
            g = feats @ feats.T / feats.shape[1]
            eig = np.clip(np.linalg.eigvalsh(g), 0, None)
            p = eig / eig.sum()
            common = dict(run_id=run_id, image_id=f"img{k:02d}" + "0" * 58, image=f"{cat}1-{CATEGORIES[k + 4]}1.png",
                          dataset="cue-conflict", shape_category=cat, texture_category=CATEGORIES[k + 4],
                          backbone="toynet", weights_tag="random", layer=name, layer_index=idx, channels=ch,
                          normalization="hw")
            grams.append({**common, "gram": g[np.triu_indices(ch)].astype(np.float32).tolist()})
            stats.append({**common, "trace": float(np.trace(g)), "fro_norm": float(np.linalg.norm(g)),
                          "offdiag_energy": float(1 - (np.diag(g) ** 2).sum() / (g ** 2).sum()),
                          "effective_rank": float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())),
                          "top_eig_share": float(p.max()), "mean_activation": float(feats.mean()),
                          "sparsity": float((feats == 0).mean())})
    for name, idx, _ in layers:
        for grouping, acc in (("texture_source", 0.3 + 0.2 * idx), ("image", 0.5 + 0.2 * idx)):
            disc.append(dict(run_id=run_id, backbone="toynet", weights_tag="random", layer=name, layer_index=idx,
                             statistic="gram", grouping=grouping, n_images=4, n_groups=4, n_categories=16,
                             accuracy=acc, chance=1 / 16, permuted_accuracy=0.07, permuted_p95=0.12,
                             p_value=0.01, n_permutations=99, permutation_unit="texture_source"))
        target = rng.uniform(0, 1, (24, 24, 3))
        out = np.clip(target + rng.normal(0, 0.05 * (idx + 1), target.shape), 0, 1)
        png = _png(out)
        sha = hashlib.sha256(png).hexdigest()
        (store / "images").mkdir(parents=True, exist_ok=True)
        (store / "images" / f"{sha}.png").write_bytes(png)
        mse = float(((out - target) ** 2).mean())
        recs.append(dict(run_id=run_id, image_id="rec0" + "0" * 60, image="cat1-bear1.png", backbone="toynet",
                         weights_tag="random", kind="content", layers=[name], layer=name, layer_index=idx,
                         steps=10, feature_error=0.1 * (idx + 1), pixel_mse=mse, psnr=float(-10 * np.log10(mse)),
                         ssim=0.9 - 0.2 * idx, shape_category="cat", decision="cat" if idx < 2 else "dog",
                         path=f"images/{sha}.png"))
        for step in range(0, 50, 5):
            curves.append(dict(run_id=run_id, unit_id="u0", item_id=f"rec-{name}", kind="content", step=step,
                               total_loss=float(100 * np.exp(-step / (10 + idx)) + 1)))
    visual, exemplar = [], []
    inputs = store.parent / f"{store.name}-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for c in range(3):  # visualisations: real PNGs in images/; exemplars: real input files to crop from
        png = _png(np.clip(rng.uniform(0, 1, (32, 32, 3)), 0, 1))
        sha = hashlib.sha256(png).hexdigest()
        (store / "images" / f"{sha}.png").write_bytes(png)
        visual.append(dict(run_id=run_id, unit_id="v0", backbone="toynet", weights_tag="random", objective=f"channel:stage3:{c}",
                           kind="channel", layer="stage3", layer_index=2, channels=[c], param="fft",
                           transforms="standard", greyscale=False, size=32, steps=64, lr=0.05, seed=c,
                           value_start=0.1, value_end=2.0 + c, image_id=sha, path=f"images/{sha}.png"))
        source = inputs / f"input{c}.png"
        source.write_bytes(_png(rng.uniform(0, 1, (64, 64, 3))))
        for channel in range(2):
            exemplar.append(dict(run_id=run_id, unit_id="e0", image_id=f"in{c:02d}" + "0" * 60, image=source.name,
                                 dataset="cue-conflict", backbone="toynet", weights_tag="random", layer="stage3",
                                 layer_index=2, channel=channel, value=float(3 - c + channel), mean=0.5, y=2, x=3,
                                 height=8, width=8, stride=8, input_height=64, input_width=64, box_left=12,
                                 box_top=4, box_right=44, box_bottom=36, path=str(source)))
    png = _png(np.clip(rng.uniform(0, 1, (32, 32, 3)), 0, 1))  # cluster 0 visualised (its mean activation)
    sha = hashlib.sha256(png).hexdigest()
    (store / "images" / f"{sha}.png").write_bytes(png)
    visual.append(dict(run_id=run_id, unit_id="v1", backbone="toynet", weights_tag="random",
                       objective="channels:stage3:1,0", kind="channels", layer="stage3", layer_index=2, channels=[1, 0],
                       param="fft", transforms="standard", greyscale=False, size=32, steps=64, lr=0.05, seed=9,
                       value_start=0.2, value_end=4.0, image_id=sha, path=f"images/{sha}.png"))
    clusters = [dict(run_id=run_id, backbone="toynet", layer="stage3", method="spectral", n_clusters=2, cluster=k,
                     channel=ch, cluster_size=n, within_correlation=r, n_images=4)
                for k, chans, n, r in ((0, (0, 1), 2, 0.6), (1, (2,), 1, 1.0)) for ch in chans]
    maps = [dict(run_id=run_id, image_id="map0" + "0" * 60, image="cat1-dog1.png", backbone="toynet",
                 weights_tag="random", layer="stage2", layer_index=1, rank=k + 1, channel=c, mean=float(4 - k),
                 height=6, width=6, map=rng.uniform(0, 4 - k, 36).astype(np.float32).tolist(),
                 input_path=f"images/{sha}.png") for k, c in enumerate((5, 2, 7, 1))]
    write_part(store, "gram_clusters", run_id, clusters)
    write_part(store, "feature_maps", run_id, maps)
    stimuli, trials = sweep_rows(run_id)
    write_part(store, "stimuli", run_id, stimuli)
    write_part(store, "trials", run_id, trials)
    write_part(store, "visualizations", run_id, visual)
    write_part(store, "exemplars", run_id, exemplar)
    write_part(store, "grams", run_id, grams)
    write_part(store, "layer_stats", run_id, stats)
    write_part(store, "texture_discriminability", run_id, disc)
    write_part(store, "reconstructions", run_id, recs)
    write_part(store, "loss_curves", run_id, curves)
    write_part(store, "errors", run_id, [dict(run_id=run_id, unit_id="u9", input="broken.png", stage="decode",
                                              error_type="ImageSetError", message="not a PNG or JPEG file")])
    write_manifest(store, run_id, command="grams", started_at=started_at, status="partial",
                   counts={"grams": len(grams), "errors": 1})
