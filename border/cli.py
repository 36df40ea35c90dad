"""The ``border`` command line (DESIGN §7a). Every command reads the same settings as the
service, from ``BORDER_*`` variables."""

import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from pydantic import ValidationError

from border.schema import migration_dirs
from core import logs
from core.errors import BorderError, ConfigurationError
from core.settings import Settings

if TYPE_CHECKING:
    from core.runtime import Runtime

# The service, the face model and FAISS load only in the commands that use them (imported
# inside each), so that `border --help` answers at once.

app = typer.Typer(help="Border: biometric border management.", no_args_is_help=True)
clients = typer.Typer(help="API clients and their keys.", no_args_is_help=True)
keys = typer.Typer(help="Master keys.", no_args_is_help=True)
audit = typer.Typer(help="The audit log.", no_args_is_help=True)
database = typer.Typer(help="The records store.", no_args_is_help=True)
index = typer.Typer(help="The face galleries.", no_args_is_help=True)
alerts = typer.Typer(help="Alerts on documents, persons and names.", no_args_is_help=True)
app.add_typer(clients, name="clients")
app.add_typer(keys, name="keys")
app.add_typer(audit, name="audit")
app.add_typer(database, name="db")
app.add_typer(index, name="index")
app.add_typer(alerts, name="alerts")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    """The settings from BORDER_* variables; a bad value ends the command with one line
    that names the variable (never its value: it may be a secret), exit 2."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [f"{name}: {msg}" for name, msg in _setting_problems(exc)]
        raise _fail("; ".join(problems) + " (see the configuration table in README.md)") from None


def _setting_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Each bad setting as its BORDER_ variable and what is wrong (never the value)."""
    return [
        ("BORDER_" + "__".join(str(p) for p in err["loc"]).upper(), err["msg"])
        for err in exc.errors()
    ]


