//! The portal's report of failed sign-ins, for burst detection outside it
//! (the server counts them in the store and records `login_burst`
//! anomalies).

use std::fmt::Debug;
use std::net::IpAddr;

use sessiond_core::Tenant;
use time::OffsetDateTime;

/// Hears of every failed sign-in: wrong credentials, or an attempt the
/// throttle refused. Called on the request path: it must not block.
pub trait FailedLogins: Send + Sync + Debug {
    /// A sign-in at `name` (as typed) from `ip` in `tenant` failed at `at`.
    fn failed(&self, tenant: &Tenant, name: &str, ip: Option<IpAddr>, at: OffsetDateTime);
}
