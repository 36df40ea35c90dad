"""The key ring at work on the store: master key checks, per-owner data keys, rotation,
and the sub-keys for the blind index, the audit chain and the row MACs.

The derived keys come by HKDF from a system root key that is itself a data key (owner: the
nil UUID) wrapped by the master key. Rotation re-wraps that root like any other data key,
so the derived keys, and with them every blind index, audit hash and row MAC, survive a
rotation, and a retired master key version can be dropped.
"""

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID

from core import crypto
from core import store as core_store
from core.db import Conn
from core.errors import ConfigurationError
from core.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_OWNER = UUID(int=0)
KEY_FILE_NAME = "master.key"


def _now() -> datetime:
    return datetime.now(UTC)


def load_master_keys(settings: Settings, registered: set[int]) -> crypto.MasterKeys:
    """The master key ring from ``BORDER_MASTER_KEY`` or the data directory's key file.

    The key file is created (mode 0600) only for a store that has no master key yet: a
    missing file in front of a store written with one is an error, not a fresh start.
    """
    if settings.master_key is not None:
        return crypto.MasterKeys(crypto.parse_key_ring(settings.master_key.get_secret_value()))
    path = settings.data_dir / KEY_FILE_NAME
    if path.exists():
        return crypto.read_key_file(path)
    if registered:
        raise ConfigurationError(
            f"the store was written with master key versions {sorted(registered)} but {path} "
            "is missing: restore it from its backup, or set BORDER_MASTER_KEY"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = crypto.MasterKeys({1: crypto.new_key()}, source=path)
    crypto.write_key_file(keys, path)
    log.info("created master key file %s", path)
    return keys


def rotation_target(settings: Settings, current: crypto.MasterKeys) -> crypto.MasterKeys:
    """The ring to rotate to. With a key file, a new version is generated and written
    (older versions stay, so nothing becomes unreadable if the rotation stops half-way).
    With ``BORDER_MASTER_KEY`` the operator adds the new version to the secret and the
    newest version given there is the target."""
    if current.source is None:
        assert settings.master_key is not None
        return crypto.MasterKeys(crypto.parse_key_ring(settings.master_key.get_secret_value()))
    target = crypto.read_key_file(current.source).with_new_version()
    crypto.write_key_file(target, current.source)
    log.info("master key version %d written to %s", target.current, current.source)
    return target


class Keyring:
    """Master keys, checked against the store, plus the derived sub-keys.

    One per process, created at start-up. When the ring lives in a key file that
    ``border keys rotate`` extends, a version it does not know is read from the file again.
    """

    def __init__(self, master: crypto.MasterKeys, root: bytes) -> None:
        self._master = master
        self._reload_lock = threading.Lock()
        self.blind_index_key = crypto.derive(root, "blind-index")
        self.audit_chain_key = crypto.derive(root, "audit-chain")
        self.snapshot_key = crypto.derive(root, "gallery-snapshot")
        # Document and name alerts belong to no person: their contents are sealed under a
        # key of their own, derived like the others, so a bulk list needs no key per row.
        self.alert_key = crypto.derive(root, "alert-contents")
        # Rows that grant access (API clients, later staff accounts) carry a MAC under this
        # key: someone who can write the database but does not hold the master key cannot
        # make or alter one that is believed.
        self.row_mac_key = crypto.derive(root, "row-mac")
        # A console session's CSRF token is a MAC of its session token under this key, so
        # it needs no storage and is worthless without the session cookie it belongs to.
        self.csrf_key = crypto.derive(root, "console-csrf")

    @classmethod
    def open(cls, conn: Conn, settings: Settings) -> "Keyring":
        """Load and check the master keys against the store; fail loudly on a wrong key."""
        with conn.transaction():
            # The first process on a new store writes the key file and registers the key
            # under this lock; the others wait, then read that file.
            core_store.lock_key_setup(conn)
            checks = core_store.master_key_checks(conn)
            master = load_master_keys(settings, set(checks))
            verify_master_keys(conn, master, checks)
            row = _stored_or_new(conn, master, SYSTEM_OWNER)
        try:
            root = master.unwrap(SYSTEM_OWNER, row.key_version, row.wrapped)
        except crypto.DecryptionError:
            raise ConfigurationError(
                "the system root key does not decrypt under the given master key"
            ) from None
        return cls(master, root)

    @property
    def master(self) -> crypto.MasterKeys:
        return self._master

    def unwrap(self, row: core_store.DataKeyRow) -> bytes:
        """A wrapped data key as stored (read here or joined into another query)."""
        master = self._master
        if row.key_version not in master.keys and master.source is not None:
            with self._reload_lock:
                master = self._master = crypto.read_key_file(master.source)
        return master.unwrap(row.owner_id, row.key_version, row.wrapped)

    def data_key(self, conn: Conn, owner_id: UUID, *, create: bool = False) -> bytes | None:
        """The owner's data key; None when it has none (never had, or was shredded) unless
        ``create``, which makes one."""
        if create:
            return self.unwrap(_stored_or_new(conn, self._master, owner_id))
        row = core_store.get_data_key(conn, owner_id)
        return None if row is None else self.unwrap(row)

    def shred(self, conn: Conn, owner_id: UUID) -> bool:
        """Delete the owner's data key: whatever was sealed under it is unreadable for good."""
        if owner_id == SYSTEM_OWNER:
            raise ValueError("the system root key is not shredded")
        return core_store.delete_data_key(conn, owner_id)

    def row_mac(self, table: str, row_id: UUID, fields: Mapping[str, crypto.MacField]) -> bytes:
        """The MAC vouching for these fields of one row (see ``crypto.row_mac``)."""
        return crypto.row_mac(self.row_mac_key, table, row_id, fields)

    def row_intact(
        self,
        table: str,
        row_id: UUID,
        fields: Mapping[str, crypto.MacField],
        stored: bytes | None,
    ) -> bool:
        """Whether ``stored`` vouches for the row as read; a row without a MAC never does."""
        if stored is None:
            return False
        return crypto.hmac_equal(bytes(stored), self.row_mac(table, row_id, fields))

    def blind_index(self, value: str) -> bytes:
        """A keyed, deterministic fingerprint for exact lookups without decrypting."""
        return crypto.mac(self.blind_index_key, value.encode())

    def rotate(
        self,
        conn: Conn,
        master: crypto.MasterKeys,
        progress: Callable[[int, int], None] | None = None,
        batch: int = 500,
    ) -> int:
        """Re-wrap every data key under ``master.current``; return how many were re-wrapped.

        Each batch is its own transaction, so a rotation interrupted half-way leaves every
        key readable (older versions stay in the ring) and can simply be run again.
        """
        with conn.transaction():
            verify_master_keys(conn, master, core_store.master_key_checks(conn))
            total = core_store.count_data_keys_below(conn, master.current)
        self._master = master
        done = 0
        while True:
            with conn.transaction():
                rows = core_store.lock_data_keys_below(conn, master.current, batch)
                for row in rows:
                    dek = master.unwrap(row.owner_id, row.key_version, row.wrapped)
                    version, wrapped = master.wrap(row.owner_id, dek)
                    core_store.rewrap_data_key(
                        conn, core_store.DataKeyRow(row.owner_id, version, wrapped)
                    )
            if not rows:
                return done
            done += len(rows)
            if progress is not None:
                progress(done, total)


def verify_master_keys(conn: Conn, master: crypto.MasterKeys, checks: dict[int, bytes]) -> None:
    """Compare each version with the check recorded when it was first used; register new
    versions. Fails when a key is wrong or a version still needed is missing."""
    for version in master.keys:
        recorded = checks.get(version)
        if recorded is None:
            core_store.register_master_key(conn, version, master.key_check(version), _now())
        elif not crypto.hmac_equal(recorded, master.key_check(version)):
            raise ConfigurationError(
                f"master key version {version} is not the key this store was written with; "
                "check BORDER_MASTER_KEY or the master.key file in BORDER_DATA_DIR"
            )
    if master.current < max(checks, default=0):
        raise ConfigurationError(
            f"the store has master key version {max(checks)} but the ring's newest is "
            f"{master.current}: supply the newest key"
        )
    missing = core_store.data_key_versions(conn) - set(master.keys)
    if missing:
        raise ConfigurationError(
            f"data keys are wrapped under master key versions {sorted(missing)}, which the ring "
            "lacks: add them back (run `border keys rotate` before retiring a version)"
        )


def _stored_or_new(conn: Conn, master: crypto.MasterKeys, owner_id: UUID) -> core_store.DataKeyRow:
    """The owner's wrapped data key, made and stored first if it has none. Two callers
    racing for the same owner both get the key that won the insert."""
    row = core_store.get_data_key(conn, owner_id)
    if row is not None:
        return row
    version, wrapped = master.wrap(owner_id, crypto.new_key())
    return core_store.insert_data_key(
        conn, core_store.DataKeyRow(owner_id, version, wrapped), _now()
    )
