-- Failure counters of the login throttle (sessiond-core's CounterStore),
-- one row per key. A row past expires_at counts as missing in every
-- statement and is removed by purge (through the index on expires_at).
-- Times are whole microseconds, as timestamptz keeps them.
CREATE TABLE counters (
    key          text        COLLATE "C" PRIMARY KEY,
    count        bigint      NOT NULL CHECK (count BETWEEN 0 AND 4294967295),
    last_at      timestamptz NOT NULL,
    locked_until timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX counters_expires_at ON counters (expires_at);
