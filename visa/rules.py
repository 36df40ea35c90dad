"""The entry and exit rules of DESIGN §6 and §10, pure: no I/O, no clock, no database.

The caller (the crossing flow) gathers the facts (the policy, the traveller, their visas and
their past admitted crossings) and gets back an :class:`Evaluation`: the reasons that apply,
the visa the entry is judged against, and the figures used, so an auditor can replay the
decision. Deciding ``admit`` or ``refer`` from the reasons is the caller's job.

Conventions, where DESIGN §6 leaves room:

- **Days** are calendar dates in the host time zone; entry and exit days both count and
  days two stays share count once (:mod:`visa.stay` does all day counting).
- **History** is the traveller's past admitted crossings (or referrals an officer resolved
  ``admit``), oldest first; the order within one day is kept as given. Movements dated after
  the crossing being judged are ignored. An entry followed by another entry with no exit in
  between (an exit never recorded) is counted as presence up to the later entry, as the
  EES does: the system cannot tell the traveller left.
- **Nationals** of the host state skip the visa and stay rules. They never get
  ``NO_ENTRY_RECORD`` either: a national may have been born in the country.
- **Visa-exempt** nationalities skip the visa rules and keep the short-stay allowance
  (``max_stay_days`` in any ``window_days``), unless they hold a usable long-stay (D) visa,
  which then sets their stay as it would for anyone.
- **Visa types.** ``C`` (short stay) is bound by the allowance *and* by its own validity and
  duration of stay. ``D`` (long stay) is bound by its validity and duration only: a national
  long-stay visa exists to authorise more than the 90/180 allowance. ``A`` (airport transit)
  never authorises entry into the territory, so it does not satisfy ``VISA_REQUIRED``.
- **Choosing a visa** when several are valid on the date: issued ones of type C or D, those
  with entries left first, then those with days of stay left, then the latest
  ``valid_until``, then the longest stay left; ties by id, so the choice is reproducible.
- **Days on a visa** (its ``duration_of_stay_days``) are the calendar days of presence on
  every stay whose entry was made with that visa, entry and exit days included, overlaps
  once. Its duration is used up at an entry when the days already spent on it before the
  entry day leave none for that day.
- **Revocation** bears on entries: a stay already begun on a visa revoked since keeps that
  visa's limits at exit; what to do about the holder is an officer's call.
- **Document expiry and minors** are checked at exit as at entry (the Schengen Borders Code
  checks the travel document and minors both ways).
- **Document validity** (``DOCUMENT_VALIDITY_SHORT``, entry only, non-nationals): the
  document must stay valid at least ``policy.min_document_validity_days`` days after the
  entry day (expiring on entry day + that many days passes). The Schengen Borders Code,
  Art. 6(1)(a), counts three months from the intended date of departure, which a kiosk does
  not know, so the count starts on the entry day. It is not raised when the document has
  already expired (``DOCUMENT_EXPIRED`` is the stronger reason) or its expiry is unknown.
- **Revocation time** is the caller's: the rules take each visa's status as given and
  judge by days. ``visa.service.visa_facts(..., at=)`` gives a visa revoked after the
  crossing's moment as ``"issued"``, so it still counts as valid for that crossing.
- **Refusal grounds**: :data:`GROUNDS_FOR_REFUSAL` says whether a reason may ground a
  refusal; an officer's refusal names the letters of :data:`REFUSAL_GROUNDS` (Schengen
  Borders Code Annex V Part B).
- **No personal data in figures or details**: no nationality, birth date or age (those are
  sealed in ``persons``); ids, codes, the document's expiry date and day counts only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Final, Literal, get_args
from uuid import UUID

from visa import stay
from visa.policy import Policy

__all__ = [
    "GROUNDS_FOR_REFUSAL",
    "RECORDED_ONLY",
    "REFUSAL_GROUNDS",
    "AuthorisedStay",
    "Direction",
    "Entries",
    "Evaluation",
    "Movement",
    "Reason",
    "ReasonCode",
    "Regime",
    "Traveller",
    "Visa",
    "VisaStatus",
    "VisaType",
    "age_on",
    "authorised_stay",
    "evaluate_entry",
    "evaluate_exit",
    "stays",
]

Direction = Literal["entry", "exit"]
VisaType = Literal["A", "C", "D"]
Entries = Literal["1", "2", "MULT"]
VisaStatus = Literal["issued", "revoked"]
# Which stay limits applied: none for nationals, none checked when an unknown traveller's
# visa cannot be looked up ("not_evaluated"), the allowance for short stays, the visa's own
# limits alone for a long-stay (D) visa.
Regime = Literal["national", "not_evaluated", "short_stay", "long_stay"]
ReasonCode = Literal[
    "MRZ_INVALID",
    "DOCUMENT_EXPIRED",
    "DOCUMENT_VALIDITY_SHORT",
    "DOCUMENT_CHANGED",
    "DOCUMENT_ALERT",
    "ENTRY_BAN",
    "NAME_ALERT",
    "SEE_OFFICER",
    "UNKNOWN_TRAVELER",
    "FACE_NOT_DETECTED",
    "FACE_QUALITY_LOW",
    "FACE_MISMATCH",
    "WATCHLIST_HIT",
    "MINOR_UNACCOMPANIED",
    "VISA_REQUIRED",
    "VISA_REVOKED",
    "VISA_ENTRIES_EXHAUSTED",
    "STAY_LIMIT_EXCEEDED",
    "OVERSTAY",
    "NO_ENTRY_RECORD",
    "ENTRY_WITHOUT_EXIT",
    "CHIP_INVALID",
    "CHIP_FACE_MISMATCH",
    "CSCA_UNKNOWN",
    "CHIP_NOT_PRESENTED",
]

# DESIGN §6 and §10: whether each reason is grounds for refusal. Every code is here, those
# the crossing flow raises itself (MRZ, face, watchlist, alerts) included, so one table rules.
GROUNDS_FOR_REFUSAL: Final[Mapping[ReasonCode, bool]] = {
    "MRZ_INVALID": False,
    "DOCUMENT_EXPIRED": True,
    # DESIGN §10 from here to SEE_OFFICER.
    "DOCUMENT_VALIDITY_SHORT": True,
    # A known face on a document nobody holds: an officer links or not; nothing refused yet.
    "DOCUMENT_CHANGED": False,
    # Grounds for the two document categories (lost or stolen, invalidated). A document
    # alert of another category is not: the caller, which knows the category, builds that
    # reason with grounds False instead of through Reason.of.
    "DOCUMENT_ALERT": True,
    "ENTRY_BAN": True,
    # A name and birth date match no more than that: an officer has to compare the person.
    "NAME_ALERT": False,
    # What a kiosk receives in place of any alert reason: its screen faces the traveller,
    # who must not learn of an alert (no tipping-off), so no category and no grounds.
    "SEE_OFFICER": False,
    "UNKNOWN_TRAVELER": False,
    "FACE_NOT_DETECTED": False,
    "FACE_QUALITY_LOW": False,
    "FACE_MISMATCH": False,
    "WATCHLIST_HIT": False,
    "MINOR_UNACCOMPANIED": False,
    "VISA_REQUIRED": True,
    "VISA_REVOKED": True,
    "VISA_ENTRIES_EXHAUSTED": True,
    "STAY_LIMIT_EXCEEDED": True,
    "OVERSTAY": False,
    "NO_ENTRY_RECORD": False,
    # Beyond the DESIGN §6 table: an entry while the last admitted entry has no exit.
    "ENTRY_WITHOUT_EXIT": False,
    # DESIGN §16, the passport chip: none is grounds; an officer examines the document
    # (a forged one is then refused under letter B).
    "CHIP_INVALID": False,
    "CHIP_FACE_MISMATCH": False,
    "CSCA_UNKNOWN": False,
    "CHIP_NOT_PRESENTED": False,
}
# Reasons recorded with a crossing that do not by themselves call for an officer: an
# overstayer's exit is admitted and the overstay recorded (DESIGN §6).
RECORDED_ONLY: Final = frozenset[ReasonCode]({"OVERSTAY"})
# The standard form for refusal of entry (Schengen Borders Code, Annex V Part B): an
# officer's refusal names one or more of these letters. Short meanings, for screens and
# records; the form's own wording is longer.
REFUSAL_GROUNDS: Final[Mapping[str, str]] = {
    "A": "no valid travel document",
    "B": "false, counterfeit or forged travel document",
    "C": "no valid visa or residence permit",
    "D": "false, counterfeit or forged visa or residence permit",
    "E": "purpose and conditions of stay not justified",
    "F": "has already stayed 90 days during a 180-day period",
    "G": "does not have sufficient means of subsistence",
    "H": "person for whom an alert has been issued for the purposes of refusing entry",
    "I": (
        "considered a threat to public policy, internal security, public health or "
        "international relations"
    ),
    "J": "no valid travel authorisation",
}

_ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason of a decision; ``detail`` is for people and holds no personal data."""

    code: ReasonCode
    detail: str
    grounds_for_refusal: bool

    @classmethod
    def of(cls, code: ReasonCode, detail: str) -> Reason:
        """A reason with its grounds taken from :data:`GROUNDS_FOR_REFUSAL`."""
        return cls(code, detail, GROUNDS_FOR_REFUSAL[code])

    def as_dict(self) -> dict[str, str | bool]:
        return {
            "code": self.code,
            "detail": self.detail,
            "grounds_for_refusal": self.grounds_for_refusal,
        }


