"""Image intake: formats told apart by their bytes, 8-bit RGB out of every JPEG and PNG
variant, EXIF orientation applied, and each refusal with its stable code (DESIGN §5).

Pillow is the oracle: it decodes independently of OpenCV, and it writes the synthetic
inputs (EXIF tags, GIF, WebP) that OpenCV cannot."""

import io
import struct
import time
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageOps, features

from core.settings import Settings
from enrollment import capture
from enrollment.intake import ImageTooLarge, ImageUnreadable, Limits, RGBImage, decode, sniff
from tests.conftest import FACES

PHOTOS = sorted(p.name for p in FACES.iterdir() if p.suffix in {".jpg", ".png"})
EXIF_ORIENTATION = 0x0112
RED = (255, 0, 0)


def default_limits() -> Limits:
    return capture.limits(Settings())


@cache
def photo(name: str) -> bytes:
    return (FACES / name).read_bytes()


def encode(array: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], ext: str) -> bytes:
    """``array`` (OpenCV's BGR order) encoded by OpenCV as ``ext`` (".png", ".jpg")."""
    ok, buffer = cv2.imencode(ext, array)
    assert ok
    return bytes(buffer.tobytes())


def pillow_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def pillow_rgb(data: bytes) -> RGBImage:
    """What Pillow makes of ``data``: EXIF orientation applied, alpha dropped, 8-bit RGB."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        assert upright is not None
        return np.asarray(upright.convert("RGB"), dtype=np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG whose header declares ``width`` x ``height`` 8-bit RGB pixels and
    whose data holds one short row: tiny on the wire, a bomb if trusted."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def sof_offset(jpeg: bytes) -> int:
    """Where the baseline frame header (FF C0) of an OpenCV-written JPEG starts."""
    at = jpeg.find(b"\xff\xc0")
    assert at > 0
    return at


def with_declared_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header rewritten to declare ``width`` x ``height``."""
    at = sof_offset(jpeg)
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_12_bit(value: int) -> bytes:
    """One 8x8 grey block of ``value`` (0-4095) as a 12-bit extended JPEG (SOF1).

    Neither OpenCV nor Pillow writes 12-bit JPEGs, so it is coded by hand: quantisation
    of 1, one Huffman code for the DC category and one for end-of-block.
    """
    dc = 8 * (value - 2048)  # level shift 2^11; the DC term of a flat block is 8x its level
    category = dc.bit_length()
    assert dc > 0
    bits = "0" + format(dc, f"0{category}b") + "0"
    bits += "1" * (-len(bits) % 8)
    scan = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    one_code = bytes([1] + [0] * 15)
    return (
        b"\xff\xd8"
        + jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
        + jpeg_segment(0xC1, struct.pack(">BHHB", 12, 8, 8, 1) + b"\x01\x11\x00")
        + jpeg_segment(0xC4, b"\x00" + one_code + bytes([category]) + b"\x10" + one_code + b"\x00")
        + jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + scan
        + b"\xff\xd9"
    )


def webp() -> bytes:
    if features.check("webp"):
        return pillow_bytes(Image.new("RGB", (16, 16), RED), "WEBP")
    return b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24)


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


class TestSniff:
    @pytest.mark.parametrize("name", PHOTOS)
    def test_format_is_what_the_bytes_say(self, name: str) -> None:
        with Image.open(FACES / name) as image:
            expected = (image.format or "").lower()
        assert sniff(photo(name)) == expected

    def test_a_jpeg_saved_as_png_is_still_a_jpeg(self, tmp_path: Path) -> None:
        misnamed = tmp_path / "capture.png"
        misnamed.write_bytes(photo("obama.jpg"))
        data = misnamed.read_bytes()
        assert sniff(data) == "jpeg"
        assert decode(data, default_limits()).shape == (1137, 910, 3)

    def test_a_png_is_a_png_whatever_type_it_was_declared_as(self) -> None:
        # Declared content types never reach intake; only the leading bytes count.
        assert sniff(photo("lin-manuel-miranda.png")) == "png"
        assert sniff(photo("32bit.png")) == "png"


