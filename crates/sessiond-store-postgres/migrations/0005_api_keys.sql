-- API keys, one row each, found by id across tenants. Only the key's
-- SHA-256 is kept (lower-case hex, as the CHECK holds). The one-row table
-- beside it holds the version of the set, moved on in the same transaction
-- as every insert and delete, so a node polls one number to learn whether
-- to read the keys again; its row lock also serialises first-key inserts.
CREATE TABLE api_keys (
    id           text        COLLATE "C" PRIMARY KEY,
    tenant       text        NOT NULL,
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('app', 'admin')),
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE api_keys_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO api_keys_version (one, version) VALUES (true, 0);
