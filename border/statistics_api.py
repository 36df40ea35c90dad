"""The statistics route (DESIGN §12): counts of crossings by any of §12's keys over a date
range, small cells suppressed; JSON, or CSV with ``Accept: text/csv``."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from border import statistics
from border.crossing_api import PolicyDep
from core.auth import Principal, require_role
from core.runtime import RuntimeDep

router = APIRouter(tags=["statistics"])

StatisticsReader = Annotated[Principal, Depends(require_role("statistician", "officer", "auditor"))]


class StatisticsOut(BaseModel):
    """``cells`` hold the ``group_by`` keys, ``count`` (null when suppressed) and
    ``suppressed``; ``suppressed`` at the top is how many cells are."""

    model_config = ConfigDict(populate_by_name=True)

    k: int = Field(description="policy [statistics] min_cell: cells under it are suppressed")
    from_: date = Field(alias="from")
    to: date
    group_by: list[str]
    cells: list[dict[str, str | int | bool | None]]
    suppressed: int


@router.get(
    "/statistics",
    name="statistics.read",
    response_model=StatisticsOut,
    response_model_by_alias=True,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV"}},
)
def read_statistics(
    request: Request,
    principal: StatisticsReader,
    rt: RuntimeDep,
    policy: PolicyDep,
    first: Annotated[
        str | None,
        Query(alias="from", max_length=10, description="required: YYYY-MM-DD, inclusive"),
    ] = None,
    last: Annotated[
        str | None, Query(alias="to", max_length=10, description="required: YYYY-MM-DD, inclusive")
    ] = None,
    group_by: Annotated[
        str | None,
        Query(
            max_length=200, description="comma-separated keys: " + ", ".join(statistics.GROUP_KEYS)
        ),
    ] = None,
) -> Response | StatisticsOut:
    """Counts of crossings grouped by ``group_by`` (required, one or more keys) over
    ``from``..``to`` (at most five years), from the aggregates kept on write. A cell under
    ``k`` has ``count: null``; when one cell of a group alone would be suppressed the next
    smallest is too (groups: the whole answer, and per key the cells sharing every other
    key); no totals. ``decision`` is the final one (a resolved referral counts under its
    outcome). With ``Accept: text/csv``: the keys in ``group_by`` order, then ``count``
    (empty when suppressed)."""
    query = statistics.parse_query(first, last, group_by)
    table = statistics.table(rt, policy, principal, query)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(table.csv(), media_type="text/csv; charset=utf-8")
    return StatisticsOut.model_validate(table.as_dict())
