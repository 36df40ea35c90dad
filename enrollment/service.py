"""Enrollment use cases: persons and captures, 1:N identify, 1:1 verify, the watchlist and
erasure. Each runs in one transaction with its audit event; galleries are updated after
the commit (the store is the truth; see enrollment/galleries.py)."""

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np

from audit import service as audit_service
from core import crypto
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import BorderError, Forbidden, InvalidRequest, NoLongerHeld, NotFound
from core.runtime import Runtime
from enrollment import capture as capture_mod
from enrollment import chip_check, indexes, models, store
from enrollment.galleries import AnyGallery, Galleries, open_templates, seal_template
from enrollment.templates import FaceModel, Template
from matching.gallery import distance
from visa import rules as visa_rules
from visa import service as visa_service
from visa.mrz import MRZ, normalise_name

log = logging.getLogger(__name__)

_PERSON_FIELDS = ("surname", "given_names", "nationality", "birth_date", "sex")
_DEDUP_CANDIDATES = 5


class DuplicateIdentity(BorderError):
    code = "duplicate_identity"
    status = 409


class AlreadyExists(BorderError):
    code = "conflict"
    status = 409


class FaceMismatch(BorderError):
    code = "face_mismatch"
    status = 422


class ChipInvalid(BorderError):
    """The passport chip presented at enrollment failed a check (``failed_check``)."""

    code = "chip_invalid"
    status = 422


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
        self.galleries.close()


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
    return indexes.document_index(rt.keys, issuing_state, number)


def _name_index(rt: Runtime, surname: str, given_names: str, birth: date | None) -> bytes:
    """A person's name index: their name as the MRZ gave it (already normalised: A-Z and
    single spaces) with the full birth date, or none when it is unknown."""
    return indexes.name_key(
        rt.keys, surname, given_names, birth.isoformat() if birth is not None else ""
    )


def candidates(
    conn: Conn, gallery: AnyGallery, template: Template, *, k: int, threshold: float
) -> list[models.Candidate]:
    """Open-set 1:N: persons with a capture within ``threshold``, nearest first, at most k.
    Nobody within the threshold is "no match", never the nearest stranger. Captures that
    no longer exist in the store (erased) never come back."""
    # A person may hold several captures: ask for more neighbours than persons wanted. Not
    # bounded by len(gallery): in Milvus that is a count another worker may have outdated.
    ids, dists = gallery.search(template, 3 * k)
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


def _insert_chip_capture(
    conn: Conn, key: bytes, person_id: UUID, chip: chip_check.ChipResult, station: str
) -> UUID:
    """The chip's photo as a capture marked ``source = chip``: no quality figures (the
    issuing state's photo is not judged by ours). Galleries pick it up from the store."""
    assert chip.face is not None
    assert chip.face_jpeg is not None
    capture_id, seq = uuid4(), store.next_capture_seq(conn)
    store.insert_capture(
        conn,
        store.CaptureRow(
            id=capture_id, seq=seq, person_id=person_id, quality={}, station=station,
            created_at=_now(), source="chip",
        ),
        image=crypto.seal(key, chip.face_jpeg, crypto.aad("captures", "image", capture_id)),
        template=seal_template(key, capture_id, chip.face.template),
    )  # fmt: skip
    return capture_id


def _enrollment_chip(
    rt: Runtime,
    bio: Biometrics,
    files: chip_check.ChipFiles | None,
    *,
    store_face: bool,
    mrz_text: str,
    document: MRZ,
    capture: capture_mod.Capture,
) -> chip_check.ChipResult | None:
    """The chip presented at enrollment (DESIGN §16), checked before anything is written:
    a failed check refuses the enrollment (422 ``chip_invalid`` naming it), a chip photo
    that is not the live face too (``face_mismatch``). A chip no imported CSCA vouches for
    is enrolled, and the answer says ``no_trust_anchor``. Only a chip that passed gives
    its photo as a capture (``store_face``)."""
    if files is None or not files.presented:
        if store_face:
            raise InvalidRequest(
                "`store_chip_face` needs the chip's files (dg1, dg2, sod)", field="store_chip_face"
            )
        return None
    result = chip_check.check(
        rt, bio.model, files, mrz=mrz_text, issuing_state=document.issuing_state, at=_now(),
        live=capture.face.template,
    )  # fmt: skip
    if result.failed_check is not None:
        raise ChipInvalid(
            f"the passport chip failed {result.failed_check}: {result.detail}",
            failed_check=result.failed_check,
        )
    threshold = rt.settings.verify_threshold
    if result.face_distance is not None and result.face_distance > threshold:
        raise FaceMismatch(
            "the live face is not the face on the passport chip",
            distance=round(result.face_distance, 4),
            threshold=threshold,
        )
    if store_face and (result.passive_authentication != "passed" or result.face is None):
        raise InvalidRequest(
            "only the photo of a chip that passed passive authentication (with its dg2) is "
            "stored as a capture",
            field="store_chip_face",
        )
    return result


