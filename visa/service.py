"""Use cases of visa/: reading a document's MRZ for the routes and other packages, issuing
and revoking visas, and the visa facts other packages read inside their own transactions."""

import secrets
from datetime import UTC, datetime
from typing import Final
from uuid import UUID, uuid4

from audit import service as audit_service
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import BorderError, NotFound
from core.runtime import Runtime
from visa import models, mrz, rules, store


class MrzInvalid(BorderError):
    code = "mrz_invalid"
    status = 422


def read_mrz(text: str) -> mrz.MRZ:
    """Parse an MRZ, or refuse it with ``mrz_invalid`` naming the field and the reason."""
    try:
        return mrz.parse_mrz(text)
    except mrz.MRZError as exc:
        raise MrzInvalid(str(exc), field=exc.field, reason=exc.reason) from None


# Letters and digits people cannot confuse when reading a number aloud or off a sticker
# (no I, O, 0 or 1): 32 symbols, so 9 of them give 2**45 numbers and a clash is rare.
_NUMBER_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_NUMBER_LENGTH: Final = 9
_NUMBER_TRIES: Final = 5


def new_visa_number() -> str:
    """A random visa number: 9 characters from A-Z and 2-9, unpredictable (``secrets``)."""
    return "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(_NUMBER_LENGTH))


def parse_mrz(rt: Runtime, principal: Principal, text: str) -> models.MrzOut:
    """Every field of an MRZ. The read is audited with its format only, never the fields; a
    refusal (``mrz_invalid``) is audited by the app's error handler like any other."""
    document = read_mrz(text)
    with transaction(rt.pool) as conn:
        audit_service.record(
            conn, rt.keys, principal, "mrz.parse", detail={"format": document.format}
        )
    return models.MrzOut(
        format=document.format,
        document_code=document.document_code,
        issuing_state=document.issuing_state,
        surname=document.surname,
        given_names=document.given_names,
        document_number=document.document_number,
        nationality=document.nationality,
        birth_date=document.birth_date,
        sex=document.sex,
        expiry_date=document.expiry_date,
        optional_data=document.optional_data,
        optional_data_1=document.optional_data_1,
        optional_data_2=document.optional_data_2,
    )


def issue_visa(rt: Runtime, principal: Principal, body: models.VisaIn) -> models.VisaRecord:
    """Issue a visa to an active person (404 ``not_found`` when unknown or erased)."""
    now = datetime.now(UTC)
    with transaction(rt.pool) as conn:
        if not store.hold_active_person(conn, body.person_id):
            raise NotFound("person", body.person_id)
        for _ in range(_NUMBER_TRIES):
            row = store.VisaRow(
                id=uuid4(),
                person_id=body.person_id,
                number=new_visa_number(),
                visa_type=body.visa_type,
                issuing_state=body.issuing_state,
                valid_from=body.valid_from,
                valid_until=body.valid_until,
                entries=body.entries,
                duration_of_stay_days=body.duration_of_stay_days,
                status="issued",
                issued_by=principal.actor,
                issued_at=now,
                revoked_at=None,
                revoked_by=None,
            )
            if store.insert_visa(conn, row):
                break
        else:
            # Five clashes in a space of 2**45 means something else is wrong.
            raise RuntimeError("could not draw an unused visa number")
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "visas.issue",
            resource_type="visa",
            resource_id=row.id,
            detail={
                "person_id": str(row.person_id),
                "visa_type": row.visa_type,
                "valid_from": row.valid_from.isoformat(),
                "valid_until": row.valid_until.isoformat(),
                "entries": row.entries,
                "duration_of_stay_days": row.duration_of_stay_days,
            },
        )
    return _record(row)


def revoke_visa(
    rt: Runtime, principal: Principal, visa_id: UUID, *, person_id: UUID | None = None
) -> models.VisaRecord:
    """Revoke a visa. Idempotent: revoking a revoked visa changes nothing and returns it
    with its first revocation's time and author, so a client may safely retry. With
    ``person_id`` (the console, which revokes from a person's page), a visa of anyone else
    is not found."""
    with transaction(rt.pool) as conn:
        if person_id is not None:
            held = store.get_visa(conn, visa_id)
            if held is None or held.person_id != person_id:
                raise NotFound("visa", visa_id)
        row = store.revoke_visa(conn, visa_id, principal.actor, datetime.now(UTC))
        already = row is None
        if row is None:
            row = store.get_visa(conn, visa_id)
            if row is None:
                raise NotFound("visa", visa_id)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "visas.revoke",
            resource_type="visa",
            resource_id=row.id,
            detail={"person_id": str(row.person_id), "already_revoked": already},
        )
    return _record(row)


def visas_of(conn: Conn, person_id: UUID) -> list[models.VisaOut]:
    """A person's visas, oldest first, in the caller's transaction; the caller audits."""
    return [_out(row) for row in store.visas_of(conn, person_id)]


def delete_visas_of(conn: Conn, person_id: UUID) -> int:
    """Delete the person's visas in the caller's transaction (retention erases the whole
    file, DESIGN §12; their crossings go first); the caller audits. How many."""
    return store.delete_visas_of(conn, person_id)


def visa_facts(conn: Conn, person_id: UUID, *, at: datetime | None = None) -> list[rules.Visa]:
    """A person's visas, revoked ones included, as the entry/exit rules take them, in the
    caller's transaction; the caller audits.

    ``at`` (an aware datetime, the crossing's moment) gives each visa the status it had
    then: one revoked after ``at`` is ``"issued"``, since it still counts as valid for that
    crossing (DESIGN §10); one revoked at ``at`` exactly is revoked. Without ``at``, the
    status as stored. Raises ``ValueError`` for a naive ``at``.
    """
    if at is not None and at.utcoffset() is None:
        raise ValueError("at must be an aware datetime: revocation times are stored in UTC")
    return [
        rules.Visa(
            visa_id=row.id,
            visa_type=row.visa_type,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            entries=row.entries,
            duration_of_stay_days=row.duration_of_stay_days,
            status=_status_at(row, at),
        )
        for row in store.visas_of(conn, person_id)
    ]


def _status_at(row: store.VisaRow, at: datetime | None) -> rules.VisaStatus:
    # The rules judge by days and stay pure; the moment of a revocation is only known here.
    if at is not None and row.revoked_at is not None and row.revoked_at > at:
        return "issued"
    return row.status


def _out(row: store.VisaRow) -> models.VisaOut:
    return models.VisaOut.model_validate(_fields(row))


def _record(row: store.VisaRow) -> models.VisaRecord:
    return models.VisaRecord.model_validate(
        {
            **_fields(row),
            "person_id": row.person_id,
            "issued_by": row.issued_by,
            "revoked_by": row.revoked_by,
        }
    )


def _fields(row: store.VisaRow) -> dict[str, object]:
    return {
        "visa_id": row.id,
        "number": row.number,
        "visa_type": row.visa_type,
        "issuing_state": row.issuing_state,
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
        "entries": row.entries,
        "duration_of_stay_days": row.duration_of_stay_days,
        "status": row.status,
        "issued_at": row.issued_at,
        "revoked_at": row.revoked_at,
    }
