"""Image loading, conversion and resizing (Pillow + numpy; no ``torchvision.io``).

Conversion rules of :func:`to_rgb` (used by :func:`load_image`), always to 8-bit RGB:

* ``RGB``: unchanged.
* ``L``, ``1``, ``P`` (palette without transparency), ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's
  ``convert("RGB")`` (grey replicated to the three channels; CMYK by Pillow's naive formula
  ``R = 255 - C - K`` clipped, no ICC profile).
* ``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La`` and palette images with a transparency entry: alpha
  composited over a WHITE background (``out = a*rgb + (1-a)*255``).
* 16-bit and 32-bit integer modes (``I;16``, ``I;16B``, ``I;16L``, ``I``): values are taken as
  16-bit (0..65535), scaled by 255/65535 and rounded (values outside that range are clipped).
* ``F`` (32-bit float): taken as [0, 1], scaled by 255, rounded and clipped.

EXIF orientation is NOT applied (pixels are used as stored, like the reference loaders of the
model-vs-human toolbox).

Limits (one bad file costs one error, never the memory of a worker):

* :func:`load_image` reads only the header first and refuses more than ``max_pixels`` (default
  :data:`MAX_DECODE_PIXELS`, Pillow's own ``Image.MAX_IMAGE_PIXELS`` default, about 0.25 GiB of RGB)
  before anything is decoded (a "decompression bomb": a few bytes claiming 100000 x 100000 px), and
  fewer than ``min_side`` pixels on the shorter side (:data:`MIN_SIDE` is the policy for model inputs).
* The resize functions refuse, before resampling, an aspect ratio over ``max_aspect`` (default
  :data:`MAX_ASPECT`) and an output of more than ``max_pixels`` (default :data:`MAX_OUTPUT_PIXELS`):
  a 93-byte 1 x 4000 PNG resized to a 256 px shorter side would otherwise be 256 x 1,024,000 px.

Every failure is an :class:`~nstcore.errors.ImageLoadError` subclass whose ``kind`` names the reason.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import tempfile
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from nstcore.errors import (
    ImageAspectRatioError,
    ImageDecodeError,
    ImageEmptyError,
    ImageLoadError,
    ImageNotFoundError,
    ImageSymlinkLoopError,
    ImageTooLargeError,
    ImageTooSmallError,
    ImageUnreadableError,
    NotAnImageError,
    UnsupportedOptionError,
)

__all__ = [
    "INTERPOLATIONS",
    "MAX_ASPECT",
    "MAX_DECODE_PIXELS",
    "MAX_OUTPUT_PIXELS",
    "MIN_SIDE",
    "load_image",
    "load_image_bytes",
    "to_rgb",
    "pil_to_tensor",
    "tensor_to_pil",
    "save_png",
    "resize_shorter",
    "resize_exact",
    "center_crop",
    "resize_and_center_crop",
]

#: Interpolation names accepted by the resize functions.
INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}

#: Most pixels :func:`load_image` decodes (Pillow's default ``Image.MAX_IMAGE_PIXELS``).
MAX_DECODE_PIXELS = 89_478_485
#: Most pixels a resize may produce (4096 x 4096; a float32 RGB tensor of 192 MiB).
MAX_OUTPUT_PIXELS = 4096 * 4096
#: Largest long/short side ratio the resize functions accept (panoramas reach about 10:1).
MAX_ASPECT = 20.0
#: Shorter side a model input needs: VGG/ResNet pool five times (32 px -> 1 px at the last stage),
#: and a smaller source upscaled to 224 px carries almost no shape or texture information.
MIN_SIDE = 32
#: ``info`` key under which :func:`load_image` records the (printable) source path for messages.
SOURCE_KEY = "texprobe.source"

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_INT16_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def load_image(
    path: str | PathLike[str], *, max_pixels: int = MAX_DECODE_PIXELS, min_side: int = 1
) -> Image.Image:
    """Read an image file and return it as an 8-bit RGB :class:`PIL.Image.Image`.

    The header is checked first (at most ``max_pixels`` pixels, at least ``min_side`` on the
    shorter side), then the file is decoded completely (``img.load()``), so truncation is detected
    here. Every failure raises an :class:`~nstcore.errors.ImageLoadError` subclass (missing,
    unreadable, symlink loop, empty, not an image, corrupt, too large, too small); nothing else
    escapes, not even a ``MemoryError``. See the module docstring for the colour-mode rules.
    """
    p = Path(path)
    _check_file(p)
    try:
        fh = open(p, "rb")
    except PermissionError as exc:
        raise ImageUnreadableError(p, "permission denied") from exc
    except OSError as exc:
        raise ImageLoadError(p, f"cannot open it ({exc.strerror or exc})") from exc
    with fh:
        out = _decode(fh, p, head=lambda: _head(p), max_pixels=max_pixels, min_side=min_side)
    out.info[SOURCE_KEY] = str(path)
    return out


def load_image_bytes(
    data: bytes, *, source: str, max_pixels: int = MAX_DECODE_PIXELS, min_side: int = 1
) -> Image.Image:
    """:func:`load_image` for an image already in memory (e.g. read from object storage); ``source`` (a URI)
    names it in every error and in ``info[SOURCE_KEY]``. The same checks and errors as from a file."""
    if not data:
        raise ImageEmptyError(source, "it is empty (0 bytes)")
    out = _decode(io.BytesIO(data), source, head=lambda: repr(bytes(data[:8])), max_pixels=max_pixels,
                  min_side=min_side)
    out.info[SOURCE_KEY] = source
    return out


def _decode(fh: Any, p: Any, *, head: Any, max_pixels: int, min_side: int) -> Image.Image:
    """Open, check the header of and fully decode the image in ``fh`` (errors name ``p``)."""
    try:
        img = Image.open(fh)
    except UnidentifiedImageError as exc:
        raise NotAnImageError(p, f"not an image format Pillow can identify (it starts with {head()})") from exc
    except Image.DecompressionBombError as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(claimed[1]):,} pixels" if claimed else "too many pixels"
        raise ImageTooLargeError(
            p, f"its header claims {count}, over the limit of {max_pixels:,} (a decompression bomb?)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a hostile header may raise anything
        raise ImageDecodeError(p, f"corrupt image header ({type(exc).__name__}: {exc})") from exc
    with img:
        _check_header(p, img.size, max_pixels=max_pixels, min_side=min_side)
        try:
            img.load()
            return to_rgb(img)
        except MemoryError as exc:
            raise ImageTooLargeError(p, "not enough memory to decode it") from exc
        except Exception as exc:  # noqa: BLE001 - OSError, SyntaxError, ValueError, EOFError, ...
            raise ImageDecodeError(
                p, f"truncated or corrupt image data ({type(exc).__name__}: {exc})"
            ) from exc


def _head(path: Path, n: int = 8) -> str:
    """The first ``n`` bytes of a file, as a Python bytes literal (for "not an image" messages)."""
    try:
        with open(path, "rb") as f:
            return repr(f.read(n))
    except OSError:
        return "unreadable bytes"


def _check_file(p: Path) -> None:
    """Raise the specific error for a path that is not a readable, non-empty regular file."""
    try:
        st = os.stat(p)
    except FileNotFoundError as exc:
        if os.path.islink(p):
            raise ImageNotFoundError(p, "broken symbolic link (its target does not exist)") from exc
        raise ImageNotFoundError(p, "the file does not exist") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageSymlinkLoopError(p, "symlink loop (the link points back to itself)") from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ImageUnreadableError(p, "permission denied") from exc
        raise ImageLoadError(p, f"cannot stat it ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ImageNotFoundError(p, "the path is not a regular file (a folder, device or pipe)")
    if st.st_size == 0:
        raise ImageEmptyError(p, "the file is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise ImageUnreadableError(p, "permission denied")


def _check_header(p: Path, size: tuple[int, int], *, max_pixels: int, min_side: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageTooLargeError(
            p, f"its header claims {w}x{h} px ({w * h:,} pixels), over the limit of {max_pixels:,}"
        )
    if min(w, h) < min_side:
        raise ImageTooSmallError(
            p, f"it is {w}x{h} px; at least {min_side} px are needed on the shorter side"
        )


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow image to 8-bit RGB by the rules in the module docstring."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in _INT16_MODES:
        arr = np.asarray(img, dtype=np.float64)
        arr8 = np.clip(np.rint(arr * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr8 = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    return img.convert("RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Pillow image -> float32 tensor ``[3, H, W]`` in [0, 1] (``uint8 / 255``); non-RGB converted first.

    The conversion is numpy's (single-threaded, the GIL released in its loops), not torch kernels: it runs
    in decoding threads, and a torch kernel there enters torch's intra-op thread pool from every decoding
    thread at once (16 threads x 16 OpenMP threads on a 16-core GPU node) while the network uses the same
    pool. The values are the same bits (float32 division, correctly rounded, either way)."""
    if img.mode != "RGB":
        img = to_rgb(img)
    arr = np.asarray(img, dtype=np.uint8)  # [H, W, 3]
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
    chw /= np.float32(255.0)
    return torch.from_numpy(chw)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Tensor ``[3, H, W]`` (or ``[1, 3, H, W]``, or one channel ``[1, H, W]``) in [0, 1] -> 8-bit image.

    Values are clamped to [0, 1] and rounded to the nearest of the 256 levels.
    """
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise UnsupportedOptionError(
            f"tensor_to_pil expects a [3,H,W], [1,3,H,W] or [1,H,W] tensor, got shape {tuple(t.shape)}; "
            "pass one image at a time."
        )
    arr = (t.detach().to("cpu", torch.float64).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    if t.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), mode="L")
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def save_png(t: torch.Tensor | Image.Image, path: str | PathLike[str]) -> Path:
    """Write a tensor (see :func:`tensor_to_pil`) or image as PNG, atomically (temp file + rename)."""
    img = t if isinstance(t, Image.Image) else tensor_to_pil(t)
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, format="PNG")
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def _resample(interpolation: str) -> Image.Resampling:
    try:
        return INTERPOLATIONS[interpolation]
    except KeyError:
        raise UnsupportedOptionError(
            f"unknown interpolation {interpolation!r}; use one of {sorted(INTERPOLATIONS)}"
        ) from None


def _check_size(size: int, what: str) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UnsupportedOptionError(f"{what} must be a positive int, got {size!r}")


def _source(img: Image.Image) -> str:
    return str(img.info.get(SOURCE_KEY) or getattr(img, "filename", "") or "<in-memory image>")


def _check_output(img: Image.Image, new_w: int, new_h: int, *, max_pixels: int) -> None:
    if new_w * new_h > max_pixels:
        w, h = img.size
        raise ImageTooLargeError(
            _source(img),
            f"it is {w}x{h} px and resizing it to {new_w}x{new_h} px would make {new_w * new_h:,} "
            f"pixels, over the limit of {max_pixels:,}",
            action="resize",
        )


def resize_shorter(
    img: Image.Image,
    size: int,
    *,
    interpolation: str = "bilinear",
    max_aspect: float = MAX_ASPECT,
    max_pixels: int = MAX_OUTPUT_PIXELS,
) -> Image.Image:
    """Resize so that the shorter side is ``size`` pixels, keeping the aspect ratio.

    The longer side is ``int(size * long / short)`` (truncated, as torchvision's ``Resize(int)``).
    An image already of that size is returned as a copy, without resampling. Before any pixel is
    allocated, an aspect ratio over ``max_aspect`` raises :class:`~nstcore.errors.ImageAspectRatioError`
    and an output over ``max_pixels`` raises :class:`~nstcore.errors.ImageTooLargeError`.
    """
    _check_size(size, "resize size")
    w, h = img.size
    if min(w, h) < 1:
        raise ImageTooSmallError(_source(img), f"it is {w}x{h} px (empty)", action="resize")
    if max(w, h) / min(w, h) > max_aspect:
        raise ImageAspectRatioError(
            _source(img),
            f"it is {w}x{h} px, an aspect ratio of {max(w, h) / min(w, h):,.0f}:1 (the limit is "
            f"{max_aspect:g}:1); resizing its shorter side to {size} px would make it "
            f"{max(w, h) * size // min(w, h):,} px long",
            action="resize",
        )
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    _check_output(img, new_w, new_h, max_pixels=max_pixels)
    if (new_w, new_h) == (w, h):
        return img.copy()
    return img.resize((new_w, new_h), resample=_resample(interpolation))


def resize_exact(
    img: Image.Image,
    size: int | tuple[int, int],
    *,
    interpolation: str = "bilinear",
    max_pixels: int = MAX_OUTPUT_PIXELS,
) -> Image.Image:
    """Resize to exactly ``size`` (an int for a square, or ``(height, width)``), ignoring aspect ratio.

    An output over ``max_pixels`` raises :class:`~nstcore.errors.ImageTooLargeError`.
    """
    h, w = (size, size) if isinstance(size, int) else size
    _check_size(h, "height")
    _check_size(w, "width")
    _check_output(img, w, h, max_pixels=max_pixels)
    if img.size == (w, h):
        return img.copy()
    return img.resize((w, h), resample=_resample(interpolation))


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Crop the central ``size`` x ``size`` square (offsets rounded as torchvision's ``CenterCrop``)."""
    _check_size(size, "crop size")
    w, h = img.size
    if size > w or size > h:
        raise UnsupportedOptionError(
            f"cannot centre-crop {size}x{size} from a {w}x{h} image; resize it first"
        )
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def resize_and_center_crop(
    img: Image.Image, *, resize: int, crop: int, interpolation: str = "bilinear"
) -> Image.Image:
    """Shorter side to ``resize``, then the central ``crop`` x ``crop`` square (torchvision eval transform)."""
    if crop > resize:
        raise UnsupportedOptionError(f"crop ({crop}) must not exceed resize ({resize})")
    return center_crop(resize_shorter(img, resize, interpolation=interpolation), crop)
