"""The entry and exit rules (DESIGN §6), table-driven, without a database."""

import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, get_args
from uuid import UUID

import pytest

from visa import rules
from visa.policy import Policy, load_policy
from visa.rules import Movement, Traveller, Visa

D = date.fromisoformat
POLICY = load_policy()  # host UTO; GBR, USA and D exempt; 90 days in 180; adults from 18
ON = D("2026-06-15")

NATIONAL = Traveller(
    nationality="UTO", birth_date=D("1980-01-01"), document_expiry=None, known=True
)
NEEDS_VISA = Traveller(
    nationality="ZZZ", birth_date=D("1980-01-01"), document_expiry=None, known=True
)
EXEMPT = Traveller(nationality="GBR", birth_date=D("1980-01-01"), document_expiry=None, known=True)


def vid(n: int) -> UUID:
    return UUID(int=n)


def visa(
    n: int = 1,
    *,
    visa_type: rules.VisaType = "C",
    valid_from: str = "2026-01-01",
    valid_until: str = "2026-12-31",
    entries: rules.Entries = "MULT",
    days: int = 90,
    status: rules.VisaStatus = "issued",
) -> Visa:
    return Visa(vid(n), visa_type, D(valid_from), D(valid_until), entries, days, status)


def trip(entry: str, exit_: str | None, visa_id: UUID | None = None) -> list[Movement]:
    moves = [Movement("entry", D(entry), visa_id)]
    if exit_ is not None:
        moves.append(Movement("exit", D(exit_)))
    return moves


def entry(
    traveller: Traveller = NEEDS_VISA,
    visas: list[Visa] | None = None,
    history: list[Movement] | None = None,
    on: date = ON,
    *,
    accompanied: bool = False,
    policy: Policy = POLICY,
) -> rules.Evaluation:
    return rules.evaluate_entry(
        policy, traveller, visas or [], history or [], on, accompanied=accompanied
    )


def exit_(
    traveller: Traveller = NEEDS_VISA,
    visas: list[Visa] | None = None,
    history: list[Movement] | None = None,
    on: date = ON,
    *,
    accompanied: bool = False,
    policy: Policy = POLICY,
) -> rules.Evaluation:
    return rules.evaluate_exit(
        policy, traveller, visas or [], history or [], on, accompanied=accompanied
    )


@dataclass
class Case:
    """One entry: the facts and the codes expected, in order."""

    codes: list[str]
    traveller: Traveller = NEEDS_VISA
    visas: list[Visa] = field(default_factory=lambda: [visa()])
    history: list[Movement] = field(default_factory=list)
    on: date = ON
    accompanied: bool = False
    visa_id: UUID | None = None


