-- The client at creation (sessiond_core::Session::created_client), kept
-- beside the last-seen client of client_ip, client_ua and client_sealed:
-- client binding compares later requests with it, so a touch never writes
-- these columns. With encryption on, created_client_ip and
-- created_client_ua stay NULL and created_client_sealed holds both, sealed
-- and bound to the session id under a place of its own
-- (sessiond_core::sealing::Place::SessionCreatedClient). Rows written
-- before this column existed have all three NULL: an empty client at
-- creation, which is compared with nothing. Nullable with no default: a
-- catalogue-only change, no table rewrite.
ALTER TABLE sessions
    ADD COLUMN created_client_ip text,
    ADD COLUMN created_client_ua text,
    ADD COLUMN created_client_sealed text;
