"""border/decision.py, pure: the reasons of a crossing from its facts (``judge``), what
each alert becomes (``alert_reasons``), what a kiosk may show (``for_kiosk``) and admit or
refer (``decide``). The default policy applies: host state UTO, visa-exempt GBR USA D, 90
days in 180, documents valid 90 days after entry."""

import dataclasses
from datetime import date, timedelta
from typing import Any, Final

import pytest

from border import decision
from border.decision import Alert, Facts
from enrollment.capture import LowQuality, MultipleFaces, NoFace
from tests.factories import td3
from visa.mrz import MRZ, parse_mrz
from visa.policy import load_policy
from visa.rules import GROUNDS_FOR_REFUSAL, Movement, Reason

POLICY: Final = load_policy()
DAY: Final = date(2026, 6, 1)
THRESHOLD: Final = 0.6
CATEGORIES: Final = (
    "lost_stolen_document",
    "invalidated_document",
    "entry_ban",
    "wanted",
    "missing_person",
    "watch",
)
KINDS: Final = ("document", "person", "face", "name")


def document(nationality: str = "USA", expiry: date = date(2032, 4, 15)) -> MRZ:
    return parse_mrz(td3(issuing_state=nationality, nationality=nationality, expiry_date=expiry))


def facts(**overrides: Any) -> Facts:
    """A returning USA traveller at an entry whose face matches: nothing to report."""
    values: dict[str, Any] = {
        "direction": "entry",
        "day": DAY,
        "document": document(),
        "input_reasons": (),
        "holder_known": True,
        "distance": 0.3,
        "threshold": THRESHOLD,
        "candidates": 0,
        "alerts": (),
    }
    return Facts(**(values | overrides))


def codes(reasons: list[Reason]) -> list[str]:
    return [r.code for r in reasons]


def judged(**overrides: Any) -> list[str]:
    return codes(decision.judge(POLICY, facts(**overrides)).reasons)


class TestDecide:
    def test_nothing_found_is_admit(self) -> None:
        assert decision.decide([]) == "admit"

    def test_an_overstay_alone_is_recorded_and_admitted(self) -> None:
        assert decision.decide([Reason.of("OVERSTAY", "3 days over")]) == "admit"

    def test_any_other_reason_refers_even_grounds_for_refusal(self) -> None:
        for code in ("FACE_MISMATCH", "VISA_REQUIRED", "ENTRY_WITHOUT_EXIT", "SEE_OFFICER"):
            reasons = [Reason.of("OVERSTAY", "x"), Reason.of(code, "y")]
            assert decision.decide(reasons) == "refer"

    def test_an_overstayers_exit_is_admitted_with_the_overstay_recorded(self) -> None:
        history = [Movement("entry", DAY - timedelta(days=100))]
        judgement = decision.judge(POLICY, facts(direction="exit", history=history))

        assert (judgement.decision, codes(judgement.reasons)) == ("admit", ["OVERSTAY"])
        assert judgement.grounds == []
        assert judgement.figures["overstay_days"] == 11


class TestJudge:
    def test_a_clean_entry_is_admitted_with_the_rule_set(self) -> None:
        judgement = decision.judge(POLICY, facts())
        assert (judgement.decision, judgement.reasons) == ("admit", [])
        assert judgement.figures["rule_set"] == POLICY.rule_set
        assert judgement.figures["direction"] == "entry"

    def test_without_a_document_only_the_input_reasons_count(self) -> None:
        bad = Reason.of("MRZ_INVALID", "document_number: check_digit_mismatch")
        judgement = decision.judge(POLICY, facts(document=None, input_reasons=[bad]))
        assert judgement.reasons == [bad]
        assert judgement.decision == "refer"
        assert judgement.figures == {"rule_set": POLICY.rule_set, "direction": "entry"}

    def test_reasons_come_in_a_fixed_order(self) -> None:
        face = Reason.of("FACE_QUALITY_LOW", "the live capture failed: blurred")
        judgement = decision.judge(
            POLICY,
            facts(
                document=document("KEN", expiry=DAY - timedelta(days=1)),
                input_reasons=[face],
                distance=0.7,
                alerts=[Alert("document", "lost_stolen_document")],
                history=[Movement("entry", DAY - timedelta(days=3))],
            ),
        )
        assert codes(judgement.reasons) == [
            "FACE_QUALITY_LOW",
            "FACE_MISMATCH",
            "DOCUMENT_ALERT",
            "DOCUMENT_EXPIRED",
            "VISA_REQUIRED",
            "ENTRY_WITHOUT_EXIT",
        ]
        assert codes(judgement.grounds) == ["DOCUMENT_ALERT", "DOCUMENT_EXPIRED", "VISA_REQUIRED"]
        assert judgement.decision == "refer"


