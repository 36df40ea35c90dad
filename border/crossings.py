"""Crossings: the kiosk flow, the officer's resolution, a person's crossings and stay, the
overstayers. Every use case runs in one transaction with its audit event."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from audit import service as audit_service
from border import decision, models, store
from core import crypto
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import BorderError, Forbidden, InvalidRequest, NotFound
from core.runtime import Runtime
from enrollment import capture as capture_mod
from enrollment import intake
from enrollment import service as enrollment_service
from enrollment.service import Biometrics, DuplicateIdentity
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


def _now() -> datetime:
    return datetime.now(UTC)


def host_day(rt: Runtime, at: datetime) -> date:
    """The calendar day of ``at`` in the host time zone: stay days are counted in it."""
    return at.astimezone(ZoneInfo(rt.settings.timezone)).date()


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _moment(rt: Runtime, text: str | None) -> datetime:
    """The crossing's time: now, or the ISO 8601 datetime with zone a late post sends."""
    now = _now()
    if text is None:
        return now
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            "`at` must be an ISO 8601 datetime with its zone, e.g. 2026-11-23T08:30:00+01:00"
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidRequest("`at` must carry its time zone, e.g. 2026-11-23T08:30:00+01:00")
    if at < EARLIEST:
        raise InvalidRequest(f"`at` lies before {EARLIEST.date()}: no post syncs that late")
    if at - now > timedelta(seconds=rt.settings.clock_skew_s):
        raise InvalidRequest(
            f"`at` is in the future beyond {rt.settings.clock_skew_s:.0f} s of clock skew"
        )
    return at.astimezone(UTC)


def _history(conn: Conn, person_id: UUID | None) -> list[rules.Movement]:
    if person_id is None:
        return []
    return [
        rules.Movement(m.direction, m.day, m.visa_id)  # type: ignore[arg-type]
        for m in store.movements(conn, person_id)
    ]


def _accompanied(rt: Runtime, conn: Conn, policy: Policy, adult: UUID | None, day: date) -> bool:
    """Whether ``adult`` names an enrolled person of full age on ``day``."""
    if adult is None:
        return False
    facts = enrollment_service.person_facts(rt, conn, adult)
    if facts is None or facts.birth_date is None:
        return False
    return rules.age_on(facts.birth_date, day) >= policy.adult_age


def _stay_view(figures: dict[str, Any]) -> dict[str, Any] | None:
    keys = (
        "regime", "entry", "window_start", "days_used", "days_remaining", "latest_exit",
        "authorised_until", "overstay_days",
    )  # fmt: skip
    if figures.get("regime") in (None, "not_evaluated"):
        return None
    return {k: figures.get(k) for k in keys}


def _out(row: store.CrossingRow, note: str | None = None) -> models.CrossingOut:
    match = None
    if row.match_distance is not None and row.match_threshold is not None:
        match = models.Match(
            distance=round(row.match_distance, 4),
            threshold=row.match_threshold,
            matched=row.match_distance <= row.match_threshold,
        )
    resolution = None
    if row.outcome is not None and row.resolved_at is not None and row.resolved_by is not None:
        resolution = models.Resolution(
            outcome=row.outcome,  # type: ignore[arg-type]
            note=note,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
        )
    return models.CrossingOut(
        crossing_id=row.id,
        person_id=row.person_id,
        direction=row.direction,  # type: ignore[arg-type]
        border_point=row.border_point,
        at=row.at,
        decision=row.decision,  # type: ignore[arg-type]
        reasons=[models.ReasonOut(**r) for r in row.reasons],
        match=match,
        stay=_stay_view(row.figures),
        rule_set=row.rule_set,
        visa_id=row.visa_id,
        accompanied_by=row.accompanied_by,
        resolution=resolution,
    )


