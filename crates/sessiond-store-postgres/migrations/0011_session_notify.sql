-- The node-local record cache (`cache_entries`): nodes that keep one
-- LISTEN on `sessiond:<schema>` and forget the token hashes named there.
-- These functions notify every change of a session row with the row's
-- token hashes as they were (current, then previous if any, in hex,
-- space-separated), so any hash a node may have cached under that row is
-- named. A token hash maps to a row only through that row's own columns
-- (`session_tokens` is their index, changed in the same transaction), so
-- no other write needs to notify. An insert names nothing: nothing is
-- cached for a hash that was not found.
--
-- Only the functions are created here. Their triggers
-- (`session_notify_triggers.sql`) are created by the first node that opens
-- the store with `cache_entries`: notifying costs every writer (measured
-- by scripts/pg_notify_cost), and a store no node caches should not pay.
--
-- The channel names the schema, so stores in other schemas are not told;
-- a name longer than a channel may be is cut, which can only make two
-- such stores hear each other's changes (invalidations too many, never
-- too few).
CREATE FUNCTION session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        left('sessiond:' || TG_TABLE_SCHEMA, 63),
        encode(OLD.token_hash, 'hex') || coalesce(' ' || encode(OLD.prev_hash, 'hex'), ''));
    RETURN NULL;
END
$$;

-- A truncation fires no row trigger: it names everything (`*`).
CREATE FUNCTION sessions_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('sessiond:' || TG_TABLE_SCHEMA, 63), '*');
    RETURN NULL;
END
$$;
