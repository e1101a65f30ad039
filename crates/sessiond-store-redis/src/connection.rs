//! The connection every call goes through: to one server (a redis-rs
//! `ConnectionManager`, which reconnects to that address by itself), to
//! the master a set of sentinels names, found again after a failover, or
//! to a Redis Cluster (redis-rs' cluster connection, which follows slots
//! as they move and nodes as they fail over); and, when the URL asks for
//! it, `WAIT` for replicas after each write.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ProtocolVersion, RedisError, RedisFuture, Role, TlsMode, Value,
};
use tokio::sync::OnceCell;

use crate::config::{ClusterTarget, RedisConfig, ReplicaWait, SentinelTarget};
use crate::error::{is_failover_state, is_unreachable};
use crate::scripts::is_read_only_script;
use crate::store::OpenError;

/// After a search for the master (or the opening of the node-local cache's
/// connection) failed, calls within this long fail at once instead of
/// trying again: under load every waiting request would otherwise try in
/// turn.
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where a store's connections come from.
pub(crate) enum Link {
    /// One server; the manager is made on first use. Boxed: a client is
    /// far larger than the other variant's pointer.
    Server(Box<ServerLink>),
    /// The master the sentinels name.
    Sentinel(Arc<SentinelLink>),
    /// A Redis Cluster. Boxed like a server's.
    Cluster(Box<ClusterLink>),
}

impl Link {
    /// The link for `config`; opens nothing yet.
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, OpenError> {
        if let Some(target) = &config.cluster {
            return Ok(Link::Cluster(Box::new(ClusterLink::new(config, target)?)));
        }
        match &config.sentinel {
            None => Ok(Link::Server(Box::new(ServerLink {
                client: crate::tls::client(config)?,
                manager: OnceCell::new(),
            }))),
            Some(target) => Ok(Link::Sentinel(Arc::new(SentinelLink::new(config, target)?))),
        }
    }

    /// A connection to the server or the current master.
    pub(crate) async fn connection(&self, config: &RedisConfig) -> Result<Connection, RedisError> {
        match self {
            Link::Server(server) => {
                let ServerLink { client, manager } = &**server;
                let timeout = config.timeout;
                let manager = manager
                    .get_or_try_init(|| {
                        // Few, short retries: a caller waiting on a dead server gets
                        // "unavailable" within about one timeout, and the next call
                        // starts a new attempt, so recovery needs no restart.
                        let settings = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(timeout))
                            .set_response_timeout(Some(timeout))
                            .set_number_of_retries(1)
                            .set_max_delay(Duration::from_millis(200));
                        ConnectionManager::new_with_config(client.clone(), settings)
                    })
                    .await?;
                Ok(Connection {
                    kind: Kind::Managed(manager.clone()),
                    wait: config.wait,
                    found: None,
                    slot: None,
                })
            }
            Link::Sentinel(link) => {
                let (generation, connection) = link.master().await?;
                Ok(Connection {
                    kind: Kind::Plain(connection),
                    wait: config.wait,
                    found: Some((Arc::clone(link), generation)),
                    slot: None,
                })
            }
            Link::Cluster(cluster) => {
                let ClusterLink { client, connection } = &**cluster;
                let connection = connection.get_or_try_init(|| client.get_async_connection()).await?;
                Ok(Connection {
                    kind: Kind::Cluster(connection.clone()),
                    wait: config.wait,
                    found: None,
                    slot: None,
                })
            }
        }
    }
}

