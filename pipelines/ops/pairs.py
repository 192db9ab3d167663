"""(content, style) pairs for ``stylize``: every conflicting pair, every pair, or a CSV's list; each
output is named ``<shape><n>-<texture><m>.png`` after its content (a stimulus: its shape part) and its style's
texture part."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

from pipelines.imagesets import ImageItem, ImageSetError, parse_stimulus_name


def _stem(item: ImageItem) -> str:
    return Path(item.image).stem


def content_stem(item: ImageItem) -> str:
    """A content image's name part: for a cue-conflict stimulus '<shape><n>-<texture><m>.png' used as a
    content, its shape part '<shape><n>' (its content source), so outputs are '<shape><n>-<texture><m>.png'
    that the views parse like Geirhos' own."""
    stem = _stem(item)
    if "-" in stem:
        try:
            texture = parse_stimulus_name(item.image)[1]
        except ImageSetError:
            texture = None
        if texture is not None:
            return stem.rsplit("-", 1)[0]
    return stem


def style_stem(item: ImageItem) -> str:
    """A style image's name part: for a cue-conflict stimulus '<shape><n>-<texture><m>.png' used as a
    style, its texture part '<texture><m>' (so outputs stay '<shape><n>-<texture><m>.png')."""
    stem = _stem(item)
    if item.texture_category and "-" in stem:
        return stem.rsplit("-", 1)[1]
    return stem


def _style_category(item: ImageItem) -> str | None:
    return item.texture_category or item.shape_category


def make_pairs(contents: Sequence[ImageItem], styles: Sequence[ImageItem], pairs: str) -> list[dict]:
    """'conflict': every content x style of different categories; 'all': every pair; else a CSV file
    with columns content, style (file names or paths of the given images)."""
    if not contents:
        raise ImageSetError("no content images found; pass a folder or manifest with --content")
    if not styles:
        raise ImageSetError("no style images found; pass a folder or manifest with --style")
    chosen: list[tuple[ImageItem, ImageItem]]
    if pairs in ("conflict", "all"):
        if pairs == "conflict":
            unlabelled = [it.path for it in [*contents, *styles] if (it.shape_category or _style_category(it)) is None]
            if unlabelled:
                raise ImageSetError(
                    f"--pairs conflict needs a category for every image; {len(unlabelled)} have none "
                    f"(e.g. {unlabelled[0]}). Name them <category><n>.png, use a manifest, or use --pairs all."
                )
        chosen = [(c, s) for c in contents for s in styles
                  if pairs == "all" or c.shape_category != _style_category(s)]
    else:
        chosen = _pairs_from_csv(Path(pairs), contents, styles)
    if not chosen:
        raise ImageSetError(
            f"--pairs {pairs}: no (content, style) pair to generate ({len(contents)} content and {len(styles)} style "
            "images, all of the same categories); add images of other categories, or use --pairs all"
        )
    out, seen = [], {}
    for c, s in chosen:
        name = f"{content_stem(c)}-{style_stem(s)}.png"
        if name in seen and seen[name] != (c.path, s.path):
            raise ImageSetError(
                f"two pairs would both be named {name!r} ({seen[name]} and {(c.path, s.path)}); give the "
                "content or style images distinct file names"
            )
        seen[name] = (c.path, s.path)
        out.append({"content": c, "style": s, "name": name, "shape": c.shape_category, "texture": _style_category(s)})
    return out


def _pairs_from_csv(path: Path, contents: Sequence[ImageItem], styles: Sequence[ImageItem]):
    if not path.is_file():
        raise ImageSetError(f"--pairs {path}: not 'conflict', 'all' or an existing CSV file (columns content, style)")

    def index(items):
        table = {}
        for it in items:
            table[it.image] = it
            table[os.path.abspath(it.path)] = it
        return table

    ci, si = index(contents), index(styles)
    chosen = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"content", "style"} - set(reader.fieldnames or [])
        if missing:
            raise ImageSetError(f"{path}: missing column(s) {sorted(missing)}; the pairs CSV needs columns content, style")
        for line, row in enumerate(reader, start=2):
            keys = []
            for col, table in (("content", ci), ("style", si)):
                value = (row[col] or "").strip()
                resolved = os.path.abspath(path.parent / value) if value else ""
                item = table.get(value) or table.get(resolved)
                if item is None:
                    raise ImageSetError(
                        f"{path}, line {line}: {col} {value!r} is not among the --{col} images "
                        "(give its file name or a path relative to the CSV)"
                    )
                keys.append(item)
            chosen.append(tuple(keys))
    return chosen
