import base64
import stat
from pathlib import Path
from uuid import uuid4

import pytest

from core import crypto
from core.errors import ConfigurationError


class TestSeal:
    def test_round_trip_with_the_same_row(self) -> None:
        key, row = crypto.new_key(), uuid4()
        blob = crypto.seal(key, b"SMITH", crypto.aad("persons", "surname", row))
        assert b"SMITH" not in blob
        assert crypto.unseal(key, blob, crypto.aad("persons", "surname", row)) == b"SMITH"

    def test_ciphertext_moved_to_another_row_fails(self) -> None:
        key = crypto.new_key()
        blob = crypto.seal(key, b"SMITH", crypto.aad("persons", "surname", uuid4()))
        with pytest.raises(crypto.DecryptionError):
            crypto.unseal(key, blob, crypto.aad("persons", "surname", uuid4()))

    def test_ciphertext_moved_to_another_column_fails(self) -> None:
        key, row = crypto.new_key(), uuid4()
        blob = crypto.seal(key, b"SMITH", crypto.aad("persons", "surname", row))
        with pytest.raises(crypto.DecryptionError):
            crypto.unseal(key, blob, crypto.aad("persons", "given_names", row))

    def test_a_flipped_bit_fails(self) -> None:
        key, ad = crypto.new_key(), crypto.aad("t", "c", uuid4())
        blob = bytearray(crypto.seal(key, b"x" * 40, ad))
        blob[20] ^= 1
        with pytest.raises(crypto.DecryptionError):
            crypto.unseal(key, bytes(blob), ad)

    def test_each_seal_draws_a_fresh_nonce(self) -> None:
        key, ad = crypto.new_key(), crypto.aad("t", "c", uuid4())
        nonces = {crypto.seal(key, b"same", ad)[: crypto.NONCE_BYTES] for _ in range(200)}
        assert len(nonces) == 200

    def test_truncated_blob_fails_cleanly(self) -> None:
        with pytest.raises(crypto.DecryptionError):
            crypto.unseal(crypto.new_key(), b"short", b"")


class TestDerive:
    def test_sub_keys_differ_by_purpose_and_are_stable(self) -> None:
        root = crypto.new_key()
        assert crypto.derive(root, "blind-index") == crypto.derive(root, "blind-index")
        assert crypto.derive(root, "blind-index") != crypto.derive(root, "audit-chain")
        assert len(crypto.derive(root, "audit-chain")) == 32


class TestMasterKeys:
    def test_newest_version_wraps_and_every_version_unwraps(self) -> None:
        old = crypto.MasterKeys({1: crypto.new_key()})
        owner, dek = uuid4(), crypto.new_key()
        version, wrapped = old.wrap(owner, dek)
        new = old.with_new_version()
        assert (version, new.current) == (1, 2)
        assert new.unwrap(owner, 1, wrapped) == dek
        assert new.wrap(owner, dek)[0] == 2

    def test_wrapped_key_is_bound_to_its_owner(self) -> None:
        keys = crypto.MasterKeys({1: crypto.new_key()})
        _, wrapped = keys.wrap(uuid4(), crypto.new_key())
        with pytest.raises(crypto.DecryptionError):
            keys.unwrap(uuid4(), 1, wrapped)

    def test_unknown_version_says_what_to_restore(self) -> None:
        keys = crypto.MasterKeys({2: crypto.new_key()})
        with pytest.raises(ConfigurationError, match="version 1"):
            keys.unwrap(uuid4(), 1, b"\0" * 60)


class TestParseKeyRing:
    def test_bare_key_is_version_one(self) -> None:
        key = crypto.new_key()
        assert crypto.parse_key_ring(base64.b64encode(key).decode()) == {1: key}

    def test_versioned_entries(self) -> None:
        a, b = crypto.new_key(), crypto.new_key()
        text = f"1:{base64.b64encode(a).decode()}, 3:{base64.b64encode(b).decode()}"
        assert crypto.parse_key_ring(text) == {1: a, 3: b}

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "not base64!",
            base64.b64encode(b"short").decode(),
            "0:" + base64.b64encode(bytes(32)).decode(),
            "x:" + base64.b64encode(bytes(32)).decode(),
            "1:{k},1:{k}".format(k=base64.b64encode(bytes(32)).decode()),
        ],
    )
    def test_bad_rings_are_refused(self, text: str) -> None:
        with pytest.raises(ConfigurationError):
            crypto.parse_key_ring(text)

    def test_key_file_round_trip_is_owner_only(self, tmp_path: Path) -> None:
        keys = crypto.MasterKeys({1: crypto.new_key()}).with_new_version()
        path = tmp_path / "master.key"
        crypto.write_key_file(keys, path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert crypto.read_key_file(path).keys == keys.keys