ENTRY_CASES = {
    "clean entry on a visa": Case([], visa_id=vid(1)),
    "clean entry, exempt": Case([], traveller=EXEMPT, visas=[]),
    "clean entry, national": Case([], traveller=NATIONAL, visas=[]),
    "document expired the day before": Case(
        ["DOCUMENT_EXPIRED"],
        traveller=replace(NEEDS_VISA, document_expiry=ON - timedelta(days=1)),
        visa_id=vid(1),
    ),
    "document expiring on the day has not expired, but is too short": Case(
        ["DOCUMENT_VALIDITY_SHORT"],
        traveller=replace(NEEDS_VISA, document_expiry=ON),
        visa_id=vid(1),
    ),
    "document valid exactly 90 days after the entry": Case(
        [], traveller=replace(NEEDS_VISA, document_expiry=ON + timedelta(days=90)), visa_id=vid(1)
    ),
    "document valid 89 days after the entry": Case(
        ["DOCUMENT_VALIDITY_SHORT"],
        traveller=replace(NEEDS_VISA, document_expiry=ON + timedelta(days=89)),
        visa_id=vid(1),
    ),
    "exempt with a short document": Case(
        ["DOCUMENT_VALIDITY_SHORT"],
        traveller=replace(EXEMPT, document_expiry=ON + timedelta(days=30)),
        visas=[],
    ),
    "national with a short document": Case(
        [], traveller=replace(NATIONAL, document_expiry=ON + timedelta(days=10)), visas=[]
    ),
    "unknown expiry is not short": Case(
        [], traveller=replace(NEEDS_VISA, document_expiry=None), visa_id=vid(1)
    ),
    "unknown traveller with a short document": Case(
        ["DOCUMENT_VALIDITY_SHORT", "UNKNOWN_TRAVELER"],
        traveller=replace(NEEDS_VISA, known=False, document_expiry=ON + timedelta(days=1)),
        visas=[],
    ),
    "short document of a minor": Case(
        ["DOCUMENT_VALIDITY_SHORT", "MINOR_UNACCOMPANIED"],
        traveller=Traveller("ZZZ", D("2012-01-01"), ON + timedelta(days=1), known=True),
        visa_id=vid(1),
    ),
    "national with an expired document": Case(
        ["DOCUMENT_EXPIRED"],
        traveller=replace(NATIONAL, document_expiry=D("2020-01-01")),
        visas=[],
    ),
    "unknown traveller needing a visa": Case(
        ["UNKNOWN_TRAVELER"], traveller=replace(NEEDS_VISA, known=False), visas=[]
    ),
    "unknown exempt traveller is fine": Case([], traveller=replace(EXEMPT, known=False), visas=[]),
    "unknown national is fine": Case([], traveller=replace(NATIONAL, known=False), visas=[]),
    "minor alone": Case(
        ["MINOR_UNACCOMPANIED"],
        traveller=replace(NEEDS_VISA, birth_date=D("2010-01-01")),
        visa_id=vid(1),
    ),
    "minor accompanied": Case(
        [],
        traveller=replace(NEEDS_VISA, birth_date=D("2010-01-01")),
        accompanied=True,
        visa_id=vid(1),
    ),
    "national minor alone": Case(
        ["MINOR_UNACCOMPANIED"], traveller=replace(NATIONAL, birth_date=D("2015-03-03")), visas=[]
    ),
    "unknown birth date is no minor": Case(
        [], traveller=replace(NEEDS_VISA, birth_date=None), visa_id=vid(1)
    ),
    "no visa at all": Case(["VISA_REQUIRED"], visas=[]),
    "visa not yet valid": Case(["VISA_REQUIRED"], visas=[visa(valid_from="2026-07-01")]),
    "visa expired": Case(["VISA_REQUIRED"], visas=[visa(valid_until="2026-06-14", days=30)]),
    "visa valid until the day itself": Case(
        [], visas=[visa(valid_until="2026-06-15")], visa_id=vid(1)
    ),
    "airport transit visa does not allow entry": Case(
        ["VISA_REQUIRED"], visas=[visa(visa_type="A", days=5)]
    ),
    "only visa revoked": Case(["VISA_REVOKED"], visas=[visa(status="revoked")]),
    "revoked visa and a valid one": Case(
        [], visas=[visa(1, status="revoked"), visa(2)], visa_id=vid(2)
    ),
    "revoked visa and an expired one": Case(
        ["VISA_REVOKED"],
        visas=[visa(1, status="revoked"), visa(2, valid_until="2026-02-01", days=30)],
    ),
    "revoked visa not valid on the date is no matter": Case(
        ["VISA_REQUIRED"], visas=[visa(status="revoked", valid_until="2026-03-01", days=30)]
    ),
    "single entry used": Case(
        ["VISA_ENTRIES_EXHAUSTED"],
        visas=[visa(entries="1")],
        history=trip("2026-02-01", "2026-02-05", vid(1)),
        visa_id=vid(1),
    ),
    "single entry unused": Case([], visas=[visa(entries="1")], visa_id=vid(1)),
    "second of two entries": Case(
        [],
        visas=[visa(entries="2")],
        history=trip("2026-02-01", "2026-02-05", vid(1)),
        visa_id=vid(1),
    ),
    "third of two entries": Case(
        ["VISA_ENTRIES_EXHAUSTED"],
        visas=[visa(entries="2")],
        history=trip("2026-02-01", "2026-02-05", vid(1)) + trip("2026-03-01", "2026-03-02", vid(1)),
        visa_id=vid(1),
    ),
    "entries on another visa do not count": Case(
        [],
        visas=[visa(entries="1")],
        history=trip("2026-02-01", "2026-02-05", vid(9)),
        visa_id=vid(1),
    ),
    "multiple entries never run out": Case(
        [],
        visas=[visa(entries="MULT", days=90)],
        history=[
            m for d in range(1, 29) for m in trip(f"2026-02-{d:02d}", f"2026-02-{d:02d}", vid(1))
        ],
        visa_id=vid(1),
    ),
    "exhausted visa and one with entries left": Case(
        [],
        visas=[
            visa(1, entries="1", valid_until="2026-12-31"),
            visa(2, entries="2", valid_until="2026-07-31"),
        ],
        history=trip("2026-02-01", "2026-02-05", vid(1)),
        visa_id=vid(2),
    ),
    "90 days used in the window": Case(
        ["STAY_LIMIT_EXCEEDED"],
        traveller=EXEMPT,
        visas=[],
        history=trip("2026-03-01", "2026-05-29"),  # 90 days, all within 180 of 15 June
    ),
    "89 days used leaves the entry day": Case(
        [], traveller=EXEMPT, visas=[], history=trip("2026-03-01", "2026-05-28")
    ),
    "old days have left the window": Case(
        [], traveller=EXEMPT, visas=[], history=trip("2025-09-01", "2025-11-29")
    ),
    "visa duration used up": Case(
        ["STAY_LIMIT_EXCEEDED"],
        visas=[visa(days=10)],
        history=trip("2026-02-01", "2026-02-10", vid(1)),  # 10 days on the visa
        visa_id=vid(1),
    ),
    "visa duration with a day left": Case(
        [], visas=[visa(days=10)], history=trip("2026-02-01", "2026-02-09", vid(1)), visa_id=vid(1)
    ),
    "national skips the stay rules": Case(
        [], traveller=NATIONAL, visas=[], history=trip("2026-01-01", "2026-06-01")
    ),
    "long-stay visa is not bound by 90/180": Case(
        [],
        visas=[visa(visa_type="D", valid_from="2026-01-01", valid_until="2026-12-31", days=365)],
        history=trip("2026-01-01", "2026-05-31", vid(1)),
        visa_id=vid(1),
    ),
    "long-stay visa duration used up": Case(
        ["STAY_LIMIT_EXCEEDED"],
        visas=[visa(visa_type="D", days=120)],
        history=trip("2026-01-10", "2026-05-09", vid(1)),  # 120 days
        visa_id=vid(1),
    ),
    "exempt with a long-stay visa": Case(
        [],
        traveller=EXEMPT,
        visas=[visa(visa_type="D", days=365)],
        history=trip("2026-01-01", "2026-05-31", vid(1)),
        visa_id=vid(1),
    ),
    "exempt ignores short-stay visas": Case(
        [], traveller=EXEMPT, visas=[visa(status="revoked")], visa_id=None
    ),
    "everything at once": Case(
        ["DOCUMENT_EXPIRED", "MINOR_UNACCOMPANIED", "VISA_REQUIRED", "STAY_LIMIT_EXCEEDED"],
        traveller=Traveller("ZZZ", D("2012-01-01"), D("2026-01-01"), known=True),
        visas=[],
        history=trip("2026-01-20", "2026-05-20"),
    ),
}


