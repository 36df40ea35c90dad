"""SQL for the statistics aggregates (DESIGN §12), the only writer of their tables.

Two tables of counts, ``statistics_daily`` (by host day) and ``statistics_monthly`` (the
same counts by month, ``month`` its first day). Each holds several *cuboids*: the counts of
every crossing projected on one set of keys, the other keys written ``*``. Cuboid 0 keeps
every key but the reason (one count per crossing), cuboid 1 every key and the reason (one
count per crossing and distinct reason code, ``none`` without one); the smaller ones keep
the keys most often asked together, so that a year's answer reads a few thousand rows
instead of every combination of keys. A query reads the smallest cuboid holding all its
keys; whole months come from the monthly table, the days of partial months, ``day`` and
``week`` from the daily one.

No row names a person or a crossing: erasure and retention never touch them.
``statistics_pending`` keeps, for a referral awaiting its resolution only, what the
resolution needs to move its counts (and goes with the resolution or the crossing).

Cuboid numbers are stored: a new cuboid takes a new number, filled from cuboid 0 or 1."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final
from uuid import UUID

from psycopg import sql
from psycopg.rows import class_row

from core.db import Conn

# Every key of a row besides its period, in the tables' column order.
KEYS: Final = (
    "border_point", "nationality", "direction", "decision", "visa_type", "age_band",
    "protection", "reason",
)  # fmt: skip
ALL: Final = "*"
_NO_REASON: Final = frozenset(KEYS) - {"reason"}

# Cuboid number -> its keys, smallest first (a query reads the first that holds its keys).
CUBOIDS: Final[dict[int, frozenset[str]]] = {
    2: frozenset({"border_point", "direction", "decision", "protection"}),
    4: frozenset({"age_band", "visa_type", "direction", "decision", "protection"}),
    3: frozenset({"nationality", "visa_type", "direction", "decision"}),
    7: frozenset({"nationality", "age_band", "direction", "decision"}),
    5: frozenset({"reason", "border_point", "direction", "decision"}),
    6: frozenset({"reason", "nationality", "direction", "decision"}),
    0: _NO_REASON,
    1: frozenset(KEYS),
}


@dataclass(frozen=True)
class Count:
    """A contribution to the aggregates: ``count`` crossings of these keys on ``day``;
    ``reason`` None counts the crossings themselves, a code counts them under that reason."""

    day: date
    border_point: str
    nationality: str
    direction: str
    decision: str
    visa_type: str
    age_band: str
    protection: str
    reason: str | None = None
    count: int = 1


def cuboid_for(keys: Iterable[str]) -> int:
    """The smallest cuboid holding ``keys`` (keys of :data:`KEYS`)."""
    wanted = set(keys)
    return next(n for n, held in CUBOIDS.items() if wanted <= held)


_SOURCE_COLUMNS: Final = ("day", *KEYS, "count")
_TYPES: Final = {"day": "date", "count": "bigint"}


def _projected(period: str) -> sql.Composed:
    """The counts of ``source`` (rows of ``day``, the keys, ``reason`` NULL or a code, and
    ``count``) projected on every cuboid, summed by cuboid, period and keys, in key order
    (rows are locked in one order by every writer, so two never deadlock)."""
    start = sql.SQL("date_trunc('month', day)::date" if period == "month" else "day")
    parts = []
    for number, held in CUBOIDS.items():
        counts_reasons = "reason" in held
        cols = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(
                sql.Identifier(k) if k in held else sql.Literal(ALL), sql.Identifier(k)
            )
            for k in KEYS
        )
        parts.append(
            sql.SQL("SELECT {n}::smallint AS cuboid, {start} AS period, {cols}, count"
                    " FROM source WHERE reason IS {null}").format(
                n=sql.Literal(number), start=start, cols=cols,
                null=sql.SQL("NOT NULL" if counts_reasons else "NULL"),
            )
        )  # fmt: skip
    keys = sql.SQL(", ").join(map(sql.Identifier, KEYS))
    return sql.SQL(
        "SELECT cuboid, period, {keys}, sum(count)::bigint AS count FROM ({parts}) AS p"
        " GROUP BY cuboid, period, {keys} ORDER BY cuboid, period, {keys}"
    ).format(keys=keys, parts=sql.SQL(" UNION ALL ").join(parts))


def _tables() -> tuple[tuple[str, str], ...]:
    return (("statistics_daily", "day"), ("statistics_monthly", "month"))


def _upsert(source: sql.Composable) -> list[sql.Composed]:
    """``INSERT ... ON CONFLICT DO UPDATE SET count = count + EXCLUDED.count`` into both
    tables from ``source``, the counts as :func:`_projected` takes them."""
    keys = sql.SQL(", ").join(map(sql.Identifier, KEYS))
    return [
        sql.SQL(
            "WITH source AS ({source}) INSERT INTO {table} (cuboid, {period}, {keys}, count)"
            " {projected} ON CONFLICT (cuboid, {period}, {keys})"
            " DO UPDATE SET count = {table}.count + EXCLUDED.count"
        ).format(
            source=source,
            table=sql.Identifier(table),
            period=sql.Identifier(period),
            keys=keys,
            projected=_projected(period),
        )
        for table, period in _tables()
    ]


def _values(counts: Sequence[Count]) -> tuple[sql.Composed, list[object]]:
    """``counts`` as a typed VALUES list and its parameters."""
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(_SOURCE_COLUMNS)))
    typed = sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Identifier(c), sql.SQL(_TYPES.get(c, "text")))
        for c in _SOURCE_COLUMNS
    )
    source = sql.SQL("SELECT {typed} FROM (VALUES {rows}) AS v ({names})").format(
        typed=typed,
        rows=sql.SQL(", ").join(row for _ in counts),
        names=sql.SQL(", ").join(map(sql.Identifier, _SOURCE_COLUMNS)),
    )
    return source, [getattr(c, col) for c in counts for col in _SOURCE_COLUMNS]


def add(conn: Conn, counts: Sequence[Count]) -> None:
    """Add ``counts`` to every cuboid of both tables, in the caller's transaction (a
    crossing's own: its rows stay locked until it commits)."""
    if not counts:
        return
    source, params = _values(counts)
    for statement in _upsert(source):
        conn.execute(statement, params)


