//! The node-local cache of records read by their current token
//! (`cache_entries`): a verify of a hot session is answered from memory,
//! and still fails on every node once a revocation elsewhere was
//! acknowledged.
//!
//! Why a hit is never stale, in three steps:
//!
//! 1. The cache reads through a connection of its own with `CLIENT TRACKING
//!    ON` (RESP3). Once it has read a key, Redis sends an invalidation
//!    message on that connection when any client changes the key, or when
//!    the key expires or is evicted.
//! 2. Redis writes one connection's messages in order, and redis-rs hands
//!    push messages to [`Shared::invalidate`] from its read loop, before it
//!    completes any reply that came after them.
//! 3. A hit is answered only after a `PING` sent on that connection *after
//!    the verify began* has come back. A write acknowledged before the
//!    verify began ran on the server before that `PING`, so its
//!    invalidation came before the `PONG` and has removed the entry.
//!
//! One `PING` serves every verify that waits when it is sent ([`Barrier`]),
//! so under load Redis answers one `PING` per batch of verifies instead of
//! one `GET` each, and the node decodes nothing.
//!
//! With a lag bound (`cache_lag_ms`, off by default) step 3 is relaxed to
//! "a `PING` sent at most that long before the verify began has come back".
//! A write acknowledged more than the bound before the verify began ran
//! before that `PING` was sent, so the same argument holds for it; only
//! writes acknowledged within the bound may still be answered from memory.
//! A hit then waits for nothing while `PING`s keep coming back: one is sent
//! ahead whenever a hit finds the last answered one older than half the
//! bound. When none is fresh enough (an idle node, a slow or lost
//! connection), the hit waits for a new one exactly as without the bound.
//! The node's own session writes stay exact: each one, once Redis has
//! answered it, makes later hits wait for a `PING` sent after that
//! ([`NodeCache::wrote`]), so a node never answers from memory what it
//! has itself just revoked or rotated.
//!
//! A fill races invalidations: the invalidation for a key can follow the
//! reply to its `GET` so closely that the read loop handles it before the
//! reader stores the record. So a reader first marks the key with a ticket,
//! an invalidation removes the mark, and the record is stored only while
//! its mark is still there.
//!
//! A lost connection (redis-rs reports it as a push, or a `PING` or `GET`
//! on it fails or times out) empties the cache before anything else is
//! answered from it; the next call opens a new connection.
//!
//! Under Sentinel the cache's connection goes to the master the sentinels
//! name when it opens, and its barrier is `ROLE` instead of `PING`: a hit
//! is answered only while that server still says it is the master. After a
//! failover the old master is gone (its connection fails), or Sentinel
//! demotes it (its `ROLE` says replica, and Sentinel closes its clients),
//! so the cache empties and the next call follows the sentinels to the new
//! master. The limit is the store's own: a master cut off from the
//! sentinels but still reachable by this node keeps answering it until
//! Sentinel demotes it.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use lru::LruCache;
use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, RedisError, Role, Value};
use sessiond_core::{Session, TokenHash, TokenHashBuildHasher};
use tokio::sync::watch;

use crate::connection::{RETRY_BACKOFF, unavailable};