class TestEvaluateEntry:
    @pytest.mark.parametrize("case", ENTRY_CASES.values(), ids=ENTRY_CASES.keys())
    def test_codes(self, case: Case) -> None:
        result = entry(
            case.traveller, case.visas, case.history, case.on, accompanied=case.accompanied
        )
        assert result.codes == case.codes
        assert result.visa_id == case.visa_id
        assert result.direction == "entry"

    def test_grounds_follow_the_design_table(self) -> None:
        result = ENTRY_CASES["everything at once"]
        reasons = entry(result.traveller, result.visas, result.history).reasons
        assert {r.code: r.grounds_for_refusal for r in reasons} == {
            "DOCUMENT_EXPIRED": True,
            "MINOR_UNACCOMPANIED": False,
            "VISA_REQUIRED": True,
            "STAY_LIMIT_EXCEEDED": True,
        }
        assert entry(replace(NEEDS_VISA, known=False)).reasons[0].grounds_for_refusal is False
        revoked = entry(visas=[visa(status="revoked")]).reasons[0]
        assert revoked.as_dict() == {
            "code": "VISA_REVOKED",
            "detail": revoked.detail,
            "grounds_for_refusal": True,
        }

    def test_both_stay_limits_make_one_reason(self) -> None:
        result = entry(visas=[visa(days=30)], history=trip("2026-03-01", "2026-05-29", vid(1)))
        assert result.codes == ["STAY_LIMIT_EXCEEDED"]
        assert "90 days allowed" in result.reasons[0].detail
        assert "30 days of stay" in result.reasons[0].detail

    def test_the_visa_with_the_latest_validity_is_chosen(self) -> None:
        visas = [
            visa(1, valid_until="2026-08-01"),
            visa(2, valid_until="2026-10-01"),
            visa(3, valid_until="2026-07-01"),
        ]
        assert entry(visas=visas).visa_id == vid(2)

    def test_a_visa_with_days_left_is_preferred(self) -> None:
        visas = [
            visa(1, days=5, valid_until="2026-12-31"),
            visa(2, days=30, valid_until="2026-09-30"),
        ]
        history = trip("2026-02-01", "2026-02-05", vid(1))  # visa 1's five days used
        result = entry(visas=visas, history=history)
        assert (result.codes, result.visa_id) == ([], vid(2))

    def test_the_choice_does_not_depend_on_order(self) -> None:
        visas = [visa(n, valid_until="2026-09-30") for n in (5, 3, 8)]
        assert entry(visas=visas).visa_id == entry(visas=visas[::-1]).visa_id == vid(8)

    def test_an_unrecorded_exit_counts_as_presence(self) -> None:
        # Entered 1 March, never seen leaving: present ever since, so 107 days by 15 June.
        result = entry(traveller=EXEMPT, history=trip("2026-03-01", None))
        assert result.codes == ["STAY_LIMIT_EXCEEDED"]
        assert result.figures["unclosed_entry"] == "2026-03-01"

    def test_later_movements_are_ignored(self) -> None:
        history = trip("2026-06-20", "2026-12-01")
        assert entry(traveller=EXEMPT, history=history).codes == []

    def test_a_same_day_return_counts_the_day_once(self) -> None:
        # Left this morning and back in the afternoon: today is counted once.
        history = trip("2026-03-19", "2026-06-15")  # 89 days
        assert entry(traveller=EXEMPT, history=history).codes == []
        history = trip("2026-03-18", "2026-06-15")  # 90 days including today
        assert entry(traveller=EXEMPT, history=history).codes == []
        history = trip("2026-03-17", "2026-06-14")  # 90 days before today
        assert entry(traveller=EXEMPT, history=history).codes == ["STAY_LIMIT_EXCEEDED"]

    def test_days_on_a_visa_count_over_every_stay_on_it(self) -> None:
        history = (
            trip("2026-01-10", "2026-01-14", vid(1))  # 5
            + trip("2026-02-01", "2026-02-03", vid(2))  # not on visa 1
            + trip("2026-03-01", "2026-03-04", vid(1))  # 4
        )
        result = entry(visas=[visa(1, days=10)], history=history)
        figures = result.figures["visa"]
        assert isinstance(figures, dict)
        assert figures["days_used_before"] == 9
        assert figures["duration_until"] == "2026-06-15"
        assert result.figures["authorised_until"] == "2026-06-15"
        assert entry(visas=[visa(1, days=9)], history=history).codes == ["STAY_LIMIT_EXCEEDED"]

    def test_a_datetime_is_refused(self) -> None:
        with pytest.raises(TypeError, match="calendar date"):
            entry(on=datetime(2026, 6, 15, 12, 0))


