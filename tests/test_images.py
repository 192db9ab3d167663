"""nstcore.images: colour-mode conversion, error reporting, tensor round trips, resize geometry.

References are hand-computed pixel values (alpha compositing formula, 16->8 bit scaling) and the
torchvision eval-transform geometry worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nstcore.errors import ImageLoadError, NstcoreError
from nstcore.images import (
    load_image,
    pil_to_tensor,
    resize_and_center_crop,
    resize_exact,
    resize_shorter,
    save_png,
    tensor_to_pil,
    to_rgb,
)


def _px(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img, dtype=np.int64)


def test_grayscale_png_becomes_rgb_with_equal_channels(tmp_path):
    gray = np.array([[0, 17], [128, 255]], dtype=np.uint8)
    p = tmp_path / "g.png"
    Image.fromarray(gray, mode="L").save(p)
    out = _px(load_image(p))
    assert out.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0]], [[0, 0, 255, 128], [10, 20, 30, 64]]], dtype=np.uint8)
    p = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    out = _px(load_image(p))
    a = rgba[..., 3:].astype(np.float64) / 255.0
    expected = a * rgba[..., :3] + (1.0 - a) * 255.0  # alpha over white, float64 textbook formula
    assert np.abs(out - expected).max() <= 1.0
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])  # fully transparent -> white


def test_palette_and_palette_with_transparency(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    p = tmp_path / "p.png"
    pal.save(p)
    np.testing.assert_array_equal(_px(load_image(p))[0], [[10, 20, 30], [200, 100, 50]])
    pal.info["transparency"] = 1  # index 1 fully transparent -> white
    p2 = tmp_path / "pt.png"
    pal.save(p2, transparency=1)
    np.testing.assert_array_equal(_px(load_image(p2))[0], [[10, 20, 30], [255, 255, 255]])


def test_sixteen_bit_grayscale_scaled_to_eight_bit(tmp_path):
    arr = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(arr).save(p)
    out = _px(load_image(p))[0, :, 0]
    # 255/65535 scaling, rounded: 257 -> 1, 32768 -> 127.5019 -> 128
    np.testing.assert_array_equal(out, [0, 1, 128, 255])


def test_cmyk_and_la_conversion():
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))
    cmyk.putpixel((1, 0), (0, 255, 255, 0))
    np.testing.assert_array_equal(_px(to_rgb(cmyk))[0], [[255, 255, 255], [255, 0, 0]])
    la = Image.fromarray(np.array([[[0, 255], [0, 0]]], dtype=np.uint8), mode="LA")
    np.testing.assert_array_equal(_px(to_rgb(la))[0], [[0, 0, 0], [255, 255, 255]])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_raises_image_load_error_naming_path(tmp_path, fmt):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    p = tmp_path / f"t.{fmt.lower()}"
    img.save(p, format=fmt)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as ei:
        load_image(p)
    assert str(p) in str(ei.value)
    assert ei.value.path == str(p)


def test_missing_empty_and_non_image_files(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(missing)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n" * 10)
    with pytest.raises(ImageLoadError) as ei:
        load_image(text)
    assert str(text) in str(ei.value)
    assert isinstance(ei.value, NstcoreError) and isinstance(ei.value, ValueError)


def test_pil_to_tensor_values_and_roundtrip(tmp_path):
    arr = np.array([[[0, 51, 255], [1, 2, 3]]], dtype=np.uint8)  # H=1, W=2
    t = pil_to_tensor(Image.fromarray(arr))
    assert t.dtype == torch.float32 and t.shape == (3, 1, 2)
    expected = torch.tensor(arr, dtype=torch.float64).permute(2, 0, 1) / 255.0
    torch.testing.assert_close(t.double(), expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(tensor_to_pil(t)), arr)
    out = save_png(t, tmp_path / "sub" / "x.png")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), arr)
    assert [f.name for f in out.parent.iterdir()] == ["x.png"]  # no temp file left behind


def test_tensor_to_pil_clamps_and_rounds():
    t = torch.tensor([-0.5, 0.2, 1.7, 0.5 / 255 + 1e-6]).view(1, 1, 4).expand(3, 1, 4)
    np.testing.assert_array_equal(np.asarray(tensor_to_pil(t))[0, :, 0], [0, 51, 255, 1])
    assert tensor_to_pil(t.unsqueeze(0)).size == (4, 1)
    with pytest.raises(NstcoreError):
        tensor_to_pil(torch.zeros(2, 3, 4, 4))


def test_resize_and_center_crop_geometry():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))  # W=300, H=200
    out = resize_and_center_crop(img, resize=100, crop=80, interpolation="nearest")
    assert out.size == (80, 80)
    # by hand: shorter side 200 -> 100, longer 300 -> 150; crop offsets top=(100-80)/2=10, left=(150-80)/2=35.
    # nearest: resized pixel (i, j) samples source (floor((i+0.5)*2), floor((j+0.5)*2)) = (2i+1, 2j+1)
    src = np.asarray(img)
    rows = 2 * np.arange(10, 90) + 1
    cols = 2 * np.arange(35, 115) + 1
    np.testing.assert_array_equal(np.asarray(out), src[rows][:, cols])


def test_resize_shorter_and_exact():
    img = Image.new("RGB", (40, 100), (1, 2, 3))
    assert resize_shorter(img, 20).size == (20, 50)
    assert resize_shorter(Image.new("RGB", (101, 50)), 25).size == (50, 25)  # int(25*101/50) = 50
    same = Image.fromarray(np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    np.testing.assert_array_equal(np.asarray(resize_shorter(same, 30)), np.asarray(same))  # no resampling
    assert resize_exact(img, (10, 20)).size == (20, 10)  # (height, width)
    assert resize_exact(img, 7).size == (7, 7)
    with pytest.raises(NstcoreError, match="interpolation"):
        resize_shorter(img, 10, interpolation="cubic-ish")
    with pytest.raises(NstcoreError):
        resize_and_center_crop(img, resize=10, crop=20)


# ------------------------------------------------------------------------------- limits (issue 7 part 5)


def test_header_limits_are_checked_before_decoding(tmp_path):
    from bad_inputs import png_with_header

    from nstcore.errors import ImageTooLargeError, ImageTooSmallError

    p = tmp_path / "claims.png"
    p.write_bytes(png_with_header(3000, 2000))  # 6,000,000 px claimed, ~100 bytes of data
    with pytest.raises(ImageTooLargeError, match="3000x2000 px \\(6,000,000 pixels\\), over the limit of 5,999,999"):
        load_image(p, max_pixels=5_999_999)
    with pytest.raises(ImageLoadError) as info:  # under the limit: decoded, and found truncated
        load_image(p, max_pixels=6_000_000)
    assert info.value.kind == "corrupt"
    small = tmp_path / "small.png"
    Image.new("RGB", (31, 40)).save(small)
    with pytest.raises(ImageTooSmallError, match="31x40 px; at least 32 px"):
        load_image(small, min_side=32)
    assert load_image(small, min_side=31).size == (31, 40)


def test_resize_refuses_extreme_aspect_and_output_before_allocating():
    from nstcore.errors import ImageAspectRatioError, ImageTooLargeError

    # 10 x 200 is exactly 20:1 (accepted); 10 x 201 is 20.1:1 (refused)
    assert resize_shorter(Image.new("RGB", (10, 200)), 5).size == (5, 100)
    with pytest.raises(ImageAspectRatioError, match="10x201 px, an aspect ratio of 20:1 \\(the limit is 20:1\\)"):
        resize_shorter(Image.new("RGB", (10, 201)), 5)
    # 100 x 150 with the shorter side to 3000: 3000 x 4500 = 13,500,000 px, under 4096^2 = 16,777,216
    img = Image.new("RGB", (100, 150))
    with pytest.raises(ImageTooLargeError, match="4000x6000 px would make 24,000,000 pixels"):
        resize_shorter(img, 4000)
    with pytest.raises(ImageTooLargeError, match="5000x5000"):
        resize_exact(img, 5000)
    with pytest.raises(ImageTooLargeError):
        resize_shorter(img, 10, max_pixels=149)  # 10 x 15 = 150 px
    assert resize_shorter(img, 10, max_pixels=150).size == (10, 15)


def test_limit_errors_name_the_loaded_file(tmp_path):
    from nstcore.errors import ImageAspectRatioError

    p = tmp_path / "strip.png"
    Image.new("L", (2, 100)).save(p)
    with pytest.raises(ImageAspectRatioError) as info:
        resize_and_center_crop(load_image(p), resize=256, crop=224)
    assert str(p) in str(info.value) and info.value.kind == "aspect_ratio"


@pytest.mark.parametrize("size", [(20, 30), (30, 20), 24])
def test_resize_exact_keeps_the_whole_image_never_crops(size):
    """Issue 23: the exact-size resize must scale the WHOLE picture (a crop would silently show a network
    another image). Reference: each output pixel of a box-filter resize is the mean of the source block it
    covers; built by hand with numpy on an image made of distinct blocks (2x integer downscale)."""
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(4)
    blocks = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    src = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)  # [2h, 2w]: each block 2x2, one colour
    out = np.asarray(resize_exact(Image.fromarray(src), size, interpolation="box"))
    np.testing.assert_array_equal(out, blocks)  # every block, the border ones included, in its place
    # any interpolation: the corners of the source stay the corners of the output
    src = np.zeros((2 * h + 1, 3 * w, 3), dtype=np.uint8)
    src[: h // 2, : w // 2] = (255, 0, 0)
    src[-(h // 2):, -(w // 2):] = (0, 0, 255)
    out = np.asarray(resize_exact(Image.fromarray(src), size, interpolation="bilinear"))
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[-1, -1]) == (0, 0, 255)


def test_pil_to_tensor_is_uint8_over_255_and_runs_no_torch_kernels():
    """The values are the float32 quotients of the bytes by 255 (checked against float64 division rounded to
    float32); and the conversion runs no torch compute kernel, so decoding threads never enter torch's intra-op
    thread pool (on a 16-core GPU node, 16 decoding threads each spun up 16 OpenMP threads there)."""
    import numpy as np
    from PIL import Image
    from torch.profiler import ProfilerActivity, profile

    from nstcore.images import pil_to_tensor

    gen = np.random.default_rng(0)
    pixels = gen.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    img = Image.fromarray(pixels, mode="RGB")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out = pil_to_tensor(img)
    expected = torch.from_numpy((pixels.astype(np.float64) / 255.0).astype(np.float32).transpose(2, 0, 1).copy())
    assert out.dtype == torch.float32 and out.shape == (3, 37, 53) and out.is_contiguous()
    assert torch.equal(out, expected)
    kernels = {e.key for e in prof.key_averages()} - {"aten::from_numpy", "aten::lift_fresh"}  # wrapping only
    assert not [k for k in kernels if k.startswith("aten::")], kernels
