"""An IVF retrain runs beside the live index and swaps, never blocking searches (DESIGN §13).

Real faiss and the synthetic templates of test_gallery.py. To know for certain that the
retrain thread is running while a search or a write happens, ``PausedGallery`` holds that
thread at one point of its work (before it copies the templates, or after, before it
trains) until the test lets it go; everything else is the gallery's own code.
"""

import threading
from typing import Literal

import faiss
import numpy as np
import pytest

from matching.gallery import Gallery, Ids, Vectors, nlist_for
from tests.matching.test_gallery import (
    DIM,
    SAME_VECTOR_IVF,
    Enrolment,
    assert_valid_result,
    enrolment,
    exact_knn,
    rank1_recall,
)

TRAINED = 2000  # the size the first index is built at
GROWN = 8001  # past four times TRAINED: the add that reaches it starts a retrain
Pause = Literal["before_copy", "before_training"]


class PausedGallery(Gallery):
    """A gallery whose retrain thread stops at ``pause`` until ``resume`` is set."""

    def __init__(self, pause: Pause = "before_training", **kwargs: object) -> None:
        super().__init__(DIM, **kwargs)  # type: ignore[arg-type]
        self.pause = pause
        self.paused = threading.Event()
        self.resume = threading.Event()

    def _hold(self, point: Pause) -> None:
        if point == self.pause and threading.current_thread().name == "gallery-retrain":
            self.paused.set()
            assert self.resume.wait(60), "the test never resumed the retrain"

    def _contents(self, chunked: bool = False) -> tuple[Ids, Vectors]:
        if chunked:
            self._hold("before_copy")
        return super()._contents(chunked)

    def _build(self, ids: Ids, vectors: Vectors, threads: int) -> tuple[faiss.Index, int]:
        self._hold("before_training")
        return super()._build(ids, vectors, threads)


@pytest.fixture(scope="module")
def people() -> Enrolment:
    return enrolment(seed=21, size=12_000, probes=400)


def grown(people: Enrolment, pause: Pause = "before_training") -> PausedGallery:
    """Built at TRAINED, then grown to GROWN: the retrain has begun and is held."""
    gallery = PausedGallery(pause, kind="ivf")
    gallery.add(people.ids[:TRAINED], people.vectors[:TRAINED])
    assert (gallery.index_kind, gallery.trained_size) == ("ivf", TRAINED)
    gallery.add(people.ids[TRAINED:GROWN], people.vectors[TRAINED:GROWN])
    assert gallery.retraining
    assert gallery.paused.wait(60)
    return gallery


