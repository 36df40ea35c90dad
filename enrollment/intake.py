"""Image intake: tell JPEG from PNG by their bytes, refuse what is not a whole image within
the budget before any heavy work, decode to 8-bit RGB with EXIF orientation applied.

Whole means whole to the decoder too (DESIGN §14). A JPEG cut short and given an end marker
decodes without an error: libjpeg meets the marker before the last block, warns, and draws
the rest grey, and neither OpenCV nor Pillow passes the warning on. So a JPEG is read twice
more before OpenCV decodes it: once as sent, once with filler bytes put after each scan's
coded data. A decoder that finished a scan skips whatever comes before the next marker, so
a whole file gives the same picture both times; one that ran short of a scan's data reads
the filler as image data instead of its grey fill, and the pictures differ. Bytes after
the end marker are never read, so trailers are allowed. Those two reads are Pillow's:
its decoder keeps libjpeg's warnings to itself, where OpenCV's prints each on stderr, and
the skipped filler would put a "Corrupt JPEG data" line in the log for every upload.

Decodes are limited in number per process (``Limits.concurrency``) and in the memory they
may take: width x height x channels x bytes per sample, read from the header first."""

import hashlib
import io
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from core.errors import BorderError, Unavailable
from core.settings import Settings

RGBImage = npt.NDArray[np.uint8]
ImageFormat = Literal["jpeg", "png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Samples per pixel of each PNG colour type (a palette expands to RGB).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JPEG_EOI = 0xD9
_JPEG_SOS = 0xDA
# Segments the pixels do not depend on (APP1-13 and 15: EXIF, XMP, ICC, MPF...; COM),
# left out of the probes: Pillow would parse them, and log EXIF tags at DEBUG level.
# APP0 (JFIF) and APP14 (Adobe) say which colour space the samples are in: they stay.
_JPEG_METADATA = {*range(0xE1, 0xEE), 0xEF, 0xFE}
# Inside coded data 0xFF is followed by 0x00 (a stuffed byte), a restart marker D0-D7, or
# fill bytes before a marker: the first 0xFF followed by anything else ends the scan.
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Encoders write one scan (baseline) or about ten (progressive); each scan is a pass over
# the whole frame, so thousands of tiny scans would cost minutes of decoding.
_JPEG_MAX_SCANS = 100
# Put after each scan to see whether the decoder wanted more of it: no 0xFF (it would
# read as a marker) and varied bits, starting with a 1 where a grey fill reads 0s.
_FILLER = bytes((0x80 + 97 * i) % 0xFF for i in range(256))
_PROBE_ROWS = 256

_DEFAULTS = Settings.model_fields
DEFAULT_MAX_DECODED_BYTES: int = _DEFAULTS["image_max_decoded_bytes"].default
DEFAULT_CONCURRENCY: int = _DEFAULTS["image_decode_concurrency"].default
# How long a request waits for one of the decoding slots before it is told to retry.
DEFAULT_WAIT_S = 10.0
RETRY_AFTER_S = 2


class ImageUnreadable(BorderError):
    code = "image_unreadable"
    status = 422


class ImageTooLarge(BorderError):
    code = "image_too_large"
    status = 413


class DecodersBusy(Unavailable):
    """Every decoding slot stayed taken for the whole wait: 503, retry shortly."""


@dataclass(frozen=True)
class Limits:
    """The budget an upload must fit before it is decoded (decompression bombs), and how
    many decodes a process runs at once."""

    max_bytes: int
    max_pixels: int
    # width x height x channels x bytes per sample (channels: at least the 3 decoded).
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    concurrency: int = DEFAULT_CONCURRENCY
    wait_s: float = DEFAULT_WAIT_S


@dataclass(frozen=True)
class Header:
    """What an image's header declares, read before anything is decoded."""

    width: int
    height: int
    channels: int
    bytes_per_sample: int

    @property
    def decoded_bytes(self) -> int:
        """The size of the decoded picture: never fewer than the 3 channels decoded to."""
        return self.width * self.height * max(self.channels, 3) * self.bytes_per_sample


@dataclass(frozen=True)
class _Scan:
    components: bytes
    start: int  # spectral selection Ss..Se, successive approximation low bit Al
    end: int
    low_bit: int
    data_end: int  # where its coded data ends (before any fill bytes and the next marker)


@dataclass(frozen=True)
class _JpegLayout:
    scans: list[_Scan]
    metadata: list[tuple[int, int]]  # where the segments in _JPEG_METADATA start and end


def sniff(data: bytes) -> ImageFormat:
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    raise ImageUnreadable("the upload is not a JPEG or PNG image (judged by its bytes)")


def _png_header(data: bytes) -> Header:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageUnreadable("the PNG has no header chunk")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _PNG_CHANNELS:
        raise ImageUnreadable(f"the PNG declares an unknown colour type {colour}")
    return Header(width, height, _PNG_CHANNELS[colour], 2 if depth > 8 else 1)


def _jpeg_header(data: bytes) -> Header:
    """The first frame header: size, precision (bits a sample) and component count."""
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
            if pos + 10 > len(data):
                break
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            if components == 0:
                raise ImageUnreadable("the JPEG's frame has no components")
            if precision != 8:
                # The strict check decodes with a libjpeg built for 8-bit samples: a 12-bit
                # (medical, raw-camera) JPEG would be refused later with a vaguer message.
                raise ImageUnreadable(
                    f"the JPEG has {precision}-bit samples; send an 8-bit JPEG or a PNG"
                )
            return Header(width, height, components, 1)
        if marker in (_JPEG_EOI, _JPEG_SOS):  # end of image, or scan data before any frame
            break
        pos += 2 + length
    raise ImageUnreadable("the JPEG has no frame header")


def _truncated(kind: ImageFormat) -> ImageUnreadable:
    return ImageUnreadable(f"the {kind.upper()} is truncated; send the whole file")


def _jpeg_layout(data: bytes) -> _JpegLayout:
    """Every scan up to the end-of-image marker, which must be there (bytes after it are
    allowed: cameras append trailers), and every component of the frame coded in full."""
    frame: tuple[int, bytes] | None = None  # the SOF marker and its component ids
    scans: list[_Scan] = []
    metadata: list[tuple[int, int]] = []
    pos = 2
    while True:
        if pos + 2 > len(data):
            raise _truncated("jpeg")
        if data[pos] != 0xFF:
            raise ImageUnreadable("the JPEG's markers are corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == _JPEG_EOI:
            break
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if pos + 4 > len(data):
            raise _truncated("jpeg")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        if length < 2:
            raise ImageUnreadable("the JPEG's markers are corrupt")
        if pos + 2 + length > len(data):
            raise _truncated("jpeg")
        if marker in _JPEG_METADATA:
            metadata.append((pos, pos + 2 + length))
        pos += 2 + length
        if marker in _JPEG_SOF and frame is None:
            if len(segment) < 6 or len(segment) != 6 + 3 * segment[5]:
                raise ImageUnreadable("the JPEG's frame header is corrupt")
            frame = (marker, segment[6::3])
        elif marker == _JPEG_SOS:
            if frame is None or not segment or len(segment) != 4 + 2 * segment[0]:
                raise ImageUnreadable("the JPEG's scan header is corrupt")
            if len(scans) == _JPEG_MAX_SCANS:
                raise ImageUnreadable(f"the JPEG has over {_JPEG_MAX_SCANS} scans")
            found = _JPEG_SCAN_END.search(data, pos)
            if found is None:
                raise _truncated("jpeg")
            data_end = found.start()
            while data_end > pos and data[data_end - 1] == 0xFF:
                data_end -= 1
            ss, se, approximation = segment[-3:]
            scans.append(_Scan(segment[1:-3:2], ss, se, approximation & 0x0F, data_end))
            pos = found.start()
    if frame is None or not scans:
        raise ImageUnreadable("the JPEG has no image data")
    _check_coverage(*frame, scans)
    return _JpegLayout(scans, metadata)


def _check_coverage(sof: int, components: bytes, scans: list[_Scan]) -> None:
    """A file cut between two scans and given an end marker leaves components, or the finer
    detail of a progressive file, never coded: the decoder draws them grey or blurred
    without a warning. Every encoder codes every coefficient of every component."""
    if sof not in _JPEG_PROGRESSIVE:
        if set(components) - {c for scan in scans for c in scan.components}:
            raise _truncated("jpeg")
        return
    lowest = {c: [8] * 64 for c in components}  # the lowest bit coded of each coefficient
    for scan in scans:
        for c in scan.components:
            if c not in lowest:
                raise ImageUnreadable("a JPEG scan names a component its frame lacks")
            bits = lowest[c]
            for k in range(scan.start, min(scan.end, 63) + 1):
                bits[k] = min(bits[k], scan.low_bit)
    if any(any(bits) for bits in lowest.values()):
        raise _truncated("jpeg")


def _probe_input(data: bytes, layout: _JpegLayout, *, filled: bool) -> bytes:
    """``data`` without its metadata segments, and with ``filled`` the filler after each
    scan's coded data."""
    edits = [(start, end, b"") for start, end in layout.metadata]
    if filled:
        edits += [(scan.data_end, scan.data_end, _FILLER) for scan in layout.scans]
    parts: list[bytes] = []
    at = 0
    for start, end, insert in sorted(edits):
        parts += [data[at:start], insert]
        at = end
    parts.append(data[at:])
    return b"".join(parts)


def _is_whole_png(data: bytes) -> bool:
    # A truncated file decodes to a half-grey picture without an error; its end chunk is
    # what gives it away. Trailing NUL padding, which some encoders write, is allowed.
    return data.rstrip(b"\x00").endswith(_PNG_IEND)


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


@contextmanager
def _decoding_slot(limits: Limits) -> Iterator[None]:
    """One of the process's ``limits.concurrency`` decoding slots, waited for at most
    ``limits.wait_s``: a queue that long is a flood, and a request held longer keeps its
    worker thread and its upload from everyone else."""
    with _slots_lock:
        slots = _slots.setdefault(
            limits.concurrency, threading.BoundedSemaphore(limits.concurrency)
        )
    if not slots.acquire(timeout=limits.wait_s):
        raise DecodersBusy(
            f"{limits.concurrency} images are being decoded and none finished within "
            f"{limits.wait_s:g} s; retry in a few seconds",
            retry_after_s=RETRY_AFTER_S,
        )
    try:
        yield
    finally:
        slots.release()


def _imdecode(data: bytes) -> npt.NDArray[Any] | None:
    """OpenCV's picture of ``data``, the one intake returns: BGR, 8 or 16 bits a sample,
    EXIF orientation applied (None when it cannot read it)."""
    decoded: npt.NDArray[Any] | None = cv2.imdecode(
        np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
    )
    return None if decoded is None or decoded.size == 0 else decoded


def _jpeg_probe(data: bytes) -> bytes | None:
    """A digest of Pillow's picture of a JPEG, or None when it cannot read it (Pillow also
    refuses frames over twice its MAX_IMAGE_PIXELS, 179 million, far past the default
    pixel limit). Hashed a band of rows at a time: no copy of the whole picture is made."""
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
            image.load()
            width, height = image.size
            digest = hashlib.sha256(f"{image.mode} {width}x{height}".encode())
            for top in range(0, height, _PROBE_ROWS):
                band = image.crop((0, top, width, min(height, top + _PROBE_ROWS)))
                digest.update(band.tobytes())
            return digest.digest()
    except Exception:  # whatever Pillow cannot read is a file intake cannot vouch for
        return None


def _to_rgb(decoded: npt.NDArray[Any], kind: ImageFormat) -> RGBImage:
    if decoded.ndim != 3 or decoded.shape[2] != 3:
        raise ImageUnreadable(f"the {kind.upper()} decoded to an unexpected shape")
    if decoded.dtype == np.uint16:
        rgb = np.empty(decoded.shape, dtype=np.uint8)
        np.right_shift(decoded[..., ::-1], 8, out=rgb, casting="unsafe")
        return rgb
    if decoded.dtype != np.uint8:
        raise ImageUnreadable(f"unsupported sample type {decoded.dtype}")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _admit(data: bytes, limits: Limits) -> tuple[ImageFormat, _JpegLayout | None]:
    """Everything that is judged without decoding pixels: the size, the format, the header
    against the budget, and the file's structure (whole, up to its end marker or chunk).
    Raises ImageTooLarge or ImageUnreadable."""
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the image is {len(data)} bytes; the limit is {limits.max_bytes}",
            limit_bytes=limits.max_bytes,
        )
    kind = sniff(data)
    header = _png_header(data) if kind == "png" else _jpeg_header(data)
    if header.width == 0 or header.height == 0:
        raise ImageUnreadable(f"the {kind.upper()} declares an empty frame")
    if header.width * header.height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image declares {header.width}x{header.height} pixels; "
            f"the limit is {limits.max_pixels}",
            limit_pixels=limits.max_pixels,
        )
    if header.decoded_bytes > limits.max_decoded_bytes:
        raise ImageTooLarge(
            f"the image declares {header.width}x{header.height} pixels of "
            f"{max(header.channels, 3)} channels at {header.bytes_per_sample} bytes a sample: "
            f"{header.decoded_bytes} bytes decoded; the decoding budget is "
            f"{limits.max_decoded_bytes} bytes",
            limit_decoded_bytes=limits.max_decoded_bytes,
        )
    if kind == "png":
        if not _is_whole_png(data):
            raise _truncated(kind)
        return kind, None
    return kind, _jpeg_layout(data)


