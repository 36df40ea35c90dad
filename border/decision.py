"""The kiosk's decision, pure: every reason of a crossing from the facts gathered for it,
then admit when nothing calls for an officer, refer otherwise.

A kiosk never refuses: reasons that are grounds for refusal still only refer, and an
officer's resolution is the only refusal. Grounds come from the one table in
visa/rules.py, except where an alert's category decides them.

Alerts (DESIGN §10) become reasons by kind and category:

- the document presented is on an alert: ``ENTRY_BAN`` for an entry ban, otherwise
  ``DOCUMENT_ALERT`` (grounds only for ``lost_stolen_document`` and
  ``invalidated_document``);
- the holder has a person alert: ``ENTRY_BAN`` for an entry ban, otherwise
  ``WATCHLIST_HIT``;
- the live face matches another person's alert on the watchlist gallery: ``WATCHLIST_HIT``
  whatever the category (a face match is a candidate for an officer, not an identity);
- the name and birth date match a name alert: ``NAME_ALERT`` (names are shared).

Details name the category, never the alert's note. A kiosk's screen faces the traveller,
so :func:`for_kiosk` shows every alert reason as one ``SEE_OFFICER`` (no tipping-off).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal
from uuid import UUID

from core.errors import BorderError
from enrollment.capture import LowQuality, MultipleFaces, NoFace
from enrollment.chip_check import ChipResult
from enrollment.models import DOCUMENT_CATEGORIES, AlertFact
from visa import rules
from visa.mrz import MRZ
from visa.policy import Policy
from visa.rules import RECORDED_ONLY, Reason

Decision = Literal["admit", "refer"]
Direction = Literal["entry", "exit"]

ALERT_CODES: Final = frozenset({"DOCUMENT_ALERT", "ENTRY_BAN", "NAME_ALERT", "WATCHLIST_HIT"})
# Reasons that mean "no history to judge" for a traveller nobody holds the document of; when
# the face names candidates instead, the rules are judged as theirs at the officer's link.
_UNKNOWN_HOLDER: Final = frozenset({"UNKNOWN_TRAVELER", "NO_ENTRY_RECORD"})


# An alert bearing on the crossing: ``kind`` is document, name, person (the holder's own,
# or a ban on another of their documents) or face (another person's, matched by the face).
Alert = AlertFact


@dataclass(frozen=True)
class Facts:
    """Everything a crossing is judged on, gathered beforehand (border/crossings.py)."""

    direction: Direction
    day: date
    document: MRZ | None
    # Reasons found while reading the inputs: MRZ_INVALID, FACE_NOT_DETECTED/QUALITY_LOW.
    input_reasons: Sequence[Reason]
    holder_known: bool
    distance: float | None
    threshold: float
    candidates: int
    alerts: Sequence[Alert]
    visas: Sequence[rules.Visa] = ()
    history: Sequence[rules.Movement] = ()
    accompanied: bool = False
    # The document's holder was erased while the crossing waited for their lock: nobody
    # holds the document now, and nobody is enrolled from this crossing.
    holder_erased: bool = False
    # The passport chip's check (DESIGN §16); None when no chip file was presented (or the
    # printed MRZ did not read, leaving nothing to check the chip against).
    chip: ChipResult | None = None


@dataclass(frozen=True)
class Judgement:
    reasons: list[Reason]
    decision: Decision
    figures: dict[str, object] = field(default_factory=dict)
    visa_id: UUID | None = None

    @property
    def grounds(self) -> list[Reason]:
        return [r for r in self.reasons if r.grounds_for_refusal]


def judge(policy: Policy, facts: Facts) -> Judgement:
    """Every reason of the crossing, in a fixed order: inputs, a holder erased meanwhile,
    document change, face, alerts, visa and stay rules, an entry already open."""
    reasons = list(facts.input_reasons)
    erased = facts.holder_erased and not facts.holder_known
    if erased:
        reasons.append(holder_erased())
    changed = facts.candidates > 0 and not facts.holder_known
    if changed:
        reasons.append(
            Reason.of(
                "DOCUMENT_CHANGED",
                f"nobody holds this document, and the live face matches {facts.candidates} "
                "enrolled person(s): an officer compares them and may link the document",
            )
        )
    if facts.distance is not None and facts.distance > facts.threshold:
        reasons.append(mismatch(facts.distance, facts.threshold))
    reasons += chip_reasons(policy, facts.document, facts.chip, facts.threshold)
    reasons += alert_reasons(facts.alerts)
    figures: dict[str, object] = {"rule_set": policy.rule_set, "direction": facts.direction}
    visa_id = None
    if facts.document is not None:
        traveller = rules.Traveller(
            nationality=facts.document.nationality,
            birth_date=facts.document.birth_date,
            document_expiry=facts.document.expiry_date,
            known=facts.holder_known,
        )
        evaluate = rules.evaluate_entry if facts.direction == "entry" else rules.evaluate_exit
        evaluation = evaluate(
            policy, traveller, facts.visas, facts.history, facts.day, accompanied=facts.accompanied
        )
        reasons += [
            r
            for r in evaluation.reasons
            if not (changed and r.code in _UNKNOWN_HOLDER)
            and not (erased and r.code == "UNKNOWN_TRAVELER")
        ]
        figures, visa_id = evaluation.figures, evaluation.visa_id
        before = [m for m in facts.history if m.on <= facts.day]
        if facts.direction == "entry" and before and before[-1].direction == "entry":
            reasons.append(entry_without_exit(before[-1].on.isoformat()))
    return Judgement(reasons, decide(reasons), figures, visa_id)


def chip_reasons(
    policy: Policy, document: MRZ | None, chip: ChipResult | None, threshold: float
) -> list[Reason]:
    """The passport chip's reasons (DESIGN §16), none of them grounds for refusal: an
    officer examines the document. CHIP_INVALID names the failed check; CSCA_UNKNOWN says
    that the chip holds together but no imported CSCA vouches for its signer;
    CHIP_FACE_MISMATCH compares the live face with the chip's photo at the verify
    threshold; CHIP_NOT_PRESENTED only for the policy's ``chip_required`` nationalities."""
    if chip is None:
        if document is not None and policy.needs_chip(document.nationality):
            return [
                Reason.of(
                    "CHIP_NOT_PRESENTED",
                    "the passport's chip must be read for this nationality; it was not",
                )
            ]
        return []
    reasons = []
    if chip.failed_check is not None:
        reasons.append(
            Reason.of("CHIP_INVALID", f"the chip failed {chip.failed_check}: {chip.detail}")
        )
    if chip.passive_authentication == "no_trust_anchor":
        reasons.append(
            Reason.of(
                "CSCA_UNKNOWN",
                "no imported CSCA vouches for the chip's document signer (signature and "
                "hashes hold)",
            )
        )
    if chip.face_distance is not None and chip.face_distance > threshold:
        reasons.append(
            Reason.of(
                "CHIP_FACE_MISMATCH",
                f"the live face is {chip.face_distance:.3f} from the chip's photo; "
                f"the limit is {threshold:.2f}",
            )
        )
    return reasons


