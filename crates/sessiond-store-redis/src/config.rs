//! The store URL: the server address as redis-rs reads it, plus our own
//! query parameters.
//!
//! ```text
//! redis://[user:password@]host[:port][/db][?prefix=sessiond:&ttl_slack_secs=3600&timeout_ms=2000]
//! rediss://[user:password@]host[:port][/db][?ca_file=/etc/ssl/redis-ca.pem&…]
//! ```
//!
//! * `prefix` (default `sessiond:`): put before every key, so several
//!   deployments or test runs can share one server. Must not contain `{` or
//!   `}` (those choose Cluster hash slots; on a Cluster the store tags its
//!   keys itself).
//! * `ttl_slack_secs` (default 3600): how long Redis keeps a record after
//!   its deadline before expiring it by itself (see the crate docs for why).
//! * `timeout_ms` (default 2000): connect and response timeout; past it a
//!   call fails as unavailable instead of hanging.
//! * `ca_file` (`rediss://` only): PEM file of the CA that signed the
//!   server's certificate, for private CAs; without it the system's roots
//!   are used. The server name is always verified.
//!
//! * `wait_replicas` (default off) and `wait_timeout_ms` (default 500):
//!   after every write, `WAIT wait_replicas wait_timeout_ms` before the
//!   call succeeds, so an acknowledged write is on that many replicas too
//!   and survives a failover to one of them. Fewer confirmations in time
//!   make the call fail as unavailable (503): the write may or may not
//!   survive, so it is not acknowledged. The cost: one more round trip per
//!   write, and because `WAIT` blocks the node's one multiplexed connection
//!   until the replicas answer, reads queued behind it wait too.
//!   `wait_timeout_ms` must be shorter than `timeout_ms`.
//!
//! * `cache_entries` (default 0, off): a node-local cache of up to that
//!   many records read by their current token, so a verify of a hot
//!   session reads no record from Redis. It keeps the cluster invariant: a
//!   verify that starts after a revocation (or rotation, or any change)
//!   was acknowledged on any node fails on this one too. The cache's own
//!   RESP3 connection has client tracking on, and a hit is answered only
//!   after a `PING` on that connection, sent after the verify began, has
//!   come back, so every invalidation Redis sent before has been applied
//!   (the proof is in `cache.rs`). One `PING` serves all the verifies
//!   waiting at once. A connection lost or not answering within
//!   `timeout_ms` empties the cache. Turn it on when the same sessions are
//!   verified again and again, sized to the sessions a node verifies again
//!   within a minute or so: a cache smaller than the sessions in use keeps
//!   evicting and then costs CPU rather than saving it (`scripts/load
//!   STORE=redis STORE_QUERY=cache_entries=N` measures a setting, with the
//!   `sessiond_redis_cache_*` counts on `/metrics` showing the hit rate).
//!   Memory is the other cost: a decoded record is about 2 KB with a
//!   browser's User-Agent, and the node's RSS grew from 23 MB to 190 MB
//!   with 100,000 entries, and to 255 MB with 20,000 entries that kept
//!   being replaced (allocator fragmentation; it stayed there over four
//!   more rounds). Hence off by default. Under Sentinel the cache follows
//!   the master (see `cache.rs`: its barrier is `ROLE`, and it passes only
//!   on a master); not for Cluster URLs yet (`cache_entries` other than 0
//!   is refused there).
//!
//! * `cache_lag_ms` (default 0, at most 1000; needs `cache_entries`): trades
//!   the exact invariant for a bounded one, on this node only. A verify
//!   that starts more than this long after another node's change was
//!   acknowledged still fails here; one that starts sooner may be answered
//!   from memory, if the invalidation has not come yet. In exchange a hit
//!   waits for no `PING` while the last one that came back was sent within
//!   the bound (one is sent ahead once it is half that old), which saves
//!   the wait and its wakeups on every hit. The bound is on this node's
//!   monotonic clock alone: no clock is compared between machines. An idle
//!   node, or a connection slower than the bound, waits for a `PING` as
//!   the exact cache does. The node's own session writes stay exact:
//!   after each, its hits wait for a new `PING` (a node never verifies
//!   what it has itself just revoked), so the bound saves little on a node
//!   whose session writes (logins, touches, rotations) come faster than
//!   `PING`s return. The cap is the second within which a revocation
//!   reaches access-token verifiers through the revocation feed.
//!   `scripts/load STORE=redis STORE_QUERY="cache_entries=N&cache_lag_ms=M"`
//!   measures it and judges the revocation lag by the bound.
//!
//! Other query parameters (e.g. `protocol=resp3`) are passed to redis-rs.
//!
//! # Sentinel
//!
//! ```text
//! redis+sentinel://[user:password@]host[:port][,host[:port]…]/master[/db][?sentinel_password=…&…]
//! rediss+sentinel://…   (TLS to the sentinels and to the master; ca_file applies to both)
//! ```
//!
//! The hosts are the sentinels (port 26379 when omitted); `master` is the
//! name they monitor. The user and password in front of the hosts are the
//! data nodes'; the sentinels' own, if they require one, are
//! `sentinel_username` and `sentinel_password`. User, password and master
//! name may be percent-encoded. The store asks the sentinels for the
//! master, checks that it says `ROLE` master, and asks again whenever the
//! connection fails or a write meets `READONLY` (see the crate docs). All
//! parameters of the plain form apply except the redis-rs pass-through;
//! an unknown parameter is an error.
//!
//! # Cluster
//!
//! ```text
//! redis+cluster://[user:password@]host[:port][,host[:port]…][/][?prefix=…&shards=64&…]
//! rediss+cluster://…   (TLS to every node; ca_file applies)
//! ```
//!
//! The hosts are some of the cluster's nodes (port 6379 when omitted): the
//! client learns the others, and every move of a slot, from them. User and
//! password may be percent-encoded. Sessions are spread over `shards` hash
//! tags (a power of two up to 64, default 64; `{<prefix><NN>}` in the key),
//! so over as many slots and the nodes that hold them; every session keeps
//! all its keys, and its subject's index, in its subject's shard (see
//! `keys.rs`). The number is part of the layout: a store keeps the one it
//! was started with. The parameters of the Sentinel form apply, except
//! `cache_entries`; an unknown parameter is an error.