class TestFigures:
    def test_entry_figures(self) -> None:
        history = trip("2026-03-01", "2026-03-10", vid(1))
        result = entry(visas=[visa(entries="2", days=30)], history=history)
        assert result.figures == {
            "rule_set": "2026.1",
            "direction": "entry",
            "on": "2026-06-15",
            "regime": "short_stay",
            "visa_required": True,
            "document_expiry": None,
            "min_document_validity_days": 90,
            "minor": False,
            "accompanied": False,
            "visa": {
                "visa_id": str(vid(1)),
                "visa_type": "C",
                "status": "issued",
                "valid_from": "2026-01-01",
                "valid_until": "2026-12-31",
                "entries": "2",
                "entries_used": 1,
                "duration_of_stay_days": 30,
                "days_used_before": 10,
                "duration_until": "2026-07-04",
            },
            "visas_valid": [str(vid(1))],
            "entry": "2026-06-15",
            "unclosed_entry": None,
            "max_stay_days": 90,
            "window_days": 180,
            "window_start": "2025-12-18",
            "days_used": 11,
            "days_remaining": 79,
            "latest_exit": "2026-09-12",
            "stays": [["2026-03-01", "2026-03-10"], ["2026-06-15", None]],
            "authorised_until": "2026-07-04",
            "overstay_days": 0,
        }
        json.dumps(result.figures)

    def test_national_figures_say_so(self) -> None:
        figures = entry(traveller=NATIONAL).figures
        assert (figures["regime"], figures["visa_required"], figures["days_used"]) == (
            "national",
            False,
            None,
        )

    def test_unknown_traveller_figures(self) -> None:
        figures = entry(traveller=replace(NEEDS_VISA, known=False)).figures
        assert (figures["regime"], figures["visa"], figures["authorised_until"]) == (
            "not_evaluated",
            None,
            None,
        )

    def test_figures_hold_no_personal_data(self) -> None:
        traveller = Traveller("ZZZ", D("1977-11-23"), D("2030-01-01"), known=True)
        text = json.dumps(entry(traveller, [visa()]).figures)
        assert "ZZZ" not in text
        assert "1977" not in text

    @pytest.mark.parametrize(
        "result",
        [
            pytest.param(entry(NATIONAL), id="national entry"),
            pytest.param(entry(replace(NEEDS_VISA, known=False)), id="unknown traveller"),
            pytest.param(entry(visas=[visa()]), id="entry on a visa"),
            pytest.param(exit_(NATIONAL), id="national exit"),
            pytest.param(exit_(EXEMPT), id="exit without entry"),
            pytest.param(exit_(EXEMPT, history=trip("2026-06-01", None)), id="exit"),
        ],
    )
    def test_figures_always_hold_the_same_keys(self, result: rules.Evaluation) -> None:
        assert set(result.figures) == set(entry(visas=[visa()]).figures)
        assert result.figures["min_document_validity_days"] == 90

    def test_policy_figures_come_from_the_policy(self) -> None:
        policy = POLICY.model_copy(
            update={"rule_set": "t-1", "max_stay_days": 30, "window_days": 60}
        )
        result = entry(EXEMPT, history=trip("2026-05-01", "2026-05-30"), policy=policy)
        assert result.codes == ["STAY_LIMIT_EXCEEDED"]
        assert (result.figures["rule_set"], result.figures["max_stay_days"]) == ("t-1", 30)