def subtract(conn: Conn, counts: Sequence[Count]) -> None:
    """Take ``counts`` back (a referral resolved: its counts move to the outcome). The rows
    exist, since the crossing was counted in them; a row may fall to 0 and stays."""
    if not counts:
        return
    source, params = _values(counts)
    for table, period in _tables():
        match = sql.SQL(" AND ").join(
            [
                sql.SQL("t.{} = x.period").format(sql.Identifier(period)),
                *(sql.SQL("t.{k} = x.{k}").format(k=sql.Identifier(k)) for k in KEYS),
            ]
        )
        # Lock the rows in key order first, as every crossing's upsert does: an UPDATE ...
        # FROM would take them in the join's order and could deadlock with a crossing.
        conn.execute(
            sql.SQL(
                "WITH source AS ({source}) SELECT 1 FROM {table} AS t"
                " JOIN ({projected}) AS x ON t.cuboid = x.cuboid AND {match}"
                " ORDER BY t.cuboid, t.{period}, {keys} FOR UPDATE OF t"
            ).format(
                source=source,
                table=sql.Identifier(table),
                projected=_projected(period),
                match=match,
                period=sql.Identifier(period),
                keys=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in KEYS),
            ),
            params,
        )
        conn.execute(
            sql.SQL(
                "WITH source AS ({source}) UPDATE {table} AS t SET count = t.count - x.count"
                " FROM ({projected}) AS x WHERE t.cuboid = x.cuboid AND {match}"
            ).format(
                source=source,
                table=sql.Identifier(table),
                projected=_projected(period),
                match=match,
            ),
            params,
        )