/// Where the cache's connection goes.
pub(crate) enum Source {
    /// One server; the client speaks RESP3.
    Server(Client),
    /// The master the sentinels name when the connection opens; the
    /// client leads to it speaking RESP3.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The node-local cache and the connection that keeps it in step.
pub(crate) struct NodeCache {
    source: Source,
    /// What every token key starts with (`Pt:`).
    token_prefix: Vec<u8>,
    /// How long before a verify the `PING` that lets it hit may have been
    /// sent (`cache_lag_ms`); zero: after the verify began.
    max_lag: Duration,
    /// What the barriers' times count from.
    epoch: Instant,
    /// When this node's last session write was answered, in nanoseconds
    /// since `epoch`, plus one; 0 while none was (lag bound only).
    written: Arc<AtomicU64>,
    timeout: Duration,
    shared: Arc<Shared>,
    /// Held while opening a connection, so one opens at a time; holds when
    /// the last attempt failed.
    opening: tokio::sync::Mutex<Option<Instant>>,
}

/// What invalidations change: the entries and the connection they follow.
struct Shared {
    state: Mutex<State>,
    statistics: Arc<Counts>,
}

struct State {
    /// Keyed by token hash rather than key name: the hash is already
    /// uniform, so lookups skip hashing 70-odd bytes of key (the `String`
    /// keyed map was 3 % of a cached verify's CPU in `perf`). Unbounded to
    /// the `lru` crate, which would allocate the whole table up front, and
    /// bounded by [`State::put`]: a table sized to the entries in use
    /// keeps a lookup's probes in the processor's caches (the preallocated
    /// one was the node's costliest symbol, 4.5 % of a cached verify's CPU,
    /// nearly all of it waiting on memory).
    entries: LruCache<TokenHash, Slot, TokenHashBuildHasher>,
    capacity: NonZeroUsize,
    /// Moves on with every connection, so a late message of an old one
    /// changes nothing.
    generation: u64,
    tracked: Option<Arc<Tracked>>,
    next_ticket: u64,
}

enum Slot {
    /// A reader's `GET` is on its way; the ticket names the reader.
    Filling(u64),
    Ready(Arc<Entry>),
}

/// A cached record, and whether it is still what Redis holds: a hit looks
/// it up once before its barrier and reads the flag after, instead of
/// looking it up again.
struct Entry {
    session: Arc<Session>,
    /// Cleared when the entry leaves the cache for any reason (changed,
    /// evicted, connection lost), always under the state's lock.
    live: AtomicBool,
}

/// One tracking connection and its barrier.
struct Tracked {
    generation: u64,
    connection: MultiplexedConnection,
    /// The barrier asks `ROLE` and passes only on a master (Sentinel).
    master_only: bool,
    barrier: Barrier,
    statistics: Arc<Counts>,
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// Served from memory, after the barrier.
    Hit(Arc<Session>),
    /// Read from Redis on the cache's connection; hand the decoded record
    /// to [`NodeCache::fill`].
    Read(Value, Fill),
}

/// The mark a read left, to store its record under.
pub(crate) struct Fill {
    hash: TokenHash,
    generation: u64,
    ticket: u64,
}

/// Counts since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStatistics {
    /// Verifies answered from memory.
    pub hits: u64,
    /// Verifies that read Redis.
    pub misses: u64,
    /// Keys Redis said had changed (a flush of everything counts once).
    pub invalidations: u64,
    /// `PING`s sent as barriers: far fewer than hits under load.
    pub barriers: u64,
}

#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    barriers: AtomicU64,
}

