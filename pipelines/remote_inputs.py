"""Images that live in object storage: a manifest's ``path`` may be a URI (``s3://bucket/key?...``, or any
scheme pyarrow's filesystems open), read where the image is loaded - in the actor - through
``pyarrow.fs`` (credentials from the environment, as for an S3 store). Local paths go to
:func:`nstcore.images.load_image` unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

__all__ = ["is_uri", "open_image", "read_uri", "sha256_uri", "uri_name"]

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_uri(path: Any) -> bool:
    return isinstance(path, str) and bool(_URI.match(path)) and not path.startswith("file://")


def uri_name(uri: str) -> str:
    """The object's file name: the last part of the key, without the query."""
    return uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=32)
def read_uri(uri: str) -> bytes:
    """The object's bytes (the last few kept: a loader hashes and decodes the same object);
    :class:`~nstcore.errors.ImageLoadError` naming the URI when it cannot be read."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    from nstcore.errors import ImageLoadError, ImageNotFoundError

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise ImageNotFoundError(uri, "no such object")
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except ImageLoadError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise ImageLoadError(uri, f"cannot read it ({type(exc).__name__}: {exc})") from exc


@functools.lru_cache(maxsize=65_536)
def sha256_uri(uri: str) -> str:
    """sha256 of the object's bytes (the store's ``image_id``)."""
    return hashlib.sha256(read_uri(uri)).hexdigest()


def open_image(path: str, **options: Any) -> Any:
    """The image at ``path`` (local file or URI) as an 8-bit RGB PIL image (:func:`nstcore.images.load_image`)."""
    from nstcore.images import load_image, load_image_bytes

    if is_uri(path):
        return load_image_bytes(read_uri(path), source=path, **options)
    return load_image(path, **options)
