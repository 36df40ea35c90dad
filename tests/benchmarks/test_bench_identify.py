"""benchmarks/bench_identify.py at a tiny size: it runs against every peer, its rows carry
the keys RESULTS.md and DESIGN §8 rely on, and its recall measure is right. Speed is never
asserted here (benchmarks/README.md)."""

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks import bench_identify as bench
from benchmarks import common
from core.settings import Settings
from matching.gallery import Gallery

SIZE = 2000
I64 = npt.NDArray[np.int64]


@pytest.fixture(scope="module")
def population() -> bench.Population:
    return bench.make_population(SIZE, mated=50, strangers=50, seed=3, quiet=True)


class TestRank1Recall:
    def test_exact_search_against_itself_is_one(self, population: bench.Population) -> None:
        exact, _ = bench.exact_rank1(population, population.mated)
        assert bench.rank1_recall(exact, exact) == 1.0

    def test_exact_search_finds_each_mate(self, population: bench.Population) -> None:
        exact, dists = bench.exact_rank1(population, population.mated)
        np.testing.assert_array_equal(exact, population.mated_ids)
        assert float(dists.max()) < 0.3

    def test_a_broken_ranking_gives_its_known_recall(self) -> None:
        exact: I64 = bench.ID_BASE + 7 * np.arange(100, dtype=np.int64)
        broken = exact.copy()
        broken[::4] = -1  # a quarter of the probes answered wrongly
        assert bench.rank1_recall(broken, exact) == 0.75
        assert bench.rank1_recall(np.roll(exact, 1), exact) == 0.0

    def test_an_ivf_probing_one_list_is_seen_to_miss(self, population: bench.Population) -> None:
        gallery = Gallery(bench.DIM, kind="ivf", nprobe=1)
        gallery.add(population.ids, population.vectors)
        found, _ = gallery.search(population.mated, 1)
        exact, _ = bench.exact_rank1(population, population.mated)
        assert bench.rank1_recall(found[:, 0], exact) < 1.0


class TestSyntheticTemplates:
    def test_distances_sit_in_the_ranges_measured_on_real_photos(self) -> None:
        cal = bench.calibration(seed=5)
        assert 0.15 < cal["genuine_min"] < cal["genuine_max"] < 0.3
        assert 0.2 < cal["genuine_median"] < 0.26
        assert cal["impostor_p1"] > 0.45
        assert cal["impostor_p99"] < 0.65

    def test_probes_alternate_mated_and_strangers(self, population: bench.Population) -> None:
        probes = bench.Probes.build(population, 20)
        assert probes.is_mated.tolist() == [True, False] * 10
        np.testing.assert_array_equal(probes.exact_ids[0::2], population.mated_ids[:10])
        assert np.all(probes.mate_ids[1::2] == -1)


class TestThreshold:
    @pytest.mark.parametrize(
        ("size", "expected"), [(SIZE, 0.34), (10_000, 0.34), (100_000, 0.325), (10**6, 0.31)]
    )
    def test_is_the_production_rule_for_the_size(self, size: int, expected: float) -> None:
        assert bench.identify_threshold(size, Settings()) == pytest.approx(expected)


class TestMatchedPeer:
    ROWS: list[common.Row] = [  # noqa: RUF012
        {"index": "pgvector-hnsw ef=40", "recall_at_1": 0.9, "p99_ms": 1.0},
        {"index": "pgvector-hnsw ef=400", "recall_at_1": 0.99, "p99_ms": 5.0},
        {"index": "pgvector-exact", "recall_at_1": 1.0, "p99_ms": 50.0},
    ]

    @pytest.mark.parametrize(
        ("recall", "peer"),
        [(0.5, "pgvector-hnsw ef=40"), (0.98, "pgvector-hnsw ef=400"), (0.995, "pgvector-exact")],
    )
    def test_is_the_fastest_at_equal_or_better_recall(self, recall: float, peer: str) -> None:
        assert bench.matched_pgvector(self.ROWS, recall)["index"] == peer

    def test_falls_back_to_the_best_recall(self) -> None:
        assert bench.matched_pgvector(self.ROWS[:2], 1.0)["index"] == "pgvector-hnsw ef=400"


