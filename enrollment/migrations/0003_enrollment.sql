-- Persons, their documents and face captures, and the watchlist; written only by
-- enrollment/store.py. Every personal field is sealed with the person's data key
-- (core/keys.py); erasure shreds that key and deletes documents and captures.

CREATE TABLE persons (
    id              uuid PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('active', 'erased')),
    surname         bytea,
    given_names     bytea,
    nationality     bytea,
    birth_date      bytea,
    sex             bytea,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    erased_at       timestamptz,
    CHECK ((status = 'erased') = (surname IS NULL))
);

CREATE TABLE documents (
    id             uuid PRIMARY KEY,
    person_id      uuid NOT NULL REFERENCES persons (id),
    document_code  text NOT NULL,
    issuing_state  text NOT NULL,
    expiry_date    date,
    number         bytea NOT NULL,
    -- HMAC(blind-index key, issuing_state|number): finds the holder without decrypting.
    blind_index    bytea NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL
);
CREATE INDEX documents_person ON documents (person_id);

-- Capture numbers are the gallery ids. They are drawn while the enrollment lock is held
-- and the lock is kept to commit, so captures commit in seq order and a gallery that has
-- seen seq N has seen every capture before it.
CREATE SEQUENCE captures_seq;
CREATE TABLE captures (
    id          uuid PRIMARY KEY,
    seq         bigint NOT NULL UNIQUE,
    person_id   uuid NOT NULL REFERENCES persons (id),
    image       bytea NOT NULL,
    template    bytea NOT NULL,
    quality     jsonb NOT NULL,
    station     text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX captures_person ON captures (person_id);

CREATE TABLE watchlist (
    id              uuid PRIMARY KEY,
    person_id       uuid NOT NULL REFERENCES persons (id),
    reason          bytea NOT NULL,
    added_by        text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL,
    deactivated_at  timestamptz,
    deactivated_by  text
);
CREATE INDEX watchlist_active_person ON watchlist (person_id) WHERE active;