def _port_free(host: str, port: int) -> None:
    """Refuse a port already in use before the slow start (store, face model, galleries)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise _fail(f"--host {host} is not an address this machine can listen on") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            raise _fail(
                f"port {port} on {host} is in use; stop what holds it or give --port"
            ) from None


Tick = Callable[[int, int], None]


@contextmanager
def _progress(label: str, unit: str) -> Iterator[Tick]:
    """Progress of a long command on stderr, with rate and time left: a bar on a terminal,
    otherwise a plain line at most every 2 s and at the end (logs, CI)."""
    started = time.monotonic()

    def figures(done: int, total: int) -> tuple[float, str]:
        elapsed = max(time.monotonic() - started, 1e-9)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 and total > done else 0.0
        return rate, f"{left:.0f} s left"

    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
        )
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(label, total=None, rate="")

            def tick_bar(done: int, total: int) -> None:
                rate, left = figures(done, total)
                bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} {unit}/s, {left}")

            yield tick_bar
        return
    last = 0.0

    def tick_lines(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last < 2.0:
            return
        last = now
        rate, left = figures(done, total)
        share = 100.0 * done / total if total else 100.0
        typer.echo(
            f"{label}: {done:,}/{total:,} {unit} ({share:.0f}%), {rate:,.0f} {unit}/s, {left}",
            err=True,
        )

    yield tick_lines


@contextmanager
def _runtime() -> Iterator["Runtime"]:
    from core.runtime import Runtime

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        rt = Runtime.start(settings, migration_dirs())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    try:
        yield rt
    except BorderError as exc:
        raise _fail(f"{exc.code}: {exc.detail}") from None
    finally:
        rt.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (default: BORDER_WORKERS, 1). dlib holds Python's lock "
            "while it reads a face, so one process uses one core for faces: give one worker "
            "per core.",
        ),
    ] = None,
) -> None:
    """Run the HTTP service. Migrations are applied at start when the schema owner is known
    (the embedded store, or BORDER_OWNER_DATABASE_URL); otherwise the schema must be current."""
    import uvicorn

    from border.app import create_app
    from core import runtime as core_runtime

    settings = _settings()
    log_config = logs.configure(settings.log_level, settings.log_format)
    workers = workers or settings.workers
    _port_free(host, port)
    metrics_dir = _given_metrics_dir() if workers > 1 else None
    # Everything a first start creates is made here, before any worker starts: workers
    # starting together on a new data directory would otherwise race to make it.
    try:
        store = core_runtime.prepare(settings, migration_dirs())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    try:
        _check_gallery_backend(settings, workers)
    except ConfigurationError as exc:
        store.close()
        raise _fail(str(exc)) from None
    # uvicorn would believe X-Forwarded-For from loopback; the service decides whom to
    # believe, from BORDER_TRUSTED_PROXIES (DESIGN §14).
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        # BORDER_LOG_LEVEL and BORDER_LOG_FORMAT govern uvicorn's loggers too, in every
        # worker; the service writes its own access lines.
        "log_config": log_config,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "proxy_headers": False,
    }
    try:
        if workers == 1:
            uvicorn.run(create_app(settings), **options)
        else:
            # Each worker builds its app from the same BORDER_* environment; they share
            # the store and keep their galleries in step through it, and their figures
            # through a directory of files that /metrics, in any worker, sums.
            with _shared_metrics(metrics_dir):
                uvicorn.run("border.app:create_app", factory=True, workers=workers, **options)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()


def _check_gallery_backend(settings: Settings, workers: int) -> None:
    """Before the slow start: Milvus Lite serves one process, and a Milvus server must
    answer (each worker then opens its own client)."""
    if settings.gallery_backend != "milvus":
        return
    from enrollment.galleries import milvus_place, milvus_uri
    from matching.milvus import GalleryUnavailable, connect, is_lite

    uri = milvus_uri(settings)
    if is_lite(uri):
        if workers > 1:
            raise ConfigurationError(
                f"Milvus Lite ({uri}) serves one process, not {workers} workers: use "
                "--workers 1, or a Milvus server (BORDER_MILVUS_URI=http://host:19530)"
            )
        return
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    try:
        client = connect(uri, timeout_s=settings.milvus_timeout_s, token=token)
        client.close()
    except GalleryUnavailable:
        raise ConfigurationError(
            f"Milvus at {milvus_place(uri)} does not answer within "
            f"{settings.milvus_timeout_s} s: start it or correct BORDER_MILVUS_URI"
        ) from None


def _given_metrics_dir() -> Path | None:
    """The PROMETHEUS_MULTIPROC_DIR the operator gave, checked before the slow start."""
    from core.metrics import MULTIPROC_DIR, multiprocess_dir

    folder = multiprocess_dir()
    if folder is not None and not folder.is_dir():
        raise _fail(f"{MULTIPROC_DIR}: {folder} is not a directory")
    return folder


@contextmanager
def _shared_metrics(given: Path | None) -> Iterator[None]:
    """PROMETHEUS_MULTIPROC_DIR for the workers (they inherit the environment): the one the
    operator gave, emptied of an earlier run's figures, or a new one removed at the end."""
    import os
    import shutil
    import tempfile

    from core.metrics import MULTIPROC_DIR

    if given is not None:
        for stale in given.glob("*.db"):
            stale.unlink()
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="border-metrics-"))
    os.environ[MULTIPROC_DIR] = str(folder)
    try:
        yield
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(folder, ignore_errors=True)


@database.command("url")
def db_url() -> None:
    """Print the schema owner's connection URL (for psql and backups): the embedded
    store's owner, or BORDER_OWNER_DATABASE_URL; BORDER_DATABASE_URL when only that is set.
    The embedded server is left running so the URL still answers."""
    from core import db

    settings = _settings()
    if settings.owner_database_url is not None:
        typer.echo(settings.owner_database_url.get_secret_value())
        return
    try:
        store = db.locate(settings, keep_running=True)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    typer.echo(store.owner_url or store.url)


@database.command("migrate")
def db_migrate() -> None:
    """Apply the pending migrations as the schema owner and grant the service's role
    (border_app) its rights. An external server needs BORDER_OWNER_DATABASE_URL; the
    embedded store migrates as its own owner role."""
    from core import db, migrate

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        with db.owner_connection(settings) as conn:
            applied = migrate.apply(conn, migration_dirs())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    for name in applied:
        typer.echo(f"applied {name}")
    typer.echo(f"schema current: {len(applied)} migrations applied now")