class TestRun:
    def test_tiny_run_against_every_peer_writes_the_rows(
        self, tmp_path: Path, pg_admin_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "identify.json"
        argv = ["--size", str(SIZE), "--queries", "50", "--batch", "100", "--seed", "4"]
        argv += ["--kinds", ",".join(bench.KINDS), "--ef-search", "40", "--no-floor"]
        bench.main([*argv, "--pg-url", pg_admin_url, "--json", str(out), "--quiet"])

        rows = json.loads(out.read_text(encoding="utf-8"))
        assert isinstance(rows, list)
        assert [r["index"] for r in rows] == [
            "border-ivf",
            "border-flat",
            "numpy",
            "numpy32",
            "milvus-lite-flat",
            "pgvector-hnsw ef=40",
            "pgvector-exact",
        ]
        for row in rows:
            assert set(bench.REQUIRED_KEYS) <= row.keys(), row
            assert row["size"] == SIZE
            assert 0.0 <= row["recall_at_1"] <= 1.0
            assert 0.0 < row["p50_ms"] <= row["p99_ms"]
            assert row["batch_qps"] > 0
            # Peers without a batch form are scored on the 50 single queries, half mated.
            looped = row["index"] in ("numpy", "numpy32", "pgvector-exact")
            assert row["mated_probes"] == row["nonmated_probes"] == (25 if looped else 50)
            # Strangers lie 0.4 and more from anyone enrolled: none is a candidate.
            assert row["nonmated_fp_rate"] == 0.0
        by = {r["index"]: r for r in rows}
        for exact in ("border-flat", "numpy", "numpy32", "pgvector-exact", "milvus-lite-flat"):
            assert by[exact]["recall_at_1"] == 1.0
        # Milvus Lite in a temporary file: its server process's memory, its build time.
        assert by["milvus-lite-flat"]["memory_mb"] > 0
        assert by["milvus-lite-flat"]["build_s"] > 0
        for border in ("border-ivf", "border-flat", "milvus-lite-flat"):
            row = by[border]
            assert row["ratio_vs_numpy"] == round(by["numpy"]["p99_ms"] / row["p99_ms"], 2)
            peer = by[row["pgvector_peer"]]
            assert peer["recall_at_1"] >= row["recall_at_1"]
            assert row["ratio_vs_pgvector"] == round(peer["p99_ms"] / row["p99_ms"], 2)
        for peer in ("numpy", "pgvector-exact"):
            assert by[peer]["ratio_vs_numpy"] is None
            assert by[peer]["ratio_vs_pgvector"] is None

        printed = capsys.readouterr().out
        assert "| border-flat" in printed
        assert "identify threshold for this size: 0.3400" in printed

    def test_rows_per_thread_count_with_the_peers_of_an_earlier_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        earlier = tmp_path / "earlier.json"
        argv = ["--size", str(SIZE), "--queries", "20", "--batch", "40", "--seed", "4"]
        bench.main([*argv, "--kinds", "numpy", "--no-floor", "--json", str(earlier), "--quiet"])
        out = tmp_path / "later.json"
        argv += ["--kinds", "flat", "--threads", "1,2", "--peers-from", str(earlier)]
        bench.main([*argv, "--no-floor", "--json", str(out), "--quiet"])
        rows = json.loads(out.read_text(encoding="utf-8"))
        assert [(r["index"], r.get("threads")) for r in rows] == [
            ("border-flat 1t", 1),
            ("border-flat 2t", 2),
            ("numpy", 1),
        ]
        numpy_row = rows[2]
        assert numpy_row["from"] == "earlier.json"
        assert numpy_row["p99_ms"] == json.loads(earlier.read_text())[0]["p99_ms"]
        for row in rows[:2]:
            assert row["recall_at_1"] == 1.0
            assert row["ratio_vs_numpy"] == round(numpy_row["p99_ms"] / row["p99_ms"], 2)
        capsys.readouterr()

    def test_peers_from_a_run_of_another_size_are_refused(self, tmp_path: Path) -> None:
        earlier = tmp_path / "earlier.json"
        earlier.write_text(json.dumps([{"size": 10, "index": "numpy", "p99_ms": 1.0}]))
        with pytest.raises(ValueError, match="no peer rows of size"):
            bench.earlier_peers(earlier, SIZE)


class TestFloor:
    def test_bandwidth_and_the_flat_profile_report_numbers(
        self, population: bench.Population
    ) -> None:
        bandwidth = bench.bandwidth_gbs(nbytes=1 << 24, repeats=1)
        assert float(bandwidth["read_all_cores"] or 0) > 0
        assert float(bandwidth["read_1thread"] or 0) > 0
        profile = bench.flat_profile(population, population.mated, count=3)
        assert all(float(r.get("p50_ms") or r.get("batch_qps") or 0) > 0 for r in profile)


class TestCommon:
    def test_percentile_is_in_milliseconds(self) -> None:
        samples = [0.001] * 99 + [0.1]
        assert common.percentile_ms(samples, 50) == pytest.approx(1.0)
        assert common.percentile_ms(samples, 100) == pytest.approx(100.0)
        with pytest.raises(ValueError, match="no samples"):
            common.percentile_ms([], 50)

    def test_table_aligns_text_left_and_numbers_right(self) -> None:
        text = common.table(
            [{"index": "a", "ms": 1.5}, {"index": "bbb", "ms": None}], ["index", "ms"]
        )
        assert text.splitlines() == [
            "| index |   ms |",
            "|-------|-----:|",
            "| a     | 1.50 |",
            "| bbb   |    - |",
        ]

    def test_json_is_written_whole(self, tmp_path: Path) -> None:
        path = tmp_path / "rows.json"
        common.write_json(path, [{"size": 1}])
        assert json.loads(path.read_text(encoding="utf-8")) == [{"size": 1}]
        assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]
