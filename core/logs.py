"""Log lines and the request they belong to (DESIGN §15).

One JSON object a line (``ts``, ``level``, ``logger``, ``msg``, and ``request_id``,
``actor``, ``method``, ``route``, ``status``, ``duration_ms`` when known) with
``BORDER_LOG_FORMAT=json``, the default when stderr is not a terminal; a readable line on a
terminal. uvicorn's loggers write through the same handler at ``BORDER_LOG_LEVEL``; its
access log is off, as the service writes its own (``border.access``), naming the route's
template and never the path or query as sent, which may hold names or document numbers.

The request a line belongs to is held in a context variable: set by the HTTP middleware,
carried into the worker threads of sync routes (they run in a copy of the context), read
by every log line and by the audit log, which stores the request id with each event.

No line carries a password: one quoted in a library's message (a connection URL in
psycopg's) is replaced by ``***``.
"""

import json
import logging
import logging.config
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["auto", "json", "text"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# What a line may carry beyond the record's own fields, in the order a text line shows them.
FIELDS = ("request_id", "actor", "method", "route", "status", "duration_ms")

# A password in a connection URL or string, wherever a library's message quotes one.
_SECRETS = (
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE), r"\1***@"),
    (re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE), r"\1***"),
)

_request: ContextVar[dict[str, Any] | None] = ContextVar("border_request", default=None)


def valid_request_id(value: str | None) -> str | None:
    """``value`` when it is a request id the service keeps (up to 64 characters of
    ``A-Za-z0-9-_.``), else None."""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


@contextmanager
def request_scope(request_id: str) -> Iterator[dict[str, Any]]:
    """The context of one request for the lines logged and the events audited within it.
    The dict it gives may be added to (the actor, once known): the worker threads of the
    request see the same dict."""
    fields: dict[str, Any] = {"request_id": request_id}
    token = _request.set(fields)
    try:
        yield fields
    finally:
        _request.reset(token)


def note(**fields: Any) -> None:
    """Add fields (the actor, once authenticated) to the current request's context; nothing
    outside a request."""
    current = _request.get()
    if current is not None:
        current.update(fields)


def current_request_id() -> str | None:
    fields = _request.get()
    return None if fields is None else fields.get("request_id")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_request.get() or {})
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return {name: fields[name] for name in FIELDS if fields.get(name) is not None}


def _stack(record: logging.LogRecord) -> str | None:
    """An exception as its type and frames only: its message and the locals may hold
    personal data."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    frames = "; ".join(
        f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)
    )
    return f"{type(exc).__name__} at {frames}"


def redact(text: str) -> str:
    """``text`` with any password of a connection URL or string replaced by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _message(record: logging.LogRecord) -> str:
    return redact(record.getMessage())


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
            **_fields(record),
        }
        stack = _stack(record)
        if stack is not None:
            line["exc"] = stack
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        rid = fields.pop("request_id", None)
        head = f"{_timestamp(record)} {record.levelname:<7} {record.name}"
        if rid is not None:
            head += f" [{rid}]"
        tail = "".join(f" {name}={value}" for name, value in fields.items())
        stack = _stack(record)
        return f"{head}: {_message(record)}{tail}" + (f"\n  {stack}" if stack else "")


def resolve_format(log_format: LogFormat) -> Literal["json", "text"]:
    if log_format != "auto":
        return log_format
    return "text" if sys.stderr.isatty() else "json"


def config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the service and the CLI, also given to uvicorn
    (``log_config``), which applies it in each worker process."""
    formatter = JsonFormatter if resolve_format(log_format) == "json" else TextFormatter
    # uvicorn's loggers write through the root's handler, at the service's level.
    through_root = {"handlers": [], "propagate": True, "level": level}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"border": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "border",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": through_root,
            "uvicorn.error": through_root,
            # The service writes its own access lines (border.access).
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


def configure(level: str, log_format: LogFormat) -> dict[str, Any]:
    """Apply :func:`config` to this process and return it (for uvicorn's workers)."""
    settings = config(level, log_format)
    logging.config.dictConfig(settings)
    return settings