/// A cluster's client and its one connection (multiplexed, to each node).
pub(crate) struct ClusterLink {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

impl ClusterLink {
    fn new(config: &RedisConfig, target: &ClusterTarget) -> Result<Self, OpenError> {
        let scheme = if target.tls { "rediss" } else { "redis" };
        let nodes = target.nodes.iter().map(|(host, port)| {
            // redis-rs reads IPv6 addresses in brackets.
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            format!("{scheme}://{host}:{port}")
        });
        // Few, short retries, as for one server: a caller waiting on a
        // cluster that lost a slot's master gets "unavailable" within about
        // one timeout; the client keeps following moves and failovers.
        let mut builder = ClusterClientBuilder::new(nodes.collect::<Vec<_>>())
            .connection_timeout(config.timeout)
            .response_timeout(config.timeout)
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(200);
        if let Some(user) = &target.username {
            builder = builder.username(user);
        }
        if let Some(password) = &target.password {
            builder = builder.password(password);
        }
        if target.tls {
            crate::tls::install_provider();
            builder = builder.tls(TlsMode::Secure);
            if let Some(certificates) = crate::tls::certificates(config)? {
                builder = builder.certs(certificates);
            }
        }
        Ok(Self {
            client: builder.build().map_err(OpenError::Client)?,
            connection: OnceCell::new(),
        })
    }
}

/// One server's client and its connection manager.
pub(crate) struct ServerLink {
    client: Client,
    manager: OnceCell<ConnectionManager>,
}

/// The sentinels, and the master connection they last led to.
pub(crate) struct SentinelLink {
    /// Held while searching, so one search runs at a time.
    search: tokio::sync::Mutex<Search>,
    /// The master connection in use and its generation; `None` once a call
    /// on it failed as unreachable, so the next call searches again.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    settings: AsyncConnectionConfig,
    timeout: Duration,
}

struct Search {
    client: SentinelClient,
    generation: u64,
    failed_at: Option<Instant>,
}

/// A client of `target`'s sentinels that leads to the master they name,
/// speaking `protocol` to it (the node-local cache's connection needs
/// RESP3).
pub(crate) fn sentinel_client(
    config: &RedisConfig,
    target: &SentinelTarget,
    protocol: ProtocolVersion,
) -> Result<SentinelClient, OpenError> {
    let addresses = target.sentinels.iter().map(|(host, port)| {
        if target.tls {
            ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.clone(), *port)
        }
    });
    let mut builder = SentinelClientBuilder::new(addresses, &target.master, SentinelServerType::Master)
        .map_err(OpenError::Client)?
        .set_client_to_redis_db(target.db);
    if let Some(user) = &target.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &target.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(user) = &target.sentinel_username {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = &target.sentinel_password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if target.tls {
        crate::tls::install_provider();
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certificates) = crate::tls::certificates(config)? {
            builder = builder
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates);
        }
    }
    builder
        .set_client_to_redis_protocol(protocol)
        .build()
        .map_err(OpenError::Client)
}

impl SentinelLink {
    fn new(config: &RedisConfig, target: &SentinelTarget) -> Result<Self, OpenError> {
        Ok(Self {
            search: tokio::sync::Mutex::new(Search {
                client: sentinel_client(config, target, ProtocolVersion::RESP2)?,
                generation: 0,
                failed_at: None,
            }),
            current: Mutex::new(None),
            settings: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout)),
            timeout: config.timeout,
        })
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets the connection of `generation` (if it is still the current
    /// one), so the next call asks the sentinels again.
    fn lost(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }

    /// The current master connection, or a new one the sentinels lead to;
    /// the whole search is bounded by the timeout.
    async fn master(&self) -> Result<(u64, MultiplexedConnection), RedisError> {
        if let Some(found) = self.current() {
            return Ok(found);
        }
        let search = async {
            let mut search = self.search.lock().await;
            // Another call may have found it while this one waited.
            if let Some(found) = self.current() {
                return Ok(found);
            }
            if search.failed_at.is_some_and(|at| at.elapsed() < RETRY_BACKOFF) {
                return Err(unavailable("the search for the redis master failed moments ago"));
            }
            match self.find(&mut search.client).await {
                Ok(connection) => {
                    search.generation += 1;
                    search.failed_at = None;
                    let found = (search.generation, connection);
                    *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(found.clone());
                    Ok(found)
                }
                Err(error) => {
                    search.failed_at = Some(Instant::now());
                    Err(error)
                }
            }
        };
        tokio::time::timeout(self.timeout, search)
            .await
            .unwrap_or_else(|_| Err(unavailable("no sentinel led to the redis master in time")))
    }

    async fn find(&self, client: &mut SentinelClient) -> Result<MultiplexedConnection, RedisError> {
        let master = client.async_get_client().await?;
        let mut connection = master
            .get_multiplexed_async_connection_with_config(&self.settings)
            .await?;
        // redis-rs checked the role on a connection of its own; a failover
        // may have come in between, so check again on the one we keep.
        let role: Role = redis::cmd("ROLE").query_async(&mut connection).await?;
        match role {
            Role::Primary { .. } => Ok(connection),
            _ => Err(unavailable("the server the sentinels named is not a master (yet)")),
        }
    }
}

