import json
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visa import stay
from visa.stay import Stay

D = date.fromisoformat


def brute_days_used(stays: list[Stay], on: date, window_days: int = 180) -> int:
    """The rule read literally: the set of days present inside [on - window + 1, on]."""
    first = on.toordinal() - window_days + 1
    present: set[int] = set()
    for entry, exit_ in stays:
        last = on if exit_ is None else exit_
        present.update(range(max(entry.toordinal(), first), min(last, on).toordinal() + 1))
    return len(present)


def brute_latest_exit(stays: list[Stay], entry: date, max_stay_days: int, window_days: int) -> date:
    """Tries each exit day in turn until one breaks a window."""
    if max_stay_days == window_days:
        return date.max
    day = entry
    while brute_days_used([*stays, (entry, day)], day, window_days) <= max_stay_days:
        day += timedelta(days=1)
        assert day <= entry + timedelta(days=2 * window_days), "the rule never ended the stay"
    return day - timedelta(days=1)


class TestDaysUsed:
    @pytest.mark.parametrize(
        ("stays", "on", "used"),
        [
            pytest.param([], D("2026-05-01"), 0, id="no stays"),
            pytest.param([(D("2026-01-01"), D("2026-03-31"))], D("2026-03-31"), 90, id="90 days"),
            pytest.param([(D("2026-01-01"), D("2026-04-01"))], D("2026-04-01"), 91, id="91 days"),
            pytest.param([(D("2026-02-10"), D("2026-02-10"))], D("2026-02-20"), 1, id="same day"),
            pytest.param(
                [(D("2026-01-01"), D("2026-01-10")), (D("2026-01-05"), D("2026-01-15"))],
                D("2026-01-31"),
                15,
                id="overlap counted once",
            ),
            pytest.param(
                [(D("2026-01-01"), D("2026-01-10")), (D("2026-01-01"), D("2026-01-10"))],
                D("2026-01-31"),
                10,
                id="duplicate stay",
            ),
            pytest.param(
                [(D("2026-01-01"), D("2026-01-31")), (D("2026-01-10"), D("2026-01-12"))],
                D("2026-02-15"),
                31,
                id="stay inside another",
            ),
            pytest.param(
                [(D("2026-01-01"), D("2026-01-10")), (D("2026-01-11"), D("2026-01-20"))],
                D("2026-01-31"),
                20,
                id="back to back",
            ),
            pytest.param([(D("2026-03-01"), None)], D("2026-03-10"), 10, id="open stay runs to on"),
            pytest.param(
                [(D("2025-12-22"), D("2026-01-10"))], D("2026-06-29"), 10, id="clipped at start"
            ),
            pytest.param(
                [(D("2025-06-01"), D("2025-08-01"))], D("2026-06-29"), 0, id="before window"
            ),
            pytest.param([(D("2026-05-01"), D("2026-05-10"))], D("2026-04-30"), 0, id="after on"),
            pytest.param(
                [(D("2026-04-25"), D("2026-05-10"))], D("2026-04-30"), 6, id="ends after on"
            ),
            pytest.param([(D("2026-05-01"), None)], D("2026-04-30"), 0, id="open after on"),
            pytest.param([(D("2024-02-01"), D("2024-03-01"))], D("2024-03-01"), 30, id="leap Feb"),
            pytest.param([(D("2025-02-01"), D("2025-03-01"))], D("2025-03-01"), 29, id="plain Feb"),
            pytest.param(
                # The window ending 2024-06-28 starts on 2024-01-01 because of 29 February.
                [(D("2023-12-31"), D("2024-01-01"))],
                D("2024-06-28"),
                1,
                id="window across a leap day",
            ),
        ],
    )
    def test_examples(self, stays: list[Stay], on: date, used: int) -> None:
        assert stay.days_used(stays, on) == used
        assert stay.days_remaining(stays, on) == max(0, 90 - used)

    @pytest.mark.parametrize(
        ("on", "used", "remaining"),
        [
            (D("2026-01-10"), 5, 0),
            (D("2026-01-11"), 4, 1),
            (D("2026-01-17"), 2, 3),
            (D("2026-01-18"), 1, 4),
        ],
    )
    def test_custom_allowance_and_window(self, on: date, used: int, remaining: int) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-01-03")), (D("2026-01-08"), D("2026-01-09"))]
        assert stay.days_used(stays, on, max_stay_days=5, window_days=10) == used
        assert stay.days_remaining(stays, on, max_stay_days=5, window_days=10) == remaining

    def test_a_full_allowance_leaves_nothing(self) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-03-31"))]
        assert stay.days_remaining(stays, D("2026-03-31")) == 0

    def test_an_overstay_leaves_zero_not_a_negative(self) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-05-31"))]
        assert stay.days_used(stays, D("2026-05-31")) == 151
        assert stay.days_remaining(stays, D("2026-05-31")) == 0

    def test_the_input_list_is_left_alone(self) -> None:
        stays: list[Stay] = [(D("2026-03-01"), None), (D("2026-01-01"), D("2026-01-05"))]
        before = list(stays)
        stay.days_used(stays, D("2026-03-05"))
        assert stays == before


