"""The deployment files, docker-compose.yml and the Dockerfile, checked by reading them: no
Docker engine is needed."""

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# Variables whose value is a secret, or may embed one (a database URL carries a password).
SECRET_MARKERS = ("PASSWORD", "KEY", "URL")

# Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message},
# ${NAME?message}, ${NAME:+other}, ${NAME+other}. "$$" is an escaped, literal dollar sign.
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?[^}]*\}")


def _references(value: str) -> list[re.Match[str]]:
    return list(REFERENCE.finditer(value.replace("$$", "")))


def _is_required_reference(value: str) -> bool:
    """The whole value is one ``${NAME:?message}`` (or ``${NAME?message}``) reference: it
    comes from the environment and compose refuses to start without it."""
    match = REFERENCE.fullmatch(value)
    return match is not None and match["op"] in {":?", "?"}


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment in either compose spelling (a mapping, or a list of
    ``NAME=value``); ``None`` means the value is passed through from the host."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = [str(item).partition("=") for item in raw]
        return {name: (value if sep else None) for name, sep, value in pairs}
    assert isinstance(raw, dict), f"environment must be a mapping or a list, not {raw!r}"
    return {str(name): (None if value is None else str(value)) for name, value in raw.items()}


def _split_url(value: str) -> tuple[str | None, str | None, dict[str, str]]:
    """(hostname, password, references) of a URL holding compose references. Each reference
    is replaced by a plain token first, so that its ``:?message`` cannot be read as a port or
    a password; ``references`` maps the tokens back."""
    references: dict[str, str] = {}

    def token(match: re.Match[str]) -> str:
        name = f"ref{len(references)}"
        references[name] = match[0]
        return name

    parts = urlsplit(REFERENCE.sub(token, value.replace("$$", "%24")))
    return parts.hostname, parts.password, references


def _healthcheck_command(service: dict[str, Any]) -> str:
    healthcheck = service.get("healthcheck")
    assert isinstance(healthcheck, dict), "no healthcheck"
    assert not healthcheck.get("disable", False), "healthcheck disabled"
    test = healthcheck.get("test")
    assert test, "healthcheck has no test"
    if isinstance(test, list):
        assert test[0] in {"CMD", "CMD-SHELL"}, f"healthcheck test {test!r} runs nothing"
        return " ".join(str(part) for part in test[1:])
    return str(test)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for every instruction, continuation lines joined and
    comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def _argv(arguments: str) -> list[str]:
    """The command of a CMD or HEALTHCHECK ... CMD, in exec (JSON) or shell form."""
    if arguments.startswith("["):
        argv = json.loads(arguments)
        assert isinstance(argv, list)
        return [str(part) for part in argv]
    return shlex.split(arguments)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
    return found


