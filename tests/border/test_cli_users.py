"""`border users …` (DESIGN §11): create with a link or, unattended, with a TOTP URI; list,
disable, reset-totp; refusals in one line with exit 2."""

from urllib.parse import parse_qs, urlsplit

import psycopg
import pyotp
import pytest
from typer.testing import CliRunner, Result

from border import users
from border.cli import app
from core.runtime import Runtime
from core.settings import Settings

PASSWORD = "a long enough password"


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "BORDER_DATA_DIR": str(settings.data_dir),
        "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
        "BORDER_PUBLIC_URL": "https://border.example",
    }


def border(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def last_line(result: Result) -> str:
    return result.stdout.strip().splitlines()[-1]


class TestCreate:
    def test_prints_the_activation_link_alone_on_the_last_line(
        self, env: dict[str, str], rt: Runtime
    ) -> None:
        result = border(env, "users", "create", "--username", "anna", "--role", "consular",
                        "--border-point", "UTO-AIR-1")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        link = last_line(result)
        assert link.startswith("https://border.example/console/activate/")
        shown = users.activation(rt, link.rsplit("/", 1)[1])
        assert (shown.user.username, shown.user.role) == ("anna", "consular")
        assert shown.user.border_point == "UTO-AIR-1"
        assert shown.needs_password is True

    def test_password_stdin_activates_and_prints_the_totp_uri(
        self, env: dict[str, str], rt: Runtime
    ) -> None:
        result = border(env, "users", "create", "--username", "demo.officer", "--role",
                        "officer", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        uri = last_line(result)
        assert uri.startswith("otpauth://totp/Border:demo.officer?secret=")
        assert "admin-provisioned" in result.stdout
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        session = users.sign_in(
            rt,
            username="demo.officer",
            password=PASSWORD,
            code=pyotp.TOTP(secret).now(),
            address="127.0.0.1",
        )
        assert session.user.admin_provisioned is True

    @pytest.mark.parametrize(
        ("args", "stdin", "field"),
        [
            (("--username", "x", "--role", "officer"), None, "username"),
            (("--username", "kim", "--role", "kiosk"), None, "role"),
            (("--username", "kim", "--role", "officer", "--password-stdin"), "short\n", "password"),
            (("--username", "kim", "--role", "officer", "--password-stdin"), "", "password"),
        ],
    )
    def test_a_refusal_is_one_line_exit_2_and_writes_nothing(
        self,
        env: dict[str, str],
        database_url: str,
        args: tuple[str, ...],
        stdin: str | None,
        field: str,
    ) -> None:
        result = border(env, "users", "create", *args, stdin=stdin)
        assert result.exit_code == 2
        # (A first start on a new data directory logs its new master key before.)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [result.stderr.strip().splitlines()[-1]]
        assert errors[0].startswith("error: invalid_request")
        assert field in errors[0]
        assert PASSWORD not in result.stderr
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)

    def test_a_taken_username_is_refused(self, env: dict[str, str]) -> None:
        assert (
            border(env, "users", "create", "--username", "anna", "--role", "officer").exit_code == 0
        )
        result = border(env, "users", "create", "--username", "anna", "--role", "auditor")
        assert result.exit_code == 2
        assert "conflict" in result.stderr


class TestListDisableReset:
    def test_list_shows_status_and_the_admin_provisioned_mark(self, env: dict[str, str]) -> None:
        border(env, "users", "create", "--username", "anna", "--role", "consular")
        border(env, "users", "create", "--username", "bob", "--role", "auditor",
               "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
        result = border(env, "users", "list")
        assert result.exit_code == 0
        header, *rows = result.stdout.strip().splitlines()
        assert header.split()[:4] == ["username", "role", "border", "point"]
        assert "admin-provisioned" in header
        assert [r.split()[:5] for r in rows] == [
            ["anna", "consular", "-", "pending", "no"],
            ["bob", "auditor", "-", "active", "yes"],
        ]
        assert PASSWORD not in result.stdout

    def test_disable_ends_the_account(self, env: dict[str, str], rt: Runtime) -> None:
        border(env, "users", "create", "--username", "anna", "--role", "consular")
        result = border(env, "users", "disable", "anna")
        assert result.exit_code == 0
        assert "disabled" in result.stdout
        found = users.find(rt, "anna")
        assert found is not None
        assert found.status == "disabled"
        missing = border(env, "users", "disable", "nobody")
        assert missing.exit_code == 2
        assert missing.stderr.strip() == "error: not_found: no user named nobody"

    def test_reset_totp_prints_a_new_link_that_asks_only_for_a_code(
        self, env: dict[str, str], rt: Runtime
    ) -> None:
        border(env, "users", "create", "--username", "bob", "--role", "officer",
               "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
        result = border(env, "users", "reset-totp", "bob")
        assert result.exit_code == 0, result.stderr
        link = last_line(result)
        assert link.startswith("https://border.example/console/activate/")
        shown = users.activation(rt, link.rsplit("/", 1)[1])
        assert shown.needs_password is False
        assert border(env, "users", "reset-totp", "nobody").exit_code == 2


def test_help_lists_the_users_group() -> None:
    result = CliRunner().invoke(app, ["users", "--help"])
    assert result.exit_code == 0
    for command in ("create", "list", "disable", "reset-totp"):
        assert command in result.stdout