@dataclass(frozen=True, slots=True)
class Visa:
    """What the rules need of a visa (see ``visa.service.visa_facts``)."""

    visa_id: UUID
    visa_type: VisaType
    valid_from: date
    valid_until: date
    entries: Entries
    duration_of_stay_days: int
    status: VisaStatus

    def __post_init__(self) -> None:
        if self.entries not in get_args(Entries):
            raise ValueError(f"entries must be one of {get_args(Entries)}, not {self.entries!r}")
        if self.duration_of_stay_days < 1:
            raise ValueError("duration_of_stay_days must be at least 1")
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")

    @property
    def entries_allowed(self) -> int | None:
        """How many entries the visa allows; None for multiple entries (no limit)."""
        return None if self.entries == "MULT" else int(self.entries)

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until


@dataclass(frozen=True, slots=True)
class Traveller:
    """The traveller as the document and the records show them.

    ``known`` says whether an enrolled person holds the document; ``birth_date`` and
    ``document_expiry`` are None when the MRZ leaves them unknown.
    """

    nationality: str
    birth_date: date | None
    document_expiry: date | None
    known: bool


@dataclass(frozen=True, slots=True)
class Movement:
    """A past crossing that was admitted (or resolved ``admit``); ``on`` is its calendar
    date in the host time zone, ``visa_id`` the visa an entry was made with, if any."""

    direction: Direction
    on: date
    visa_id: UUID | None = None

    def __post_init__(self) -> None:
        if self.direction not in get_args(Direction):
            raise ValueError(f"direction must be 'entry' or 'exit', not {self.direction!r}")
        _check_day(self.on, "movement date")


