"""Crossings: the kiosk flow, the officer's resolution, a person's crossings and stay, the
overstayers. Every use case runs in one transaction with its audit event."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from audit import service as audit_service
from border import decision, models, statistics, store
from core import crypto
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import BorderError, Forbidden, InvalidRequest, NoLongerHeld, NotFound
from core.metrics import border_point_label
from core.runtime import Runtime
from enrollment import capture as capture_mod
from enrollment import chip_check, intake
from enrollment import models as enrollment_models
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from visa import rules, stay
from visa import service as visa_service
from visa.mrz import MRZ
from visa.policy import Policy

Direction = Literal["entry", "exit"]


class AlreadyResolved(BorderError):
    code = "invalid_request"
    status = 409


@dataclass(frozen=True)
class CrossingIn:
    image: bytes
    mrz: str
    direction: Direction
    border_point: str
    at: str | None
    accompanied_by: UUID | None
    accompanied_by_crossing: UUID | None = None
    # The passport chip's files (DESIGN §16), when the kiosk read them.
    chip: chip_check.ChipFiles = field(default_factory=chip_check.ChipFiles)


def _now() -> datetime:
    return datetime.now(UTC)


def host_day(rt: Runtime, at: datetime) -> date:
    """The calendar day of ``at`` in the host time zone: stay days are counted in it."""
    return at.astimezone(ZoneInfo(rt.settings.timezone)).date()


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# A crossing recorded more than this after its `at` is marked late and listed for officers.
LATE_AFTER: Final = timedelta(minutes=10)


def _moment(rt: Runtime, principal: Principal, text: str | None) -> datetime:
    """The crossing's time: now, or the ISO 8601 datetime with zone a late post sends. A
    kiosk's may lie at most ``kiosk_max_backdate_h`` hours back (a kiosk back-dating an exit
    would erase its traveller's overstay); an officer may record older crossings, down to
    2000-01-01."""
    now = _now()
    if text is None:
        return now
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            "`at` must be an ISO 8601 datetime with its zone, e.g. 2026-11-23T08:30:00+01:00",
            field="at",
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidRequest(
            "`at` must carry its time zone, e.g. 2026-11-23T08:30:00+01:00", field="at"
        )
    if at < EARLIEST:
        raise InvalidRequest(
            f"`at` lies before {EARLIEST.date()}: no post syncs that late", field="at"
        )
    if at - now > timedelta(seconds=rt.settings.clock_skew_s):
        raise InvalidRequest(
            f"`at` is in the future beyond {rt.settings.clock_skew_s:.0f} s of clock skew",
            field="at",
        )
    window = rt.settings.kiosk_max_backdate_h
    if principal.role != "officer" and now - at > timedelta(hours=window):
        raise InvalidRequest(
            f"`at` lies more than {window:g} h back: a kiosk records only the crossings of "
            "that window; an officer records older ones",
            field="at",
        )
    return at.astimezone(UTC)


def _history(
    conn: Conn, person_id: UUID | None, document_index: bytes | None = None
) -> list[rules.Movement]:
    """The person's admitted movements; with ``document_index``, also those admitted on
    that document before anyone held it (a link is about to attach them)."""
    if person_id is None:
        return []
    return [
        rules.Movement(m.direction, m.day, m.visa_id)  # type: ignore[arg-type]
        for m in store.movements(conn, person_id, document_index)
    ]


def _stay_view(figures: dict[str, Any]) -> dict[str, Any] | None:
    keys = (
        "regime", "entry", "window_start", "days_used", "days_remaining", "latest_exit",
        "authorised_until", "overstay_days",
    )  # fmt: skip
    if figures.get("regime") in (None, "not_evaluated"):
        return None
    return {k: figures.get(k) for k in keys}


def _kiosk_out(row: store.CrossingRow) -> models.KioskCrossingOut:
    """The crossing as a kiosk may see it (DESIGN §12): its id, the decision and the
    reasons, alert reasons masked, since its screen faces the traveller. Nothing of the
    person (no id, stay, match, visa, candidates or companion)."""
    reasons = decision.for_kiosk(
        [rules.Reason(r["code"], r["detail"], r["grounds_for_refusal"]) for r in row.reasons]
    )
    return models.KioskCrossingOut(
        crossing_id=row.id,
        decision=row.decision,  # type: ignore[arg-type]
        reasons=[models.ReasonOut(**r.as_dict()) for r in reasons],  # type: ignore[arg-type]
    )


def officer_record(conn: Conn, crossing_id: UUID) -> models.CrossingOut | None:
    """A crossing as the officers' routes show it (less its resolution note), read in the
    caller's transaction; the caller audits. None when there is no such crossing."""
    row = store.get(conn, crossing_id)
    return None if row is None else _out(row)


