"""The deployment files, docker-compose.yml and the Dockerfile, checked by reading them: no
Docker engine is needed."""

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

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
    parts, references = _url_parts(value)
    return parts.hostname, parts.password, references


def _url_user(value: str) -> str | None:
    return _url_parts(value)[0].username


def _url_parts(value: str) -> tuple[SplitResult, dict[str, str]]:
    references: dict[str, str] = {}

    def token(match: re.Match[str]) -> str:
        name = f"ref{len(references)}"
        references[name] = match[0]
        return name

    return urlsplit(REFERENCE.sub(token, value.replace("$$", "%24"))), references


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


# Both probes ask for readiness (DESIGN §15): /health/live would pass with the store down.
READY_URL = "http://127.0.0.1:8000/health/ready"


def _urls(command: str) -> list[str]:
    return re.findall(r"https?://[^'\"\s]+", command)


def _probe_timeout(command: str) -> float:
    """The ``timeout=`` a urllib probe gives urlopen."""
    match = re.search(r"timeout=(\d+(?:\.\d+)?)", command)
    assert match is not None, "the probe sets no timeout on urlopen"
    return float(match[1])


def _seconds(duration: str) -> float:
    """A compose or Dockerfile duration such as ``5s``, ``1m30s`` or ``500ms``."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


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


# Services that run until stopped; `migrate` runs once and exits.
LONG_RUNNING = ["postgres", "api", "proxy"]


def _config(compose: dict[str, Any], service: dict[str, Any], target_prefix: str) -> str:
    """The inline content of the config a service mounts under ``target_prefix``."""
    for mount in service.get("configs") or []:
        if isinstance(mount, dict) and str(mount.get("target", "")).startswith(target_prefix):
            content = compose["configs"][mount["source"]]["content"]
            assert isinstance(content, str)
            return content
    raise AssertionError(f"no config is mounted under {target_prefix}")


class TestCompose:
    def test_postgres_migrate_api_and_proxy_services_are_defined(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        assert {"postgres", "migrate", "api", "proxy"} <= set(services)
        assert str(services["postgres"]["image"]).startswith("postgres:16")
        assert services["api"]["build"] in (".", {"context": "."})
        assert services["migrate"]["build"] in (".", {"context": "."})

    @pytest.mark.parametrize("name", LONG_RUNNING)
    def test_every_service_has_a_healthcheck(
        self, services: dict[str, dict[str, Any]], name: str
    ) -> None:
        assert _healthcheck_command(services[name])

    def test_postgres_healthcheck_uses_pg_isready(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        assert "pg_isready" in _healthcheck_command(services["postgres"])

    def test_api_healthcheck_probes_readiness_with_urllib(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        command = _healthcheck_command(services["api"])
        assert "urllib" in command
        assert _urls(command) == [READY_URL]

    def test_api_probe_gives_up_before_compose_does(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        """urlopen's own timeout is shorter than the healthcheck's, so a slow answer fails
        the probe cleanly instead of the probe being killed."""
        command = _healthcheck_command(services["api"])
        healthcheck = services["api"]["healthcheck"]
        assert _probe_timeout(command) < _seconds(str(healthcheck["timeout"]))

    def test_api_waits_for_postgres_to_be_healthy(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        depends_on = services["api"].get("depends_on")
        assert isinstance(depends_on, dict), "depends_on must be a mapping to carry a condition"
        assert depends_on["postgres"]["condition"] == "service_healthy"

    def test_only_the_proxy_publishes_a_port_and_it_is_443(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        published: dict[str, list[Any]] = {
            name: s["ports"] for name, s in services.items() if s.get("ports")
        }
        assert list(published) == ["proxy"]
        assert [str(port).rpartition(":")[2] for port in published["proxy"]] == ["443"]
        assert "8000" in [str(port) for port in services["api"].get("expose", [])]

    def test_the_proxy_terminates_tls_and_forwards_to_the_api(
        self, compose: dict[str, Any], services: dict[str, dict[str, Any]]
    ) -> None:
        proxy = services["proxy"]
        caddyfile = _config(compose, proxy, "/etc/caddy/")
        assert "reverse_proxy api:8000" in caddyfile
        assert "tls /run/secrets/tls_certificate /run/secrets/tls_key" in caddyfile
        assert "protocols tls1.2 tls1.3" in caddyfile
        assert set(proxy["secrets"]) == {"tls_certificate", "tls_key"}
        for secret in proxy["secrets"]:
            assert _is_required_reference(compose["secrets"][secret]["file"])

    def test_the_api_trusts_forwarded_addresses_from_the_proxy_alone(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        address = services["proxy"]["networks"]["default"]["ipv4_address"]
        assert _environment(services["api"])["BORDER_TRUSTED_PROXIES"] == address

    @pytest.mark.parametrize("name", ["api", "migrate"])
    def test_every_border_variable_is_a_settings_field(
        self, services: dict[str, dict[str, Any]], name: str
    ) -> None:
        names = [n for n in _environment(services[name]) if n.startswith("BORDER_")]
        assert names, f"{name} sets no BORDER_* variable"
        unknown = [
            n for n in names if n.removeprefix("BORDER_").lower() not in Settings.model_fields
        ]
        assert not unknown, f"not fields of core.settings.Settings: {unknown}"

    def test_api_reaches_postgres_by_service_name(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        url = _environment(services["api"])["BORDER_DATABASE_URL"]
        assert url is not None
        assert _split_url(url)[0] == "postgres"

    def test_api_connects_as_border_app_and_never_holds_the_owner_s_url(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        environment = _environment(services["api"])
        url = environment["BORDER_DATABASE_URL"]
        assert url is not None
        assert _url_user(url) == "border_app"
        assert "BORDER_OWNER_DATABASE_URL" not in environment

    def test_migrate_runs_once_as_the_owner_before_the_api(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        migrate = services["migrate"]
        assert migrate["command"] == ["border", "db", "migrate"]
        assert migrate.get("restart") == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        environment = _environment(migrate)
        url = environment["BORDER_OWNER_DATABASE_URL"]
        assert url is not None
        assert _split_url(url)[0] == "postgres"
        assert _url_user(url) == "border_owner"
        assert "BORDER_DATABASE_URL" not in environment
        depends_on = services["api"]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"

    def test_postgres_init_script_makes_the_owner_and_the_service_role(
        self, compose: dict[str, Any], services: dict[str, dict[str, Any]]
    ) -> None:
        postgres = services["postgres"]
        script = _config(compose, postgres, "/docker-entrypoint-initdb.d/")
        statements = " ".join(script.split())
        for role, password in (("border_owner", "owner_password"), ("border_app", "app_password")):
            assert (
                f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
                f" NOBYPASSRLS PASSWORD :'{password}'"
            ) in statements
        assert 'ALTER DATABASE :"db" OWNER TO border_owner' in statements
        # Passwords reach psql as variables from the container's environment, never as text.
        environment = _environment(postgres)
        for variable in ("DB_OWNER_PASSWORD", "DB_APP_PASSWORD"):
            assert f"$${variable}" in script
            value = environment[variable]
            assert value is not None
            assert _is_required_reference(value)
        # Every shell "$" is escaped as "$$": compose would otherwise substitute it.
        assert "$" not in script.replace("$$", "")

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

    @pytest.mark.parametrize("name", ["postgres", "migrate", "api", "api-2", "proxy"])
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


class TestScaleProfile:
    """Profile `scale` (DESIGN §13): Milvus standalone with etcd and MinIO, two replicas
    behind the TLS proxy."""

    MILVUS_PARTS = ("milvus", "milvus-etcd", "milvus-minio", "api-2")

    def test_milvus_its_etcd_and_minio_and_a_second_replica_are_in_the_profile(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        for name in self.MILVUS_PARTS:
            assert services[name].get("profiles") == ["scale"], name
        # Without the profile the single-node deployment is unchanged.
        for name in ("postgres", "migrate", "api", "proxy"):
            assert "profiles" not in services[name], name
        assert str(services["milvus"]["image"]).startswith("milvusdb/milvus:v2.5")
        assert services["milvus"]["command"] == ["milvus", "run", "standalone"]
        milvus_env = _environment(services["milvus"])
        assert milvus_env["ETCD_ENDPOINTS"] == "milvus-etcd:2379"
        assert milvus_env["MINIO_ADDRESS"] == "milvus-minio:9000"

    @pytest.mark.parametrize("name", ["milvus", "milvus-etcd", "milvus-minio", "api-2"])
    def test_every_part_has_a_healthcheck_and_waits_for_what_it_needs(
        self, services: dict[str, dict[str, Any]], name: str
    ) -> None:
        assert _healthcheck_command(services[name])
        needs = {
            "milvus": {"milvus-etcd", "milvus-minio"},
            "api-2": {"postgres", "migrate", "milvus"},
        }.get(name, set())
        depends_on = services[name].get("depends_on") or {}
        assert set(depends_on) == needs
        assert all(d["condition"].startswith("service_") for d in depends_on.values())

    def test_both_replicas_share_milvus_and_the_api_waits_for_it_only_in_the_profile(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        api, replica = _environment(services["api"]), _environment(services["api-2"])
        assert replica["BORDER_GALLERY_BACKEND"] == "milvus"
        assert api["BORDER_GALLERY_BACKEND"] == "${BORDER_GALLERY_BACKEND:-faiss}"
        assert api["BORDER_MILVUS_URI"] == replica["BORDER_MILVUS_URI"] == "http://milvus:19530"
        assert services["api"]["depends_on"]["milvus"] == {
            "condition": "service_healthy",
            "required": False,
        }
        # The same store, keys and proxy trust; a data volume each.
        for name in ("BORDER_DATABASE_URL", "BORDER_MASTER_KEY", "BORDER_TRUSTED_PROXIES"):
            assert api[name] == replica[name], name
        assert services["api-2"]["volumes"] != services["api"]["volumes"]
        assert services["api-2"]["build"] == services["api"]["build"]

    def test_the_proxy_balances_both_replicas_by_their_readiness(
        self, compose: dict[str, Any], services: dict[str, dict[str, Any]]
    ) -> None:
        caddyfile = _config(compose, services["proxy"], "/etc/caddy/")
        assert "reverse_proxy api:8000 api-2:8000" in caddyfile
        assert "health_uri /health/ready" in caddyfile

    def test_milvus_publishes_no_port_and_its_credentials_come_from_the_environment(
        self, compose: dict[str, Any], services: dict[str, dict[str, Any]]
    ) -> None:
        for name in self.MILVUS_PARTS:
            assert not services[name].get("ports"), name
        minio = _environment(services["milvus-minio"])
        assert minio["MINIO_ROOT_USER"] == "${MINIO_ACCESS_KEY:-}"
        assert minio["MINIO_ROOT_PASSWORD"] == "${MINIO_SECRET_KEY:-}"
        user_yaml = yaml.safe_load(_config(compose, services["milvus"], "/milvus/configs/"))
        assert user_yaml["minio"] == {
            "accessKeyID": "${MINIO_ACCESS_KEY:-}",
            "secretAccessKey": "${MINIO_SECRET_KEY:-}",
        }

    def test_every_border_variable_of_the_replica_is_a_settings_field(
        self, services: dict[str, dict[str, Any]]
    ) -> None:
        names = [n for n in _environment(services["api-2"]) if n.startswith("BORDER_")]
        assert all(n.removeprefix("BORDER_").lower() in Settings.model_fields for n in names)


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

    def test_healthcheck_probes_readiness_with_urllib(self) -> None:
        checks = [arguments for keyword, arguments in _final_stage() if keyword == "HEALTHCHECK"]
        assert checks, "the image has no HEALTHCHECK"
        options, _, command = checks[-1].partition("CMD ")
        argv = _argv(command.strip())
        assert argv[0].startswith("python")
        assert "urllib" in argv[-1]
        assert _urls(argv[-1]) == [READY_URL]
        timeout = re.search(r"--timeout=(\S+)", options)
        assert timeout is not None, "the HEALTHCHECK sets no --timeout"
        assert _probe_timeout(argv[-1]) < _seconds(timeout[1])

    def test_image_is_built_with_uv_without_a_lock_file(self) -> None:
        instructions = _dockerfile_instructions()
        bases = [arguments for keyword, arguments in instructions if keyword == "FROM"]
        assert all(base.startswith("python:3.11-slim") for base in bases)
        runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
        assert "pip install" in runs
        copies = [arguments for keyword, arguments in instructions if keyword in {"COPY", "ADD"}]
        assert not any("uv.lock" in arguments for arguments in copies)

    def test_every_install_goes_through_the_constraints(self) -> None:
        """DESIGN §15: the image's packages are constraints.txt's exact versions. The file
        is copied with pyproject.toml, before the sources (so the dependency layer survives
        source edits), and every uv install names it; nothing installs the dev group."""
        instructions = _dockerfile_instructions()
        copies = [arguments.split() for keyword, arguments in instructions if keyword == "COPY"]
        first = next(i for i, arguments in enumerate(copies) if "pyproject.toml" in arguments)
        assert "constraints.txt" in copies[first]
        assert copies[first + 1] == [".", "."], "the sources come after the dependency layer"
        runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
        installs = [
            shlex.split(command)
            for run in runs
            for command in run.split("&&")
            if re.search(r"\buv (pip install|sync)\b", command)
        ]
        assert len(installs) == 2, installs
        for argv in installs:
            assert argv[:3] == ["uv", "pip", "install"]
            assert argv[argv.index("-c") + 1] == "constraints.txt"
            assert not {"--group", "--all-groups", "--extra", "--editable", "-e"} & set(argv)
        assert installs[0][-2:] == ["-r", "pyproject.toml"]
        assert installs[1][-1] == "."
        ignored = (ROOT / ".dockerignore").read_text().split()
        assert not any(fnmatch.fnmatch("constraints.txt", pattern) for pattern in ignored)
