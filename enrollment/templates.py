"""Face detection, landmarks and the 128-d template, on dlib's models as face_recognition
ships them.

Detection cost grows with pixels (DESIGN §9), so faces are found on a copy scaled to
``detect_size`` pixels on its longer side; the box is scaled back and the landmarks and the
template are taken on the original, so the template does not lose detail. When the copy
shows no face, a second copy twice that size is searched, so a small face in a large image
is still found (only images without a face pay for the second look).
"""

import threading
import warnings
from dataclasses import dataclass
from typing import Literal

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from enrollment.intake import RGBImage

with warnings.catch_warnings():
    # The models package still imports pkg_resources, which warns on every start.
    warnings.simplefilter("ignore")
    import face_recognition_models

Detector = Literal["hog", "cnn"]
Template = npt.NDArray[np.float32]
Landmarks = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Box:
    """A face box in pixels of the original image; may reach past its edges."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


@dataclass(frozen=True)
class Face:
    box: Box
    landmarks: Landmarks  # (68, 2) x, y in pixels, iBUG 300-W order
    template: Template  # (128,) as dlib computes it (norm near 1.4, not 1)


class FaceModel:
    """dlib's HOG (or CNN) detector, 68-point shape predictor and ResNet encoder.

    Loaded once per process (about a second) and shared by request threads; dlib's models
    keep scratch buffers, so each is used under its own lock.
    """

    def __init__(self, *, detector: Detector = "hog", detect_size: int = 320, upsample: int = 1):
        self.detector_kind = detector
        self.detect_size = detect_size
        self.upsample = upsample
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(
                face_recognition_models.cnn_face_detector_model_location()
            )
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
        self._encoder = dlib.face_recognition_model_v1(
            face_recognition_models.face_recognition_model_location()
        )
        self._detect_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    def warm_up(self) -> None:
        """Run each model once so the first request does not pay for lazy set-up."""
        blank = np.zeros((160, 160, 3), dtype=np.uint8)
        self.detect(blank)
        self.describe(blank, Box(40, 40, 120, 120))

    def detect(self, image: RGBImage) -> list[Box]:
        boxes = self._detect_at(image, self.detect_size)
        if not boxes and max(image.shape[:2]) > self.detect_size:
            boxes = self._detect_at(image, 2 * self.detect_size)
        return boxes

    def _detect_at(self, image: RGBImage, size: int) -> list[Box]:
        height, width = image.shape[:2]
        scale = min(1.0, size / max(height, width))
        small = image
        if scale < 1.0:
            shape = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(cv2.resize(image, shape, interpolation=cv2.INTER_AREA), np.uint8)
        with self._detect_lock:
            if self.detector_kind == "cnn":
                rects = [d.rect for d in self._cnn(small, self.upsample)]
            else:
                rects = list(self._hog(small, self.upsample))
        return [
            Box(
                round(r.left() / scale),
                round(r.top() / scale),
                round(r.right() / scale),
                round(r.bottom() / scale),
            )
            for r in rects
        ]

    def describe(self, image: RGBImage, box: Box) -> Face:
        """Landmarks and template for one detected face, on the full-resolution image."""
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        with self._encode_lock:
            shape = self._shape(image, rect)
            descriptor = self._encoder.compute_face_descriptor(image, shape, 1)
        landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return Face(box, landmarks, np.asarray(descriptor, dtype=np.float32))