def _chip_summary(chip: chip_check.ChipResult | None) -> models.ChipSummary | None:
    if chip is None:
        return None
    return models.ChipSummary(
        passive_authentication=chip.passive_authentication,
        failed_check=chip.failed_check,
        face_distance=None if chip.face_distance is None else round(chip.face_distance, 4),
    )


def _refuse_duplicates(
    rt: Runtime,
    bio: Biometrics,
    conn: Conn,
    template: Template,
    person_id: UUID | None,
    overridden: frozenset[UUID] = frozenset(),
) -> list[models.Candidate]:
    """Under the enrollment lock: bring the gallery up to date, then refuse the capture if
    it lies within the dedup threshold of anyone but ``person_id`` whom an officer has not
    compared and rejected (``overridden``). Returns the overridden candidates found."""
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
    if any(c.person_id not in overridden for c in found):
        raise DuplicateIdentity(
            "this face is already enrolled under another person",
            candidates=[c.model_dump(mode="json") for c in found],
        )
    return found


def _station(principal: Principal) -> str:
    return principal.border_point or principal.role


@dataclass(frozen=True)
class Override:
    """An officer's adjudication of a dedup match: the candidates compared and rejected."""

    not_duplicate_of: frozenset[UUID]
    note: str


def enroll(
    rt: Runtime,
    bio: Biometrics,
    principal: Principal,
    *,
    image: bytes,
    mrz_text: str,
    override: Override | None = None,
    chip: chip_check.ChipFiles | None = None,
    store_chip_face: bool = False,
) -> models.PersonCreated:
    """A new person from a travel document's MRZ and a face capture; with ``override``
    (officers only), over the dedup candidates the officer rejected; with ``chip``, the
    passport chip checked first (:func:`_enrollment_chip`). Counted in the metrics by
    outcome: ``enrolled`` or the refusal's code."""
    try:
        if override is not None and principal.role != "officer":
            raise Forbidden("only an officer may enroll over dedup candidates (not_duplicate_of)")
        document = visa_service.read_mrz(mrz_text)
        capture = capture_mod.analyse(bio.model, image, rt.settings)
        checked = _enrollment_chip(
            rt, bio, chip, store_face=store_chip_face, mrz_text=mrz_text, document=document,
            capture=capture,
        )  # fmt: skip
        created = enroll_document(
            rt, bio, principal, document=document, image=image, capture=capture, override=override,
            chip=checked, store_chip_face=store_chip_face,
        )  # fmt: skip
    except BorderError as refused:
        rt.metrics.enrollment(refused.code)
        raise
    rt.metrics.enrollment("enrolled")
    return created


