"""Enrollment use cases: persons and captures, 1:N identify, 1:1 verify, the watchlist and
erasure. Each runs in one transaction with its audit event; galleries are updated after
the commit (the store is the truth; see enrollment/galleries.py)."""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import numpy as np

from audit import service as audit_service
from core import crypto
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import BorderError, NotFound
from core.runtime import Runtime
from enrollment import capture as capture_mod
from enrollment import models, store
from enrollment.galleries import Galleries, open_templates, seal_template
from enrollment.templates import FaceModel, Template
from matching.gallery import Gallery, distance
from visa import service as visa_service
from visa.mrz import MRZ

log = logging.getLogger(__name__)

_PERSON_FIELDS = ("surname", "given_names", "nationality", "birth_date", "sex")
_DEDUP_CANDIDATES = 5


class DuplicateIdentity(BorderError):
    code = "duplicate_identity"
    status = 409


@dataclass
class Biometrics:
    """The face model and the galleries, held for the process's lifetime."""

    model: FaceModel
    galleries: Galleries

    @classmethod
    def start(cls, rt: Runtime, model: FaceModel | None = None) -> "Biometrics":
        """Load the face model (unless one is given: tests share one per session), warm
        it up, and open the galleries from their snapshot and the store."""
        if model is None:
            model = FaceModel(
                detector=rt.settings.face_detector, detect_size=rt.settings.face_detect_size
            )
            model.warm_up()
        galleries = Galleries(rt.settings)
        with rt.pool.connection() as conn:
            galleries.open(conn, rt.keys)
        log.info(
            "galleries ready: %d templates, %d on the watchlist",
            len(galleries.enrolled),
            len(galleries.watchlist),
        )
        return cls(model, galleries)

    def close(self, rt: Runtime) -> None:
        self.galleries.save(rt.keys)


def _now() -> datetime:
    return datetime.now(UTC)


def _seal(key: bytes, table: str, column: str, row_id: UUID, value: str) -> bytes:
    return crypto.seal(key, value.encode(), crypto.aad(table, column, row_id))


def _open(key: bytes, table: str, column: str, row_id: UUID, blob: bytes) -> str:
    return crypto.unseal(key, blob, crypto.aad(table, column, row_id)).decode()


def _data_key(rt: Runtime, conn: Conn, person_id: UUID) -> bytes:
    key = rt.keys.data_key(conn, person_id)
    if key is None:
        raise NotFound("person", person_id)
    return key


def document_blind_index(rt: Runtime, issuing_state: str, number: str) -> bytes:
    return rt.keys.blind_index(f"{issuing_state}|{number}")


def candidates(
    conn: Conn, gallery: Gallery, template: Template, *, k: int, threshold: float
) -> list[models.Candidate]:
    """Open-set 1:N: persons with a capture within ``threshold``, nearest first, at most k.
    Nobody within the threshold is "no match", never the nearest stranger. Captures that
    no longer exist in the store (erased) never come back."""
    if not len(gallery):
        return []
    # A person may hold several captures: ask for more neighbours than persons wanted.
    ids, dists = gallery.search(template, min(len(gallery), 3 * k))
    near = [
        (int(i), float(d))
        for i, d in zip(ids[0], dists[0], strict=True)
        if i >= 0 and d <= threshold
    ]
    owners = store.persons_of_captures(conn, [seq for seq, _ in near])
    best: dict[UUID, float] = {}
    for seq, dist in near:
        person = owners.get(seq)
        if person is not None and dist < best.get(person, np.inf):
            best[person] = dist
    ranked = sorted(best.items(), key=lambda item: item[1])[:k]
    return [models.Candidate(person_id=p, distance=round(d, 4)) for p, d in ranked]


def _insert_capture(
    rt: Runtime,
    conn: Conn,
    key: bytes,
    person_id: UUID,
    image: bytes,
    capture: capture_mod.Capture,
    station: str,
) -> tuple[UUID, int]:
    capture_id, seq = uuid4(), store.next_capture_seq(conn)
    store.insert_capture(
        conn,
        store.CaptureRow(
            id=capture_id,
            seq=seq,
            person_id=person_id,
            quality=capture.quality_report(),
            station=station,
            created_at=_now(),
        ),
        image=crypto.seal(key, image, crypto.aad("captures", "image", capture_id)),
        template=seal_template(key, capture_id, capture.face.template),
    )
    return capture_id, seq


