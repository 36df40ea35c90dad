from border import decision
from enrollment.capture import LowQuality, MultipleFaces, NoFace
from visa.rules import Reason


class TestDecide:
    def test_nothing_found_is_admit(self) -> None:
        assert decision.decide([]) == "admit"

    def test_an_overstay_alone_is_recorded_and_admitted(self) -> None:
        assert decision.decide([Reason.of("OVERSTAY", "3 days over")]) == "admit"

    def test_any_other_reason_refers_even_grounds_for_refusal(self) -> None:
        for code in ("FACE_MISMATCH", "VISA_REQUIRED", "ENTRY_WITHOUT_EXIT"):
            reasons = [Reason.of("OVERSTAY", "x"), Reason.of(code, "y")]
            assert decision.decide(reasons) == "refer"


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
