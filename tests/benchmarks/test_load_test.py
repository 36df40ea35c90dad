"""A few seconds of the loopback load test: it runs, stops by itself, and every request
is answered without a server error. No timing is asserted."""

from benchmarks import load_test


def test_a_short_bounded_load_is_served() -> None:
    result = load_test.run(rate=2.0, seconds=3.0, workers=4)
    rows = {row["kind"]: row for row in result["rows"]}  # type: ignore[attr-defined]
    assert rows["all"]["sent"] == 6
    assert rows["all"]["ok"] == 6, rows
    assert rows["all"]["errors"] == "0"
