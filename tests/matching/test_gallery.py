"""The FAISS gallery on real FAISS, with synthetic templates shaped like dlib's (DESIGN §7b, §9).

Synthetic faces. An identity is a centre on the unit sphere in 128 dimensions; a capture of
it is ``normalise(centre + SAMPLE_SPREAD * g)`` with ``g`` standard normal. Noise of ``sigma``
per coordinate has norm ``s = sigma * sqrt(128)``, so two captures of one person lie about
``sqrt(2 s² / (1 + s²))`` apart: ``sigma = 0.015`` gives 0.235 (0.17-0.29 over 5,000 pairs),
the genuine range DESIGN §9 reports for dlib in this module's unit. Independent uniform
centres would sit about sqrt(2) apart, far easier than real faces, whose embeddings share a
common direction; so centres are ``normalise(mean + CENTRE_SPREAD * g)`` around one random
mean, and 0.0457 puts two strangers about 0.68 apart (0.94 raw dlib), the nearest of 20,000
still above 0.45. The clustered data also make the IVF lists uneven, as real data do.
"""

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
import pytest

from matching.gallery import Gallery, Kind, distance, normalise

DIM = 128
SAMPLE_SPREAD = 0.015
CENTRE_SPREAD = 0.0457
# The open-set margins these data must respect (TestOpenSet checks them).
MATED_BELOW = 0.35
STRANGERS_ABOVE = 0.4
# Identical vectors come back at sqrt(2 - 2·s) with s one float32 ulp below 1: about 3.5e-4.
SAME_VECTOR = 1e-3
# The IVF lists hold float16: a vector lies up to about 0.015 from itself (the square root
# in the distance magnifies the rounding near zero; at genuine distances it is about 5e-4).
SAME_VECTOR_IVF = 2e-2
IVF_MIN_SIZE = 2000

# Padding (-1 ids) comes from faiss with similarity -FLT_MAX; doubling it overflows float32
# on the way to the (then masked) distance. Harmless, but numpy warns each time.

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def unit_rows(x: F64) -> F64:
    rows: F64 = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return rows


