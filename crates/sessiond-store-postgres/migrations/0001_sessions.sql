-- Sessions, one row each. The columns are the record itself (no opaque
-- blob except the application's `data`), so that every constraint and
-- every lookup the store needs is done by the engine.
CREATE TABLE sessions (
    id                  text        PRIMARY KEY,
    tenant              text        NOT NULL,
    subject             text        NOT NULL,
    token_hash          bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    prev_hash           bytea       CHECK (octet_length(prev_hash) = 32),
    prev_valid_until    timestamptz,
    created_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    authenticated_at    timestamptz NOT NULL,
    idle_expires_at     timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    -- The deadline that matters for liveness and purge, kept by the engine
    -- so that no writer can let it drift from the two it derives from.
    expires_at          timestamptz NOT NULL
        GENERATED ALWAYS AS (LEAST(idle_expires_at, absolute_expires_at)) STORED,
    remember_me         boolean     NOT NULL,
    aal                 smallint    NOT NULL CHECK (aal BETWEEN 1 AND 3),
    -- JSON text as bytes, not jsonb: byte-exact round trips (jsonb rejects
    -- \u0000 and renormalises numbers) and nothing here queries inside it.
    data                bytea       NOT NULL,
    client_ip           text,
    client_ua           text,
    version             bigint      NOT NULL CHECK (version >= 0),
    revoked_at          timestamptz,
    revoked_reason      text,
    CHECK ((prev_hash IS NULL) = (prev_valid_until IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

-- Every token hash, current or previous, of every record: the primary key
-- makes a hash unique store-wide, across both kinds, which two unique
-- columns on `sessions` could not.
CREATE TABLE session_tokens (
    hash       bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    session_id text  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX session_tokens_session ON session_tokens (session_id);

-- Subject listings and limits only ever look at non-revoked records.
CREATE INDEX sessions_subject ON sessions (tenant, subject, created_at, id) WHERE revoked_at IS NULL;

-- Purge walks deadlines in order and stops at `now`.
CREATE INDEX sessions_expiry ON sessions (expires_at, id);
