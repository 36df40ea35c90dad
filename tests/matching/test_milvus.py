"""One contract, three backends (DESIGN §13): the FAISS gallery in process, Milvus Lite on a
file, and a real Milvus standalone server. Synthetic templates shaped like dlib's (see
tests/matching/test_gallery.py): captures of one person about 0.235 apart, strangers about
0.68."""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from matching.gallery import Gallery
from matching.milvus import GalleryUnavailable, MilvusGallery, connect, is_lite
from tests.matching.test_gallery import MATED_BELOW, STRANGERS_ABOVE, Faces
from tests.milvus import Relay

AnyGallery = Gallery | MilvusGallery
Opener = Callable[[], AnyGallery]
SAME_VECTOR = 1e-3  # an identical vector comes back at float32's rounding of sqrt(2 - 2s)


@pytest.fixture(params=["faiss", "lite", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Opener]]:
    """The backend's name and how to open (again) the one gallery of this test; a
    reopened Milvus gallery is a new client on the same store, as after a restart."""
    kind: str = request.param
    if kind == "faiss":
        gallery = Gallery(kind="flat")
        yield kind, lambda: gallery
        return
    uri = (
        str(tmp_path / "milvus.db") if kind == "lite" else request.getfixturevalue("milvus_server")
    )
    name = f"t_{uuid.uuid4().hex[:12]}"
    opened: list[MilvusGallery] = []

    def open_gallery() -> MilvusGallery:
        if opened and is_lite(uri):
            opened[-1].close()  # Milvus Lite: one client on the file at a time
        gallery = MilvusGallery(connect(uri), name, lite=is_lite(uri))
        opened.append(gallery)
        return gallery

    yield kind, open_gallery
    opened[-1].drop()
    opened[-1].close()


def people(seed: int, n: int) -> tuple[Faces, npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    faces = Faces(seed)
    centres = faces.identities(n)
    return faces, centres, faces.captures(centres)


class TestContract:
    def test_add_search_remove_and_padding(self, backend: tuple[str, Opener]) -> None:
        _, open_gallery = backend
        gallery = open_gallery()
        faces, centres, enrolled = people(1, 300)
        gallery.add(np.arange(1, 301), enrolled)
        assert len(gallery) == 300
        assert sorted(gallery.ids().tolist()) == list(range(1, 301))

        # The same vector comes back first at distance ~0, then strangers far away.
        ids, dists = gallery.search(enrolled[:3], 2)
        assert ids[:, 0].tolist() == [1, 2, 3]
        assert np.all(dists[:, 0] < SAME_VECTOR)
        assert np.all(dists[:, 1] > STRANGERS_ABOVE)

        # A fresh capture of person 7 is found within the mated margin.
        ids, dists = gallery.search(faces.captures(centres[6:7]), 1)
        assert (int(ids[0, 0]), bool(dists[0, 0] < MATED_BELOW)) == (7, True)

        assert gallery.remove([7, 8, 9999]) == 2
        assert len(gallery) == 298
        assert 7 not in gallery
        ids, _ = gallery.search(enrolled[6], 1)
        assert int(ids[0, 0]) != 7

        # More neighbours asked than held: -1 and inf pad the answer.
        small = people(2, 2)[2]
        gallery.remove(np.arange(1, 301))
        gallery.add([41, 42], small)
        ids, dists = gallery.search(small[0], 5)
        assert ids[0].tolist()[:2] == [41, 42]
        assert ids[0].tolist()[2:] == [-1, -1, -1]
        assert np.all(np.isinf(dists[0, 2:]))

    def test_the_same_distances_as_the_faiss_gallery(self, backend: tuple[str, Opener]) -> None:
        _, open_gallery = backend
        gallery = open_gallery()
        faces, centres, enrolled = people(3, 500)
        reference = Gallery(kind="flat")
        reference.add(np.arange(500), enrolled)
        gallery.add(np.arange(500), enrolled)
        probes = faces.captures(centres[:50])
        want_ids, want = reference.search(probes, 5)
        got_ids, got = gallery.search(probes, 5)
        assert np.array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got, want, atol=1e-4)

    def test_open_set_a_stranger_is_no_match(self, backend: tuple[str, Opener]) -> None:
        """1:N is open-set: the nearest of 1,000 enrolled lies beyond the threshold for a
        stranger, within it for an enrolled person's new capture."""
        _, open_gallery = backend
        gallery = open_gallery()
        faces, centres, enrolled = people(4, 1000)
        gallery.add(np.arange(1000), enrolled)
        strangers = faces.captures(faces.identities(20))
        _, far = gallery.search(strangers, 1)
        assert np.all(far[:, 0] > STRANGERS_ABOVE)
        ids, near = gallery.search(faces.captures(centres[:20]), 1)
        assert ids[:, 0].tolist() == list(range(20))
        assert np.all(near[:, 0] < MATED_BELOW)

    def test_adding_again_changes_nothing(self, backend: tuple[str, Opener]) -> None:
        kind, open_gallery = backend
        gallery = open_gallery()
        enrolled = people(5, 10)[2]
        gallery.add(np.arange(10), enrolled)
        if kind == "faiss":
            # In process an id present is refused: the caller skips what it holds.
            with pytest.raises(ValueError, match="already in the gallery"):
                gallery.add([3], enrolled[3])
        else:
            # Two workers may add one committed capture: Milvus keeps one row.
            gallery.add([3], enrolled[3])
        assert len(gallery) == 10
        assert gallery.ids().tolist().count(3) == 1

    def test_bad_vectors_are_refused_before_anything_is_written(
        self, backend: tuple[str, Opener]
    ) -> None:
        _, open_gallery = backend
        gallery = open_gallery()
        for ids, vectors in (
            ([1], np.zeros((1, 128))),
            ([1], np.full((1, 128), np.nan)),
            ([1], np.ones((1, 64))),
            ([1, 1], np.ones((2, 128))),
            ([-5], np.ones((1, 128))),
            ([1, 2], np.ones((1, 128))),
        ):
            with pytest.raises(ValueError, match=r"vector|ids"):
                gallery.add(ids, vectors)
        assert len(gallery) == 0

    def test_a_restart_finds_what_was_written(self, backend: tuple[str, Opener]) -> None:
        kind, open_gallery = backend
        if kind == "faiss":
            pytest.skip("the FAISS gallery survives restarts through its sealed snapshot")
        gallery = open_gallery()
        enrolled = people(6, 50)[2]
        gallery.add(np.arange(50), enrolled)
        gallery.remove([0])
        again = open_gallery()
        assert len(again) == 49
        ids, _ = again.search(enrolled[10], 1)
        assert int(ids[0, 0]) == 10

    def test_a_rebuild_replaces_the_contents(self, backend: tuple[str, Opener]) -> None:
        kind, open_gallery = backend
        if kind == "faiss":
            pytest.skip("the FAISS gallery is rebuilt by enrollment.galleries")
        gallery = open_gallery()
        assert isinstance(gallery, MilvusGallery)
        enrolled = people(7, 40)[2]
        gallery.add(np.arange(40), enrolled)
        written = gallery.rebuild(
            [(np.arange(100, 120), enrolled[:20]), (np.arange(120, 140), enrolled[20:])]
        )
        assert written == 40
        assert sorted(gallery.ids().tolist()) == list(range(100, 140))
        ids, _ = gallery.search(enrolled[5], 1)
        assert int(ids[0, 0]) == 105