class TestDocumentChanged:
    def test_a_face_matching_someone_on_a_document_nobody_holds_refers(self) -> None:
        judgement = decision.judge(
            POLICY, facts(document=document("KEN"), holder_known=False, candidates=2)
        )
        assert codes(judgement.reasons) == ["DOCUMENT_CHANGED"]
        (changed,) = judgement.reasons
        assert changed.grounds_for_refusal is False
        assert "2 enrolled person(s)" in changed.detail
        assert judgement.decision == "refer"

    def test_unknown_traveller_is_dropped_for_candidates_only(self) -> None:
        unknown = {"document": document("KEN"), "holder_known": False}
        assert judged(**unknown) == ["UNKNOWN_TRAVELER"]
        assert judged(**unknown, candidates=1) == ["DOCUMENT_CHANGED"]

    def test_no_entry_record_is_dropped_at_an_exit_for_candidates_only(self) -> None:
        unknown = {"direction": "exit", "holder_known": False}
        assert judged(**unknown) == ["NO_ENTRY_RECORD"]
        assert judged(**unknown, candidates=3) == ["DOCUMENT_CHANGED"]

    def test_the_other_rules_still_apply(self) -> None:
        expired = document("KEN", expiry=DAY - timedelta(days=10))
        assert judged(document=expired, holder_known=False, candidates=1) == [
            "DOCUMENT_CHANGED",
            "DOCUMENT_EXPIRED",
        ]

    def test_a_known_holder_or_no_candidate_is_no_change(self) -> None:
        assert judged(holder_known=True, candidates=2) == []
        assert judged(holder_known=False, candidates=0) == []  # USA: no visa, no reason


class TestFaceMismatch:
    def test_beyond_the_threshold_refers_without_grounds(self) -> None:
        judgement = decision.judge(POLICY, facts(distance=THRESHOLD + 0.001))
        assert codes(judgement.reasons) == ["FACE_MISMATCH"]
        assert judgement.reasons[0].grounds_for_refusal is False
        assert judgement.decision == "refer"

    @pytest.mark.parametrize("distance", [THRESHOLD, THRESHOLD - 0.2, None])
    def test_at_the_threshold_or_without_a_comparison_is_no_mismatch(
        self, distance: float | None
    ) -> None:
        assert judged(distance=distance) == []


MAPPING: Final = [
    ("document", "lost_stolen_document", "DOCUMENT_ALERT", True),
    ("document", "invalidated_document", "DOCUMENT_ALERT", True),
    ("document", "watch", "DOCUMENT_ALERT", False),
    ("document", "wanted", "DOCUMENT_ALERT", False),
    ("document", "missing_person", "DOCUMENT_ALERT", False),
    ("document", "entry_ban", "ENTRY_BAN", True),
    ("person", "entry_ban", "ENTRY_BAN", True),
    ("person", "wanted", "WATCHLIST_HIT", False),
    ("person", "missing_person", "WATCHLIST_HIT", False),
    ("person", "watch", "WATCHLIST_HIT", False),
    ("face", "entry_ban", "WATCHLIST_HIT", False),
    ("face", "wanted", "WATCHLIST_HIT", False),
    ("face", "watch", "WATCHLIST_HIT", False),
    ("name", "entry_ban", "NAME_ALERT", False),
    ("name", "wanted", "NAME_ALERT", False),
    ("name", "lost_stolen_document", "NAME_ALERT", False),
]


