"""Subject access (DESIGN §12): everything held on a person, exported to the data protection
officer as one JSON document. It spans enrollment, visas, crossings and the audit log, so it
lives here, above them all.

The export is streamed: the person's records are read and the export audited in one
transaction, then the audit events about them follow page by page and the capture images
one at a time, so a long history or many photos never sit in memory at once."""

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from audit import service as audit_service
from audit import store as audit_store
from border import crossings, models
from core.auth import Principal
from core.db import transaction
from core.runtime import Runtime
from enrollment import service as enrollment_service
from visa import service as visa_service

WITHHELD: Final = ["alerts"]
WITHHELD_NOTE: Final = (
    "Some data held on you may be withheld from this export. Alerts (watchlist entries and "
    "document or name alerts) are restricted for law-enforcement purposes: they, the "
    "crossing reasons they gave (shown as SEE_OFFICER, as the kiosk showed them) and the "
    "audit events about them are left out, as are officers' notes and other persons' data."
)
# Audit actions about alerts: withheld with the alerts themselves.
_ALERT_ACTIONS: Final = ("watchlist.", "alerts.")
_AUDIT_PAGE: Final = 500


def _media_type(image: bytes) -> str | None:
    if image.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def export(rt: Runtime, principal: Principal, person_id: UUID) -> Iterator[bytes]:
    """The export of a person, as chunks of one JSON document (``models.SubjectExport``).
    NotFound (raised here, before anything is streamed) for an unknown or erased person.
    The ``persons.export`` event is written before the audit events are read, so the
    export lists itself."""
    with transaction(rt.pool) as conn:
        person = enrollment_service.subject_data(rt, conn, person_id)
        visas = visa_service.visas_of(conn, person_id)
        held_crossings = crossings.of_subject(conn, person_id)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "persons.export",
            resource_type="person",
            resource_id=person_id,
            detail={
                "documents": len(person.documents),
                "captures": len(person.captures),
                "visas": len(visas),
                "crossings": len(held_crossings),
                "withheld": WITHHELD,
            },
        )
    head = models.SubjectExport(
        person_id=person_id,
        exported_at=datetime.now(UTC),
        withheld=WITHHELD,
        withheld_note=WITHHELD_NOTE,
        person=person,
        visas=visas,
        crossings=held_crossings,
        audit_events=[],
        captures=[],
    ).model_dump(mode="json", exclude={"audit_events", "captures"})
    return _stream(rt, person_id, head, [c.capture_id for c in person.captures])


def _stream(
    rt: Runtime, person_id: UUID, head: dict[str, object], capture_ids: list[UUID]
) -> Iterator[bytes]:
    yield json.dumps(head)[:-1].encode() + b', "audit_events": ['
    first = True
    for event in _audit_events(rt, person_id):
        yield (b"" if first else b", ") + event.model_dump_json().encode()
        first = False
    yield b'], "captures": ['
    images = enrollment_service.subject_images(rt, person_id, capture_ids)
    for i, (capture_id, image) in enumerate(zip(capture_ids, images, strict=True)):
        media_type = _media_type(image)
        capture = models.ExportCapture(
            capture_id=capture_id,
            media_type=media_type,  # type: ignore[arg-type]
            image_base64=base64.b64encode(image).decode() if media_type else None,
        )
        yield (b", " if i else b"") + capture.model_dump_json().encode()
    yield b"]}"


def _audit_events(rt: Runtime, person_id: UUID) -> Iterator[models.ExportAuditEvent]:
    after = 0
    while True:
        with rt.pool.connection() as conn:
            page = audit_store.find(
                conn,
                audit_store.Filters(person_id=str(person_id), after_seq=after, limit=_AUDIT_PAGE),
            )
        for event in page:
            if not event.action.startswith(_ALERT_ACTIONS):
                yield models.ExportAuditEvent(
                    seq=event.seq,
                    at=event.at,
                    actor=event.actor,
                    role=event.role,
                    action=event.action,
                    purpose=event.purpose,
                    outcome=event.outcome,
                )
        if len(page) < _AUDIT_PAGE:
            return
        after = page[-1].seq
