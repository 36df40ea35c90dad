"""The chip's trust store (DESIGN §16): `border pki import FILE` for CSCA certificates (PEM
and DER), CRLs and master lists, `GET /v1/pki` for admins, every change audited."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from border.cli import app
from core.settings import Settings
from tests.conftest import runtime_of
from tests.visa import chip_factory as f

Headers = dict[str, dict[str, str]]


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "BORDER_DATA_DIR": str(settings.data_dir),
        "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
    }


def pki_import(env: dict[str, str], path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["pki", "import", str(path)], env=env)
    return result.exit_code, result.stdout + result.stderr


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def listing(client: TestClient, headers: Headers) -> dict[str, list[dict[str, object]]]:
    response = client.get("/v1/pki", headers=headers["admin"])
    assert response.status_code == 200, response.json()
    body: dict[str, list[dict[str, object]]] = response.json()
    return body


def audit_actions(client: TestClient) -> list[str]:
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT action FROM audit_events WHERE action LIKE 'pki.%' ORDER BY seq"
        ).fetchall()
    return [str(r[0]) for r in rows]


class TestImport:
    def test_pem_and_der_cscas_are_listed_with_their_icao_country(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        german, british = f.csca("DE", name="CSCA DE"), f.csca("GB", name="CSCA GB")
        code, out = pki_import(env, write(tmp_path, "de.pem", german.pem))
        assert code == 0, out
        assert "1 CSCA certificates" in out
        code, out = pki_import(env, write(tmp_path, "gb.der", british.der))
        assert code == 0, out
        anchors = listing(client, headers)["anchors"]
        assert [(a["country"], a["subject"]) for a in anchors] == [
            ("D", "CN=CSCA DE,C=DE"),
            ("GBR", "CN=CSCA GB,C=GB"),
        ]
        assert anchors[0]["sha256"] == german.cert.fingerprint(hashes.SHA256()).hex()
        assert anchors[0]["source"] == "certificate"
        assert {"not_before", "not_after", "imported_at"} <= set(anchors[0])
        assert audit_actions(client) == ["pki.import", "pki.import", "pki.read"]

    def test_a_second_import_of_the_same_file_adds_nothing(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        path = write(tmp_path, "de.pem", f.csca("DE").pem)
        assert pki_import(env, path)[0] == 0
        code, out = pki_import(env, path)
        assert code == 0
        assert "0 CSCA certificates and 0 CRLs added, 1 already held" in out
        assert len(listing(client, headers)["anchors"]) == 1

    def test_a_crl_signed_by_an_imported_csca_is_listed(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        ca = f.csca("DE")
        revoked = f.signer(ca)
        crl = f.crl(ca, [revoked.cert]).public_bytes(serialization.Encoding.PEM)
        assert pki_import(env, write(tmp_path, "both.pem", ca.pem + crl))[0] == 0
        crls = listing(client, headers)["crls"]
        assert len(crls) == 1
        assert crls[0]["issuer"] == "CN=CSCA,C=DE"
        assert crls[0]["revoked"] == 1

    def test_a_crl_of_no_imported_csca_is_refused(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        ca = f.csca("DE")
        der = f.crl(ca, []).public_bytes(serialization.Encoding.DER)
        code, out = pki_import(env, write(tmp_path, "orphan.crl", der))
        assert code == 2
        assert "signed by no imported CSCA" in out
        assert listing(client, headers)["crls"] == []

    def test_a_master_list_is_verified_and_its_cscas_imported(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        ca = f.csca("DE", name="CSCA DE")
        listed = [ca.cert, f.csca("FR", name="CSCA FR").cert, f.csca("JP", name="CSCA JP").cert]
        data = f.master_list(f.signer(ca, name="Master List Signer"), listed)
        code, out = pki_import(env, write(tmp_path, "list.ml", data))
        assert code == 0, out
        assert "master_list: 3 CSCA certificates" in out
        anchors = listing(client, headers)["anchors"]
        assert {a["country"] for a in anchors} == {"D", "FRA", "JPN"}
        assert {a["source"] for a in anchors} == {"master_list"}

    def test_a_master_list_that_does_not_verify_imports_nothing(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        stranger = f.csca("FR", name="Stranger")
        data = f.master_list(f.signer(stranger), [f.csca("DE").cert])
        code, out = pki_import(env, write(tmp_path, "list.ml", data))
        assert code == 2
        assert "does not verify" in out
        assert "nothing was imported" in out
        assert listing(client, headers)["anchors"] == []

    @pytest.mark.parametrize(
        "data",
        [b"", b"garbage" * 10, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    )
    def test_a_file_that_is_no_trust_file_is_refused_without_echo(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path, data: bytes
    ) -> None:
        code, out = pki_import(env, write(tmp_path, "junk", data))
        assert code == 2
        assert "garbage" not in out
        assert "AAAA" not in out
        assert listing(client, headers)["anchors"] == []

    def test_a_document_signer_is_no_anchor(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        signer = f.signer(f.csca("DE"))
        code, out = pki_import(env, write(tmp_path, "ds.pem", signer.pem))
        assert code == 2
        assert "no CSCA" in out


class TestRoute:
    @pytest.mark.parametrize("role", ["officer", "kiosk", "consular", "auditor", "dpo"])
    def test_only_admins_read_the_trust_store(
        self, client: TestClient, headers: Headers, role: str
    ) -> None:
        assert client.get("/v1/pki", headers=headers[role]).status_code == 403

    def test_an_empty_store_lists_nothing(self, client: TestClient, headers: Headers) -> None:
        assert listing(client, headers) == {"anchors": [], "crls": []}


class TestPolicyCheck:
    def test_border_policy_check_accepts_chip_required(self, tmp_path: Path) -> None:
        text = Path("visa/default_policy.toml").read_text()
        text = text.replace("chip_required = []", 'chip_required = ["D", "GBR"]')
        path = write(tmp_path, "policy.toml", text.encode())
        result = CliRunner().invoke(app, ["policy", "check", str(path)])
        assert result.exit_code == 0, result.stderr
        assert "chip required of 2 nationalities" in result.stdout

    def test_border_policy_check_names_a_bad_chip_required(self, tmp_path: Path) -> None:
        text = Path("visa/default_policy.toml").read_text()
        path = write(
            tmp_path,
            "policy.toml",
            text.replace("chip_required = []", 'chip_required = ["de"]').encode(),
        )
        result = CliRunner().invoke(app, ["policy", "check", str(path)])
        assert result.exit_code == 2
        assert "chip_required" in result.stderr
