"""Envelope encryption primitives: AES-256-GCM sealing, master key rings, HKDF sub-keys.

Pure functions and values, no database: ``core.keys`` puts them to work on the store.
"""

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigurationError

KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_CHECK_LABEL = b"border master-key check v1"


class DecryptionError(Exception):
    """A ciphertext did not authenticate: wrong key, wrong row, or altered bytes."""


def aad(table: str, column: str, row_id: UUID) -> bytes:
    """Associated data that binds a ciphertext to one table, column and row."""
    return f"{table}|{column}|".encode() + row_id.bytes


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt with a fresh random 96-bit nonce, stored in front of the ciphertext."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def unseal(key: bytes, blob: bytes, associated: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag:
        raise DecryptionError("ciphertext does not authenticate") from None


def derive(root: bytes, purpose: str) -> bytes:
    """A 256-bit sub-key for one use (``blind-index``, ``audit-chain``), by HKDF-SHA256."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"border/{purpose}".encode()
    ).derive(root)


def mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def hmac_equal(a: bytes, b: bytes) -> bool:
    """Compare MACs in constant time."""
    return hmac.compare_digest(a, b)


MacField = str | bytes | bool | int | datetime | UUID | None
_ROW_MAC_LABEL = b"border row mac v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _mac_part(value: MacField) -> bytes:
    # A type tag, so that None, "" and b"" (or "1" and 1) never encode alike.
    if value is None:
        return b"N"
    if isinstance(value, bool):  # before int: a bool is an int
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"I" + str(value).encode()
    if isinstance(value, str):
        return b"S" + value.encode()
    if isinstance(value, bytes):
        return b"B" + value
    if isinstance(value, UUID):
        return b"U" + value.bytes
    if value.tzinfo is None:
        raise ValueError("a time in a row MAC must carry its time zone")
    # Whole microseconds since the epoch: what PostgreSQL's timestamptz keeps, whatever
    # zone the session reads it back in.
    return b"D" + str((value - _EPOCH) // timedelta(microseconds=1)).encode()


def row_mac(key: bytes, table: str, row_id: UUID, fields: Mapping[str, MacField]) -> bytes:
    """A MAC that vouches for a row's security-relevant fields, bound to its table and id.

    Every part is length-prefixed and typed and the fields go in name order, so two
    different rows never encode alike and a MAC copied to another row fails. Any table
    whose rows grant access (API clients, staff accounts) passes the fields it guards.
    """
    parts = [_ROW_MAC_LABEL, table.encode(), row_id.bytes]
    for name in sorted(fields):
        parts += [name.encode(), _mac_part(fields[name])]
    return mac(key, b"".join(len(p).to_bytes(4, "big") + p for p in parts))


def _wrap_aad(owner_id: UUID, version: int) -> bytes:
    return aad("data_keys", "wrapped", owner_id) + version.to_bytes(4, "big")


@dataclass(frozen=True)
class MasterKeys:
    """Versioned master keys: the newest wraps, every version unwraps (MultiFernet-style).

    ``source`` is the key file when the ring lives in the data directory, None when it came
    from ``BORDER_MASTER_KEY``.
    """

    keys: dict[int, bytes]
    source: Path | None = None

    @property
    def current(self) -> int:
        return max(self.keys)

    def key_check(self, version: int) -> bytes:
        return mac(self.keys[version], _KEY_CHECK_LABEL)

    def wrap(self, owner_id: UUID, data_key: bytes) -> tuple[int, bytes]:
        version = self.current
        return version, seal(self.keys[version], data_key, _wrap_aad(owner_id, version))

    def unwrap(self, owner_id: UUID, version: int, wrapped: bytes) -> bytes:
        if version not in self.keys:
            raise ConfigurationError(
                f"master key version {version} is not in the key ring; restore it "
                "(BORDER_MASTER_KEY or the master.key file) before reading this record"
            )
        return unseal(self.keys[version], wrapped, _wrap_aad(owner_id, version))

    def with_new_version(self) -> "MasterKeys":
        return MasterKeys({**self.keys, self.current + 1: new_key()}, self.source)

    def serialise(self) -> str:
        return "".join(
            f"{v}:{base64.b64encode(k).decode()}\n" for v, k in sorted(self.keys.items())
        )


def parse_key_ring(text: str) -> dict[int, bytes]:
    """Parse ``VERSION:BASE64`` entries separated by commas or new lines; a single bare
    base64 key is version 1."""
    entries = [e.strip() for e in text.replace("\n", ",").split(",") if e.strip()]
    if not entries:
        raise ConfigurationError("the master key ring is empty")
    keys: dict[int, bytes] = {}
    for entry in entries:
        version_text, sep, encoded = entry.partition(":")
        if not sep:
            if len(entries) != 1:
                raise ConfigurationError("master key entries must be written VERSION:BASE64KEY")
            version_text, encoded = "1", entry
        try:
            version = int(version_text)
            key = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise ConfigurationError(
                "a master key entry is not VERSION:BASE64KEY with a base64 key"
            ) from None
        if version < 1 or len(key) != KEY_BYTES or version in keys:
            raise ConfigurationError(
                f"master key version {version_text}: versions are unique positive integers "
                f"and keys are {KEY_BYTES} random bytes in base64"
            )
        keys[version] = key
    return keys


def read_key_file(path: Path) -> MasterKeys:
    return MasterKeys(parse_key_ring(path.read_text(encoding="ascii")), source=path)


def write_key_file(keys: MasterKeys, path: Path) -> None:
    """Write the ring atomically, readable by the owner alone (mode 0600)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # this process's own
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(keys.serialise())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