def _out(row: store.CrossingRow, note: str | None = None) -> models.CrossingOut:
    """The crossing as an officer sees it, candidates included."""
    match = None
    if row.match_distance is not None and row.match_threshold is not None:
        match = models.Match(
            distance=round(row.match_distance, 4),
            threshold=row.match_threshold,
            matched=row.match_distance <= row.match_threshold,
        )
    resolution = None
    if row.outcome is not None and row.resolved_at is not None and row.resolved_by is not None:
        linked = row.figures.get("linked_reasons")
        resolution = models.Resolution(
            outcome=row.outcome,  # type: ignore[arg-type]
            grounds=row.grounds,
            protection=row.protection,
            linked_reasons=None if linked is None else [models.ReasonOut(**r) for r in linked],
            note=note,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
        )
    reasons = [rules.Reason(r["code"], r["detail"], r["grounds_for_refusal"]) for r in row.reasons]
    return models.CrossingOut(
        crossing_id=row.id,
        person_id=row.person_id,
        direction=row.direction,  # type: ignore[arg-type]
        border_point=row.border_point,
        at=row.at,
        decision=row.decision,  # type: ignore[arg-type]
        reasons=[models.ReasonOut(**r.as_dict()) for r in reasons],  # type: ignore[arg-type]
        match=match,
        stay=_stay_view(row.figures),
        rule_set=row.rule_set,
        visa_id=row.visa_id,
        accompanied_by=row.accompanied_by,
        candidates=(
            None
            if row.candidates is None
            else [enrollment_models.Candidate.model_validate(c) for c in row.candidates]
        ),
        resolution=resolution,
        late=row.late,
        chip=(
            None
            if row.figures.get("chip") is None
            else enrollment_models.ChipSummary.model_validate(row.figures["chip"])
        ),
    )


def _read_inputs(
    bio: Biometrics, rt: Runtime, request: CrossingIn
) -> tuple[MRZ | None, capture_mod.Capture | None, list[rules.Reason]]:
    """The document and the live face, each with the reason it failed, if it did. An image
    that is no readable image is a device fault: refused before anything is recorded."""
    image = intake.decode(request.image, capture_mod.limits(rt.settings))
    reasons: list[rules.Reason] = []
    document: MRZ | None = None
    try:
        document = visa_service.read_mrz(request.mrz)
    except visa_service.MrzInvalid as exc:
        reasons.append(decision.mrz_reason(exc.extra.get("field"), exc.extra.get("reason")))
    capture: capture_mod.Capture | None = None
    try:
        capture = capture_mod.from_image(bio.model, image, rt.settings, profile="kiosk")
    except (capture_mod.NoFace, capture_mod.MultipleFaces, capture_mod.LowQuality) as exc:
        reasons.append(decision.face_reason(exc))
    return document, capture, reasons


def _chip(
    rt: Runtime,
    bio: Biometrics,
    request: CrossingIn,
    document: MRZ | None,
    capture: capture_mod.Capture | None,
    at: datetime,
) -> chip_check.ChipResult | None:
    """The chip's check when its files came with a readable printed MRZ (without one there
    is nothing to check DG1 against, and MRZ_INVALID refers the traveller already). A chip
    fault is the traveller's outcome: it never refuses the post."""
    if not request.chip.presented or document is None:
        return None
    return chip_check.check(
        rt, bio.model, request.chip, mrz=request.mrz, issuing_state=document.issuing_state,
        at=at, live=None if capture is None else capture.face.template,
    )  # fmt: skip


