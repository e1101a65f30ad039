//! Several sessiond nodes over one postgres server (filled in with the postgres store).
