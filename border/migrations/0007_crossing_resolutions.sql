-- Resolutions with grounds and a protection outcome, document changes with their face
-- candidates, and guardians named by crossing (DESIGN §10). Written only by border/store.py.

ALTER TABLE crossings DROP CONSTRAINT crossings_outcome_check;
ALTER TABLE crossings ADD CONSTRAINT crossings_outcome_check
    CHECK (outcome IN ('admit', 'refuse', 'protection'));

-- Annex V Part B letters of a refusal; the protection flags of a hand-over.
ALTER TABLE crossings ADD COLUMN grounds text[];
ALTER TABLE crossings ADD COLUMN protection text[];
-- Refusals resolved before this migration have no grounds on record, so the store only
-- forbids grounds on other outcomes; the service requires them on every new refusal.
ALTER TABLE crossings ADD CONSTRAINT crossings_grounds_only_refused
    CHECK (grounds IS NULL OR outcome = 'refuse');
ALTER TABLE crossings ADD CONSTRAINT crossings_protection_only_protected
    CHECK ((outcome IS NOT DISTINCT FROM 'protection') = (protection IS NOT NULL));

-- DOCUMENT_CHANGED: the enrolled persons the live face matched ({person_id, distance}), and
-- the document as read (its MRZ sealed with the crossing's own key) so that an officer's
-- link can join it to the person they choose.
ALTER TABLE crossings ADD COLUMN candidates jsonb;
ALTER TABLE crossings ADD COLUMN document_sealed bytea;
