//! [`RecordCache`]: a node-local cache of records read by token hash, kept
//! in step by an engine that tells a connection of the node's which keys
//! changed (Redis client tracking, PostgreSQL `LISTEN`/`NOTIFY`).
//!
//! The engine's part is the connection: it opens it, reads records on it
//! (or on any connection whose changes it reports there), hands what the
//! engine says changed to [`Invalidations`], and answers a barrier
//! ([`CacheLink::barrier`]): one round trip on that connection whose
//! answer comes after every message the engine sent it before it received
//! the barrier. This module does the rest, which is the same for every
//! engine. Why a hit is never stale:
//!
//! 1. The engine reports every change of a cached record on the link,
//!    before it answers the writer (each engine's docs say why).
//! 2. The link's messages reach [`Invalidations`] in the order the engine
//!    sent them, before any later reply on it completes.
//! 3. A hit is answered only after a barrier sent *after the verify began*
//!    has come back. A write acknowledged before the verify began was
//!    reported before that barrier was sent, so its invalidation came
//!    first and has removed the entry.
//!
//! One barrier serves every verify that waits when it is sent
//! ([`Barrier`]), so under load the engine answers one round trip per
//! batch of verifies instead of one read each, and the node decodes
//! nothing.
//!
//! With a lag bound (`max_lag`, zero by default) step 3 is relaxed to "a
//! barrier sent at most that long before the verify began has come back".
//! A write acknowledged more than the bound before the verify began was
//! reported before that barrier was sent, so the same argument holds for
//! it; only writes acknowledged within the bound may still be answered
//! from memory. A hit then waits for nothing while barriers keep coming
//! back: one is sent ahead whenever a hit finds the last answered one
//! older than half the bound. When none is fresh enough (an idle node, a
//! slow or lost connection), the hit waits for a new one exactly as
//! without the bound. The node's own session writes stay exact: each one,
//! once the engine has answered it, makes later hits wait for a barrier
//! sent after that ([`RecordCache::wrote`]), so a node never answers from
//! memory what it has itself just revoked or rotated.
//!
//! A fill races invalidations: the invalidation for a key can follow the
//! reply to its read so closely that it is handled before the reader
//! stores the record. So a reader first marks the key with a ticket
//! ([`RecordCache::mark`]), an invalidation removes the mark, and the
//! record is stored only while its mark is still there.
//!
//! A lost link (the engine reports it, or a barrier or read on it fails)
//! empties the cache before anything else is answered from it
//! ([`RecordCache::lost`]); every link has a generation of its own, so a
//! late message of an old one changes nothing.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use lru::LruCache;
use tokio::sync::watch;

use crate::session::Session;
use crate::token::{TokenHash, TokenHashBuildHasher};

/// The largest lag bound (`cache_lag_ms`): the second within which the
/// revocation feed reaches access-token verifiers; a revocation slower
/// than that to hold on every node is not one an operator would expect.
pub const MAX_CACHE_LAG: Duration = Duration::from_secs(1);

/// A node-local cache's settings, as every store URL spells them:
/// `cache_entries=N` (0, the default, is off) and `cache_lag_ms=M` (0, the
/// default, is exact; at most 1000; needs `cache_entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// At most this many records.
    pub entries: NonZeroUsize,
    /// How long after another node's acknowledged change a verify may
    /// still be answered from memory. Zero (the default): not at all.
    pub max_lag: Duration,
}

/// A cache parameter of a store URL that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct CacheParamError {
    /// The parameter.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl CacheSettings {
    /// The settings of a URL's `cache_entries` and `cache_lag_ms` values
    /// (`None`: the parameter is absent); `None` when the cache is off.
    pub fn from_params(entries: Option<&str>, lag_ms: Option<&str>) -> Result<Option<Self>, CacheParamError> {
        let entries = match entries {
            Some(value) => value.parse::<usize>().map_err(|_| CacheParamError {
                name: "cache_entries",
                reason: "not a number of entries",
            })?,
            None => 0,
        };
        let max_lag = match lag_ms {
            Some(value) => Duration::from_millis(value.parse::<u64>().map_err(|_| CacheParamError {
                name: "cache_lag_ms",
                reason: "not a whole number of milliseconds",
            })?),
            None => Duration::ZERO,
        };
        if max_lag > MAX_CACHE_LAG {
            return Err(CacheParamError {
                name: "cache_lag_ms",
                reason: "at most 1000",
            });
        }
        match NonZeroUsize::new(entries) {
            Some(entries) => Ok(Some(Self { entries, max_lag })),
            None if max_lag.is_zero() => Ok(None),
            None => Err(CacheParamError {
                name: "cache_lag_ms",
                reason: "needs cache_entries",
            }),
        }
    }
}

