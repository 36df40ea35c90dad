-- The passport chip (DESIGN §16): the trust store of passive authentication, written only
-- by visa/pki_store.py. Certificates and CRLs are public documents: nothing here is sealed.

-- Country Signing CA certificates (CSCA): the anchors a document signer is checked against.
-- `country` is the ICAO code of the certificate's state (its subject's ISO alpha-2 C,
-- mapped: DE is D). One row per certificate, whatever the files that brought it.
CREATE TABLE pki_anchors (
    id           uuid PRIMARY KEY,
    country      text NOT NULL CHECK (country ~ '^[A-Z]{1,3}$'),
    subject      text NOT NULL,
    -- The subject as DER: a document signer's issuer name finds its anchors by it.
    subject_der  bytea NOT NULL,
    not_before   timestamptz NOT NULL,
    not_after    timestamptz NOT NULL,
    sha256       bytea NOT NULL UNIQUE CHECK (octet_length(sha256) = 32),
    der          bytea NOT NULL,
    -- How it came: a certificate file, or a master list (verified) that listed it.
    source       text NOT NULL CHECK (source IN ('certificate', 'master_list')),
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL
);
CREATE INDEX pki_anchors_subject ON pki_anchors (subject_der);

-- Certificate revocation lists, each verified against an imported anchor before it is
-- stored. A later list of the same issuer adds to the revocations of earlier ones.
CREATE TABLE pki_crls (
    id           uuid PRIMARY KEY,
    anchor_id    uuid NOT NULL REFERENCES pki_anchors (id),
    issuer       text NOT NULL,
    this_update  timestamptz NOT NULL,
    next_update  timestamptz,
    revoked      integer NOT NULL CHECK (revoked >= 0),
    sha256       bytea NOT NULL UNIQUE CHECK (octet_length(sha256) = 32),
    der          bytea NOT NULL,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL
);

-- Anchors and lists are imported and kept: the service may add, never change or delete.
INSERT INTO service_privileges (table_name, privileges) VALUES
    ('pki_anchors', '{SELECT,INSERT}'),
    ('pki_crls', '{SELECT,INSERT}');