class TestServer:
    def test_a_rebuild_moves_the_name_and_leaves_one_collection(self, milvus_server: str) -> None:
        name = f"t_{uuid.uuid4().hex[:12]}"
        gallery = MilvusGallery(connect(milvus_server), name, lite=False)
        try:
            enrolled = people(8, 20)[2]
            gallery.add(np.arange(20), enrolled)
            first = gallery.client.describe_alias(name)["collection_name"]
            gallery.rebuild([(np.arange(20), enrolled)])
            second = gallery.client.describe_alias(name)["collection_name"]
            assert first != second
            kept = [c for c in gallery.client.list_collections() if c.startswith(name)]
            assert kept == [second]
            # Another client (another worker) sees the rebuilt gallery under the name. (Not
            # closed here: pymilvus shares one connection between clients of one URI.)
            other = MilvusGallery(connect(milvus_server), name, lite=False)
            assert len(other) == 20
        finally:
            gallery.drop()
            gallery.close()

    def test_going_away_is_unavailable_and_coming_back_needs_no_restart(
        self, milvus_server: str
    ) -> None:
        relay = Relay(int(milvus_server.rsplit(":", 1)[1]))
        name = f"t_{uuid.uuid4().hex[:12]}"
        gallery = MilvusGallery(connect(relay.uri, timeout_s=3), name, lite=False, timeout_s=3)
        enrolled = people(9, 5)[2]
        try:
            gallery.add(np.arange(5), enrolled)
            relay.cut()
            with pytest.raises(GalleryUnavailable):
                gallery.search(enrolled[0], 1)
            with pytest.raises(GalleryUnavailable):
                gallery.add([9], enrolled[0])
            relay.restore()
            ids, _ = gallery.search(enrolled[2], 1)
            assert int(ids[0, 0]) == 2
            assert len(gallery) == 5
        finally:
            relay.restore()
            gallery.drop()
            gallery.close()
            relay.close()


def test_an_unreachable_server_is_unavailable_at_once() -> None:
    from tests.milvus import free_port

    with pytest.raises(GalleryUnavailable):
        connect(f"http://127.0.0.1:{free_port()}", timeout_s=2)


def test_milvus_lite_refuses_a_second_process_on_its_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "held.db"
    gallery = MilvusGallery(connect(str(path)), "held", lite=True)
    try:
        other = subprocess.run(
            [sys.executable, "-c",
             "import sys\nfrom matching.milvus import connect, GalleryUnavailable\n"
             "try:\n    connect(sys.argv[1])\nexcept GalleryUnavailable:\n    sys.exit(3)\n",
             str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 3, other.stderr[-2000:]
    finally:
        gallery.close()
