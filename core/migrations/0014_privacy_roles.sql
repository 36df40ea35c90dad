-- DESIGN §4 and §12: the statistician reads statistics only; the data protection officer
-- (dpo) reads subject-access exports, rectification histories and the retention due list.
-- Both may be API clients and staff accounts.
ALTER TABLE api_clients DROP CONSTRAINT api_clients_role_check;
ALTER TABLE api_clients ADD CONSTRAINT api_clients_role_check
    CHECK (role IN ('kiosk', 'officer', 'consular', 'auditor', 'admin', 'statistician', 'dpo'));
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('officer', 'consular', 'auditor', 'admin', 'statistician', 'dpo'));
