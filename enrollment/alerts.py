"""Alerts (DESIGN §10): on a document, a person or a name, each with a category.

Person alerts are the watchlist's entries (enrollment/service.py): they carry a category
and feed the watchlist face gallery. Document and name alerts live in ``alerts``; their
contents are sealed under the keyring's alert key, and a crossing finds them only through
blind indexes (``alert_indexes``), never by decrypting rows:

- a document alert is indexed by the document's own blind index ``HMAC(STATE|NUMBER)``,
  the one ``documents`` uses, so a crossing looks up holder and alerts with one HMAC;
- a name alert is indexed by ``HMAC(name|SURNAME|GIVEN NAMES|BIRTH)`` for the normalised
  name and every form an MRZ of any format would print it in (truncated to its name field),
  with ``BIRTH`` the full date or, for an alert that gives only a year, ``YYYY``. A crossing
  computes the keys of the name it read with its full birth date and with its year.

The keys themselves are made in enrollment/indexes.py.
"""

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, get_args
from uuid import UUID, uuid4

from pydantic import ValidationError

from audit import service as audit_service
from core import crypto
from core.auth import Principal
from core.db import transaction
from core.errors import InvalidRequest, NotFound
from core.keys import Keyring
from core.runtime import Runtime
from enrollment import indexes, models, store
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from visa.mrz import normalise_name

Progress = Callable[[int, int], None]

CSV_COLUMNS: Final = ("issuing_state", "document_number", "category")
_ALERT_CATEGORIES: Final = frozenset(get_args(models.AlertCategory))
_PAGE_MAX: Final = 1000


def _seal(keys: Keyring, alert_id: UUID, contents: dict[str, str | None]) -> bytes:
    plain = json.dumps(contents, separators=(",", ":")).encode()
    return crypto.seal(keys.alert_key, plain, crypto.aad("alerts", "contents", alert_id))


def _open(keys: Keyring, row: store.AlertRow) -> dict[str, str | None]:
    plain = crypto.unseal(keys.alert_key, row.contents, crypto.aad("alerts", "contents", row.id))
    contents: dict[str, str | None] = json.loads(plain)
    return contents


def _normalised(value: str, field: str, *, required: bool = False) -> str:
    try:
        name = normalise_name(value)
    except ValueError:
        raise InvalidRequest(
            f"{field} holds characters that no MRZ can print (letters, spaces, hyphens and "
            "apostrophes only)",
            field=field,
        ) from None
    if required and not name:
        raise InvalidRequest(f"{field} holds no letter", field=field)
    return name


def _birth(value: str) -> str:
    """YYYY-MM-DD (a real date) or a bare YYYY."""
    if len(value) == 4:
        return value
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidRequest(
            "birth_date must be a real date YYYY-MM-DD or a bare year YYYY", field="birth_date"
        ) from None


def _document_row(
    keys: Keyring, principal: Principal, body: models.DocumentAlertIn, at: datetime
) -> store.AlertRow:
    alert_id = uuid4()
    return store.AlertRow(
        id=alert_id,
        kind="document",
        category=body.category,
        identity=indexes.document_index(keys, body.issuing_state, body.document_number),
        contents=_seal(
            keys,
            alert_id,
            {
                "issuing_state": body.issuing_state,
                "document_number": body.document_number,
                "note": body.note,
            },
        ),
        added_by=principal.actor,
        created_at=at,
    )


def add(
    rt: Runtime, bio: Biometrics, principal: Principal, body: models.AlertIn
) -> models.AlertCreated:
    """A new alert of any kind; a person alert is a watchlist entry with its category."""
    if isinstance(body, models.PersonAlertIn):
        created = enrollment_service.watchlist_add(
            rt, bio, principal, body.person_id, reason=body.note or "", category=body.category,
            unique=True,
        )  # fmt: skip
        return models.AlertCreated(alert_id=created.entry_id, kind="person")
    now = datetime.now(UTC)
    if isinstance(body, models.DocumentAlertIn):
        row = _document_row(rt.keys, principal, body, now)
        keys = [row.identity]
    else:
        surname = _normalised(body.surname, "surname", required=True)
        given = _normalised(body.given_names, "given_names")
        birth = _birth(body.birth_date)
        alert_id = uuid4()
        row = store.AlertRow(
            id=alert_id,
            kind="name",
            category=body.category,
            identity=indexes.name_key(rt.keys, surname, given, birth),
            contents=_seal(
                rt.keys,
                alert_id,
                {
                    "surname": surname,
                    "given_names": given,
                    "birth_date": birth,
                    "note": body.note,
                },
            ),
            added_by=principal.actor,
            created_at=now,
        )
        keys = indexes.name_keys(rt.keys, surname, given, birth)
    with transaction(rt.pool) as conn:
        if not store.insert_alert(conn, row, keys):
            # Nothing was written; the refusal is audited like any other.
            raise enrollment_service.AlreadyExists(
                "the same alert is active already", kind=row.kind, category=row.category
            )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "alerts.add",
            resource_type="alert",
            resource_id=row.id,
            detail={"kind": row.kind, "category": row.category},
        )
    return models.AlertCreated(alert_id=row.id, kind=row.kind)