use std::time::Duration;

use sessiond_core::CacheSettings;

/// Key prefix used when the URL names none.
pub const DEFAULT_PREFIX: &str = "sessiond:";
/// Default `ttl_slack_secs`.
pub const DEFAULT_TTL_SLACK: Duration = Duration::from_secs(3600);
/// Default `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `wait_timeout_ms`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(500);
/// A sentinel's port when its address names none.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;
/// A cluster node's port when its address names none.
pub const DEFAULT_NODE_PORT: u16 = 6379;
/// Default `shards` of a Cluster URL: the most there can be, so a store
/// spreads over as many slots (and nodes) as it can.
pub const DEFAULT_SHARDS: sessiond_core::Shards = match sessiond_core::Shards::new(64) {
    Some(shards) => shards,
    None => panic!("64 is a power of two"),
};

/// `WAIT` for replicas after every write (`wait_replicas`, `wait_timeout_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    /// How many replicas must confirm a write.
    pub replicas: u32,
    /// How long the server waits for them.
    pub timeout: Duration,
}

/// The master a set of sentinels names (`redis+sentinel://`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelTarget {
    /// The sentinels, host and port.
    pub(crate) sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor.
    pub(crate) master: String,
    /// The database on the master.
    pub(crate) db: i64,
    /// TLS to the sentinels and to the master (`rediss+sentinel://`).
    pub(crate) tls: bool,
    /// The data nodes' user.
    pub(crate) username: Option<String>,
    /// The data nodes' password.
    pub(crate) password: Option<String>,
    /// The sentinels' user (`sentinel_username`).
    pub(crate) sentinel_username: Option<String>,
    /// The sentinels' password (`sentinel_password`).
    pub(crate) sentinel_password: Option<String>,
}

/// The nodes of a Redis Cluster (`redis+cluster://`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ClusterTarget {
    /// Nodes to learn the cluster from, host and port.
    pub(crate) nodes: Vec<(String, u16)>,
    /// The shards sessions are spread over (`shards`, default 64).
    pub(crate) shards: sessiond_core::Shards,
    /// TLS to every node (`rediss+cluster://`).
    pub(crate) tls: bool,
    /// The nodes' user.
    pub(crate) username: Option<String>,
    /// The nodes' password.
    pub(crate) password: Option<String>,
}

