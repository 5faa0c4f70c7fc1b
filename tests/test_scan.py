"""The scanner on real bad files made here, and on the real placeholder GIF in hymenoptera."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.errors import DataError
from edgecnn.data.scan import DEFAULT_MAX_PIXELS, ScanResult, degenerate_reason, load_image_rgb, scan_file


def photo(h=48, w=64, seed=0) -> np.ndarray:
    """A photo-like RGB array: smooth gradients plus noise (thousands of colours)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h) + 60], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def save(img: Image.Image, path: Path, fmt=None, **kw) -> Path:
    img.save(path, format=fmt, **kw)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG with a valid IHDR of any size and no pixel data (nothing big is allocated)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_good_jpeg(tmp_path):
    p = save(Image.fromarray(photo()), tmp_path / "a.jpg", quality=95)
    r = scan_file(p)
    assert r == ScanResult(p, True, None, "JPEG", 64, 48, "RGB")
    rgb = load_image_rgb(p)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8


def test_zero_byte(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    r = scan_file(p)
    assert not r.ok and r.reason == "empty file (0 bytes)" and r.format is None
    with pytest.raises(DataError) as exc:
        load_image_rgb(p)
    assert str(exc.value) == (f"cannot load image '{p}': empty file (0 bytes). Remove or replace the file "
                              "(`edgecnn audit DATA_DIR` lists every bad file).")


def test_text_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello, I am not a picture\n")
    r = scan_file(p)
    assert not r.ok and r.reason == "not an image (Pillow cannot identify the file format)"


def test_other_extension_is_not_an_image(tmp_path):
    p = tmp_path / "README.txt"
    p.write_text("x")
    assert scan_file(p).reason == "not an image file (extension '.txt')"


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(photo(96, 128)).save(buf, "JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    r = scan_file(p)
    assert not r.ok and r.reason.startswith("truncated or corrupt image data (image file is truncated")
    assert (r.format, r.width, r.height) == ("JPEG", 128, 96)  # the header was still readable
    with pytest.raises(DataError, match="cannot load image .*cut.jpg.*truncated"):
        load_image_rgb(p)


def test_cmyk_jpeg(tmp_path):
    p = save(Image.fromarray(photo()).convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    r = scan_file(p)
    assert r.ok and r.mode == "CMYK"
    rgb = load_image_rgb(p)
    assert rgb.shape == (48, 64, 3)
    assert np.abs(rgb.astype(int) - photo().astype(int)).mean() < 20


def test_rgba_png_composited_on_white(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = photo(20, 30)
    rgba[:, :15, 3] = 0  # left half fully transparent
    rgba[:, 15:, 3] = 255
    p = save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png")
    rgb = load_image_rgb(p)
    assert rgb.shape == (20, 30, 3)
    assert (rgb[:, :15] == 255).all()
    assert (rgb[:, 15:] == photo(20, 30)[:, 15:]).all()


def test_grayscale_and_16bit(tmp_path):
    gray = photo()[..., 0]
    p = save(Image.fromarray(gray, "L"), tmp_path / "g.png")
    rgb = load_image_rgb(p)
    assert (rgb == gray[..., None]).all()
    deep = gray.astype(np.uint16) * 257
    p16 = save(Image.fromarray(deep), tmp_path / "g16.png")
    assert scan_file(p16).ok
    assert (load_image_rgb(p16) == gray[..., None]).all()


def test_palette_gif_animation_first_frame(tmp_path):
    frames = [Image.fromarray(photo(seed=k)).convert("P") for k in range(3)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(p).n_frames == 3
    r = scan_file(p)
    assert r.ok and r.format == "GIF"
    first = np.asarray(frames[0].convert("RGB"))
    assert (load_image_rgb(p) == first).all()


def test_png_named_jpg_is_kept_with_warning(tmp_path):
    p = save(Image.fromarray(photo()), tmp_path / "really_png.jpg", fmt="PNG")
    r = scan_file(p)
    assert r.ok and r.format == "PNG"
    assert r.reason == ("extension .jpg but the file is PNG; kept because it decodes correctly "
                        "(rename it to .png to silence this warning)")


def test_exif_orientation(tmp_path):
    img = Image.fromarray(photo(40, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = save(img, tmp_path / "rot.jpg", exif=exif, quality=95)
    assert load_image_rgb(p).shape == (60, 40, 3)


def test_bomb_checked_from_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header(10_000, 10_000))  # 100 MP: over our cap, under Pillow's error limit
    r = scan_file(p)
    assert not r.ok and (r.width, r.height) == (10_000, 10_000)
    assert r.reason == ("decompression bomb: 10000x10000 = 100,000,000 pixels is over the limit of "
                        f"{DEFAULT_MAX_PIXELS:,} (max_pixels); not decoded")
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(100_000, 100_000))
    r = scan_file(huge)
    assert not r.ok and r.reason.startswith("decompression bomb")
    with pytest.raises(DataError, match="decompression bomb"):
        load_image_rgb(huge)
    # The cap is configurable.
    small = save(Image.fromarray(photo()), tmp_path / "small.png")
    assert scan_file(small, max_pixels=100).reason.startswith("decompression bomb: 64x48 = 3,072 pixels")


def test_corrupt_png(tmp_path):
    good = io.BytesIO()
    Image.fromarray(photo()).save(good, "PNG")
    data = bytearray(good.getvalue())
    data[60:200] = b"\x00" * 140  # smash the compressed data
    p = tmp_path / "bad.png"
    p.write_bytes(bytes(data))
    r = scan_file(p)
    assert not r.ok and ("corrupt" in r.reason or "truncated" in r.reason)


def test_blank_and_placeholder_detection(tmp_path):
    assert degenerate_reason(np.full((50, 50, 3), 7, np.uint8)).startswith("blank image")
    card = np.full((100, 100, 3), 255, np.uint8)
    card[40:60, 10:90] = (200, 0, 0)
    assert degenerate_reason(card).startswith("placeholder or blank image (2 distinct colours")
    assert degenerate_reason(photo()) is None
    p = save(Image.fromarray(card).convert("P"), tmp_path / "card.gif")
    assert not scan_file(p).ok


def test_real_placeholder_gif(hymenoptera):
    r = scan_file(hymenoptera / "train" / "ants" / "imageNotFound.gif")
    assert not r.ok and r.format == "GIF" and (r.width, r.height) == (300, 300)
    assert r.reason.startswith("placeholder or blank image")


def test_no_real_photo_flagged(hymenoptera):
    flagged = [p.name for p in sorted(hymenoptera.rglob("*")) if p.is_file() and not scan_file(p).ok]
    assert flagged == ["imageNotFound.gif"]