@dataclass(frozen=True)
class Evaluation:
    """The rules' verdict on one crossing.

    ``reasons`` is empty when every rule passes. ``visa_id`` is the visa the entry was judged
    against (None when none is needed or no issued visa is valid on the date): record it
    with the crossing, since entries on a visa are counted from it. ``figures`` holds plain
    JSON values (ISO dates) and always the same keys; see :func:`evaluate_entry`.
    """

    direction: Direction
    reasons: list[Reason]
    visa_id: UUID | None
    figures: dict[str, object] = field(default_factory=dict)

    @property
    def codes(self) -> list[ReasonCode]:
        return [r.code for r in self.reasons]


@dataclass(frozen=True, slots=True)
class AuthorisedStay:
    """How long a stay entered on ``entry`` may last, limit by limit.

    ``latest_exit`` is the short-stay allowance's last day (None when the allowance does not
    apply, or can never end a stay because ``max_stay_days == window_days``);
    ``visa_valid_until`` and ``visa_duration_until`` are the visa's (None without a visa).
    A limit before ``entry`` means not even the entry day was authorised.
    """

    entry: date
    visa_id: UUID | None
    regime: Literal["short_stay", "long_stay"]
    latest_exit: date | None
    visa_valid_until: date | None
    visa_duration_until: date | None

    @property
    def authorised_until(self) -> date | None:
        """The last authorised day: the earliest limit; None when nothing limits the stay."""
        limits = [d for d in self._limits().values() if d is not None]
        return min(limits, default=None)

    def overstay_days(self, on: date) -> int:
        """Days present past the last authorised day, for a stay lasting to ``on``."""
        until = self.authorised_until
        return 0 if until is None else max(0, (on - until).days)

    def exceeded(self, on: date) -> list[str]:
        """The limits a stay lasting to ``on`` went past, by name."""
        return [name for name, until in self._limits().items() if until is not None and on > until]

    def _limits(self) -> dict[str, date | None]:
        return {
            "short_stay_allowance": self.latest_exit,
            "visa_validity": self.visa_valid_until,
            "visa_duration": self.visa_duration_until,
        }