def enroll_document(
    rt: Runtime,
    bio: Biometrics,
    principal: Principal,
    *,
    document: MRZ,
    image: bytes,
    capture: capture_mod.Capture,
    override: Override | None = None,
    chip: chip_check.ChipResult | None = None,
    store_chip_face: bool = False,
) -> models.PersonCreated:
    """Write a person, their document and first capture, once dedup has passed."""
    with transaction(rt.pool) as conn:
        created, seq = enroll_in(
            rt, bio, conn, principal, document=document, image=image, capture=capture,
            override=override, chip=chip, store_chip_face=store_chip_face,
        )  # fmt: skip
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
    override: Override | None = None,
    chip: chip_check.ChipResult | None = None,
    store_chip_face: bool = False,
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
    rejected = _refuse_duplicates(
        rt, bio, conn, capture.face.template, None,
        override.not_duplicate_of if override else frozenset(),
    )  # fmt: skip
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
            name_index=_name_index(rt, document.surname, document.given_names, document.birth_date),
            **{f: _seal(key, "persons", f, person_id, values[f]) for f in _PERSON_FIELDS},
        ),
    )
    _insert_document(conn, key, person_id, document_id, document, blind_index, now)
    capture_id, seq = _insert_capture(
        rt, conn, key, person_id, image, capture, station or _station(principal)
    )
    detail: dict[str, object] = {"capture_id": str(capture_id), "document_id": str(document_id)}
    chip_capture_id = None
    if chip is not None:
        detail["chip"] = chip.passive_authentication
        if store_chip_face:
            chip_capture_id = _insert_chip_capture(
                conn, key, person_id, chip, station or _station(principal)
            )
            detail["chip_capture_id"] = str(chip_capture_id)
    if rejected and override is not None:
        override_id = uuid4()
        store.insert_override(
            conn,
            store.OverrideRow(
                id=override_id,
                person_id=person_id,
                capture_id=capture_id,
                candidates=[c.person_id for c in rejected],
                note=_seal(key, "dedup_overrides", "note", override_id, override.note),
                decided_by=principal.actor,
                decided_at=now,
            ),
        )
        detail["not_duplicate_of"] = [str(c.person_id) for c in rejected]
    audit_service.record(
        conn,
        rt.keys,
        principal,
        "persons.create",
        resource_type="person",
        resource_id=person_id,
        detail=detail,
    )
    created = models.PersonCreated(
        person_id=person_id,
        capture_id=capture_id,
        quality=capture.quality_report(),
        document=_document_out(document, document_id),
        chip=_chip_summary(chip),
        chip_capture_id=chip_capture_id,
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


def _documents_out(conn: Conn, key: bytes, person_id: UUID) -> list[models.DocumentOut]:
    return [
        models.DocumentOut(
            document_id=d.id,
            document_code=d.document_code,
            issuing_state=d.issuing_state,
            document_number=_open(key, "documents", "number", d.id, d.number),
            expiry_date=d.expiry_date,
        )
        for d in store.documents_of(conn, person_id)
    ]


def _captures_out(conn: Conn, person_id: UUID) -> list[models.CaptureOut]:
    return [
        models.CaptureOut(
            capture_id=c.id,
            station=c.station,
            quality=c.quality,
            created_at=c.created_at,
            source=c.source,  # type: ignore[arg-type]
        )
        for c in store.captures_of(conn, person_id)
    ]


def _biography(key: bytes, row: store.PersonRow) -> dict[str, Any]:
    """The person's sealed biographic fields, opened, as PersonOut and SubjectPerson name
    them."""
    fields = {f: _open(key, "persons", f, row.id, getattr(row, f)) for f in _PERSON_FIELDS}
    born = fields.pop("birth_date")
    return {**fields, "birth_date": date.fromisoformat(born) if born else None}


def get_person(rt: Runtime, principal: Principal, person_id: UUID) -> models.PersonOut:
    with transaction(rt.pool) as conn:
        row = store.get_person(conn, person_id)
        if row is None:
            raise NotFound("person", person_id)
        key = _data_key(rt, conn, person_id)
        documents = _documents_out(conn, key, person_id)
        captures = _captures_out(conn, person_id)
        watchlisted = store.is_watchlisted(conn, person_id)
        visas = visa_service.visas_of(conn, person_id)
        links = guardians(conn, person_id)
        audit_service.record(
            conn, rt.keys, principal, "persons.read", resource_type="person", resource_id=person_id
        )
    return models.PersonOut(
        person_id=person_id,
        status=row.status,
        **_biography(key, row),
        created_at=row.created_at,
        watchlisted=watchlisted,
        documents=documents,
        captures=captures,
        visas=visas,
        guardians=links,
    )


# Who may see a person's enrolled photos (DESIGN §11): consular staff and officers.
_IMAGE_ROLES = frozenset({"consular", "officer"})


def capture_image(
    rt: Runtime, principal: Principal, person_id: UUID, capture_id: UUID | None = None
) -> tuple[UUID, bytes]:
    """An enrolled photo of the person, the bytes as enrolled (JPEG or PNG), with its
    capture id: capture ``capture_id``, or the most recent when None (the photo shown
    beside a dedup or identify candidate). Consular staff and officers only; every view
    audited. NotFound for an unknown or erased person (erasure deletes the captures and
    shreds the key) or a capture that is not theirs."""
    if principal.role not in _IMAGE_ROLES:
        raise Forbidden("only consular staff and officers see a person's photos")
    with transaction(rt.pool) as conn:
        if store.get_person(conn, person_id) is None:
            raise NotFound("person", person_id)
        found = store.capture_image(conn, person_id, capture_id)
        if found is None and capture_id is not None:
            raise NotFound("capture of this person", capture_id)
        if found is None:
            raise NotFound("capture of person", person_id)
        key = rt.keys.data_key(conn, person_id)
        if key is None:
            raise NoLongerHeld("photo of person", person_id)
        image = crypto.unseal(key, found.image, crypto.aad("captures", "image", found.id))
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "captures.image.read",
            resource_type="person",
            resource_id=person_id,
            detail={"capture_id": str(found.id)},
        )
    return found.id, image


def erase(
    rt: Runtime,
    bio: Biometrics,
    principal: Principal,
    person_id: UUID,
    *,
    before: Callable[[Conn], object] | None = None,
) -> None:
    """Crypto-shred the person: their data key goes, documents and captures are deleted,
    watchlist entries ended, templates removed from every gallery. The audit trail stays.
    ``before`` runs in the same transaction, under the locks, while the documents are
    still there: the layer above changes its own tables with it (border clears the
    documents' blind index from crossings).

    Takes the enrollment lock, then the person's traveller lock (the one crossings and
    resolutions take on the person, ``store.lock_traveller``), then the person's row: a
    crossing that holds the person finishes first, and one that found them as a document's
    holder waits and then reads them erased (border/crossings.py)."""
    with transaction(rt.pool) as conn:
        if hold_for_erasure(conn, person_id) != "active":
            raise NotFound("person", person_id)
        if before is not None:
            before(conn)
        seqs = erase_in(rt, conn, person_id)
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


def hold_for_erasure(conn: Conn, person_id: UUID) -> str | None:
    """Take the locks an erasure holds to commit (as :func:`erase` does: the enrollment
    lock, the person's traveller lock, their row); the person's status then, None when
    there is no such person."""
    store.lock_enrollment(conn)
    store.lock_traveller(conn, person_id)
    return store.person_status(conn, person_id)