/// The connection an engine keeps a [`RecordCache`] in step through.
pub trait CacheLink: Send + Sync + 'static {
    /// One round trip on the connection, sent when this is called. `true`
    /// once its answer came back (after every invalidation the engine sent
    /// before it received the request) and the engine may still be read;
    /// `false` if it failed.
    fn barrier(&self) -> impl Future<Output = bool> + Send;
}

/// A node-local cache of records by token hash, over links of type `L`.
pub struct RecordCache<L> {
    shared: Arc<Shared<L>>,
    /// How long before a verify the barrier that lets it hit may have been
    /// sent; zero: after the verify began.
    max_lag: Duration,
    /// What the barriers' times count from.
    epoch: Instant,
    /// When this node's last session write was answered, in nanoseconds
    /// since `epoch`, plus one; 0 while none was (lag bound only).
    written: Arc<AtomicU64>,
    /// Held while a link opens, so one opens at a time; holds when the
    /// last attempt failed.
    opening: tokio::sync::Mutex<Option<Instant>>,
}

/// How long after a link failed to open the next call fails at once
/// instead of trying again: under load every waiting verify would
/// otherwise try in turn.
pub const RELINK_BACKOFF: Duration = Duration::from_millis(100);

/// Why [`RecordCache::link`] has no link to give.
#[derive(Debug, thiserror::Error)]
pub enum LinkError<E> {
    /// The engine refused or failed the connection.
    #[error("the cache's connection failed")]
    Engine(#[source] E),
    /// The last attempt failed less than [`RELINK_BACKOFF`] ago.
    #[error("the cache's connection failed moments ago")]
    Backoff,
    /// Opening took longer than allowed.
    #[error("the cache's connection was not ready in time")]
    TimedOut,
    /// The link was lost again before it was put in use.
    #[error("the cache's connection closed at once")]
    ClosedAtOnce,
}

impl<L> std::fmt::Debug for RecordCache<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCache")
            .field("max_lag", &self.max_lag)
            .field("statistics", &self.statistics())
            .finish_non_exhaustive()
    }
}

/// What invalidations change: the entries and the link they follow.
struct Shared<L> {
    state: Mutex<State<L>>,
    statistics: Arc<Counts>,
}

struct State<L> {
    /// Keyed by token hash: the hash is already uniform, so lookups skip
    /// hashing key names (a `String` keyed map was 3 % of a cached
    /// verify's CPU over Redis in `perf`). Unbounded to the `lru` crate,
    /// which would allocate the whole table up front, and bounded by
    /// [`State::put`]: a table sized to the entries in use keeps a
    /// lookup's probes in the processor's caches (the preallocated one was
    /// the node's costliest symbol, 4.5 % of a cached verify's CPU, nearly
    /// all of it waiting on memory).
    entries: LruCache<TokenHash, Slot, TokenHashBuildHasher>,
    capacity: NonZeroUsize,
    /// Moves on with every link, so a late message of an old one changes
    /// nothing.
    generation: u64,
    linked: Option<Arc<Linked<L>>>,
    next_ticket: u64,
}

enum Slot {
    /// A reader's read is on its way; the ticket names the reader.
    Filling(u64),
    Ready(Arc<Entry>),
}

/// A cached record, and whether it is still what the engine holds: a hit
/// looks it up once before its barrier and reads the flag after, instead
/// of looking it up again.
struct Entry {
    session: Arc<Session>,
    /// Cleared when the entry leaves the cache for any reason (changed,
    /// evicted, link lost), always under the state's lock.
    live: AtomicBool,
}

/// A link in use, with its generation and its barrier.
pub struct Linked<L> {
    generation: u64,
    link: L,
    barrier: Barrier,
    statistics: Arc<Counts>,
}

impl<L> Linked<L> {
    /// The engine's connection.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The generation this link was installed under.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The mark a read left, to store its record under.
#[derive(Debug)]
pub struct Fill {
    hash: TokenHash,
    generation: u64,
    ticket: u64,
}

/// The barrier did not pass: the link failed, timed out or (under
/// Sentinel) no longer leads to the master. The cache has been emptied.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the store did not answer the cache's barrier")]
pub struct BarrierFailed;

/// Counts since the cache was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStatistics {
    /// Verifies answered from memory.
    pub hits: u64,
    /// Verifies that read the engine.
    pub misses: u64,
    /// Keys the engine said had changed (a flush of everything counts once).
    pub invalidations: u64,
    /// Barriers sent: far fewer than hits under load.
    pub barriers: u64,
}

