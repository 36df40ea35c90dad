"""From uploaded bytes to a usable capture: decode, detect exactly one face, assess its
quality, compute its template. Each refusal is a BorderError with its stable code."""

from dataclasses import dataclass
from typing import Any

from core.errors import BorderError
from core.settings import Settings
from enrollment import intake, quality
from enrollment.intake import RGBImage
from enrollment.templates import Face, FaceModel


class NoFace(BorderError):
    code = "no_face"
    status = 422


class MultipleFaces(BorderError):
    code = "multiple_faces"
    status = 422


class LowQuality(BorderError):
    code = "low_quality"
    status = 422


@dataclass(frozen=True)
class Capture:
    image: RGBImage
    face: Face
    measures: list[quality.Measure]

    def quality_report(self) -> dict[str, Any]:
        """Every measure with its value, threshold and verdict, keyed by name."""
        return {
            m.name: {"value": round(m.value, 3), "threshold": m.threshold, "passed": m.passed}
            for m in self.measures
        }


def limits(settings: Settings) -> intake.Limits:
    return intake.Limits(
        max_bytes=settings.image_max_bytes,
        max_pixels=settings.image_max_pixels,
        max_decoded_bytes=settings.image_max_decoded_bytes,
        concurrency=settings.image_decode_concurrency,
    )


def analyse(model: FaceModel, data: bytes, settings: Settings) -> Capture:
    """Raises ImageUnreadable / ImageTooLarge (a device fault: nothing to judge), NoFace,
    MultipleFaces or LowQuality (the traveller's outcome), in that order; DecodersBusy
    (503) when the process's decoding slots stay taken."""
    return from_image(model, intake.decode(data, limits(settings)), settings)


def from_image(model: FaceModel, image: RGBImage, settings: Settings) -> Capture:
    """The face stage alone, for an image already decoded: NoFace, MultipleFaces or
    LowQuality, or the capture."""
    boxes = model.detect(image)
    if not boxes:
        raise NoFace("no face was found in the image")
    if len(boxes) > 1:
        raise MultipleFaces(f"{len(boxes)} faces were found; the capture must show one person")
    face = model.describe(image, boxes[0])
    measures = quality.assess(image, face.box, face.landmarks, settings.quality)
    failed = [m for m in measures if not m.passed]
    if failed:
        raise LowQuality(
            "the capture is not good enough: " + ", ".join(m.name for m in failed),
            failed=[
                {"measure": m.name, "value": round(m.value, 3), "threshold": m.threshold}
                for m in failed
            ],
        )
    return Capture(image, face, measures)
