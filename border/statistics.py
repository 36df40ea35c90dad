"""Migration statistics (DESIGN §12): counts of crossings kept on write, published grouped
by any of the keys below over a date range, with small cells suppressed.

What one crossing contributes: one count under (its host day, border point, nationality
from the MRZ, direction, decision, visa type, age band, protection), and one count under
each of its distinct reason codes (``none`` when it has none), so that grouping by
``reason`` counts crossings per reason code and grouping by anything else counts each
crossing once.

``decision`` is the final decision: ``admit`` or ``refer`` as the kiosk decided, and once
an officer resolves a referral, its outcome (``admit``, ``refuse`` or ``protection``): the
referral's counts move from ``refer`` to the outcome, with the resolution's protection
flags (``protection``, ``+``-joined, ``none`` otherwise). A referral still open counts as
``refer``. Every other key stays as the kiosk's crossing had it.

Suppression: a cell counting fewer than ``k`` (policy ``[statistics] min_cell``) is
published with ``count: null``. No totals are published. A grouping in which exactly one
cell is suppressed could give it away by subtraction from another query's total (a
``group_by=month`` query gives each month's total; a ``group_by=month,border_point`` query
then leaves one unknown per month), so whenever exactly one cell of a group is suppressed,
the smallest other cell of the group is suppressed too, repeated until no group has a
single suppressed cell. The groups: all the cells together, and for each key of
``group_by``, the cells sharing every other key (each row and each column of a two-key
table)."""

import csv
import io
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final
from uuid import UUID

from audit import service as audit_service
from border import statistics_store as store
from border.store import CrossingRow
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import InvalidRequest
from core.runtime import Runtime
from visa import service as visa_service
from visa.mrz import MRZ
from visa.policy import Policy

GROUP_KEYS: Final = (
    "day", "week", "month", "border_point", "nationality", "direction", "decision", "reason",
    "visa_type", "age_band", "protection",
)  # fmt: skip
PERIODS: Final = ("day", "week", "month")
MAX_YEARS: Final = 5
UNKNOWN: Final = "unknown"
NONE: Final = "none"

# Lower bounds of the age bands; the last is open.
_BANDS: Final = (0, 14, 18, 25, 35, 45, 55, 65)
AGE_BANDS: Final = (*(f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(_BANDS)), "65+")


def age_band(birth_date: date | None, on: date) -> str:
    """The band of the age in whole years on ``on``: 0-13, 14-17, 18-24, 25-34, 35-44,
    45-54, 55-64, 65+; ``unknown`` without a birth date (or one after ``on``)."""
    if birth_date is None or birth_date > on:
        return UNKNOWN
    age = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    band = AGE_BANDS[-1]
    for i, upper in enumerate(_BANDS[1:]):
        if age < upper:
            band = AGE_BANDS[i]
            break
    return band


def _protection(flags: Sequence[str] | None) -> str:
    return "+".join(sorted(set(flags))) if flags else NONE


def _counts(
    row: CrossingRow, pending: store.Pending, *, decision: str | None = None, protection: str = NONE
) -> list[store.Count]:
    """What ``row`` contributes: one count of the crossing, one per distinct reason code."""
    base = store.Count(
        day=row.day, border_point=row.border_point, nationality=pending.nationality,
        direction=row.direction, decision=decision or row.decision,
        visa_type=pending.visa_type, age_band=pending.age_band, protection=protection,
    )  # fmt: skip
    codes = sorted({r["code"] for r in row.reasons}) or [NONE]
    return [base, *(replace(base, reason=code) for code in codes)]


def _visa_type(conn: Conn, person_id: UUID | None, visa_id: UUID | None) -> str:
    if visa_id is None or person_id is None:
        return NONE
    for visa in visa_service.visa_facts(conn, person_id):
        if visa.visa_id == visa_id:
            return str(visa.visa_type)
    return UNKNOWN


def count_crossing(conn: Conn, row: CrossingRow, document: MRZ | None) -> None:
    """Count a crossing just recorded, in its own transaction. A referral also keeps what
    its resolution will need to move its counts."""
    pending = store.Pending(
        nationality=(document.nationality.strip("<") or UNKNOWN) if document else UNKNOWN,
        visa_type=_visa_type(conn, row.person_id, row.visa_id),
        age_band=age_band(document.birth_date if document else None, row.day),
    )
    store.add(conn, _counts(row, pending))
    if row.decision == "refer":
        store.keep_pending(conn, row.id, pending)


def count_resolution(
    conn: Conn, row: CrossingRow, outcome: str, protection: Sequence[str] | None
) -> None:
    """A referral resolved: its counts move from ``refer`` to ``outcome`` with the
    resolution's protection flags. A crossing recorded before the aggregates were kept was
    never counted and stays so."""
    pending = store.take_pending(conn, row.id)
    if pending is None:
        return
    store.subtract(conn, _counts(row, pending, decision="refer"))
    store.add(conn, _counts(row, pending, decision=outcome, protection=_protection(protection)))


@dataclass(frozen=True)
class Query:
    first: date
    last: date
    group_by: tuple[str, ...]