def add_bulk(conn: Conn, counts: Iterable[Count]) -> int:
    """Add many counts at once: COPY into a temporary table, then the same upsert as
    :func:`add` (a bulk load, e.g. the benchmark's year of crossings). Returns the rows
    copied."""
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE statistics_load ({}) ON COMMIT DROP").format(
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_TYPES.get(c, "text")))
                for c in _SOURCE_COLUMNS
            )
        )
    )
    copied = 0
    with conn.cursor().copy(
        sql.SQL("COPY statistics_load ({}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, _SOURCE_COLUMNS))
        )
    ) as copy:
        for c in counts:
            copy.write_row([getattr(c, col) for col in _SOURCE_COLUMNS])
            copied += 1
    for statement in _upsert(sql.SQL("SELECT * FROM statistics_load")):
        conn.execute(statement)
    conn.execute("DROP TABLE statistics_load")
    return copied


@dataclass(frozen=True)
class Pending:
    """What a referral was counted under that its row does not hold."""

    nationality: str
    visa_type: str
    age_band: str


def keep_pending(conn: Conn, crossing_id: UUID, pending: Pending) -> None:
    conn.execute(
        "INSERT INTO statistics_pending (crossing_id, nationality, visa_type, age_band)"
        " VALUES (%(id)s, %(nationality)s, %(visa_type)s, %(age_band)s)",
        {"id": crossing_id, **vars(pending)},
    )


def take_pending(conn: Conn, crossing_id: UUID) -> Pending | None:
    """The referral's pending keys, deleted as they are read (None for a crossing recorded
    before the aggregates were kept: it was never counted)."""
    with conn.cursor(row_factory=class_row(Pending)) as cur:
        return cur.execute(
            "DELETE FROM statistics_pending WHERE crossing_id = %(id)s"
            " RETURNING nationality, visa_type, age_band",
            {"id": crossing_id},
        ).fetchone()


_PERIODS: Final = {
    "day": sql.SQL("to_char(day, 'YYYY-MM-DD')"),
    "week": sql.SQL("to_char(day, 'IYYY-\"W\"IW')"),
    "month": sql.SQL("to_char(day, 'YYYY-MM')"),
}


def cells(
    conn: Conn,
    *,
    group_by: Sequence[str],
    first: date,
    last: date,
    months_from: date,
    months_to: date,
) -> list[tuple[tuple[str, ...], int]]:
    """The counts of ``first``..``last`` (inclusive) grouped by ``group_by`` (day, week,
    month and names of :data:`KEYS`, checked by the caller), each non-zero cell once, in
    key order: whole months ``months_from`` <= month < ``months_to`` read from the monthly
    table, the other days from the daily one."""
    keys = [k for k in group_by if k in KEYS]
    cuboid = cuboid_for(keys)
    exprs = [_PERIODS.get(k, sql.Identifier(k)) for k in group_by]
    cols = sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(k)) for k in keys)
    positions = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(group_by)))
    query = sql.SQL(
        "SELECT {exprs}, sum(count)::bigint FROM ("
        " SELECT month AS day{cols}, count FROM statistics_monthly"
        "  WHERE cuboid = %(cuboid)s AND month >= %(months_from)s AND month < %(months_to)s"
        " UNION ALL"
        " SELECT day{cols}, count FROM statistics_daily WHERE cuboid = %(cuboid)s"
        "  AND (day >= %(first)s AND day < %(months_from)s"
        "   OR day >= %(months_to)s AND day <= %(last)s)"
        ") AS counted GROUP BY {positions} HAVING sum(count) > 0"
    ).format(exprs=sql.SQL(", ").join(exprs), cols=cols, positions=positions)
    rows = conn.execute(
        query,
        {
            "cuboid": cuboid, "first": first, "last": last,
            "months_from": months_from, "months_to": months_to,
        },
    ).fetchall()  # fmt: skip
    # Sorted here, not by the database's collation: the same order on every server.
    return sorted((tuple(str(v) for v in row[:-1]), int(row[-1])) for row in rows)
