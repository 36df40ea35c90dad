import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from border.cli import app
from core import auth, crypto, db
from core.keys import KEY_FILE_NAME
from core.settings import Settings
from tests.conftest import as_role

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "BORDER_DATA_DIR": str(settings.data_dir),
        "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
    }


def border(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout


class TestClientsCommands:
    def test_create_prints_the_key_alone_on_the_last_line(
        self, env: dict[str, str], database_url: str
    ) -> None:
        code, out = border(env, "clients", "create", "--name", "gate 3", "--role", "kiosk",
                           "--border-point", "UTO-LAND-3")  # fmt: skip
        assert code == 0
        key = out.strip().splitlines()[-1]
        assert key.startswith(auth.KEY_PREFIX)
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT role, border_point FROM api_clients WHERE key_sha256 = %s",
                (auth.key_digest(key),),
            ).fetchone()
        assert row == ("kiosk", "UTO-LAND-3")

    def test_an_unknown_role_is_refused_and_nothing_written(
        self, env: dict[str, str], database_url: str
    ) -> None:
        result = CliRunner().invoke(
            app, ["clients", "create", "--name", "x", "--role", "superuser"], env=env
        )
        assert result.exit_code == 2
        assert "role" in result.stderr
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM api_clients").fetchone() == (0,)

    def test_list_and_revoke(self, env: dict[str, str]) -> None:
        _, out = border(env, "clients", "create", "--name", "desk", "--role", "officer")
        client_id = out.split()[1]
        assert border(env, "clients", "list")[1].count("active") == 1
        assert border(env, "clients", "revoke", client_id)[0] == 0
        assert "revoked" in border(env, "clients", "list")[1]
        code, _ = border(env, "clients", "revoke", "00000000-0000-0000-0000-00000000beef")
        assert code == 2

    def test_seal_vouches_for_a_client_from_before_macs(
        self, env: dict[str, str], database_url: str
    ) -> None:
        _, out = border(env, "clients", "create", "--name", "desk", "--role", "officer")
        client_id = out.split()[1]
        with psycopg.connect(database_url) as conn:
            # As a store upgraded from before client rows carried a MAC holds it.
            conn.execute("UPDATE api_clients SET mac = NULL")
        assert border(env, "clients", "seal")[0] == 2  # neither ids nor --all: nothing done

        code, out = border(env, "clients", "seal", "--all")

        assert code == 0
        assert client_id in out
        assert out.strip().splitlines()[-1] == "1 clients sealed"
        with psycopg.connect(database_url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM api_clients WHERE mac IS NULL"
            ).fetchone() == (0,)
        assert border(env, "clients", "seal", "--all")[1].strip() == "0 clients sealed"


class TestAuditVerify:
    def test_exit_0_then_1_at_the_tampered_seq(
        self, env: dict[str, str], database_url: str
    ) -> None:
        for name in ("a", "b", "c"):
            border(env, "clients", "create", "--name", name, "--role", "auditor")
        code, out = border(env, "audit", "verify")
        assert code == 0
        assert "audit chain ok: 3 events" in out
        with psycopg.connect(database_url) as conn:
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.execute("DELETE FROM audit_events WHERE seq = 2")
        code, out = border(env, "audit", "verify")
        assert code == 1
        assert "BROKEN at seq 2" in out


class TestKeysRotate:
    def test_rotation_adds_a_version_and_rewraps(self, env: dict[str, str]) -> None:
        border(env, "clients", "create", "--name", "a", "--role", "admin")
        code, out = border(env, "keys", "rotate")
        assert code == 0
        assert "master key version 2: 1 data keys re-wrapped" in out
        ring = crypto.read_key_file(Path(env["BORDER_DATA_DIR"]) / KEY_FILE_NAME)
        assert set(ring.keys) == {1, 2}
        assert border(env, "audit", "verify")[0] == 0

    def test_a_wrong_master_key_fails_with_a_message(self, env: dict[str, str]) -> None:
        border(env, "clients", "create", "--name", "a", "--role", "admin")
        wrong = {**env, "BORDER_MASTER_KEY": "1:" + "A" * 43 + "="}
        result = CliRunner().invoke(app, ["audit", "verify"], env=wrong)
        assert result.exit_code == 2
        assert "master key version 1 is not the key" in result.stderr


