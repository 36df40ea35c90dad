-- The HTTP request an event was written in (X-Request-ID, or one the service made): the
-- link between the audit log and the service's log lines. NULL for events written from the
-- command line, and for events written before this column (their hash does not cover it).
ALTER TABLE audit_events
    ADD COLUMN request_id text CHECK (request_id ~ '^[A-Za-z0-9._-]{1,64}$');
CREATE INDEX audit_events_request ON audit_events (request_id) WHERE request_id IS NOT NULL;
