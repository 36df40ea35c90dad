"""DESIGN §14: the failed-authentication throttle never refuses a valid key, and
X-Forwarded-For is believed only from BORDER_TRUSTED_PROXIES."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from starlette.requests import Request
from typer.testing import CliRunner

from border.app import create_app
from border.cli import app as cli
from core import auth
from core.settings import Settings
from enrollment.templates import FaceModel
from tests.conftest import new_key, runtime_of

PROXY = "10.1.2.3"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def bad_key(i: int) -> dict[str, str]:
    """A different wrong key each time, so only the address is counted, not the key."""
    return bearer(f"{auth.KEY_PREFIX}guess-{i}")


@contextmanager
def served(settings: Settings, face_model: FaceModel, peer: str) -> Iterator[TestClient]:
    app = create_app(settings, face_model)
    with TestClient(app, raise_server_exceptions=False, client=(peer, 50000)) as test_client:
        yield test_client


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": headers,
            "client": (peer, 4711),
        }
    )


def address(trusted: str, peer: str, *forwarded: str) -> str:
    return auth.client_address(request(peer, *forwarded), Settings(trusted_proxies=trusted))


class TestClientAddress:
    def test_nobody_is_trusted_by_default_not_even_loopback(self) -> None:
        assert address("", "127.0.0.1", "198.51.100.7") == "127.0.0.1"

    def test_an_untrusted_peer_is_the_caller_whatever_it_forwards(self) -> None:
        assert address("10.0.0.0/8", "203.0.113.9", "198.51.100.7") == "203.0.113.9"

    def test_a_trusted_proxy_names_the_caller(self) -> None:
        assert address("10.0.0.0/8", PROXY, "198.51.100.7") == "198.51.100.7"

    def test_what_the_caller_forwards_itself_is_ignored(self) -> None:
        # The caller sent "X-Forwarded-For: 6.6.6.6"; the proxy appended the real address.
        assert address("10.0.0.0/8", PROXY, "6.6.6.6, 198.51.100.7") == "198.51.100.7"
        assert address("10.0.0.0/8", PROXY, "6.6.6.6", "198.51.100.7") == "198.51.100.7"

    def test_a_chain_of_trusted_proxies_is_walked_from_the_right(self) -> None:
        trusted = "10.0.0.0/8, 192.0.2.1"
        assert address(trusted, PROXY, "6.6.6.6, 198.51.100.7, 192.0.2.1") == "198.51.100.7"

    def test_a_trusted_proxy_without_the_header_is_the_caller(self) -> None:
        assert address("10.0.0.0/8", PROXY) == PROXY

    def test_only_trusted_hops_gives_the_left_most(self) -> None:
        assert address("10.0.0.0/8", PROXY, "10.9.9.9") == "10.9.9.9"

    def test_garbage_is_answered_for_by_the_hop_that_passed_it(self) -> None:
        assert address("10.0.0.0/8", PROXY, "198.51.100.7, not-an-address") == PROXY
        assert address("10.0.0.0/8", PROXY, "") == PROXY

    def test_ports_and_ipv6(self) -> None:
        assert address("10.0.0.0/8", PROXY, "198.51.100.7:5555") == "198.51.100.7"
        assert address("::1", "::1", "[2001:db8::5]:443") == "2001:db8::5"
        assert address("::1/128", "::1", "2001:db8::5") == "2001:db8::5"

    def test_a_bare_address_is_a_single_host(self) -> None:
        assert address("10.1.2.3", PROXY, "198.51.100.7") == "198.51.100.7"
        assert address("10.1.2.4", PROXY, "198.51.100.7") == PROXY


class TestThrottleNeverRefusesAValidKey:
    def test_ten_bad_keys_from_an_address_then_a_valid_key_from_it(
        self, client: TestClient
    ) -> None:
        rt = runtime_of(client)
        admin = new_key(rt, "admin")
        for i in range(rt.settings.auth_max_failures):
            assert client.get("/v1/clients", headers=bad_key(i)).status_code == 401
        throttled = client.get("/v1/clients", headers=bad_key(99))
        assert throttled.status_code == 429
        assert throttled.json()["error"] == "rate_limited"
        for _ in range(3):
            assert client.get("/v1/clients", headers=bearer(admin)).status_code == 200
        # Still held back for anything but a valid key: no key, a malformed header, a guess.
        assert client.get("/v1/clients").status_code == 429
        assert client.get("/v1/clients", headers={"Authorization": "Basic x"}).status_code == 429
        assert client.get("/v1/clients", headers=bad_key(100)).status_code == 429

    def test_a_revoked_key_is_a_failure_like_any_other(self, client: TestClient) -> None:
        rt = runtime_of(client)
        admin = new_key(rt, "admin")
        victim = client.post(
            "/v1/clients", headers=bearer(admin), json={"name": "old", "role": "auditor"}
        ).json()
        assert client.delete(f"/v1/clients/{victim['client_id']}", headers=bearer(admin)).is_success
        for _ in range(rt.settings.auth_max_failures):
            assert client.get("/v1/clients", headers=bearer(victim["api_key"])).status_code == 401
        assert client.get("/v1/clients", headers=bearer(victim["api_key"])).status_code == 429
        assert client.get("/v1/clients", headers=bearer(admin)).status_code == 200


class TestForwardedFor:
    def test_from_an_untrusted_peer_it_is_ignored(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        with served(settings, face_model, "127.0.0.1") as client:
            limit = settings.auth_max_failures
            for i in range(limit):
                spoofed = {**bad_key(i), "X-Forwarded-For": f"198.51.100.{i}"}
                assert client.get("/v1/clients", headers=spoofed).status_code == 401
            fresh = {**bad_key(limit), "X-Forwarded-For": "198.51.100.200"}
            assert client.get("/v1/clients", headers=fresh).status_code == 429

    def test_from_a_trusted_proxy_it_names_the_caller(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        behind_proxy = Settings(**{**settings.model_dump(), "trusted_proxies": "10.0.0.0/8"})
        with served(behind_proxy, face_model, PROXY) as client:
            admin = new_key(runtime_of(client), "admin")
            caller = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
            for i in range(settings.auth_max_failures):
                assert (
                    client.get("/v1/clients", headers={**bad_key(i), **caller}).status_code == 401
                )
            assert client.get("/v1/clients", headers={**bad_key(50), **caller}).status_code == 429
            # Another caller behind the same proxy is not held back by the first one's failures,
            # whatever the first one claims in its own header.
            other = {"X-Forwarded-For": "198.51.100.8"}
            assert client.get("/v1/clients", headers={**bad_key(51), **other}).status_code == 401
            spoof = {"X-Forwarded-For": "198.51.100.7, 198.51.100.9"}
            assert client.get("/v1/clients", headers={**bad_key(52), **spoof}).status_code == 401
            assert client.get("/v1/clients", headers={**bearer(admin), **caller}).status_code == 200

    def test_callers_without_a_key_do_not_share_one_bucket(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        """A missing header is no key: callers who forgot it, each from their own address,
        keep getting the 401 that says to send one, never a 429 earned by the others."""
        behind_proxy = Settings(**{**settings.model_dump(), "trusted_proxies": "10.0.0.0/8"})
        with served(behind_proxy, face_model, PROXY) as client:
            for i in range(3 * settings.auth_max_failures):
                caller = {"X-Forwarded-For": f"198.51.100.{i}"}
                response = client.get("/v1/clients", headers=caller)
                assert (response.status_code, response.json()["error"]) == (401, "unauthorized")


def get(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def started(url: str) -> bool:
    try:
        return get(url, {}) == 200
    except OSError:
        return False


class TestServe:
    """uvicorn itself must not believe X-Forwarded-For from loopback (its default): the
    service decides, from BORDER_TRUSTED_PROXIES."""

    def test_a_loopback_caller_cannot_choose_its_address(
        self, settings: Settings, database_url: str
    ) -> None:
        env = {"BORDER_DATA_DIR": str(settings.data_dir), "BORDER_DATABASE_URL": database_url}
        created = CliRunner().invoke(
            cli, ["clients", "create", "--name", "ops", "--role", "admin"], env=env
        )
        assert created.exit_code == 0, created.stderr
        admin = created.stdout.strip().splitlines()[-1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "border", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while not started(f"{base}/health"):
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
            limit = settings.auth_max_failures
            for i in range(limit):
                spoofed = {**bad_key(i), "X-Forwarded-For": f"198.51.100.{i}"}
                assert get(f"{base}/v1/clients", spoofed) == 401
            fresh = {**bad_key(limit), "X-Forwarded-For": "198.51.100.200"}
            assert get(f"{base}/v1/clients", fresh) == 429
            assert get(f"{base}/v1/clients", bearer(admin)) == 200
        finally:
            process.terminate()
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