class TestRetrainBeside:
    def test_the_add_that_starts_it_returns_and_searches_answer_meanwhile(
        self, people: Enrolment
    ) -> None:
        gallery = grown(people)
        try:
            # The old index answers, with the templates of the add that started the retrain.
            ids, dists = gallery.search(people.vectors[:GROWN:20], 3)
            np.testing.assert_array_equal(ids[:, 0], people.ids[:GROWN:20])
            assert np.all(dists[:, 0] < SAME_VECTOR_IVF)
            assert gallery.retraining
            assert gallery.trained_size == TRAINED
            assert not gallery.wait_for_retrain(timeout=0)
        finally:
            gallery.resume.set()
        assert gallery.wait_for_retrain()
        assert not gallery.retraining
        assert gallery.trained_size == GROWN
        assert gallery.nlist == nlist_for(GROWN) > nlist_for(TRAINED)

    @pytest.mark.parametrize("pause", ["before_copy", "before_training"])
    def test_adds_and_removes_meanwhile_survive_the_swap(
        self, people: Enrolment, pause: Pause
    ) -> None:
        gallery = grown(people, pause)
        later = slice(GROWN, GROWN + 1500)
        try:
            gallery.add(people.ids[later], people.vectors[later])
            gone = np.concatenate([people.ids[:300], people.ids[GROWN : GROWN + 100]])
            assert gallery.remove(gone) == len(gone)
            # An id removed and added again, with another template, during the retrain.
            again = int(people.ids[500])
            gallery.remove([again])
            gallery.add([again], people.vectors[11_999])
            assert gallery.retraining
        finally:
            gallery.resume.set()
        assert gallery.wait_for_retrain()
        assert gallery.trained_size >= GROWN - 300  # what the copy held

        kept = np.setdiff1d(np.arange(GROWN + 1500), np.r_[0:300, 500, GROWN : GROWN + 100])
        expected = set(people.ids[kept].tolist()) | {again}
        assert set(gallery.ids().tolist()) == expected
        assert len(gallery) == len(expected)
        ids, dists = gallery.search(people.vectors[kept], 1)
        np.testing.assert_array_equal(ids[:, 0], people.ids[kept])
        assert np.all(dists[:, 0] < SAME_VECTOR_IVF)
        # Removed ones never come back; the re-added id is found at its new template only.
        found, _ = gallery.search(people.vectors[:300], 5)
        assert not set(found.ravel().tolist()) & set(gone.tolist())
        found, dists = gallery.search(people.vectors[11_999], 1)
        assert (found[0, 0], dists[0, 0] < SAME_VECTOR_IVF) == (again, True)
        # The new index holds each id once.
        assert gallery._index.ntotal == len(expected)

    def test_recall_and_ids_after_the_swap(self, people: Enrolment) -> None:
        gallery = grown(people)
        gallery.resume.set()
        assert gallery.wait_for_retrain()
        enrolled = slice(0, GROWN)
        mated = np.isin(people.mated_ids, people.ids[enrolled])
        found, dists = gallery.search(people.mated[mated], 10)
        exact, _ = exact_knn(
            people.ids[enrolled], people.vectors[enrolled], people.mated[mated], 10
        )
        assert rank1_recall(found, exact) >= 0.99
        np.testing.assert_array_equal(exact[:, 0], people.mated_ids[mated])
        assert_valid_result(found, dists, set(people.ids[enrolled].tolist()), 10)
        strangers, far = gallery.search(people.strangers, 10)
        assert_valid_result(strangers, far, set(people.ids[enrolled].tolist()), 10)

    def test_a_snapshot_during_the_retrain_holds_every_add_and_remove(
        self, people: Enrolment
    ) -> None:
        gallery = grown(people)
        try:
            gallery.add(people.ids[GROWN : GROWN + 50], people.vectors[GROWN : GROWN + 50])
            gallery.remove(people.ids[:50])
            restored = Gallery.from_bytes(gallery.to_bytes())
        finally:
            gallery.resume.set()
        assert gallery.wait_for_retrain()
        expected = set(people.ids[50 : GROWN + 50].tolist())
        assert set(restored.ids().tolist()) == expected
        assert restored.trained_size == TRAINED  # the live index's, as it was
        assert not restored.retraining
        ids, _ = restored.search(people.vectors[50 : GROWN + 50 : 10], 1)
        np.testing.assert_array_equal(ids[:, 0], people.ids[50 : GROWN + 50 : 10])
        # The restored gallery is past four times its training: its next add retrains.
        restored.add(people.ids[GROWN + 50 : GROWN + 60], people.vectors[GROWN + 50 : GROWN + 60])
        assert restored.wait_for_retrain()
        assert restored.trained_size > TRAINED

    def test_the_switch_from_flat_to_ivf_runs_beside_the_exact_index(
        self, people: Enrolment
    ) -> None:
        gallery = PausedGallery(ivf_min_size=TRAINED)
        gallery.add(people.ids[: TRAINED - 1], people.vectors[: TRAINED - 1])
        gallery.add(people.ids[TRAINED - 1 : 3000], people.vectors[TRAINED - 1 : 3000])
        assert gallery.paused.wait(60)
        try:
            assert gallery.index_kind == "flat"
            ids, _ = gallery.search(people.strangers[:20], 5)
            exact, _ = exact_knn(people.ids[:3000], people.vectors[:3000], people.strangers[:20], 5)
            np.testing.assert_array_equal(ids, exact)
        finally:
            gallery.resume.set()
        assert gallery.wait_for_retrain()
        assert (gallery.index_kind, gallery.trained_size) == ("ivf", 3000)

    def test_a_failed_retrain_leaves_the_live_index_and_is_retried(self, people: Enrolment) -> None:
        class Failing(Gallery):
            failures = 1

            def _build(self, ids: Ids, vectors: Vectors, threads: int) -> tuple[faiss.Index, int]:
                if threading.current_thread().name == "gallery-retrain" and self.failures:
                    self.failures -= 1
                    raise MemoryError("no room for a second index")
                return super()._build(ids, vectors, threads)

        gallery = Failing(DIM, kind="ivf")
        gallery.add(people.ids[:TRAINED], people.vectors[:TRAINED])
        gallery.add(people.ids[TRAINED:GROWN], people.vectors[TRAINED:GROWN])
        with pytest.raises(RuntimeError, match="retrain failed"):
            gallery.wait_for_retrain()
        assert gallery.wait_for_retrain()  # raised once
        assert (len(gallery), gallery.trained_size) == (GROWN, TRAINED)
        ids, _ = gallery.search(people.vectors[:GROWN:50], 1)
        np.testing.assert_array_equal(ids[:, 0], people.ids[:GROWN:50])
        gallery.add(people.ids[GROWN : GROWN + 1], people.vectors[GROWN : GROWN + 1])
        assert gallery.wait_for_retrain()
        assert gallery.trained_size == GROWN + 1


class TestBuiltAtOnce:
    def test_a_batch_into_an_empty_gallery_is_indexed_at_its_size(self, people: Enrolment) -> None:
        gallery = Gallery(DIM, ivf_min_size=TRAINED)
        gallery.add(people.ids[:GROWN], people.vectors[:GROWN])
        assert not gallery.retraining
        assert (gallery.index_kind, gallery.trained_size) == ("ivf", GROWN)

    def test_the_blocking_mode_retrains_inside_the_add(self, people: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf", background_retrain=False)
        gallery.add(people.ids[:TRAINED], people.vectors[:TRAINED])
        gallery.add(people.ids[TRAINED:GROWN], people.vectors[TRAINED:GROWN])
        assert not gallery.retraining
        assert gallery.trained_size == GROWN
        ids, _ = gallery.search(people.vectors[:GROWN:40], 1)
        np.testing.assert_array_equal(ids[:, 0], people.ids[:GROWN:40])

    def test_removes_below_the_ivf_size_during_a_switch_keep_it_flat(
        self, people: Enrolment
    ) -> None:
        gallery = PausedGallery("before_copy", ivf_min_size=TRAINED)
        gallery.add(people.ids[: TRAINED - 1], people.vectors[: TRAINED - 1])
        gallery.add(
            people.ids[TRAINED - 1 : TRAINED + 10], people.vectors[TRAINED - 1 : TRAINED + 10]
        )
        assert gallery.paused.wait(60)
        gallery.remove(people.ids[:100])
        gallery.resume.set()
        assert gallery.wait_for_retrain()
        assert gallery.index_kind == "flat"
        assert len(gallery) == TRAINED + 10 - 100
