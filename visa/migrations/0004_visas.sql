-- Visas issued by consular staff; written only by visa/store.py.
-- A visa holds no biographic data: its holder is a person id, and everything else (number,
-- type, dates, entries, duration) describes the visa, not the person. Nothing here is
-- sealed; names, nationality and birth date stay encrypted in persons. Erasure of the
-- holder leaves the row pointing at an erased person, whose data is gone.

CREATE TABLE visas (
    id                     uuid PRIMARY KEY,
    person_id              uuid NOT NULL REFERENCES persons (id),
    -- Drawn at random by visa/service.py (9 characters, as an MRV document number).
    number                 text NOT NULL UNIQUE CHECK (number ~ '^[A-Z0-9]{9}$'),
    visa_type              text NOT NULL CHECK (visa_type IN ('A', 'C', 'D')),
    issuing_state          text NOT NULL CHECK (issuing_state ~ '^[A-Z]{1,3}$'),
    valid_from             date NOT NULL,
    valid_until            date NOT NULL,
    entries                text NOT NULL CHECK (entries IN ('1', '2', 'MULT')),
    duration_of_stay_days  integer NOT NULL CHECK (duration_of_stay_days > 0),
    status                 text NOT NULL CHECK (status IN ('issued', 'revoked')),
    issued_by              text NOT NULL,
    issued_at              timestamptz NOT NULL,
    revoked_at             timestamptz,
    revoked_by             text,
    -- The same checks as the API's, kept here so no writer can store a visa the rules
    -- would misread. Dates are inclusive: a visa valid for one day has valid_from = until.
    CHECK (valid_until >= valid_from),
    CHECK (duration_of_stay_days <= valid_until - valid_from + 1),
    CHECK (visa_type <> 'C' OR duration_of_stay_days <= 90),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX visas_person ON visas (person_id);