def _refuse_duplicates(
    rt: Runtime, bio: Biometrics, conn: Conn, template: Template, person_id: UUID | None
) -> None:
    """Under the enrollment lock: bring the gallery up to date, then refuse the capture if
    it lies within the dedup threshold of anyone but ``person_id``."""
    bio.galleries.catch_up(conn, rt.keys)
    found = [
        c
        for c in candidates(
            conn,
            bio.galleries.enrolled,
            template,
            k=_DEDUP_CANDIDATES,
            threshold=bio.galleries.identify_threshold(),
        )
        if c.person_id != person_id
    ]
    if found:
        raise DuplicateIdentity(
            "this face is already enrolled under another person",
            candidates=[c.model_dump(mode="json") for c in found],
        )


def _station(principal: Principal) -> str:
    return principal.border_point or principal.role


def enroll(
    rt: Runtime, bio: Biometrics, principal: Principal, *, image: bytes, mrz_text: str
) -> models.PersonCreated:
    """A new person from a travel document's MRZ and a face capture."""
    document = visa_service.read_mrz(mrz_text)
    capture = capture_mod.analyse(bio.model, image, rt.settings)
    return enroll_document(rt, bio, principal, document=document, image=image, capture=capture)


def enroll_document(
    rt: Runtime,
    bio: Biometrics,
    principal: Principal,
    *,
    document: MRZ,
    image: bytes,
    capture: capture_mod.Capture,
) -> models.PersonCreated:
    """Write a person, their document and first capture, once dedup has passed."""
    with transaction(rt.pool) as conn:
        created, seq = enroll_in(
            rt, bio, conn, principal, document=document, image=image, capture=capture
        )
    bio.galleries.add([seq], [capture.face.template], set())
    return created


def enroll_in(
    rt: Runtime,
    bio: Biometrics,
    conn: Conn,
    principal: Principal,
    *,
    document: MRZ,
    image: bytes,
    capture: capture_mod.Capture,
    station: str | None = None,
) -> tuple[models.PersonCreated, int]:
    """Enroll inside the caller's transaction (a crossing enrolls a first-time visitor in
    its own). Refuses a known document or face with DuplicateIdentity before writing
    anything. Returns the capture number: the caller adds it to the galleries once its
    transaction has committed."""
    person_id, document_id = uuid4(), uuid4()
    blind_index = document_blind_index(rt, document.issuing_state, document.document_number)
    store.lock_enrollment(conn)
    holder = store.person_by_blind_index(conn, blind_index)
    if holder is not None:
        raise DuplicateIdentity(
            "this document is already enrolled",
            candidates=[{"person_id": str(holder), "match": "document"}],
        )
    _refuse_duplicates(rt, bio, conn, capture.face.template, None)
    key = rt.keys.data_key(conn, person_id, create=True)
    assert key is not None
    values = {
        "surname": document.surname,
        "given_names": document.given_names,
        "nationality": document.nationality,
        "birth_date": document.birth_date.isoformat() if document.birth_date else "",
        "sex": document.sex,
    }
    now = _now()
    store.insert_person(
        conn,
        store.PersonRow(
            id=person_id,
            status="active",
            created_at=now,
            updated_at=now,
            **{f: _seal(key, "persons", f, person_id, values[f]) for f in _PERSON_FIELDS},
        ),
    )
    store.insert_document(
        conn,
        store.DocumentRow(
            id=document_id,
            person_id=person_id,
            document_code=document.document_code,
            issuing_state=document.issuing_state,
            expiry_date=document.expiry_date,
            number=_seal(key, "documents", "number", document_id, document.document_number),
            blind_index=blind_index,
            created_at=now,
        ),
    )
    capture_id, seq = _insert_capture(
        rt, conn, key, person_id, image, capture, station or _station(principal)
    )
    audit_service.record(
        conn,
        rt.keys,
        principal,
        "persons.create",
        resource_type="person",
        resource_id=person_id,
        detail={"capture_id": str(capture_id), "document_id": str(document_id)},
    )
    created = models.PersonCreated(
        person_id=person_id,
        capture_id=capture_id,
        quality=capture.quality_report(),
        document=models.DocumentOut(
            document_code=document.document_code,
            issuing_state=document.issuing_state,
            document_number=document.document_number,
            expiry_date=document.expiry_date,
        ),
    )
    return created, seq


