"""Labelled image sets: the 16 Geirhos categories, stimulus file names, manifests, folders.

Category labels come from, in this order of precedence:

1. a CSV manifest (columns ``path``, ``shape_category``, optional ``texture_category``);
2. the file name, following Geirhos et al., "ImageNet-trained CNNs are biased towards texture;
   increasing shape bias improves accuracy and robustness", ICLR 2019
   (github.com/rgeirhos/texture-vs-shape, ``stimuli/``):
   ``<shape><N>-<texture><M>.png`` for cue-conflict stimuli, ``<shape><N>.png`` for edges and
   filled silhouettes, and the experiment-prefixed names of the raw-data CSVs
   (``0001_s5n_s01_0_bird_00_bird3-bird2.png``);
3. for an image whose name carries no label, its folder, when that folder is named after one of
   the 16 categories (the ImageFolder layout ``<category>/<anything>.jpg``).

Nothing here decodes an image. Problems met while collecting (a symlink loop, an unreadable file
or folder, a stimulus name with an unknown category) never abort: they come back as items whose
``error_type``/``error_reason`` are set, and :meth:`ImageItem.check` raises them as the matching
:class:`~pipelines.input_walk.InputError`, so a runner turns each into one ``errors`` row exactly
where it would have loaded the image. File names that are not UTF-8 keep their surrogate escapes in
``path`` (so they open) and are escaped (``\\xNN``) in ``image`` and :attr:`ImageItem.display_path`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.keyset import SpillSet
from pipelines.manifest_rows import MANIFEST_SUFFIXES, ManifestReadError, manifest_rows
from pipelines.remote_inputs import is_uri, sha256_uri, uri_name
from pipelines.input_walk import (
    INPUT_ERRORS,
    BadNameError,
    InputError,
    check_file,
    safe_text,
    walk_image_paths,
)

__all__ = [
    "CATEGORIES",
    "IMAGE_EXTENSIONS",
    "ImageItem",
    "ImageSetError",
    "InputError",
    "collect_images",
    "iter_images",
    "parse_stimulus_name",
    "read_manifest",
    "sha256_file",
]

#: The 16 entry-level categories of Geirhos et al. (ICLR 2019), alphabetical.
CATEGORIES: tuple[str, ...] = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
    "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
)  # fmt: skip
_CATEGORY_SET = frozenset(CATEGORIES)

#: File suffixes (lower case) treated as images when a directory is walked.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
)

# <shape><N>-<texture><M>  or  <shape><N>
_STIMULUS = re.compile(r"^(?P<shape>[a-z]+)(?P<n>\d+)(?:-(?P<texture>[a-z]+)(?P<m>\d+))?$")
# <trial>_<experiment>_<subject>_<condition>_<category>_<nn>_<original name>
_PREFIXED = re.compile(
    r"^(?P<trial>\d+)_(?P<exp>[^_]+)_(?P<subj>[^_]+)_(?P<cond>[^_]+)_(?P<category>[a-z]+)_"
    r"(?P<nn>\d+)_(?P<rest>.+)$"
)


class ImageSetError(ValueError):
    """An image set input (name, manifest, path) is invalid; the message says how to fix it."""


def _unknown_category(value: str, where: str) -> ImageSetError:
    return ImageSetError(
        f"{where}: unknown category {value!r}; the categories are the 16 of Geirhos et al.: "
        f"{', '.join(CATEGORIES)}"
    )


@functools.lru_cache(maxsize=65536)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, cached per (path, size, mtime)."""
    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    return _sha256_cached(path, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class ImageItem:
    """One image of a set, with its labels.

    ``path`` is absolute (and opens, whatever its bytes); ``image`` is the file name, escaped to
    printable text; ``dataset`` names the set it came from. An item met with a problem while
    collecting carries ``error_type`` (an :data:`~pipelines.input_walk.INPUT_ERRORS` name) and
    ``error_reason``; :meth:`check` raises it.
    """

    path: str
    image: str
    shape_category: str | None
    texture_category: str | None
    dataset: str
    error_type: str | None = None
    error_reason: str | None = None

    @property
    def display_path(self) -> str:
        """``path`` as printable, encodable text (for ``errors.input`` and messages)."""
        return safe_text(self.path)

    @property
    def error(self) -> InputError | None:
        """The collection-time problem of this item as an exception (not raised), or None."""
        if self.error_type is None:
            return None
        return INPUT_ERRORS.get(self.error_type, InputError)(self.path, self.error_reason or "")

    def check(self) -> None:
        """Raise the collection-time problem of this item, if any (call it where the image loads)."""
        problem = self.error
        if problem is not None:
            raise problem

    @property
    def conflict(self) -> bool:
        """True when both cues are labelled and disagree (a cue-conflict stimulus)."""
        return (
            self.shape_category is not None
            and self.texture_category is not None
            and self.shape_category != self.texture_category
        )

    def image_id(self) -> str:
        """The sha256 of the file's (or object's) bytes (the store's ``image_id``)."""
        return sha256_uri(self.path) if is_uri(self.path) else sha256_file(self.path)


def parse_stimulus_name(name: str) -> tuple[str | None, str | None]:
    """``(shape_category, texture_category)`` from a texture-vs-shape stimulus file name.

    ``cat1-airplane1.png`` -> ``('cat', 'airplane')``; ``cat10.png`` -> ``('cat', None)``;
    ``0001_s5n_s01_0_bird_00_bird3-bird2.png`` -> ``('bird', 'bird')``. Names that follow none
    of these patterns -> ``(None, None)``; so does ``<word><N>`` when the word is not a category
    (``img12.jpg`` is a common name for an unlabelled image). A cue-conflict pattern naming an
    unknown category (``cow1-cat2.png``) raises :class:`ImageSetError`.
    """
    base = os.path.basename(name)
    stem = os.path.splitext(base)[0].lower()
    prefixed = _PREFIXED.match(stem)
    prefix_category = None
    if prefixed:
        prefix_category = prefixed["category"]
        if prefix_category not in _CATEGORY_SET:
            raise _unknown_category(prefix_category, f"stimulus name {base!r}")
        stem = prefixed["rest"]
    match = _STIMULUS.match(stem)
    if match is None:
        return (prefix_category, None)
    shape, texture = match["shape"], match["texture"]
    if texture is None and shape not in _CATEGORY_SET:
        return (prefix_category, None)
    for value in (shape, texture):
        if value is not None and value not in _CATEGORY_SET:
            raise _unknown_category(value, f"stimulus name {base!r}")
    if prefix_category is not None and prefix_category != shape:
        raise ImageSetError(
            f"stimulus name {base!r}: the experiment prefix says category {prefix_category!r} but "
            f"the stimulus part says shape {shape!r}; rename the file or label it in a manifest"
        )
    return (shape, texture)


def _category_cell(value: str | None, where: str) -> str | None:
    value = (value or "").strip().lower()
    if not value:
        return None
    if value not in _CATEGORY_SET:
        raise _unknown_category(value, where)
    return value


def read_manifest(csv_path: str | os.PathLike[str]) -> list[ImageItem]:
    """Every item of :func:`iter_manifest` as a list."""
    return list(iter_manifest(csv_path))


def iter_manifest(csv_path: str | os.PathLike[str]) -> Iterator[ImageItem]:
    """Images and labels from a CSV or Parquet manifest (:mod:`pipelines.manifest_rows`), streamed.

    The columns must include ``path`` and ``shape_category``; ``texture_category`` (may be empty) and
    ``dataset`` are optional; other columns are ignored. Relative paths are resolved against the
    manifest's folder. The dataset defaults to the manifest's folder name.
    """
    csv_path = Path(csv_path).expanduser().absolute()
    folder = csv_path.parent
    default_dataset = folder.name or "images"
    required = ("path", "shape_category")
    try:
        header, rows = manifest_rows(csv_path, required)
    except ManifestReadError as exc:
        raise ImageSetError(f"cannot read manifest {str(csv_path)!r}: {exc}") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise ImageSetError(
            f"manifest {str(csv_path)!r}, {'line 1' if csv_path.suffix.lower() == '.csv' else 'schema'}: missing "
            f"column(s) {missing} in {header}; a manifest names the columns path, shape_category and, "
            "optionally, texture_category and dataset"
        )
    for where, row in rows:
        raw_path = (row.get("path") or "").strip()
        if not raw_path:
            raise ImageSetError(f"{where}, column 'path': empty; give the image's file path")
        shape = _category_cell(row.get("shape_category"), f"{where}, column 'shape_category'")
        texture = _category_cell(row.get("texture_category"), f"{where}, column 'texture_category'")
        dataset = (row.get("dataset") or "").strip() or default_dataset
        if is_uri(raw_path):  # object storage: read where the image loads (pipelines.remote_inputs)
            yield ImageItem(path=raw_path, image=safe_text(uri_name(raw_path)), shape_category=shape,
                            texture_category=texture, dataset=dataset)
            continue
        path = Path(raw_path).expanduser()
        if not path.is_absolute():
            path = folder / path
        if not path.is_file():
            raise ImageSetError(
                f"{where}, column 'path': file not found: {str(path)!r}; relative paths are "
                f"resolved against the manifest's folder {str(folder)!r}"
            )
        yield ImageItem(
            path=os.path.abspath(path),
            image=safe_text(path.name),
            shape_category=shape,
            texture_category=texture,
            dataset=dataset,
        )


def _problem_item(problem: InputError, *, dataset: str) -> ImageItem:
    return ImageItem(
        path=os.path.abspath(problem.fspath),
        image=safe_text(os.path.basename(problem.fspath)),
        shape_category=None,
        texture_category=None,
        dataset=dataset,
        error_type=type(problem).__name__,
        error_reason=problem.reason,
    )


def _item_from_file(path: str | Path, *, dataset: str, label_folder: bool) -> ImageItem:
    """The item of an absolute image path: labels from its name (or from its folder's name)."""
    path = os.path.abspath(path) if not isinstance(path, str) or not path.startswith(os.sep) else path
    head, _, name = path.rpartition(os.sep)
    try:
        shape, texture = parse_stimulus_name(name)
    except ImageSetError as exc:
        problem = BadNameError(path, str(exc))
        return ImageItem(
            path=path, image=safe_text(name), shape_category=None,
            texture_category=None, dataset=dataset, error_type=type(problem).__name__,
            error_reason=problem.reason,
        )  # fmt: skip
    if shape is None and texture is None and label_folder:
        folder = head.rpartition(os.sep)[2].lower()
        if folder in _CATEGORY_SET:
            shape = folder
    return ImageItem(path=path, image=safe_text(name), shape_category=shape, texture_category=texture,
                     dataset=dataset)


def collect_images(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], *, dataset: str | None = None
) -> list[ImageItem]:
    """Every item of :func:`iter_images` as a list (for image sets that fit in memory)."""
    return list(iter_images(inputs, dataset=dataset))