def age_on(birth_date: date, on: date) -> int:
    """Completed years on ``on``. Someone born on 29 February comes of age on 1 March in a
    common year (the day after 28 February), the rule of most civil codes."""
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - before_birthday


def stays(history: Sequence[Movement], on: date) -> list[stay.Stay]:
    """The traveller's stays up to ``on``, for :mod:`visa.stay`: entries paired with the
    exits that follow them, the last one open (exit None) while they are in the territory."""
    return [(t.entry, t.exit) for t in _trips(history, on)]


def evaluate_entry(
    policy: Policy,
    traveller: Traveller,
    visas: Sequence[Visa],
    history: Sequence[Movement],
    on: date,
    *,
    accompanied: bool,
) -> Evaluation:
    """Judge an entry on ``on`` (codes of DESIGN §6 and §10, in this order when several
    apply):

    DOCUMENT_EXPIRED or, for non-nationals, DOCUMENT_VALIDITY_SHORT; MINOR_UNACCOMPANIED;
    then for those who need a visa UNKNOWN_TRAVELER (when no person holds the document:
    their visas cannot be looked up, so the visa and stay rules are not evaluated) or one of
    VISA_REQUIRED, VISA_REVOKED and VISA_ENTRIES_EXHAUSTED; then STAY_LIMIT_EXCEEDED (one
    reason, both limits in its detail).

    ``figures``: ``rule_set``, ``direction``, ``on``, ``regime`` (see :data:`Regime`),
    ``visa_required``, ``document_expiry``, ``min_document_validity_days`` (the policy's),
    ``minor`` (None when the birth date is unknown), ``accompanied``, ``visa`` (the chosen
    visa with ``entries_used``, ``days_used_before`` and ``duration_until``, or None),
    ``visas_valid`` (ids of the visas valid on the date),
    ``entry`` (the stay's entry day), ``unclosed_entry`` (a previous entry with no exit
    recorded, counted as presence up to this one), ``max_stay_days``, ``window_days``,
    ``window_start``, ``days_used`` (days present in the window ending on ``on``, this
    entry's day included), ``days_remaining`` (after that day), ``latest_exit``, ``stays``
    (the ``[entry, exit]`` stays counted in the window), ``authorised_until`` and
    ``overstay_days``. Figures that did not apply are None.
    """
    _check_day(on, "on")
    reasons = _traveller_reasons(policy, traveller, "entry", on, accompanied=accompanied)
    figures = _base_figures(policy, "entry", on, traveller, accompanied=accompanied)
    figures["entry"] = on.isoformat()
    if policy.is_national(traveller.nationality):
        figures["regime"] = "national"
        return Evaluation("entry", reasons, None, figures)
    needs_visa = policy.needs_visa(traveller.nationality)
    if needs_visa and not traveller.known:
        reasons.append(
            Reason.of(
                "UNKNOWN_TRAVELER",
                "no enrolled person holds this document and its nationality needs a visa; "
                "the visa and stay rules could not be checked",
            )
        )
        figures["regime"] = "not_evaluated"
        return Evaluation("entry", reasons, None, figures)

    trips = _trips(history, on)
    prior = [(t.entry, t.exit) for t in trips]
    if trips and trips[-1].exit is None:
        figures["unclosed_entry"] = trips[-1].entry.isoformat()
    valid = [v for v in visas if v.valid_on(on)]
    figures["visas_valid"] = [str(v.visa_id) for v in sorted(valid, key=lambda v: str(v.visa_id))]
    uses = [
        _VisaUse.of(v, trips, history, on)
        for v in valid
        if v.status == "issued" and v.visa_type != "A"
    ]
    if needs_visa:
        chosen = max(uses, key=lambda u: u.preference(on), default=None)
        refusal = _visa_reason(visas, valid, chosen, on)
        if refusal is not None:
            reasons.append(refusal)
    else:
        # Exempt: visas are never required, but a usable long-stay visa lets them stay on it.
        chosen = max(
            (u for u in uses if u.visa.visa_type == "D" and u.usable(on)),
            key=lambda u: u.preference(on),
            default=None,
        )
    if chosen is not None:
        figures["visa"] = chosen.as_figures()

    authorised = _authorise(policy, chosen, prior, on)
    figures.update(_allowance_figures(policy, authorised, [*prior, (on, None)], on))
    over = authorised.exceeded(on)
    limits: list[str] = []
    if "short_stay_allowance" in over:
        used = stay.days_used(
            prior, on, max_stay_days=policy.max_stay_days, window_days=policy.window_days
        )
        limits.append(
            f"{used} of the {policy.max_stay_days} days allowed in the {policy.window_days} "
            f"days ending {on.isoformat()} are already used"
        )
    if chosen is not None and "visa_duration" in over:
        limits.append(
            f"the {chosen.visa.duration_of_stay_days} days of stay of visa {chosen.visa.visa_id} "
            f"are used up ({chosen.days_used_before} spent on it)"
        )
    if limits:
        reasons.append(Reason.of("STAY_LIMIT_EXCEEDED", "; ".join(limits)))
    return Evaluation("entry", reasons, None if chosen is None else chosen.visa.visa_id, figures)