def erase_in(rt: Runtime, conn: Conn, person_id: UUID) -> list[int]:
    """Erase an active person inside the caller's transaction, which holds
    :func:`hold_for_erasure`: documents and captures deleted, watchlist entries ended,
    sealed fields blanked, data key shredded. Returns the capture numbers deleted, to
    remove from the galleries once committed."""
    seqs = store.erase_person(conn, person_id, _now())
    rt.keys.shred(conn, person_id)
    return seqs


def delete_captures_before(conn: Conn, person_id: UUID, before: date) -> tuple[list[int], int]:
    """Delete the person's captures taken before ``before`` (a UTC day), inside the
    caller's transaction, which holds :func:`hold_for_erasure`; returns their numbers (to
    remove from the galleries once committed) and how many captures the person keeps."""
    seqs = store.delete_captures_before(conn, person_id, before)
    return seqs, len(store.captures_of(conn, person_id))


def identify(
    rt: Runtime, bio: Biometrics, principal: Principal, *, image: bytes, k: int
) -> models.IdentifyOut:
    capture = capture_mod.analyse(bio.model, image, rt.settings, profile="kiosk")
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
    capture = capture_mod.analyse(bio.model, image, rt.settings, profile="kiosk")
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
    rt: Runtime,
    bio: Biometrics,
    principal: Principal,
    person_id: UUID,
    *,
    reason: str,
    category: str = "watch",
    unique: bool = False,
) -> models.WatchlistCreated:
    """A person alert: a watchlist entry with its category; the person's captures join the
    watchlist gallery. With ``unique`` (the alerts route), a second active alert of the
    same category on the person is 409, as for document and name alerts."""
    entry_id = uuid4()
    with transaction(rt.pool) as conn:
        if store.get_person(conn, person_id, lock=True) is None:
            raise NotFound("person", person_id)
        if unique and category in store.person_categories(conn, [person_id]).get(person_id, []):
            raise AlreadyExists(
                "the same alert is active already", kind="person", category=category
            )
        key = _data_key(rt, conn, person_id)
        store.insert_watchlist(
            conn,
            store.WatchlistRow(
                id=entry_id,
                person_id=person_id,
                reason=_seal(key, "watchlist", "reason", entry_id, reason),
                added_by=principal.actor,
                active=True,
                created_at=_now(),
                deactivated_at=None,
                category=category,
            ),
        )
        seqs, templates = open_templates(rt.keys, store.templates_of(conn, person_id))
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "watchlist.add",
            resource_type="person",
            resource_id=person_id,
            detail={"entry_id": str(entry_id), "category": category},
        )
    bio.galleries.add(seqs, templates, set(seqs))
    return models.WatchlistCreated(entry_id=entry_id)


def _entry(rt: Runtime, conn: Conn, row: store.WatchlistRow) -> models.WatchlistEntry:
    key = _data_key(rt, conn, row.person_id)
    return models.WatchlistEntry(
        entry_id=row.id,
        person_id=row.person_id,
        reason=_open(key, "watchlist", "reason", row.id, row.reason),
        category=row.category,
        added_by=row.added_by,
        created_at=row.created_at,
    )


def watchlist_list(rt: Runtime, principal: Principal) -> list[models.WatchlistEntry]:
    with transaction(rt.pool) as conn:
        entries = [_entry(rt, conn, row) for row in store.active_watchlist(conn)]
        audit_service.record(
            conn, rt.keys, principal, "watchlist.read", detail={"entries": len(entries)}
        )
    return entries


def watchlist_entries(
    rt: Runtime, conn: Conn, limit: int, after_at: datetime | None, after_id: UUID | None
) -> list[models.WatchlistEntry]:
    """A page of active person alerts in the caller's transaction; the caller audits."""
    return [
        _entry(rt, conn, row)
        for row in store.active_watchlist_page(conn, limit, after_at, after_id)
    ]


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


def hold_enrollment(conn: Conn) -> None:
    """The enrollment lock, held to commit. Whoever also takes a person's traveller lock
    takes this one first, as erasure does, so the two never deadlock."""
    store.lock_enrollment(conn)


def holder_of(conn: Conn, document_index: bytes) -> UUID | None:
    """The holder of the document with this blind index."""
    return store.person_by_blind_index(conn, document_index)


def is_active(conn: Conn, person_id: UUID) -> bool:
    """Whether the person exists and is not erased (nothing decrypted)."""
    return store.get_person(conn, person_id) is not None


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


def _insert_document(
    conn: Conn,
    key: bytes,
    person_id: UUID,
    document_id: UUID,
    document: MRZ,
    blind_index: bytes,
    at: datetime,
) -> None:
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
            created_at=at,
        ),
    )