# A kiosk names a minor's adult by the crossing it got for the adult just before.
COMPANION_WINDOW: Final = timedelta(minutes=30)


def _companion(conn: Conn, request: CrossingIn, at: datetime) -> UUID | None:
    """The accompanying adult's person id: given outright by an officer's client, or by
    the adult's own admitted crossing at the same point, in the same direction, within the
    last 30 minutes. Anything else is no companion (and says nothing of why)."""
    if request.accompanied_by_crossing is None:
        return request.accompanied_by
    return store.admitted_person_of(
        conn,
        request.accompanied_by_crossing,
        border_point=request.border_point,
        direction=request.direction,
        since=at - COMPANION_WINDOW,
        until=at,
    )


def cross(
    rt: Runtime, bio: Biometrics, policy: Policy, principal: Principal, request: CrossingIn
) -> models.CrossingOut | models.KioskCrossingOut:
    """A kiosk crossing: validate the inputs, gather the traveller's facts, judge them
    (border/decision.py), record the crossing with its audit event. A device fault (an
    unreadable image, a key used at another border point, a bad ``at``) is refused before
    anything is recorded. A kiosk is answered the decision and reasons only
    (``KioskCrossingOut``), an officer the whole record."""
    if principal.border_point is not None and principal.border_point != request.border_point:
        raise Forbidden(
            f"this key is bound to border point {principal.border_point}, "
            f"not {request.border_point}"
        )
    if request.accompanied_by is not None and request.accompanied_by_crossing is not None:
        raise InvalidRequest(
            "give accompanied_by or accompanied_by_crossing, not both",
            field="accompanied_by_crossing",
        )
    at = _moment(rt, principal, request.at)
    day = host_day(rt, at)
    document, capture, input_reasons = _read_inputs(bio, rt, request)
    chip = _chip(rt, bio, request, document, capture, at)

    crossing_id = uuid4()
    with transaction(rt.pool) as conn:
        index = None
        if document is not None:
            index = enrollment_service.document_blind_index(
                rt, document.issuing_state, document.document_number
            )
            store.lock_traveller(conn, index)
        holder, erased = _holder(conn, index)
        facts = enrollment_service.traveller_facts(
            rt, bio, conn, principal,
            document=document, document_index=index, capture=capture, image=request.image,
            station=request.border_point, holder=holder,
            # A holder erased while this crossing waited is never enrolled again from it.
            enroll_if_new=(
                document is not None
                and not erased
                and request.direction == "entry"
                and not policy.needs_visa(document.nationality)
            ),
            companion=_companion(conn, request, at), day=day, adult_age=policy.adult_age,
        )  # fmt: skip
        if facts.holder is not None and facts.holder != holder:
            # Enrolled here, or enrolled meanwhile by a consular post (under the enrollment
            # lock, which an erasure takes first): serialised on the person too.
            store.lock_traveller(conn, facts.holder.bytes)
        holder = facts.holder
        judgement = decision.judge(
            policy,
            decision.Facts(
                direction=request.direction,
                day=day,
                document=document,
                input_reasons=input_reasons,
                holder_known=holder is not None,
                distance=facts.distance,
                threshold=rt.settings.verify_threshold,
                candidates=len(facts.candidates),
                alerts=facts.alerts,
                visas=visa_service.visa_facts(conn, holder, at=at) if holder else [],
                history=_history(conn, holder),
                accompanied=facts.accompanied,
                holder_erased=erased,
                chip=chip,
            ),
        )
        changed = bool(facts.candidates) and holder is None
        recorded_at = _now()
        row = store.CrossingRow(
            id=crossing_id,
            person_id=holder,
            document_index=index,
            direction=request.direction,
            border_point=request.border_point,
            at=at,
            day=day,
            decision=judgement.decision,
            reasons=[r.as_dict() for r in judgement.reasons],
            match_distance=facts.distance,
            # 1:1 against the holder, or the 1:N threshold the candidates were found within.
            match_threshold=(
                rt.settings.verify_threshold
                if facts.distance is not None
                else facts.identify_threshold
                if changed
                else None
            ),
            # The chip's check is kept with the figures, for an auditor's replay.
            figures=judgement.figures
            | ({"chip": chip.summary(rt.settings.verify_threshold)} if chip is not None else {}),
            rule_set=policy.rule_set,
            visa_id=judgement.visa_id,
            accompanied_by=facts.companion,
            recorded_by=principal.actor,
            recorded_at=recorded_at,
            candidates=[c.model_dump(mode="json") for c in facts.candidates] if changed else None,
            document_sealed=_seal_document(rt, conn, crossing_id, request.mrz) if changed else None,
            late=recorded_at - at > LATE_AFTER,
        )
        # A referral keeps the live capture for the officer; an admitted crossing keeps none.
        live_image = (
            _seal_image(rt, conn, crossing_id, holder, request.image)
            if row.decision == "refer"
            else None
        )
        store.insert(conn, row, live_image=live_image)
        statistics.count_crossing(conn, row, document)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.create",
            resource_type="crossing",
            resource_id=crossing_id,
            detail={
                "person_id": None if holder is None else str(holder),
                "decision": row.decision,
                "codes": [r.code for r in judgement.reasons],
                "enrolled": facts.enrolled_seq is not None,
                "candidates": [str(c.person_id) for c in facts.candidates],
                "late": row.late,
                "holder_erased": erased,
                "chip": None if chip is None else chip.passive_authentication,
            },
        )
    if facts.enrolled_seq is not None and capture is not None:
        bio.galleries.add([facts.enrolled_seq], [capture.face.template], set())
        rt.metrics.enrollment("enrolled_at_border")
    rt.metrics.crossing(
        row.decision,
        border_point_label(row.border_point, policy.border_points),
        (r.code for r in judgement.reasons),
    )
    if principal.role == "kiosk":
        return _kiosk_out(row)
    return _out(row)