/// Where and how to reach Redis, parsed from a store URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The URL handed to redis-rs (our own parameters removed); for
    /// Sentinel, the URL without its parameters (shown redacted only).
    pub(crate) server_url: String,
    /// Set for `redis+sentinel://` and `rediss+sentinel://`.
    pub(crate) sentinel: Option<SentinelTarget>,
    /// Set for `redis+cluster://` and `rediss+cluster://`.
    pub(crate) cluster: Option<ClusterTarget>,
    /// Put before every key.
    pub prefix: String,
    /// How long after its deadline Redis keeps a record by itself.
    pub ttl_slack: Duration,
    /// Connect and response timeout.
    pub timeout: Duration,
    /// CA certificates (PEM) to trust for `rediss://` instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// `WAIT` for replicas after every write, if set.
    pub wait: Option<ReplicaWait>,
    /// The node-local cache, if on (`cache_entries`; off by default).
    pub cache: Option<CacheSettings>,
}

impl std::fmt::Debug for RedisConfig {
    // The URL may hold a password: show only what is safe.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server", &redacted(&self.server_url))
            .field("prefix", &self.prefix)
            .field("ttl_slack", &self.ttl_slack)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("wait", &self.wait)
            .field("cache", &self.cache)
            .finish()
    }
}

/// The URL without user information, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable url>".into();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let tail = tail.split_once('?').map_or(tail, |(path, _)| path);
    format!("{scheme}://{host}{tail}")
}

