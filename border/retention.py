"""Retention (DESIGN §12): how long a file is kept, and its erasure when the time is up.

Periods come from the policy's ``[retention]``:

- A traveller's file is kept ``crossing_years`` after its anchor: the latest of their last
  crossing, their enrollment and the end of their latest visa's validity (a visa still
  valid keeps its holder's file). ``overstayer_years`` instead when they ever overstayed
  (an ``OVERSTAY`` recorded at an exit) or their last crossing is an entry that was not
  refused (no exit recorded: the EES keeps such files the longer period too).
  ``refusal_years`` after a refusal. The longest period that applies wins; the reason
  named is the one that gives the date (on a tie the more specific: overstay, refusal).
- A host national's captures go ``national_capture_days`` after they were taken; with the
  last one, the whole file goes (reason ``national``): the state knows its nationals from
  its own registers, and a file without a face could not verify them at the next crossing
  (which enrols them afresh). Crossings judged under the national regime go
  ``national_crossing_days`` after their day, whoever they are tied to.
- A crossing tied to nobody (a referral's live capture goes with it) goes
  ``crossing_years`` (``refusal_years`` when refused) after its day.

Erasing a file deletes the person's crossings (their own sealing keys shredded), visas,
documents and captures, ends their watchlist entries, blanks and crypto-shreds their
biographic data (the key goes); the person row stays as ``erased`` so that the audit
trail's ids stay resolvable. A file an admin erased keeps its crossings and visas until
the same periods have run (its ``crossing`` date is computed the same way). The statistics
aggregates are never touched. Each person is erased in one transaction with its
``retention.erase`` audit event, so a run killed half-way leaves every person whole or
erased, and the next run finishes the job.

A dry run does exactly the same work, person by person, in transactions that are rolled
back: the counts it reports are the ones a real run would, and nothing changes.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from uuid import UUID, uuid4

from audit import service as audit_service
from border import crossings, models
from border import retention_store as store
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import InvalidRequest
from core.runtime import Runtime
from enrollment import service as enrollment_service
from enrollment.galleries import Galleries
from visa import service as visa_service
from visa.policy import Policy

log = logging.getLogger(__name__)

Tick = Callable[[int, int], None]

MAX_WITHIN_DAYS: Final = 3650
_CROSSING_BATCH: Final = 500
SERVICE_ACTOR: Final = "service:retention"


class RunInProgress(Exception):
    """Another process holds the run lock: this run did nothing (never an HTTP answer)."""


@dataclass
class Summary:
    """What a run erased (or, dry, would): persons by reason, rows by kind."""

    on: date
    dry_run: bool
    persons: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "on": self.on.isoformat(),
            "dry_run": self.dry_run,
            "persons_erased": dict(sorted(self.persons.items())),
            "deleted": dict(sorted(self.deleted.items())),
        }

    def lines(self) -> list[str]:
        """The summary as the command line prints it, every kind named even at 0."""
        verb = "would be erased" if self.dry_run else "erased"
        reasons = ("crossing", "overstay", "refusal", "national")
        kinds = (
            "crossings",
            "visas",
            "captures",
            "national captures",
            "national crossings",
            "unattributed crossings",
        )
        head = f"retention on {self.on.isoformat()}" + (
            " (dry run: nothing changed)" if self.dry_run else ""
        )
        persons = ", ".join(f"{r} {self.persons[r]}" for r in reasons)
        rows = ", ".join(f"{k} {self.deleted[k]}" for k in kinds)
        return [
            head,
            f"persons {verb}: {sum(self.persons.values())} ({persons})",
            f"rows {'that would be deleted' if self.dry_run else 'deleted'}: {rows}",
        ]


def periods(policy: Policy) -> store.Periods:
    r = policy.retention
    return store.Periods(
        crossing_years=r.crossing_years,
        overstayer_years=r.overstayer_years,
        refusal_years=r.refusal_years,
    )


def today(rt: Runtime) -> date:
    """The host day now: retention dates are host days, as crossings' days are."""
    return crossings.host_day(rt, datetime.now(UTC))