def evaluate_exit(
    policy: Policy,
    traveller: Traveller,
    visas: Sequence[Visa],
    history: Sequence[Movement],
    on: date,
    *,
    accompanied: bool,
) -> Evaluation:
    """Judge an exit on ``on``: DOCUMENT_EXPIRED, MINOR_UNACCOMPANIED, then NO_ENTRY_RECORD
    (no open entry in ``history``; never for nationals) or OVERSTAY (the stay went past its
    last authorised day: the allowance, the visa's validity or its duration of stay).

    OVERSTAY is not grounds for refusal: the exit is admitted and the overstay recorded
    (:data:`RECORDED_ONLY`). ``figures`` has the keys of :func:`evaluate_entry`, counted for
    the stay ending on ``on``; ``visa_id`` is the visa the stay was entered on.
    """
    _check_day(on, "on")
    reasons = _traveller_reasons(policy, traveller, "exit", on, accompanied=accompanied)
    figures = _base_figures(policy, "exit", on, traveller, accompanied=accompanied)
    if policy.is_national(traveller.nationality):
        figures["regime"] = "national"
        return Evaluation("exit", reasons, None, figures)
    authorised = authorised_stay(policy, visas, history, on)
    if authorised is None:
        reasons.append(
            Reason.of("NO_ENTRY_RECORD", "no entry without a later exit is recorded for them")
        )
        figures["regime"] = "not_evaluated"
        return Evaluation("exit", reasons, None, figures)

    trips = _trips(history, on)
    prior = [(t.entry, t.exit) for t in trips[:-1]]
    visa = _visa_by_id(visas, authorised.visa_id)
    if visa is not None:
        figures["visa"] = _VisaUse.of(visa, trips[:-1], history, authorised.entry).as_figures()
    figures["entry"] = authorised.entry.isoformat()
    figures.update(_allowance_figures(policy, authorised, [*prior, (authorised.entry, on)], on))
    days = authorised.overstay_days(on)
    if days:
        until = authorised.authorised_until
        assert until is not None
        names = ", ".join(n.replace("_", " ") for n in authorised.exceeded(on))
        reasons.append(
            Reason.of(
                "OVERSTAY",
                f"the stay entered on {authorised.entry.isoformat()} was authorised until "
                f"{until.isoformat()}: {days} day(s) over ({names})",
            )
        )
    return Evaluation("exit", reasons, authorised.visa_id, figures)