def cross(
    rt: Runtime, bio: Biometrics, policy: Policy, principal: Principal, request: CrossingIn
) -> models.CrossingOut:
    """A kiosk crossing: document, live face, watchlist, visa and stay rules, then admit or
    refer with every reason found. A device fault (an unreadable image, a key used at
    another border point, a bad ``at``) is refused before anything is recorded."""
    if principal.border_point is not None and principal.border_point != request.border_point:
        raise Forbidden(
            f"this key is bound to border point {principal.border_point}, "
            f"not {request.border_point}"
        )
    at = _moment(rt, request.at)
    day = host_day(rt, at)
    image = intake.decode(request.image, capture_mod.limits(rt.settings))

    reasons: list[rules.Reason] = []
    document: MRZ | None = None
    try:
        document = visa_service.read_mrz(request.mrz)
    except visa_service.MrzInvalid as exc:
        field, reason = exc.extra.get("field"), exc.extra.get("reason")
        reasons.append(rules.Reason.of("MRZ_INVALID", f"the MRZ failed: {field} ({reason})"))
    capture: capture_mod.Capture | None = None
    try:
        capture = capture_mod.from_image(bio.model, image, rt.settings)
    except (capture_mod.NoFace, capture_mod.MultipleFaces, capture_mod.LowQuality) as exc:
        reasons.append(decision.face_reason(exc))

    crossing_id = uuid4()
    enrolled_seq: int | None = None
    distance: float | None = None
    threshold = rt.settings.verify_threshold
    figures: dict[str, Any] = {"rule_set": policy.rule_set, "direction": request.direction}
    visa_id: UUID | None = None
    with transaction(rt.pool) as conn:
        person_id, index = None, None
        if document is not None:
            index = enrollment_service.document_blind_index(
                rt, document.issuing_state, document.document_number
            )
            store.lock_traveller(conn, index)
            person_id = enrollment_service.person_by_document(
                rt, conn, document.issuing_state, document.document_number
            )
        if (
            person_id is None
            and document is not None
            and capture is not None
            and request.direction == "entry"
            and not policy.needs_visa(document.nationality)
        ):
            # First sight of a visa-exempt traveller: enrolled at this entry (the EES way).
            try:
                created, enrolled_seq = enrollment_service.enroll_in(
                    rt, bio, conn, principal, document=document, image=request.image,
                    capture=capture, station=request.border_point,
                )  # fmt: skip
                person_id = created.person_id
            except DuplicateIdentity:
                reasons.append(
                    rules.Reason.of(
                        "FACE_MISMATCH", "the live face is enrolled under another document"
                    )
                )
        if person_id is not None and capture is not None and enrolled_seq is None:
            distance = enrollment_service.verify_template(
                rt, conn, person_id, capture.face.template
            )
            if distance > threshold:
                reasons.append(decision.mismatch(distance, threshold))
        hits = (
            enrollment_service.watchlist_hits(rt, bio, conn, capture.face.template)
            if capture is not None
            else []
        )
        if hits or (person_id is not None and enrollment_service.is_watchlisted(conn, person_id)):
            reasons.append(
                rules.Reason.of("WATCHLIST_HIT", "the traveller matches an active watchlist entry")
            )
        # Only an enrolled person is recorded as the companion; any other id counts as none.
        companion = request.accompanied_by
        if companion is not None and enrollment_service.person_facts(rt, conn, companion) is None:
            companion = None
        if document is not None:
            traveller = rules.Traveller(
                nationality=document.nationality,
                birth_date=document.birth_date,
                document_expiry=document.expiry_date,
                known=person_id is not None,
            )
            visas = visa_service.visa_facts(conn, person_id) if person_id else []
            history = _history(conn, person_id)
            accompanied = _accompanied(rt, conn, policy, request.accompanied_by, day)
            evaluate = rules.evaluate_entry if request.direction == "entry" else rules.evaluate_exit
            evaluation = evaluate(policy, traveller, visas, history, day, accompanied=accompanied)
            reasons.extend(evaluation.reasons)
            figures = evaluation.figures
            visa_id = evaluation.visa_id
            before = [m for m in history if m.on <= day]
            if request.direction == "entry" and before and before[-1].direction == "entry":
                reasons.append(decision.entry_without_exit(before[-1].on.isoformat()))
        row = store.CrossingRow(
            id=crossing_id,
            person_id=person_id,
            document_index=index,
            direction=request.direction,
            border_point=request.border_point,
            at=at,
            day=day,
            decision=decision.decide(reasons),
            reasons=[r.as_dict() for r in reasons],
            match_distance=distance,
            match_threshold=threshold if distance is not None else None,
            figures=figures,
            rule_set=policy.rule_set,
            visa_id=visa_id,
            accompanied_by=companion,
            recorded_by=principal.actor,
            recorded_at=_now(),
        )
        store.insert(conn, row)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.create",
            resource_type="crossing",
            resource_id=crossing_id,
            detail={
                "person_id": None if person_id is None else str(person_id),
                "decision": row.decision,
                "codes": [r.code for r in reasons],
                "enrolled": enrolled_seq is not None,
            },
        )
    if enrolled_seq is not None and capture is not None:
        bio.galleries.add([enrolled_seq], [capture.face.template], set())
    return _out(row)


def _note_key(rt: Runtime, conn: Conn, row: store.CrossingRow, *, create: bool) -> bytes | None:
    """Notes are sealed with the traveller's key (shredded with them), or with a key of the
    crossing's own when no person is tied to it. An erased traveller's key is never made
    again: None."""
    if row.person_id is not None:
        return rt.keys.data_key(conn, row.person_id)
    return rt.keys.data_key(conn, row.id, create=create)


def resolve(
    rt: Runtime, principal: Principal, crossing_id: UUID, body: models.ResolutionIn
) -> models.CrossingOut:
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
        key = _note_key(rt, conn, row, create=True)
        if key is None:
            raise NotFound("person", row.person_id)
        at = _now()
        sealed = crypto.seal(key, body.note.encode(), crypto.aad("crossings", "note", row.id))
        store.resolve(conn, row.id, body.outcome, sealed, principal.actor, at)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "crossings.resolve",
            resource_type="crossing",
            resource_id=row.id,
            detail={"outcome": body.outcome},
        )
        resolved = store.get(conn, row.id)
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
