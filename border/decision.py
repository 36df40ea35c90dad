"""The kiosk's decision, pure: admit when nothing calls for an officer, refer otherwise.

A kiosk never refuses: reasons that are grounds for refusal still only refer, and an
officer's resolution is the only refusal. Reasons the flow itself finds (MRZ, face,
watchlist, an entry already open) are built here, with their grounds from the one table
in visa/rules.py.
"""

from typing import Literal

from core.errors import BorderError
from enrollment.capture import LowQuality, MultipleFaces, NoFace
from visa.rules import RECORDED_ONLY, Reason

Decision = Literal["admit", "refer"]


def decide(reasons: list[Reason]) -> Decision:
    return "refer" if any(r.code not in RECORDED_ONLY for r in reasons) else "admit"


def face_reason(error: BorderError) -> Reason:
    """The traveller's outcome for a readable image without a usable face."""
    if isinstance(error, NoFace):
        return Reason.of("FACE_NOT_DETECTED", "no face was found in the live capture")
    if isinstance(error, MultipleFaces):
        return Reason.of("FACE_QUALITY_LOW", "more than one face is in the live capture")
    assert isinstance(error, LowQuality)
    failed = ", ".join(str(f["measure"]) for f in error.extra.get("failed", []))
    return Reason.of("FACE_QUALITY_LOW", f"the live capture failed: {failed}")


def mismatch(distance: float, threshold: float) -> Reason:
    return Reason.of(
        "FACE_MISMATCH",
        f"the live face is {distance:.3f} from the nearest enrolled capture; "
        f"the limit is {threshold:.2f}",
    )


def entry_without_exit(since: str) -> Reason:
    """Not in the DESIGN §6 table: an entry while the last admitted entry has no exit.
    Admitting it would leave two open entries; an officer decides (the exit may simply not
    have been recorded)."""
    return Reason.of("ENTRY_WITHOUT_EXIT", f"the entry of {since} has no recorded exit")