class TestDocumentValidity:
    def test_the_reason_names_the_dates_and_the_days(self) -> None:
        traveller = replace(NEEDS_VISA, document_expiry=D("2026-08-01"))
        reason = entry(traveller, [visa()]).reasons[0]
        assert reason.as_dict() == {
            "code": "DOCUMENT_VALIDITY_SHORT",
            "detail": "the document expires on 2026-08-01, less than 90 days after the entry "
            "on 2026-06-15",
            "grounds_for_refusal": True,
        }

    @pytest.mark.parametrize(
        ("days", "expiry_after", "codes"),
        [
            pytest.param(0, 0, [], id="0 days: expiring on the day passes"),
            pytest.param(0, -1, ["DOCUMENT_EXPIRED"], id="0 days: expired the day before"),
            pytest.param(1, 0, ["DOCUMENT_VALIDITY_SHORT"], id="1 day: expiring on the day"),
            pytest.param(1, 1, [], id="1 day: expiring the next day"),
            pytest.param(180, 179, ["DOCUMENT_VALIDITY_SHORT"], id="180 days: a day short"),
            pytest.param(180, 180, [], id="180 days: enough"),
            pytest.param(10**9, 36500, ["DOCUMENT_VALIDITY_SHORT"], id="beyond the calendar"),
        ],
    )
    def test_the_days_come_from_the_policy(
        self, days: int, expiry_after: int, codes: list[str]
    ) -> None:
        policy = POLICY.model_copy(update={"min_document_validity_days": days})
        traveller = replace(EXEMPT, document_expiry=ON + timedelta(days=expiry_after))
        result = entry(traveller, policy=policy)
        assert result.codes == codes
        assert result.figures["min_document_validity_days"] == days

    def test_an_expired_document_is_not_also_short(self) -> None:
        traveller = replace(EXEMPT, document_expiry=ON - timedelta(days=400))
        assert entry(traveller).codes == ["DOCUMENT_EXPIRED"]