def alert_reasons(alerts: Sequence[Alert]) -> list[Reason]:
    """One reason per kind and category (a document and its holder both banned are two
    reasons), in the order the alerts came."""
    out: dict[tuple[str, str], Reason] = {}
    for alert in alerts:
        out.setdefault((alert.kind, alert.category), _alert_reason(alert))
    return list(out.values())


def _alert_reason(alert: Alert) -> Reason:
    category = alert.category
    if alert.kind == "name":
        return Reason.of(
            "NAME_ALERT", f"the name and birth date match a name alert ({category}); check"
        )
    if alert.kind == "face":
        return Reason.of(
            "WATCHLIST_HIT", f"the live face matches a person alert ({category}); compare"
        )
    if category == "entry_ban":
        where = "document" if alert.kind == "document" else "traveller"
        return Reason.of(
            "ENTRY_BAN", f"the {where} is under an alert for refusal of entry (entry_ban)"
        )
    if alert.kind == "document":
        return Reason(
            "DOCUMENT_ALERT",
            f"the document is on an alert list ({category})",
            category in DOCUMENT_CATEGORIES,
        )
    return Reason.of("WATCHLIST_HIT", f"the traveller has a person alert ({category})")


def for_kiosk(reasons: Sequence[Reason]) -> list[Reason]:
    """The reasons as a kiosk may show them: alert reasons become one SEE_OFFICER with no
    category, so the traveller in front of the screen learns nothing of any alert, and a
    document change does not say that the face is on file."""
    shown = [
        Reason.of("DOCUMENT_CHANGED", "this document is not on record; an officer checks it")
        if r.code == "DOCUMENT_CHANGED"
        else r
        for r in reasons
        if r.code not in ALERT_CODES
    ]
    if len(shown) < len(reasons):
        shown.append(Reason.of("SEE_OFFICER", "please see an officer"))
    return shown


def mrz_reason(field: object, reason: object) -> Reason:
    """The traveller's outcome for an MRZ that does not read."""
    return Reason.of("MRZ_INVALID", f"the MRZ failed: {field} ({reason})")


def decide(reasons: Sequence[Reason]) -> Decision:
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


def holder_erased() -> Reason:
    """The holder's record was erased while the crossing waited for their lock. Judged as
    a document nobody holds, but never admitted on that alone: the crossing enrolled nobody
    (an erasure is not undone by a crossing that began before it), so an officer sees the
    traveller."""
    return Reason.of(
        "UNKNOWN_TRAVELER",
        "nobody holds this document: its holder's record was erased while the crossing "
        "was judged, and nobody is enrolled from it; an officer checks the traveller",
    )


def entry_without_exit(since: str) -> Reason:
    """Not in the DESIGN §6 table: an entry while the last admitted entry has no exit.
    Admitting it would leave two open entries; an officer decides (the exit may simply not
    have been recorded)."""
    return Reason.of("ENTRY_WITHOUT_EXIT", f"the entry of {since} has no recorded exit")