def add_capture(
    rt: Runtime, bio: Biometrics, principal: Principal, person_id: UUID, *, image: bytes
) -> models.CaptureCreated:
    capture = capture_mod.analyse(bio.model, image, rt.settings)
    with transaction(rt.pool) as conn:
        store.lock_enrollment(conn)
        if store.get_person(conn, person_id, lock=True) is None:
            raise NotFound("person", person_id)
        _refuse_duplicates(rt, bio, conn, capture.face.template, person_id)
        key = _data_key(rt, conn, person_id)
        capture_id, seq = _insert_capture(
            rt, conn, key, person_id, image, capture, _station(principal)
        )
        watched = store.is_watchlisted(conn, person_id)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "captures.create",
            resource_type="person",
            resource_id=person_id,
            detail={"capture_id": str(capture_id)},
        )
    bio.galleries.add([seq], [capture.face.template], {seq} if watched else set())
    return models.CaptureCreated(
        person_id=person_id, capture_id=capture_id, quality=capture.quality_report()
    )


def get_person(rt: Runtime, principal: Principal, person_id: UUID) -> models.PersonOut:
    with transaction(rt.pool) as conn:
        row = store.get_person(conn, person_id)
        if row is None:
            raise NotFound("person", person_id)
        key = _data_key(rt, conn, person_id)
        fields = {f: _open(key, "persons", f, person_id, getattr(row, f)) for f in _PERSON_FIELDS}
        documents = [
            models.DocumentOut(
                document_code=d.document_code,
                issuing_state=d.issuing_state,
                document_number=_open(key, "documents", "number", d.id, d.number),
                expiry_date=d.expiry_date,
            )
            for d in store.documents_of(conn, person_id)
        ]
        captures = [
            models.CaptureOut(
                capture_id=c.id, station=c.station, quality=c.quality, created_at=c.created_at
            )
            for c in store.captures_of(conn, person_id)
        ]
        watchlisted = store.is_watchlisted(conn, person_id)
        visas = visa_service.visas_of(conn, person_id)
        audit_service.record(
            conn, rt.keys, principal, "persons.read", resource_type="person", resource_id=person_id
        )
    return models.PersonOut(
        person_id=person_id,
        status=row.status,
        surname=fields["surname"],
        given_names=fields["given_names"],
        nationality=fields["nationality"],
        birth_date=date.fromisoformat(fields["birth_date"]) if fields["birth_date"] else None,
        sex=fields["sex"],
        created_at=row.created_at,
        watchlisted=watchlisted,
        documents=documents,
        captures=captures,
        visas=visas,
    )


def erase(rt: Runtime, bio: Biometrics, principal: Principal, person_id: UUID) -> None:
    """Crypto-shred the person: their data key goes, documents and captures are deleted,
    watchlist entries ended, templates removed from every gallery. The audit trail stays."""
    with transaction(rt.pool) as conn:
        store.lock_enrollment(conn)
        if store.get_person(conn, person_id, lock=True) is None:
            raise NotFound("person", person_id)
        seqs = store.erase_person(conn, person_id, _now())
        rt.keys.shred(conn, person_id)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "persons.erase",
            resource_type="person",
            resource_id=person_id,
            detail={"captures_removed": len(seqs)},
        )
    bio.galleries.remove(seqs)


def identify(
    rt: Runtime, bio: Biometrics, principal: Principal, *, image: bytes, k: int
) -> models.IdentifyOut:
    capture = capture_mod.analyse(bio.model, image, rt.settings)
    with transaction(rt.pool) as conn:
        bio.galleries.catch_up(conn, rt.keys)
        threshold = bio.galleries.identify_threshold()
        found = candidates(
            conn, bio.galleries.enrolled, capture.face.template, k=k, threshold=threshold
        )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "identify",
            detail={"k": k, "candidates": [str(c.person_id) for c in found]},
        )
    return models.IdentifyOut(candidates=found, threshold=round(threshold, 4))


def verify_template(rt: Runtime, conn: Conn, person_id: UUID, template: Template) -> float:
    """Smallest distance between ``template`` and the person's enrolled captures."""
    rows = store.templates_of(conn, person_id)
    _, enrolled = open_templates(rt.keys, rows)
    if not enrolled:
        raise NotFound("capture of person", person_id)
    return min(distance(template, t) for t in enrolled)


def verify(
    rt: Runtime, bio: Biometrics, principal: Principal, *, image: bytes, person_id: UUID
) -> models.VerifyOut:
    capture = capture_mod.analyse(bio.model, image, rt.settings)
    threshold = rt.settings.verify_threshold
    with transaction(rt.pool) as conn:
        if store.get_person(conn, person_id) is None:
            raise NotFound("person", person_id)
        best = verify_template(rt, conn, person_id, capture.face.template)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "verify",
            resource_type="person",
            resource_id=person_id,
            detail={"match": best <= threshold, "distance": round(best, 4)},
        )
    return models.VerifyOut(match=best <= threshold, distance=round(best, 4), threshold=threshold)


