"""pipelines.imagesets: stimulus names, CSV manifests, directory walks, the bundled data.

References: hand-written names and files, folder names of the bundled data (the shape category
is the folder, per data/README.md), the 'category' column of the published per-trial CSVs, and
hashlib for image ids.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from pathlib import Path

import pytest

from shared_data import DATA, SHARED_DATA
from pipelines.imagesets import (
    CATEGORIES,
    ImageItem,
    ImageSetError,
    collect_images,
    parse_stimulus_name,
    read_manifest,
)

RAW = SHARED_DATA / "texture-vs-shape" / "raw-data"
PNG = b"\x89PNG\r\n\x1a\n"


def test_categories_are_the_sixteen_alphabetical():
    assert CATEGORIES == (
        "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
        "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cat1-airplane1.png", ("cat", "airplane")),
        ("elephant10-knife3.png", ("elephant", "knife")),
        ("bird3-bird2.png", ("bird", "bird")),
        ("cat10.png", ("cat", None)),
        ("keyboard7.png", ("keyboard", None)),
        ("some/dir/truck2-oven1.png", ("truck", "oven")),
        ("Cat1-Airplane2.PNG", ("cat", "airplane")),
        ("0001_s5n_s01_0_bird_00_bird3-bird2.png", ("bird", "bird")),
        ("0421_s5n_dnn_0_truck_00_truck10-knife3.png", ("truck", "knife")),
        ("0001_cl_dnn_0_airplane_00_n02690373_1023.JPEG", ("airplane", None)),  # model-vs-human
        ("photo.png", (None, None)),
        ("img12.jpg", (None, None)),  # '<word><N>' with a non-category word: unlabelled
        ("n01440764_10026.JPEG", (None, None)),
        ("cat.png", (None, None)),
        ("cat1-airplane.png", (None, None)),
    ],
)
def test_parse_stimulus_name(name, expected):
    assert parse_stimulus_name(name) == expected


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("cow1-cat2.png", "cow"),
        ("cat1-zebra2.png", "zebra"),
        ("0001_s5n_s01_0_cow_00_bird3-bird2.png", "cow"),
    ],
)
def test_unknown_category_in_stimulus_pattern_is_an_error(name, bad):
    with pytest.raises(ImageSetError) as info:
        parse_stimulus_name(name)
    message = str(info.value)
    assert name in message and repr(bad) in message
    assert all(c in message for c in CATEGORIES)


def test_inconsistent_prefix_is_an_error():
    with pytest.raises(ImageSetError, match="prefix"):
        parse_stimulus_name("0001_s5n_s01_0_cat_00_bird3-bird2.png")


@pytest.mark.shared_data("texture-vs-shape/raw-data")
def test_published_trial_image_names_parse_to_their_category():
    """Every imagename in the published per-trial CSVs parses; shape = the CSV's 'category'."""
    n = 0
    for path in sorted(RAW.glob("*/*.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                shape, texture = parse_stimulus_name(row["imagename"])
                assert shape == row["category"], (path.name, row["imagename"])
                assert texture == re.search(r"-([a-z]+)\d+\.png$", row["imagename"]).group(1)
                n += 1
    assert n > 30000


# ------------------------------------------------------------------------------- bundled data


@pytest.mark.parametrize(
    ("folder", "n", "n_no_conflict", "with_texture"),
    [("cue-conflict", 240, 11, True), ("edges", 160, 160, False), ("filled-silhouettes", 160, 160, False)],
)
def test_bundled_folders_parse_completely(folder, n, n_no_conflict, with_texture):
    items = collect_images([DATA / folder])
    assert len(items) == n
    assert {i.dataset for i in items} == {folder}
    for item in items:
        assert item.shape_category == Path(item.path).parent.name  # folder = shape (README)
        assert (item.texture_category is not None) == with_texture
    assert sum(not i.conflict for i in items) == n_no_conflict
    assert [i.path for i in items] == sorted(i.path for i in items)  # deterministic order


def test_image_id_is_sha256_of_bytes():
    item = collect_images([DATA / "edges" / "cat" / "cat1.png"])[0]
    assert item.image_id() == hashlib.sha256((DATA / "edges" / "cat" / "cat1.png").read_bytes()).hexdigest()
    assert item == ImageItem(
        path=str(DATA / "edges" / "cat" / "cat1.png"), image="cat1.png",
        shape_category="cat", texture_category=None, dataset="cat",
    )  # fmt: skip


def test_conflict_property():
    def item(shape, texture):
        return ImageItem(path="/x", image="x", shape_category=shape, texture_category=texture, dataset="d")

    assert item("cat", "dog").conflict
    assert not item("cat", "cat").conflict
    assert not item("cat", None).conflict
    assert not item(None, "dog").conflict
    assert not item(None, None).conflict


# ------------------------------------------------------------------------------- directories


def make_tree(root: Path) -> None:
    files = [
        "set/cat/cat1-dog2.png",
        "set/cat/cat2.JPG",
        "set/cat/notes.txt",
        "set/cat/.hidden.png",
        "set/cat/._cat3.png",
        "set/b/nested/deeper/truck3-oven1.jpeg",
        "set/b/readme.md",
        "set/a/photo.webp",
        "set/dog/IMG_0001.tif",
        "set/dog/x.TIFF",
        "set/dog/y.bmp",
        "set/.cache/cat9.png",
    ]
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG + rel.encode())


def test_directory_walk(tmp_path):
    make_tree(tmp_path)
    items = collect_images([tmp_path / "set"])
    rel = [str(Path(i.path).relative_to(tmp_path / "set")) for i in items]
    assert rel == [
        "a/photo.webp",
        "b/nested/deeper/truck3-oven1.jpeg",
        "cat/cat1-dog2.png",
        "cat/cat2.JPG",
        "dog/IMG_0001.tif",
        "dog/x.TIFF",
        "dog/y.bmp",
    ]
    labels = {i.image: (i.shape_category, i.texture_category) for i in items}
    assert labels == {
        "photo.webp": (None, None),
        "truck3-oven1.jpeg": ("truck", "oven"),
        "cat1-dog2.png": ("cat", "dog"),
        "cat2.JPG": ("cat", None),
        "IMG_0001.tif": ("dog", None),  # unlabelled name in a category folder
        "x.TIFF": ("dog", None),
        "y.bmp": ("dog", None),
    }
    assert {i.dataset for i in items} == {"set"}
    assert all(Path(i.path).is_absolute() for i in items)


def test_duplicates_collapse_and_dataset_override(tmp_path):
    make_tree(tmp_path)
    single = tmp_path / "set" / "cat" / "cat1-dog2.png"
    items = collect_images([single, tmp_path / "set", tmp_path / "set" / "cat"], dataset="mine")
    assert len(items) == 7
    assert items[0].path == str(single) and items[0].dataset == "mine"
    assert {i.dataset for i in items} == {"mine"}
    assert collect_images([single])[0].dataset == "cat"  # a file: its folder's name


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_bad_inputs(tmp_path, make):
    target = tmp_path / "nothing"
    if make == "empty":
        target.mkdir()
        (target / "readme.txt").write_text("no images here")
    with pytest.raises(ImageSetError, match=re.escape(str(target))):
        collect_images([target])


def test_unknown_category_name_in_folder_is_one_errors_entry_not_an_abort(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "cow1-cat2.png").write_bytes(PNG)
    (tmp_path / "s" / "cat1-dog2.png").write_bytes(PNG)
    good, bad = collect_images([tmp_path / "s"])  # sorted by name
    assert good.error_type is None and (good.shape_category, good.texture_category) == ("cat", "dog")
    assert bad.error_type == "BadNameError" and bad.shape_category is None
    with pytest.raises(ValueError, match="cow1-cat2.png.*unknown category 'cow'"):
        bad.check()


# ------------------------------------------------------------------------------- manifests


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_good(tmp_path):
    (tmp_path / "m" / "imgs").mkdir(parents=True)
    a = tmp_path / "m" / "imgs" / "a.png"
    b = tmp_path / "elsewhere.jpg"
    a.write_bytes(PNG)
    b.write_bytes(PNG)
    manifest = write(
        tmp_path / "m" / "labels.csv",
        "\ufeffpath,shape_category,texture_category,notes\n"
        "imgs/a.png,cat,Dog,first\n"
        f"{b},  truck ,,second\n",
    )
    items = read_manifest(manifest)
    assert items == [
        ImageItem(path=str(a), image="a.png", shape_category="cat", texture_category="dog", dataset="m"),
        ImageItem(path=str(b), image="elsewhere.jpg", shape_category="truck", texture_category=None, dataset="m"),
    ]  # fmt: skip
    assert items[0].conflict and not items[1].conflict
    assert collect_images([manifest]) == items


def test_manifest_without_texture_column(tmp_path):
    (tmp_path / "cat7.png").write_bytes(PNG)
    manifest = write(tmp_path / "m.csv", "path,shape_category\ncat7.png,cat\n")
    assert read_manifest(manifest)[0].texture_category is None


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("file,shape_category\na.png,cat\n", ["line 1", "path"]),
        ("path,texture_category\na.png,cat\n", ["line 1", "shape_category"]),
        ("path,shape_category\na.png,cat\na.png,cow\n", ["line 3", "shape_category", "cow", "airplane"]),
        ("path,shape_category,texture_category\na.png,cat,zebra\n", ["line 2", "texture_category", "zebra"]),
        ("path,shape_category\na.png,cat\nmissing.png,cat\n", ["line 3", "'path'", "missing.png", "not found"]),
        ("path,shape_category\n,cat\n", ["line 2", "'path'", "empty"]),
    ],
)
def test_manifest_errors(tmp_path, body, needles):
    (tmp_path / "a.png").write_bytes(PNG)
    manifest = write(tmp_path / "bad.csv", body)
    with pytest.raises(ImageSetError) as info:
        read_manifest(manifest)
    message = str(info.value)
    assert str(manifest) in message
    for needle in needles:
        assert needle in message


