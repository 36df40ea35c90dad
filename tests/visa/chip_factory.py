"""A test PKI and chip files (DESIGN §16): the specimens of visa/specimen.py, plus chip
faces drawn from the sample photos and whole chips of a passport."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from visa.specimen import (
    Authority,
    Key,
    crl,
    csca,
    dg1,
    dg2,
    ec_key,
    facial_record,
    master_list,
    rsa_key,
    signer,
    sod,
)

NOW = datetime.now(UTC)

__all__ = [
    "NOW",
    "Authority",
    "Chip",
    "Key",
    "crl",
    "csca",
    "dg1",
    "dg2",
    "ec_key",
    "face_image",
    "facial_record",
    "master_list",
    "passport_chip",
    "rsa_key",
    "signer",
    "sod",
]


def face_image(photo: Path, fmt: str = "jpeg2000", width: int = 360) -> bytes:
    """A chip-sized face photo, JPEG or JPEG 2000 (OpenCV's encoders)."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    assert image is not None
    h, w = image.shape[:2]
    image = cv2.resize(image, (width, int(h * width / w)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jp2" if fmt == "jpeg2000" else ".jpg", image)
    assert ok
    return np.asarray(data).tobytes()


@dataclass(frozen=True)
class Chip:
    dg1: bytes
    dg2: bytes | None
    sod: bytes

    def files(self) -> dict[str, tuple[str, bytes, str]]:
        parts = {"dg1": self.dg1, "sod": self.sod}
        if self.dg2 is not None:
            parts["dg2"] = self.dg2
        return {k: (k, v, "application/octet-stream") for k, v in parts.items()}


def passport_chip(by: Authority, mrz: str, photo: Path | None, *, fmt: str = "jpeg2000") -> Chip:
    """The chip of a genuine passport: DG1 of ``mrz``, DG2 of ``photo``, signed by ``by``."""
    one = dg1(mrz)
    two = dg2(face_image(photo, fmt), fmt) if photo is not None else None
    groups = {1: one} | ({2: two} if two is not None else {})
    return Chip(one, two, sod(by, groups))