def watchlist_add(
    rt: Runtime, bio: Biometrics, principal: Principal, body: models.WatchlistIn
) -> models.WatchlistCreated:
    entry_id = uuid4()
    with transaction(rt.pool) as conn:
        if store.get_person(conn, body.person_id, lock=True) is None:
            raise NotFound("person", body.person_id)
        key = _data_key(rt, conn, body.person_id)
        store.insert_watchlist(
            conn,
            store.WatchlistRow(
                id=entry_id,
                person_id=body.person_id,
                reason=_seal(key, "watchlist", "reason", entry_id, body.reason),
                added_by=principal.actor,
                active=True,
                created_at=_now(),
                deactivated_at=None,
            ),
        )
        seqs, templates = open_templates(rt.keys, store.templates_of(conn, body.person_id))
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "watchlist.add",
            resource_type="person",
            resource_id=body.person_id,
            detail={"entry_id": str(entry_id)},
        )
    bio.galleries.add(seqs, templates, set(seqs))
    return models.WatchlistCreated(entry_id=entry_id)


def watchlist_list(rt: Runtime, principal: Principal) -> list[models.WatchlistEntry]:
    with transaction(rt.pool) as conn:
        entries = []
        for row in store.active_watchlist(conn):
            key = _data_key(rt, conn, row.person_id)
            entries.append(
                models.WatchlistEntry(
                    entry_id=row.id,
                    person_id=row.person_id,
                    reason=_open(key, "watchlist", "reason", row.id, row.reason),
                    added_by=row.added_by,
                    created_at=row.created_at,
                )
            )
        audit_service.record(
            conn, rt.keys, principal, "watchlist.read", detail={"entries": len(entries)}
        )
    return entries


def watchlist_remove(rt: Runtime, bio: Biometrics, principal: Principal, entry_id: UUID) -> None:
    """End an entry; the person leaves the watchlist gallery when no active entry is left."""
    with transaction(rt.pool) as conn:
        row = store.deactivate_watchlist(conn, entry_id, principal.actor, _now())
        if row is None:
            raise NotFound("watchlist entry", entry_id)
        still = store.is_watchlisted(conn, row.person_id)
        seqs = [] if still else [t.seq for t in store.templates_of(conn, row.person_id)]
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "watchlist.remove",
            resource_type="person",
            resource_id=row.person_id,
            detail={"entry_id": str(entry_id)},
        )
    if seqs:
        bio.galleries.remove(seqs, watchlist_only=True)


def watchlist_hits(
    rt: Runtime, bio: Biometrics, conn: Conn, template: Template
) -> list[models.Candidate]:
    """Watchlisted persons whose captures lie within the 1:N threshold of ``template``.
    The watchlist is small, so the threshold for a gallery of its size applies. Entries
    ended since this process's gallery was built are dropped against the store; entries
    made by other processes are taken in first."""
    bio.galleries.sync_watchlist(conn, rt.keys)
    found = candidates(
        conn,
        bio.galleries.watchlist,
        template,
        k=_DEDUP_CANDIDATES,
        threshold=rt.settings.identify_threshold,
    )
    active = store.watchlisted_persons(conn, [c.person_id for c in found]) if found else set()
    return [c for c in found if c.person_id in active]


def person_by_document(rt: Runtime, conn: Conn, issuing_state: str, number: str) -> UUID | None:
    """The holder of a document, found through its blind index without decrypting."""
    return store.person_by_blind_index(conn, document_blind_index(rt, issuing_state, number))


@dataclass(frozen=True)
class PersonFacts:
    """What the crossing rules need of an enrolled person, decrypted."""

    nationality: str
    birth_date: date | None


def person_facts(rt: Runtime, conn: Conn, person_id: UUID) -> PersonFacts | None:
    """None when the person is unknown or erased."""
    row = store.get_person(conn, person_id)
    if row is None or row.nationality is None or row.birth_date is None:
        return None
    key = _data_key(rt, conn, person_id)
    birth = _open(key, "persons", "birth_date", person_id, row.birth_date)
    return PersonFacts(
        nationality=_open(key, "persons", "nationality", person_id, row.nationality),
        birth_date=date.fromisoformat(birth) if birth else None,
    )


def is_watchlisted(conn: Conn, person_id: UUID) -> bool:
    return store.is_watchlisted(conn, person_id)
