import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from border.cli import app
from tests.conftest import FACES


class TestDemo:
    def test_a_day_at_the_border_post(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(
            app, ["demo", "--data-dir", str(tmp_path / "demo"), "--faces", str(FACES)]
        )
        assert result.exit_code == 0, result.output
        rows = {
            line.split("  ")[1].strip(): line
            for line in result.stdout.splitlines()
            if line.startswith("20") and "  " in line
        }
        assert "admit" in rows["Barack, first visit"]
        assert "refer" in rows["impostor on Joe's passport"]
        assert "FACE_MISMATCH" in rows["impostor on Joe's passport"]
        assert "CHIP_FACE_MISMATCH" in rows["impostor on Joe's passport"]
        assert "passive authentication passed" in result.stdout
        assert "admit" in rows["Joe"]
        assert "MINOR_UNACCOMPANIED" in rows["Lin, alone, no visa"]
        assert "VISA_REQUIRED" in rows["Lin, alone, no visa"]
        # The kiosk's screen shows no alert: the watchlist hit is SEE_OFFICER there.
        assert "SEE_OFFICER" in rows["Joe, leaving"]
        assert "WATCHLIST_HIT" not in rows["Joe, leaving"]
        assert "DOCUMENT_CHANGED" in rows["Barack, new passport"]
        assert "the officer sees DOCUMENT_CHANGED, DOCUMENT_ALERT" in result.stdout
        assert "refuse on grounds A,B" in result.stdout
        assert "admit and links the new passport" in result.stdout
        assert "2 crossings across both passports; the exit counts 101 days used" in (result.stdout)
        assert "officer resolves the entry" in result.stdout
        # 100 days back is beyond a kiosk's back-dating window: the officer records it.
        assert "officer records Barack's entry of 100 days ago" in result.stdout
        # Every scene is replayed after its time, so every crossing is on the late list.
        assert f"the officer's late list: {len(rows)} crossings" in result.stdout
        assert "day(s) past" in result.stdout
        assert "audit chain holds" in result.stdout

    def test_missing_photos_say_where_to_look(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(app, ["demo", "--faces", str(tmp_path)])
        assert result.exit_code == 2
        assert "--faces" in result.stderr
        assert str(tmp_path) in result.stderr

    def test_logs_of_a_full_run_hold_no_personal_data(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG):
            result = CliRunner().invoke(
                app, ["demo", "--data-dir", str(tmp_path / "demo"), "--faces", str(FACES)]
            )
        assert result.exit_code == 0, result.output
        assert caplog.records, "the run logged nothing at all: the check would be empty"
        logged = caplog.text
        names = ("BARACK", "EXAMPLE", "SAMPLE", "MINOR<<LIN", "LIN MINOR")
        for secret in (*names, "US1234567", "KE7654321", "IN2468013"):
            assert secret not in logged.upper()
        photo_bytes = (FACES / "obama.jpg").read_bytes()[2000:2032]
        assert repr(photo_bytes)[2:-1] not in logged
