"""Intake hardening (DESIGN §14): JPEG decoded strictly, decodes under a budget of
width x height x channels x bytes per sample read from the header, and a per-process limit
on decodes at once.

Real files and real decoding throughout. Where a test must see inside a decode (how many
run at once, whether one ran at all), it wraps the module-level functions through which
intake decodes, ``intake._imdecode`` (OpenCV, the picture returned) and
``intake._jpeg_probe`` (Pillow, the reads that tell whether a JPEG is whole), and still
calls them.

A cut JPEG is made by cutting a real photo inside its coded data and appending the end
marker; each such test first shows that OpenCV alone reads it as a full-size picture."""

import logging
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from core.settings import Settings
from enrollment import capture, intake
from enrollment.intake import (
    DecodersBusy,
    ImageTooLarge,
    ImageUnreadable,
    Limits,
    decode,
)
from enrollment.templates import FaceModel
from tests.conftest import FACES
from tests.enrollment.test_intake import (
    default_limits,
    encode,
    jpeg_12_bit,
    photo,
    pillow_bytes,
    png_chunk,
)
from tests.factories import enroll

JPEGS = sorted(p.name for p in FACES.iterdir() if p.suffix == ".jpg")
EOI = b"\xff\xd9"
IEND = png_chunk(b"IEND", b"")
MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
DEFAULT_BUDGET = Settings.model_fields["image_max_decoded_bytes"].default
DEFAULT_PIXELS = Settings.model_fields["image_max_pixels"].default
SHAPE_480P = (480, 853, 3)  # obama-480p.jpg
SHAPE_240P = (240, 427, 3)  # obama-240p.jpg
Decoder = Callable[[bytes], "npt.NDArray[Any] | None"]
Headers = dict[str, dict[str, str]]


def opencv(data: bytes) -> npt.NDArray[Any] | None:
    """What OpenCV alone makes of ``data``, as intake asks it (None: it cannot)."""
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)


def scans(jpeg: bytes) -> list[tuple[int, int]]:
    """(start of the SOS marker, end of the coded data) of each scan of a well-formed JPEG."""
    found: list[tuple[int, int]] = []
    pos = 2
    while jpeg[pos + 1] != 0xD9:
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        if jpeg[pos + 1] == 0xDA:
            end = MARKER.search(jpeg, pos + 2 + length)
            assert end is not None
            found.append((pos, end.start()))
            pos = end.start()
        else:
            pos += 2 + length
    return found


def cut_in_scan(jpeg: bytes, share: float) -> bytes:
    """``jpeg`` cut ``share`` of the way through its coded data, then given an end marker:
    what a kiosk that lost the rest of an upload, or an attacker, would send."""
    first, _ = scans(jpeg)[0]
    at = first + int((len(jpeg) - 2 - first) * share)
    return jpeg[:at] + EOI


def progressive(name: str = "obama-480p.jpg") -> bytes:
    with Image.open(FACES / name) as image:
        return pillow_bytes(image, "JPEG", progressive=True, quality=90)


def with_restarts(name: str = "obama-480p.jpg") -> bytes:
    image = cv2.imread(str(FACES / name))
    assert image is not None
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 4])
    assert ok
    data = bytes(buffer.tobytes())
    assert data.count(b"\xff\xd0") > 5, "the test file must really have restart markers"
    return data


def assert_unreadable(data: bytes) -> None:
    with pytest.raises(ImageUnreadable) as caught:
        decode(data, default_limits())
    assert caught.value.code == "image_unreadable"
    assert caught.value.status == 422


def assert_opencv_alone_reads_it_whole(data: bytes, shape: tuple[int, ...]) -> None:
    """The attack is real: OpenCV returns a full-size picture without any error."""
    alone = opencv(data)
    assert alone is not None
    assert alone.shape == shape


def assert_decodes_as_opencv_alone(whole: bytes) -> None:
    alone = opencv(whole)
    assert alone is not None
    assert np.array_equal(decode(whole, default_limits()), cv2.cvtColor(alone, cv2.COLOR_BGR2RGB))