def _holder(conn: Conn, index: bytes | None) -> tuple[UUID | None, bool]:
    """The holder of the document (whose lock the caller holds), under the person's lock,
    and whether an erasure took them meanwhile.

    Erasure takes the person's lock too, so once it is held the person's status is final
    for this transaction: re-read, it says whether the person erased while this crossing
    waited. Their documents are gone then, so nobody holds this one; the crossing goes to
    an officer and never enrolls them again from a lookup that still saw them."""
    if index is None:
        return None, False
    holder = enrollment_service.holder_of(conn, index)
    if holder is None:
        return None, False
    # The person's history may also move under another of their documents (or an
    # officer's link): serialise on the person too, always after the document.
    store.lock_traveller(conn, holder.bytes)
    if enrollment_service.is_active(conn, holder):
        return holder, False
    return None, True


def _seal_document(rt: Runtime, conn: Conn, crossing_id: UUID, mrz: str) -> bytes:
    """The MRZ of a document nobody holds, kept for the officer's link, sealed with a key
    of the crossing's own."""
    key = rt.keys.data_key(conn, crossing_id, create=True)
    assert key is not None
    return crypto.seal(key, mrz.encode(), crypto.aad("crossings", "document", crossing_id))


def _open_document(rt: Runtime, conn: Conn, row: store.CrossingRow) -> MRZ:
    key = rt.keys.data_key(conn, row.id)
    if key is None or row.document_sealed is None:
        raise NotFound("document of crossing", row.id)
    text = crypto.unseal(key, row.document_sealed, crypto.aad("crossings", "document", row.id))
    return visa_service.read_mrz(text.decode())


def _sealing_key(
    rt: Runtime, conn: Conn, crossing_id: UUID, person_id: UUID | None, *, create: bool
) -> bytes | None:
    """What a crossing seals (its note, its live capture) is sealed with the traveller's
    key (shredded with them), or with a key of the crossing's own when no person is tied
    to it (the key its DOCUMENT_CHANGED MRZ is sealed with). An erased traveller's key is
    never made again: None."""
    if person_id is not None:
        return rt.keys.data_key(conn, person_id)
    return rt.keys.data_key(conn, crossing_id, create=create)