/// An I/O-kind error, so it maps to [`StoreError::Unavailable`](sessiond_core::StoreError::Unavailable).
pub(crate) fn unavailable(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::other(what))
}

/// One call's connection: redis-rs' commands and scripts run on it as on
/// any connection. It reports failures that mean "the master is gone" to
/// the sentinel link, and waits for replicas after writes.
pub(crate) struct Connection {
    kind: Kind,
    wait: Option<ReplicaWait>,
    /// The sentinel link and the generation of this connection.
    found: Option<(Arc<SentinelLink>, u64)>,
    /// On a Cluster with `wait_replicas`, the slot of the last command that
    /// named a key: where `WAIT` goes.
    slot: Option<Slot>,
}

enum Kind {
    Managed(ConnectionManager),
    Plain(MultiplexedConnection),
    /// A cluster connection: redis-rs routes each command by its key.
    Cluster(ClusterConnection),
}

impl Connection {
    /// Sends `cmd` and tells the link if the reply says the master is gone.
    async fn send(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        let reply = match &mut self.kind {
            Kind::Managed(c) => c.req_packed_command(cmd).await,
            Kind::Plain(c) => c.req_packed_command(cmd).await,
            Kind::Cluster(c) => match (is_wait(cmd), self.slot) {
                (true, Some(slot)) => {
                    // Sent where the write went: the master of its slot.
                    let route = Route::with_slot(slot, SlotAddr::Master);
                    c.route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await
                }
                _ => {
                    // Only a WAIT to come needs the slot.
                    if self.wait.is_some()
                        && let Some(key) = first_key(cmd)
                    {
                        self.slot = Some(Slot::for_key(key));
                    }
                    c.req_packed_command(cmd).await
                }
            },
        };
        let gone = match &reply {
            Err(error) => is_unreachable(error),
            // Server errors arrive as values; READONLY is a demoted master.
            Ok(Value::ServerError(error)) => error.kind().is_some_and(is_failover_state),
            Ok(_) => false,
        };
        if gone && let Some((link, generation)) = &self.found {
            link.lost(*generation);
        }
        reply
    }

    /// `WAIT`: fails unless enough replicas confirmed every earlier write
    /// on this connection (other calls' writes on it too, which is only
    /// stricter).
    async fn wait_for_replicas(&mut self, wait: ReplicaWait) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("WAIT");
        let ms = u64::try_from(wait.timeout.as_millis()).unwrap_or(u64::MAX);
        cmd.arg(wait.replicas).arg(ms);
        // Any refusal means the write was not confirmed, and it was already
        // applied: unavailable, not a request error. (A cluster client whose
        // slot map is a failover behind sends WAIT to the demoted master,
        // which answers "WAIT cannot be used with replica instances".)
        let confirmed: i64 = self
            .send(&cmd)
            .await?
            .extract_error()
            .and_then(|value| redis::from_redis_value(value).map_err(RedisError::from))
            .map_err(|refused| {
                RedisError::from(std::io::Error::other(format!(
                    "the replicas of the write could not be counted: {refused}"
                )))
            })?;
        if confirmed < i64::from(wait.replicas) {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{confirmed} of {} replicas confirmed the write within {ms} ms",
                    wait.replicas
                ),
            )));
        }
        Ok(())
    }
}

/// Whether `cmd` is `WAIT`, which names no key for redis-rs to route it
/// by, yet must reach the master the call's write went to (redis-rs would
/// ask every master and answer the least count).
fn is_wait(cmd: &Cmd) -> bool {
    let name = cmd.args_iter().next().and_then(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    name.is_some_and(|name| name.eq_ignore_ascii_case(b"WAIT"))
}

/// The first key `cmd` names, as this crate sends commands: a script's
/// first key, or the argument after the name of any other command but the
/// keyless ones.
fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()??.to_ascii_uppercase();
    match name.as_slice() {
        b"EVALSHA" | b"EVAL" => {
            let _script = args.next();
            let count = std::str::from_utf8(args.next()??).ok()?.parse::<usize>().ok()?;
            if count == 0 { None } else { args.next()? }
        }
        b"PING" | b"WAIT" | b"SCRIPT" | b"ROLE" => None,
        _ => args.next()?,
    }
}