def authorised_stay(
    policy: Policy, visas: Sequence[Visa], history: Sequence[Movement], on: date
) -> AuthorisedStay | None:
    """The limits of the stay the traveller is in on ``on`` (their last entry with no exit
    after it), or None when they are not in the territory. For nationals, who have no stay
    limits, the caller does not ask. An overstayer on ``on`` is one whose
    ``overstay_days(on) > 0``."""
    _check_day(on, "on")
    trips = _trips(history, on)
    if not trips or trips[-1].exit is not None:
        return None
    current = trips[-1]
    visa = _visa_by_id(visas, current.visa_id)
    use = None if visa is None else _VisaUse.of(visa, trips[:-1], history, current.entry)
    return _authorise(policy, use, [(t.entry, t.exit) for t in trips[:-1]], current.entry)


@dataclass(frozen=True, slots=True)
class _Trip:
    entry: date
    exit: date | None
    visa_id: UUID | None


def _trips(history: Sequence[Movement], on: date) -> list[_Trip]:
    """Movements up to ``on`` paired into trips, oldest first; the last may be open."""
    # sorted() is stable: movements of one day keep the order the caller gave them.
    moves = sorted((m for m in history if m.on <= on), key=lambda m: m.on)
    trips: list[_Trip] = []
    current: _Trip | None = None
    for move in moves:
        if move.direction == "entry":
            if current is not None:
                # No exit recorded: presence is counted up to this entry.
                trips.append(replace(current, exit=move.on))
            current = _Trip(move.on, None, move.visa_id)
        elif current is not None:
            trips.append(replace(current, exit=move.on))
            current = None
        # An exit with no open entry was NO_ENTRY_RECORD at the time; it adds no days.
    if current is not None:
        trips.append(current)
    return trips


