"""Walking input folders safely: every file found is either an image path or a named problem.

A bad entry never aborts the walk. Problems come back as :class:`InputError` instances (not raised)
so the caller can turn each into one ``errors`` row:

* a symbolic link that points back to itself or to a folder above it: :class:`SymlinkLoopError`
  ("symlink loop");
* a link whose target is missing: :class:`BrokenLinkError`;
* a file or folder this process may not read: :class:`UnreadableInputError` (checked with
  ``os.access``; note that root may read a ``chmod 000`` file, so as root such a file is an input);
* a file name that follows the stimulus pattern but names no known category:
  :class:`BadNameError` (raised by :mod:`pipelines.imagesets`).

File names are kept as Python gives them: bytes that are not UTF-8 become surrogate escapes
(``os.fsdecode``), so the path still opens. Use :func:`safe_text` for anything written or printed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "INPUT_ERRORS",
    "BadNameError",
    "BrokenLinkError",
    "InputError",
    "SymlinkLoopError",
    "UnreadableInputError",
    "safe_text",
    "walk_image_paths",
    "walk_images",
]


def safe_text(text: str | os.PathLike[str] | bytes) -> str:
    """Printable, encodable text for a path or name: undecodable bytes become ``\\xNN``.

    ``'latin1-\\udce9-cat2.png'`` (how Python holds the bytes ``latin1-\\xe9-cat2.png``) ->
    ``'latin1-\\\\xe9-cat2.png'``; valid UTF-8 is unchanged.
    """
    raw = text if isinstance(text, bytes) else os.fsencode(text)
    return raw.decode("utf-8", "backslashreplace")


class InputError(ValueError):
    """An input that cannot be used; ``kind`` is a short stable reason, the message says what to do."""

    kind = "input"
    advice = "Fix it or remove it from the input folder."

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.fspath = os.fspath(path)  # the real path (may hold surrogate escapes)
        self.path = safe_text(path)  # printable
        self.reason = reason
        super().__init__(f"input '{self.path}': {reason}. {self.advice}")


#: What to do about a link that cannot be followed (a loop or a missing target).
_LINK_ADVICE = "Fix or delete the link (`ls -l` shows where it points)."


class SymlinkLoopError(InputError):
    """A symbolic link that leads back to itself or to a folder above it."""

    kind = "symlink_loop"
    advice = _LINK_ADVICE


class BrokenLinkError(InputError):
    """A symbolic link whose target does not exist."""

    kind = "broken_link"
    advice = _LINK_ADVICE


class UnreadableInputError(InputError):
    """A file or folder that this process may not read."""

    kind = "unreadable"
    advice = "Make it readable (e.g. `chmod a+r`, `chmod a+rx` for a folder) or remove it."


class BadNameError(InputError):
    """A file name in the stimulus pattern that names an unknown or inconsistent category."""

    kind = "bad_name"
    advice = "Rename the file (`<shape><N>-<texture><M>.png`) or label it in a CSV manifest."


#: The problem classes by name (``ImageItem.error_type`` -> class).
INPUT_ERRORS: dict[str, type[InputError]] = {
    cls.__name__: cls
    for cls in (InputError, SymlinkLoopError, BrokenLinkError, UnreadableInputError, BadNameError)
}


def check_file(path: Path) -> InputError | None:
    """The problem with a file path (symlink loop, broken link, unreadable), or None."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return BrokenLinkError(path, "broken symbolic link (its target does not exist)")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SymlinkLoopError(path, "symlink loop (the link points back to itself)")
        return UnreadableInputError(path, f"cannot read it ({exc.strerror or exc})")
    if not os.access(path, os.R_OK):
        return UnreadableInputError(path, "permission denied")
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links
    except OSError:
        return False  # a looping link: is_file() is False too; reported as a file if named like one


def walk_images(root: Path, extensions: frozenset[str]) -> Iterator[Path | InputError]:
    """Image files under ``root`` (or the problem met there), depth first, sorted by name.

    Hidden entries (``.name``) are skipped; a folder's files come before its subfolders. Linked
    folders are followed; a link leading back to a folder above it is a :class:`SymlinkLoopError`,
    a second link to a folder already walked is skipped (its files would be duplicates).
    """
    for found in walk_image_paths(root, extensions):
        yield found if isinstance(found, InputError) else Path(found[0])


def walk_image_paths(root: Path | str, extensions: frozenset[str]) -> Iterator[tuple[str, str] | InputError]:
    """:func:`walk_images` as ``(path, real path)`` text pairs, streamed: only the folder being listed is
    held (its entry names, sorted), and the real path of a plain file is its folder's real path plus its
    name (one ``realpath`` per folder and per linked file, not per file)."""
    seen: set[tuple[int, int]] = set()

    def visit(folder: str, ancestors: tuple[tuple[int, int], ...]) -> Iterator[tuple[str, str] | InputError]:
        try:
            st = os.stat(folder)
        except OSError as exc:
            yield UnreadableInputError(folder, f"cannot read this folder ({exc.strerror or exc})")
            return
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            yield SymlinkLoopError(
                folder, f"symlink loop (this folder link leads back to '{safe_text(os.path.realpath(folder))}')"
            )
            return
        if key in seen:
            return
        seen.add(key)
        files: list[tuple[str, bool]] = []
        subfolders: list[str] = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    if _is_dir(entry):
                        subfolders.append(entry.name)
                    elif os.path.splitext(entry.name)[1].lower() in extensions:
                        files.append((entry.name, entry.is_symlink()))
        except OSError as exc:
            reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
            yield UnreadableInputError(folder, f"cannot list this folder ({reason})")
            return
        real_folder = os.path.realpath(folder)
        files.sort()
        prefix = folder if folder.endswith(os.sep) else folder + os.sep
        for name, linked in files:
            path = prefix + name
            if not linked and os.access(path, os.R_OK):  # a plain readable file: one syscall, no stat
                yield path, real_folder + os.sep + name
                continue
            problem = check_file(path)
            if problem is not None:
                yield problem
            else:
                yield path, (os.path.realpath(path) if linked else real_folder + os.sep + name)
        del files
        for name in sorted(subfolders):
            yield from visit(os.path.join(folder, name), (*ancestors, key))

    yield from visit(os.fspath(root), ())