def _period(policy: Policy, reason: str) -> dict[str, int]:
    r = policy.retention
    if reason == "national":
        return {"period_days": r.national_capture_days}
    years = {"crossing": r.crossing_years, "overstay": r.overstayer_years}
    return {"period_years": years.get(reason, r.refusal_years)}


def _national_due(
    rt: Runtime, conn: Conn, policy: Policy, candidate: store.CaptureAge
) -> date | None:
    """When the host national's last capture goes; None when they are not a national."""
    facts = enrollment_service.person_facts(rt, conn, candidate.person_id)
    if facts is None or not policy.is_national(facts.nationality):
        return None
    return candidate.newest_on + timedelta(days=policy.retention.national_capture_days)


def due(
    rt: Runtime, policy: Policy, principal: Principal, *, within_days: int, limit: int = 1000
) -> models.RetentionDueOut:
    """The persons whose file retention erases within ``within_days`` (1..3650) of today,
    overdue ones included, soonest first, at most ``limit``; audited."""
    if not 1 <= within_days <= MAX_WITHIN_DAYS:
        raise InvalidRequest(f"within_days must be 1 to {MAX_WITHIN_DAYS}", field="within_days")
    on = today(rt)
    until = on + timedelta(days=within_days)
    with transaction(rt.pool) as conn:
        found = {
            r.person_id: models.RetentionDue(
                person_id=r.person_id,
                due_on=r.due_on,
                reason=r.reason,  # type: ignore[arg-type]
            )
            for r in store.files_due(conn, periods(policy), until)
            if r.status == "active"
        }
        for candidate in store.national_candidates(conn, policy.host_state):
            national_on = _national_due(rt, conn, policy, candidate)
            if national_on is None:
                continue
            listed_on = found.get(candidate.person_id)
            # Whichever comes first, as a run erases them.
            if national_on <= until and (listed_on is None or national_on < listed_on.due_on):
                found[candidate.person_id] = models.RetentionDue(
                    person_id=candidate.person_id, due_on=national_on, reason="national"
                )
        listed = sorted(found.values(), key=lambda d: (d.due_on, d.person_id))
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "retention.due",
            detail={"within_days": within_days, "persons": min(len(listed), limit)},
        )
    return models.RetentionDueOut(
        on=on, within_days=within_days, persons=listed[:limit], more=len(listed) > limit
    )


@dataclass(frozen=True)
class Actor:
    """Who the audit events of a run name: the operator at the command line, or the
    service's daily task."""

    actor: str
    role: str | None

    @classmethod
    def of(cls, principal: Principal) -> "Actor":
        return cls(principal.actor, principal.role)


@contextmanager
def _step(rt: Runtime, dry_run: bool) -> Iterator[Conn]:
    """One transaction, committed, or rolled back when dry."""
    with rt.pool.connection() as conn, conn.transaction(force_rollback=dry_run):
        yield conn


def _audit(rt: Runtime, conn: Conn, who: Actor, action: str, **event: Any) -> None:
    audit_service.append(
        conn, rt.keys, actor=who.actor, role=who.role, purpose="retention", action=action,
        outcome="ok", **event,
    )  # fmt: skip


def _erase(
    rt: Runtime, conn: Conn, person_id: UUID, status: str, *, keep_crossings: bool = False
) -> tuple[list[int], Counter[str]]:
    """Erase the file of a person whose locks are held (``status`` as read under them):
    crossings and the visas they name (unless kept: a national's crossings go by their own
    period, and the visas then with the file's rest on a later run), then what enrollment
    holds. Returns the capture numbers deleted and the rows deleted by kind."""
    rows: Counter[str] = Counter()
    if not keep_crossings:
        gone = store.delete_crossings(conn, store.crossings_of(conn, person_id))
        for crossing_id in gone:
            # A key of the crossing's own exists only while it was tied to nobody.
            rt.keys.shred(conn, crossing_id)
        rows["crossings"] = len(gone)
        rows["visas"] = visa_service.delete_visas_of(conn, person_id)
    seqs: list[int] = []
    if status == "active":
        seqs = enrollment_service.erase_in(rt, conn, person_id)
    rows["captures"] = len(seqs)
    return seqs, rows