impl NodeCache {
    /// A cache of at most `entries` records whose token keys start with
    /// `token_prefix`, read from `source`.
    /// `max_lag` is the bound of `cache_lag_ms` (zero: exact).
    pub(crate) fn new(
        source: Source,
        token_prefix: &str,
        entries: NonZeroUsize,
        max_lag: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            source,
            token_prefix: token_prefix.as_bytes().to_vec(),
            max_lag,
            epoch: Instant::now(),
            written: Arc::new(AtomicU64::new(0)),
            timeout,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    entries: LruCache::unbounded_with_hasher(TokenHashBuildHasher::default()),
                    capacity: entries,
                    generation: 0,
                    tracked: None,
                    next_ticket: 0,
                }),
                statistics: Arc::default(),
            }),
            opening: tokio::sync::Mutex::new(None),
        }
    }

    /// The record of token `hash` (under `key`) from memory, or the value
    /// Redis holds there.
    pub(crate) async fn get(&self, key: &[u8], hash: &TokenHash) -> Result<Lookup, RedisError> {
        let tracked = self.tracked().await?;
        if let Some(entry) = self.shared.ready(&tracked, hash) {
            if let Err(error) = tracked.barrier.pass(&tracked).await {
                self.shared.lost(tracked.generation);
                return Err(error);
            }
            // Read after the barrier: an invalidation may have come
            // meanwhile, and one that came before the barrier's answer has
            // cleared the flag by now.
            if entry.live.load(Ordering::Acquire) {
                self.shared.statistics.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Lookup::Hit(Arc::clone(&entry.session)));
            }
        }
        self.shared.statistics.misses.fetch_add(1, Ordering::Relaxed);
        let fill = self.shared.mark(&tracked, hash);
        let mut connection = tracked.connection.clone();
        match redis::cmd("GET").arg(key).query_async::<Value>(&mut connection).await {
            Ok(value) => Ok(Lookup::Read(value, fill)),
            Err(error) => {
                self.shared.lost(tracked.generation);
                Err(error)
            }
        }
    }

    /// Stores `session` as what the read of `fill` found, unless the key
    /// changed since (or the connection did); `None` only clears the mark.
    pub(crate) fn fill(&self, fill: Fill, session: Option<&Arc<Session>>) {
        let mut state = self.shared.lock();
        if state.generation != fill.generation {
            return;
        }
        if !matches!(state.entries.peek(&fill.hash), Some(Slot::Filling(t)) if *t == fill.ticket) {
            return;
        }
        match session {
            Some(session) => {
                let entry = Entry {
                    session: Arc::clone(session),
                    live: AtomicBool::new(true),
                };
                state.put(fill.hash, Slot::Ready(Arc::new(entry)));
            }
            None => {
                state.remove(&fill.hash);
            }
        }
    }

    /// Tells the cache that a session write of this node was answered
    /// (applied or not), so under a lag bound no later hit passes on a
    /// `PING` sent before it. Exact caches need nothing.
    pub(crate) fn wrote(&self) {
        if !self.max_lag.is_zero() {
            self.written.fetch_max(since(self.epoch) + 1, Ordering::Release);
        }
    }

    /// The counts so far.
    pub(crate) fn statistics(&self) -> CacheStatistics {
        let counts = &self.shared.statistics;
        CacheStatistics {
            hits: counts.hits.load(Ordering::Relaxed),
            misses: counts.misses.load(Ordering::Relaxed),
            invalidations: counts.invalidations.load(Ordering::Relaxed),
            barriers: counts.barriers.load(Ordering::Relaxed),
        }
    }

    /// The tracking connection in use, or a new one.
    async fn tracked(&self) -> Result<Arc<Tracked>, RedisError> {
        if let Some(tracked) = self.shared.lock().tracked.clone() {
            return Ok(tracked);
        }
        let mut failed_at = self.opening.lock().await;
        if let Some(tracked) = self.shared.lock().tracked.clone() {
            return Ok(tracked);
        }
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_BACKOFF) {
            return Err(unavailable("the cache's connection to redis failed moments ago"));
        }
        let generation = {
            let mut state = self.shared.lock();
            state.generation += 1;
            state.clear();
            state.generation
        };
        let opened = tokio::time::timeout(self.timeout, self.open(generation))
            .await
            .unwrap_or_else(|_| Err(unavailable("redis did not accept the cache's connection in time")));
        match opened {
            Ok(connection) => {
                *failed_at = None;
                let tracked = Arc::new(Tracked {
                    generation,
                    connection,
                    master_only: matches!(self.source, Source::Sentinel(_)),
                    barrier: Barrier::new(self.max_lag, self.epoch, Arc::clone(&self.written)),
                    statistics: Arc::clone(&self.shared.statistics),
                });
                let mut state = self.shared.lock();
                if state.generation != generation {
                    // Lost again before it was used.
                    return Err(unavailable("the cache's connection to redis closed at once"));
                }
                state.tracked = Some(Arc::clone(&tracked));
                Ok(tracked)
            }
            Err(error) => {
                *failed_at = Some(Instant::now());
                Err(error)
            }
        }
    }

    async fn open(&self, generation: u64) -> Result<MultiplexedConnection, RedisError> {
        let shared = Arc::downgrade(&self.shared);
        let token_prefix = self.token_prefix.clone();
        let on_push = move |info: PushInfo| -> Result<(), std::convert::Infallible> {
            if let Some(shared) = Weak::upgrade(&shared) {
                shared.on_push(generation, &token_prefix, &info);
            }
            Ok(())
        };
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(on_push);
        let client = match &self.source {
            Source::Server(client) => client.clone(),
            Source::Sentinel(sentinels) => sentinels.lock().await.async_get_client().await?,
        };
        let mut connection = client.get_multiplexed_async_connection_with_config(&settings).await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .query_async::<()>(&mut connection)
            .await?;
        // The sentinels may have named a master that a failover demoted
        // since: ask the server itself, after tracking is on.
        if matches!(self.source, Source::Sentinel(_)) && !is_master(&mut connection).await {
            return Err(unavailable("the server the sentinels named is not a master (yet)"));
        }
        Ok(connection)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere leaves the map consistent (every change is one
        // call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ready entry of `hash` on `tracked`'s connection, marked
    /// recently used.
    fn ready(&self, tracked: &Tracked, hash: &TokenHash) -> Option<Arc<Entry>> {
        let mut state = self.lock();
        if state.generation != tracked.generation {
            return None;
        }
        match state.entries.get(hash) {
            Some(Slot::Ready(entry)) => Some(Arc::clone(entry)),
            _ => None,
        }
    }

    fn mark(&self, tracked: &Tracked, hash: &TokenHash) -> Fill {
        let mut state = self.lock();
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        if state.generation == tracked.generation {
            state.put(*hash, Slot::Filling(ticket));
        }
        Fill {
            hash: *hash,
            generation: tracked.generation,
            ticket,
        }
    }

    /// Forgets every entry and the connection of `generation`, if it is
    /// still the one in use.
    fn lost(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.generation += 1;
            state.clear();
            state.tracked = None;
        }
    }

    /// A push message on the connection of `generation`.
    fn on_push(&self, generation: u64, token_prefix: &[u8], info: &PushInfo) {
        match info.kind {
            PushKind::Invalidate => self.invalidate(generation, token_prefix, &info.data),
            PushKind::Disconnection => self.lost(generation),
            _ => {}
        }
    }

    /// `invalidate` carries one array of key names, or nil when the
    /// server flushed everything.
    fn invalidate(&self, generation: u64, token_prefix: &[u8], data: &[Value]) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        let keys = match data.first() {
            Some(Value::Array(keys)) => keys,
            _ => {
                state.clear();
                self.statistics.invalidations.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        for key in keys {
            match token_hash(key, token_prefix) {
                Some(hash) => state.remove(&hash),
                // The connection reads token keys only, so Redis names no
                // other; should it, dropping everything is the safe answer.
                None => state.clear(),
            }
        }
        self.statistics
            .invalidations
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
    }
}

impl State {
    /// Stores `slot`, evicting the least recently used entry when full.
    fn put(&mut self, hash: TokenHash, slot: Slot) {
        let replaced = match self.entries.push(hash, slot) {
            Some((_, old)) => Some(old),
            None if self.entries.len() > self.capacity.get() => self.entries.pop_lru().map(|(_, old)| old),
            None => None,
        };
        retire(replaced);
    }

    fn remove(&mut self, hash: &TokenHash) {
        retire(self.entries.pop(hash));
    }

    fn clear(&mut self) {
        while let Some((_, old)) = self.entries.pop_lru() {
            retire(Some(old));
        }
    }
}

/// Tells a hit still holding `slot`'s entry that it is no longer current.
fn retire(slot: Option<Slot>) {
    if let Some(Slot::Ready(entry)) = slot {
        entry.live.store(false, Ordering::Release);
    }
}

/// Nanoseconds since `epoch` (saturating after 584 years).
fn since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

/// The token hash a token key's name (`Pt:<hash>`) ends with.
fn token_hash(key: &Value, token_prefix: &[u8]) -> Option<TokenHash> {
    let Value::BulkString(key) = key else { return None };
    let raw = key.strip_prefix(token_prefix)?;
    Some(TokenHash::from_bytes(raw.try_into().ok()?))
}

/// Whether the server of `connection` answers `ROLE` as a master.
async fn is_master(connection: &mut MultiplexedConnection) -> bool {
    matches!(
        redis::cmd("ROLE").query_async::<Role>(connection).await,
        Ok(Role::Primary { .. })
    )
}

/// `PING`s (`ROLE` under Sentinel) shared by the verifies waiting for one;
/// each sent only after every verify it serves began.
///
/// A verify takes the number of the next `PING` to be sent (`sent + 1`)
/// and waits until that one has come back. While a `PING` is out, verifies
/// that arrive wait for the next one, which is sent as soon as the out one
/// returns. The `PING`s run on a task of their own, so a verify dropped
/// while it waits (its client went away) never strands the others.
///
/// With a lag bound, a verify passes at once while the last `PING` that
/// came back was sent at most the bound before (see the module docs).
struct Barrier {
    round: Mutex<Round>,
    progress: watch::Sender<Progress>,
    /// `cache_lag_ms`; zero: every verify waits for a `PING` of its own.
    max_lag: Duration,
    /// The cache's: `fresh` and `written` count from it.
    epoch: Instant,
    /// When the last `PING` that came back was sent, in nanoseconds since
    /// `epoch`, plus one; 0 while none has.
    fresh: AtomicU64,
    /// The cache's [`NodeCache::written`]: a `PING` sent before it passes
    /// no hit.
    written: Arc<AtomicU64>,
}

#[derive(Default)]
struct Round {
    /// The number of the last `PING` sent.
    sent: u64,
    /// The highest number a waiting verify needs.
    wanted: u64,
    /// A task is sending `PING`s.
    running: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// The last `PING` answered.
    done: u64,
    /// The last `PING` that failed.
    failed: u64,
}

/// What a verify under a lag bound may do, by the age of the last `PING`
/// that came back (the time since it was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Pass at once.
    Fresh,
    /// Pass at once, and send a `PING` ahead so the next verifies find a
    /// fresh one.
    Aging,
    /// Wait for a `PING` sent after the verify began.
    Stale,
}