def _document_out(document: MRZ, document_id: UUID | None = None) -> models.DocumentOut:
    return models.DocumentOut(
        document_id=document_id,
        document_code=document.document_code,
        issuing_state=document.issuing_state,
        document_number=document.document_number,
        expiry_date=document.expiry_date,
    )


def add_document_in(rt: Runtime, conn: Conn, person_id: UUID, document: MRZ) -> models.DocumentOut:
    """Join a document to a person inside the caller's transaction (the caller holds the
    person and audits): 409 when anyone holds it already."""
    store.lock_enrollment(conn)
    index = document_blind_index(rt, document.issuing_state, document.document_number)
    holder = store.person_by_blind_index(conn, index)
    if holder == person_id:
        raise AlreadyExists("this person holds this document already")
    if holder is not None:
        raise DuplicateIdentity(
            "this document is held by another person",
            candidates=[{"person_id": str(holder), "match": "document"}],
        )
    document_id = uuid4()
    key = _data_key(rt, conn, person_id)
    _insert_document(conn, key, person_id, document_id, document, index, _now())
    return _document_out(document, document_id)


def add_document(
    rt: Runtime,
    bio: Biometrics,
    principal: Principal,
    person_id: UUID,
    *,
    mrz_text: str,
    image: bytes | None,
) -> models.DocumentCreated:
    """Another document of a person (a renewed passport, a second nationality). With a live
    image, the face is first verified 1:1 against the person's captures (422
    ``face_mismatch`` beyond the verify threshold)."""
    document = visa_service.read_mrz(mrz_text)
    # The live face is a probe compared once, never kept: the kiosk profile (DESIGN §17).
    capture = (
        None
        if image is None
        else capture_mod.analyse(bio.model, image, rt.settings, profile="kiosk")
    )
    threshold = rt.settings.verify_threshold
    with transaction(rt.pool) as conn:
        # The enrollment lock before the person's row, in the order erasure takes them.
        store.lock_enrollment(conn)
        if store.get_person(conn, person_id, lock=True) is None:
            raise NotFound("person", person_id)
        distance = None
        if capture is not None:
            distance = verify_template(rt, conn, person_id, capture.face.template)
            if distance > threshold:
                raise FaceMismatch(
                    "the face does not match the person's enrolled captures",
                    field="image",
                    distance=round(distance, 4),
                    threshold=threshold,
                )
        out = add_document_in(rt, conn, person_id, document)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "documents.create",
            resource_type="person",
            resource_id=person_id,
            detail={"document_id": str(out.document_id), "verified": distance is not None},
        )
    return models.DocumentCreated(person_id=person_id, document=out)


def find_persons(
    rt: Runtime,
    principal: Principal,
    *,
    document: str | None,
    surname: str | None,
    given_names: str | None,
    birth_date: date | None,
) -> models.PersonsFound:
    """Persons by a document (``STATE:NUMBER``) or by name and birth date, through blind
    indexes only. A name is compared after ICAO normalisation, also in the forms an MRZ
    truncates it to."""
    by_name = surname is not None or given_names is not None or birth_date is not None
    if (document is None) == (not by_name):
        raise InvalidRequest(
            "search by `document` (STATE:NUMBER) or by `surname`, `given_names` and "
            "`birth_date`, not both",
            field="document",
        )
    if document is not None:
        state, _, number = document.strip().upper().partition(":")
        if not re.fullmatch(r"[A-Z]{1,3}", state) or not re.fullmatch(r"[A-Z0-9]{1,20}", number):
            raise InvalidRequest(
                "document must be STATE:NUMBER, e.g. UTO:L898902C3", field="document"
            )
        keys = [document_blind_index(rt, state, number)]
    else:
        if surname is None or birth_date is None:
            field = "surname" if surname is None else "birth_date"
            raise InvalidRequest(
                "a search by name needs `surname` and `birth_date` (YYYY-MM-DD)", field=field
            )
        names = {}
        for field, value in (("surname", surname), ("given_names", given_names or "")):
            try:
                names[field] = normalise_name(value)
            except ValueError:
                raise InvalidRequest(
                    f"{field} holds characters no MRZ can print", field=field
                ) from None
        keys = indexes.name_keys(
            rt.keys, names["surname"], names["given_names"], birth_date.isoformat()
        )
    with transaction(rt.pool) as conn:
        if document is not None:
            holder = store.person_by_blind_index(conn, keys[0])
            found = [] if holder is None else [holder]
        else:
            found = store.persons_by_name_index(conn, keys)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "persons.search",
            detail={"by": "document" if document else "name", "found": [str(p) for p in found]},
        )
    return models.PersonsFound(persons=[models.PersonRef(person_id=p) for p in found])


