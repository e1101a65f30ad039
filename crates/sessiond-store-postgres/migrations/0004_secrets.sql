-- Shared secret sets (the portal's CSRF secrets first), one row each,
-- found by name. The value is the set's 32-byte secrets one after another;
-- the CHECK holds the store's rule (1 to 8 secrets) in the engine too, so
-- a hand-made row cannot break every node at once. Rows are never deleted.
CREATE TABLE secrets (
    name  text  COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL CHECK (length(value) % 32 = 0 AND length(value) BETWEEN 32 AND 256)
);