class TestReasonTables:
    def test_every_code_has_its_grounds(self) -> None:
        assert set(rules.GROUNDS_FOR_REFUSAL) == set(get_args(rules.ReasonCode))

    def test_the_second_stage_codes_follow_design_section_10(self) -> None:
        assert {
            code: rules.GROUNDS_FOR_REFUSAL[code]
            for code in (
                "DOCUMENT_VALIDITY_SHORT",
                "DOCUMENT_CHANGED",
                "DOCUMENT_ALERT",
                "ENTRY_BAN",
                "WATCHLIST_HIT",
                "NAME_ALERT",
                "SEE_OFFICER",
            )
        } == {
            "DOCUMENT_VALIDITY_SHORT": True,
            "DOCUMENT_CHANGED": False,
            "DOCUMENT_ALERT": True,
            "ENTRY_BAN": True,
            "WATCHLIST_HIT": False,
            "NAME_ALERT": False,
            "SEE_OFFICER": False,
        }
        assert rules.Reason.of("SEE_OFFICER", "see an officer").grounds_for_refusal is False

    def test_refusal_grounds_are_the_ten_letters_of_annex_v_part_b(self) -> None:
        assert list(rules.REFUSAL_GROUNDS) == list("ABCDEFGHIJ")
        assert all(
            meaning and meaning == meaning.strip() for meaning in rules.REFUSAL_GROUNDS.values()
        )
        assert rules.REFUSAL_GROUNDS["A"] == "no valid travel document"
        assert "90 days during a 180-day period" in rules.REFUSAL_GROUNDS["F"]
        assert "alert" in rules.REFUSAL_GROUNDS["H"]
        assert rules.REFUSAL_GROUNDS["J"] == "no valid travel authorisation"
        assert "REFUSAL_GROUNDS" in rules.__all__


