"""The rolling short-stay rule (Schengen style), pure: at most ``max_stay_days`` days of
presence in any window of ``window_days`` consecutive calendar days.

All figures are whole calendar days in the host time zone (DESIGN §6). A stay is an
``(entry, exit)`` pair of dates; both the entry and the exit day count, so a same-day trip
is one day. ``exit`` is None while the traveller is still in the country: such an open stay
runs to the day being evaluated. Days that two stays share count once.

The window ending on day ``on`` is ``[on - window_days + 1, on]``, both ends included; days
after ``on`` never count, so later stays are ignored. Everything is date arithmetic, so leap
days are ordinary days and no year length is assumed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

MAX_STAY_DAYS = 90
WINDOW_DAYS = 180

Stay = tuple[date, date | None]

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class StayCount:
    """What one stay contributes to the window, in days.

    ``counted_from``/``counted_to`` are the stay clipped to the window (None when no day of
    it falls inside). ``days_in_window`` is the length of that clipped span; ``days_counted``
    leaves out days already counted for an earlier stay of the trace, so the
    ``days_counted`` of a trace add up to its ``days_used``.
    """

    entry: date
    exit: date | None
    counted_from: date | None
    counted_to: date | None
    days_in_window: int
    days_counted: int

    def as_dict(self) -> dict[str, str | int | None]:
        """Plain JSON values (ISO dates), for decision records and audit details."""
        return {
            "entry": self.entry.isoformat(),
            "exit": _iso(self.exit),
            "counted_from": _iso(self.counted_from),
            "counted_to": _iso(self.counted_to),
            "days_in_window": self.days_in_window,
            "days_counted": self.days_counted,
        }


@dataclass(frozen=True)
class StayTrace:
    """Why ``days_used`` is what it is on ``on``: the window, the figures and each stay's share,
    stays in entry order. Enough for a traveller or an auditor to redo the count by hand."""

    on: date
    window_start: date
    max_stay_days: int
    window_days: int
    days_used: int
    days_remaining: int
    overstay: bool
    stays: tuple[StayCount, ...]

    def as_dict(self) -> dict[str, object]:
        """Plain JSON values (ISO dates), for decision records and audit details."""
        return {
            "on": self.on.isoformat(),
            "window_start": self.window_start.isoformat(),
            "max_stay_days": self.max_stay_days,
            "window_days": self.window_days,
            "days_used": self.days_used,
            "days_remaining": self.days_remaining,
            "overstay": self.overstay,
            "stays": [s.as_dict() for s in self.stays],
        }


def days_used(
    stays: Sequence[Stay],
    on: date,
    *,
    max_stay_days: int = MAX_STAY_DAYS,
    window_days: int = WINDOW_DAYS,
) -> int:
    """Days of presence in the ``window_days``-day window ending on ``on`` (inclusive)."""
    _check_limits(max_stay_days, window_days)
    _check_stays(stays)
    _check_day(on, "on")
    return sum(c.days_counted for c in _counts(stays, on, window_days))


def days_remaining(
    stays: Sequence[Stay],
    on: date,
    *,
    max_stay_days: int = MAX_STAY_DAYS,
    window_days: int = WINDOW_DAYS,
) -> int:
    """Days of allowance left on ``on``: ``max(0, max_stay_days - days_used)``, never negative."""
    used = days_used(stays, on, max_stay_days=max_stay_days, window_days=window_days)
    return max(0, max_stay_days - used)


def trace(
    stays: Sequence[Stay],
    on: date,
    *,
    max_stay_days: int = MAX_STAY_DAYS,
    window_days: int = WINDOW_DAYS,
) -> StayTrace:
    """``days_used`` on ``on`` with its working: the window and every stay's share of it."""
    _check_limits(max_stay_days, window_days)
    _check_stays(stays)
    _check_day(on, "on")
    counts = _counts(stays, on, window_days)
    used = sum(c.days_counted for c in counts)
    return StayTrace(
        on=on,
        window_start=on - timedelta(days=window_days - 1),
        max_stay_days=max_stay_days,
        window_days=window_days,
        days_used=used,
        days_remaining=max(0, max_stay_days - used),
        overstay=used > max_stay_days,
        stays=tuple(counts),
    )