@dataclass(frozen=True, slots=True)
class _VisaUse:
    """A visa and how much of it was used before an entry on ``entry``."""

    visa: Visa
    entry: date
    entries_used: int
    days_used_before: int

    @classmethod
    def of(
        cls, visa: Visa, trips: Sequence[_Trip], history: Sequence[Movement], entry: date
    ) -> _VisaUse:
        """``trips`` are the stays before this entry (an open one runs to ``entry``)."""
        entries_used = sum(
            1
            for m in history
            if m.direction == "entry" and m.visa_id == visa.visa_id and m.on <= entry
        )
        on_visa = [(t.entry, t.exit) for t in trips if t.visa_id == visa.visa_id]
        return cls(visa, entry, entries_used, _days_before(on_visa, entry))

    @property
    def duration_until(self) -> date:
        """The last day a stay entered on ``entry`` may last under the visa's duration of
        stay; before ``entry`` when the duration is used up."""
        left = self.visa.duration_of_stay_days - self.days_used_before
        return self.entry + timedelta(days=left - 1)

    @property
    def entries_left(self) -> bool:
        allowed = self.visa.entries_allowed
        return allowed is None or self.entries_used < allowed

    def usable(self, on: date) -> bool:
        return self.entries_left and self.duration_until >= on

    def preference(self, on: date) -> tuple[bool, bool, date, date, str]:
        return (
            self.entries_left,
            self.duration_until >= on,
            self.visa.valid_until,
            self.duration_until,
            str(self.visa.visa_id),
        )

    def as_figures(self) -> dict[str, object]:
        v = self.visa
        return {
            "visa_id": str(v.visa_id),
            "visa_type": v.visa_type,
            "status": v.status,
            "valid_from": v.valid_from.isoformat(),
            "valid_until": v.valid_until.isoformat(),
            "entries": v.entries,
            "entries_used": self.entries_used,
            "duration_of_stay_days": v.duration_of_stay_days,
            "days_used_before": self.days_used_before,
            "duration_until": self.duration_until.isoformat(),
        }


def _days_before(spans: Sequence[stay.Stay], day: date) -> int:
    """Calendar days of presence in ``spans`` strictly before ``day`` (an open span runs
    to ``day``), counted by :func:`visa.stay.days_used` over a window reaching the first."""
    if not spans:
        return 0
    first = min([day, *(entry for entry, _ in spans)])
    # ``day`` is added as a one-day stay so it counts exactly once, then taken off.
    return (
        stay.days_used(
            [*spans, (day, day)], day, max_stay_days=1, window_days=(day - first).days + 1
        )
        - 1
    )


def _authorise(
    policy: Policy, use: _VisaUse | None, prior: Sequence[stay.Stay], entry: date
) -> AuthorisedStay:
    long_stay = use is not None and use.visa.visa_type == "D"
    latest: date | None = None
    if not long_stay:
        latest = stay.latest_exit(
            prior, entry, max_stay_days=policy.max_stay_days, window_days=policy.window_days
        )
        if latest == date.max:
            latest = None
    return AuthorisedStay(
        entry=entry,
        visa_id=None if use is None else use.visa.visa_id,
        regime="long_stay" if long_stay else "short_stay",
        latest_exit=latest,
        visa_valid_until=None if use is None else use.visa.valid_until,
        visa_duration_until=None if use is None else use.duration_until,
    )


def _visa_reason(
    visas: Sequence[Visa], valid: Sequence[Visa], chosen: _VisaUse | None, on: date
) -> Reason | None:
    day = on.isoformat()
    if chosen is not None:
        if chosen.entries_left:
            return None
        return Reason.of(
            "VISA_ENTRIES_EXHAUSTED",
            f"visa {chosen.visa.visa_id} allows {chosen.visa.entries_allowed} "
            f"entr{'y' if chosen.visa.entries_allowed == 1 else 'ies'}, all used",
        )
    for_entry = [v for v in valid if v.visa_type != "A"]
    if for_entry:
        # Valid on the date, none issued: every one was revoked.
        return Reason.of(
            "VISA_REVOKED",
            f"the visa valid on {day} was revoked ({_ids(for_entry)})",
        )
    if valid:
        return Reason.of(
            "VISA_REQUIRED",
            f"the only visa valid on {day} is for airport transit (type A), "
            "which does not allow entry",
        )
    if visas:
        return Reason.of("VISA_REQUIRED", f"a visa is required and none held is valid on {day}")
    return Reason.of("VISA_REQUIRED", "a visa is required and none is on record")


