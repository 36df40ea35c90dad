-- Border crossings and their resolution, written only by border/store.py.

CREATE TABLE crossings (
    id               uuid PRIMARY KEY,
    -- NULL when the traveller could not be tied to a person (unreadable MRZ, unknown
    -- traveller who needs a visa, no usable face to enrol a first-time visitor).
    person_id        uuid REFERENCES persons (id),
    document_index   bytea,
    direction        text NOT NULL CHECK (direction IN ('entry', 'exit')),
    border_point     text NOT NULL,
    at               timestamptz NOT NULL,
    day              date NOT NULL,
    decision         text NOT NULL CHECK (decision IN ('admit', 'refer')),
    reasons          jsonb NOT NULL,
    match_distance   real,
    match_threshold  real,
    figures          jsonb NOT NULL,
    rule_set         text NOT NULL,
    visa_id          uuid REFERENCES visas (id),
    accompanied_by   uuid REFERENCES persons (id),
    recorded_by      text NOT NULL,
    recorded_at      timestamptz NOT NULL,
    outcome          text CHECK (outcome IN ('admit', 'refuse')),
    resolution_note  bytea,
    resolved_by      text,
    resolved_at      timestamptz,
    CHECK (outcome IS NULL OR decision = 'refer'),
    CHECK ((outcome IS NULL) = (resolved_at IS NULL))
);
CREATE INDEX crossings_person ON crossings (person_id, at);
CREATE INDEX crossings_referred ON crossings (at) WHERE decision = 'refer' AND outcome IS NULL;
