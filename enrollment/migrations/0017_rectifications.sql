-- Rectifications of biographic data (DESIGN §12); written only by enrollment/store.py.
-- The fields changed are in clear; the old and new values (a JSON object of field to
-- value) and the reason are sealed with the person's data key, so erasure, which shreds
-- that key, leaves the history unreadable with the rest of the person.
CREATE TABLE rectifications (
    id            uuid PRIMARY KEY,
    person_id     uuid NOT NULL REFERENCES persons (id),
    fields        text[] NOT NULL CHECK (cardinality(fields) > 0),
    old_values    bytea NOT NULL,
    new_values    bytea NOT NULL,
    reason        bytea NOT NULL,
    rectified_by  text NOT NULL,
    role          text NOT NULL,
    rectified_at  timestamptz NOT NULL
);
CREATE INDEX rectifications_person ON rectifications (person_id, rectified_at, id);

-- A history is written once and kept: the service may not change or delete it.
INSERT INTO service_privileges (table_name, privileges)
    VALUES ('rectifications', '{SELECT,INSERT}');