def latest_exit(
    stays: Sequence[Stay],
    entry: date,
    *,
    max_stay_days: int = MAX_STAY_DAYS,
    window_days: int = WINDOW_DAYS,
) -> date:
    """The last day of a stay starting on ``entry`` that breaks no window.

    That is the largest day X >= ``entry`` such that, for every day d in [entry, X],
    ``days_used(stays + [(entry, d)], d) <= max_stay_days``. Because earlier days leave the
    window as the stay goes on, X can lie further out than ``entry + days_remaining``.

    - An open stay in ``stays`` runs to each day d checked, exactly as ``days_used`` treats it:
      the current stay (open, entered on ``entry``) changes nothing, and an open stay entered
      earlier means the traveller never left, so its days before ``entry`` count as well.
    - Returns ``entry - 1 day`` when not even the entry day is allowed, so callers refuse
      with ``latest_exit(...) < entry`` and never have to catch anything.
    - Returns ``date.max`` when ``max_stay_days == window_days``: no window can then hold
      more days than allowed, so the rule never ends a stay.

    Runs in O(len(stays) + window_days).
    """
    _check_limits(max_stay_days, window_days)
    _check_stays(stays)
    _check_day(entry, "entry")
    if max_stay_days >= window_days:
        return date.max
    # While the stay lasts, every day from ``entry`` on is a day of presence, so the window
    # ending on d >= entry counts the days of [entry, d] plus the marked days before entry
    # that are still inside it. Mark the ``window_days`` days [entry - window_days + 1, entry]
    # with a difference array; the count for d + 1 then gains day d + 1 and loses the day
    # that slides out, one step per day.
    first = entry - timedelta(days=window_days - 1)
    diff = [0] * (window_days + 1)

    def mark(start: date, end: date) -> None:
        lo, hi = max(start, first), min(end, entry)
        if lo <= hi:
            diff[(lo - first).days] += 1
            diff[(hi - first).days + 1] -= 1

    for stay_entry, stay_exit in stays:
        if stay_exit is None:
            # Runs to every day checked, all of which are >= entry.
            mark(stay_entry, entry)
        else:
            mark(stay_entry, stay_exit)
    mark(entry, entry)

    present = []
    depth = 0
    for step in diff[:-1]:
        depth += step
        present.append(1 if depth > 0 else 0)

    used = sum(present)
    for k in range(window_days):
        # ``used`` is the count for the window ending on entry + k.
        if used > max_stay_days:
            return entry + timedelta(days=k - 1)
        used += 1 - present[k]
    # The window ending on entry + window_days - 1 is [entry, entry + window_days - 1], every
    # day of it present, and window_days > max_stay_days: the loop has returned by then.
    raise AssertionError("unreachable: a full window always exceeds the allowance")


def _counts(stays: Sequence[Stay], on: date, window_days: int) -> list[StayCount]:
    """Each stay clipped to the window ending on ``on``, in entry order, overlaps counted once.

    Sorted by entry, the days already counted that a later stay can meet are exactly those up
    to the furthest end seen so far, so one running mark removes every overlap.
    """
    window_start = on - timedelta(days=window_days - 1)
    counts: list[StayCount] = []
    counted_to: date | None = None
    for stay_entry, stay_exit in sorted(stays, key=_entry_order):
        end = on if stay_exit is None else min(stay_exit, on)
        start = max(stay_entry, window_start)
        if start > end:
            counts.append(StayCount(stay_entry, stay_exit, None, None, 0, 0))
            continue
        fresh_from = start if counted_to is None else max(start, counted_to + _ONE_DAY)
        fresh = max(0, (end - fresh_from).days + 1)
        counts.append(
            StayCount(stay_entry, stay_exit, start, end, (end - start).days + 1, fresh),
        )
        counted_to = end if counted_to is None else max(counted_to, end)
    return counts


def _entry_order(stay: Stay) -> tuple[date, date]:
    # An open stay sorts after closed stays of the same entry day; it lasts at least as long.
    entry, exit_ = stay
    return entry, date.max if exit_ is None else exit_


def _check_limits(max_stay_days: int, window_days: int) -> None:
    if max_stay_days < 1 or window_days < 1:
        raise ValueError(
            f"max_stay_days ({max_stay_days}) and window_days ({window_days}) must be positive"
        )
    if max_stay_days > window_days:
        raise ValueError(
            f"max_stay_days ({max_stay_days}) must not exceed window_days ({window_days})"
        )


def _check_stays(stays: Sequence[Stay]) -> None:
    for index, (stay_entry, stay_exit) in enumerate(stays):
        _check_day(stay_entry, f"stay {index} entry")
        if stay_exit is None:
            continue
        _check_day(stay_exit, f"stay {index} exit")
        if stay_exit < stay_entry:
            raise ValueError(
                f"stay {index}: exit {stay_exit.isoformat()} is before entry "
                f"{stay_entry.isoformat()}"
            )


def _check_day(day: date, name: str) -> None:
    # datetime is a date subclass: one would slip through and count clock times, not days.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{name} must be a calendar date in the host time zone, not {day!r}")


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
