"""The ``border`` command line (DESIGN §7a). Every command reads the same settings as the
service, from ``BORDER_*`` variables."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from audit import service as audit_service
from border import models, service
from border.app import create_app, migration_dirs
from core import auth, db
from core.errors import BorderError, ConfigurationError
from core.runtime import Runtime
from core.settings import Settings
from enrollment import alerts as alert_service
from enrollment.galleries import Galleries

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


@contextmanager
def _runtime() -> Iterator[Runtime]:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
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
    """Run the HTTP service; migrations are applied at start."""
    import uvicorn

    settings = Settings()
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    workers = workers or settings.workers
    try:
        if workers == 1:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        else:
            # Each worker builds its app from the same BORDER_* environment; they share
            # the store and keep their galleries in step through it.
            uvicorn.run(
                "border.app:create_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level="info",
            )
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


@database.command("url")
def db_url() -> None:
    """Print the connection URL of the store in use (for psql and backups). The embedded
    server is left running so the URL still answers."""
    settings = Settings()
    try:
        store = db.locate(settings, keep_running=True)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    typer.echo(store.url)


@clients.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="Who or what holds the key.")],
    role: Annotated[str, typer.Option(help="kiosk, officer, consular, auditor or admin.")],
    border_point: Annotated[
        str | None, typer.Option(help="Bind the key to one border point.")
    ] = None,
) -> None:
    """Create an API client; its key is printed once, alone on the last line."""
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
    with _runtime() as rt:
        service.revoke_client(rt, auth.command_line("clients revoke"), client_id)
    typer.echo(f"client {client_id} revoked")


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a master key version (or take the newest in BORDER_MASTER_KEY) and re-wrap every
    data key under it."""

    def progress(done: int, total: int) -> None:
        typer.echo(f"re-wrapped {done}/{total} data keys", err=True)

    with _runtime() as rt:
        result = service.rotate_keys(rt, auth.command_line("keys rotate"), progress)
    typer.echo(f"master key version {result.version}: {result.rewrapped} data keys re-wrapped")


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit chain: exit 0 when it holds, 1 with the first bad seq when not."""
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
    """Rebuild the galleries from the records store and save their encrypted snapshot."""

    def progress(done: int, total: int) -> None:
        typer.echo(f"loaded {done}/{total} captures", err=True)

    with _runtime() as rt:
        galleries = Galleries(rt.settings)
        with rt.pool.connection() as conn:
            galleries.rebuild(conn, rt.keys, progress)
        galleries.save(rt.keys)
    typer.echo(
        f"galleries rebuilt: {len(galleries.enrolled)} templates"
        f" ({galleries.enrolled.index_kind}), {len(galleries.watchlist)} on the watchlist"
    )


@alerts.command("import")
def alerts_import(
    file: Annotated[
        Path, typer.Argument(help="CSV with the header issuing_state,document_number,category")
    ],
) -> None:
    """Load a lost-and-stolen document list: every row or, on a bad row, none (the error
    names its line). Rows already active as alerts are skipped."""

    def progress(done: int, total: int) -> None:
        typer.echo(f"checked {done}/{total} rows", err=True)

    with _runtime() as rt:
        try:
            read, added = alert_service.import_document_list(
                rt, auth.command_line("alerts import"), file, progress
            )
        except alert_service.BadRow as exc:
            raise _fail(f"{file}: {exc.detail}; nothing was loaded") from None
    typer.echo(f"{read} rows read, {added} alerts added, {read - added} already on record")


@app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="Play in this directory instead of a fresh one.")
    ] = None,
    faces: Annotated[
        Path | None, typer.Option(help="Folder of the sample photos (default: ../shared/faces).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the fresh data directory afterwards.")] = False,
) -> None:
    """A day at a border post on the embedded defaults: enrollments, visas, kiosk
    crossings, an officer's resolutions, overstayers, and the audit-chain check."""
    from border import demo as demo_module

    try:
        code = demo_module.run(data_dir=data_dir, faces=faces, keep=keep)
    except demo_module.MissingPhotos as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)