class Faces:
    """A seeded population: identities (centres) and captures of them."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.mean = unit_rows(self.rng.standard_normal(DIM))

    def identities(self, n: int) -> F64:
        return unit_rows(self.mean + CENTRE_SPREAD * self.rng.standard_normal((n, DIM)))

    def captures(self, centres: F64) -> F32:
        noisy = centres + SAMPLE_SPREAD * self.rng.standard_normal(centres.shape)
        # Scaled like raw dlib encodings (norm ~1.38): the gallery must not care.
        return (1.38 * unit_rows(noisy)).astype(np.float32)


@dataclass(frozen=True)
class Enrolment:
    """One capture per identity, enrolled under caller ids that are not row positions."""

    ids: I64
    vectors: F32
    mated: F32  # a fresh capture of an enrolled identity
    mated_ids: I64  # the id that identity was enrolled under
    strangers: F32  # captures of identities never enrolled


def caller_ids(n: int, start: int = 10**12) -> I64:
    ids: I64 = start + 7 * np.arange(n, dtype=np.int64)
    return ids


def enrolment(seed: int, size: int, probes: int) -> Enrolment:
    faces = Faces(seed)
    centres = faces.identities(size)
    ids = caller_ids(size)
    chosen = faces.rng.choice(size, probes, replace=False)
    return Enrolment(
        ids=ids,
        vectors=faces.captures(centres),
        mated=faces.captures(centres[chosen]),
        mated_ids=ids[chosen],
        strangers=faces.captures(faces.identities(probes)),
    )


def exact_knn(ids: I64, vectors: F32, queries: F32, k: int) -> tuple[I64, F64]:
    """Brute force in float64: L2 between the normalised rows, k nearest first."""
    base = unit_rows(vectors.astype(np.float64))
    probe = unit_rows(queries.astype(np.float64))
    squared = np.maximum(0.0, 2.0 - 2.0 * probe @ base.T)
    nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
    ranks = np.argsort(np.take_along_axis(squared, nearest, axis=1), axis=1, kind="stable")
    order = np.take_along_axis(nearest, ranks, axis=1)
    found: I64 = ids[order]
    dists: F64 = np.sqrt(np.take_along_axis(squared, order, axis=1))
    return found, dists


def rank1_recall(found: I64, exact: I64) -> float:
    """faiss contrib.evaluation.knn_intersection_measure at rank 1."""
    return float(np.mean(found[:, 0] == exact[:, 0]))


def assert_valid_result(ids: I64, dists: F32, allowed: set[int], k: int) -> None:
    assert ids.shape == dists.shape
    assert ids.shape[1] == k
    assert np.all(dists[:, 1:] >= dists[:, :-1]), "distances not sorted ascending"
    missing = ids == -1
    assert np.all(np.isinf(dists[missing]))
    assert np.all(np.isfinite(dists[~missing]))
    assert set(ids[~missing].tolist()) <= allowed


@pytest.fixture(scope="module")
def large() -> Enrolment:
    return enrolment(seed=1, size=20_000, probes=1_000)


@pytest.fixture(scope="module")
def small() -> Enrolment:
    return enrolment(seed=2, size=500, probes=100)


class TestNormalise:
    def test_rows_come_back_unit_length_contiguous_float32(self) -> None:
        raw = np.random.default_rng(3).standard_normal((5, DIM)) * 7.0
        unit = normalise(raw, DIM)
        assert unit.dtype == np.float32
        assert unit.flags.c_contiguous
        assert unit.shape == (5, DIM)
        np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), 1e-6)

    def test_a_single_vector_becomes_one_row(self) -> None:
        assert normalise(np.ones(DIM), DIM).shape == (1, DIM)

    def test_zero_vector_is_refused(self) -> None:
        rows = np.ones((3, DIM))
        rows[1] = 0.0
        with pytest.raises(ValueError, match="zero vector"):
            normalise(rows, DIM)

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_values_are_refused(self, bad: float) -> None:
        row = np.ones(DIM)
        row[17] = bad
        with pytest.raises(ValueError, match="finite"):
            normalise(row, DIM)

    @pytest.mark.parametrize("shape", [(2, 64), (1, 256)])
    def test_rows_of_another_width_are_refused(self, shape: tuple[int, int]) -> None:
        with pytest.raises(ValueError):  # noqa: PT011
            normalise(np.ones(shape), DIM)

    def test_large_finite_values_keep_their_direction(self) -> None:
        unit = normalise(np.full(DIM, 1e20), DIM)
        np.testing.assert_allclose(np.linalg.norm(unit), 1.0, rtol=1e-6)


class TestDistance:
    def test_equals_l2_between_normalised_vectors(self) -> None:
        rng = np.random.default_rng(4)
        for _ in range(20):
            a, b = rng.standard_normal(DIM) * 1.38, rng.standard_normal(DIM) * 0.5
            expected = np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b))
            assert distance(a, b) == pytest.approx(expected, abs=1e-6)

    def test_is_symmetric(self) -> None:
        faces = Faces(5)
        a, b = faces.captures(faces.identities(2))
        assert distance(a, b) == distance(b, a)

    def test_scale_does_not_matter(self) -> None:
        a = np.random.default_rng(6).standard_normal(DIM)
        assert distance(a, 3.0 * a) == pytest.approx(0.0, abs=1e-6)
        assert distance(a, 0.1 * a) == pytest.approx(0.0, abs=1e-6)

    def test_orthogonal_is_sqrt2_and_opposite_is_2(self) -> None:
        e0, e1 = np.eye(DIM)[0], np.eye(DIM)[1]
        assert distance(e0, e1) == pytest.approx(math.sqrt(2), abs=1e-6)
        assert distance(e0, -e0) == pytest.approx(2.0, abs=1e-6)

    def test_zero_vector_is_refused(self) -> None:
        with pytest.raises(ValueError, match="zero vector"):
            distance(np.ones(DIM), np.zeros(DIM))

    def test_agrees_with_gallery_search(self, small: Enrolment) -> None:
        gallery = Gallery(DIM, kind="flat")
        gallery.add(small.ids, small.vectors)
        ids, dists = gallery.search(small.mated[:10], 1)
        for probe, found, found_dist in zip(small.mated[:10], ids[:, 0], dists[:, 0], strict=True):
            template = small.vectors[np.flatnonzero(small.ids == found)[0]]
            assert distance(probe, template) == pytest.approx(float(found_dist), abs=1e-4)


class TestAddAndSearch:
    def test_nearest_comes_first_under_the_callers_ids(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids, small.vectors)
        ids, dists = gallery.search(small.mated, 5)
        assert ids.dtype == np.int64
        assert ids.shape == dists.shape == (len(small.mated), 5)
        np.testing.assert_array_equal(ids[:, 0], small.mated_ids)
        assert_valid_result(ids, dists, set(small.ids.tolist()), 5)

    def test_one_vector_is_one_query(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids, small.vectors)
        one_ids, one_dists = gallery.search(small.mated[0], 3)
        batch_ids, batch_dists = gallery.search(small.mated, 3)
        assert one_ids.shape == (1, 3)
        np.testing.assert_array_equal(one_ids[0], batch_ids[0])
        np.testing.assert_allclose(one_dists[0], batch_dists[0], atol=1e-6)

    def test_identical_vector_is_at_distance_zero(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids, small.vectors)
        ids, dists = gallery.search(small.vectors[:50], 1)
        np.testing.assert_array_equal(ids[:, 0], small.ids[:50])
        assert np.all(dists[:, 0] < SAME_VECTOR)

    def test_orthogonal_vector_is_at_sqrt2_and_opposite_at_2(self) -> None:
        basis = np.eye(DIM, dtype=np.float32)
        gallery = Gallery(DIM)
        gallery.add([10, 11], np.vstack([basis[0], -basis[1]]))
        ids, dists = gallery.search(basis[1], 2)
        np.testing.assert_array_equal(ids, [[10, 11]])
        np.testing.assert_allclose(dists, [[math.sqrt(2), 2.0]], atol=1e-6)

    def test_scale_of_the_input_does_not_matter(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids, small.vectors)
        ids, dists = gallery.search(small.mated[:20], 3)
        ids_scaled, dists_scaled = gallery.search(small.mated[:20] * 40.0, 3)
        np.testing.assert_array_equal(ids, ids_scaled)
        np.testing.assert_allclose(dists, dists_scaled, atol=1e-5)

    def test_k_beyond_the_gallery_pads_with_minus_one_and_inf(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids[:3], small.vectors[:3])
        ids, dists = gallery.search(small.mated[:4], 10)
        assert ids.shape == (4, 10)
        assert sorted(ids[0, :3].tolist()) == sorted(small.ids[:3].tolist())
        assert np.all(ids[:, 3:] == -1)
        assert np.all(np.isinf(dists[:, 3:]))
        assert np.all(np.isfinite(dists[:, :3]))

    def test_empty_gallery_returns_only_padding(self, small: Enrolment) -> None:
        ids, dists = Gallery(DIM).search(small.mated[:3], 4)
        assert ids.shape == dists.shape == (3, 4)
        assert ids.dtype == np.int64
        assert np.all(ids == -1)
        assert np.all(np.isinf(dists))

    @pytest.mark.parametrize("k", [0, -1])
    def test_k_below_one_is_refused(self, small: Enrolment, k: int) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids, small.vectors)
        with pytest.raises(ValueError, match="k must be"):
            gallery.search(small.mated[0], k)

    @pytest.mark.parametrize(("bad", "message"), [(0.0, "zero vector"), (np.nan, "finite")])
    def test_zero_or_nan_template_is_refused_and_nothing_added(
        self, small: Enrolment, bad: float, message: str
    ) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids[:5], small.vectors[:5])
        batch = small.vectors[5:8].copy()
        if bad == 0.0:
            batch[1] = 0.0
        else:
            batch[1, 0] = bad
        with pytest.raises(ValueError, match=message):
            gallery.add(small.ids[5:8], batch)
        with pytest.raises(ValueError, match=message):
            gallery.search(batch, 1)
        assert len(gallery) == 5
        assert small.ids[5] not in gallery

    @pytest.mark.parametrize(("n_ids", "n_vectors"), [(3, 4), (4, 3), (0, 1)])
    def test_mismatched_ids_and_vectors_are_refused(
        self, small: Enrolment, n_ids: int, n_vectors: int
    ) -> None:
        gallery = Gallery(DIM)
        with pytest.raises(ValueError, match="ids for"):
            gallery.add(small.ids[:n_ids], small.vectors[:n_vectors])
        assert len(gallery) == 0

    def test_ids_repeated_within_a_batch_are_refused_and_nothing_added(
        self, small: Enrolment
    ) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids[:5], small.vectors[:5])
        with pytest.raises(ValueError, match="repeat"):
            gallery.add([1, 2, 1], small.vectors[5:8])
        assert len(gallery) == 5
        assert 1 not in gallery
        assert 2 not in gallery

    @pytest.mark.parametrize("kind", ["flat", "ivf"])
    def test_ids_already_present_are_refused_and_nothing_added(
        self, small: Enrolment, kind: Kind
    ) -> None:
        gallery = Gallery(DIM, kind=kind)
        gallery.add(small.ids[:100], small.vectors[:100])
        fresh, taken = small.ids[100:103], small.ids[7]
        with pytest.raises(ValueError, match="already in the gallery"):
            gallery.add([*fresh.tolist(), taken], small.vectors[100:104])
        assert len(gallery) == 100
        assert not any(int(i) in gallery for i in fresh)
        ids, _ = gallery.search(small.vectors[100:103], 1)
        assert not set(ids[:, 0].tolist()) & set(fresh.tolist())
        # The template first enrolled under the id is still the one found.
        ids, dists = gallery.search(small.vectors[7], 1)
        assert ids[0, 0] == taken
        assert dists[0, 0] < SAME_VECTOR

    def test_len_membership_and_ids_follow_adds(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids[:10], small.vectors[:10])
        gallery.add(small.ids[10:25], small.vectors[10:25])
        assert len(gallery) == 25
        assert int(small.ids[24]) in gallery
        assert int(small.ids[25]) not in gallery
        assert gallery.ids().dtype == np.int64
        assert sorted(gallery.ids().tolist()) == sorted(small.ids[:25].tolist())

    def test_an_empty_batch_changes_nothing(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids[:10], small.vectors[:10])
        gallery.add(np.empty(0, np.int64), np.empty((0, DIM), np.float32))
        assert len(gallery) == 10

    def test_unknown_index_kind_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown index kind"):
            Gallery(DIM, kind="hnsw")  # type: ignore[arg-type]

    def test_negative_id_is_refused_or_found_at_its_distance(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        try:
            gallery.add([-5], small.vectors[:1])
        except ValueError:
            return
        ids, dists = gallery.search(small.vectors[0], 1)
        assert ids[0, 0] == -5
        assert dists[0, 0] < SAME_VECTOR

    def test_template_of_another_width_is_refused(self, small: Enrolment) -> None:
        gallery = Gallery(DIM)
        gallery.add(small.ids, small.vectors)
        with pytest.raises(ValueError):  # noqa: PT011
            gallery.search(np.ones(2 * DIM, np.float32), 1)
        with pytest.raises(ValueError):  # noqa: PT011
            gallery.add([1], np.ones((2, DIM // 2), np.float32))


@pytest.fixture(params=["flat", "ivf"])
def filled(request: pytest.FixtureRequest, small: Enrolment) -> Gallery:
    """A gallery of ``small`` under each index kind."""
    kind: Kind = request.param
    gallery = Gallery(DIM, kind=kind)
    gallery.add(small.ids, small.vectors)
    assert gallery.index_kind == kind
    return gallery


class TestRemove:
    def test_returns_how_many_were_present(self, filled: Gallery, small: Enrolment) -> None:
        unknown = [1, 2, 3]
        assert filled.remove([*small.ids[:4].tolist(), *unknown]) == 4
        assert filled.remove(small.ids[:4]) == 0
        assert len(filled) == len(small.ids) - 4

    def test_removed_ids_never_come_back(self, filled: Gallery, small: Enrolment) -> None:
        gone = small.ids[::3]
        filled.remove(gone)
        ids, dists = filled.search(small.vectors, len(small.ids))
        assert not set(ids.ravel().tolist()) & set(gone.tolist())
        assert_valid_result(ids, dists, set(small.ids.tolist()) - set(gone.tolist()), ids.shape[1])
        assert not any(int(i) in filled for i in gone)
        assert set(filled.ids().tolist()) == set(small.ids.tolist()) - set(gone.tolist())

    def test_unknown_ids_are_harmless(self, filled: Gallery, small: Enrolment) -> None:
        assert filled.remove([1, 2, -1]) == 0
        assert filled.remove([]) == 0
        assert len(filled) == len(small.ids)
        ids, _ = filled.search(small.mated, 1)
        np.testing.assert_array_equal(ids[:, 0], small.mated_ids)

    def test_removed_id_may_be_added_again(self, filled: Gallery, small: Enrolment) -> None:
        filled.remove(small.ids[:1])
        filled.add(small.ids[:1], small.vectors[1])
        ids, dists = filled.search(small.vectors[1], 2)
        assert sorted(ids[0].tolist()) == sorted(small.ids[:2].tolist())
        assert np.all(dists[0] < SAME_VECTOR)

    def test_removing_everything_leaves_an_empty_gallery(
        self, filled: Gallery, small: Enrolment
    ) -> None:
        assert filled.remove(small.ids) == len(small.ids)
        assert len(filled) == 0
        ids, dists = filled.search(small.mated[:2], 3)
        assert np.all(ids == -1)
        assert np.all(np.isinf(dists))


class TestExactAndApproximate:
    def test_flat_gallery_returns_the_exact_neighbours(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, kind="flat")
        gallery.add(large.ids[:5000], large.vectors[:5000])
        queries = np.vstack([large.mated[:100], large.strangers[:100]])
        ids, dists = gallery.search(queries, 10)
        exact_ids, exact_dists = exact_knn(large.ids[:5000], large.vectors[:5000], queries, 10)
        np.testing.assert_array_equal(ids, exact_ids)
        np.testing.assert_allclose(dists, exact_dists, atol=1e-4)

    @pytest.mark.parametrize(
        "gallery",
        [
            pytest.param(lambda: Gallery(DIM, kind="ivf"), id="ivf"),
            pytest.param(lambda: Gallery(DIM, ivf_min_size=IVF_MIN_SIZE), id="auto"),
        ],
    )
    def test_ivf_reaches_mated_rank1_recall_of_exact(
        self, large: Enrolment, gallery: Callable[[], Gallery]
    ) -> None:
        built = gallery()
        built.add(large.ids, large.vectors)
        assert built.index_kind == "ivf"
        ids, dists = built.search(large.mated, 10)
        exact_ids, exact_dists = exact_knn(large.ids, large.vectors, large.mated, 10)
        assert rank1_recall(ids, exact_ids) >= 0.99
        # Where the approximate answer is right, its distance is the exact one to within
        # the float16 storage of the IVF lists (a thousandth of the 0.17-0.29 genuine range).
        same = ids[:, 0] == exact_ids[:, 0]
        np.testing.assert_allclose(dists[same, 0], exact_dists[same, 0], atol=1e-3)
        assert_valid_result(ids, dists, set(large.ids.tolist()), 10)

    def test_recall_measure_sees_an_approximate_index_miss(self, large: Enrolment) -> None:
        # With 2 of 512 lists probed the index misses neighbours, and the measure says so.
        gallery = Gallery(DIM, kind="ivf", nprobe=2)
        gallery.add(large.ids, large.vectors)
        ids, _ = gallery.search(large.mated, 1)
        exact_ids, _ = exact_knn(large.ids, large.vectors, large.mated, 1)
        assert rank1_recall(ids, exact_ids) < 0.95

    def test_auto_switches_to_ivf_at_ivf_min_size(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, ivf_min_size=IVF_MIN_SIZE)
        gallery.add(large.ids[: IVF_MIN_SIZE - 1], large.vectors[: IVF_MIN_SIZE - 1])
        below = gallery.index_kind
        gallery.add(large.ids[IVF_MIN_SIZE - 1 : 3000], large.vectors[IVF_MIN_SIZE - 1 : 3000])
        # The switch is trained beside the flat index, which answers until it is done.
        assert gallery.wait_for_retrain()
        assert (below, gallery.index_kind) == ("flat", "ivf")
        assert len(gallery) == 3000
        # Every template, from before and after the switch, is its own nearest neighbour.
        ids, dists = gallery.search(large.vectors[:3000], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[:3000])
        assert np.all(dists[:, 0] < SAME_VECTOR_IVF)
        probes = large.mated[np.isin(large.mated_ids, large.ids[:3000])]
        found, _ = gallery.search(probes, 1)
        exact, _ = exact_knn(large.ids[:3000], large.vectors[:3000], probes, 1)
        assert rank1_recall(found, exact) >= 0.99

    def test_flat_kind_never_switches(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, kind="flat", ivf_min_size=IVF_MIN_SIZE)
        gallery.add(large.ids[:3000], large.vectors[:3000])
        assert gallery.index_kind == "flat"

    def test_ivf_kind_too_small_to_train_searches_exactly(self, small: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf")
        gallery.add(small.ids[:20], small.vectors[:20])
        assert gallery.index_kind == "flat"
        ids, _ = gallery.search(small.strangers[:10], 5)
        exact, _ = exact_knn(small.ids[:20], small.vectors[:20], small.strangers[:10], 5)
        np.testing.assert_array_equal(ids, exact)

    def test_fourfold_growth_retrains_and_keeps_every_id(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, ivf_min_size=IVF_MIN_SIZE)
        gallery.add(large.ids[:IVF_MIN_SIZE], large.vectors[:IVF_MIN_SIZE])
        nlist_before = faiss.extract_index_ivf(gallery._index).nlist
        for start in range(IVF_MIN_SIZE, 10_000, 1000):
            gallery.add(large.ids[start : start + 1000], large.vectors[start : start + 1000])
        assert gallery.wait_for_retrain()
        # White-box: the retrain path really ran (more lists for a larger gallery).
        assert faiss.extract_index_ivf(gallery._index).nlist > nlist_before
        assert len(gallery) == 10_000
        assert set(gallery.ids().tolist()) == set(large.ids[:10_000].tolist())
        ids, _ = gallery.search(large.vectors[:10_000], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[:10_000])


class TestOpenSet:
    """Validates the synthetic data: the margins an open-set threshold relies on hold."""

    def test_mated_probes_are_near_and_strangers_are_far(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, kind="flat")
        gallery.add(large.ids, large.vectors)
        mated_ids, mated = gallery.search(large.mated, 1)
        _, strangers = gallery.search(large.strangers, 1)
        np.testing.assert_array_equal(mated_ids[:, 0], large.mated_ids)
        assert float(mated.max()) < MATED_BELOW
        assert float(strangers.min()) > STRANGERS_ABOVE

    def test_genuine_and_impostor_pairs_sit_in_the_documented_ranges(self) -> None:
        faces = Faces(7)
        centres = faces.identities(2000)
        first, second = faces.captures(centres), faces.captures(centres)
        genuine = [distance(a, b) for a, b in zip(first, second, strict=True)]
        impostor = [distance(a, b) for a, b in zip(first, np.roll(second, 1, axis=0), strict=True)]
        assert min(genuine) > 0.15
        assert max(genuine) < 0.3
        assert 0.2 < float(np.median(genuine)) < 0.26
        assert min(impostor) > 0.45


def round_trip_bytes(gallery: Gallery, _: Path) -> Gallery:
    return Gallery.from_bytes(gallery.to_bytes())


def round_trip_view(gallery: Gallery, _folder: Path) -> Gallery:
    """From a memoryview into a larger buffer, as the snapshot loader reads it."""
    blob = b"header\n" + gallery.to_bytes()
    return Gallery.from_bytes(memoryview(blob)[len(b"header\n") :])


def round_trip_file(gallery: Gallery, folder: Path) -> Gallery:
    path = folder / "enrolled.gallery"
    gallery.save(path)
    assert [p.name for p in folder.iterdir()] == ["enrolled.gallery"]
    return Gallery.load(path)


class TestPersistence:
    @pytest.mark.parametrize("kind", ["flat", "ivf", "auto"])
    @pytest.mark.parametrize("round_trip", [round_trip_bytes, round_trip_view, round_trip_file])
    def test_round_trip_gives_identical_results(
        self,
        large: Enrolment,
        tmp_path: Path,
        kind: Kind,
        round_trip: Callable[[Gallery, Path], Gallery],
    ) -> None:
        gallery = Gallery(DIM, kind=kind, ivf_min_size=IVF_MIN_SIZE, nprobe=16)
        gallery.add(large.ids[:4000], large.vectors[:4000])
        gallery.remove(large.ids[:10])
        restored = round_trip(gallery, tmp_path)
        expected_kind = "flat" if kind == "flat" else "ivf"
        assert gallery.index_kind == expected_kind
        assert restored.index_kind == expected_kind
        assert (restored.dim, restored.kind, restored.ivf_min_size, restored.nprobe) == (
            DIM,
            kind,
            IVF_MIN_SIZE,
            16,
        )
        assert len(restored) == 3990
        assert int(large.ids[10]) in restored
        assert int(large.ids[9]) not in restored
        assert set(restored.ids().tolist()) == set(gallery.ids().tolist())
        queries = np.vstack([large.mated, large.strangers[:200]])
        before_ids, before_dists = gallery.search(queries, 10)
        after_ids, after_dists = restored.search(queries, 10)
        np.testing.assert_array_equal(after_ids, before_ids)
        np.testing.assert_array_equal(after_dists, before_dists)

    def test_restored_gallery_keeps_growing_and_retrains(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, ivf_min_size=IVF_MIN_SIZE)
        gallery.add(large.ids[:IVF_MIN_SIZE], large.vectors[:IVF_MIN_SIZE])
        restored = Gallery.from_bytes(gallery.to_bytes())
        restored.add(large.ids[IVF_MIN_SIZE:9000], large.vectors[IVF_MIN_SIZE:9000])
        assert restored.remove(large.ids[:5]) == 5
        ids, _ = restored.search(large.vectors[5:9000], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[5:9000])

    def test_an_ivf_flat_snapshot_loads_searches_and_retrains(self, large: Enrolment) -> None:
        # Snapshots written before the lists held float16 hold an IVF-Flat index (float32).
        vectors = normalise(large.vectors[:3000], DIM)
        quantizer = faiss.IndexFlatIP(DIM)
        old = faiss.IndexIVFFlat(quantizer, DIM, 32, faiss.METRIC_INNER_PRODUCT)
        old.train(vectors)
        old.add_with_ids(vectors, large.ids[:3000])
        old.nprobe = 32
        header = f"{DIM} auto {IVF_MIN_SIZE} 32 3000".encode().ljust(64)
        blob = b"BGAL1" + header + faiss.serialize_index(old).tobytes()
        restored = Gallery.from_bytes(blob)
        assert set(restored.ids().tolist()) == set(large.ids[:3000].tolist())
        ids, dists = restored.search(large.vectors[:50], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[:50])
        assert np.all(dists[:, 0] < SAME_VECTOR)  # still float32
        # Growing fourfold retrains on the decoded float32 vectors, into float16 lists.
        restored.add(large.ids[3000:12001], large.vectors[3000:12001])
        assert restored.wait_for_retrain()
        assert restored.trained_size == 12001
        ids, dists = restored.search(large.vectors[:12001:40], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[:12001:40])
        assert np.all(dists[:, 0] < SAME_VECTOR_IVF)

    def test_empty_gallery_round_trips(self, small: Enrolment) -> None:
        restored = Gallery.from_bytes(Gallery(DIM, kind="flat").to_bytes())
        assert len(restored) == 0
        assert restored.index_kind == "flat"
        ids, _ = restored.search(small.mated[0], 2)
        assert np.all(ids == -1)
        restored.add(small.ids, small.vectors)
        assert len(restored) == len(small.ids)

    @pytest.mark.parametrize(
        "blob", [b"", b"not a gallery snapshot at all", b"\x00" * 200, b"BGAL0" + b" " * 100]
    )
    def test_foreign_blob_is_refused(self, blob: bytes) -> None:
        with pytest.raises(ValueError, match="not a gallery snapshot"):
            Gallery.from_bytes(blob)

    @pytest.mark.parametrize(
        "corrupt",
        [
            pytest.param(lambda b: b[:5], id="magic only"),
            pytest.param(lambda b: b[:69], id="header only"),
            pytest.param(lambda b: b[:100], id="index header cut"),
            pytest.param(lambda b: b[: len(b) // 2], id="half"),
            pytest.param(lambda b: b[:-1], id="last byte missing"),
            pytest.param(lambda b: b[:5] + b"x" * 64 + b[69:], id="header garbage"),
            pytest.param(lambda b: b[:5] + b"128 hnsw".ljust(64) + b[69:], id="unknown kind"),
            pytest.param(lambda b: b[:69] + b"\xff" * 16 + b[85:], id="index type garbage"),
        ],
    )
    def test_corrupt_snapshot_fails_loudly(
        self, small: Enrolment, corrupt: Callable[[bytes], bytes]
    ) -> None:
        gallery = Gallery(DIM, kind="ivf")
        gallery.add(small.ids, small.vectors)
        # Header faults are ValueError; faiss's own reader raises RuntimeError on a broken
        # index. The one caller (enrollment/galleries.py) catches both and rebuilds.
        with pytest.raises((ValueError, RuntimeError)):
            Gallery.from_bytes(corrupt(gallery.to_bytes()))

    def test_restored_ivf_keeps_its_single_query_parallelism(self, small: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf")
        gallery.add(small.ids, small.vectors)
        restored = Gallery.from_bytes(gallery.to_bytes())
        assert faiss.extract_index_ivf(gallery._index).parallel_mode == 1
        assert faiss.extract_index_ivf(restored._index).parallel_mode == 1


@pytest.fixture(scope="module")
def wide() -> Enrolment:
    # Past the size from which an exact search is split across threads.
    return enrolment(seed=4, size=120_000, probes=40)


class TestThreads:
    """``threads``: the cores one search may use. Results never depend on it."""

    def test_a_split_exact_search_gives_the_exact_answer(self, wide: Enrolment) -> None:
        gallery = Gallery(DIM, kind="flat")
        gallery.add(wide.ids, wide.vectors)
        gallery.remove(wide.ids[::1000])  # the index compacts: row positions move
        one_thread, one_dists = zip(*(gallery.search(q, 7) for q in wide.mated), strict=True)
        gallery.tune(nprobe=gallery.nprobe, threads=3)
        split, split_dists = zip(*(gallery.search(q, 7) for q in wide.mated), strict=True)
        np.testing.assert_array_equal(np.vstack(split), np.vstack(one_thread))
        np.testing.assert_array_equal(np.vstack(split_dists), np.vstack(one_dists))
        kept = np.delete(np.arange(len(wide.ids)), np.arange(0, len(wide.ids), 1000))
        exact, exact_dists = exact_knn(wide.ids[kept], wide.vectors[kept], wide.mated, 7)
        np.testing.assert_array_equal(np.vstack(split), exact)
        np.testing.assert_allclose(np.vstack(split_dists), exact_dists, atol=1e-4)

    def test_a_split_search_pads_past_the_gallery_as_faiss_does(self, wide: Enrolment) -> None:
        gallery = Gallery(DIM, kind="flat", threads=2)
        gallery.add(wide.ids[:100_001], wide.vectors[:100_001])
        ids, dists = gallery.search(wide.mated[0], 100_003)
        assert_valid_result(ids, dists, set(wide.ids[:100_001].tolist()), 100_003)
        assert np.count_nonzero(ids == -1) == 2
        gallery.tune(nprobe=gallery.nprobe, threads=1)
        one_ids, _ = gallery.search(wide.mated[0], 100_003)
        np.testing.assert_array_equal(ids[0, :10], one_ids[0, :10])

    def test_ivf_on_two_threads_answers_as_on_one(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf", nprobe=8)
        gallery.add(large.ids, large.vectors)
        before = [gallery.search(q, 5) for q in large.mated[:100]]
        gallery.tune(nprobe=8, threads=2)
        after = [gallery.search(q, 5) for q in large.mated[:100]]
        for (ids, dists), (ids2, dists2) in zip(before, after, strict=True):
            np.testing.assert_array_equal(ids2, ids)
            np.testing.assert_array_equal(dists2, dists)

    def test_tune_sets_the_probed_lists(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, kind="ivf", nprobe=4096)
        gallery.add(large.ids, large.vectors)
        exact, _ = exact_knn(large.ids, large.vectors, large.mated, 1)
        assert rank1_recall(gallery.search(large.mated, 1)[0], exact) == 1.0
        gallery.tune(nprobe=1, threads=1)
        assert gallery.nprobe == 1
        assert rank1_recall(gallery.search(large.mated, 1)[0], exact) < 0.9

    @pytest.mark.parametrize(("nprobe", "threads"), [(0, 1), (1, 0)])
    def test_nonsense_settings_are_refused(self, nprobe: int, threads: int) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            Gallery(DIM, nprobe=nprobe, threads=threads)
        with pytest.raises(ValueError, match="at least 1"):
            Gallery(DIM).tune(nprobe=nprobe, threads=threads)


class TestConcurrency:
    def test_searches_during_adds_stay_valid_and_every_id_is_findable(
        self, large: Enrolment
    ) -> None:
        start, batch, batches = 1000, 250, 32  # ends at 9,000: flat, the IVF switch, a retrain
        gallery = Gallery(DIM, ivf_min_size=IVF_MIN_SIZE)
        gallery.add(large.ids[:start], large.vectors[:start])
        every = set(large.ids[: start + batch * batches].tolist())
        go = threading.Barrier(4)

        def writer() -> None:
            go.wait()
            for n in range(batches):
                lo = start + n * batch
                gallery.add(large.ids[lo : lo + batch], large.vectors[lo : lo + batch])

        def reader(seed: int) -> int:
            rng = np.random.default_rng(seed)
            go.wait()
            for _ in range(150):
                rows = rng.choice(start, 4, replace=False)
                ids, dists = gallery.search(large.vectors[rows], 5)
                assert_valid_result(ids, dists, every, 5)
                # Enrolled before the writer began: always found, as itself.
                np.testing.assert_array_equal(ids[:, 0], large.ids[rows])
                assert np.all(dists[:, 0] < SAME_VECTOR_IVF)
            return 150

        with ThreadPoolExecutor(max_workers=4) as pool:
            written = pool.submit(writer)
            reads = [pool.submit(reader, seed) for seed in (11, 12, 13)]
            written.result()
            assert sum(r.result() for r in reads) == 450

        assert gallery.wait_for_retrain()
        assert gallery.index_kind == "ivf"
        assert set(gallery.ids().tolist()) == every
        ids, _ = gallery.search(large.vectors[: len(every)], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[: len(every)])

    def test_concurrent_writers_all_land(self, large: Enrolment) -> None:
        gallery = Gallery(DIM, ivf_min_size=IVF_MIN_SIZE)
        chunks = np.array_split(np.arange(6000), 24)

        def add(rows: npt.NDArray[np.intp]) -> None:
            gallery.add(large.ids[rows], large.vectors[rows])

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(add, chunks))
        assert len(gallery) == 6000
        ids, _ = gallery.search(large.vectors[:6000], 1)
        np.testing.assert_array_equal(ids[:, 0], large.ids[:6000])