def _traveller_reasons(
    policy: Policy, traveller: Traveller, direction: Direction, on: date, *, accompanied: bool
) -> list[Reason]:
    reasons: list[Reason] = []
    expiry = traveller.document_expiry
    needed = policy.min_document_validity_days
    if expiry is not None and expiry < on:
        reasons.append(
            Reason.of(
                "DOCUMENT_EXPIRED",
                f"the document expired on {expiry.isoformat()}, before {on.isoformat()}",
            )
        )
    elif (
        expiry is not None
        and direction == "entry"
        and not policy.is_national(traveller.nationality)
        # Counted as a difference, not as on + needed: a large policy value cannot run
        # past the calendar's end.
        and (expiry - on).days < needed
    ):
        reasons.append(
            Reason.of(
                "DOCUMENT_VALIDITY_SHORT",
                f"the document expires on {expiry.isoformat()}, less than {needed} days after "
                f"the entry on {on.isoformat()}",
            )
        )
    if _minor(policy, traveller, on) and not accompanied:
        reasons.append(
            Reason.of(
                "MINOR_UNACCOMPANIED",
                f"the traveller is under {policy.adult_age} and no accompanying adult is given",
            )
        )
    return reasons


def _minor(policy: Policy, traveller: Traveller, on: date) -> bool | None:
    if traveller.birth_date is None:
        return None
    return age_on(traveller.birth_date, on) < policy.adult_age


def _base_figures(
    policy: Policy, direction: Direction, on: date, traveller: Traveller, *, accompanied: bool
) -> dict[str, object]:
    expiry = traveller.document_expiry
    return {
        "rule_set": policy.rule_set,
        "direction": direction,
        "on": on.isoformat(),
        "regime": None,
        "visa_required": policy.needs_visa(traveller.nationality),
        "document_expiry": None if expiry is None else expiry.isoformat(),
        "min_document_validity_days": policy.min_document_validity_days,
        "minor": _minor(policy, traveller, on),
        "accompanied": accompanied,
        "visa": None,
        "visas_valid": [],
        "entry": None,
        "unclosed_entry": None,
        "max_stay_days": policy.max_stay_days,
        "window_days": policy.window_days,
        "window_start": None,
        "days_used": None,
        "days_remaining": None,
        "latest_exit": None,
        "stays": [],
        "authorised_until": None,
        "overstay_days": None,
    }


def _allowance_figures(
    policy: Policy, authorised: AuthorisedStay, spans: list[stay.Stay], on: date
) -> dict[str, object]:
    """The stay counted on ``on``, with the current stay in ``spans``. The window figures
    are given for long stays too (as information; only the visa limits them)."""
    counted = stay.trace(
        spans, on, max_stay_days=policy.max_stay_days, window_days=policy.window_days
    )
    until = authorised.authorised_until
    return {
        "regime": authorised.regime,
        "window_start": counted.window_start.isoformat(),
        "days_used": counted.days_used,
        "days_remaining": counted.days_remaining,
        "latest_exit": _iso(authorised.latest_exit),
        "stays": [[s.entry.isoformat(), _iso(s.exit)] for s in counted.stays if s.days_in_window],
        "authorised_until": _iso(until),
        "overstay_days": authorised.overstay_days(on),
    }


def _visa_by_id(visas: Iterable[Visa], visa_id: UUID | None) -> Visa | None:
    return None if visa_id is None else next((v for v in visas if v.visa_id == visa_id), None)


def _ids(visas: Iterable[Visa]) -> str:
    return ", ".join(sorted(str(v.visa_id) for v in visas))


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _check_day(day: date, name: str) -> None:
    # A datetime is a date too; it would slip in clock times where whole days are meant.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{name} must be a calendar date in the host time zone, not {day!r}")