def _erase_national(
    rt: Runtime, policy: Policy, who: Actor, summary: Summary, person_id: UUID
) -> tuple[list[int], bool]:
    """A host national's captures past their period; with the last, the whole file.
    Returns the capture numbers deleted and whether the file went."""
    on = summary.on
    days = policy.retention.national_capture_days
    with _step(rt, summary.dry_run) as conn:
        if enrollment_service.hold_for_erasure(conn, person_id) != "active":
            return [], False
        facts = enrollment_service.person_facts(rt, conn, person_id)
        if facts is None or not policy.is_national(facts.nationality):
            return [], False
        # A capture taken on day D goes on D + days: taken before on - days + 1.
        seqs, left = enrollment_service.delete_captures_before(
            conn, person_id, on - timedelta(days=days - 1)
        )
        if not seqs:
            return [], False
        summary.deleted["national captures"] += len(seqs)
        if left:
            _audit(
                rt, conn, who, "retention.captures", resource_type="person",
                resource_id=person_id,
                detail={"reason": "national", "period_days": days, "captures": len(seqs)},
            )  # fmt: skip
            return seqs, False
        more, rows = _erase(rt, conn, person_id, "active", keep_crossings=True)
        summary.persons["national"] += 1
        summary.deleted.update(rows)
        _audit(
            rt, conn, who, "retention.erase", resource_type="person", resource_id=person_id,
            detail={"reason": "national", "period_days": days, "on": on.isoformat(),
                    "national_captures": len(seqs), **rows},
        )  # fmt: skip
        return seqs + more, True


def _erase_file(
    rt: Runtime, policy: Policy, who: Actor, summary: Summary, person_id: UUID
) -> tuple[list[int], bool]:
    """The person's file when its period has run out (read again under the locks).
    Returns the capture numbers deleted and whether the file went."""
    with _step(rt, summary.dry_run) as conn:
        status = enrollment_service.hold_for_erasure(conn, person_id)
        # Read again under the locks: a crossing meanwhile may have extended the file.
        row = store.file_due(conn, periods(policy), summary.on, person_id)
        if status is None or row is None:
            return [], False
        seqs, rows = _erase(rt, conn, person_id, status)
        summary.persons[row.reason] += 1
        summary.deleted.update(rows)
        _audit(
            rt, conn, who, "retention.erase", resource_type="person", resource_id=person_id,
            detail={"reason": row.reason, **_period(policy, row.reason),
                    "kept_until": row.due_on.isoformat(), "on": summary.on.isoformat(),
                    "already_erased": status == "erased", **rows},
        )  # fmt: skip
        return seqs, True


def _sweep_crossings(rt: Runtime, policy: Policy, who: Actor, summary: Summary) -> None:
    """Crossings past their own period, a batch per transaction (each crossing whole or
    gone), one audit event per batch."""
    after: UUID | None = None
    while True:
        with _step(rt, summary.dry_run) as conn:
            found = store.crossings_expired(
                conn, periods(policy), on=summary.on,
                national_days=policy.retention.national_crossing_days,
                after=after, limit=_CROSSING_BATCH,
            )  # fmt: skip
            if not found:
                return
            after = found[-1][0]
            kinds = dict(found)
            gone = store.delete_crossings(conn, list(kinds))
            for crossing_id in gone:
                rt.keys.shred(conn, crossing_id)
            counted = Counter(f"{kinds[c]} crossings" for c in gone)
            summary.deleted.update(counted)
            _audit(
                rt, conn, who, "retention.crossings", resource_type="crossing",
                detail={"on": summary.on.isoformat(), **dict(sorted(counted.items()))},
            )  # fmt: skip


@contextmanager
def _run_lock(rt: Runtime) -> Iterator[None]:
    """One run at a time across processes and nodes: a session advisory lock on a
    connection of its own, idle between its two short transactions. A killed run's
    session ends, and its lock with it."""
    with rt.pool.connection() as conn:
        with conn.transaction():
            held = store.try_lock_run(conn)
        if not held:
            raise RunInProgress("another retention run is in progress; try again later")
        try:
            yield
        finally:
            with conn.transaction():
                store.unlock_run(conn)


