"""nprobe follows the gallery: ``nprobe_for(nlist)`` by default, a number when an operator
sets one (benchmarks/RESULTS.md has the measurements the rule comes from)."""

import numpy as np
import pytest

from matching.gallery import Gallery, NProbe, nlist_for, nprobe_for
from tests.matching.test_gallery import DIM, Enrolment, enrolment


@pytest.fixture(scope="module")
def people() -> Enrolment:
    return enrolment(seed=31, size=9000, probes=200)


class TestRule:
    @pytest.mark.parametrize(
        ("size", "nlist", "nprobe"),
        [
            (50_000, 894, 101),
            (100_000, 1265, 136),
            (200_000, 1789, 182),
            (500_000, 2828, 269),
            (1_000_000, 4000, 360),
            (10_000_000, 12649, 641),
        ],
    )
    def test_gives_the_measured_settings(self, size: int, nlist: int, nprobe: int) -> None:
        assert nlist_for(size) == nlist
        assert nprobe_for(nlist) == nprobe

    def test_grows_with_nlist_and_stays_within_it(self) -> None:
        nlists = np.arange(1, 30_000)
        probes = np.array([nprobe_for(int(n)) for n in nlists])
        assert np.all(np.diff(probes) >= 0)
        assert np.all(probes <= nlists)
        assert np.all(probes >= np.minimum(nlists, 32))

    def test_the_share_probed_falls_slowly_to_1m_then_as_one_over_sqrt(self) -> None:
        shares = [nprobe_for(n) / n for n in (894, 1265, 2000, 4000, 16_000)]
        assert shares == sorted(shares, reverse=True)
        assert 0.09 <= shares[3] < shares[0] < 0.12
        assert nprobe_for(16_000) == 2 * nprobe_for(4000)


class TestGalleryFollowsTheRule:
    def test_auto_is_the_default_and_applies_at_each_training(self, people: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf")
        assert gallery.nprobe == "auto"
        assert gallery.probed == 0  # flat while empty
        gallery.add(people.ids[:2000], people.vectors[:2000])
        assert gallery.probed == nprobe_for(gallery.nlist)
        first = gallery.nlist
        gallery.add(people.ids[2000:], people.vectors[2000:])
        assert gallery.wait_for_retrain()
        assert gallery.nlist > first
        assert gallery.probed == nprobe_for(gallery.nlist)

    @pytest.mark.parametrize("setting", ["auto", 40, 100_000])
    def test_a_snapshot_keeps_the_setting_and_applies_it_on_load(
        self, people: Enrolment, setting: NProbe
    ) -> None:
        gallery = Gallery(DIM, kind="ivf", nprobe=setting)
        gallery.add(people.ids, people.vectors)
        restored = Gallery.from_bytes(gallery.to_bytes())
        assert restored.nprobe == setting
        expected = nprobe_for(gallery.nlist) if setting == "auto" else min(setting, gallery.nlist)
        assert restored.probed == gallery.probed == expected

    def test_an_operator_number_overrides_and_auto_comes_back(self, people: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf")
        gallery.add(people.ids, people.vectors)
        rule = gallery.probed
        gallery.tune(nprobe=7, threads=1)
        assert (gallery.nprobe, gallery.probed) == (7, 7)
        gallery.tune(nprobe=10**6, threads=1)
        assert gallery.probed == gallery.nlist
        gallery.tune(nprobe="auto", threads=1)
        assert (gallery.nprobe, gallery.probed) == ("auto", rule)

    def test_auto_reaches_the_recall_of_exact_search(self, people: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf")
        gallery.add(people.ids, people.vectors)
        ids, _ = gallery.search(people.mated, 1)
        assert np.mean(ids[:, 0] == people.mated_ids) >= 0.99

    @pytest.mark.parametrize("bad", ["fast", "", 0, -3, True, 2.5])
    def test_anything_but_a_positive_number_or_auto_is_refused(self, bad: object) -> None:
        with pytest.raises(ValueError, match="nprobe"):
            Gallery(DIM, nprobe=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="nprobe"):
            Gallery(DIM).tune(nprobe=bad, threads=1)  # type: ignore[arg-type]