impl Freshness {
    fn of(age: Option<Duration>, max_lag: Duration) -> Self {
        match age {
            Some(age) if max_lag.is_zero() || age > max_lag => Self::Stale,
            Some(age) if age > max_lag / 2 => Self::Aging,
            Some(_) => Self::Fresh,
            None => Self::Stale,
        }
    }
}

impl Barrier {
    fn new(max_lag: Duration, epoch: Instant, written: Arc<AtomicU64>) -> Self {
        Self {
            round: Mutex::new(Round::default()),
            progress: watch::Sender::new(Progress::default()),
            max_lag,
            epoch,
            fresh: AtomicU64::new(0),
            written,
        }
    }

    fn round(&self) -> MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The age of the last `PING` that came back, if any did after this
    /// node's last session write was answered.
    fn age(&self) -> Option<Duration> {
        let written = self.written.load(Ordering::Acquire);
        let fresh = self.fresh.load(Ordering::Acquire);
        if fresh <= written {
            return None;
        }
        // Read the clock after the load: a `PING` sent later than this
        // reading is not what the load found.
        let now = since(self.epoch);
        Some(Duration::from_nanos(now.saturating_sub(fresh - 1)))
    }

    /// Returns once a `PING` sent after this call began (or, under a lag
    /// bound, at most that long before it) has come back on `tracked`'s
    /// connection.
    async fn pass(&self, tracked: &Arc<Tracked>) -> Result<(), RedisError> {
        if !self.max_lag.is_zero() {
            match Freshness::of(self.age(), self.max_lag) {
                Freshness::Fresh => return Ok(()),
                Freshness::Aging => {
                    // A `PING` already out was sent after the last answered
                    // one and refreshes the bound when it comes back: ask
                    // for another only when none is.
                    let mut round = self.round();
                    if !round.running {
                        Self::want(&mut round, tracked);
                    }
                    return Ok(());
                }
                Freshness::Stale => {}
            }
        }
        let mut progress = self.progress.subscribe();
        let needed = Self::want(&mut self.round(), tracked);
        let seen = *progress
            .wait_for(|p| p.done >= needed || p.failed >= needed)
            .await
            .map_err(|_| unavailable("the cache's barrier stopped"))?;
        if seen.done >= needed {
            Ok(())
        } else {
            Err(unavailable(
                "redis did not pass the cache's barrier (PING; under Sentinel, ROLE master)",
            ))
        }
    }