def decode(data: bytes, limits: Limits) -> RGBImage:
    """Decode an uploaded JPEG or PNG to an 8-bit RGB array (height, width, 3).

    Grey images are expanded, alpha is dropped, 16-bit samples are scaled to 8 bits, and
    the EXIF orientation is applied. Raises ImageTooLarge or ImageUnreadable, or
    DecodersBusy when no decoding slot frees up in time.
    """
    kind, layout = _admit(data, limits)
    with _decoding_slot(limits):
        if layout is not None:
            sent = _jpeg_probe(_probe_input(data, layout, filled=False))
            if sent is None:
                raise ImageUnreadable("the JPEG could not be decoded")
            if _jpeg_probe(_probe_input(data, layout, filled=True)) != sent:
                raise ImageUnreadable(
                    "the JPEG's image data ends before its last block (premature end of "
                    "data: the decoder would fill the rest grey); send the whole file"
                )
        decoded = _imdecode(data)
        if decoded is None:
            raise ImageUnreadable(f"the {kind.upper()} could not be decoded")
        return _to_rgb(decoded, kind)


_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_SIZ = b"\xff\x4f\xff\x51"


def _jpeg2000_size(data: bytes) -> tuple[int, int]:
    """Width and height a JPEG 2000 file declares: the ``ihdr`` box of a JP2 file, or the
    SIZ segment of a bare codestream (image area less its offset)."""
    if data.startswith(_JP2_SIGNATURE):
        at = data.find(b"ihdr", 0, 4096)
        if at < 0 or len(data) < at + 12:
            raise ImageUnreadable("the JPEG 2000 file has no image header (ihdr)")
        height, width = struct.unpack(">II", data[at + 4 : at + 12])
        return width, height
    if data.startswith(_J2K_SIZ) and len(data) >= 24:
        xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[8:24])
        return xsiz - xosiz, ysiz - yosiz
    raise ImageUnreadable("the image is not JPEG 2000 (judged by its bytes)")