class TestAlertReasons:
    @pytest.mark.parametrize(("kind", "category", "code", "grounds"), MAPPING)
    def test_each_kind_and_category_maps_to_its_reason(
        self, kind: str, category: str, code: str, grounds: bool
    ) -> None:
        (reason,) = decision.alert_reasons([Alert(kind, category)])
        assert (reason.code, reason.grounds_for_refusal) == (code, grounds)
        assert reason.code in decision.ALERT_CODES

    @pytest.mark.parametrize(("kind", "category", "code", "grounds"), MAPPING)
    def test_a_crossing_with_the_alert_refers_with_its_reason(
        self, kind: str, category: str, code: str, grounds: bool
    ) -> None:
        judgement = decision.judge(POLICY, facts(alerts=[Alert(kind, category)]))
        assert codes(judgement.reasons) == [code]
        assert codes(judgement.grounds) == ([code] if grounds else [])
        assert judgement.decision == "refer"

    def test_identical_alerts_give_one_reason(self) -> None:
        alert = Alert("document", "lost_stolen_document")
        assert len(decision.alert_reasons([alert, alert, alert])) == 1
        assert judged(alerts=[alert, Alert("document", "lost_stolen_document")]) == [
            "DOCUMENT_ALERT"
        ]

    def test_one_reason_per_kind_and_category_in_the_order_the_alerts_came(self) -> None:
        alerts = [
            Alert("face", "wanted"),
            Alert("document", "invalidated_document"),
            Alert("person", "wanted"),  # the holder's own: a reason apart from the face's
            Alert("document", "invalidated_document"),  # the same alert twice: once
            Alert("name", "watch"),
            Alert("face", "wanted"),  # another face alert of the same category: once
        ]
        reasons = decision.alert_reasons(alerts)
        assert [(r.code, _category(r.detail)) for r in reasons] == [
            ("WATCHLIST_HIT", "wanted"),
            ("DOCUMENT_ALERT", "invalidated_document"),
            ("WATCHLIST_HIT", "wanted"),
            ("NAME_ALERT", "watch"),
        ]
        assert "live face" in reasons[0].detail
        assert "live face" not in reasons[2].detail

    def test_a_banned_document_and_a_banned_holder_are_two_reasons(self) -> None:
        reasons = decision.alert_reasons(
            [Alert("document", "entry_ban"), Alert("person", "entry_ban")]
        )
        assert [r.code for r in reasons] == ["ENTRY_BAN", "ENTRY_BAN"]
        assert ["document" in reasons[0].detail, "traveller" in reasons[1].detail] == [True, True]

    def test_no_alert_no_reason(self) -> None:
        assert decision.alert_reasons([]) == []

    def test_an_alert_carries_its_kind_and_category_and_nothing_else(self) -> None:
        assert [f.name for f in dataclasses.fields(Alert)] == ["kind", "category"]

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("category", CATEGORIES)
    def test_details_name_the_category_and_nothing_of_any_other(
        self, kind: str, category: str
    ) -> None:
        (reason,) = decision.alert_reasons([Alert(kind, category)])
        if reason.code != "ENTRY_BAN":  # its code says it all
            assert category in reason.detail
        assert _category(reason.detail) in (category, None)
        assert "note" not in reason.detail
        # The same kind and category always read the same: nothing else can show.
        (again,) = decision.alert_reasons([Alert(kind, category)])
        assert again == reason


def _category(detail: str) -> str | None:
    """The one category a detail names, None when it names none."""
    named = [c for c in CATEGORIES if c in detail]
    assert len(named) <= 1, detail
    return named[0] if named else None


class TestForKiosk:
    def test_every_alert_reason_becomes_one_see_officer_after_the_others(self) -> None:
        reasons = [
            Reason.of("FACE_MISMATCH", "the live face is 0.700 from the nearest"),
            *decision.alert_reasons([Alert("document", "lost_stolen_document")]),
            Reason.of("VISA_REQUIRED", "a visa is required and none is on record"),
            *decision.alert_reasons(
                [Alert("person", "entry_ban"), Alert("face", "wanted"), Alert("name", "watch")]
            ),
            Reason.of("STAY_LIMIT_EXCEEDED", "90 of the 90 days"),
        ]
        shown = decision.for_kiosk(reasons)

        assert shown == [
            reasons[0],
            reasons[2],
            reasons[6],
            Reason("SEE_OFFICER", "please see an officer", False),
        ]
        assert decision.decide(shown) == "refer"

    @pytest.mark.parametrize("code", sorted(decision.ALERT_CODES))
    def test_a_lone_alert_reason_of_any_code_is_hidden(self, code: str) -> None:
        alert = Reason(code, "the document is on an alert list (watch)", True)  # type: ignore[arg-type]
        shown = decision.for_kiosk([alert])
        assert codes(shown) == ["SEE_OFFICER"]
        assert shown[0].grounds_for_refusal is False
        assert all(c not in shown[0].detail for c in CATEGORIES)

    def test_reasons_without_an_alert_are_shown_as_they_are(self) -> None:
        reasons = [
            Reason.of("FACE_MISMATCH", "the live face is 0.700 from the nearest capture"),
            Reason.of("OVERSTAY", "3 days over"),
        ]
        assert decision.for_kiosk(reasons) == reasons
        assert decision.for_kiosk([]) == []

    def test_a_document_change_does_not_tell_the_traveller_their_face_is_on_file(
        self,
    ) -> None:
        judgement = decision.judge(POLICY, facts(candidates=2, holder_known=False, distance=None))
        changed = judgement.reasons[0]
        assert changed.code == "DOCUMENT_CHANGED"
        assert "matches 2 enrolled" in changed.detail
        shown = decision.for_kiosk(judgement.reasons)
        assert (shown[0].code, shown[0].grounds_for_refusal) == ("DOCUMENT_CHANGED", False)
        assert "enrolled" not in shown[0].detail
        assert "face" not in shown[0].detail

    def test_a_judged_crossing_with_alerts_shows_the_kiosk_no_category(self) -> None:
        alerts = [Alert(kind, category) for kind, category, _, _ in MAPPING]
        judgement = decision.judge(POLICY, facts(alerts=alerts, distance=0.9))
        shown = decision.for_kiosk(judgement.reasons)
        assert codes(shown) == ["FACE_MISMATCH", "SEE_OFFICER"]
        for reason in shown:
            assert _category(reason.detail) is None