def _note_key(rt: Runtime, conn: Conn, row: store.CrossingRow, *, create: bool) -> bytes | None:
    return _sealing_key(rt, conn, row.id, row.person_id, create=create)


def _seal_image(
    rt: Runtime, conn: Conn, crossing_id: UUID, person_id: UUID | None, image: bytes
) -> bytes:
    """A referral's live capture, the bytes as the kiosk sent them (the intake has read
    them as an image already), sealed for the officer."""
    key = _sealing_key(rt, conn, crossing_id, person_id, create=True)
    # The holder was found active under their lock: their key is there.
    assert key is not None
    return crypto.seal(key, image, crypto.aad("crossings", "live_image", crossing_id))


def _move_to_person(rt: Runtime, conn: Conn, parts: store.SealedParts, person_key: bytes) -> None:
    """Re-seal what a crossing tied to no person holds under its own key (its note, its live
    capture) with the key of the person it is being attached to, then shred its own key:
    from then on all of it is the person's, erased with them. The MRZ kept for a link goes."""
    own = rt.keys.data_key(conn, parts.id)

    def moved(column: str, blob: bytes | None) -> bytes | None:
        if blob is None or own is None:
            return None
        aad = crypto.aad("crossings", column, parts.id)
        return crypto.seal(person_key, crypto.unseal(own, blob, aad), aad)

    store.reseal(
        conn,
        parts.id,
        note=moved("note", parts.resolution_note),
        image=moved("live_image", parts.live_image_sealed),
    )
    rt.keys.shred(conn, parts.id)


class LinkRefused(BorderError):
    """Linking the document would admit someone the person's own record refers: the
    officer decides again, with these reasons."""

    code = "conflict"
    status = 409


def _link(
    rt: Runtime,
    bio: Biometrics,
    policy: Policy,
    conn: Conn,
    principal: Principal,
    row: store.CrossingRow,
    body: models.ResolutionIn,
) -> store.CrossingRow:
    """Judge the crossing again as the chosen candidate's (their alerts, visas and history),
    refuse a link-and-admit that raises grounds for refusal, else join the document to the
    person and attach the crossing, and the document's earlier admitted crossings, to
    them. The MRZ kept for the link and the crossings' own keys go: the document, the live
    capture and the notes now live under the person's key, erased with them."""
    person_id = body.link_person_id
    assert person_id is not None
    chosen = [c for c in row.candidates or [] if c.get("person_id") == str(person_id)]
    if not chosen:
        raise InvalidRequest(
            "link_person_id must be one of the crossing's DOCUMENT_CHANGED candidates",
            field="link_person_id",
        )
    document = _open_document(rt, conn, row)
    # Joining the document takes the enrollment lock: take it before the person's lock,
    # in the order erasure takes them, so a link and an erasure never deadlock.
    enrollment_service.hold_enrollment(conn)
    store.lock_traveller(conn, person_id.bytes)  # after the document's lock, as cross() does
    if not enrollment_service.is_active(conn, person_id):
        raise NotFound("person", person_id)
    facts = enrollment_service.traveller_facts(
        rt, bio, conn, principal, document=document, document_index=row.document_index,
        capture=None, holder=person_id, day=row.day, adult_age=policy.adult_age,
    )  # fmt: skip
    judgement = decision.judge(
        policy,
        decision.Facts(
            direction=row.direction,  # type: ignore[arg-type]
            day=row.day,
            document=document,
            input_reasons=[],
            holder_known=True,
            distance=None,
            threshold=rt.settings.verify_threshold,
            candidates=0,
            alerts=facts.alerts,
            visas=visa_service.visa_facts(conn, person_id, at=row.at),
            history=_history(conn, person_id, row.document_index),
            accompanied=False,
        ),
    )
    if body.outcome == "admit" and judgement.grounds:
        raise LinkRefused(
            "as this person's, the crossing raises grounds for refusal: decide again",
            person_id=str(person_id),
            reasons=[r.as_dict() for r in judgement.reasons],
        )
    assert row.document_index is not None
    document_id = None
    if enrollment_service.holder_of(conn, row.document_index) != person_id:
        # A second referral on the same new document finds it joined already.
        document_id = enrollment_service.add_document_in(rt, conn, person_id, document).document_id
    figures = judgement.figures | {"linked_reasons": [r.as_dict() for r in judgement.reasons]}
    if "chip" in row.figures:
        figures["chip"] = row.figures["chip"]
    person_key = rt.keys.data_key(conn, person_id)
    if person_key is None:
        raise NotFound("person", person_id)
    # The crossing's live capture, and the notes and captures of the referrals admitted on
    # the document while nobody held it (link attaches them too), move to the person's key
    # before each crossing's own key is shredded.
    linked_parts = store.sealed_parts(conn, row.id)
    assert linked_parts is not None
    for parts in [linked_parts, *store.unheld_admitted_parts(conn, row.document_index)]:
        _move_to_person(rt, conn, parts, person_key)
    store.link(
        conn, row.id, person_id, visa_id=judgement.visa_id, figures=figures,
        distance=float(chosen[0]["distance"]), document_index=row.document_index,
    )  # fmt: skip
    audit_service.record(
        conn,
        rt.keys,
        principal,
        "documents.create",
        resource_type="person",
        resource_id=person_id,
        detail={
            "document_id": None if document_id is None else str(document_id),
            "crossing_id": str(row.id),
            "via": "link",
        },
    )
    linked = store.get(conn, row.id)
    assert linked is not None
    return linked