def decode_jpeg2000(data: bytes, limits: Limits) -> RGBImage:
    """Decode a JPEG 2000 image (a passport chip's face, DESIGN §16) to 8-bit RGB, within
    the same byte and pixel budget as uploads and under a decoding slot. Raises
    ImageTooLarge or ImageUnreadable, or DecodersBusy."""
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the image is {len(data)} bytes; the limit is {limits.max_bytes}",
            limit_bytes=limits.max_bytes,
        )
    width, height = _jpeg2000_size(data)
    if width <= 0 or height <= 0:
        raise ImageUnreadable("the JPEG 2000 image declares an empty frame")
    if width * height > limits.max_pixels or width * height * 3 * 2 > limits.max_decoded_bytes:
        raise ImageTooLarge(
            f"the image declares {width}x{height} pixels; the limit is {limits.max_pixels}",
            limit_pixels=limits.max_pixels,
        )
    with _decoding_slot(limits):
        decoded = _imdecode(data)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3:
        raise ImageUnreadable("the JPEG 2000 image could not be decoded")
    if decoded.dtype == np.uint16:
        decoded = np.right_shift(decoded, 8).astype(np.uint8)
    if decoded.dtype != np.uint8:
        raise ImageUnreadable(f"unsupported sample type {decoded.dtype}")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)