#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    barriers: AtomicU64,
}

/// Where an engine's connection hands what changed, for one generation.
/// Holds the cache weakly: a connection task that outlives its store
/// changes nothing.
pub struct Invalidations<L> {
    shared: Weak<Shared<L>>,
    generation: u64,
}

impl<L> Clone for Invalidations<L> {
    fn clone(&self) -> Self {
        Self {
            shared: Weak::clone(&self.shared),
            generation: self.generation,
        }
    }
}

impl<L> Invalidations<L> {
    /// The records under these token hashes changed (or may have).
    pub fn tokens(&self, hashes: impl IntoIterator<Item = TokenHash>) {
        self.with(|state, counts| {
            let mut n = 0;
            for hash in hashes {
                state.remove(&hash);
                n += 1;
            }
            counts.invalidations.fetch_add(n, Ordering::Relaxed);
        });
    }

    /// Anything may have changed (a flush, or a message not understood).
    pub fn all(&self) {
        self.with(|state, counts| {
            state.clear();
            counts.invalidations.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// The connection is gone: forget it and every entry.
    pub fn lost(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.lost(self.generation);
        }
    }

    fn with(&self, change: impl FnOnce(&mut State<L>, &Counts)) {
        if let Some(shared) = self.shared.upgrade() {
            let mut state = shared.lock();
            if state.generation == self.generation {
                change(&mut state, &shared.statistics);
            }
        }
    }
}

impl<L> RecordCache<L> {
    /// A cache of `settings.entries` records at most, under the lag bound
    /// `settings.max_lag` (zero: exact, see the module docs).
    pub fn new(settings: CacheSettings) -> Self {
        let CacheSettings { entries, max_lag } = settings;
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    entries: LruCache::unbounded_with_hasher(TokenHashBuildHasher::default()),
                    capacity: entries,
                    generation: 0,
                    linked: None,
                    next_ticket: 0,
                }),
                statistics: Arc::default(),
            }),
            max_lag,
            epoch: Instant::now(),
            written: Arc::new(AtomicU64::new(0)),
            opening: tokio::sync::Mutex::new(None),
        }
    }

    /// The link in use, or a new one from `open` (given where to hand
    /// what changes), within `timeout`. One call opens at a time; for
    /// [`RELINK_BACKOFF`] after a failure, calls fail at once. Every entry
    /// is forgotten before a new link opens.
    pub async fn link<E, F>(
        &self,
        timeout: Duration,
        open: impl FnOnce(Invalidations<L>) -> F,
    ) -> Result<Arc<Linked<L>>, LinkError<E>>
    where
        F: Future<Output = Result<L, E>>,
    {
        if let Some(linked) = self.linked() {
            return Ok(linked);
        }
        let mut failed_at = self.opening.lock().await;
        if let Some(linked) = self.linked() {
            return Ok(linked);
        }
        if failed_at.is_some_and(|at| at.elapsed() < RELINK_BACKOFF) {
            return Err(LinkError::Backoff);
        }
        let generation = self.next_generation();
        let opened = match tokio::time::timeout(timeout, open(self.invalidations(generation))).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(error)) => Err(LinkError::Engine(error)),
            Err(_) => Err(LinkError::TimedOut),
        };
        match opened {
            Ok(link) => {
                *failed_at = None;
                self.install(generation, link).ok_or(LinkError::ClosedAtOnce)
            }
            Err(error) => {
                *failed_at = Some(Instant::now());
                Err(error)
            }
        }
    }

    /// The link in use, if there is one.
    fn linked(&self) -> Option<Arc<Linked<L>>> {
        self.shared.lock().linked.clone()
    }

    /// Forgets every entry and the link in use, and returns the generation
    /// of the link about to be opened.
    fn next_generation(&self) -> u64 {
        let mut state = self.shared.lock();
        state.generation += 1;
        state.clear();
        state.linked = None;
        state.generation
    }

    fn invalidations(&self, generation: u64) -> Invalidations<L> {
        Invalidations {
            shared: Arc::downgrade(&self.shared),
            generation,
        }
    }

    /// Puts `link` in use, unless it was lost (or another was opened)
    /// since [`RecordCache::next_generation`] gave `generation`.
    fn install(&self, generation: u64, link: L) -> Option<Arc<Linked<L>>> {
        let linked = Arc::new(Linked {
            generation,
            link,
            barrier: Barrier::new(self.max_lag, self.epoch, Arc::clone(&self.written)),
            statistics: Arc::clone(&self.shared.statistics),
        });
        let mut state = self.shared.lock();
        if state.generation != generation {
            return None;
        }
        state.linked = Some(Arc::clone(&linked));
        Some(linked)
    }

    /// Marks `hash` as being read on `linked` (a miss): only a read that
    /// starts after this may be stored, with [`RecordCache::fill`].
    pub fn mark(&self, linked: &Linked<L>, hash: &TokenHash) -> Fill {
        self.shared.statistics.misses.fetch_add(1, Ordering::Relaxed);
        let mut state = self.shared.lock();
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        if state.generation == linked.generation {
            state.put(*hash, Slot::Filling(ticket));
        }
        Fill {
            hash: *hash,
            generation: linked.generation,
            ticket,
        }
    }

    /// Stores `session` as what the read of `fill` found, unless the key
    /// changed since (or the link did); `None` only clears the mark.
    pub fn fill(&self, fill: Fill, session: Option<&Arc<Session>>) {
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
            None => state.remove(&fill.hash),
        }
    }

    /// Forgets every entry and the link of `generation`, if it is still
    /// the one in use (a read on it failed).
    pub fn lost(&self, generation: u64) {
        self.shared.lost(generation);
    }

    /// Tells the cache that a session write of this node was answered
    /// (applied or not), so under a lag bound no later hit passes on a
    /// barrier sent before it. Exact caches need nothing.
    pub fn wrote(&self) {
        if !self.max_lag.is_zero() {
            self.written.fetch_max(since(self.epoch) + 1, Ordering::Release);
        }
    }

    /// The counts so far.
    pub fn statistics(&self) -> CacheStatistics {
        let counts = &self.shared.statistics;
        CacheStatistics {
            hits: counts.hits.load(Ordering::Relaxed),
            misses: counts.misses.load(Ordering::Relaxed),
            invalidations: counts.invalidations.load(Ordering::Relaxed),
            barriers: counts.barriers.load(Ordering::Relaxed),
        }
    }
}

