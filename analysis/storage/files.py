"""Raw file operations on a store: durable writes, listing, reading, moving aside.

Durability (local stores): a file is written under a hidden temporary name in its final directory,
``fsync``-ed, renamed over the final name, and then the directory is ``fsync``-ed, so after
:func:`write_bytes` returns the file survives a power loss and a reader never sees half of it.
Object stores: one PUT of the final key is atomic already, so no rename is emulated.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable

import pyarrow.fs as pafs

from analysis.storage.layout import StoreLocation

__all__ = ["sync_dirs", "write_bytes", "write_stream", "read_bytes", "list_files", "list_dirs", "exists", "move"]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dirs(loc: StoreLocation, directories: Iterable[str]) -> None:
    """fsync ``directories`` (the entries :func:`write_bytes` made with ``sync_dir=False``)."""
    if loc.local:
        for directory in directories:
            _fsync_dir(directory)


def write_bytes(loc: StoreLocation, path: str, payload: bytes, *, sync_dir: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically and durably (see the module doc). ``sync_dir=False`` leaves
    the directory's fsync to the caller (:func:`sync_dirs`), to pay it once for many files."""
    directory, name = path.rsplit("/", 1)
    if not loc.local:
        loc.fs.create_dir(directory, recursive=True)
        with loc.fs.open_output_stream(path) as out:  # a single PUT of the final key
            out.write(payload)
        return
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{directory}/.{name}.tmp-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if sync_dir or created:
        _fsync_dir(directory)
    if created:  # a new directory entry in the parent must be durable too
        _fsync_dir(os.path.dirname(directory))


def write_stream(loc: StoreLocation, path: str, chunks: Iterable[bytes]) -> None:
    """:func:`write_bytes` for content produced piece by piece (a million-unit plan): the chunks go to the
    temporary file (object stores: a multipart upload of a hidden temporary key, copied to the final key)
    as they come, so memory holds one chunk; the final name appears only once every chunk is written. An
    exception from ``chunks`` leaves nothing behind."""
    directory, name = path.rsplit("/", 1)
    tmp = f"{directory}/.{name}.tmp-{secrets.token_hex(4)}"
    if not loc.local:  # a multipart upload completes on close whatever happened: stream to a hidden key first
        loc.fs.create_dir(directory, recursive=True)
        try:
            with loc.fs.open_output_stream(tmp) as out:
                for chunk in chunks:
                    out.write(chunk)
            loc.fs.copy_file(tmp, path)
        finally:
            try:
                loc.fs.delete_file(tmp)
            except OSError:
                pass
        return
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    try:
        with open(tmp, "xb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
    if created:
        _fsync_dir(os.path.dirname(directory))


def read_bytes(loc: StoreLocation, path: str) -> bytes:
    """The content of ``path``; FileNotFoundError when it does not exist."""
    with loc.fs.open_input_stream(path) as f:
        return f.read()


def exists(loc: StoreLocation, path: str) -> bool:
    """Whether ``path`` is a file."""
    return loc.fs.get_file_info(path).type == pafs.FileType.File


def list_files(loc: StoreLocation, directory: str, suffix: str) -> list[str]:
    """Sorted base names of the visible files ending in ``suffix`` directly in ``directory``."""
    infos = loc.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return sorted(
        i.base_name for i in infos
        if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
        and not i.base_name.startswith((".", "_"))
    )


def list_dirs(loc: StoreLocation, directory: str) -> list[str]:
    """Sorted base names of the sub-directories of ``directory`` (object stores: common prefixes)."""
    infos = loc.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def move(loc: StoreLocation, src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` (creating ``dst``'s directory); never deletes data."""
    directory = dst.rsplit("/", 1)[0]
    if loc.local:
        os.makedirs(directory, exist_ok=True)
        os.replace(src, dst)
        _fsync_dir(directory)
        _fsync_dir(os.path.dirname(src))
        return
    loc.fs.create_dir(directory, recursive=True)
    loc.fs.copy_file(src, dst)  # object stores: copy first, remove the original only after
    loc.fs.delete_file(src)
