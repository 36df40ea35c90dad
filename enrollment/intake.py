"""Image intake: tell JPEG from PNG by their bytes, refuse what is not a whole image within
the budget before any heavy work, decode to 8-bit RGB with EXIF orientation applied."""

import struct
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from core.errors import BorderError

RGBImage = npt.NDArray[np.uint8]
ImageFormat = Literal["jpeg", "png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


class ImageUnreadable(BorderError):
    code = "image_unreadable"
    status = 422


class ImageTooLarge(BorderError):
    code = "image_too_large"
    status = 413


@dataclass(frozen=True)
class Limits:
    """The budget an upload must fit before it is decoded (decompression bombs)."""

    max_bytes: int
    max_pixels: int


def sniff(data: bytes) -> ImageFormat:
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    raise ImageUnreadable("the upload is not a JPEG or PNG image (judged by its bytes)")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageUnreadable("the PNG has no header chunk")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageUnreadable("the JPEG's markers are corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            break
        pos += 2 + length
    raise ImageUnreadable("the JPEG has no frame header")


def _is_whole(data: bytes, kind: ImageFormat) -> bool:
    # A truncated file decodes to a half-grey picture without an error; its end marker is
    # what gives it away. Trailing NUL padding, which some encoders write, is allowed.
    tail = data.rstrip(b"\x00")
    return tail.endswith(_PNG_IEND) if kind == "png" else tail.endswith(b"\xff\xd9")


def decode(data: bytes, limits: Limits) -> RGBImage:
    """Decode an uploaded JPEG or PNG to an 8-bit RGB array (height, width, 3).

    Grey images are expanded, alpha is dropped, 16-bit samples are scaled to 8 bits, and
    the EXIF orientation is applied. Raises ImageTooLarge or ImageUnreadable.
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the image is {len(data)} bytes; the limit is {limits.max_bytes}",
            limit_bytes=limits.max_bytes,
        )
    kind = sniff(data)
    width, height = _png_size(data) if kind == "png" else _jpeg_size(data)
    if width == 0 or height == 0:
        raise ImageUnreadable(f"the {kind.upper()} declares an empty frame")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image declares {width}x{height} pixels; the limit is {limits.max_pixels}",
            limit_pixels=limits.max_pixels,
        )
    if not _is_whole(data, kind):
        raise ImageUnreadable(f"the {kind.upper()} is truncated; send the whole file")
    decoded = cv2.imdecode(
        np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
    )
    if decoded is None or decoded.size == 0:
        raise ImageUnreadable(f"the {kind.upper()} could not be decoded")
    if decoded.dtype == np.uint16:
        decoded = np.asarray(decoded, dtype=np.uint16) >> 8
    elif decoded.dtype != np.uint8:
        raise ImageUnreadable(f"unsupported sample type {decoded.dtype}")
    return np.asarray(cv2.cvtColor(decoded.astype(np.uint8), cv2.COLOR_BGR2RGB), dtype=np.uint8)
