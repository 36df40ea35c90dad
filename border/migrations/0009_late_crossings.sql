-- Late crossings (DESIGN §14): a crossing recorded more than 10 minutes after its `at`
-- (a kiosk's post that synced late, or an officer's record of an older crossing) is marked
-- and listed for officers. Crossings recorded before this migration are not marked.
-- Written only by border/store.py.

ALTER TABLE crossings ADD COLUMN late boolean NOT NULL DEFAULT false;
-- The officers' list of late crossings, newest recorded first.
CREATE INDEX crossings_late ON crossings (recorded_at) WHERE late;