def _recheck_history(conn: Conn, row: store.CrossingRow) -> None:
    """A resolution re-checks the history: admitting must not give the traveller a second
    entry (or exit) that another crossing admitted since this one was referred."""
    if row.person_id is None:
        return
    admitted = store.admitted_of(conn, row.person_id)
    before = [m for m in admitted if (m.at, m.recorded_at) <= (row.at, row.recorded_at)]
    after = [m for m in admitted if (m.at, m.recorded_at) > (row.at, row.recorded_at)]
    neighbours = ([before[-1]] if before else []) + ([after[0]] if after else [])
    for other in neighbours:
        if other.direction == row.direction and other.recorded_at > row.recorded_at:
            raise AlreadyResolved(
                f"the traveller's {row.direction} was admitted by crossing {other.id} "
                f"({other.at.isoformat()}) since this referral; admitting it too would "
                f"record two {row.direction}s"
            )


def resolve(
    rt: Runtime,
    bio: Biometrics,
    policy: Policy,
    principal: Principal,
    crossing_id: UUID,
    body: models.ResolutionIn,
) -> models.CrossingOut:
    """An officer's resolution of a referral: admit, refuse (with Annex V grounds) or
    protection (a hand-over to the asylum or victim-protection authority, never a refusal);
    with ``link_person_id``, the changed document joins that candidate first."""
    try:
        with transaction(rt.pool) as conn:
            row = store.get(conn, crossing_id, lock=True)
            if row is None:
                raise NotFound("crossing", crossing_id)
            if row.decision != "refer":
                raise AlreadyResolved("only a referred crossing is resolved; this one was admitted")
            if row.outcome is not None:
                raise AlreadyResolved(f"this crossing was resolved ({row.outcome}) already")
            if row.document_index is not None:
                # An entry resolved admit opens a stay: serialised with the traveller's kiosks.
                store.lock_traveller(conn, row.document_index)
            if row.person_id is not None:
                store.lock_traveller(conn, row.person_id.bytes)
            if body.link_person_id is not None:
                row = _link(rt, bio, policy, conn, principal, row, body)
            if body.outcome == "admit":
                _recheck_history(conn, row)
            key = _note_key(rt, conn, row, create=True)
            if key is None:
                raise NotFound("person", row.person_id)
            grounds = sorted({str(g) for g in body.grounds}) if body.grounds else None
            protection = sorted({str(p) for p in body.protection}) if body.protection else None
            sealed = crypto.seal(key, body.note.encode(), crypto.aad("crossings", "note", row.id))
            store.resolve(
                conn, row.id, body.outcome, sealed, principal.actor, _now(),
                grounds=grounds, protection=protection,
            )  # fmt: skip
            statistics.count_resolution(conn, row, body.outcome, protection)
            audit_service.record(
                conn,
                rt.keys,
                principal,
                "crossings.resolve",
                resource_type="crossing",
                resource_id=row.id,
                detail={
                    "outcome": body.outcome,
                    "grounds": grounds,
                    "protection": protection,
                    "linked_person_id": None if body.link_person_id is None else str(row.person_id),
                },
            )
            resolved = store.get(conn, row.id)
    except LinkRefused as refusal:
        # The candidate's record was read and judged: that read is on the record too.
        with transaction(rt.pool) as conn:
            audit_service.record(
                conn,
                rt.keys,
                principal,
                "crossings.link_refused",
                resource_type="crossing",
                resource_id=crossing_id,
                detail={
                    "person_id": refusal.extra["person_id"],
                    "codes": [r["code"] for r in refusal.extra["reasons"]],
                },
            )
        raise
    assert resolved is not None
    return _out(resolved, body.note)