def run(
    rt: Runtime,
    policy: Policy,
    who: Actor,
    *,
    on: date,
    dry_run: bool = False,
    galleries: Galleries | None = None,
    progress: Tick | None = None,
) -> Summary:
    """Erase every file whose period has run out by ``on`` (see the module's docstring);
    ``dry_run`` changes nothing. Templates leave ``galleries`` (the caller's, if any) as
    each person commits; other processes' galleries catch up from the store
    (:func:`catch_up`). A real run is recorded in ``retention_runs``."""
    summary = Summary(on=on, dry_run=dry_run)
    started = datetime.now(UTC)
    with _run_lock(rt):
        capture_days = policy.retention.national_capture_days
        with rt.pool.connection() as conn:
            nationals = [
                c.person_id
                for c in store.national_candidates(conn, policy.host_state)
                if c.oldest_on + timedelta(days=capture_days) <= on
            ]
            files = [r.person_id for r in store.files_due(conn, periods(policy), on)]
        work: list[tuple[Callable[..., tuple[list[int], bool]], UUID]] = [
            (_erase_national, p) for p in nationals
        ] + [(_erase_file, p) for p in files]
        erased: set[UUID] = set()
        for done, (erase, person_id) in enumerate(work, start=1):
            # A file erased in this run is not looked at again in it (a dry run would
            # find it still whole); what it left goes on a later run.
            seqs: list[int] = []
            if person_id not in erased:
                seqs, gone = erase(rt, policy, who, summary, person_id)
                if gone:
                    erased.add(person_id)
            if seqs and galleries is not None and not dry_run:
                galleries.remove(seqs)
            if progress is not None:
                progress(done, len(work))
        if progress is not None and not work:
            progress(0, 0)
        _sweep_crossings(rt, policy, who, summary)
        if not dry_run:
            with transaction(rt.pool) as conn:
                store.insert_run(
                    conn,
                    store.RunRow(
                        id=uuid4(), on_date=on, started_at=started,
                        finished_at=datetime.now(UTC), actor=who.actor,
                        summary=summary.as_dict(),
                    ),
                )  # fmt: skip
    log.info("retention on %s%s: %s", on, " (dry run)" if dry_run else "", summary.as_dict())
    return summary


@dataclass
class Daily:
    """The service's daily run, one per process (border/app.py): it runs retention when
    no run has been recorded for today (one process at a time, by the run lock), and
    brings this process's galleries in step with the store after any run recorded since
    it last looked, whoever made it (another worker, another node, the command line)."""

    seen_run: UUID | None = None
    failed_on: date | None = None

    def tick(self, rt: Runtime, policy: Policy, galleries: Galleries) -> Summary | None:
        on = today(rt)
        summary = None
        with rt.pool.connection() as conn:
            last = store.last_run(conn)
        if (last is None or last.on_date < on) and self.failed_on != on:
            try:
                summary = run(rt, policy, Actor(SERVICE_ACTOR, None), on=on, galleries=galleries)
            except RunInProgress:
                log.info("retention: another process is running it")
            except Exception:
                # Never the service's end: logged, and tried again tomorrow.
                self.failed_on = on
                log.exception("retention run for %s failed; retrying tomorrow", on)
        with rt.pool.connection() as conn:
            last = store.last_run(conn)
            if last is not None and last.id != self.seen_run:
                _, removed = galleries.reconcile(conn, rt.keys)
                if removed:
                    log.info("galleries caught up with retention: %d templates removed", removed)
                self.seen_run = last.id
        return summary


def erase_person(
    rt: Runtime, bio: enrollment_service.Biometrics, principal: Principal, person_id: UUID
) -> None:
    """An admin's erasure (``DELETE /v1/persons/{id}``): enrollment erases the person, and
    in the same transaction the documents' blind index leaves the crossings (theirs, and
    any tied to nobody that carry it), so no crossing can be tied to the document again.
    The crossings themselves stay until retention's periods have run."""
    enrollment_service.erase(
        rt, bio, principal, person_id,
        before=lambda conn: store.forget_document_index(conn, person_id),
    )  # fmt: skip
