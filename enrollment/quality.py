"""Capture quality, pure: each measure in the spirit of ISO/IEC 29794-5, with its value and
threshold, so a kiosk can tell the traveller what to fix.

Measures are taken on the face, not the frame. Sharpness, exposure and contrast use the
face box cropped and scaled to ``CROP`` pixels square in grey, so they do not depend on
the camera's resolution.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from core.settings import QualityThresholds
from enrollment.intake import RGBImage
from enrollment.templates import Box, Landmarks

CROP = 128
_LEFT_EYE, _RIGHT_EYE = slice(36, 42), slice(42, 48)  # iBUG 300-W: subject's right, left
_NOSE_TIP, _JAW_RIGHT, _JAW_LEFT = 30, 0, 16


@dataclass(frozen=True)
class Measure:
    name: str
    value: float
    threshold: float
    passed: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "measure": self.name,
            "value": round(self.value, 3),
            "threshold": self.threshold,
            "passed": self.passed,
        }


def _face_crop(image: RGBImage, box: Box) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    left, top = max(0, box.left), max(0, box.top)
    right, bottom = min(width, box.right), min(height, box.bottom)
    crop = image[top:bottom, left:right] if right > left and bottom > top else image
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return np.asarray(cv2.resize(grey, (CROP, CROP), interpolation=cv2.INTER_AREA), np.uint8)


def _pose(landmarks: Landmarks) -> tuple[float, float]:
    """Yaw and roll in degrees, estimated from the landmarks (a rough guide, not a 3-D fit).

    Roll is the tilt of the line between the eye centres. Yaw comes from how far the nose
    tip sits from the middle of the jaw line: turned heads put it near one side.
    """
    right_eye, left_eye = landmarks[_LEFT_EYE].mean(axis=0), landmarks[_RIGHT_EYE].mean(axis=0)
    roll = math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
    jaw_r, jaw_l, nose = landmarks[_JAW_RIGHT], landmarks[_JAW_LEFT], landmarks[_NOSE_TIP]
    span = float(np.linalg.norm(jaw_l - jaw_r)) or 1.0
    offset = float(np.dot(nose - (jaw_r + jaw_l) / 2, (jaw_l - jaw_r) / span))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, 2 * offset / span))))
    return yaw, roll


@dataclass(frozen=True)
class Figures:
    """What is measured of one face, before any profile judges it (the study in
    benchmarks/bench_quality.py judges the same figures by several profiles)."""

    eye_distance_px: float
    sharpness: float
    brightness: float
    crushed_share: float  # share of the crop at 0-5
    blown_share: float  # share of the crop at 250-255
    contrast: float
    pose_deg: float
    cut_off_share: float


def _exposure(
    name: str, mean: float, limit: float, clipped: float, limits: QualityThresholds
) -> Measure:
    """Exposure fails on the mean grey, or on too much of the face crushed to black (blown
    to white); the measure then reports the figure that failed, with its own threshold."""
    mean_ok = mean >= limit if name == "underexposed" else mean <= limit
    if mean_ok and clipped > limits.max_clipped_share:
        return Measure(name, clipped, limits.max_clipped_share, False)
    return Measure(name, mean, limit, mean_ok)


def eye_distance(landmarks: Landmarks) -> float:
    return float(np.linalg.norm(landmarks[_LEFT_EYE].mean(0) - landmarks[_RIGHT_EYE].mean(0)))


def measure(image: RGBImage, box: Box, landmarks: Landmarks) -> Figures:
    """Every figure of one face."""
    height, width = image.shape[:2]
    crop = _face_crop(image, box)
    contrast = float(crop.std())
    box_area = max(1, box.width * box.height)
    inside = max(0, min(width, box.right) - max(0, box.left)) * max(
        0, min(height, box.bottom) - max(0, box.top)
    )
    return Figures(
        eye_distance_px=eye_distance(landmarks),
        # Edge energy relative to the crop's own variance, so a dark or flat face is
        # reported as underexposed or low in contrast, not as blurred.
        sharpness=100 * float(cv2.Laplacian(crop, cv2.CV_64F).var()) / max(contrast**2, 1.0),
        brightness=float(crop.mean()),
        crushed_share=float(np.count_nonzero(crop <= 5) / crop.size),
        blown_share=float(np.count_nonzero(crop >= 250) / crop.size),
        contrast=contrast,
        pose_deg=max(abs(angle) for angle in _pose(landmarks)),
        cut_off_share=1.0 - inside / box_area,
    )


def judge(figures: Figures, limits: QualityThresholds) -> list[Measure]:
    """Every measure of one face under one profile's limits, failed or not, in a fixed
    order (face_too_small, blurred, underexposed, overexposed, low_contrast, pose,
    face_cut_off)."""
    f = limits
    eyes, sharp = figures.eye_distance_px, figures.sharpness
    return [
        Measure("face_too_small", eyes, f.min_eye_distance_px, eyes >= f.min_eye_distance_px),
        Measure("blurred", sharp, f.min_sharpness, sharp >= f.min_sharpness),
        _exposure("underexposed", figures.brightness, f.min_brightness, figures.crushed_share, f),
        _exposure("overexposed", figures.brightness, f.max_brightness, figures.blown_share, f),
        Measure(
            "low_contrast", figures.contrast, f.min_contrast, figures.contrast >= f.min_contrast
        ),
        Measure("pose", figures.pose_deg, f.max_pose_deg, figures.pose_deg <= f.max_pose_deg),
        Measure(
            "face_cut_off",
            figures.cut_off_share,
            f.max_cut_off_share,
            figures.cut_off_share <= f.max_cut_off_share,
        ),
    ]


def assess(
    image: RGBImage, box: Box, landmarks: Landmarks, limits: QualityThresholds
) -> list[Measure]:
    """Every measure for one face, failed or not, in a fixed order."""
    return judge(measure(image, box, landmarks), limits)