@database.command("status")
def db_status() -> None:
    """List the migrations, applied or pending: exit 0 when the schema is current, 1 when
    some are pending."""
    from core import db, migrate

    settings = _settings()
    try:
        if settings.owner_database_url is None and settings.database_url is not None:
            with db.connect(
                settings.database_url.get_secret_value(), source="BORDER_DATABASE_URL"
            ) as conn:
                rows = migrate.status(conn, migration_dirs())
        else:
            with db.owner_connection(settings) as conn:
                rows = migrate.status(conn, migration_dirs())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    for name, applied_at in rows:
        typer.echo(
            f"{name}  {f'applied {applied_at:%Y-%m-%d %H:%M:%S %Z}' if applied_at else 'pending'}"
        )
    pending = sum(1 for _, applied_at in rows if applied_at is None)
    typer.echo(f"{len(rows) - pending} applied, {pending} pending")
    if pending:
        raise typer.Exit(1)


@database.command("dump")
def db_dump(
    file: Annotated[Path, typer.Argument(help="The backup to write (pg_dump's custom format).")],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Back the whole database up to FILE (pg_dump, custom format) as the schema owner.

    The embedded store is dumped with its own pg_dump; a server given by
    BORDER_OWNER_DATABASE_URL with the pg_dump on PATH, of the server's major version or
    newer. Restore with pg_restore as the owner. The master key ring is NOT in the dump:
    back it up separately."""
    from core import db
    from core.keys import KEY_FILE_NAME

    settings = _settings()
    try:
        done = db.dump(settings, file, force=force)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    ring = (
        "BORDER_MASTER_KEY"
        if settings.master_key is not None
        else str((settings.data_dir / KEY_FILE_NAME).absolute())
    )
    typer.echo(
        f"{done.path}: {done.size:,} bytes (pg_dump custom format, PostgreSQL "
        f"{done.server_major}). The master key is NOT in the dump: the personal data in it "
        f"are encrypted, so back up the key ring ({ring}) separately."
    )


@database.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL of BORDER_DATA_DIR (left running by `border db url`)."""
    from core import db

    settings = _settings()
    if settings.database_url is not None or settings.owner_database_url is not None:
        raise _fail("a server given by URL is not the embedded store; stop it where it runs")
    try:
        stopped = db.stop_embedded(settings)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@clients.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="Who or what holds the key.")],
    role: Annotated[str, typer.Option(help="kiosk, officer, consular, auditor or admin.")],
    border_point: Annotated[
        str | None, typer.Option(help="Bind the key to one border point.")
    ] = None,
) -> None:
    """Create an API client; its key is printed once, alone on the last line."""
    from border import models, service
    from core import auth

    try:
        body = models.ClientIn(name=name, role=role, border_point=border_point)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _fail(f"invalid client: {exc}") from None
    with _runtime() as rt:
        created = service.create_client(rt, auth.command_line("clients create"), body)
    typer.echo(f"client {created.client_id} ({created.role}) created; its key, shown once:")
    typer.echo(created.api_key)


@clients.command("list")
def clients_list() -> None:
    """List API clients (never their keys)."""
    from border import service
    from core import auth

    with _runtime() as rt:
        rows = service.list_clients(rt, auth.command_line("clients list"))
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        typer.echo(
            f"{row.client_id}  {row.role:<8}  {row.border_point or '-':<12}  {state}  {row.name}"
        )


@clients.command("revoke")
def clients_revoke(client_id: UUID) -> None:
    """Revoke a client's key; it stops working at once."""
    from border import service
    from core import auth

    with _runtime() as rt:
        service.revoke_client(rt, auth.command_line("clients revoke"), client_id)
    typer.echo(f"client {client_id} revoked")


@clients.command("seal")
def clients_seal(
    client_ids: Annotated[list[UUID] | None, typer.Argument(help="Only these clients.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every client without a MAC.")] = False,
) -> None:
    """Vouch for clients written before client rows carried a MAC, so their keys work
    again. Check them first with `border clients list`: sealing blesses the rows as they
    stand."""
    from border import service
    from core import auth

    if not client_ids and not all_:
        raise _fail("name the clients to seal, or give --all")
    with _runtime() as rt:
        done = service.seal_clients(
            rt, auth.command_line("clients seal"), client_ids=client_ids or None
        )
    for row in done:
        typer.echo(
            f"{row.client_id}  {row.role:<8}  {row.border_point or '-':<12}  sealed  {row.name}"
        )
    typer.echo(f"{len(done)} clients sealed")


users = typer.Typer(help="Staff accounts for the console.", no_args_is_help=True)
app.add_typer(users, name="users")


