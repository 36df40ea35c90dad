from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from audit import chain
from core import crypto

KEY = crypto.new_key()


def build(n: int, key: bytes = KEY) -> list[chain.StoredEvent]:
    events, prev = [], chain.GENESIS
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    for seq in range(1, n + 1):
        event = chain.Event(
            seq=seq,
            at=start + timedelta(seconds=seq),
            actor="c0ffee",
            role="officer",
            action="persons.read",
            resource_type="person",
            resource_id=f"p{seq}",
            purpose="case 42",
            outcome="ok",
            detail={"n": seq, "codes": ["A", "B"]},
        )
        hash_ = chain.link(key, prev, event)
        events.append(chain.StoredEvent(**vars(event), prev_hash=prev, hash=hash_))
        prev = hash_
    return events


class TestVerify:
    def test_an_intact_chain_holds(self) -> None:
        verdict = chain.verify(KEY, build(10))
        assert (verdict.ok, verdict.events, verdict.first_bad_seq) == (True, 10, None)

    def test_an_empty_chain_holds(self) -> None:
        assert chain.verify(KEY, []).ok

    def test_an_altered_field_is_found_at_its_seq(self) -> None:
        events = build(10)
        events[6] = replace(events[6], outcome="denied")
        verdict = chain.verify(KEY, events)
        assert (verdict.ok, verdict.first_bad_seq, verdict.reason) == (False, 7, "altered")
        assert verdict.events == 6

    def test_an_altered_detail_is_found(self) -> None:
        events = build(5)
        events[2] = replace(events[2], detail={"n": 3, "codes": ["B", "A"]})
        assert chain.verify(KEY, events).first_bad_seq == 3

    def test_a_removed_event_is_found_at_its_seq(self) -> None:
        events = build(10)
        del events[3]
        verdict = chain.verify(KEY, events)
        assert (verdict.first_bad_seq, verdict.reason) == (4, "missing")

    def test_swapped_events_are_found(self) -> None:
        events = build(10)
        a, b = events[4], events[7]
        events[4] = replace(b, seq=5)
        events[7] = replace(a, seq=8)
        verdict = chain.verify(KEY, events)
        assert (verdict.first_bad_seq, verdict.reason) == (5, "broken_link")

    def test_a_forged_chain_without_the_key_fails(self) -> None:
        verdict = chain.verify(KEY, build(3, key=crypto.new_key()))
        assert (verdict.first_bad_seq, verdict.reason) == (1, "altered")

    def test_canonical_form_ignores_the_time_zone_of_the_same_instant(self) -> None:
        event = build(1)[0]
        moved = replace(event, at=event.at.astimezone(timezone(timedelta(hours=2))))
        assert chain.canonical(event) == chain.canonical(moved)


class TestRequestIds:
    def test_an_event_without_one_hashes_as_before_request_ids_were_kept(self) -> None:
        event = build(1)[0]
        assert event.request_id is None
        assert b"request_id" not in chain.canonical(event)
        # The canonical form of the first release, written out: old chains still verify.
        assert chain.canonical(event) == (
            b'{"action":"persons.read","actor":"c0ffee","at":"2026-11-23T08:00:01.000000+00:00",'
            b'"detail":{"codes":["A","B"],"n":1},"outcome":"ok","purpose":"case 42",'
            b'"resource_id":"p1","resource_type":"person","role":"officer","seq":1}'
        )

    def test_a_request_id_is_covered_by_the_hash(self) -> None:
        events = build(4)
        with_id = replace(events[1], request_id="kiosk-7.42")
        events[1] = replace(with_id, hash=chain.link(KEY, events[0].hash, with_id))
        # Relink the rest after it.
        for i in range(2, 4):
            events[i] = replace(
                events[i],
                prev_hash=events[i - 1].hash,
                hash=chain.link(KEY, events[i - 1].hash, events[i]),
            )
        assert chain.verify(KEY, events).ok
        for forged in ("kiosk-7.43", None):
            altered = [*events[:1], replace(events[1], request_id=forged), *events[2:]]
            verdict = chain.verify(KEY, altered)
            assert (verdict.first_bad_seq, verdict.reason) == (2, "altered")
