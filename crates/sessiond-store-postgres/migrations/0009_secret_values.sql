-- A secret is now one opaque value per name (a sealed signing key is one),
-- no longer only a set of 32-byte secrets: the CHECK of migration 4 (a
-- multiple of 32, 32 to 256 bytes) becomes the store's new rule, 1 to
-- 16384 bytes (sessiond_core::MAX_SECRET_VALUE_LEN). Every row the old
-- CHECK let in passes the new one.
--
-- Migration 4 declared its CHECK inline, so PostgreSQL chose its name
-- (`secrets_value_check` on every schema we made, but a name is chosen,
-- not promised). Rather than trust it, drop every CHECK on `secrets` that
-- reads `value` and nothing else, found in the catalogue; a schema with
-- none is not an error. The new CHECK takes the usual name explicitly.
DO $$
DECLARE
    old_check name;
BEGIN
    FOR old_check IN
        SELECT c.conname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = 'secrets'::regclass
          AND c.contype = 'c'
          AND cardinality(c.conkey) = 1
          AND a.attname = 'value'
    LOOP
        EXECUTE format('ALTER TABLE secrets DROP CONSTRAINT %I', old_check);
    END LOOP;
END
$$;
ALTER TABLE secrets ADD CONSTRAINT secrets_value_check CHECK (length(value) BETWEEN 1 AND 16384);