def test_link_problems_given_as_arguments_are_entries_not_aborts(tmp_path):
    loop = tmp_path / "self.png"
    os.symlink("self.png", loop)
    gone = tmp_path / "gone.png"
    os.symlink("nowhere.png", gone)
    items = collect_images([loop, gone])
    assert [(i.image, i.error_type) for i in items] == [
        ("self.png", "SymlinkLoopError"), ("gone.png", "BrokenLinkError"),
    ]  # fmt: skip
    folder = tmp_path / "only-bad"
    folder.mkdir()
    os.symlink("x.png", folder / "x.png")
    assert [i.error_type for i in collect_images([folder])] == ["SymlinkLoopError"]
    with pytest.raises(ImageSetError, match="does not exist"):
        collect_images([tmp_path / "typo"])  # a plain missing argument is still a user error


def _parquet_manifest(path, columns: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=2)  # several row groups: read batch by batch
    return path


def test_parquet_manifest_equals_the_same_csv_manifest(tmp_path):
    """Issue 20 part 1: a Parquet manifest (a dataset's listing at scale) gives the items its CSV twin gives:
    paths resolved against its folder, categories, empty texture cells as None, per-row datasets."""
    (tmp_path / "img").mkdir()
    for name in ("cat7.png", "dog2.png", "cat1-dog3.png"):
        (tmp_path / "img" / name).write_bytes(PNG)
    rows = {"path": ["img/cat7.png", str(tmp_path / "img" / "dog2.png"), "img/cat1-dog3.png"],
            "shape_category": ["cat", "dog", "cat"], "texture_category": [None, "", "dog"],
            "dataset": [None, "mine", None], "extra": [1, 2, 3]}
    parquet = _parquet_manifest(tmp_path / "m.parquet", rows)
    csv_text = "path,shape_category,texture_category,dataset\n" + "".join(
        f"{p},{s},{t or ''},{d or ''}\n" for p, s, t, d in zip(rows["path"], rows["shape_category"],
                                                              rows["texture_category"], rows["dataset"]))
    twin = write(tmp_path / "m.csv", csv_text)
    assert read_manifest(parquet) == read_manifest(twin)
    assert collect_images([parquet]) == collect_images([twin])
    items = read_manifest(parquet)
    assert [(i.image, i.texture_category, i.dataset) for i in items] == [
        ("cat7.png", None, tmp_path.name), ("dog2.png", None, "mine"), ("cat1-dog3.png", "dog", tmp_path.name)]


@pytest.mark.parametrize(("columns", "needles"), [
    ({"file": ["a.png"], "shape_category": ["cat"]}, ["schema", "missing column(s) ['path']"]),
    ({"path": ["a.png", "b.png"], "shape_category": ["cat", "cat"]}, ["row 2", "'path'", "b.png", "not found"]),
    ({"path": ["a.png"], "shape_category": ["cow"]}, ["row 1", "shape_category", "cow"]),
])
def test_parquet_manifest_errors_name_the_row(tmp_path, columns, needles):
    (tmp_path / "a.png").write_bytes(PNG)
    manifest = _parquet_manifest(tmp_path / "bad.parquet", columns)
    with pytest.raises(ImageSetError) as info:
        read_manifest(manifest)
    for needle in [str(manifest), *needles]:
        assert needle in str(info.value)


def test_a_file_named_parquet_that_is_not_one_is_one_line(tmp_path):
    bad = write(tmp_path / "x.parquet", "path,shape_category\n")
    with pytest.raises(ImageSetError, match="cannot read manifest .*x.parquet.*not a readable Parquet file"):
        read_manifest(bad)
