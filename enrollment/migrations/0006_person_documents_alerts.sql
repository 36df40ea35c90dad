-- One person across documents (DESIGN §10): a name index on persons, alerts on documents
-- and names, categories on person alerts (the watchlist), guardians, and the officers'
-- dedup overrides. Written only by enrollment/store.py.

-- HMAC(blind-index key, "name|SURNAME|GIVEN NAMES|YYYY-MM-DD") of the normalised name and
-- birth date: finds a person by name without decrypting. NULL until the start-up backfill
-- has indexed a person enrolled before this migration, and for erased persons.
ALTER TABLE persons ADD COLUMN name_index bytea;
CREATE INDEX persons_name_index ON persons (name_index) WHERE name_index IS NOT NULL;
CREATE INDEX persons_name_unindexed ON persons (id) WHERE name_index IS NULL AND status = 'active';

-- Person alerts are the watchlist's entries, now with a category.
ALTER TABLE watchlist ADD COLUMN category text NOT NULL DEFAULT 'watch'
    CHECK (category IN ('entry_ban', 'wanted', 'missing_person', 'watch'));

-- Alerts on a document or a name. Their contents (the document number or the name, birth
-- date and note) are sealed under a key derived for alerts; crossings find them through
-- alert_indexes, the blind indexes a crossing's document can produce.
CREATE TABLE alerts (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('document', 'name')),
    category        text NOT NULL CHECK (category IN ('lost_stolen_document',
                        'invalidated_document', 'entry_ban', 'wanted', 'missing_person', 'watch')),
    -- The alert's own identity: the document's blind index, or the name's full key. One
    -- active alert per kind, identity and category, so a list imported twice adds nothing.
    identity        bytea NOT NULL,
    contents        bytea NOT NULL,
    added_by        text NOT NULL,
    created_at      timestamptz NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    deactivated_at  timestamptz,
    deactivated_by  text,
    CHECK (active = (deactivated_at IS NULL))
);
CREATE UNIQUE INDEX alerts_active_identity ON alerts (kind, identity, category) WHERE active;
CREATE INDEX alerts_created ON alerts (created_at, id);

CREATE TABLE alert_indexes (
    blind_index  bytea NOT NULL,
    alert_id     uuid NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (blind_index, alert_id)
);

-- A minor's recorded guardians. Evidence is sealed with the minor's data key.
CREATE TABLE guardians (
    id                 uuid PRIMARY KEY,
    minor_id           uuid NOT NULL REFERENCES persons (id),
    guardian_id        uuid NOT NULL REFERENCES persons (id),
    relationship       text NOT NULL
                           CHECK (relationship IN ('parent', 'legal_guardian', 'authorised_adult')),
    evidence           bytea NOT NULL,
    valid_until        date,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL,
    CHECK (minor_id <> guardian_id),
    CHECK (relationship <> 'authorised_adult' OR valid_until IS NOT NULL)
);
CREATE INDEX guardians_minor ON guardians (minor_id);
CREATE INDEX guardians_guardian ON guardians (guardian_id);

-- Enrollments an officer let through over dedup candidates they compared and rejected.
-- The note is sealed with the new person's key; the candidates are ids.
CREATE TABLE dedup_overrides (
    id            uuid PRIMARY KEY,
    person_id     uuid NOT NULL REFERENCES persons (id),
    capture_id    uuid NOT NULL,
    candidates    uuid[] NOT NULL CHECK (cardinality(candidates) > 0),
    note          bytea NOT NULL,
    decided_by    text NOT NULL,
    decided_at    timestamptz NOT NULL
);
CREATE INDEX dedup_overrides_at ON dedup_overrides (decided_at, id);