@users.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="2-64 lower-case letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help="consular, officer, auditor or admin.")],
    border_point: Annotated[
        str | None, typer.Option(help="The border point the user works at.")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from stdin (one line) and activate at once: for demos, "
            "tests and scripts. Prints the TOTP URI instead of an activation link.",
        ),
    ] = False,
) -> None:
    """Create a staff account. Its one-time activation link (72 h), through which the
    person sets their own password and authenticator, is printed alone on the last line."""
    from border import users as user_service
    from core import auth

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with _runtime() as rt:
        created = user_service.create(
            rt,
            auth.command_line("users create"),
            username=username,
            role=role,
            border_point=border_point,
            password=password,
        )
    user = created.user
    if created.totp_uri is not None:
        typer.echo(
            f"user {user.username} ({user.role}) created and active. The account is marked "
            "admin-provisioned: you chose its password. Its TOTP provisioning URI, shown once:"
        )
        typer.echo(created.totp_uri)
        return
    typer.echo(
        f"user {user.username} ({user.role}) created, pending. Send them this one-time "
        "activation link (valid 72 h), shown once:"
    )
    typer.echo(created.activation_url)


@users.command("list")
def users_list() -> None:
    """List staff accounts (never passwords or secrets)."""
    from border import users as user_service
    from core import auth

    with _runtime() as rt:
        rows = user_service.list_users(rt, auth.command_line("users list"))
    typer.echo(
        f"{'username':<24}  {'role':<8}  {'border point':<12}  {'status':<8}  "
        f"{'admin-provisioned':<17}  created"
    )
    for user in rows:
        typer.echo(
            f"{user.username:<24}  {user.role:<8}  {user.border_point or '-':<12}  "
            f"{user.status:<8}  {'yes' if user.admin_provisioned else 'no':<17}  "
            f"{user.created_at:%Y-%m-%d %H:%M}"
        )


@users.command("disable")
def users_disable(username: str) -> None:
    """Disable an account for good: its sessions end at once."""
    from border import users as user_service
    from core import auth

    with _runtime() as rt:
        user = user_service.disable(rt, auth.command_line("users disable"), username)
    typer.echo(f"user {user.username} disabled; their sessions are ended")


@users.command("reset-totp")
def users_reset_totp(username: str) -> None:
    """Replace a lost authenticator: the sessions end and the account is pending again
    until its holder enrols a new one through the link printed alone on the last line (the
    password stays)."""
    from border import users as user_service
    from core import auth

    with _runtime() as rt:
        created = user_service.reset_totp(rt, auth.command_line("users reset-totp"), username)
    typer.echo(
        f"user {created.user.username}: authenticator reset, sessions ended. Send them this "
        "one-time link (valid 72 h) to enrol a new one, shown once:"
    )
    typer.echo(created.activation_url)


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a master key version (or take the newest in BORDER_MASTER_KEY) and re-wrap every
    data key under it."""
    from border import service
    from core import auth

    with _runtime() as rt, _progress("re-wrapping data keys", "keys") as progress:
        result = service.rotate_keys(rt, auth.command_line("keys rotate"), progress)
    typer.echo(f"master key version {result.version}: {result.rewrapped} data keys re-wrapped")


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit chain: exit 0 when it holds, 1 with the first bad seq when not."""
    from audit import service as audit_service
    from core import auth

    with _runtime() as rt:
        verdict = audit_service.verify(rt.pool, rt.keys, auth.command_line("audit verify"))
    if verdict.ok:
        typer.echo(f"audit chain ok: {verdict.events} events, head {verdict.head_hash.hex()}")
        return
    typer.echo(
        f"audit chain BROKEN at seq {verdict.first_bad_seq} ({verdict.reason}); "
        f"{verdict.events} events verified before it",
    )
    raise typer.Exit(1)