def index_names(rt: Runtime, page: int = 1000) -> int:
    """Give a name index to persons enrolled before names were indexed (run at start-up;
    nothing to do on a store that has them all). Returns how many were indexed."""
    done, after = 0, UUID(int=0)
    while True:
        with transaction(rt.pool) as conn:
            rows = store.persons_without_name_index(conn, after, page)
            for row in rows:
                key = rt.keys.data_key(conn, row.id)
                if key is None or row.surname is None or row.given_names is None:
                    continue
                birth = _open(key, "persons", "birth_date", row.id, row.birth_date or b"")
                store.set_name_index(
                    conn,
                    row.id,
                    _name_index(
                        rt,
                        _open(key, "persons", "surname", row.id, row.surname),
                        _open(key, "persons", "given_names", row.id, row.given_names),
                        date.fromisoformat(birth) if birth else None,
                    ),
                )
                done += 1
        if len(rows) < page:
            return done
        after = rows[-1].id


def add_guardian(
    rt: Runtime, principal: Principal, minor_id: UUID, body: models.GuardianIn
) -> models.GuardianOut:
    """Record that ``guardian_person_id`` may accompany the minor; an authorised adult's
    link must end (``valid_until``)."""
    if body.relationship == "authorised_adult" and body.valid_until is None:
        raise InvalidRequest(
            "an authorised adult's link must carry valid_until", field="valid_until"
        )
    if body.guardian_person_id == minor_id:
        raise InvalidRequest("a person cannot be their own guardian", field="guardian_person_id")
    link_id, now = uuid4(), _now()
    with transaction(rt.pool) as conn:
        if store.get_person(conn, minor_id, lock=True) is None:
            raise NotFound("person", minor_id)
        if store.get_person(conn, body.guardian_person_id) is None:
            raise NotFound("person", body.guardian_person_id)
        key = _data_key(rt, conn, minor_id)
        store.insert_guardian(
            conn,
            store.GuardianRow(
                id=link_id,
                minor_id=minor_id,
                guardian_id=body.guardian_person_id,
                relationship=body.relationship,
                evidence=_seal(key, "guardians", "evidence", link_id, body.evidence),
                valid_until=body.valid_until,
                created_by=principal.actor,
                created_at=now,
            ),
        )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "guardians.create",
            resource_type="person",
            resource_id=minor_id,
            detail={
                "guardian_link_id": str(link_id),
                "guardian_person_id": str(body.guardian_person_id),
                "relationship": body.relationship,
            },
        )
    return models.GuardianOut(
        guardian_link_id=link_id,
        minor_id=minor_id,
        guardian_person_id=body.guardian_person_id,
        relationship=body.relationship,
        valid_until=body.valid_until,
        created_at=now,
    )


def guardians(conn: Conn, minor_id: UUID) -> list[models.GuardianOut]:
    return [
        models.GuardianOut(
            guardian_link_id=g.id,
            minor_id=g.minor_id,
            guardian_person_id=g.guardian_id,
            relationship=g.relationship,
            valid_until=g.valid_until,
            created_at=g.created_at,
        )
        for g in store.guardians_of(conn, minor_id)
    ]


