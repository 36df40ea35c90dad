"""The passport chip at a crossing or an enrollment (DESIGN §16): passive authentication of
the files the kiosk read (visa/chip.py, against the trust store of visa/pki.py), then the
chip's face as a 1:1 reference for the live one.

Everything here is the traveller's outcome, never a device fault: a part that is too large,
missing, truncated or garbage, an unknown hash algorithm, a face that does not decode, all
end as a :class:`ChipResult` naming the failed check, and the caller decides with it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import cv2

from core.db import transaction
from core.runtime import Runtime
from enrollment import capture as capture_mod
from enrollment import intake
from enrollment.templates import Face, FaceModel, Template
from matching.gallery import distance
from visa import chip, pki

# EF.DG2 of a passport holds one face of some 15-30 KB (ICAO 9303-9 asks for at least
# 90 pixels between the eyes); EF.SOD and EF.DG1 are far smaller. A part over this is not
# read further and fails the check ``part_size``.
PART_MAX_BYTES: Final = 256 * 1024
PARTS: Final = ("dg1", "dg2", "sod")

Status = Literal["passed", "failed", "no_trust_anchor"]


@dataclass(frozen=True)
class ChipFiles:
    """The chip's files as posted (None: not sent); ``oversized`` names the parts over
    :data:`PART_MAX_BYTES`, whose bytes were not kept."""

    dg1: bytes | None = None
    dg2: bytes | None = None
    sod: bytes | None = None
    oversized: tuple[str, ...] = ()

    @property
    def presented(self) -> bool:
        return bool(self.oversized) or any(p is not None for p in (self.dg1, self.dg2, self.sod))


@dataclass(frozen=True)
class ChipResult:
    """What the chip check found: passive authentication's status, the check that failed
    (a passed chip whose face cannot be used fails ``dg2_face``), and the chip's face with
    its distance to the live one when both were usable."""

    passive_authentication: Status
    failed_check: str | None = None
    detail: str | None = None
    signer: str | None = None
    face: Face | None = None
    # The chip's photo as a JPEG (a JPEG 2000 one re-encoded), to store as a capture.
    face_jpeg: bytes | None = None
    face_distance: float | None = None

    def summary(self, threshold: float) -> dict[str, Any]:
        """As stored with a crossing, for an auditor's replay (officers are shown its
        status, failed check and distance): with the check's detail, the signer and the
        verify ``threshold`` the chip's face was compared at."""
        out: dict[str, Any] = {"passive_authentication": self.passive_authentication}
        if self.failed_check is not None:
            out["failed_check"] = self.failed_check
            out["detail"] = self.detail
        if self.face_distance is not None:
            out["face_distance"] = round(self.face_distance, 4)
            out["face_threshold"] = threshold
        if self.signer is not None:
            out["signer"] = self.signer
        return out


def _failed(check: str, detail: str) -> ChipResult:
    return ChipResult("failed", check, detail)


def _face_image(rt: Runtime, face: chip.ChipFace) -> intake.RGBImage:
    limits = capture_mod.limits(rt.settings)
    if face.format == "jpeg":
        return intake.decode(face.image, limits)
    return intake.decode_jpeg2000(face.image, limits)


def chip_face(rt: Runtime, model: FaceModel, face: chip.ChipFace) -> tuple[Face, bytes]:
    """The chip photo's face (the largest one found); ChipError ``dg2_face`` when the
    image does not decode or shows no face. No quality gate: the issuing state took the
    photo to ICAO's rules, and it is a reference, not a capture to judge. Also the photo
    as a JPEG (JPEG 2000 re-encoded at quality 95): captures are JPEG or PNG."""
    try:
        image = _face_image(rt, face)
    except (intake.ImageUnreadable, intake.ImageTooLarge) as exc:
        detail = f"the chip's face image does not decode: {exc.detail}"
        raise chip.ChipError("dg2_face", detail) from None
    boxes = model.detect(image)
    if not boxes:
        raise chip.ChipError("dg2_face", "no face was found in the chip's face image")
    largest = max(boxes, key=lambda b: b.width * b.height)
    if face.format == "jpeg":
        jpeg = face.image
    else:
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not ok:
            raise chip.ChipError("dg2_face", "the chip's face image cannot be re-encoded")
        jpeg = bytes(encoded)
    return model.describe(image, largest), jpeg


def check(
    rt: Runtime,
    model: FaceModel,
    files: ChipFiles,
    *,
    mrz: str,
    issuing_state: str,
    at: datetime,
    live: Template | None,
) -> ChipResult:
    """Passive authentication of ``files`` against the printed ``mrz`` at ``at``, then
    the chip's face against the ``live`` template (when there is one). Reads the trust
    store in a short transaction of its own: nothing personal is read or written."""
    if files.oversized:
        return _failed("part_size", f"{', '.join(files.oversized)} over {PART_MAX_BYTES} bytes")
    if files.sod is None or files.dg1 is None:
        missing = [p for p, v in (("sod", files.sod), ("dg1", files.dg1)) if v is None]
        return _failed("missing_part", f"the chip's {' and '.join(missing)} were not sent")
    with transaction(rt.pool) as conn:
        trust = pki.trust_for(conn, files.sod)
    try:
        verdict = chip.authenticate(
            trust, sod=files.sod, dg1=files.dg1, dg2=files.dg2, mrz=mrz,
            issuing_state=issuing_state, at=at,
        )  # fmt: skip
    except chip.ChipError as exc:
        return _failed(exc.check, exc.detail)
    if verdict.face is None:
        return ChipResult(verdict.status, signer=verdict.signer_subject)
    try:
        face, jpeg = chip_face(rt, model, verdict.face)
    except chip.ChipError as exc:
        return ChipResult(verdict.status, exc.check, exc.detail, verdict.signer_subject)
    return ChipResult(
        verdict.status,
        signer=verdict.signer_subject,
        face=face,
        face_jpeg=jpeg,
        face_distance=None if live is None else distance(live, face.template),
    )
