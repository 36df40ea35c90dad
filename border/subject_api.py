"""Routes of subject access (DESIGN §12): a person's export for the data protection officer."""

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from border import models, subject
from core.auth import Dpo
from core.runtime import RuntimeDep

router = APIRouter(tags=["subject access"])


@router.get(
    "/persons/{person_id}/export",
    name="persons.export",
    # The answer is streamed; the model documents its shape.
    response_model=models.SubjectExport,
)
def export_person(person_id: UUID, principal: Dpo, rt: RuntimeDep) -> StreamingResponse:
    """Everything held on the person, as one JSON document: biographic data, documents,
    visas, crossings with their reasons and resolutions, guardians, the rectification
    history, the audit events about them, and the captures as base64 (JPEG or PNG as
    enrolled). Alerts are withheld (``withheld`` says so). Audited as ``persons.export``."""
    chunks = subject.export(rt, principal, person_id)
    return StreamingResponse(
        chunks,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="person-{person_id}.json"'},
    )