class TestEvaluateExit:
    @pytest.mark.parametrize(
        ("traveller", "visas", "history", "codes", "overstay"),
        [
            pytest.param(EXEMPT, [], trip("2026-05-01", None), [], 0, id="within the allowance"),
            pytest.param(EXEMPT, [], [], ["NO_ENTRY_RECORD"], None, id="never entered"),
            pytest.param(
                EXEMPT,
                [],
                trip("2026-05-01", "2026-05-10"),
                ["NO_ENTRY_RECORD"],
                None,
                id="already left",
            ),
            pytest.param(NATIONAL, [], [], [], None, id="national without entry record"),
            pytest.param(NATIONAL, [], trip("2025-01-01", None), [], None, id="national long away"),
            pytest.param(EXEMPT, [], trip("2026-03-01", None), ["OVERSTAY"], 17, id="past 90 days"),
            pytest.param(EXEMPT, [], trip("2026-03-18", None), [], 0, id="exactly 90 days"),
            pytest.param(
                NEEDS_VISA,
                [visa(valid_until="2026-06-10", days=90)],
                trip("2026-06-01", None, vid(1)),
                ["OVERSTAY"],
                5,
                id="past the visa's validity",
            ),
            pytest.param(
                NEEDS_VISA,
                [visa(days=10)],
                trip("2026-06-01", None, vid(1)),
                ["OVERSTAY"],
                5,
                id="past the visa's duration",
            ),
            pytest.param(
                NEEDS_VISA,
                [visa(visa_type="D", days=200, valid_until="2026-12-31")],
                trip("2026-01-01", None, vid(1)),
                [],
                0,
                id="long stay within its visa",
            ),
            pytest.param(
                NEEDS_VISA,
                [visa(status="revoked", days=30)],
                trip("2026-06-01", None, vid(1)),
                [],
                0,
                id="visa revoked during the stay keeps its limits",
            ),
            pytest.param(
                NEEDS_VISA,
                [],
                trip("2026-06-10", None),
                [],
                0,
                id="admitted by an officer without a visa",
            ),
        ],
    )
    def test_codes(
        self,
        traveller: Traveller,
        visas: list[Visa],
        history: list[Movement],
        codes: list[str],
        overstay: int | None,
    ) -> None:
        result = exit_(traveller, visas, history)
        assert result.codes == codes
        assert result.figures["overstay_days"] == overstay
        assert all(r.grounds_for_refusal is False for r in result.reasons)
        assert {"OVERSTAY"} == rules.RECORDED_ONLY

    def test_overstay_figures_name_the_limits(self) -> None:
        result = exit_(
            NEEDS_VISA,
            [visa(valid_until="2026-06-10", days=5)],
            trip("2026-06-01", None, vid(1)),
        )
        assert result.visa_id == vid(1)
        figures = result.figures
        assert (figures["entry"], figures["authorised_until"], figures["overstay_days"]) == (
            "2026-06-01",
            "2026-06-05",
            10,
        )
        assert figures["stays"] == [["2026-06-01", "2026-06-15"]]
        assert "visa validity, visa duration" in result.reasons[0].detail

    def test_document_and_minor_rules_apply_at_exit(self) -> None:
        traveller = Traveller("GBR", D("2015-01-01"), D("2026-01-01"), known=True)
        history = trip("2026-06-01", None)
        assert exit_(traveller, [], history).codes == ["DOCUMENT_EXPIRED", "MINOR_UNACCOMPANIED"]
        assert exit_(traveller, [], history, accompanied=True).codes == ["DOCUMENT_EXPIRED"]

    def test_a_short_document_is_no_matter_at_exit(self) -> None:
        traveller = replace(EXEMPT, document_expiry=ON + timedelta(days=1))
        history = trip("2026-06-01", None)
        assert exit_(traveller, [], history).codes == []
        assert entry(traveller).codes == ["DOCUMENT_VALIDITY_SHORT"]

    def test_exit_after_an_unrecorded_exit(self) -> None:
        # Two entries in a row: the first stay is counted up to the second entry.
        history = trip("2026-01-01", None) + trip("2026-05-01", None)
        result = exit_(EXEMPT, [], history)
        assert result.figures["entry"] == "2026-05-01"
        assert result.codes == ["OVERSTAY"]


class TestAuthorisedStay:
    def test_not_in_the_territory(self) -> None:
        assert rules.authorised_stay(POLICY, [], trip("2026-01-01", "2026-01-02"), ON) is None

    def test_an_open_stay_and_its_limits(self) -> None:
        stay = rules.authorised_stay(POLICY, [visa(days=20)], trip("2026-06-01", None, vid(1)), ON)
        assert stay is not None
        assert (stay.regime, stay.visa_id, stay.visa_duration_until) == (
            "short_stay",
            vid(1),
            D("2026-06-20"),
        )
        assert stay.latest_exit == D("2026-08-29")
        assert stay.authorised_until == D("2026-06-20")
        assert stay.overstay_days(D("2026-06-20")) == 0
        assert stay.overstay_days(D("2026-06-22")) == 2
        assert stay.exceeded(D("2026-06-22")) == ["visa_duration"]

    def test_no_limit_when_the_allowance_fills_the_window(self) -> None:
        policy = POLICY.model_copy(update={"max_stay_days": 180})
        stay = rules.authorised_stay(policy, [], trip("2026-01-01", None), ON)
        assert stay is not None
        assert stay.authorised_until is None
        assert stay.overstay_days(D("2030-01-01")) == 0


