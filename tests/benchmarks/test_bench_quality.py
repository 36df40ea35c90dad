"""benchmarks/bench_quality.py in its tiny mode (one level a degradation) on the sample
photos and the real face model, through its command line: every degraded probe is judged,
the pairs are those the labels allow, the table and the plots are written; and on a folder
laid out one sub-folder per person, as a site would rerun it. Nothing is timed here."""

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import bench_quality as bench
from core.settings import Settings
from enrollment.templates import FaceModel

CAPTURES = 5  # obama.jpg, obama2.jpg, obama3.jpg, biden.jpg, lin-manuel-miranda.png


class TestTinyRun:
    def test_the_table_the_json_and_the_plots(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "quality.json"
        assert bench.main(["--tiny", "--out", str(tmp_path), "--json", str(out), "--quiet"]) == 0
        report = json.loads(out.read_text(encoding="utf-8"))
        levels = 1 + len(bench.TINY)  # the framed capture, then one level each
        # Three captures of Obama give 6 ordered genuine pairs a level; every other
        # pairing of the five captures is an impostor pair (14 a level).
        assert report["genuine_pairs"] == 6 * levels
        assert report["impostor_pairs"] == 14 * levels
        assert report["skipped"] == []
        rows = {row["degradation"]: row for row in report["rows"]}
        assert list(rows) == ["none", *bench.TINY, "all degraded"]
        for row in rows.values():
            assert set(bench.COLUMNS) == set(row)
        assert rows["all degraded"]["genuine_pairs"] == 6 * len(bench.TINY)
        # The framed captures match their own person and no one else.
        assert rows["none"]["today_referred_pct"] == rows["none"]["kiosk_referred_pct"] == 0
        assert rows["none"]["genuine_max"] < 0.4 < rows["none"]["impostor_min"]
        # The kiosk profile refuses nothing today's thresholds accept.
        for row in rows.values():
            assert row["kiosk_quality_low"] <= row["today_quality_low"]
            assert row["kiosk_impostors_accepted"] == 0
        assert [r["measure"] for r in report["erc"]] == list(bench.BADNESS)
        for name in ("referred", "distances", "erc", "erc-enrollment"):
            plot = tmp_path / f"quality-{name}-tiny.png"
            assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        printed = capsys.readouterr().out
        assert "| all degraded" in printed
        assert "today_referred_pct" in printed
        assert "kiosk_referred_pct" in printed

    def test_a_folder_of_one_sub_folder_per_person(
        self, tmp_path: Path, face_model: FaceModel
    ) -> None:
        faces = tmp_path / "site"
        for person, names in {
            "obama": ["obama.jpg", "obama3.jpg"],
            "biden": ["biden.jpg"],
        }.items():
            (faces / person).mkdir(parents=True)
            for name in names:
                shutil.copy(bench.SAMPLES / name, faces / person / name)
        report = bench.run(
            bench.Options(faces=faces, tiny=True, out=tmp_path, quiet=True),
            model=face_model,
            settings=Settings(),
        )
        levels = 1 + len(bench.TINY)
        assert report["genuine_pairs"] == 2 * levels
        assert report["impostor_pairs"] == 4 * levels


class TestPieces:
    def test_the_erc_rejects_the_worst_first(self) -> None:
        badness = [5.0, 1.0, 4.0, 2.0]
        failed = [True, False, True, False]
        assert bench.erc(badness, failed, [0.0, 0.25, 0.5, 1.0]) == [0.5, 1 / 3, 0.0, 0.0]

    def test_one_person_is_no_study(self, tmp_path: Path) -> None:
        (tmp_path / "obama").mkdir()
        shutil.copy(bench.SAMPLES / "obama.jpg", tmp_path / "obama" / "obama.jpg")
        with pytest.raises(ValueError, match="at least two people"):
            bench.read_labels(tmp_path)

    def test_a_capture_of_several_files_counts_once(self) -> None:
        photos = bench.read_labels(bench.SAMPLES)
        assert [p.path.name for p in photos] == [
            "obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "lin-manuel-miranda.png",
        ]  # fmt: skip
        assert len({p.capture for p in photos}) == CAPTURES
