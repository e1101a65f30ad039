-- Audit events, one row each, never a token or its hash (events hold
-- none). The primary key (tenant, id) is the index every operation uses:
-- ids are fixed-width text that sorts in time order under "C" collation,
-- so a tenant's events newest first are one backward index range, from the
-- `before` cursor down. subject, session_id and kind are copied out of the
-- JSON body for the query filters; the body is what is read back.
CREATE TABLE events (
    tenant     text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL CHECK (length(id) = 35),
    kind       text NOT NULL,
    subject    text,
    session_id text,
    body       text NOT NULL,
    PRIMARY KEY (tenant, id)
);
