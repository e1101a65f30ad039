-- Portal accounts, one row each, found by (tenant, name).
--
-- COLLATE "C" on the key: names compare byte for byte (exact, no locale
-- folding or ignorable characters), and `ORDER BY name` lists them in the
-- order Rust sorts strings, whatever locale the database was created with.
-- The primary key is that order, so listing a tenant is one index range.
CREATE TABLE users (
    tenant              text        COLLATE "C" NOT NULL,
    name                text        COLLATE "C" NOT NULL,
    -- A PHC string, stored as given.
    password_hash       text        NOT NULL,
    disabled            boolean     NOT NULL,
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL,
    version             bigint      NOT NULL CHECK (version >= 0),
    PRIMARY KEY (tenant, name)
);