class TestRulesPassThrough:
    def test_document_validity_short_is_grounds(self) -> None:
        short = document("USA", expiry=DAY + timedelta(days=POLICY.min_document_validity_days - 1))
        judgement = decision.judge(POLICY, facts(document=short))
        assert codes(judgement.reasons) == ["DOCUMENT_VALIDITY_SHORT"]
        assert (
            judgement.reasons[0].grounds_for_refusal
            is GROUNDS_FOR_REFUSAL["DOCUMENT_VALIDITY_SHORT"]
        )
        assert codes(judgement.grounds) == ["DOCUMENT_VALIDITY_SHORT"]
        assert judgement.decision == "refer"

    def test_document_validity_is_not_asked_of_nationals_at_exit_or_when_long_enough(
        self,
    ) -> None:
        short = DAY + timedelta(days=10)
        enough = DAY + timedelta(days=POLICY.min_document_validity_days)
        assert judged(document=document("UTO", expiry=short)) == []
        assert judged(document=document("USA", expiry=enough)) == []
        exit_history = [Movement("entry", DAY - timedelta(days=5))]
        assert (
            judged(direction="exit", document=document("USA", expiry=short), history=exit_history)
            == []
        )


class TestEntryWithoutExit:
    def test_an_entry_while_the_last_entry_is_open_refers(self) -> None:
        history = [Movement("entry", DAY - timedelta(days=30))]
        judgement = decision.judge(POLICY, facts(history=history))
        assert codes(judgement.reasons) == ["ENTRY_WITHOUT_EXIT"]
        reason = judgement.reasons[0]
        assert (DAY - timedelta(days=30)).isoformat() in reason.detail
        assert reason.grounds_for_refusal is False
        assert judgement.decision == "refer"

    def test_nationals_too(self) -> None:
        history = [Movement("entry", DAY - timedelta(days=2))]
        assert judged(document=document("UTO"), history=history) == ["ENTRY_WITHOUT_EXIT"]

    @pytest.mark.parametrize(
        "history",
        [
            [],
            [
                Movement("entry", DAY - timedelta(days=30)),
                Movement("exit", DAY - timedelta(days=2)),
            ],
            [Movement("exit", DAY - timedelta(days=2)), Movement("entry", DAY + timedelta(days=3))],
        ],
        ids=["no-history", "closed", "open-entry-after-the-day"],
    )
    def test_no_open_entry_before_the_day_is_nothing(self, history: list[Movement]) -> None:
        assert judged(history=history) == []

    def test_an_exit_is_not_an_entry_without_exit(self) -> None:
        history = [Movement("entry", DAY - timedelta(days=30))]
        assert judged(direction="exit", history=history) == []


class TestFaceReasons:
    def test_each_face_failure_maps_to_its_code(self) -> None:
        failed = [{"measure": "blurred", "value": 1.0, "threshold": 4.0}]
        assert decision.face_reason(NoFace("x")).code == "FACE_NOT_DETECTED"
        assert decision.face_reason(MultipleFaces("x")).code == "FACE_QUALITY_LOW"
        low = decision.face_reason(LowQuality("x", failed=failed))
        assert (low.code, low.grounds_for_refusal) == ("FACE_QUALITY_LOW", False)
        assert "blurred" in low.detail

    def test_mismatch_states_distance_and_limit(self) -> None:
        reason = decision.mismatch(0.61234, 0.4)
        assert reason.code == "FACE_MISMATCH"
        assert "0.612" in reason.detail
        assert "0.40" in reason.detail