def list_overrides(
    rt: Runtime, principal: Principal, *, limit: int, before: datetime | None
) -> list[models.OverrideOut]:
    """Enrollments made over dedup candidates, newest first: who, when, which candidates."""
    with transaction(rt.pool) as conn:
        rows = store.overrides(conn, limit, before)
        audit_service.record(
            conn, rt.keys, principal, "dedup_overrides.read", detail={"overrides": len(rows)}
        )
    return [
        models.OverrideOut(
            override_id=r.id,
            person_id=r.person_id,
            capture_id=r.capture_id,
            not_duplicate_of=r.candidates,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class TravellerFacts:
    """Everything the crossing rules need of the traveller, each read or decrypted once.

    ``holder`` holds the document (or was enrolled by this crossing: ``enrolled_seq``);
    ``distance`` is the live face against the holder's captures (None when not compared);
    ``candidates`` the enrolled persons an unknown document's face matches within
    ``identify_threshold`` (DOCUMENT_CHANGED); ``companion`` the accompanying adult, kept
    only when they are a recorded guardian of full age on the day (``accompanied``)."""

    holder: UUID | None
    enrolled_seq: int | None
    distance: float | None
    candidates: list[models.Candidate]
    identify_threshold: float | None
    alerts: list[models.AlertFact]
    accompanied: bool
    companion: UUID | None


def traveller_facts(
    rt: Runtime,
    bio: Biometrics,
    conn: Conn,
    principal: Principal,
    *,
    document: MRZ | None,
    document_index: bytes | None,
    capture: capture_mod.Capture | None,
    image: bytes = b"",
    station: str = "",
    enroll_if_new: bool = False,
    holder: UUID | None = None,
    companion: UUID | None = None,
    day: date,
    adult_age: int,
) -> TravellerFacts:
    """Gather the facts of the traveller presenting a document, in the caller's
    transaction. ``holder`` is the document's holder as the caller found it
    (:func:`holder_of`) under its locks and checked active, or the person an officer links
    the document to; None when nobody holds it. Then, with ``enroll_if_new``, the traveller
    is enrolled from ``image`` at ``station``. An unknown document whose live face matches
    enrolled persons enrolls nobody: they are ``candidates``."""
    enrolled_seq: int | None = None
    found: list[models.Candidate] = []
    threshold = None
    if holder is None and document is not None and capture is not None:
        threshold = bio.galleries.identify_threshold()
        if enroll_if_new:
            try:
                created, enrolled_seq = enroll_in(
                    rt, bio, conn, principal, document=document, image=image,
                    capture=capture, station=station,
                )  # fmt: skip
                holder = created.person_id
            except DuplicateIdentity as dup:
                listed = dup.extra.get("candidates", [])
                # The document itself was enrolled meanwhile (by a consular post, which
                # does not take the traveller's lock): its holder is the traveller.
                by_document = [c["person_id"] for c in listed if c.get("match") == "document"]
                if by_document:
                    holder = UUID(by_document[0])
                found = [models.Candidate.model_validate(c) for c in listed if "distance" in c]
        else:
            bio.galleries.catch_up(conn, rt.keys)
            found = candidates(
                conn,
                bio.galleries.enrolled,
                capture.face.template,
                k=_DEDUP_CANDIDATES,
                threshold=bio.galleries.identify_threshold(),
            )
    distance = None
    if holder is not None and capture is not None and enrolled_seq is None:
        distance = verify_template(rt, conn, holder, capture.face.template)

    if holder is not None:
        found, threshold = [], None

    alerts: list[models.AlertFact] = []
    if document is not None and document_index is not None:
        keys = [document_index, *indexes.document_name_keys(rt.keys, document)]
        alerts += [models.AlertFact(a.kind, a.category) for a in store.alert_hits(conn, keys)]
    if holder is not None:
        # A ban (or a wanted or missing notice) on another of the person's documents is
        # about the person: a new passport does not shed it. A lost or invalidated
        # document says nothing of its holder's other documents.
        others = [i for i in store.document_indexes_of(conn, holder) if i != document_index]
        alerts += [
            models.AlertFact("person", a.category)
            for a in (store.alert_hits(conn, others) if others else [])
            if a.kind == "document" and a.category not in models.DOCUMENT_CATEGORIES
        ]
    face_hits = watchlist_hits(rt, bio, conn, capture.face.template) if capture is not None else []
    watched = [holder] if holder is not None else []
    watched += [c.person_id for c in face_hits if c.person_id != holder]
    categories = store.person_categories(conn, watched) if watched else {}
    for person_id in watched:
        kind = "person" if person_id == holder else "face"
        alerts += [models.AlertFact(kind, c) for c in categories.get(person_id, [])]

    accompanied = (
        holder is not None
        and companion is not None
        and is_guardian_on(rt, conn, holder, companion, day, adult_age)
    )
    return TravellerFacts(
        holder=holder,
        enrolled_seq=enrolled_seq,
        distance=distance,
        candidates=found,
        identify_threshold=threshold,
        alerts=alerts,
        accompanied=accompanied,
        companion=companion if accompanied else None,
    )


def is_guardian_on(
    rt: Runtime, conn: Conn, minor_id: UUID, adult_id: UUID, day: date, adult_age: int
) -> bool:
    """Whether ``adult_id`` is a recorded guardian of the minor whose link is valid on
    ``day`` and who is of full age that day. Unknown ids are simply False."""
    links = [
        g
        for g in store.guardians_of(conn, minor_id)
        if g.guardian_id == adult_id and (g.valid_until is None or g.valid_until >= day)
    ]
    if not links:
        return False
    facts = person_facts(rt, conn, adult_id)
    if facts is None or facts.birth_date is None:
        return False
    return visa_rules.age_on(facts.birth_date, day) >= adult_age


def _clean_name(field: str, value: str) -> str:
    try:
        name = normalise_name(value)
    except ValueError:
        raise InvalidRequest(f"{field} holds characters no MRZ can print", field=field) from None
    if field == "surname" and not name:
        raise InvalidRequest("surname holds no letters", field=field)
    return name


def _patched_values(body: models.PersonPatch) -> dict[str, str]:
    """The fields a rectification sets, as ``persons`` stores them (names in MRZ form, the
    birth date as YYYY-MM-DD). A field given as null is refused: nothing is blanked."""
    given: dict[str, str] = {}
    for field in _PERSON_FIELDS:
        if field not in body.model_fields_set:
            continue
        value = getattr(body, field)
        if value is None:
            raise InvalidRequest(f"{field} cannot be emptied by a rectification", field=field)
        if field in ("surname", "given_names"):
            value = _clean_name(field, value)
        elif field == "birth_date":
            if value > _now().date():
                raise InvalidRequest("birth_date lies in the future", field=field)
            value = value.isoformat()
        given[field] = value
    if not given:
        raise InvalidRequest(
            "a rectification changes at least one of " + ", ".join(_PERSON_FIELDS),
            field="surname",
        )
    return given


def _seal_json(key: bytes, column: str, row_id: UUID, value: dict[str, str]) -> bytes:
    return _seal(key, "rectifications", column, row_id, json.dumps(value, sort_keys=True))


def _open_json(key: bytes, column: str, row_id: UUID, blob: bytes) -> dict[str, str]:
    opened: dict[str, str] = json.loads(_open(key, "rectifications", column, row_id, blob))
    return opened


def _rectification_out(key: bytes, row: store.RectificationRow) -> models.RectificationOut:
    return models.RectificationOut(
        rectification_id=row.id,
        fields=row.fields,
        old_values=_open_json(key, "old_values", row.id, row.old_values),
        new_values=_open_json(key, "new_values", row.id, row.new_values),
        reason=_open(key, "rectifications", "reason", row.id, row.reason),
        rectified_by=row.rectified_by,
        role=row.role,
        rectified_at=row.rectified_at,
    )


def rectify(
    rt: Runtime, principal: Principal, person_id: UUID, body: models.PersonPatch
) -> models.RectificationOut:
    """Rectify a person's biographic data (DESIGN §12): the fields change, the name index
    follows, and the old and new values and the reason go, sealed with the person's data
    key, to the rectification history. A field given with the value it holds already is
    left out; when nothing would change the request is refused (422)."""
    given = _patched_values(body)
    rectification_id, now = uuid4(), _now()
    with transaction(rt.pool) as conn:
        row = store.get_person(conn, person_id, lock=True)
        if row is None:
            raise NotFound("person", person_id)
        key = _data_key(rt, conn, person_id)
        old = {f: _open(key, "persons", f, person_id, getattr(row, f)) for f in _PERSON_FIELDS}
        changed = {f: v for f, v in given.items() if old[f] != v}
        if not changed:
            field = next(iter(given))
            raise InvalidRequest("the person holds these values already", field=field)
        now_values = old | changed
        birth = now_values["birth_date"]
        store.rectify_person(
            conn,
            person_id,
            {f: _seal(key, "persons", f, person_id, v) for f, v in changed.items()},
            _name_index(
                rt,
                now_values["surname"],
                now_values["given_names"],
                date.fromisoformat(birth) if birth else None,
            ),
            now,
        )
        history = store.RectificationRow(
            id=rectification_id,
            person_id=person_id,
            fields=sorted(changed),
            old_values=_seal_json(
                key, "old_values", rectification_id, {f: old[f] for f in changed}
            ),
            new_values=_seal_json(key, "new_values", rectification_id, changed),
            reason=_seal(key, "rectifications", "reason", rectification_id, body.reason),
            rectified_by=principal.actor,
            role=principal.role,
            rectified_at=now,
        )
        store.insert_rectification(conn, history)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "persons.rectify",
            resource_type="person",
            resource_id=person_id,
            detail={"rectification_id": str(rectification_id), "fields": history.fields},
        )
    return _rectification_out(key, history)


def rectifications(rt: Runtime, principal: Principal, person_id: UUID) -> models.RectificationsOut:
    """A person's rectification history, oldest first. An erased person is not found: their
    key is shredded, so the history is sealed for good."""
    with transaction(rt.pool) as conn:
        if store.get_person(conn, person_id) is None:
            raise NotFound("person", person_id)
        key = _data_key(rt, conn, person_id)
        out = [_rectification_out(key, r) for r in store.rectifications_of(conn, person_id)]
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "rectifications.read",
            resource_type="person",
            resource_id=person_id,
            detail={"rectifications": len(out)},
        )
    return models.RectificationsOut(person_id=person_id, rectifications=out)


