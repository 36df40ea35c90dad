-- DESIGN §14: each API client row carries an HMAC (key derived from the system root) over
-- its id, role, border point, key hash and revocation, written by the service alone. Rows
-- from before this migration have none and authenticate nobody: an operator who trusts
-- them seals them on purpose (border.service.seal_clients); start-up never does, since
-- that would bless a row an insider had slipped in.
ALTER TABLE api_clients ADD COLUMN mac bytea CHECK (length(mac) = 32);
