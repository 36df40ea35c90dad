-- Core tables, written only by core/store.py.

CREATE TABLE api_clients (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('kiosk', 'officer', 'consular', 'auditor', 'admin')),
    border_point text,
    key_sha256   bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

-- One row per master key version ever used: a MAC over a fixed label proves at start-up
-- that the key given for that version is the one the store was written with.
CREATE TABLE master_key_versions (
    version    integer PRIMARY KEY CHECK (version > 0),
    key_check  bytea NOT NULL,
    created_at timestamptz NOT NULL
);

-- Envelope encryption: one AES-256 data key per owner (a person, or the nil UUID for the
-- system root from which the blind-index and audit-chain keys are derived), wrapped by a
-- master key version. Deleting a row crypto-shreds everything sealed under that key.
CREATE TABLE data_keys (
    owner_id    uuid PRIMARY KEY,
    key_version integer NOT NULL REFERENCES master_key_versions (version),
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX data_keys_version ON data_keys (key_version);
