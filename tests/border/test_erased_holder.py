"""border/decision.py, pure: a crossing whose holder was erased while it waited for their
lock (DESIGN §14; the race itself is in tests/test_concurrency.py). Nobody holds the
document any more and nobody was enrolled from the crossing, so it is never admitted on
that alone: an officer sees the traveller."""

from datetime import date
from typing import Any, Final

import pytest

from border import decision
from border.decision import Facts
from tests.factories import td3
from visa.mrz import parse_mrz
from visa.policy import load_policy

POLICY: Final = load_policy()
DAY: Final = date(2026, 6, 1)


def erased(nationality: str = "USA", **overrides: Any) -> decision.Judgement:
    """The crossing judged as a document nobody holds, its holder erased meanwhile."""
    values: dict[str, Any] = {
        "direction": "entry",
        "day": DAY,
        "document": parse_mrz(td3(issuing_state=nationality, nationality=nationality)),
        "input_reasons": (),
        "holder_known": False,
        "distance": None,
        "threshold": 0.4,
        "candidates": 0,
        "alerts": (),
        "holder_erased": True,
    }
    return decision.judge(POLICY, Facts(**(values | overrides)))


class TestHolderErased:
    @pytest.mark.parametrize("nationality", ["USA", "UTO", "RUS"])
    def test_an_entry_is_referred_with_one_unknown_traveller(self, nationality: str) -> None:
        """Visa-exempt, national or visa national: one UNKNOWN_TRAVELER (not grounds), never
        an admit (a first sight would have enrolled them; this crossing enrolls nobody)."""
        judgement = erased(nationality)

        assert judgement.decision == "refer"
        assert [(r.code, r.grounds_for_refusal) for r in judgement.reasons] == [
            ("UNKNOWN_TRAVELER", False)
        ]
        assert "erased" in judgement.reasons[0].detail

    def test_an_exit_has_no_entry_to_close_either(self) -> None:
        judgement = erased(direction="exit")

        assert judgement.decision == "refer"
        assert [r.code for r in judgement.reasons] == ["UNKNOWN_TRAVELER", "NO_ENTRY_RECORD"]

    def test_a_face_matching_someone_else_is_a_document_change_too(self) -> None:
        judgement = erased(candidates=1)

        assert [r.code for r in judgement.reasons] == ["UNKNOWN_TRAVELER", "DOCUMENT_CHANGED"]

    def test_a_known_holder_is_never_read_as_erased(self) -> None:
        """The flag only speaks for a crossing that ended with nobody holding the document."""
        judgement = erased(holder_known=True, distance=0.2)

        assert (judgement.decision, judgement.reasons) == ("admit", [])

    def test_the_kiosk_sees_the_reason_as_it_is(self) -> None:
        """The traveller is the person erased: the kiosk may say their record is gone."""
        reasons = erased().reasons

        assert decision.for_kiosk(reasons) == reasons