class TestDecode:
    @pytest.mark.parametrize("name", PHOTOS)
    def test_every_photo_decodes_to_8_bit_rgb_as_pillow_sees_it(self, name: str) -> None:
        data = photo(name)
        image = decode(data, default_limits())
        expected = pillow_rgb(data)
        assert image.dtype == np.uint8
        assert image.ndim == 3
        assert image.shape == expected.shape
        difference = float(np.abs(image.astype(np.int16) - expected).mean())
        assert difference < 1.0, f"{name}: mean difference from Pillow {difference:.3f}"

    def test_the_32_bit_photo_loses_its_alpha_channel(self) -> None:
        with Image.open(FACES / "32bit.png") as image:
            assert image.mode == "RGBA"
        assert decode(photo("32bit.png"), default_limits()).shape == (1200, 626, 3)

    def test_transparent_rgba_keeps_its_colour_not_premultiplied(self) -> None:
        rgba = np.zeros((20, 30, 4), dtype=np.uint8)
        rgba[...] = (200, 100, 50, 0)
        image = decode(pillow_bytes(Image.fromarray(rgba, "RGBA"), "PNG"), default_limits())
        assert image.shape == (20, 30, 3)
        assert (image == (200, 100, 50)).all()

    @pytest.mark.parametrize("ext", [".png", ".jpg"])
    def test_grey_is_expanded_to_three_equal_channels(self, ext: str) -> None:
        ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (32, 1))
        image = decode(encode(ramp, ext), default_limits())
        assert image.shape == (32, 64, 3)
        assert (image[..., 0] == image[..., 1]).all()
        assert (image[..., 1] == image[..., 2]).all()
        tolerance = 0 if ext == ".png" else 3
        assert int(np.abs(image[..., 0].astype(np.int16) - ramp).max()) <= tolerance

    def test_16_bit_png_is_scaled_to_8_bits(self) -> None:
        bgr = np.zeros((10, 12, 3), dtype=np.uint16)
        bgr[..., 0] = 65535  # blue
        bgr[..., 1] = 100 * 256  # green
        data = encode(bgr, ".png")
        assert data[24] == 16, "the test image must really be a 16-bit PNG"
        image = decode(data, default_limits())
        assert image.dtype == np.uint8
        assert (image == (0, 100, 255)).all()

    def test_16_bit_grey_png_full_scale_is_white(self) -> None:
        image = decode(encode(np.full((8, 8), 65535, dtype=np.uint16), ".png"), default_limits())
        assert (image == 255).all()

    def test_12_bit_jpeg_is_refused_or_kept_at_full_scale(self) -> None:
        # Intake scales 16-bit samples with >> 8; a 12-bit JPEG decoded to 0-4095 and
        # shifted the same way would come out almost black. Refusing it is fine too.
        data = jpeg_12_bit(4095)
        try:
            image = decode(data, default_limits())
        except ImageUnreadable:
            return
        assert int(image.min()) >= 250, f"a white 12-bit JPEG decoded to {int(image.min())}"

    def test_one_pixel_png_is_a_readable_image(self) -> None:
        image = decode(pillow_bytes(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"), default_limits())
        assert image.shape == (1, 1, 3)
        assert tuple(int(v) for v in image[0, 0]) == (1, 2, 3)

    def test_progressive_jpeg_decodes(self) -> None:
        pixels = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
        data = pillow_bytes(Image.fromarray(pixels), "JPEG", progressive=True)
        assert decode(data, default_limits()).shape == (32, 48, 3)


class TestExifOrientation:
    """A landscape 96x64 JPEG with a red top-left corner, tagged to be shown rotated."""

    @staticmethod
    def tagged(orientation: int) -> bytes:
        pixels = np.zeros((64, 96, 3), dtype=np.uint8)
        pixels[:16, :16] = RED
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        return pillow_bytes(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)

    @staticmethod
    def red_corner(image: RGBImage) -> tuple[str, str]:
        red = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
        rows, cols = np.nonzero(red)
        height, width = image.shape[:2]
        assert 200 <= rows.size <= 312, "the red block must survive whole"
        vertical = "top" if rows.mean() < height / 2 else "bottom"
        horizontal = "left" if cols.mean() < width / 2 else "right"
        return vertical, horizontal

    @pytest.mark.parametrize(
        ("orientation", "shape", "corner"),
        [
            (1, (64, 96, 3), ("top", "left")),
            (3, (64, 96, 3), ("bottom", "right")),
            (6, (96, 64, 3), ("top", "right")),  # shown turned 90° clockwise
            (8, (96, 64, 3), ("bottom", "left")),  # shown turned 90° anticlockwise
        ],
    )
    def test_orientation_is_applied(
        self, orientation: int, shape: tuple[int, int, int], corner: tuple[str, str]
    ) -> None:
        data = self.tagged(orientation)
        image = decode(data, default_limits())
        assert image.shape == shape
        assert self.red_corner(image) == corner
        assert float(np.abs(image.astype(np.int16) - pillow_rgb(data)).mean()) < 1.0


def unreadable_inputs() -> list[object]:
    rng = np.random.default_rng(7)
    inputs: list[tuple[str, Callable[[], bytes]]] = [
        ("empty", lambda: b""),
        ("random", lambda: rng.bytes(4096)),
        ("text", lambda: b"name,passport\nAnna,L898902C3\n" * 20),
        ("gif", lambda: pillow_bytes(Image.new("RGB", (16, 16), RED), "GIF")),
        ("webp", webp),
        (
            "svg",
            lambda: (
                b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                b'width="64" height="64"><circle cx="32" cy="32" r="30"/></svg>'
            ),
        ),
        ("truncated_jpeg", lambda: half(photo("obama.jpg"))),
        ("truncated_png", lambda: half(photo("lin-manuel-miranda.png"))),
        ("jpeg_signature_only", lambda: b"\xff\xd8\xff"),
        ("png_signature_only", lambda: b"\x89PNG\r\n\x1a\n"),
        ("png_declaring_no_pixels", lambda: png_declaring(0, 0)),
    ]
    return [pytest.param(make, id=name) for name, make in inputs]


class TestRefusals:
    @pytest.mark.parametrize("make", unreadable_inputs())
    def test_unreadable(self, make: Callable[[], bytes]) -> None:
        with pytest.raises(ImageUnreadable) as caught:
            decode(make(), default_limits())
        assert caught.value.code == "image_unreadable"
        assert caught.value.status == 422

    def test_one_byte_over_the_size_limit_is_too_large(self) -> None:
        data = photo("obama.jpg")
        with pytest.raises(ImageTooLarge) as caught:
            decode(data, Limits(max_bytes=len(data) - 1, max_pixels=40_000_000))
        assert caught.value.code == "image_too_large"
        assert caught.value.status == 413
        assert caught.value.extra == {"limit_bytes": len(data) - 1}
        assert decode(data, Limits(max_bytes=len(data), max_pixels=40_000_000)).shape[2] == 3

    def test_pixel_limit_is_inclusive(self) -> None:
        data = encode(np.zeros((100, 100, 3), dtype=np.uint8), ".png")
        assert decode(data, Limits(max_bytes=10_000, max_pixels=10_000)).shape == (100, 100, 3)
        with pytest.raises(ImageTooLarge):
            decode(data, Limits(max_bytes=10_000, max_pixels=9_999))

    def test_png_declaring_60000_squared_is_refused_before_decoding(self) -> None:
        data = png_declaring(60_000, 60_000)
        limits = default_limits()
        assert len(data) < 100 < limits.max_bytes
        started = time.perf_counter()
        with pytest.raises(ImageTooLarge) as caught:
            decode(data, limits)
        elapsed = time.perf_counter() - started
        assert caught.value.status == 413
        assert caught.value.extra == {"limit_pixels": limits.max_pixels}
        assert elapsed < 0.05, f"took {elapsed:.3f} s: the header alone should decide"

    def test_jpeg_declaring_60000_squared_is_refused_before_decoding(self) -> None:
        small = encode(np.full((16, 16, 3), 128, dtype=np.uint8), ".jpg")
        limits = default_limits()
        assert decode(small, limits).shape == (16, 16, 3)
        data = with_declared_size(small, 60_000, 60_000)
        assert len(data) == len(small) < 1_000
        started = time.perf_counter()
        with pytest.raises(ImageTooLarge) as caught:
            decode(data, limits)
        elapsed = time.perf_counter() - started
        assert caught.value.code == "image_too_large"
        assert elapsed < 0.05, f"took {elapsed:.3f} s: the header alone should decide"

    def test_frame_header_behind_exif_is_found(self) -> None:
        # The size check must skip APP segments (EXIF, with its own embedded JPEG
        # thumbnail) by their lengths to reach the frame header.
        thumb = pillow_bytes(Image.new("RGB", (8, 8), RED), "JPEG")
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 1
        pixels = np.zeros((40, 50, 3), dtype=np.uint8)
        data = pillow_bytes(Image.fromarray(pixels), "JPEG", exif=exif.tobytes() + thumb)
        assert decode(data, Limits(max_bytes=10_000, max_pixels=2_000)).shape == (40, 50, 3)
        with pytest.raises(ImageTooLarge):
            decode(data, Limits(max_bytes=10_000, max_pixels=1_999))