class TestStrictJpeg:
    @pytest.mark.parametrize("share", [0.05, 0.25, 0.5, 0.75, 0.9, 0.99])
    @pytest.mark.parametrize("name", ["obama.jpg", "obama-720p.jpg", "biden.jpg"])
    def test_a_cut_jpeg_given_an_end_marker_is_unreadable(self, name: str, share: float) -> None:
        whole = photo(name)
        cut = cut_in_scan(whole, share)
        assert_opencv_alone_reads_it_whole(cut, decode(whole, default_limits()).shape)
        assert_unreadable(cut)

    @pytest.mark.parametrize("lost", [1, 2, 3, 8, 64])
    def test_losing_the_last_bytes_of_the_scan_is_unreadable(self, lost: int) -> None:
        whole = photo("obama.jpg")
        assert whole.endswith(EOI)
        assert_unreadable(whole[: -2 - lost] + EOI)

    def test_half_a_jpeg_is_unreadable_whatever_follows_its_end_marker(self) -> None:
        whole = photo("obama.jpg")
        assert_unreadable(cut_in_scan(whole, 0.5) + whole[len(whole) // 2 :])

    @pytest.mark.parametrize("share", [0.02, 0.2, 0.5, 0.8, 0.98])
    def test_a_cut_progressive_jpeg_is_unreadable(self, share: float) -> None:
        whole = progressive()
        assert_decodes_as_opencv_alone(whole)
        cut = cut_in_scan(whole, share)
        assert_opencv_alone_reads_it_whole(cut, SHAPE_480P)
        assert_unreadable(cut)

    @pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
    def test_a_cut_jpeg_with_restart_markers_is_unreadable(self, share: float) -> None:
        whole = with_restarts()
        assert_decodes_as_opencv_alone(whole)
        cut = cut_in_scan(whole, share)
        assert_opencv_alone_reads_it_whole(cut, SHAPE_480P)
        assert_unreadable(cut)

    def test_a_progressive_jpeg_cut_between_two_scans_is_unreadable(self) -> None:
        # No decoder warning at all: the finer scans are simply missing, and the picture
        # comes out blurred (or without colour). Each one must be there.
        whole = progressive()
        for _, end in scans(whole)[:-1]:
            cut = whole[:end] + EOI
            assert_opencv_alone_reads_it_whole(cut, SHAPE_480P)
            assert_unreadable(cut)

    def test_bytes_lost_inside_an_early_scan_are_unreadable(self) -> None:
        # The scans after it are whole; the one that ran short is not the last one.
        whole = progressive()
        start, end = scans(whole)[1]
        middle = (start + end) // 2
        damaged = whole[:middle] + whole[middle + 200 :]
        assert_opencv_alone_reads_it_whole(damaged, SHAPE_480P)
        assert_unreadable(damaged)

    def test_a_jpeg_of_more_than_100_scans_is_unreadable(self) -> None:
        # Every scan is one more pass over the frame: a few KB of repeated scans would
        # make a small upload cost minutes. OpenCV decodes this one to the same picture.
        whole = progressive()
        start, end = scans(whole)[2]
        table = whole.rfind(b"\xff\xc4", 0, start)  # the scan's own Huffman table
        repeated = whole[:end] + whole[table:end] * 120 + whole[end:]
        alone, original = opencv(repeated), opencv(whole)
        assert alone is not None
        assert original is not None
        assert np.array_equal(alone, original)
        with pytest.raises(ImageUnreadable, match="100 scans"):
            decode(repeated, default_limits())

    @pytest.mark.parametrize(
        "trailer",
        [
            pytest.param(np.random.default_rng(3).bytes(1024), id="random"),
            pytest.param(b"\xff\xd8\xff\xe1" + b"\xff" * 1020, id="markers"),
            pytest.param(photo("biden.jpg")[:-2], id="preview"),
            pytest.param(b"MPF preview follows " * 51, id="text"),
        ],
    )
    def test_a_whole_jpeg_with_a_trailer_decodes(self, trailer: bytes) -> None:
        whole = photo("obama.jpg")
        expected = decode(whole, default_limits())
        assert len(trailer) >= 1000
        assert np.array_equal(decode(whole + trailer, default_limits()), expected)

    @pytest.mark.parametrize("name", JPEGS)
    def test_every_photo_decodes_with_and_without_a_trailer(self, name: str) -> None:
        data = photo(name)
        image = decode(data, default_limits())
        assert image.shape[2] == 3
        assert np.array_equal(decode(data + b"\x00\x01trailer" * 100, default_limits()), image)

    def test_reading_a_jpeg_logs_nothing_of_its_metadata(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Pillow logs every EXIF tag it parses at DEBUG level; the checks must not give it
        # the chance, whatever the log level (a kiosk's EXIF may name its operator).
        exif = Image.Exif()
        exif[0x013B] = "Jane Q. Traveller"  # Artist
        exif[0x010E] = "passport L898902C3"  # ImageDescription
        pixels = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
        data = pillow_bytes(Image.fromarray(pixels), "JPEG", exif=exif, quality=90)
        caplog.set_level(logging.DEBUG)
        assert decode(data, default_limits()).shape == (64, 96, 3)
        assert_unreadable(cut_in_scan(data, 0.5))
        logged = " ".join(record.getMessage() for record in caplog.records)
        assert "Traveller" not in logged
        assert "L898902C3" not in logged

    def test_half_a_photo_is_refused_before_any_face_is_looked_for(
        self, face_model: FaceModel
    ) -> None:
        # The issue: half of obama.jpg with an end marker was a capture that matched.
        whole = photo("obama.jpg")
        settings = Settings()
        assert capture.analyse(face_model, whole + b"\x00" * 1024, settings).face.template.size
        with pytest.raises(ImageUnreadable):
            capture.analyse(face_model, cut_in_scan(whole, 0.5), settings)


def png_with_idat_cut(data: bytes, share: float) -> bytes:
    """A one-IDAT PNG whose compressed data is cut, with its chunk length and CRC made
    right again: only the decoder can tell that rows are missing."""
    assert data[33 + 4 : 33 + 8] == b"IDAT", "the test PNG must hold one IDAT first"
    (length,) = struct.unpack(">I", data[33:37])
    assert data[33 + 12 + length :] == IEND, "... and only one"
    compressed = data[41 : 41 + length]
    return data[:33] + png_chunk(b"IDAT", compressed[: int(length * share)]) + IEND


class TestPngTruncation:
    """PNG needs no change: libpng reports missing data as an error, never a warning."""

    @pytest.mark.parametrize("share", [0.01, 0.25, 0.5, 0.75, 0.99, 0.999])
    def test_a_cut_png_given_an_end_chunk_is_unreadable(self, share: float) -> None:
        whole = photo("lin-manuel-miranda.png")
        assert_unreadable(whole[: int(len(whole) * share)] + IEND)

    def test_a_png_cut_between_two_data_chunks_is_unreadable(self) -> None:
        whole = photo("lin-manuel-miranda.png")
        boundaries = [m.start() - 4 for m in re.finditer(b"IDAT", whole)][1:]
        assert len(boundaries) > 3
        for at in boundaries[:: max(1, len(boundaries) // 4)]:
            assert_unreadable(whole[:at] + IEND)

    @pytest.mark.parametrize("share", [0.1, 0.5, 0.9, 0.99])
    def test_a_png_whose_compressed_rows_are_cut_is_unreadable(self, share: float) -> None:
        pixels = np.random.default_rng(5).integers(0, 256, (60, 80, 3), dtype=np.uint8)
        whole = pillow_bytes(Image.fromarray(pixels), "PNG")
        assert decode(whole, default_limits()).shape == (60, 80, 3)
        assert_unreadable(png_with_idat_cut(whole, share))


def png_16_bit(width: int, height: int) -> bytes:
    """A real 16-bit RGB PNG of one colour: 238 MB decoded at 6300 x 6300, a few hundred
    KB on the wire. Compressed row by row, so making it never holds the pixels."""
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    row = b"\x00" + b"\x12\x34\x56\x78\x9a\xbc" * width
    packer = zlib.compressobj(6)
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", compressed) + IEND


def with_frame(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (any SOFn) rewritten to declare ``width`` x ``height``."""
    found = re.search(rb"\xff[\xc0-\xc3\xc5-\xc7\xc9-\xcb\xcd-\xcf]", jpeg)
    assert found is not None
    at = found.start()
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which decoder intake ran, in order: "opencv" (the picture) or "probe" (Pillow's
    reads of a JPEG that tell whether it is whole)."""
    seen: list[str] = []
    real_decode = intake._imdecode
    real_probe = intake._jpeg_probe

    def decode_recorded(data: bytes) -> npt.NDArray[Any] | None:
        seen.append("opencv")
        return real_decode(data)

    def probe_recorded(data: bytes) -> bytes | None:
        seen.append("probe")
        return real_probe(data)

    monkeypatch.setattr(intake, "_imdecode", decode_recorded)
    monkeypatch.setattr(intake, "_jpeg_probe", probe_recorded)
    return seen


class TestDecodingBudget:
    def test_a_16_bit_png_of_6300_squared_is_refused_without_decoding(
        self, decodes: list[str]
    ) -> None:
        data = png_16_bit(6300, 6300)
        assert len(data) < 1_000_000
        assert DEFAULT_PIXELS >= 6300 * 6300, "the pixel limit alone lets it through"
        with pytest.raises(ImageTooLarge) as caught:
            decode(data, default_limits())
        assert caught.value.status == 413
        assert caught.value.extra == {"limit_decoded_bytes": DEFAULT_BUDGET}
        assert str(DEFAULT_BUDGET) in caught.value.detail
        assert decodes == []

    def test_the_same_png_small_is_a_real_image(self, decodes: list[str]) -> None:
        image = decode(png_16_bit(64, 48), default_limits())
        assert image.shape == (48, 64, 3)
        assert (image == (0x12, 0x56, 0x9A)).all()
        assert decodes == ["opencv"]

    @pytest.mark.parametrize(
        ("make", "budget"),
        [
            pytest.param(
                lambda: encode(np.zeros((100, 100, 3), np.uint8), ".png"), 30_000, id="rgb"
            ),
            # Grey is decoded to three channels: it costs what RGB does.
            pytest.param(lambda: encode(np.zeros((100, 100), np.uint8), ".png"), 30_000, id="grey"),
            pytest.param(
                lambda: encode(np.zeros((10, 12, 3), np.uint16), ".png"), 720, id="16-bit"
            ),
            pytest.param(
                lambda: pillow_bytes(Image.new("RGBA", (30, 20)), "PNG"), 2_400, id="rgba"
            ),
            pytest.param(lambda: encode(np.zeros((40, 50, 3), np.uint8), ".jpg"), 6_000, id="jpeg"),
            pytest.param(
                lambda: pillow_bytes(Image.new("CMYK", (30, 20), (9, 200, 30, 0)), "JPEG"),
                2_400,
                id="jpeg-cmyk",
            ),
        ],
    )
    def test_the_budget_is_inclusive_and_counts_channels_and_bytes(
        self, make: Callable[[], bytes], budget: int, decodes: list[str]
    ) -> None:
        data = make()
        fits = Limits(max_bytes=100_000, max_pixels=100_000, max_decoded_bytes=budget)
        assert decode(data, fits).ndim == 3
        assert decodes, "it was decoded"
        decodes.clear()
        over = Limits(max_bytes=100_000, max_pixels=100_000, max_decoded_bytes=budget - 1)
        with pytest.raises(ImageTooLarge) as caught:
            decode(data, over)
        assert caught.value.extra == {"limit_decoded_bytes": budget - 1}
        assert decodes == []

    def test_a_12_bit_jpeg_is_refused_before_any_decode(self, decodes: list[str]) -> None:
        # The strict check decodes with an 8-bit libjpeg: say so plainly, decode nothing.
        for size in (6000, 100):
            with pytest.raises(ImageUnreadable, match="12-bit samples"):
                decode(with_frame(jpeg_12_bit(4095), size, size), default_limits())
        assert decodes == []

    def test_capture_limits_come_from_the_settings(self) -> None:
        settings = Settings(image_max_decoded_bytes=1234, image_decode_concurrency=3)
        limits = capture.limits(settings)
        assert limits.max_decoded_bytes == 1234
        assert limits.concurrency == 3
        assert capture.limits(Settings()).max_decoded_bytes == DEFAULT_BUDGET


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator["Gate"]:
    gate = Gate(intake._imdecode)
    monkeypatch.setattr(intake, "_imdecode", gate)
    yield gate
    gate.release.set()


class Gate:
    """The real decoder, counting the decodes inside it at once; each stays inside at
    least ``hold_s``, or until ``release`` is set when ``block`` is."""

    def __init__(self, real: Decoder) -> None:
        self.real = real
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.calls = 0
        self.hold_s = 0.0
        self.block = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, data: bytes) -> npt.NDArray[Any] | None:
        with self.lock:
            self.inside += 1
            self.calls += 1
            self.peak = max(self.peak, self.inside)
        self.entered.set()
        try:
            if self.block:
                assert self.release.wait(10)
            time.sleep(self.hold_s)
            return self.real(data)
        finally:
            with self.lock:
                self.inside -= 1


def in_threads(task: Callable[[], object], count: int) -> list[object]:
    results: list[object] = [None] * count

    def run(i: int) -> None:
        try:
            results[i] = task()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


class TestConcurrency:
    @pytest.mark.parametrize("limit", [1, 2, 3])
    def test_decodes_at_once_never_exceed_the_limit(self, limit: int, gated: Gate) -> None:
        data = photo("obama-240p.jpg")
        expected = decode(data, default_limits())
        gated.peak = 0
        gated.hold_s = 0.02
        limits = Limits(max_bytes=10**7, max_pixels=10**7, concurrency=limit)
        results = in_threads(lambda: decode(data, limits), 8)
        for result in results:
            assert isinstance(result, np.ndarray), result
            assert np.array_equal(result, expected)
        assert gated.peak == limit

    def test_the_default_limit_is_the_settings(self, gated: Gate) -> None:
        gated.hold_s = 0.02
        data = photo("lin-manuel-miranda.png")
        results = in_threads(lambda: decode(data, default_limits()), 6)
        assert all(isinstance(r, np.ndarray) for r in results)
        assert gated.peak == Settings().image_decode_concurrency == 2

    def test_a_caller_that_waits_too_long_is_told_to_retry(self, gated: Gate) -> None:
        data = photo("obama-240p.jpg")
        gated.block = True
        limits = Limits(max_bytes=10**7, max_pixels=10**7, concurrency=1, wait_s=0.2)
        holder = in_threads_background(lambda: decode(data, limits))
        assert gated.entered.wait(10)
        started = time.monotonic()
        with pytest.raises(DecodersBusy) as caught:
            decode(data, limits)
        assert time.monotonic() - started >= 0.2
        assert caught.value.code == "unavailable"
        assert caught.value.status == 503
        assert caught.value.extra == {"retry_after_s": intake.RETRY_AFTER_S}
        gated.release.set()
        assert isinstance(holder(), np.ndarray)
        assert decode(data, limits).shape == SHAPE_240P  # the slot came back

    def test_a_caller_waits_for_a_slot_that_frees_in_time(self, gated: Gate) -> None:
        data = photo("obama-240p.jpg")
        gated.block = True
        limits = Limits(max_bytes=10**7, max_pixels=10**7, concurrency=1, wait_s=10)
        holder = in_threads_background(lambda: decode(data, limits))
        assert gated.entered.wait(10)
        threading.Timer(0.2, gated.release.set).start()
        assert decode(data, limits).shape == SHAPE_240P
        assert isinstance(holder(), np.ndarray)

    def test_a_failed_decode_gives_its_slot_back(self, gated: Gate) -> None:
        # A PNG whose header is fine and whose pixel data is not zlib: refused while
        # decoding, inside the slot.
        header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
        bad = (
            b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", b"not zlib at all")
            + IEND
        )
        limits = Limits(max_bytes=10**7, max_pixels=10**7, concurrency=1, wait_s=0.5)
        for _ in range(3):
            with pytest.raises(ImageUnreadable):
                decode(bad, limits)
        assert gated.calls == 3


def in_threads_background(task: Callable[[], object]) -> Callable[[], object]:
    """Start ``task`` in a thread; the returned function joins it and gives its result."""
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(task()))
    thread.start()

    def result() -> object:
        thread.join(30)
        assert box, "the background decode did not finish"
        return box[0]

    return result


class TestOverHttp:
    """The same refusals as the kiosk sees them: device faults, nothing recorded."""

    @staticmethod
    def verify(client: TestClient, headers: Headers, image: bytes, person: UUID) -> Response:
        response: Response = client.post(
            "/v1/verify",
            headers=headers["kiosk"],
            files={"image": ("capture.jpg", image, "image/jpeg")},
            data={"person_id": str(person)},
        )
        return response

    def test_a_kiosk_upload_is_judged_whole(self, client: TestClient, headers: Headers) -> None:
        person = enroll(client, headers["consular"], "obama.jpg")
        whole = photo("obama2.jpg")

        half = self.verify(client, headers, cut_in_scan(whole, 0.5), person)
        assert half.status_code == 422
        assert half.json()["error"] == "image_unreadable"

        trailed = self.verify(client, headers, whole + np.random.default_rng(9).bytes(1024), person)
        assert trailed.status_code == 200, trailed.json()
        assert trailed.json()["match"] is True

        bomb = self.verify(client, headers, png_16_bit(6300, 6300), person)
        assert bomb.status_code == 413
        assert bomb.json()["error"] == "image_too_large"
        assert bomb.json()["limit_decoded_bytes"] == DEFAULT_BUDGET