impl<L: CacheLink> RecordCache<L> {
    /// The record of `hash` from memory once the barrier has passed, or
    /// `None` if it must be read (then [`RecordCache::mark`] it first).
    pub async fn hit(&self, linked: &Arc<Linked<L>>, hash: &TokenHash) -> Result<Option<Arc<Session>>, BarrierFailed> {
        let Some(entry) = self.shared.ready(linked, hash) else {
            return Ok(None);
        };
        if linked.barrier.pass(linked).await.is_err() {
            self.shared.lost(linked.generation);
            return Err(BarrierFailed);
        }
        // Read after the barrier: an invalidation may have come meanwhile,
        // and one that came before the barrier's answer has cleared the
        // flag by now.
        if entry.live.load(Ordering::Acquire) {
            self.shared.statistics.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(Arc::clone(&entry.session)));
        }
        Ok(None)
    }
}

impl<L> Shared<L> {
    fn lock(&self) -> MutexGuard<'_, State<L>> {
        // A panic elsewhere leaves the map consistent (every change is one
        // call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ready entry of `hash` on `linked`, marked recently used.
    fn ready(&self, linked: &Linked<L>, hash: &TokenHash) -> Option<Arc<Entry>> {
        let mut state = self.lock();
        if state.generation != linked.generation {
            return None;
        }
        match state.entries.get(hash) {
            Some(Slot::Ready(entry)) => Some(Arc::clone(entry)),
            _ => None,
        }
    }

    fn lost(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.generation += 1;
            state.clear();
            state.linked = None;
        }
    }
}

impl<L> State<L> {
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

/// Barriers shared by the verifies waiting for one; each sent only after
/// every verify it serves began.
///
/// A verify takes the number of the next barrier to be sent (`sent + 1`)
/// and waits until that one has come back. While a barrier is out,
/// verifies that arrive wait for the next one, which is sent as soon as
/// the out one returns. The barriers run on a task of their own, so a
/// verify dropped while it waits (its client went away) never strands the
/// others.
///
/// With a lag bound, a verify passes at once while the last barrier that
/// came back was sent at most the bound before (see the module docs).
struct Barrier {
    round: Mutex<Round>,
    progress: watch::Sender<Progress>,
    /// The lag bound; zero: every verify waits for a barrier of its own.
    max_lag: Duration,
    /// The cache's: `fresh` and `written` count from it.
    epoch: Instant,
    /// When the last barrier that came back was sent, in nanoseconds since
    /// `epoch`, plus one; 0 while none has.
    fresh: AtomicU64,
    /// The cache's [`RecordCache::written`]: a barrier sent before it
    /// passes no hit.
    written: Arc<AtomicU64>,
}

#[derive(Default)]
struct Round {
    /// The number of the last barrier sent.
    sent: u64,
    /// The highest number a waiting verify needs.
    wanted: u64,
    /// A task is sending barriers.
    running: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// The last barrier answered.
    done: u64,
    /// The last barrier that failed.
    failed: u64,
}

/// What a verify under a lag bound may do, by the age of the last barrier
/// that came back (the time since it was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Pass at once.
    Fresh,
    /// Pass at once, and send a barrier ahead so the next verifies find a
    /// fresh one.
    Aging,
    /// Wait for a barrier sent after the verify began.
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