@dataclass(frozen=True)
class Cursor:
    """Where a page of alerts ends: the (created_at, id) of its last entry."""

    created_at: datetime
    alert_id: UUID

    def token(self) -> str:
        return f"{self.created_at.isoformat()}_{self.alert_id}"

    @classmethod
    def parse(cls, token: str) -> "Cursor":
        at, _, alert_id = token.rpartition("_")
        try:
            return cls(datetime.fromisoformat(at), UUID(alert_id))
        except ValueError:
            raise InvalidRequest(
                "`after` must be the `next_after` of an earlier page", field="after"
            ) from None


def list_alerts(
    rt: Runtime, principal: Principal, *, limit: int, after: str | None
) -> models.AlertsOut:
    """Active alerts of every kind, oldest first, a page at a time."""
    cursor = None if after is None else Cursor.parse(after)
    after_at = None if cursor is None else cursor.created_at
    after_id = None if cursor is None else cursor.alert_id
    with transaction(rt.pool) as conn:
        found: list[models.AlertOut] = []
        for row in store.active_alerts(conn, limit + 1, after_at, after_id):
            contents = _open(rt.keys, row)
            found.append(
                models.AlertOut(
                    alert_id=row.id,
                    kind=row.kind,  # type: ignore[arg-type]
                    category=row.category,
                    added_by=row.added_by,
                    created_at=row.created_at,
                    issuing_state=contents.get("issuing_state"),
                    document_number=contents.get("document_number"),
                    surname=contents.get("surname"),
                    given_names=contents.get("given_names"),
                    birth_date=contents.get("birth_date"),
                    note=contents.get("note"),
                )
            )
        for entry in enrollment_service.watchlist_entries(rt, conn, limit + 1, after_at, after_id):
            found.append(
                models.AlertOut(
                    alert_id=entry.entry_id,
                    kind="person",
                    category=entry.category,
                    person_id=entry.person_id,
                    note=entry.reason or None,
                    added_by=entry.added_by,
                    created_at=entry.created_at,
                )
            )
        found.sort(key=lambda a: (a.created_at, str(a.alert_id)))
        page = found[:limit]
        audit_service.record(conn, rt.keys, principal, "alerts.read", detail={"alerts": len(page)})
    last = page[-1] if len(found) > limit else None
    return models.AlertsOut(
        alerts=page,
        next_after=None if last is None else Cursor(last.created_at, last.alert_id).token(),
    )


def remove(rt: Runtime, bio: Biometrics, principal: Principal, alert_id: UUID) -> None:
    """End an alert of any kind (a person alert through the watchlist)."""
    with transaction(rt.pool) as conn:
        ended = store.deactivate_alert(conn, alert_id, principal.actor, datetime.now(UTC))
        if ended:
            audit_service.record(
                conn,
                rt.keys,
                principal,
                "alerts.remove",
                resource_type="alert",
                resource_id=alert_id,
            )
    if not ended:
        try:
            enrollment_service.watchlist_remove(rt, bio, principal, alert_id)
        except NotFound:
            raise NotFound("alert", alert_id) from None


class BadRow(InvalidRequest):
    """A row of an alert list that cannot be loaded; names its line."""


def _rows(text: Iterator[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(text)
    header = [h.strip() for h in reader.fieldnames or []]
    if sorted(header) != sorted(CSV_COLUMNS):
        raise BadRow(
            f"line 1: the header must name the columns {', '.join(CSV_COLUMNS)}; "
            f"found {', '.join(header) or 'nothing'}",
            line=1,
        )
    reader.fieldnames = header
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise BadRow(f"line {reader.line_num}: expected 3 columns", line=reader.line_num)
        yield reader.line_num, {k: v.strip() for k, v in row.items()}


def read_document_list(
    keys: Keyring, principal: Principal, path: Path, progress: Progress | None = None
) -> list[store.AlertRow]:
    """Every row of a lost-and-stolen CSV (``issuing_state,document_number,category``)
    checked and sealed; the first bad row raises :class:`BadRow` with its line number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadRow(f"{path} cannot be read: {exc.strerror or exc}", line=0) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRow(f"{path} is not UTF-8 text", line=0) from None
    lines = text.count("\n") or 1
    now = datetime.now(UTC)
    out: list[store.AlertRow] = []
    for line, fields in _rows(iter(io.StringIO(text, newline=""))):
        try:
            body = models.DocumentAlertIn(kind="document", **fields)  # type: ignore[arg-type]
        except ValidationError as exc:
            bad = str(exc.errors()[0]["loc"][0])
            raise BadRow(
                f"line {line}: {bad} is not valid (issuing_state: 1-3 letters A-Z; "
                "document_number: 1-20 letters A-Z or digits; category: one of "
                f"{', '.join(sorted(_ALERT_CATEGORIES))})",
                line=line,
                field=bad,
            ) from None
        out.append(_document_row(keys, principal, body, now))
        if progress is not None and len(out) % 10_000 == 0:
            progress(len(out), lines - 1)
    if progress is not None:
        progress(len(out), len(out))
    return out


def import_document_list(
    rt: Runtime, principal: Principal, path: Path, progress: Progress | None = None
) -> tuple[int, int]:
    """Load a lost-and-stolen list in one transaction: all of it or, on a bad row, none.
    Returns (rows read, alerts added); rows already active as alerts are skipped."""
    rows = read_document_list(rt.keys, principal, path, progress)
    with transaction(rt.pool) as conn:
        added = store.import_document_alerts(conn, rows)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "alerts.import",
            detail={"rows": len(rows), "added": added},
        )
    return len(rows), added