def of_person(rt: Runtime, principal: Principal, person_id: UUID) -> list[models.CrossingOut]:
    with transaction(rt.pool) as conn:
        if enrollment_service.person_facts(rt, conn, person_id) is None:
            raise NotFound("person", person_id)
        out = []
        for row in store.of_person(conn, person_id):
            note = None
            if row.resolution_note is not None:
                key = _note_key(rt, conn, row, create=False)
                if key is not None:
                    aad = crypto.aad("crossings", "note", row.id)
                    note = crypto.unseal(key, row.resolution_note, aad).decode()
            out.append(_out(row, note))
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.read",
            resource_type="person",
            resource_id=person_id,
            detail={"crossings": len(out)},
        )
    return out


def _masked(reasons: list[models.ReasonOut]) -> list[models.ReasonOut]:
    shown = decision.for_kiosk(
        [rules.Reason(r.code, r.detail, r.grounds_for_refusal) for r in reasons]  # type: ignore[arg-type]
    )
    return [models.ReasonOut(**r.as_dict()) for r in shown]  # type: ignore[arg-type]


def of_subject(conn: Conn, person_id: UUID) -> list[models.CrossingOut]:
    """A person's crossings for their subject-access export, in the caller's transaction
    (the caller audits). Alert reasons are masked as a kiosk shows them (law-enforcement
    restriction); no candidates (other persons) and no officers' notes."""
    out = []
    for row in store.of_person(conn, person_id):
        record = _out(row)
        record.reasons = _masked(record.reasons)
        record.candidates = None
        if record.resolution is not None and record.resolution.linked_reasons is not None:
            record.resolution.linked_reasons = _masked(record.resolution.linked_reasons)
        out.append(record)
    return out


def live_image(rt: Runtime, principal: Principal, crossing_id: UUID) -> bytes:
    """The live capture a referred crossing keeps for the officer, the bytes as the kiosk
    sent them (JPEG or PNG). Officers only; every view audited. NotFound when the crossing
    is unknown or keeps no image (admitted, or recorded before captures were kept);
    NoLongerHeld when its key was shredded (the traveller was erased)."""
    if principal.role != "officer":
        raise Forbidden("only officers see the live capture of a crossing")
    with transaction(rt.pool) as conn:
        found = store.sealed_image(conn, crossing_id)
        if found is None:
            raise NotFound("crossing", crossing_id)
        if found.live_image_sealed is None:
            raise NotFound("live capture of crossing", crossing_id)
        key = _sealing_key(rt, conn, crossing_id, found.person_id, create=False)
        if key is None:
            raise NoLongerHeld("live capture of crossing", crossing_id)
        image = crypto.unseal(
            key, found.live_image_sealed, crypto.aad("crossings", "live_image", crossing_id)
        )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.image.read",
            resource_type="crossing",
            resource_id=crossing_id,
            detail={"person_id": None if found.person_id is None else str(found.person_id)},
        )
    return image


