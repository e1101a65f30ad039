//! In-flight budgets per route class, so that anonymous traffic cannot take
//! the capacity the API needs.
//!
//! One listener serves three kinds of route: the `/v1` API (every call
//! carries an API key), the operator routes (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`) and the public routes: the portal and
//! anything unmatched, which anyone on the network can reach. Each class
//! has its own count of requests in flight, so 1,100 slow logins fill the
//! public budget and leave verify and health untouched. On the public
//! routes one client address may hold at most a few requests at once, so
//! one attacker cannot fill even the public budget alone.
//!
//! The per-address counts live in a map with one entry per address that has
//! a public request in flight: its size is bounded by the public budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight on the operator routes. They are cheap (a store ping
/// at most) and few callers use them; a fixed budget keeps a scraper loop
/// from being starved by, or starving, the rest.
const OPS_IN_FLIGHT: usize = 64;

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// `/v1/...`: authenticated API calls.
    Api,
    /// Health, readiness, metrics and the OpenAPI document.
    Ops,
    /// The portal, and every path no route matches.
    Public,
}

impl RouteClass {
    /// The class of a request path.
    pub fn of(path: &str) -> Self {
        if path.starts_with("/v1/") {
            RouteClass::Api
        } else if matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json") {
            RouteClass::Ops
        } else {
            RouteClass::Public
        }
    }
}

/// Sizes of the budgets, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct BudgetSizes {
    /// API requests in flight.
    pub api: usize,
    /// Public requests in flight, all clients together.
    pub public: usize,
    /// Public requests in flight from one client address.
    pub public_per_client: usize,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The class's budget is spent (503 `overloaded`).
    Overloaded,
    /// This client address has its share of the public budget in flight
    /// (429 `too_many_requests`).
    TooManyFromClient,
}

/// The budgets of one server.
#[derive(Debug)]
pub struct Budgets {
    api: Arc<Semaphore>,
    ops: Arc<Semaphore>,
    public: Arc<Semaphore>,
    per_client: Arc<PerClient>,
}

/// Held while a request is in flight; returns what it took when dropped.
#[derive(Debug)]
pub struct Admission {
    _class: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

impl Budgets {
    /// Budgets of the given sizes.
    pub fn new(sizes: BudgetSizes) -> Self {
        Self {
            api: Arc::new(Semaphore::new(sizes.api)),
            ops: Arc::new(Semaphore::new(OPS_IN_FLIGHT)),
            public: Arc::new(Semaphore::new(sizes.public)),
            per_client: Arc::new(PerClient {
                limit: sizes.public_per_client,
                counts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Admits a request of `class` from `client` (the address the public
    /// routes count by; unknown when served without connection info), or
    /// says why not. Never waits: a full budget answers at once.
    pub fn admit(&self, class: RouteClass, client: Option<IpAddr>) -> Result<Admission, Refusal> {
        let semaphore = match class {
            RouteClass::Api => &self.api,
            RouteClass::Ops => &self.ops,
            RouteClass::Public => &self.public,
        };
        // The client's slot first: an address at its share is told so
        // (429) rather than taking a public permit it would hand back.
        let client = match (class, client) {
            (RouteClass::Public, Some(ip)) => Some(self.per_client.take(ip).ok_or(Refusal::TooManyFromClient)?),
            _ => None,
        };
        let permit = semaphore.clone().try_acquire_owned().map_err(|_| Refusal::Overloaded)?;
        Ok(Admission {
            _class: permit,
            _client: client,
        })
    }
}

/// Public requests in flight per client address.
#[derive(Debug)]
struct PerClient {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limit {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            owner: Arc::clone(self),
            ip,
        })
    }

    fn give_back(&self, ip: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One public request in flight from `ip`.
#[derive(Debug)]
struct ClientSlot {
    owner: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.owner.give_back(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(api: usize, public: usize, per_client: usize) -> Budgets {
        Budgets::new(BudgetSizes {
            api,
            public,
            public_per_client: per_client,
        })
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn paths_fall_into_their_class() {
        assert_eq!(RouteClass::of("/v1/sessions/verify"), RouteClass::Api);
        assert_eq!(RouteClass::of("/healthz"), RouteClass::Ops);
        assert_eq!(RouteClass::of("/readyz"), RouteClass::Ops);
        assert_eq!(RouteClass::of("/metrics"), RouteClass::Ops);
        assert_eq!(RouteClass::of("/openapi.json"), RouteClass::Ops);
        assert_eq!(RouteClass::of("/login"), RouteClass::Public);
        assert_eq!(RouteClass::of("/auth/verify"), RouteClass::Public);
        assert_eq!(RouteClass::of("/v1"), RouteClass::Public);
        assert_eq!(RouteClass::of("/healthz/x"), RouteClass::Public);
    }

    #[test]
    fn a_full_public_budget_leaves_the_api_and_ops_budgets_alone() {
        let b = budgets(2, 3, 100);
        let held: Vec<_> = (0..3).map(|i| b.admit(RouteClass::Public, ip(i)).unwrap()).collect();
        assert_eq!(b.admit(RouteClass::Public, ip(9)).unwrap_err(), Refusal::Overloaded);
        let api: Vec<_> = (0..2).map(|_| b.admit(RouteClass::Api, ip(1)).unwrap()).collect();
        assert_eq!(b.admit(RouteClass::Api, ip(1)).unwrap_err(), Refusal::Overloaded);
        assert!(b.admit(RouteClass::Ops, ip(1)).is_ok());
        drop((held, api));
        assert!(b.admit(RouteClass::Public, ip(9)).is_ok());
    }

    #[test]
    fn one_address_gets_its_share_of_public_requests_and_no_more() {
        let b = budgets(10, 10, 2);
        let first = b.admit(RouteClass::Public, ip(1)).unwrap();
        let _second = b.admit(RouteClass::Public, ip(1)).unwrap();
        assert_eq!(
            b.admit(RouteClass::Public, ip(1)).unwrap_err(),
            Refusal::TooManyFromClient
        );
        // Other addresses, and the same address on the API, are not held back.
        assert!(b.admit(RouteClass::Public, ip(2)).is_ok());
        assert!(b.admit(RouteClass::Api, ip(1)).is_ok());
        drop(first);
        assert!(b.admit(RouteClass::Public, ip(1)).is_ok());
    }

    #[test]
    fn a_refused_request_takes_nothing_and_idle_addresses_are_forgotten() {
        let b = budgets(10, 1, 5);
        let held = b.admit(RouteClass::Public, ip(1)).unwrap();
        for i in 2..50 {
            assert_eq!(b.admit(RouteClass::Public, ip(i)).unwrap_err(), Refusal::Overloaded);
        }
        assert_eq!(b.per_client.tracked(), 1);
        drop(held);
        assert_eq!(b.per_client.tracked(), 0);
        let zero = budgets(10, 10, 0);
        assert_eq!(
            zero.admit(RouteClass::Public, ip(1)).unwrap_err(),
            Refusal::TooManyFromClient
        );
        assert_eq!(zero.per_client.tracked(), 0);
    }
}