class TestLatestExit:
    @pytest.mark.parametrize(
        ("stays", "entry", "latest"),
        [
            pytest.param([], D("2026-01-01"), D("2026-03-31"), id="fresh traveller"),
            pytest.param([], D("2024-02-01"), D("2024-04-30"), id="fresh, leap February"),
            pytest.param([], D("2025-02-01"), D("2025-05-01"), id="fresh, plain February"),
            pytest.param(
                [(D("2026-01-01"), D("2026-01-30"))],
                D("2026-03-01"),
                D("2026-04-29"),
                id="30 days used before",
            ),
            pytest.param(
                # 80 days used, 10 left on entry day; as the new stay goes on, the January
                # days leave the window one by one, so it can last 90 days.
                [(D("2026-01-01"), D("2026-03-21"))],
                D("2026-06-25"),
                D("2026-09-22"),
                id="earlier days fall out during the stay",
            ),
            pytest.param(
                [(D("2026-01-01"), D("2026-03-31"))],
                D("2026-06-30"),
                D("2026-09-27"),
                id="one day left on entry, 90-day stay",
            ),
            pytest.param(
                [(D("2026-01-01"), D("2026-03-31"))],
                D("2026-06-29"),
                D("2026-06-28"),
                id="no day left: entry minus one",
            ),
            pytest.param(
                [(D("2026-01-01"), D("2026-01-10")), (D("2026-01-05"), D("2026-01-20"))],
                D("2026-02-01"),
                D("2026-04-11"),
                id="overlapping earlier stays",
            ),
            pytest.param(
                [(D("2026-01-01"), None)],
                D("2026-01-01"),
                D("2026-03-31"),
                id="the open stay is this one",
            ),
            pytest.param(
                # Still in the country since 1 January: those days count too.
                [(D("2026-01-01"), None)],
                D("2026-02-01"),
                D("2026-03-31"),
                id="open stay entered earlier",
            ),
            pytest.param(
                [(D("2027-01-01"), D("2027-01-05"))],
                D("2026-01-01"),
                D("2026-03-31"),
                id="later stays ignored",
            ),
        ],
    )
    def test_examples(self, stays: list[Stay], entry: date, latest: date) -> None:
        assert stay.latest_exit(stays, entry) == latest

    def test_the_latest_exit_is_allowed_and_the_next_day_is_not(self) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-03-21"))]
        entry = D("2026-06-25")
        latest = stay.latest_exit(stays, entry)
        assert stay.days_remaining(stays, entry) == 10
        assert stay.days_used([*stays, (entry, latest)], latest) == 90
        after = latest + timedelta(days=1)
        assert stay.days_used([*stays, (entry, after)], after) == 91

    def test_custom_allowance(self) -> None:
        assert stay.latest_exit([], D("2026-01-01"), max_stay_days=5, window_days=10) == D(
            "2026-01-05"
        )

    def test_an_allowance_as_long_as_the_window_never_ends_a_stay(self) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-01-20"))]
        assert stay.latest_exit(stays, D("2026-01-25"), max_stay_days=30, window_days=30) == (
            date.max
        )

    def test_a_stay_can_be_refused_on_entry_day(self) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-01-05"))]
        latest = stay.latest_exit(stays, D("2026-01-06"), max_stay_days=5, window_days=10)
        assert latest == D("2026-01-05")