    /// The age of the last barrier that came back, if any did after this
    /// node's last session write was answered.
    fn age(&self) -> Option<Duration> {
        let written = self.written.load(Ordering::Acquire);
        let fresh = self.fresh.load(Ordering::Acquire);
        if fresh <= written {
            return None;
        }
        // Read the clock after the load: a barrier sent later than this
        // reading is not what the load found.
        let now = since(self.epoch);
        Some(Duration::from_nanos(now.saturating_sub(fresh - 1)))
    }

    /// Returns once a barrier sent after this call began (or, under a lag
    /// bound, at most that long before it) has come back on `linked`.
    async fn pass<L: CacheLink>(&self, linked: &Arc<Linked<L>>) -> Result<(), BarrierFailed> {
        if !self.max_lag.is_zero() {
            match Freshness::of(self.age(), self.max_lag) {
                Freshness::Fresh => return Ok(()),
                Freshness::Aging => {
                    // A barrier already out was sent after the last
                    // answered one and refreshes the bound when it comes
                    // back: ask for another only when none is.
                    let mut round = self.round();
                    if !round.running {
                        Self::want(&mut round, linked);
                    }
                    return Ok(());
                }
                Freshness::Stale => {}
            }
        }
        let mut progress = self.progress.subscribe();
        let needed = Self::want(&mut self.round(), linked);
        let seen = *progress
            .wait_for(|p| p.done >= needed || p.failed >= needed)
            .await
            .map_err(|_| BarrierFailed)?;
        if seen.done >= needed {
            Ok(())
        } else {
            Err(BarrierFailed)
        }
    }

    /// Asks for the next barrier to be sent, starting the task that sends
    /// them if it is idle; returns that barrier's number.
    fn want<L: CacheLink>(round: &mut Round, linked: &Arc<Linked<L>>) -> u64 {
        let needed = round.sent + 1;
        round.wanted = round.wanted.max(needed);
        if !round.running {
            round.running = true;
            tokio::spawn(Self::send(Arc::clone(linked)));
        }
        needed
    }

    /// Sends barriers while verifies wait for one not sent yet.
    async fn send<L: CacheLink>(linked: Arc<Linked<L>>) {
        let barrier = &linked.barrier;
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
            linked.statistics.barriers.fetch_add(1, Ordering::Relaxed);
            // Read before the barrier is written, so never later than it.
            let sent_at = since(barrier.epoch);
            let answered = linked.link.barrier().await;
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
    fn cache_parameters_are_read_or_refused_by_name() {
        let on = |entries, ms| {
            Ok(Some(CacheSettings {
                entries: NonZeroUsize::new(entries).unwrap(),
                max_lag: Duration::from_millis(ms),
            }))
        };
        assert_eq!(CacheSettings::from_params(None, None), Ok(None));
        assert_eq!(CacheSettings::from_params(Some("0"), Some("0")), Ok(None));
        assert_eq!(CacheSettings::from_params(Some("10"), None), on(10, 0));
        assert_eq!(CacheSettings::from_params(Some("10"), Some("1000")), on(10, 1000));
        let refused = |entries, lag| CacheSettings::from_params(entries, lag).map_err(|e| (e.name, e.reason));
        assert_eq!(
            refused(Some("-1"), None),
            Err(("cache_entries", "not a number of entries"))
        );
        assert_eq!(
            refused(Some("10"), Some("1.5")),
            Err(("cache_lag_ms", "not a whole number of milliseconds"))
        );
        assert_eq!(refused(Some("10"), Some("1001")), Err(("cache_lag_ms", "at most 1000")));
        assert_eq!(refused(None, Some("5")), Err(("cache_lag_ms", "needs cache_entries")));
        assert_eq!(
            refused(Some("0"), Some("5")),
            Err(("cache_lag_ms", "needs cache_entries"))
        );
    }

    #[test]
    fn a_lag_bound_passes_only_barriers_sent_within_it() {
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
        // Without a bound nothing passes without a barrier of its own.
        assert_eq!(Freshness::of(Some(ms(0)), Duration::ZERO), Freshness::Stale);
    }
}