def iter_images(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], *, dataset: str | None = None
) -> Iterator[ImageItem]:
    """Labelled images from directories, CSV manifests and single files, in a stable order, streamed.

    Directories are walked recursively (sorted) for image suffixes (:data:`IMAGE_EXTENSIONS`, any
    case); a ``.csv`` or ``.parquet`` input is a manifest (:func:`iter_manifest`); any other file is one item.
    Items keep input order; a path seen twice (also through a link) is kept once, while two files
    with identical bytes are two items (with the same ``image_id``). ``dataset`` overrides the
    default, which is the input folder's name (``data/edges`` -> ``edges``; a file's parent folder).
    A problem with one entry (symlink loop, unreadable, bad stimulus name) is an item with
    ``error_type`` set, never an exception; only an input argument that does not exist at all, a
    folder without image files and a malformed manifest raise :class:`ImageSetError` (the arguments
    are checked before the first item is yielded). Memory stays bounded: the real paths already seen
    are kept in a :class:`~pipelines.keyset.SpillSet`.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise ImageSetError("no inputs given: pass image folders, image files or CSV manifests")
    paths = []
    for raw in inputs:
        path = Path(raw).expanduser().absolute()
        if not (path.is_dir() or path.is_file() or os.path.islink(path)):
            raise ImageSetError(
                f"input '{safe_text(raw)}' does not exist; pass an image folder, an image file or a CSV "
                "manifest (for the full cue-conflict set run `texprobe data fetch cue-conflict`)"
            )
        paths.append(path)
    return _iter_images(paths, dataset)


def _iter_images(paths: list[Path], dataset: str | None) -> Iterator[ImageItem]:
    with SpillSet() as seen:
        for key, item in _entries(paths, dataset):
            if seen.add(key):
                yield item


def _entries(paths: list[Path], dataset: str | None) -> Iterator[tuple[str, ImageItem]]:
    """``(real path, item)`` for every entry of every input, in order (duplicates included); ``dataset``
    (when given) names every item's set."""
    for path in paths:
        if path.is_dir():
            found = False
            name = dataset or safe_text(path.name) or "images"
            for file in walk_image_paths(path, IMAGE_EXTENSIONS):
                found = True
                if isinstance(file, InputError):
                    yield os.path.realpath(file.fspath), _problem_item(file, dataset=name)
                else:
                    yield file[1], _item_from_file(file[0], dataset=name, label_folder=True)
            if not found:
                raise ImageSetError(
                    f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {str(path)!r}; "
                    "point to the folder that holds the images"
                )
        elif path.is_file():
            if path.suffix.lower() in MANIFEST_SUFFIXES:
                for item in iter_manifest(path):
                    if dataset is not None and item.dataset != dataset:
                        item = dataclasses.replace(item, dataset=dataset)
                    yield item.path if is_uri(item.path) else os.path.realpath(item.path), item
            else:
                problem = check_file(path)
                name = dataset or safe_text(path.parent.name) or "images"
                yield os.path.realpath(path), (
                    _problem_item(problem, dataset=name) if problem
                    else _item_from_file(path, dataset=name, label_folder=True)
                )  # fmt: skip
        else:  # a link to nowhere or to itself: one errors entry, not an abort
            yield os.path.realpath(path), _problem_item(
                check_file(path) or BadNameError(path, "not a file"), dataset=dataset or "images")