class TestTrace:
    def test_each_stay_explains_its_share(self) -> None:
        stays: list[Stay] = [
            (D("2026-05-01"), D("2026-05-03")),
            (D("2025-12-22"), D("2026-01-10")),
            (D("2026-01-05"), D("2026-01-14")),
            (D("2025-03-01"), D("2025-03-05")),
            (D("2026-07-01"), None),
        ]
        result = stay.trace(stays, D("2026-06-29"))
        assert result.window_start == D("2026-01-01")
        assert (result.days_used, result.days_remaining, result.overstay) == (17, 73, False)
        shares = [
            (s.entry, s.counted_from, s.counted_to, s.days_in_window, s.days_counted)
            for s in result.stays
        ]
        assert shares == [
            (D("2025-03-01"), None, None, 0, 0),
            (D("2025-12-22"), D("2026-01-01"), D("2026-01-10"), 10, 10),
            (D("2026-01-05"), D("2026-01-05"), D("2026-01-14"), 10, 4),
            (D("2026-05-01"), D("2026-05-01"), D("2026-05-03"), 3, 3),
            (D("2026-07-01"), None, None, 0, 0),
        ]

    def test_an_overstay_is_flagged(self) -> None:
        result = stay.trace([(D("2026-01-01"), D("2026-04-01"))], D("2026-04-01"))
        assert (result.days_used, result.days_remaining, result.overstay) == (91, 0, True)

    def test_an_open_stay_is_clipped_at_on(self) -> None:
        (share,) = stay.trace([(D("2026-03-01"), None)], D("2026-03-10")).stays
        assert (share.exit, share.counted_to, share.days_counted) == (None, D("2026-03-10"), 10)

    def test_as_dict_is_plain_json(self) -> None:
        result = stay.trace(
            [(D("2026-03-01"), None)], D("2026-03-10"), max_stay_days=30, window_days=60
        )
        assert json.loads(json.dumps(result.as_dict())) == {
            "on": "2026-03-10",
            "window_start": "2026-01-10",
            "max_stay_days": 30,
            "window_days": 60,
            "days_used": 10,
            "days_remaining": 20,
            "overstay": False,
            "stays": [
                {
                    "entry": "2026-03-01",
                    "exit": None,
                    "counted_from": "2026-03-01",
                    "counted_to": "2026-03-10",
                    "days_in_window": 10,
                    "days_counted": 10,
                }
            ],
        }


class TestValidation:
    def test_an_exit_before_its_entry_is_refused(self) -> None:
        stays: list[Stay] = [(D("2026-01-01"), D("2026-01-02")), (D("2026-02-10"), D("2026-02-09"))]
        message = r"stay 1: exit 2026-02-09 is before entry 2026-02-10"
        with pytest.raises(ValueError, match=message):
            stay.days_used(stays, D("2026-03-01"))
        with pytest.raises(ValueError, match=message):
            stay.days_remaining(stays, D("2026-03-01"))
        with pytest.raises(ValueError, match=message):
            stay.latest_exit(stays, D("2026-03-01"))
        with pytest.raises(ValueError, match=message):
            stay.trace(stays, D("2026-03-01"))

    @pytest.mark.parametrize(
        ("max_stay_days", "window_days", "message"),
        [
            (0, 180, "must be positive"),
            (90, 0, "must be positive"),
            (-1, 180, "must be positive"),
            (181, 180, r"max_stay_days \(181\) must not exceed window_days \(180\)"),
        ],
    )
    def test_limits_are_checked(self, max_stay_days: int, window_days: int, message: str) -> None:
        limits = {"max_stay_days": max_stay_days, "window_days": window_days}
        with pytest.raises(ValueError, match=message):
            stay.days_used([], D("2026-01-01"), **limits)
        with pytest.raises(ValueError, match=message):
            stay.days_remaining([], D("2026-01-01"), **limits)
        with pytest.raises(ValueError, match=message):
            stay.latest_exit([], D("2026-01-01"), **limits)
        with pytest.raises(ValueError, match=message):
            stay.trace([], D("2026-01-01"), **limits)

    def test_datetimes_are_refused(self) -> None:
        with pytest.raises(TypeError, match="calendar date"):
            stay.days_used([], datetime(2026, 1, 1, 12))
        with pytest.raises(TypeError, match="stay 0 exit"):
            stay.days_used([(D("2026-01-01"), datetime(2026, 1, 2))], D("2026-01-03"))


