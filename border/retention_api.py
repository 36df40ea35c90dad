"""Routes of retention (DESIGN §12): the dpo's due list, and an admin's erasure, which
border orchestrates because it also clears the document's blind index from crossings."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from border import models, retention
from border.crossing_api import PolicyDep
from core.auth import Admin, Dpo
from core.runtime import RuntimeDep
from enrollment.api import BiometricsDep

router = APIRouter()

# The data protection officer (DESIGN §4).


@router.get("/retention/due", name="retention.due", tags=["retention"])
def retention_due(
    principal: Dpo,
    rt: RuntimeDep,
    policy: PolicyDep,
    within_days: Annotated[
        int,
        Query(
            ge=1,
            le=retention.MAX_WITHIN_DAYS,
            description="persons whose retention date falls within this many days of "
            "today (overdue ones included), 1 to 3650",
        ),
    ] = 90,
    limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many")] = 1000,
) -> models.RetentionDueOut:
    """Persons whose file retention erases within the days: ids, dates and reasons only."""
    return retention.due(rt, policy, principal, within_days=within_days, limit=limit)


@router.delete(
    "/persons/{person_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="persons.erase",
    tags=["persons"],
)
def erase_person(person_id: UUID, principal: Admin, rt: RuntimeDep, bio: BiometricsDep) -> Response:
    """Erase the person (crypto-shredding, templates out of every gallery) and clear their
    documents' blind index from crossings; afterwards 404 and never a search hit."""
    retention.erase_person(rt, bio, principal, person_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