class TestCompose:
    def test_postgres_and_api_services_are_defined(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        assert {"postgres", "api"} <= set(services)
        assert str(services["postgres"]["image"]).startswith("postgres:16")
        assert services["api"]["build"] in (".", {"context": "."})

    @pytest.mark.parametrize("name", ["postgres", "api"])
    def test_every_service_has_a_healthcheck(
        self, services: dict[str, dict[str, Any]], name: str
    ) -> None:
        assert _healthcheck_command(services[name])

    def test_postgres_healthcheck_uses_pg_isready(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        assert "pg_isready" in _healthcheck_command(services["postgres"])

    def test_api_healthcheck_requests_health_with_urllib(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        command = _healthcheck_command(services["api"])
        assert "urllib" in command
        assert "http://127.0.0.1:8000/health" in command

    def test_api_waits_for_postgres_to_be_healthy(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        depends_on = services["api"].get("depends_on")
        assert isinstance(depends_on, dict), "depends_on must be a mapping to carry a condition"
        assert depends_on["postgres"]["condition"] == "service_healthy"

    def test_api_publishes_port_8000(self, services: dict[str, dict[str, Any]]) -> None:
        assert any(str(port).endswith("8000:8000") for port in services["api"]["ports"])

    def test_every_border_variable_is_a_settings_field(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        names = [name for name in _environment(services["api"]) if name.startswith("BORDER_")]
        assert names, "the api sets no BORDER_* variable"
        unknown = [
            name
            for name in names
            if name.removeprefix("BORDER_").lower() not in Settings.model_fields
        ]
        assert not unknown, f"not fields of core.settings.Settings: {unknown}"

    def test_api_reaches_postgres_by_service_name(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        url = _environment(services["api"])["BORDER_DATABASE_URL"]
        assert url is not None
        assert _split_url(url)[0] == "postgres"

    def test_master_key_is_required_from_the_environment(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        value = _environment(services["api"])["BORDER_MASTER_KEY"]
        assert value is not None
        assert _is_required_reference(value)

    def test_data_dir_is_a_named_volume(
        self, compose: dict[str, Any], services: dict[str, dict[str, Any]]
    ) -> None:
        data_dir = _environment(services["api"])["BORDER_DATA_DIR"]
        assert data_dir, "BORDER_DATA_DIR is not set"
        named = set(compose.get("volumes") or {})
        mounts = [str(volume).split(":") for volume in services["api"].get("volumes", [])]
        assert any(source in named and target == data_dir for source, target, *_ in mounts), (
            f"no named volume is mounted at {data_dir}"
        )

    @pytest.mark.parametrize("name", ["postgres", "api"])
    def test_no_secret_is_written_in_the_file(
        self, services: dict[str, dict[str, Any]], name: str
    ) -> None:
        for variable, value in _environment(services[name]).items():
            if value is None or not any(marker in variable.upper() for marker in SECRET_MARKERS):
                continue  # passed through from the host, or not a secret
            if "URL" in variable.upper():
                assert _references(value), f"{name}.{variable} is a literal URL"
                _, password, references = _split_url(value)
                assert password is None or (
                    password in references and _is_required_reference(references[password])
                ), f"{name}.{variable} embeds a literal or defaulted password"
            else:
                assert _is_required_reference(value), (
                    f"{name}.{variable} must be a required ${{...:?...}} reference, not {value!r}"
                )


class TestDockerfile:
    def test_dockerfile_exists(self) -> None:
        assert DOCKERFILE.is_file()

    def test_cmd_runs_border_serve_on_all_interfaces(self) -> None:
        commands = [arguments for keyword, arguments in _final_stage() if keyword == "CMD"]
        assert commands, "the image has no CMD"
        argv = _argv(commands[-1])
        assert argv[:2] == ["border", "serve"]
        assert "0.0.0.0" in argv

    def test_image_does_not_run_as_root(self) -> None:
        users = [arguments for keyword, arguments in _final_stage() if keyword == "USER"]
        assert users, "the image has no USER line and so runs as root"
        user = users[-1].partition(":")[0]
        assert user not in {"root", "0"}

    def test_healthcheck_requests_health_with_urllib(self) -> None:
        checks = [arguments for keyword, arguments in _final_stage() if keyword == "HEALTHCHECK"]
        assert checks, "the image has no HEALTHCHECK"
        _, _, command = checks[-1].partition("CMD ")
        argv = _argv(command.strip())
        assert argv[0].startswith("python")
        assert "urllib" in argv[-1]
        assert "http://127.0.0.1:8000/health" in argv[-1]

    def test_image_is_built_with_uv_without_a_lock_file(self) -> None:
        instructions = _dockerfile_instructions()
        bases = [arguments for keyword, arguments in instructions if keyword == "FROM"]
        assert all(base.startswith("python:3.11-slim") for base in bases)
        runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
        assert "pip install" in runs
        assert "uv sync --no-dev" in runs
        copies = [arguments for keyword, arguments in instructions if keyword in {"COPY", "ADD"}]
        assert not any("uv.lock" in arguments for arguments in copies)
