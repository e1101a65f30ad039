-- The client (IP and User-Agent) sealed at rest: with encryption on,
-- client_ip and client_ua stay NULL and this holds both, sealed and bound
-- to the session id (sessiond_core::sealing). NULL otherwise. Nullable
-- with no default: a catalogue-only change, no table rewrite.
ALTER TABLE sessions ADD COLUMN client_sealed text;
