"""Exceptions raised by nstcore.

Every error is a :class:`NstcoreError` (itself a :class:`ValueError`, so callers that only know
"bad input" still catch it). Messages say what went wrong, where, and what to do about it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from os import PathLike
from typing import Any

__all__ = [
    "NstcoreError",
    "UnknownBackboneError",
    "UnknownLayerError",
    "UnsupportedOptionError",
    "WeightsNotFoundError",
    "WeightsMismatchError",
    "WeightsCorruptError",
    "ClassifierUnavailableError",
    "ImageLoadError",
    "ImageNotFoundError",
    "ImageUnreadableError",
    "ImageSymlinkLoopError",
    "ImageEmptyError",
    "NotAnImageError",
    "ImageDecodeError",
    "ImageTooLargeError",
    "ImageAspectRatioError",
    "ImageTooSmallError",
    "display_path",
]


class NstcoreError(ValueError):
    """Base class of every error raised by nstcore."""


def _names(names: Iterable[str], limit: int = 60) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class UnknownBackboneError(NstcoreError):
    """A backbone name that is not in the registry."""

    def __init__(self, name: str, registered: Iterable[str]) -> None:
        self.name = name
        self.registered = tuple(registered)
        super().__init__(
            f"unknown backbone {name!r}; registered backbones: {_names(self.registered)}. "
            "Pick one of these (see `texprobe models`)."
        )


class UnknownLayerError(NstcoreError):
    """A layer name that the backbone does not have."""

    def __init__(self, layer: str, backbone: str, valid: Iterable[str]) -> None:
        self.layer = layer
        self.backbone = backbone
        self.valid = tuple(valid)
        super().__init__(
            f"backbone {backbone!r} has no layer {layer!r}; valid layer names (forward order): "
            f"{_names(self.valid)}."
        )


class UnsupportedOptionError(NstcoreError):
    """An option value that this backbone (or function) does not support."""


class WeightsNotFoundError(NstcoreError):
    """The weights file could not be found (and could not be downloaded)."""


class WeightsMismatchError(NstcoreError):
    """A weights file whose keys or tensor shapes do not match the architecture."""


class WeightsCorruptError(WeightsMismatchError):
    """A weights file that cannot be read as a state dict at all (not a zip/pickle, truncated)."""


class ClassifierUnavailableError(NstcoreError):
    """``logits`` was called on a feature extractor that has no (or no longer a) classifier."""


def display_path(path: str | PathLike[str] | bytes) -> str:
    """A path as printable, encodable text: undecodable bytes (a non-UTF-8 file name kept by Python
    as surrogate escapes) become ``\\xNN``, so Parquet, JSON and terminals never raise on it."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


class ImageLoadError(NstcoreError):
    """An image file that cannot be used; subclasses name the reason (``kind``)."""

    #: Short machine-readable reason, stable across versions (e.g. for counting errors rows).
    kind = "load"
    #: What the user can do about it (the last sentence of the message).
    advice = "Check the file (re-download or re-export it) or remove it from the input list."

    def __init_subclass__(cls, *, kind: str | None = None, advice: str | None = None, **kwargs: Any) -> None:
        """A subclass gives its ``kind`` (and its ``advice``, where it differs) in its class line."""
        super().__init_subclass__(**kwargs)
        cls.kind = kind or cls.kind
        cls.advice = advice or cls.advice

    def __init__(self, path: str | PathLike[str] | bytes, reason: str, *, action: str = "load") -> None:
        self.path = display_path(path)
        self.reason = reason
        super().__init__(f"cannot {action} image '{self.path}': {reason}. {self.advice}")


class ImageNotFoundError(ImageLoadError, kind="missing", advice="Check the path, or remove it from the input list."):
    """The path does not exist (or is a dangling symlink) or is not a regular file."""


class ImageUnreadableError(ImageLoadError, kind="unreadable",
                           advice="Make it readable (e.g. `chmod a+r`) for the user running texprobe, or remove it."):
    """The file exists but this process may not read it (permissions)."""


class ImageSymlinkLoopError(ImageLoadError, kind="symlink_loop",
                            advice="Fix or delete the link (`ls -l` shows where it points)."):
    """The path is a symbolic link that (eventually) points back to itself."""


class ImageEmptyError(ImageLoadError, kind="empty"):
    """A 0-byte file."""


class NotAnImageError(ImageLoadError, kind="not_an_image"):
    """Bytes that no Pillow decoder recognises (e.g. a text file named ``.png``)."""


class ImageDecodeError(ImageLoadError, kind="corrupt"):
    """A recognised format whose data is truncated or corrupt."""


class ImageTooLargeError(ImageLoadError, kind="too_large",
                         advice="Downscale the image (e.g. to at most 4096 px per side) or remove it from the input list."):
    """Too many pixels to decode (a decompression bomb header) or to produce after resizing."""


class ImageAspectRatioError(ImageLoadError, kind="aspect_ratio",
                            advice="Crop or pad it to a less extreme aspect ratio, or remove it from the input list."):
    """An aspect ratio so extreme that the resize policy would make a huge or degenerate image."""


class ImageTooSmallError(ImageLoadError, kind="too_small",
                         advice="Use a larger image (upscale it deliberately if you must) or remove it from the input list."):
    """Fewer pixels on the shorter side than the network needs."""