/// A store URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not `redis://`, `rediss://`, `redis+sentinel://`, `redis+cluster://`
    /// or their `rediss+` forms.
    #[error(
        "a redis store URL starts with redis://, rediss://, redis+sentinel://, rediss+sentinel://, \
         redis+cluster:// or rediss+cluster://"
    )]
    Scheme,
    /// The sentinel list or master name of a `redis+sentinel://` URL.
    #[error("bad redis+sentinel URL: {0}")]
    Sentinel(&'static str),
    /// The node list of a `redis+cluster://` URL.
    #[error("bad redis+cluster URL: {0}")]
    Cluster(&'static str),
    /// A parameter a `redis+sentinel://` or `redis+cluster://` URL does not
    /// take (nothing is passed to redis-rs there).
    #[error("unknown parameter {0:?} in the redis store URL")]
    UnknownParameter(String),
    /// A parameter of ours has a bad value.
    #[error("bad value for {name} in the redis store URL: {reason}")]
    Parameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl RedisConfig {
    /// Parses a store URL (format in the module docs).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        let (tls, kind) = match scheme {
            "redis" => (false, Kind::Server),
            "rediss" => (true, Kind::Server),
            "redis+sentinel" => (false, Kind::Sentinel),
            "rediss+sentinel" => (true, Kind::Sentinel),
            "redis+cluster" => (false, Kind::Cluster),
            "rediss+cluster" => (true, Kind::Cluster),
            _ => return Err(ConfigError::Scheme),
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut config = RedisConfig {
            server_url: base.to_owned(),
            sentinel: (kind == Kind::Sentinel)
                .then(|| sentinel_target(base, tls))
                .transpose()?,
            cluster: (kind == Kind::Cluster).then(|| cluster_target(base, tls)).transpose()?,
            prefix: DEFAULT_PREFIX.to_owned(),
            ttl_slack: DEFAULT_TTL_SLACK,
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
            wait: None,
            cache: None,
        };
        let mut cache_entries = None;
        let mut cache_lag = None;
        let mut wait_replicas = None;
        let mut wait_timeout = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "prefix" => {
                    if value.contains(['{', '}']) {
                        return Err(ConfigError::Parameter {
                            name: "prefix",
                            reason: "must not contain { or }",
                        });
                    }
                    value.clone_into(&mut config.prefix);
                }
                "ttl_slack_secs" => {
                    let secs = value.parse::<u64>().map_err(|_| ConfigError::Parameter {
                        name: "ttl_slack_secs",
                        reason: "not a whole number of seconds",
                    })?;
                    config.ttl_slack = Duration::from_secs(secs);
                }
                "timeout_ms" => config.timeout = positive_ms("timeout_ms", value)?,
                "ca_file" => {
                    if !tls || value.is_empty() {
                        return Err(ConfigError::Parameter {
                            name: "ca_file",
                            reason: "needs a path, and a rediss:// URL",
                        });
                    }
                    config.ca_file = Some(value.into());
                }
                "wait_replicas" => {
                    let replicas = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ConfigError::Parameter {
                            name: "wait_replicas",
                            reason: "not a positive number of replicas",
                        })?;
                    wait_replicas = Some(replicas);
                }
                "wait_timeout_ms" => wait_timeout = Some(positive_ms("wait_timeout_ms", value)?),
                "cache_entries" => cache_entries = Some(value),
                "cache_lag_ms" => cache_lag = Some(value),
                // The cache of issue 17's first cut was bounded by an
                // entry's age; the exact one has no such knob, and a URL
                // that still names it must not pass it to redis-rs unread.
                "cache_stale_ms" => {
                    return Err(ConfigError::Parameter {
                        name: "cache_stale_ms",
                        reason: "no longer used: the cache is exact (see cache_entries)",
                    });
                }
                "shards" => {
                    let Some(target) = config.cluster.as_mut() else {
                        return Err(ConfigError::Parameter {
                            name: "shards",
                            reason: "only for a redis+cluster:// URL",
                        });
                    };
                    target.shards = value.parse::<u8>().ok().and_then(sessiond_core::Shards::new).ok_or(
                        ConfigError::Parameter {
                            name: "shards",
                            reason: "not a power of two from 1 to 64",
                        },
                    )?;
                }
                "sentinel_username" | "sentinel_password" => {
                    let Some(target) = config.sentinel.as_mut() else {
                        return Err(ConfigError::Parameter {
                            name: if name == "sentinel_username" {
                                "sentinel_username"
                            } else {
                                "sentinel_password"
                            },
                            reason: "only for a redis+sentinel:// URL",
                        });
                    };
                    let value = percent_decoded(value).ok_or(ConfigError::Sentinel("bad percent-encoding"))?;
                    if name == "sentinel_username" {
                        target.sentinel_username = Some(value);
                    } else {
                        target.sentinel_password = Some(value);
                    }
                }
                _ if kind != Kind::Server => return Err(ConfigError::UnknownParameter(name.to_owned())),
                _ => passed.push(pair),
            }
        }
        if let Some(replicas) = wait_replicas {
            let timeout = wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT);
            // WAIT holds the connection; past the response timeout the
            // client would give up first and never learn the count.
            if timeout >= config.timeout {
                return Err(ConfigError::Parameter {
                    name: "wait_timeout_ms",
                    reason: "must be shorter than timeout_ms",
                });
            }
            config.wait = Some(ReplicaWait { replicas, timeout });
        } else if wait_timeout.is_some() {
            return Err(ConfigError::Parameter {
                name: "wait_timeout_ms",
                reason: "needs wait_replicas",
            });
        }
        config.cache = CacheSettings::from_params(cache_entries, cache_lag).map_err(|e| ConfigError::Parameter {
            name: e.name,
            reason: e.reason,
        })?;
        if config.cache.is_some() && kind == Kind::Cluster {
            return Err(ConfigError::Parameter {
                name: "cache_entries",
                reason: "not for a redis+cluster URL yet",
            });
        }
        if !passed.is_empty() {
            config.server_url = format!("{base}?{}", passed.join("&"));
        }
        Ok(config)
    }

    /// Same server, another prefix (tests isolate themselves this way).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The shards a Cluster store spreads its sessions over (`shards`);
    /// `None` for one server or a Sentinel set.
    pub fn shards(&self) -> Option<sessiond_core::Shards> {
        self.cluster.as_ref().map(|c| c.shards)
    }
}

/// Which form of store URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Server,
    Sentinel,
    Cluster,
}

fn positive_ms(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or(ConfigError::Parameter {
            name,
            reason: "not a positive number of milliseconds",
        })
}

/// The user, password and addresses of `[user[:password]@]host[:port][,…]`;
/// an address without a port gets `default_port`.
type Hosts = (Option<String>, Option<String>, Vec<(String, u16)>);

fn hosts(authority: &str, default_port: u16) -> Result<Hosts, &'static str> {
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let decode = |text: &str| percent_decoded(text).ok_or("bad percent-encoding");
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = info.split_once(':').map_or((info, None), |(u, p)| (u, Some(p)));
            let user = Some(decode(user)?).filter(|u| !u.is_empty());
            (user, password.map(decode).transpose()?)
        }
    };
    let addresses = hosts
        .split(',')
        .map(|text| address(text, default_port))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((username, password, addresses))
}

