-- Retention (DESIGN §12). Each finished run of `border retention run` or of the service's
-- daily task is recorded here (dry runs are not); the service looks at the last one to
-- know whether today's run is due and whether its galleries must catch up with what a
-- run erased. Written only by border/retention_store.py.

CREATE TABLE retention_runs (
    id           uuid PRIMARY KEY,
    -- The host day the run erased as of (`--on`, or today).
    on_date      date NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    -- Counts by kind (persons by reason, rows by table): ids and figures only.
    summary      jsonb NOT NULL
);
CREATE INDEX retention_runs_finished ON retention_runs (finished_at);

INSERT INTO service_privileges (table_name, privileges) VALUES
    ('retention_runs', '{SELECT,INSERT}');
-- Retention deletes the crossings and visas of a file whose period has run out (until now
-- they were only revoked, resolved or left pointing at an erased person).
UPDATE service_privileges SET privileges = '{SELECT,INSERT,UPDATE,DELETE}'
 WHERE table_name IN ('crossings', 'visas');