class TestDbUrl:
    def test_prints_the_configured_url(self, env: dict[str, str]) -> None:
        code, out = border(env, "db", "url")
        assert code == 0
        assert out.strip() == env["BORDER_DATABASE_URL"]

    def test_prints_the_owner_s_url_when_it_is_given(
        self, env: dict[str, str], owner_database_url: str
    ) -> None:
        code, out = border({**env, "BORDER_OWNER_DATABASE_URL": owner_database_url}, "db", "url")
        assert (code, out.strip()) == (0, owner_database_url)

    def test_the_embedded_store_s_url_is_its_owner_s_and_answers_until_db_stop(
        self, tmp_path: Path
    ) -> None:
        env = {**os.environ, "BORDER_DATA_DIR": str(tmp_path)}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "border", "db", *args],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        printed = run("url")
        assert printed.returncode == 0, printed.stderr
        url = printed.stdout.strip()
        try:
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (db.OWNER_ROLE,)
        finally:
            stopped = run("stop")
        assert (stopped.returncode, stopped.stdout.strip()) == (0, "embedded PostgreSQL stopped")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        assert run("stop").stdout.strip() == "embedded PostgreSQL was not running"


class TestDbMigrate:
    """An external server: the service's URL (border_app) cannot migrate; the owner's can."""

    def test_migrates_as_the_owner_and_the_service_then_starts(
        self, unmigrated_database_url: str, tmp_path: Path
    ) -> None:
        owner = {"BORDER_OWNER_DATABASE_URL": as_role(unmigrated_database_url, db.OWNER_ROLE)}
        service = {
            "BORDER_DATA_DIR": str(tmp_path),
            "BORDER_DATABASE_URL": as_role(unmigrated_database_url, db.APP_ROLE),
        }
        assert border(service, "db", "status")[0] == 1
        code, out = border(owner, "db", "migrate")
        assert code == 0
        assert out.splitlines()[0] == "applied 0001_core.sql"
        assert out.splitlines()[-1].startswith("schema current")
        code, out = border(service, "db", "status")
        assert (code, out.splitlines()[-1].split(",")[1]) == (0, " 0 pending")
        assert border(service, "clients", "create", "--name", "a", "--role", "admin")[0] == 0
        assert (
            border(owner, "db", "migrate")[1].strip() == "schema current: 0 migrations applied now"
        )

    def test_the_service_s_url_alone_is_refused(self, env: dict[str, str]) -> None:
        result = CliRunner().invoke(app, ["db", "migrate"], env=env)
        assert result.exit_code == 2
        assert "set BORDER_OWNER_DATABASE_URL" in result.stderr

    def test_serve_refuses_a_schema_that_is_behind_in_one_line(
        self, unmigrated_database_url: str, tmp_path: Path
    ) -> None:
        service = {
            "BORDER_DATA_DIR": str(tmp_path),
            "BORDER_DATABASE_URL": as_role(unmigrated_database_url, db.APP_ROLE),
        }
        done = subprocess.run(
            [sys.executable, "-m", "border", "serve", "--port", "0"],
            env={**os.environ, **service}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
        assert "run `border db migrate` with BORDER_OWNER_DATABASE_URL" in done.stderr


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "stat").read_text().split()[3] == str(pid):
                found.append(int(entry.name))
        except OSError:  # the process ended meanwhile
            continue
    return found


class TestServe:
    @pytest.mark.parametrize(
        ("workers", "how"),
        [(1, ["--workers", "1"]), (2, ["--workers", "2"]), (2, {"BORDER_WORKERS": "2"})],
    )
    def test_serves_health_and_stops_cleanly(
        self, env: dict[str, str], workers: int, how: list[str] | dict[str, str]
    ) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        flags = how if isinstance(how, list) else []
        settings = how if isinstance(how, dict) else {}
        process = subprocess.Popen(
            [sys.executable, "-m", "border", "serve", "--port", str(port), *flags],
            env={**os.environ, **env, **settings},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline, body = time.monotonic() + 120, b""
            while time.monotonic() < deadline and not body:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
                        body = response.read()
                except OSError:
                    time.sleep(0.2)
            assert body == b'{"status":"ok"}'
            if workers > 1:  # a supervisor and its worker processes
                assert len(children(process.pid)) >= workers
        finally:
            process.terminate()
            # uvicorn shuts down, then re-raises the signal it caught.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)


class TestHelp:
    def test_the_command_line_loads_neither_the_service_nor_the_face_model(self) -> None:
        """`border --help` answers at once: FastAPI, dlib, OpenCV and FAISS load only in the
        commands that use them (timed in no test; this holds what makes it fast)."""
        heavy = ("faiss", "dlib", "face_recognition", "cv2", "fastapi", "numpy")
        probe = f"import sys, border.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
        )
        assert done.stdout.strip() == ""

    def test_help_lists_every_command_group(self) -> None:
        result = CliRunner().invoke(app, ["--help"])
        assert result.exit_code == 0
        for group in ("serve", "demo", "clients", "keys", "audit", "db", "index", "alerts"):
            assert group in result.stdout