/// `[user[:password]@]host[:port][,host[:port]…][/]`, after the scheme.
fn cluster_target(base: &str, tls: bool) -> Result<ClusterTarget, ConfigError> {
    let rest = base.split_once("://").map_or("", |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() {
        return Err(ConfigError::Cluster(
            "nothing may follow the nodes but a / (a cluster has no databases)",
        ));
    }
    let (username, password, nodes) = hosts(authority, DEFAULT_NODE_PORT).map_err(ConfigError::Cluster)?;
    Ok(ClusterTarget {
        nodes,
        shards: DEFAULT_SHARDS,
        tls,
        username,
        password,
    })
}

/// `[user[:password]@]host[:port][,host[:port]…]/master[/db]`, after the scheme.
fn sentinel_target(base: &str, tls: bool) -> Result<SentinelTarget, ConfigError> {
    let rest = base.split_once("://").map_or("", |(_, rest)| rest);
    let (authority, path) = rest
        .split_once('/')
        .ok_or(ConfigError::Sentinel("no master name after the sentinels (…/mymaster)"))?;
    let (username, password, sentinels) = hosts(authority, DEFAULT_SENTINEL_PORT).map_err(ConfigError::Sentinel)?;
    let decode = |text: &str| percent_decoded(text).ok_or(ConfigError::Sentinel("bad percent-encoding"));
    let (master, db) = path.split_once('/').unwrap_or((path, ""));
    let master = decode(master)?;
    if master.is_empty() {
        return Err(ConfigError::Sentinel("no master name after the sentinels (…/mymaster)"));
    }
    let db = match db.trim_end_matches('/') {
        "" => 0,
        db => db
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or(ConfigError::Sentinel(
                "the database after the master name is not a number",
            ))?,
    };
    Ok(SentinelTarget {
        sentinels,
        master,
        db,
        tls,
        username,
        password,
        sentinel_username: None,
        sentinel_password: None,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `default_port` when it
/// names none.
fn address(text: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an unclosed [ in an address")?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or("text after ] in an address")?),
        };
        (host, port)
    } else {
        text.split_once(':')
            .map_or((text, None), |(host, port)| (host, Some(port)))
    };
    if host.is_empty() {
        return Err("an empty address");
    }
    let port = match port {
        None => default_port,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("a port is not a number from 1 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            // from_str_radix would also take a sign ("%+1").
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_passed_on() {
        let c = RedisConfig::from_url("redis://u:pw@127.0.0.1:7000/2?prefix=a:b:&protocol=resp3&ttl_slack_secs=5")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server_url, "redis://u:pw@127.0.0.1:7000/2?protocol=resp3");
        assert_eq!(c.prefix, "a:b:");
        assert_eq!(c.ttl_slack, Duration::from_secs(5));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = RedisConfig::from_url("rediss://h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.prefix.as_str(), c.ttl_slack), (DEFAULT_PREFIX, DEFAULT_TTL_SLACK));
        assert_eq!(RedisConfig::from_url("http://h"), Err(ConfigError::Scheme));
        assert_eq!(
            RedisConfig::from_url("redis://h?prefix=x{y}"),
            Err(ConfigError::Parameter {
                name: "prefix",
                reason: "must not contain { or }"
            })
        );
        assert!(matches!(
            RedisConfig::from_url("redis://h?timeout_ms=0"),
            Err(ConfigError::Parameter { name: "timeout_ms", .. })
        ));
    }

    #[test]
    fn a_ca_file_is_only_for_tls() {
        let c = RedisConfig::from_url("rediss://h:6380?ca_file=/x/ca.pem").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ca_file.as_deref(), Some(std::path::Path::new("/x/ca.pem")));
        assert_eq!(c.server_url, "rediss://h:6380");
        assert!(matches!(
            RedisConfig::from_url("redis://h?ca_file=/x/ca.pem"),
            Err(ConfigError::Parameter { name: "ca_file", .. })
        ));
    }

    #[test]
    fn redaction_drops_credentials_and_parameters() {
        assert_eq!(redacted("redis://u:secret@h:1/0?prefix=x"), "redis://h:1/0");
        assert_eq!(redacted("redis://h"), "redis://h");
    }

    fn sentinel_of(url: &str) -> SentinelTarget {
        let config = RedisConfig::from_url(url).unwrap_or_else(|e| panic!("{e}"));
        config
            .sentinel
            .unwrap_or_else(|| panic!("{url} is not read as sentinel"))
    }

    #[test]
    fn a_sentinel_url_lists_the_sentinels_then_the_master_and_db() {
        let t = sentinel_of("redis+sentinel://:p%40ss@10.0.0.1:26380,s2,[::1]:5000/my%2Dmaster/3?sentinel_password=sp");
        assert_eq!(
            t.sentinels,
            [
                ("10.0.0.1".to_owned(), 26380),
                ("s2".to_owned(), DEFAULT_SENTINEL_PORT),
                ("::1".to_owned(), 5000)
            ]
        );
        assert_eq!((t.master.as_str(), t.db, t.tls), ("my-master", 3, false));
        assert_eq!((t.username, t.password.as_deref()), (None, Some("p@ss")));
        assert_eq!(t.sentinel_password.as_deref(), Some("sp"));
        let t = sentinel_of("rediss+sentinel://app:pw@h/m");
        assert_eq!((t.db, t.tls, t.username.as_deref()), (0, true, Some("app")));
    }

    #[test]
    fn our_parameters_apply_to_sentinel_urls_and_nothing_else_is_taken() {
        let c = RedisConfig::from_url("redis+sentinel://h/m?prefix=x:&timeout_ms=900&wait_replicas=1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.prefix.as_str(), c.timeout), ("x:", Duration::from_millis(900)));
        assert_eq!(
            c.wait,
            Some(ReplicaWait {
                replicas: 1,
                timeout: DEFAULT_WAIT_TIMEOUT
            })
        );
        assert_eq!(
            RedisConfig::from_url("redis+sentinel://h/m?protocol=resp3"),
            Err(ConfigError::UnknownParameter("protocol".into()))
        );
    }

    #[test]
    fn bad_sentinel_urls_say_what_is_wrong() {
        for (url, reason) in [
            (
                "redis+sentinel://h1,h2",
                "no master name after the sentinels (…/mymaster)",
            ),
            (
                "redis+sentinel://h1/",
                "no master name after the sentinels (…/mymaster)",
            ),
            ("redis+sentinel://h1,,h2/m", "an empty address"),
            ("redis+sentinel:///m", "an empty address"),
            ("redis+sentinel://h:0/m", "a port is not a number from 1 to 65535"),
            ("redis+sentinel://h:x/m", "a port is not a number from 1 to 65535"),
            ("redis+sentinel://[::1/m", "an unclosed [ in an address"),
            ("redis+sentinel://[::1]x/m", "text after ] in an address"),
            (
                "redis+sentinel://h/m/x",
                "the database after the master name is not a number",
            ),
            ("redis+sentinel://:%zz@h/m", "bad percent-encoding"),
            ("redis+sentinel://h/m%2", "bad percent-encoding"),
        ] {
            assert_eq!(RedisConfig::from_url(url), Err(ConfigError::Sentinel(reason)), "{url}");
        }
        assert_eq!(
            RedisConfig::from_url("redis+sentinel://h/m?ca_file=/ca.pem"),
            Err(ConfigError::Parameter {
                name: "ca_file",
                reason: "needs a path, and a rediss:// URL"
            })
        );
        assert_eq!(
            RedisConfig::from_url("redis://h?sentinel_password=x"),
            Err(ConfigError::Parameter {
                name: "sentinel_password",
                reason: "only for a redis+sentinel:// URL"
            })
        );
        assert_eq!(
            ConfigError::Sentinel("an empty address").to_string(),
            "bad redis+sentinel URL: an empty address"
        );
    }

    fn cluster_of(url: &str) -> (RedisConfig, ClusterTarget) {
        let config = RedisConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let target = config.cluster.clone().unwrap_or_else(|| panic!("{url}: no cluster"));
        (config, target)
    }

    #[test]
    fn a_cluster_url_lists_nodes_and_may_name_its_shards() {
        let (config, target) = cluster_of("redis+cluster://u%40x:p%3Aw@n1:7000,n2,[::1]:7002/?prefix=app:");
        assert_eq!(
            target.nodes,
            vec![
                ("n1".to_owned(), 7000),
                ("n2".to_owned(), DEFAULT_NODE_PORT),
                ("::1".to_owned(), 7002)
            ]
        );
        assert_eq!(target.username.as_deref(), Some("u@x"));
        assert_eq!(target.password.as_deref(), Some("p:w"));
        assert!(!target.tls);
        assert!(config.shards().is_some() && config.sentinel.is_none());
        assert_eq!(config.shards(), Some(DEFAULT_SHARDS));
        assert_eq!(config.prefix, "app:");
        let (config, target) =
            cluster_of("rediss+cluster://n1?wait_replicas=1&timeout_ms=900&ca_file=/ca.pem&shards=8");
        assert!(target.tls);
        assert_eq!(config.shards().map(sessiond_core::Shards::count), Some(8));
        assert_eq!(config.wait.map(|w| w.replicas), Some(1));
        assert_eq!(config.ca_file.as_deref(), Some(std::path::Path::new("/ca.pem")));
        // Not a cluster: no shards.
        let plain = RedisConfig::from_url("redis://h?prefix=app:").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.shards(), None);
    }

    #[test]
    fn bad_cluster_urls_say_what_is_wrong() {
        for (url, reason) in [
            ("redis+cluster://n1,,n2", "an empty address"),
            ("redis+cluster://", "an empty address"),
            ("redis+cluster://n1:99999", "a port is not a number from 1 to 65535"),
            (
                "redis+cluster://n1/0",
                "nothing may follow the nodes but a / (a cluster has no databases)",
            ),
            ("redis+cluster://%zz@n1", "bad percent-encoding"),
        ] {
            assert_eq!(RedisConfig::from_url(url), Err(ConfigError::Cluster(reason)), "{url}");
        }
        assert_eq!(
            RedisConfig::from_url("redis+cluster://n1?protocol=resp3"),
            Err(ConfigError::UnknownParameter("protocol".into()))
        );
        assert_eq!(
            RedisConfig::from_url("redis+cluster://n1?cache_entries=10"),
            Err(ConfigError::Parameter {
                name: "cache_entries",
                reason: "not for a redis+cluster URL yet"
            })
        );
        let sentinel = RedisConfig::from_url("redis+sentinel://s1/m?cache_entries=10");
        let entries = std::num::NonZeroUsize::new(10).unwrap_or(std::num::NonZeroUsize::MIN);
        assert_eq!(
            sentinel.map(|c| c.cache),
            Ok(Some(CacheSettings {
                entries,
                max_lag: Duration::ZERO
            }))
        );
        assert_eq!(
            RedisConfig::from_url("redis+cluster://n1?ca_file=/ca.pem"),
            Err(ConfigError::Parameter {
                name: "ca_file",
                reason: "needs a path, and a rediss:// URL"
            })
        );
        assert_eq!(RedisConfig::from_url("redis+clusters://n1"), Err(ConfigError::Scheme));
        for bad in ["0", "3", "128", "x", ""] {
            assert_eq!(
                RedisConfig::from_url(&format!("redis+cluster://n1?shards={bad}")),
                Err(ConfigError::Parameter {
                    name: "shards",
                    reason: "not a power of two from 1 to 64"
                }),
                "{bad}"
            );
        }
        assert_eq!(
            RedisConfig::from_url("redis://h?shards=4"),
            Err(ConfigError::Parameter {
                name: "shards",
                reason: "only for a redis+cluster:// URL"
            })
        );
    }

    #[test]
    fn waiting_for_replicas_is_bounded_by_the_timeout() {
        let c =
            RedisConfig::from_url("redis://h?wait_replicas=2&wait_timeout_ms=250").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.wait,
            Some(ReplicaWait {
                replicas: 2,
                timeout: Duration::from_millis(250)
            })
        );
        assert_eq!(c.server_url, "redis://h");
        assert_eq!(RedisConfig::from_url("redis://h").map(|c| c.wait), Ok(None));
        for (url, name, reason) in [
            (
                "redis://h?wait_replicas=0",
                "wait_replicas",
                "not a positive number of replicas",
            ),
            (
                "redis://h?wait_replicas=1&wait_timeout_ms=0",
                "wait_timeout_ms",
                "not a positive number of milliseconds",
            ),
            (
                "redis://h?wait_replicas=1&wait_timeout_ms=2000",
                "wait_timeout_ms",
                "must be shorter than timeout_ms",
            ),
            (
                "redis://h?wait_timeout_ms=100",
                "wait_timeout_ms",
                "needs wait_replicas",
            ),
        ] {
            assert_eq!(
                RedisConfig::from_url(url),
                Err(ConfigError::Parameter { name, reason }),
                "{url}"
            );
        }
    }

    #[test]
    fn sentinel_urls_are_redacted_too() {
        let url = "redis+sentinel://app:s3cret@h1:1,h2:2/m/0?sentinel_password=s3cret";
        assert_eq!(redacted(url), "redis+sentinel://h1:1,h2:2/m/0");
        let c = RedisConfig::from_url(url).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
