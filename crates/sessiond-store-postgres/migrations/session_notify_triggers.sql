-- The triggers of the node-local record cache (migration 11 has their
-- functions). Not a numbered migration: the first node that opens the
-- store with `cache_entries` runs this, under the migration lock, and only
-- if `sessions_changed` is missing.
--
-- CREATE TRIGGER takes a lock that waits for every transaction writing
-- `sessions` and holds off new ones until it commits, so no write that
-- commits after this does so without notifying: a node may then listen
-- and cache. The triggers stay; drop them only when no node runs with
-- `cache_entries` (a node then caching would never hear of changes).
CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION session_changed();

CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_truncated();