def subject_data(rt: Runtime, conn: Conn, person_id: UUID) -> models.SubjectPerson:
    """What enrollment holds on a person, decrypted, for their subject-access export, in
    the caller's transaction (the caller audits): biographic data, documents, captures
    (metadata: the images follow through :func:`subject_images`), the guardians recorded
    for them, and their rectification history. Alerts and watchlist entries are left out
    (law-enforcement restriction). NotFound for an unknown or erased person."""
    row = store.get_person(conn, person_id)
    if row is None:
        raise NotFound("person", person_id)
    key = _data_key(rt, conn, person_id)
    return models.SubjectPerson(
        person_id=person_id,
        status=row.status,
        **_biography(key, row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        documents=_documents_out(conn, key, person_id),
        captures=_captures_out(conn, person_id),
        guardians=guardians(conn, person_id),
        rectifications=[
            _rectification_out(key, r) for r in store.rectifications_of(conn, person_id)
        ],
    )


def subject_images(rt: Runtime, person_id: UUID, capture_ids: list[UUID]) -> Iterator[bytes]:
    """The images of the person's captures, the bytes as enrolled (JPEG or PNG), one short
    read each so an export never holds more than one image. A capture erased meanwhile
    yields empty bytes."""
    for capture_id in capture_ids:
        with rt.pool.connection() as conn:
            found = store.capture_image(conn, person_id, capture_id)
            key = rt.keys.data_key(conn, person_id)
        if found is None or key is None:
            yield b""
            continue
        yield crypto.unseal(key, found.image, crypto.aad("captures", "image", found.id))