class TestConfigurationFaults:
    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("BORDER_POOL_MIN_SIZE", "many"),
            ("BORDER_TIMEZONE", "Mars/Olympus"),
            ("BORDER_TRUSTED_PROXIES", "10.0.0.0/8, not-an-address"),
            ("BORDER_QUALITY__MIN_SHARPNESS", "-1"),
            ("BORDER_LOG_FORMAT", "xml"),
        ],
    )
    def test_a_bad_value_is_one_line_naming_the_variable_and_exit_2(
        self, variable: str, value: str
    ) -> None:
        result = CliRunner().invoke(app, ["clients", "list"], env={variable: value})
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert variable in lines[0]
        assert "Traceback" not in result.output

    def test_a_secret_in_a_bad_url_is_never_printed(self, tmp_path: Path) -> None:
        secret = "s3cr3t-Passw0rd"
        result = CliRunner().invoke(
            app,
            ["clients", "list"],
            env={
                "BORDER_DATA_DIR": str(tmp_path),
                "BORDER_DATABASE_URL": f"postgresql://border:{secret}@[bad-host:5432/border",
            },
        )
        assert result.exit_code == 2
        assert secret not in result.output
        assert len(result.stderr.strip().splitlines()) == 1

    def test_serve_refuses_a_port_in_use_before_the_slow_start(self, tmp_path: Path) -> None:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = CliRunner().invoke(
                app,
                ["serve", "--port", str(port)],
                env={"BORDER_DATA_DIR": str(tmp_path / "var")},
            )
        assert result.exit_code == 2
        assert f"port {port}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        # Refused before anything was made: no store, no key file.
        assert not (tmp_path / "var").exists()


class TestPolicyCheck:
    def test_the_shipped_policy_is_ok(self) -> None:
        result = CliRunner().invoke(app, ["policy", "check", "visa/default_policy.toml"])
        assert result.exit_code == 0
        assert "host state UTO" in result.stdout

    def test_a_bad_policy_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        bad = tmp_path / "policy.toml"
        bad.write_text('host_state = "UTO"\nrule_set = "x"\nmax_stay_days = 200\n')
        result = CliRunner().invoke(app, ["policy", "check", str(bad)])
        assert result.exit_code == 2
        assert str(bad) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


class TestDoctor:
    def test_a_sound_store_passes_every_check(self, env: dict[str, str]) -> None:
        assert border(env, "clients", "create", "--name", "desk", "--role", "officer")[0] == 0
        code, out = border(env, "doctor")
        assert code == 0, out
        checks = {line[:12].strip(): line[13:18].strip() for line in out.strip().splitlines()}
        assert checks == {
            "settings": "ok", "policy": "ok", "database": "ok", "migrations": "ok",
            "key ring": "ok", "galleries": "ok",
        }  # fmt: skip

    def test_a_bad_policy_fails_its_check_and_exits_1(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        code, out = border({**env, "BORDER_POLICY_FILE": str(tmp_path / "none.toml")}, "doctor")
        assert code == 1
        policy_line = next(line for line in out.splitlines() if line.startswith("policy"))
        assert "FAIL" in policy_line
        assert "none.toml" in policy_line


class TestOpenapi:
    def test_prints_the_schema_and_the_reference_in_step_with_docs(self) -> None:
        schema = CliRunner().invoke(app, ["openapi"])
        assert schema.exit_code == 0
        assert "/v1/crossings" in json.loads(schema.stdout)["paths"]
        reference = CliRunner().invoke(app, ["openapi", "--markdown"])
        assert reference.exit_code == 0
        assert reference.stdout == (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


class TestProgress:
    def test_off_a_terminal_a_long_command_prints_lines_with_rate_and_time_left(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        rows = tmp_path / "lost.csv"
        rows.write_text(
            "issuing_state,document_number,category\n"
            + "".join(f"UTO,L{i:08d},lost_stolen_document\n" for i in range(25_000))
        )
        result = CliRunner().invoke(app, ["alerts", "import", str(rows)], env=env)
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if line.startswith("checking")]
        # Throttled to a line every 2 s, and always the last one.
        assert lines
        assert lines[-1].startswith("checking and sealing rows: 25,000/25,000 rows (100%)")
        assert "rows/s" in lines[-1]
        assert "s left" in lines[-1]
