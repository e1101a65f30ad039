//! Client binding: comparing the client a session is used from with the
//! one that created it, as a sign that its token was stolen.
//!
//! Both the address and the browser change legitimately (a phone moves
//! between networks, a browser updates), so neither is compared exactly:
//! addresses within one prefix (a /24, a /64 by default) count as the
//! same network, and a User-Agent counts as the same while its browser
//! family and operating system are (see `user_agent.rs`). What a change
//! does is the operator's choice per signal: nothing, a signal (in the
//! session response and an `anomaly` event), or the end of the session.
//!
//! The comparison runs on every verify that names a client, so the common
//! case (the same strings as at creation) is two string comparisons.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::events::AnomalyReason;
use crate::session::ClientInfo;
use crate::user_agent::classify;

/// What a change of one part of the client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    /// Nothing is compared.
    Off,
    /// The session stays valid; the change is reported in `signals` and
    /// recorded once as an `anomaly` event.
    #[default]
    Signal,
    /// The session is revoked (reason `hijack_suspected`) and the request
    /// refused, with the `anomaly` event stored in the same write.
    Revoke,
}

/// How sessions are bound to their client (the `bind_*` keys of
/// `[policy]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBinding {
    /// On an address outside the creating address's prefix.
    pub ip: BindMode,
    /// Bits of an IPv4 address that name the network (1 to 32).
    pub ip_prefix_v4: u8,
    /// Bits of an IPv6 address that name the network (1 to 128).
    pub ip_prefix_v6: u8,
    /// On another browser family or operating system.
    pub user_agent: BindMode,
}

impl Default for ClientBinding {
    fn default() -> Self {
        Self {
            ip: BindMode::Signal,
            ip_prefix_v4: 24,
            ip_prefix_v6: 64,
            user_agent: BindMode::Signal,
        }
    }
}

/// How a client differs from the one that created the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    /// The address is outside the creating address's prefix.
    pub ip_changed: bool,
    /// The browser family or operating system differs.
    pub user_agent_changed: bool,
}

impl Signals {
    /// No change.
    pub fn is_empty(self) -> bool {
        !self.ip_changed && !self.user_agent_changed
    }

    /// The signals of `self` that `earlier` did not have.
    pub fn since(self, earlier: Signals) -> Signals {
        Signals {
            ip_changed: self.ip_changed && !earlier.ip_changed,
            user_agent_changed: self.user_agent_changed && !earlier.user_agent_changed,
        }
    }

    /// The anomaly each signal records, in a fixed order.
    pub fn anomalies(self) -> impl Iterator<Item = AnomalyReason> {
        [
            self.ip_changed.then_some(AnomalyReason::IpChanged),
            self.user_agent_changed.then_some(AnomalyReason::UserAgentChanged),
        ]
        .into_iter()
        .flatten()
    }

    /// The stable names of the signals (`ip_changed`, `user_agent_changed`),
    /// as the session responses carry them.
    pub fn names(self) -> Vec<&'static str> {
        self.anomalies().map(AnomalyReason::as_str).collect()
    }
}

/// Why a binding was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// `ip_prefix_v4` is not between 1 and 32.
    #[error("policy: ip_prefix_v4 must be between 1 and 32")]
    PrefixV4,
    /// `ip_prefix_v6` is not between 1 and 128.
    #[error("policy: ip_prefix_v6 must be between 1 and 128")]
    PrefixV6,
}

impl ClientBinding {
    /// Checks the prefix lengths.
    pub fn validate(&self) -> Result<(), BindingError> {
        if !(1..=32).contains(&self.ip_prefix_v4) {
            return Err(BindingError::PrefixV4);
        }
        if !(1..=128).contains(&self.ip_prefix_v6) {
            return Err(BindingError::PrefixV6);
        }
        Ok(())
    }

    /// How `seen` differs from `created`, for the parts that are bound.
    /// A part missing from either side (or an address that does not
    /// parse) is not compared: there is nothing to tell apart.
    pub fn signals(&self, created: &ClientInfo, seen: &ClientInfo) -> Signals {
        let ip_changed = self.ip != BindMode::Off
            && match (created.ip.as_deref(), seen.ip.as_deref()) {
                (Some(a), Some(b)) if a != b => !self.same_network(a, b),
                _ => false,
            };
        let user_agent_changed = self.user_agent != BindMode::Off
            && match (created.user_agent.as_deref(), seen.user_agent.as_deref()) {
                (Some(a), Some(b)) if a != b => classify(a) != classify(b),
                _ => false,
            };
        Signals {
            ip_changed,
            user_agent_changed,
        }
    }

    /// True when `signals` holds a change whose mode is [`BindMode::Revoke`].
    pub fn revokes(&self, signals: Signals) -> bool {
        (signals.ip_changed && self.ip == BindMode::Revoke)
            || (signals.user_agent_changed && self.user_agent == BindMode::Revoke)
    }

