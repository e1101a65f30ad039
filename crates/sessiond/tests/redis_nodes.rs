//! Several sessiond nodes over one redis server (filled in with the redis store).