def _day(rt: Runtime, on: date | None) -> date:
    """A day asked about: today in the host time zone by default; refused outside the
    years the rules' windows can be computed in."""
    day = on or host_day(rt, _now())
    if not date(1900, 1, 1) <= day <= date(2999, 12, 31):
        raise InvalidRequest(f"`on` ({day}) must lie between 1900-01-01 and 2999-12-31")
    return day


def person_stay(
    rt: Runtime, policy: Policy, principal: Principal, person_id: UUID, on: date | None
) -> models.StayOut:
    """The 90/180 figures on ``on`` (default: today in the host time zone), with the
    per-stay trace that explains them."""
    day = _day(rt, on)
    with transaction(rt.pool) as conn:
        facts = enrollment_service.person_facts(rt, conn, person_id)
        if facts is None:
            raise NotFound("person", person_id)
        history = _history(conn, person_id)
        visas = visa_service.visa_facts(conn, person_id)
        spans = rules.stays(history, day)
        trace = stay.trace(
            spans,
            day,
            max_stay_days=policy.max_stay_days,
            window_days=policy.window_days,
        )
        national = policy.is_national(facts.nationality)
        # Nationals have no stay limits (DESIGN §6): figures, but never an overstay.
        authorised = None if national else rules.authorised_stay(policy, visas, history, day)
        audit_service.record(
            conn, rt.keys, principal, "stay.read", resource_type="person", resource_id=person_id
        )
    return models.StayOut(
        on=day,
        window_start=trace.window_start,
        days_used=trace.days_used,
        days_remaining=trace.days_remaining,
        overstay=not national
        and (trace.overstay or bool(authorised and authorised.overstay_days(day))),
        in_territory=bool(spans) and spans[-1][1] is None,
        authorised_until=authorised.authorised_until if authorised else None,
        rule_set=policy.rule_set,
        trace=trace.as_dict(),
    )


def overstayers(
    rt: Runtime, policy: Policy, principal: Principal, on: date | None
) -> list[models.Overstayer]:
    """Persons in the territory on ``on`` past their last authorised day."""
    day = _day(rt, on)
    found = []
    with transaction(rt.pool) as conn:
        for person_id in store.persons_inside(conn, day):
            facts = enrollment_service.person_facts(rt, conn, person_id)
            if facts is None or policy.is_national(facts.nationality):
                continue
            history = _history(conn, person_id)
            authorised = rules.authorised_stay(
                policy, visa_service.visa_facts(conn, person_id), history, day
            )
            if authorised is None or not authorised.overstay_days(day):
                continue
            found.append(
                models.Overstayer(
                    person_id=person_id,
                    entry=authorised.entry,
                    authorised_until=authorised.authorised_until,
                    overstay_days=authorised.overstay_days(day),
                    limits_exceeded=authorised.exceeded(day),
                    visa_id=authorised.visa_id,
                )
            )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "overstayers.read",
            detail={"on": day.isoformat(), "found": len(found)},
        )
    return sorted(found, key=lambda o: (-o.overstay_days, str(o.person_id)))


def late_crossings(
    rt: Runtime, principal: Principal, border_point: str | None, limit: int
) -> list[models.CrossingOut]:
    """Crossings recorded more than 10 minutes after their time (a kiosk's late sync, an
    officer's record of an older crossing), the most recently recorded first."""
    with transaction(rt.pool) as conn:
        rows = store.late_crossings(conn, border_point, limit)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.read",
            detail={"late": len(rows), "border_point": border_point},
        )
    return [_out(row) for row in rows]


def open_referrals(
    rt: Runtime, principal: Principal, border_point: str | None, limit: int
) -> list[models.CrossingOut]:
    """The officer's queue: referred crossings awaiting a resolution, oldest first."""
    with transaction(rt.pool) as conn:
        rows = store.open_referrals(conn, border_point, limit)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.read",
            detail={"open_referrals": len(rows), "border_point": border_point},
        )
    return [_out(row) for row in rows]
