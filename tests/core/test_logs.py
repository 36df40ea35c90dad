import io
import json
import logging

import pytest

from core import logs


@pytest.fixture
def stream() -> io.StringIO:
    """Where the test's logger writes."""
    return io.StringIO()


def _logger(stream: io.StringIO, formatter: logging.Formatter) -> logging.Logger:
    logger = logging.getLogger(f"border.test.{id(stream)}")
    logger.handlers = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


class TestRequestIds:
    @pytest.mark.parametrize("value", ["a", "kiosk-7.entry_42", "A" * 64, "0123456789abcdef"])
    def test_kept(self, value: str) -> None:
        assert logs.valid_request_id(value) == value

    @pytest.mark.parametrize(
        "value", [None, "", "A" * 65, "has space", "semi;colon", "new\nline", "ümlaut", "a/b"]
    )
    def test_refused(self, value: str | None) -> None:
        assert logs.valid_request_id(value) is None

    def test_the_scope_gives_the_id_and_takes_the_actor_then_ends(self) -> None:
        assert logs.current_request_id() is None
        with logs.request_scope("req-1") as fields:
            assert logs.current_request_id() == "req-1"
            logs.note(actor="client-9")
            assert fields == {"request_id": "req-1", "actor": "client-9"}
        assert logs.current_request_id() is None
        logs.note(actor="nobody")  # outside a request: nothing to add to, no error
        assert logs.current_request_id() is None


class TestJsonLines:
    def test_a_line_is_one_object_with_the_request_fields(self, stream: io.StringIO) -> None:
        logger = _logger(stream, logs.JsonFormatter())
        with logs.request_scope("req-7"):
            logs.note(actor="abc")
            logger.info(
                "GET %s %d", "/v1/persons/{person_id}", 200, extra={"status": 200, "route": "/r"}
            )
        logger.warning("outside")
        first, second = (json.loads(line) for line in stream.getvalue().splitlines())
        assert first["level"] == "INFO"
        assert first["logger"] == logger.name
        assert first["msg"] == "GET /v1/persons/{person_id} 200"
        assert first["request_id"] == "req-7"
        assert first["actor"] == "abc"
        assert first["status"] == 200
        assert first["route"] == "/r"
        assert first["ts"].endswith("+00:00")
        assert second["msg"] == "outside"
        assert "request_id" not in second

    def test_an_exception_is_its_type_and_frames_never_its_message(
        self, stream: io.StringIO
    ) -> None:
        logger = _logger(stream, logs.JsonFormatter())
        try:
            raise ValueError("SMITH JOHN P1234567")
        except ValueError:
            logger.exception("failed")
        line = json.loads(stream.getvalue())
        assert line["exc"].startswith("ValueError at ")
        assert "test_logs.py" in line["exc"]
        assert "SMITH" not in stream.getvalue()

    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            ('connect to "postgresql://border:s3cr3t@[db:5432/border"', "s3cr3t"),
            ("host=db user=border password=s3cr3t dbname=border", "s3cr3t"),
            ("host=db password='s3 cr3t' user=x", "s3 cr3t"),
        ],
    )
    def test_no_password_reaches_a_line(self, stream: io.StringIO, text: str, secret: str) -> None:
        for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
            logger = _logger(stream, formatter)
            logger.warning("error connecting: %s", text)
        assert secret not in stream.getvalue()
        assert stream.getvalue().count("***") == 2


class TestTextLines:
    def test_a_line_reads_plainly(self, stream: io.StringIO) -> None:
        logger = _logger(stream, logs.TextFormatter())
        with logs.request_scope("req-3"):
            logger.info("GET /health 200", extra={"status": 200, "duration_ms": 1.5})
        line = stream.getvalue().strip()
        assert " INFO " in line
        assert "[req-3]" in line
        assert line.endswith("GET /health 200 status=200 duration_ms=1.5")


class TestConfig:
    def test_uvicorn_writes_through_the_same_handler_at_the_same_level(self) -> None:
        config = logs.config("WARNING", "json")
        assert config["root"] == {"level": "WARNING", "handlers": ["stderr"]}
        for name in ("uvicorn", "uvicorn.error"):
            assert config["loggers"][name]["level"] == "WARNING"
            assert config["loggers"][name]["propagate"] is True
        # The service writes its own access lines.
        assert config["loggers"]["uvicorn.access"]["propagate"] is False
        assert config["formatters"]["border"]["()"] == "core.logs.JsonFormatter"
        assert logs.config("INFO", "text")["formatters"]["border"]["()"] == (
            "core.logs.TextFormatter"
        )

    def test_auto_is_json_off_a_terminal(self) -> None:
        # Under pytest stderr is captured, not a terminal.
        assert logs.resolve_format("auto") == "json"
        assert logs.resolve_format("text") == "text"
