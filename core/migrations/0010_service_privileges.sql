-- The rights of the service's role, border_app (DESIGN §14). After every migration run,
-- core/migrate.py grants it, on a table listed here, exactly the privileges listed, and on
-- any other table SELECT, INSERT, UPDATE and DELETE. The role owns no table, so it can
-- neither alter one nor switch off a trigger; the rows below also take UPDATE and DELETE
-- away wherever the code only reads and appends. A migration that adds a table the service
-- must not update or delete from adds its row here; one that needs more widens it.

CREATE TABLE service_privileges (
    table_name  text PRIMARY KEY,
    privileges  text[] NOT NULL
        CHECK (privileges <@ ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']::text[])
);

INSERT INTO service_privileges (table_name, privileges) VALUES
    ('service_privileges', '{}'),
    -- Append-only: the trigger refuses changes, and the service may not even try.
    ('audit_events', '{SELECT,INSERT}'),
    -- Key checks, officers' overrides and alert indexes are written once and kept.
    ('master_key_versions', '{SELECT,INSERT}'),
    ('dedup_overrides', '{SELECT,INSERT}'),
    ('alert_indexes', '{SELECT,INSERT}'),
    -- Revoked, resolved, deactivated or erased in place, never deleted.
    ('api_clients', '{SELECT,INSERT,UPDATE}'),
    ('persons', '{SELECT,INSERT,UPDATE}'),
    ('watchlist', '{SELECT,INSERT,UPDATE}'),
    ('alerts', '{SELECT,INSERT,UPDATE}'),
    ('visas', '{SELECT,INSERT,UPDATE}'),
    ('crossings', '{SELECT,INSERT,UPDATE}'),
    -- Deleted at erasure, never changed.
    ('documents', '{SELECT,INSERT,DELETE}'),
    ('captures', '{SELECT,INSERT,DELETE}'),
    ('guardians', '{SELECT,INSERT,DELETE}'),
    -- Re-wrapped at rotation, deleted to crypto-shred.
    ('data_keys', '{SELECT,INSERT,UPDATE,DELETE}');
