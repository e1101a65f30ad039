-- The node-local record cache (`cache_entries`): nodes that keep one
-- LISTEN on `sessiond:<schema>` and forget the token hashes named there.
-- Every change of a session row names the row's token hashes as they
-- were (current, then previous if any, in hex, space-separated), so any
-- hash a node may have cached under that row is named. A token hash maps
-- to a row only through that row's own columns (`session_tokens` is
-- their index, changed in the same transaction), so no other write needs
-- to notify. An insert names nothing: nothing is cached for a hash that
-- was not found.
--
-- PostgreSQL queues a transaction's notifications before it commits and
-- signals the listeners as it commits, before the writer is told it did,
-- so a node hears of every acknowledged change (see the crate docs for
-- why its barrier then suffices). Writers notify whether or not a node
-- listens: whether one does is not known to the writer's transaction.
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

CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION session_changed();

-- A truncation fires no row trigger: it names everything (`*`).
CREATE FUNCTION sessions_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('sessiond:' || TG_TABLE_SCHEMA, 63), '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_truncated();