    /// True when both addresses parse and share the prefix. Addresses of
    /// different families are different networks; an IPv4-mapped IPv6
    /// address counts as its IPv4 address.
    fn same_network(&self, a: &str, b: &str) -> bool {
        let (Ok(a), Ok(b)) = (a.parse::<IpAddr>(), b.parse::<IpAddr>()) else {
            // Text that is not an address cannot be placed in a network;
            // calling it a change would flag every such client.
            return true;
        };
        match (a.to_canonical(), b.to_canonical()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX << (32 - u32::from(self.ip_prefix_v4.min(32)));
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX << (128 - u32::from(self.ip_prefix_v6.min(128)));
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_120: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/120.0.0.0 Safari/537.36";
    const CHROME_131: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/131.0.6778.86 Safari/537.36";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

    fn client(ip: &str, user_agent: &str) -> ClientInfo {
        ClientInfo {
            ip: Some(ip.into()),
            user_agent: Some(user_agent.into()),
            sealed: None,
        }
    }

    fn ip_only() -> Signals {
        Signals {
            ip_changed: true,
            user_agent_changed: false,
        }
    }

    #[test]
    fn addresses_compare_within_the_prefix() {
        let binding = ClientBinding::default();
        let created = client("203.0.113.7", CHROME_120);
        assert!(
            binding
                .signals(&created, &client("203.0.113.250", CHROME_120))
                .is_empty()
        );
        assert_eq!(binding.signals(&created, &client("203.0.114.7", CHROME_120)), ip_only());
        let created = client("2001:db8:1:2::1", CHROME_120);
        assert!(
            binding
                .signals(&created, &client("2001:db8:1:2:ffff::9", CHROME_120))
                .is_empty()
        );
        assert_eq!(
            binding.signals(&created, &client("2001:db8:1:3::1", CHROME_120)),
            ip_only()
        );
        // Another family is another network; a mapped address is its IPv4.
        assert_eq!(binding.signals(&created, &client("203.0.113.7", CHROME_120)), ip_only());
        let created = client("203.0.113.7", CHROME_120);
        assert!(
            binding
                .signals(&created, &client("::ffff:203.0.113.9", CHROME_120))
                .is_empty()
        );
    }

    #[test]
    fn prefix_lengths_are_configurable() {
        let narrow = ClientBinding {
            ip_prefix_v4: 32,
            ..ClientBinding::default()
        };
        let created = client("203.0.113.7", CHROME_120);
        assert_eq!(narrow.signals(&created, &client("203.0.113.8", CHROME_120)), ip_only());
        let wide = ClientBinding {
            ip_prefix_v4: 8,
            ..ClientBinding::default()
        };
        assert!(wide.signals(&created, &client("203.99.1.1", CHROME_120)).is_empty());
    }

    #[test]
    fn user_agents_compare_by_family_and_os_not_version() {
        let binding = ClientBinding::default();
        let created = client("203.0.113.7", CHROME_120);
        assert!(binding.signals(&created, &client("203.0.113.7", CHROME_131)).is_empty());
        let both = binding.signals(&created, &client("198.51.100.1", FIREFOX));
        assert_eq!(
            both,
            Signals {
                ip_changed: true,
                user_agent_changed: true
            }
        );
        assert_eq!(both.names(), ["ip_changed", "user_agent_changed"]);
    }

    #[test]
    fn off_compares_nothing_and_missing_parts_are_not_compared() {
        let off = ClientBinding {
            ip: BindMode::Off,
            user_agent: BindMode::Off,
            ..ClientBinding::default()
        };
        let created = client("203.0.113.7", CHROME_120);
        assert!(off.signals(&created, &client("198.51.100.1", FIREFOX)).is_empty());
        let binding = ClientBinding::default();
        assert!(
            binding
                .signals(&ClientInfo::default(), &client("198.51.100.1", FIREFOX))
                .is_empty()
        );
        assert!(binding.signals(&created, &ClientInfo::default()).is_empty());
        assert!(
            binding
                .signals(&created, &client("not an address", CHROME_120))
                .is_empty()
        );
    }

    #[test]
    fn only_a_revoking_part_revokes() {
        let binding = ClientBinding {
            ip: BindMode::Revoke,
            ..ClientBinding::default()
        };
        assert!(binding.revokes(ip_only()));
        let ua_only = Signals {
            ip_changed: false,
            user_agent_changed: true,
        };
        assert!(!binding.revokes(ua_only));
        assert_eq!(ip_only().since(ip_only()), Signals::default());
    }

    #[test]
    fn prefixes_out_of_range_are_refused() {
        let zero = ClientBinding {
            ip_prefix_v4: 0,
            ..ClientBinding::default()
        };
        assert_eq!(zero.validate(), Err(BindingError::PrefixV4));
        let long = ClientBinding {
            ip_prefix_v6: 129,
            ..ClientBinding::default()
        };
        assert_eq!(long.validate(), Err(BindingError::PrefixV6));
        assert_eq!(ClientBinding::default().validate(), Ok(()));
    }
}