class TestStays:
    def test_pairs_entries_and_exits(self) -> None:
        stray_exit = Movement("exit", D("2026-02-01"))
        history = [*trip("2026-01-01", "2026-01-05"), stray_exit, *trip("2026-03-01", None)]
        assert rules.stays(history, ON) == [
            (D("2026-01-01"), D("2026-01-05")),
            (D("2026-03-01"), None),
        ]

    def test_same_day_order_is_kept(self) -> None:
        jan = [Movement("entry", D("2026-01-01"))]
        out_then_in = [Movement("exit", D("2026-01-03")), Movement("entry", D("2026-01-03"))]
        assert rules.stays(jan + out_then_in, ON) == [
            (D("2026-01-01"), D("2026-01-03")),
            (D("2026-01-03"), None),
        ]
        # The other way round, the traveller came in again before leaving the same day.
        assert rules.stays(jan + out_then_in[::-1], ON) == [
            (D("2026-01-01"), D("2026-01-03")),
            (D("2026-01-03"), D("2026-01-03")),
        ]
        # Only the order within a day is taken from the caller; days are sorted.
        assert rules.stays(out_then_in + jan, ON) == rules.stays(jan + out_then_in, ON)

    def test_bad_movements_are_refused(self) -> None:
        with pytest.raises(ValueError, match="direction"):
            Movement("in", ON)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Movement("entry", datetime(2026, 1, 1))


class TestAge:
    @pytest.mark.parametrize(
        ("birth", "on", "age"),
        [
            ("2008-06-15", "2026-06-15", 18),
            ("2008-06-16", "2026-06-15", 17),
            ("2008-06-14", "2026-06-15", 18),
            ("2008-02-29", "2026-02-28", 17),  # common year: not yet
            ("2008-02-29", "2026-03-01", 18),  # ... the day after 28 February
            ("2008-02-29", "2028-02-29", 20),  # leap year: on the day
            ("2008-02-29", "2028-02-28", 19),
            ("2008-12-31", "2026-12-31", 18),
            ("2009-01-01", "2026-12-31", 17),
        ],
    )
    def test_age_on(self, birth: str, on: str, age: int) -> None:
        assert rules.age_on(D(birth), D(on)) == age

    @pytest.mark.parametrize(
        ("birth", "codes"),
        [
            ("2008-06-15", []),
            ("2008-06-16", ["MINOR_UNACCOMPANIED"]),
            ("2008-02-29", []),
        ],
    )
    def test_minor_on_the_birthday(self, birth: str, codes: list[str]) -> None:
        traveller = Traveller("GBR", D(birth), None, known=True)
        assert entry(traveller).codes == codes

    def test_leap_day_birthday_in_a_common_year(self) -> None:
        traveller = Traveller("GBR", D("2008-02-29"), None, known=True)
        assert entry(traveller, on=D("2026-02-28")).codes == ["MINOR_UNACCOMPANIED"]
        assert entry(traveller, on=D("2026-03-01")).codes == []


class TestVisaFacts:
    def test_entries_allowed(self) -> None:
        assert [visa(entries=e).entries_allowed for e in ("1", "2", "MULT")] == [1, 2, None]

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"entries": "3"}, "entries must be"),
            ({"duration_of_stay_days": 0}, "duration_of_stay_days"),
            ({"valid_until": D("2025-12-31")}, "valid_until is before"),
        ],
    )
    def test_impossible_visas_are_refused(self, changes: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            replace(visa(), **changes)
