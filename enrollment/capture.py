"""From uploaded bytes to a usable capture: decode, detect exactly one face, assess its
quality, compute its template. Each refusal is a BorderError with its stable code."""

from dataclasses import dataclass
from typing import Any, Literal

from core.errors import BorderError
from core.settings import QualityThresholds, Settings
from enrollment import intake, quality
from enrollment.intake import RGBImage
from enrollment.templates import Face, FaceModel

# DESIGN §17: ``enrollment`` for a reference kept for years (persons, captures), ``kiosk``
# for a probe compared once (crossings, 1:1 verify, 1:N identify, a document's live face).
Profile = Literal["enrollment", "kiosk"]


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
    # Judged by the profile the capture was taken under; none failed.
    measures: list[quality.Measure]
    # The same figures judged by the enrollment profile: what a stored capture is held to.
    as_reference: list[quality.Measure]

    def quality_report(self) -> dict[str, Any]:
        """Every measure with its value, enrollment threshold and verdict, keyed by name:
        what is stored with a capture. A kiosk capture that enrolls a first-time traveller
        (DESIGN §6) passed the kiosk's profile only; its report shows what enrollment's
        would have refused, so an officer can take a better reference."""
        return {
            m.name: {"value": round(m.value, 3), "threshold": m.threshold, "passed": m.passed}
            for m in self.as_reference
        }


def limits(settings: Settings) -> intake.Limits:
    return intake.Limits(
        max_bytes=settings.image_max_bytes,
        max_pixels=settings.image_max_pixels,
        max_decoded_bytes=settings.image_max_decoded_bytes,
        concurrency=settings.image_decode_concurrency,
    )


def analyse(
    model: FaceModel, data: bytes, settings: Settings, *, profile: Profile = "enrollment"
) -> Capture:
    """Raises ImageUnreadable / ImageTooLarge (a device fault: nothing to judge), NoFace,
    MultipleFaces or LowQuality (the traveller's outcome), in that order; DecodersBusy
    (503) when the process's decoding slots stay taken. Quality is judged by ``profile``'s
    limits."""
    return from_image(model, intake.decode(data, limits(settings)), settings, profile=profile)


def thresholds(settings: Settings, profile: Profile) -> QualityThresholds:
    return settings.quality.kiosk if profile == "kiosk" else settings.quality.enrollment


def from_image(
    model: FaceModel, image: RGBImage, settings: Settings, *, profile: Profile = "enrollment"
) -> Capture:
    """The face stage alone, for an image already decoded: NoFace, MultipleFaces or
    LowQuality (each failed measure with its value and ``profile``'s threshold), or the
    capture."""
    boxes = model.detect(image)
    if not boxes:
        raise NoFace("no face was found in the image")
    if len(boxes) > 1:
        raise MultipleFaces(f"{len(boxes)} faces were found; the capture must show one person")
    face = model.describe(image, boxes[0])
    figures = quality.measure(image, face.box, face.landmarks)
    measures = quality.judge(figures, thresholds(settings, profile))
    failed = [m for m in measures if not m.passed]
    if failed:
        raise LowQuality(
            "the capture is not good enough: " + ", ".join(m.name for m in failed),
            failed=[
                {"measure": m.name, "value": round(m.value, 3), "threshold": m.threshold}
                for m in failed
            ],
        )
    return Capture(image, face, measures, quality.judge(figures, settings.quality.enrollment))