/// Whether `cmd` may write, so a write is followed by `WAIT`: everything
/// but the reads this crate sends and the scripts declared `no-writes`.
fn may_write(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let Some(name) = args.next() else { return false };
    let name = name.to_ascii_uppercase();
    match name.as_slice() {
        b"EVALSHA" | b"EVAL" => !args.next().is_some_and(is_read_only_script),
        b"GET" | b"HMGET" | b"HSCAN" | b"ZREVRANGEBYLEX" | b"SMEMBERS" | b"PING" | b"ROLE" | b"SCRIPT" | b"WAIT" => {
            false
        }
        _ => true,
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let value = self.send(cmd).await?;
            // A refused write wrote nothing: no need to wait for it.
            if let Some(wait) = self.wait
                && !matches!(value, Value::ServerError(_))
                && may_write(cmd)
            {
                self.wait_for_replicas(wait).await?;
            }
            Ok(value)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // This crate sends no pipelines (every multi-key change is one
        // script); should one appear, it waits for replicas as a write.
        Box::pin(async move {
            let reply = match &mut self.kind {
                Kind::Managed(c) => c.req_packed_commands(pipeline, offset, count).await,
                Kind::Plain(c) => c.req_packed_commands(pipeline, offset, count).await,
                Kind::Cluster(c) => c.req_packed_commands(pipeline, offset, count).await,
            };
            if let Err(error) = &reply
                && is_unreachable(error)
                && let Some((link, generation)) = &self.found
            {
                link.lost(*generation);
            }
            let values = reply?;
            if let Some(wait) = self.wait {
                self.wait_for_replicas(wait).await?;
            }
            Ok(values)
        })
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            Kind::Managed(c) => c.get_db(),
            Kind::Plain(c) => c.get_db(),
            Kind::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_read_only_scripts_need_no_wait() {
        let read_hash = crate::scripts::SCRIPTS.read.get_hash().to_owned();
        let write_hash = crate::scripts::SCRIPTS.insert.get_hash().to_owned();
        assert!(!may_write(redis::cmd("EVALSHA").arg(&read_hash).arg(1)));
        assert!(may_write(redis::cmd("EVALSHA").arg(&write_hash).arg(1)));
        assert!(!may_write(
            redis::cmd("EVAL").arg("#!lua flags=no-writes\nreturn 1").arg(0)
        ));
        assert!(may_write(redis::cmd("EVAL").arg("#!lua\nreturn 1").arg(0)));
        assert!(!may_write(redis::cmd("hmget").arg("k").arg("f")));
        // The walk over ids (`scan_ids`) reads the id buckets.
        assert!(!may_write(redis::cmd("HSCAN").arg("b").arg(0)));
        let due_hash = crate::scripts::SCRIPTS.due.get_hash().to_owned();
        assert!(!may_write(redis::cmd("EVALSHA").arg(&due_hash).arg(1)));
        assert!(may_write(redis::cmd("DEL").arg("k")));
    }

    #[test]
    fn only_wait_is_sent_to_the_last_writes_master() {
        for wait in ["WAIT", "wait"] {
            assert!(is_wait(&redis::cmd(wait)), "{wait}");
        }
        for other in ["GET", "EVALSHA", "HSCAN", "WAITAOF", "PING"] {
            assert!(!is_wait(&redis::cmd(other)), "{other}");
        }
    }

    #[test]
    fn the_first_key_is_a_scripts_first_key_or_the_first_argument() {
        let key = |cmd: &Cmd| first_key(cmd).map(|k| String::from_utf8_lossy(k).into_owned());
        assert_eq!(
            key(redis::cmd("EVALSHA").arg("abc").arg(2).arg("k1").arg("k2")).as_deref(),
            Some("k1")
        );
        assert_eq!(key(redis::cmd("evalsha").arg("abc").arg(0).arg("arg")), None);
        assert_eq!(key(redis::cmd("GET").arg("k")).as_deref(), Some("k"));
        assert_eq!(key(redis::cmd("HMGET").arg("h").arg("f")).as_deref(), Some("h"));
        assert_eq!(key(&redis::cmd("PING")), None);
        assert_eq!(key(redis::cmd("WAIT").arg(1).arg(100)), None);
        assert_eq!(key(redis::cmd("HSCAN").arg("b").arg(0)).as_deref(), Some("b"));
    }
}