@index.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the galleries from the records store and save their encrypted snapshot
    (FAISS), or refill Milvus from it (BORDER_GALLERY_BACKEND=milvus): on a Milvus server
    into new collections while the service keeps searching the old ones."""
    from enrollment.galleries import Galleries
    from matching.milvus import GalleryUnavailable

    with _runtime() as rt:
        try:
            galleries = Galleries(rt.settings)
        except ConfigurationError as exc:
            raise _fail(str(exc)) from None
        try:
            with rt.pool.connection() as conn, _progress("loading captures", "captures") as tick:
                galleries.rebuild(conn, rt.keys, tick)
            galleries.save(rt.keys)
            sizes = galleries.sizes()
        except GalleryUnavailable as exc:
            raise _fail(f"{exc}; nothing was moved: run it again when Milvus answers") from None
        finally:
            galleries.close()
    typer.echo(
        f"galleries rebuilt: {sizes.get('enrolled', 0)} templates"
        f" ({galleries.enrolled.index_kind}), {sizes.get('watchlist', 0)} on the watchlist"
    )


@alerts.command("import")
def alerts_import(
    file: Annotated[
        Path, typer.Argument(help="CSV with the header issuing_state,document_number,category")
    ],
) -> None:
    """Load a lost-and-stolen document list: every row or, on a bad row, none (the error
    names its line). Rows already active as alerts are skipped."""
    from core import auth
    from enrollment import alerts as alert_service

    with _runtime() as rt, _progress("checking and sealing rows", "rows") as progress:
        try:
            read, added = alert_service.import_document_list(
                rt, auth.command_line("alerts import"), file, progress
            )
        except alert_service.BadRow as exc:
            raise _fail(f"{file}: {exc.detail}; nothing was loaded") from None
    typer.echo(f"{read} rows read, {added} alerts added, {read - added} already on record")


pki = typer.Typer(help="The passport chip's trust store (DESIGN §16).", no_args_is_help=True)
app.add_typer(pki, name="pki")


@pki.command("import")
def pki_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSCA certificates (PEM or DER), a CRL, or an ICAO CSCA master list"),
    ],
) -> None:
    """Import trust anchors for passive authentication: all of the file or, on a fault,
    nothing. A master list is verified (CMS signature, signer issued by a CSCA held or
    listed); a CRL must be signed by an imported CSCA."""
    from core import auth
    from visa import pki as pki_service

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: cannot be read ({exc.strerror or exc})") from None
    with _runtime() as rt:
        try:
            done = pki_service.import_file(rt, auth.command_line("pki import"), data)
        except pki_service.BadTrustFile as exc:
            raise _fail(f"{file}: {exc.detail}; nothing was imported") from None
    typer.echo(
        f"{file}: {done.kind}: {done.anchors_added} CSCA certificates and {done.crls_added} "
        f"CRLs added, {done.already_held} already held, {done.skipped} skipped"
    )


@app.command()
def openapi(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The Markdown reference (docs/api.md) instead.")
    ] = False,
) -> None:
    """Print the API's OpenAPI schema (JSON), or its Markdown reference. Starts nothing."""
    from border import api_reference
    from border.app import create_app

    service_app = create_app(_settings())
    text = (
        api_reference.reference(service_app)
        if markdown
        else api_reference.render_json(service_app.openapi())
    )
    typer.echo(text, nl=False)


@app.command()
def doctor() -> None:
    """Check the settings, the policy, the database and its migrations, the key ring and
    the gallery snapshot; print a table, exit 1 when any check fails. Creates nothing."""
    from core import db, migrate
    from core import store as core_store
    from core.keys import Keyring
    from enrollment.galleries import Galleries, milvus_place, milvus_uri
    from visa.policy import load_policy

    rows: list[tuple[str, bool, str]] = []

    def report() -> None:
        for name, ok, detail in rows:
            typer.echo(f"{name:<12} {'ok' if ok else 'FAIL':<5} {detail}")
        if not all(ok for _, ok, _ in rows):
            raise typer.Exit(1)

    try:
        settings = Settings()
    except ValidationError as exc:
        names = ", ".join(name for name, _ in _setting_problems(exc))
        rows.append(("settings", False, f"bad values: {names}"))
        report()
        return
    rows.append(("settings", True, f"data dir {settings.data_dir}"))
    try:
        checked = load_policy(settings.policy_file)
        rows.append(("policy", True, f"rule set {checked.rule_set}, host {checked.host_state}"))
    except ConfigurationError as exc:
        rows.append(("policy", False, str(exc)))
    try:
        store = db.locate(settings)
    except ConfigurationError as exc:
        rows.append(("database", False, str(exc)))
        report()
        return
    try:
        with db.connect(store.url, source=store.source) as conn:
            conn.execute("SELECT 1")
            rows.append(("database", True, f"answers ({store.source})"))
            pending = [name for name, at in migrate.status(conn, migration_dirs()) if at is None]
            # With the owner known (the embedded store, BORDER_OWNER_DATABASE_URL), the next
            # start migrates; otherwise the service refuses to start until someone does.
            migrates = store.owner_url is not None
            rows.append(
                ("migrations", not pending or migrates,
                 "current" if not pending else f"{len(pending)} pending: "
                 + ("applied at the next start" if migrates else "run `border db migrate`"))
            )  # fmt: skip
            if pending or not core_store.master_key_checks(conn):
                rows.append(("key ring", True, "none yet: the first start makes one"))
            else:
                keys = Keyring.open(conn, settings)
                rows.append(("key ring", True, f"master key version {keys.master.current}"))
                if settings.gallery_backend == "milvus":
                    # Not opened: Milvus Lite's file is the running service's alone.
                    where = milvus_place(milvus_uri(settings))
                    rows.append(("galleries", True, f"in Milvus at {where} (not opened here)"))
                else:
                    galleries = Galleries(settings)
                    loaded = galleries.load(keys)
                    rows.append(
                        ("galleries", True, f"snapshot of {len(galleries.enrolled)} templates"
                         if loaded else
                         "no usable snapshot: the next start rebuilds from the store")
                    )  # fmt: skip
    except ConfigurationError as exc:
        rows.append(("database", False, str(exc)))
    finally:
        store.close()
    report()