def _date(text: str | None, field: str) -> date:
    if text is None or not text.strip():
        raise InvalidRequest(f"`{field}` is required: a date YYYY-MM-DD", field=field)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"`{field}` must be a date YYYY-MM-DD", field=field) from None


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def parse_query(first: str | None, last: str | None, group_by: str | None) -> Query:
    """The query as given, checked: both dates, ``to`` not before ``from``, at most five
    years, and ``group_by`` one or more distinct keys of :data:`GROUP_KEYS`."""
    start = _date(first, "from")
    end = _date(last, "to")
    if end < start:
        raise InvalidRequest("`to` lies before `from`", field="to")
    if end >= _years_after(start, MAX_YEARS):
        raise InvalidRequest(f"the range may span at most {MAX_YEARS} years", field="to")
    keys = tuple(k.strip() for k in (group_by or "").split(",") if k.strip())
    if not keys:
        raise InvalidRequest(
            f"`group_by` names one or more of {', '.join(GROUP_KEYS)}", field="group_by"
        )
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        # The caller's text is not echoed: the position of the key tells which it is.
        position = keys.index(unknown[0]) + 1
        raise InvalidRequest(
            f"group_by key {position} is not one of {', '.join(GROUP_KEYS)}",
            field="group_by",
        )
    if len(set(keys)) != len(keys):
        raise InvalidRequest("a group_by key is named twice", field="group_by")
    return Query(start, end, keys)


def _month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _whole_months(query: Query) -> tuple[date, date]:
    """The whole months of the range (start inclusive, end exclusive) the monthly table
    answers; empty (both the day after ``last``) when day or week is asked, or there is none."""
    after = query.last + timedelta(days=1)
    if {"day", "week"} & set(query.group_by):
        return after, after
    start = query.first if query.first.day == 1 else _month_after(query.first)
    end = after.replace(day=1)
    if start >= end:
        return after, after
    return start, end


@dataclass(frozen=True)
class Cell:
    keys: tuple[str, ...]
    count: int | None

    @property
    def suppressed(self) -> bool:
        return self.count is None


@dataclass(frozen=True)
class Table:
    k: int
    first: date
    last: date
    group_by: tuple[str, ...]
    cells: list[Cell]

    @property
    def suppressed(self) -> int:
        return sum(c.suppressed for c in self.cells)

    def as_dict(self) -> dict[str, object]:
        return {
            "k": self.k,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "group_by": list(self.group_by),
            "cells": [
                {
                    **dict(zip(self.group_by, c.keys, strict=True)),
                    "count": c.count,
                    "suppressed": c.suppressed,
                }
                for c in self.cells
            ],
            "suppressed": self.suppressed,
        }

    def csv(self) -> str:
        """The grouping keys in ``group_by`` order, then ``count`` (empty when suppressed)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*self.group_by, "count"])
        for c in self.cells:
            writer.writerow([*(_cell(v) for v in c.keys), "" if c.count is None else c.count])
        return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    return "'" + text if text.startswith(("=", "+", "-", "@")) else text


def suppress(counted: Sequence[tuple[tuple[str, ...], int]], k: int) -> list[bool]:
    """Which cells to suppress: those under ``k``, then, until none is left alone, the
    smallest other cell of any group holding exactly one suppressed cell (the groups are
    described in the module's docstring). Ties go to the first cell in key order."""
    hidden = [count < k for _, count in counted]
    width = len(counted[0][0]) if counted else 0
    groups: list[list[int]] = [list(range(len(counted)))]
    for position in range(width):
        by_rest: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, (keys, _) in enumerate(counted):
            by_rest[keys[:position] + keys[position + 1 :]].append(i)
        groups.extend(g for g in by_rest.values() if len(g) > 1)
    changed = True
    while changed:
        changed = False
        for group in groups:
            alone = [i for i in group if hidden[i]]
            shown = [i for i in group if not hidden[i]]
            if len(alone) == 1 and shown:
                smallest = min(shown, key=lambda i: (counted[i][1], counted[i][0]))
                hidden[smallest] = True
                changed = True
    return hidden


def table(rt: Runtime, policy: Policy, principal: Principal, query: Query) -> Table:
    """The counts of the query's range grouped by its keys, small cells suppressed; the
    read is audited with the query (no personal data is in it or in the answer)."""
    months_from, months_to = _whole_months(query)
    k = policy.statistics.min_cell
    with transaction(rt.pool) as conn:
        counted = store.cells(
            conn, group_by=query.group_by, first=query.first, last=query.last,
            months_from=months_from, months_to=months_to,
        )  # fmt: skip
        hidden = suppress(counted, k)
        result = Table(
            k=k,
            first=query.first,
            last=query.last,
            group_by=query.group_by,
            cells=[
                Cell(keys, None if h else count)
                for (keys, count), h in zip(counted, hidden, strict=True)
            ],
        )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "statistics.read",
            detail={
                "from": query.first.isoformat(),
                "to": query.last.isoformat(),
                "group_by": list(query.group_by),
                "cells": len(result.cells),
                "suppressed": result.suppressed,
            },
        )
    return result
