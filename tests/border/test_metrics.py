"""The domain series of /metrics (DESIGN §15): crossings by decision and border point,
reasons by code, enrollments by outcome, gallery sizes, pool use, the process. That they
sum across worker processes is checked on a real `border serve --workers 2`
(tests/test_faults.py)."""

import re

from fastapi.testclient import TestClient

from core.metrics import border_point_label
from tests.border.crossing_helpers import AIRPORT, LAND, cross, traveller
from tests.factories import enroll, photo, td3

Headers = dict[str, dict[str, str]]


def figures(client: TestClient) -> dict[str, float]:
    """Every sample of /metrics by its name and labels, as written."""
    text = client.get("/metrics").text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


class TestCrossings:
    def test_counted_by_decision_reason_and_the_policys_border_points(
        self, client: TestClient, headers: Headers
    ) -> None:
        # UTO-AIR-1 is among the shipped policy's border points; UTO-LAND-2 is not.
        officer = headers["officer"]
        first = cross(client, headers["kiosk"], mrz=traveller(number="US0000001"))
        cross(client, officer, mrz=traveller(number="US0000001"), border_point=LAND)
        refused = cross(client, officer, mrz=traveller("ZZZ", "ZZ0000001"), border_point=LAND)
        seen = figures(client)
        airport = f'border_point="{AIRPORT}",decision="{first["decision"]}"'
        assert seen[f"border_crossings_total{{{airport}}}"] == 1
        others = sum(
            value
            for name, value in seen.items()
            if name.startswith("border_crossings_total{") and 'border_point="other"' in name
        )
        assert others == 2
        assert not any(LAND in name for name in seen)
        for code in {r["code"] for r in refused["reasons"]}:
            assert seen[f'border_crossing_reasons_total{{code="{code}"}}'] >= 1

    def test_the_label_is_a_named_point_or_other(self) -> None:
        assert border_point_label("UTO-AIR-1", ("UTO-AIR-1",)) == "UTO-AIR-1"
        assert border_point_label("made-up-by-a-caller", ("UTO-AIR-1",)) == "other"


class TestEnrollments:
    def test_counted_by_outcome_with_the_gallery_size(
        self, client: TestClient, headers: Headers
    ) -> None:
        consular = headers["consular"]
        enroll(client, consular, "obama.jpg", td3(number="P1000001"))
        enroll(client, consular, "biden.jpg", td3(number="P1000002", surname="BIDEN"))
        again = client.post(
            "/v1/persons",
            headers=consular,
            files={"image": ("capture.jpg", photo("obama2.jpg"), "image/jpeg")},
            data={"mrz": td3(number="P1000003")},
        )
        assert again.status_code == 409
        seen = figures(client)
        assert seen['border_enrollments_total{outcome="enrolled"}'] == 2
        assert seen[f'border_enrollments_total{{outcome="{again.json()["error"]}"}}'] == 1
        assert seen['border_gallery_templates{gallery="enrolled"}'] == 2
        assert seen['border_gallery_templates{gallery="watchlist"}'] == 0

    def test_a_first_visit_enrolled_at_the_border_is_counted_as_such(
        self, client: TestClient, headers: Headers
    ) -> None:
        body = cross(client, headers["kiosk"], mrz=traveller(number="US0000009"))
        assert body["person_id"] is not None
        seen = figures(client)
        assert seen['border_enrollments_total{outcome="enrolled_at_border"}'] == 1
        assert seen['border_gallery_templates{gallery="enrolled"}'] == 1


class TestResources:
    def test_pool_use_and_the_process(self, client: TestClient) -> None:
        seen = figures(client)
        states = {
            m.group(1): value
            for name, value in seen.items()
            if (m := re.fullmatch(r'border_db_pool_connections\{state="(\w+)"\}', name))
        }
        assert set(states) == {"open", "idle", "in_use", "max"}
        assert states["open"] == states["idle"] + states["in_use"]
        assert 1 <= states["open"] <= states["max"]
        assert seen["border_db_pool_waiting"] == 0
        assert seen["process_resident_memory_bytes"] > 10_000_000
        assert seen["process_open_fds"] > 0