    /// Asks for the next `PING` to be sent, starting the task that sends
    /// them if it is idle; returns that `PING`'s number.
    fn want(round: &mut Round, tracked: &Arc<Tracked>) -> u64 {
        let needed = round.sent + 1;
        round.wanted = round.wanted.max(needed);
        if !round.running {
            round.running = true;
            tokio::spawn(Self::send(Arc::clone(tracked)));
        }
        needed
    }

    /// Sends `PING`s while verifies wait for one not sent yet.
    async fn send(tracked: Arc<Tracked>) {
        let barrier = &tracked.barrier;
        loop {
            let number = {
                let mut round = barrier.round();
                if round.wanted <= round.sent {
                    round.running = false;
                    return;
                }
                round.sent += 1;
                round.sent
            };
            tracked.statistics.barriers.fetch_add(1, Ordering::Relaxed);
            let mut connection = tracked.connection.clone();
            // Read before the `PING` is written, so never later than it.
            let sent_at = since(barrier.epoch);
            let answered = if tracked.master_only {
                is_master(&mut connection).await
            } else {
                redis::cmd("PING").query_async::<()>(&mut connection).await.is_ok()
            };
            if answered {
                barrier.fresh.fetch_max(sent_at + 1, Ordering::Release);
            }
            barrier.progress.send_modify(|p| {
                if answered {
                    p.done = number;
                } else {
                    p.failed = number;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_bound_passes_only_pings_sent_within_it() {
        let ms = Duration::from_millis;
        let bound = ms(10);
        assert_eq!(Freshness::of(None, bound), Freshness::Stale);
        assert_eq!(Freshness::of(Some(ms(0)), bound), Freshness::Fresh);
        assert_eq!(Freshness::of(Some(ms(5)), bound), Freshness::Fresh);
        assert_eq!(Freshness::of(Some(ms(6)), bound), Freshness::Aging);
        assert_eq!(Freshness::of(Some(ms(10)), bound), Freshness::Aging);
        assert_eq!(
            Freshness::of(Some(ms(10) + Duration::from_nanos(1)), bound),
            Freshness::Stale
        );
        // Without a bound nothing passes without a PING of its own.
        assert_eq!(Freshness::of(Some(ms(0)), Duration::ZERO), Freshness::Stale);
    }

    #[test]
    fn invalidated_keys_are_read_back_as_token_hashes_or_not_at_all() {
        let hash = TokenHash::from_bytes([7; 32]);
        let key = |prefix: &[u8], raw: &[u8]| Value::BulkString([prefix, raw].concat());
        assert_eq!(token_hash(&key(b"p:t:", hash.as_bytes()), b"p:t:"), Some(hash));
        for (prefix, raw) in [
            (&b"q:t:"[..], &hash.as_bytes()[..]),
            (b"p:t:", &hash.as_bytes()[1..]),
            (b"p:t:", &[7; 33][..]),
            (b"p:ids:", b"AB"),
            (b"p:t:", b""),
        ] {
            assert_eq!(token_hash(&key(prefix, raw), b"p:t:"), None, "{prefix:?} {raw:?}");
        }
        assert_eq!(token_hash(&Value::Nil, b"p:t:"), None);
    }
}
