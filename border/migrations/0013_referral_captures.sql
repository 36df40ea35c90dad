-- The live capture of a referred crossing, kept for the officer (DESIGN §11): the image as
-- the kiosk sent it, sealed with the traveller's data key, or with a key of the crossing's
-- own when no person is tied to it (the key the DOCUMENT_CHANGED MRZ and a note use).
-- An admitted crossing keeps no image (data minimisation). Written only by border/store.py.

ALTER TABLE crossings ADD COLUMN live_image_sealed bytea;
ALTER TABLE crossings ADD CONSTRAINT crossings_image_only_referred
    CHECK (live_image_sealed IS NULL OR decision = 'refer');
