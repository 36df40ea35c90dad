-- Captures say where the face came from (DESIGN §16): the live camera, or the chip's DG2,
-- stored at enrollment after passive authentication passed.
ALTER TABLE captures ADD COLUMN source text NOT NULL DEFAULT 'live'
    CHECK (source IN ('live', 'chip'));
