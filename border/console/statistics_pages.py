"""The Statistics page (DESIGN §12) for statisticians, officers and auditors: counts of
crossings over a date range grouped by the keys chosen, small cells suppressed as the API
suppresses them, and the same table as CSV."""

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from border import statistics
from border.console import web
from border.crossing_api import PolicyDep
from core.errors import InvalidRequest

router = APIRouter()

Reader = Annotated[web.Staff, Depends(web.role("statistician", "officer", "auditor"))]

LABELS = {
    "day": "Day", "week": "Week", "month": "Month", "border_point": "Border point",
    "nationality": "Nationality", "direction": "Direction", "decision": "Decision",
    "reason": "Reason", "visa_type": "Visa type", "age_band": "Age band",
    "protection": "Protection",
}  # fmt: skip


def _form(
    first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "",
    group_by: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> tuple[str, str, list[str]]:
    return first.strip(), last.strip(), [k for k in group_by or [] if k]


Form = Annotated[tuple[str, str, list[str]], Depends(_form)]


@router.get("/statistics", name="console.statistics")
def statistics_page(request: Request, staff: Reader, policy: PolicyDep, form: Form) -> HTMLResponse:
    """An empty form (the last 30 days by month and border point filled in) until the
    form is sent; a refused field is marked and nothing is counted."""
    first, last, keys = form
    errors: dict[str, str] = {}
    table = None
    if not request.query_params:
        today = date.today()
        first, last = (today - timedelta(days=30)).isoformat(), today.isoformat()
        keys = ["month", "border_point"]
    else:
        try:
            query = statistics.parse_query(first, last, ",".join(keys))
        except InvalidRequest as refused:
            errors[str(refused.extra.get("field", ""))] = refused.detail
        else:
            table = statistics.table(staff.rt, policy, staff.principal(), query)
    return web.page(
        request,
        "statistics.html",
        staff,
        status_code=422 if errors else 200,
        title="Statistics",
        k=policy.statistics.min_cell,
        first=first,
        last=last,
        chosen=keys,
        labels=LABELS,
        table=table,
        errors=errors,
        csv_query=request.url.query,
    )


@router.get("/statistics.csv", name="console.statistics.csv")
def statistics_csv(staff: Reader, policy: PolicyDep, form: Form) -> Response:
    first, last, keys = form
    query = statistics.parse_query(first, last, ",".join(keys))
    table = statistics.table(staff.rt, policy, staff.principal(), query)
    return Response(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="statistics.csv"'},
    )
