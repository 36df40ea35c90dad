-- Staff accounts and their console sessions (DESIGN §11, §14), written only by
-- core/users_store.py.

-- A staff member. The TOTP secret is sealed under the user's own data key (owner: the
-- user's id), bound to this row. ``mac`` (see border.users) vouches for what grants access:
-- username, role, border point, password hash, TOTP secret, status, the admin-provisioned
-- mark and the pending activation link; a row edited behind the service's back signs nobody
-- in. ``totp_last_step`` (the last 30 s step whose code was accepted) is outside it: it
-- changes at every sign-in, and a code is never accepted for a step at or before it.
CREATE TABLE users (
    id                    uuid PRIMARY KEY,
    username              text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._-]{2,64}$'),
    role                  text NOT NULL
        CHECK (role IN ('officer', 'consular', 'auditor', 'admin')),
    border_point          text CHECK (border_point ~ '^[A-Za-z0-9_.-]{1,64}$'),
    password_hash         text,
    totp_sealed           bytea,
    totp_last_step        bigint,
    status                text NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    admin_provisioned     boolean NOT NULL,
    -- The SHA-256 of a one-time activation token; the token itself is only in the link.
    activation_sha256     bytea UNIQUE CHECK (length(activation_sha256) = 32),
    activation_expires_at timestamptz,
    created_at            timestamptz NOT NULL,
    activated_at          timestamptz,
    disabled_at           timestamptz,
    mac                   bytea NOT NULL CHECK (length(mac) = 32),
    CHECK ((activation_sha256 IS NULL) = (activation_expires_at IS NULL))
);

-- A signed-in browser: the cookie holds a random token, the store only its SHA-256.
-- Revoked in place (sign-out, a disabled account); deleted once past its absolute expiry.
CREATE TABLE user_sessions (
    id           uuid PRIMARY KEY,
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    user_id      uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    address      text NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX user_sessions_expiry ON user_sessions (expires_at);

-- Failed sign-ins, kept 15 minutes. ``key_sha256`` is SHA-256(lower(username) | address):
-- five failures of one pair lock that pair only, so nobody elsewhere can lock an officer
-- out. ``locked`` marks an attempt refused while its pair was locked (not counted towards
-- the lock); ``audited`` whether it wrote a chain event: failures on unknown usernames are
-- folded into at most one event per address per minute (DESIGN §14).
CREATE TABLE login_failures (
    key_sha256 bytea NOT NULL CHECK (length(key_sha256) = 32),
    address    text NOT NULL,
    user_id    uuid REFERENCES users (id),
    locked     boolean NOT NULL,
    audited    boolean NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key_sha256, at);
CREATE INDEX login_failures_anonymous ON login_failures (address, at) WHERE user_id IS NULL;
CREATE INDEX login_failures_at ON login_failures (at);

-- The purpose a user gave, once per person per session, for the audit events of the
-- person's pages. Persons belong to a later layer: no foreign key to them.
CREATE TABLE session_purposes (
    session_id uuid NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    person_id  uuid NOT NULL,
    purpose    text NOT NULL CHECK (length(purpose) BETWEEN 1 AND 200),
    at         timestamptz NOT NULL,
    PRIMARY KEY (session_id, person_id)
);

INSERT INTO service_privileges (table_name, privileges) VALUES
    -- Disabled in place, never deleted: their ids stay the actors of the audit log.
    ('users', '{SELECT,INSERT,UPDATE}'),
    -- Written once; cleared on success or when 15 minutes old.
    ('login_failures', '{SELECT,INSERT,DELETE}'),
    -- Given again to change it; removed with their session (the cascade runs as the owner).
    ('session_purposes', '{SELECT,INSERT,UPDATE}');