policy = typer.Typer(help="The visa and stay policy file.", no_args_is_help=True)
app.add_typer(policy, name="policy")


@policy.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="A policy TOML file (DESIGN §6).")],
) -> None:
    """Check a policy file before pointing BORDER_POLICY_FILE at it: exit 0 with what it
    says, or exit 2 with every fault in one line."""
    from visa.policy import load_policy

    try:
        checked = load_policy(file)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"{file}: ok. host state {checked.host_state}, rule set {checked.rule_set}, "
        f"{checked.max_stay_days} days in {checked.window_days}, adult at "
        f"{checked.adult_age}, {len(checked.visa_exempt)} visa-exempt nationalities, documents "
        f"valid {checked.min_document_validity_days} days after entry, chip required of "
        f"{len(checked.chip_required)} nationalities"
    )


retention = typer.Typer(help="Retention of personal data (DESIGN §12).", no_args_is_help=True)
app.add_typer(retention, name="retention")


@retention.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be erased; change nothing.")
    ] = False,
    on: Annotated[
        str | None,
        typer.Option(help="Run as on this day, YYYY-MM-DD (default: today in the host zone)."),
    ] = None,
) -> None:
    """Erase every file whose retention period has run out (the policy's [retention]) and
    print what was erased, or with --dry-run would be, by kind; exit 0. The service runs
    this once a day by itself."""
    from datetime import date

    from border import retention as retention_mod
    from core import auth
    from visa.policy import load_policy

    day = None
    if on is not None:
        try:
            day = date.fromisoformat(on)
        except ValueError:
            raise _fail("--on must be a date, YYYY-MM-DD") from None
    settings = _settings()
    try:
        rules = load_policy(settings.policy_file)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    who = retention_mod.Actor.of(auth.command_line("retention"))
    with _runtime() as rt, _progress("retention: files checked", "files") as progress:
        try:
            summary = retention_mod.run(
                rt,
                rules,
                who,
                on=day or retention_mod.today(rt),
                dry_run=dry_run,
                progress=progress,
            )
        except retention_mod.RunInProgress as exc:
            raise _fail(str(exc), 1) from None
    for line in summary.lines():
        typer.echo(line)


@app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="Play in this directory instead of a fresh one.")
    ] = None,
    faces: Annotated[
        Path | None,
        typer.Option(help="Folder of the sample photos (default: the project's samples/faces)."),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the fresh data directory afterwards.")] = False,
    console: Annotated[
        bool,
        typer.Option(
            help="Afterwards, keep the store and serve the staff console with a sign-in per role."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="The console's port (with --console).")] = 8000,
) -> None:
    """A day at a border post on the embedded defaults: enrollments, visas, kiosk
    crossings, an officer's resolutions, overstayers, and the audit-chain check."""
    from border import demo as demo_module

    if console:
        _port_free("127.0.0.1", port)
    try:
        code = demo_module.run(
            data_dir=data_dir, faces=faces, keep=keep, console_port=port if console else None
        )
    except demo_module.MissingPhotos as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)