BASE = D("2023-06-01")  # two years from here take in 29 February 2024


@st.composite
def stay_lists(draw: st.DrawFn, span_days: int = 730, longest: int = 120) -> list[Stay]:
    stays: list[Stay] = []
    for _ in range(draw(st.integers(0, 5))):
        entry = BASE + timedelta(days=draw(st.integers(0, span_days)))
        length = draw(st.none() | st.integers(0, longest))
        stays.append((entry, None if length is None else entry + timedelta(days=length)))
    return stays


@st.composite
def limits(draw: st.DrawFn) -> tuple[int, int]:
    if draw(st.booleans()):
        return 90, 180
    window_days = draw(st.integers(1, 200))
    return draw(st.integers(1, window_days)), window_days


days_in_span = st.integers(0, 800).map(lambda n: BASE + timedelta(days=n))


class TestAgainstBruteForce:
    @settings(max_examples=200, deadline=None)
    @given(stays=stay_lists(), on=days_in_span, allowance=limits())
    def test_days_used_and_remaining(
        self, stays: list[Stay], on: date, allowance: tuple[int, int]
    ) -> None:
        max_stay_days, window_days = allowance
        expected = brute_days_used(stays, on, window_days)
        kw = {"max_stay_days": max_stay_days, "window_days": window_days}
        assert stay.days_used(stays, on, **kw) == expected
        assert stay.days_remaining(stays, on, **kw) == max(0, max_stay_days - expected)

    @settings(max_examples=200, deadline=None)
    @given(stays=stay_lists(), on=days_in_span, allowance=limits())
    def test_trace_agrees_with_days_used(
        self, stays: list[Stay], on: date, allowance: tuple[int, int]
    ) -> None:
        max_stay_days, window_days = allowance
        kw = {"max_stay_days": max_stay_days, "window_days": window_days}
        result = stay.trace(stays, on, **kw)
        used = stay.days_used(stays, on, **kw)
        assert result.days_used == used == sum(s.days_counted for s in result.stays)
        assert result.days_remaining == stay.days_remaining(stays, on, **kw)
        assert result.overstay == (used > max_stay_days)
        assert result.window_start == on - timedelta(days=window_days - 1)
        assert [(s.entry, s.exit) for s in result.stays] == sorted(
            stays, key=lambda s: (s[0], s[1] or date.max)
        )
        for share in result.stays:
            assert 0 <= share.days_counted <= share.days_in_window <= window_days
            if share.counted_from is None or share.counted_to is None:
                assert share.days_in_window == 0
                continue
            assert result.window_start <= share.counted_from <= share.counted_to <= on
            assert share.days_in_window == (share.counted_to - share.counted_from).days + 1

    @settings(max_examples=200, deadline=None)
    @given(stays=stay_lists(), entry=days_in_span, allowance=limits())
    def test_latest_exit(self, stays: list[Stay], entry: date, allowance: tuple[int, int]) -> None:
        max_stay_days, window_days = allowance
        expected = brute_latest_exit(stays, entry, max_stay_days, window_days)
        got = stay.latest_exit(stays, entry, max_stay_days=max_stay_days, window_days=window_days)
        assert got == expected
