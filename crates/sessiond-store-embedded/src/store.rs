//! [`EmbeddedStore`]: the handle, its reads, and the [`SessionStore`] methods.
//!
//! Reads run on the caller's task: from the read cache ([`crate::cache`])
//! or in their own redb read transaction (MVCC snapshots: never blocked by
//! the writer, and they see every acknowledged write). Writes go to the
//! writer thread ([`crate::writer`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use sessiond_core::{
    Audit, ClientInfo, IdPage, Inserted, Revocation, Session, SessionId, SessionStore, StoreError, Subject,
    SubjectLimit, Tenant, TokenHash, async_trait,
};
use time::OffsetDateTime;

use crate::cache::{Cache, Cached, Record};
use crate::codec;
use crate::error::{OpenError, engine, inconsistent, writer_stopped};
use crate::open::{Options, create_new, open_existing, parse_url};
use crate::ops::{Done, Op};
use crate::tables::{self, META, SESSIONS, SUBJECTS, TOKENS, load};
use crate::writer::Writer;

/// The name of the store file inside the data directory.
pub const FILE_NAME: &str = "sessions.redb";

/// A durable session store in one data directory. See the crate docs.
///
/// Hold it as `Arc<dyn SessionStore>`. Dropping the last handle stops the
/// writer after everything queued is committed and made durable;
/// [`EmbeddedStore::close`] does the same and reports errors.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    cache: Arc<Cache>,
    writer: Writer,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory and an empty store
    /// if there is none.
    ///
    /// Fails with [`OpenError::InUse`] at once if another process has it
    /// open. Never writes sessions into a file that is not a sessiond store
    /// of a format this build knows. (Opening verifies every page checksum;
    /// on a valid redb file that check may rewrite redb's own allocator
    /// bookkeeping, never the data.)
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(dir, Options::default())
    }

    /// [`EmbeddedStore::open`] with explicit [`Options`].
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Self, OpenError> {
        let dir = dir.as_ref();
        // Owner only: a new data directory is never listable by others.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(|source| OpenError::Io {
                path: dir.to_owned(),
                source,
            })?;
        let path = dir.join(FILE_NAME);
        let db = match std::fs::symlink_metadata(&path) {
            Ok(_) => open_existing(&path, options)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_new(dir, &path, options)?,
            Err(source) => return Err(OpenError::Io { path, source }),
        };
        let db = Arc::new(db);
        let cache = Arc::new(Cache::new(options.cache_bytes, options.packed_cache_bytes));
        let writer = Writer::spawn(Arc::clone(&db), Arc::clone(&cache)).map_err(OpenError::Thread)?;
        Ok(Self {
            db,
            cache,
            writer,
            path,
        })
    }

    /// Opens the store named by a URL of the form `embedded:<directory>`
    /// (for example `embedded:./sessiond-data` or `embedded:///var/lib/sessiond`),
    /// with the options its parameters set ([`parse_url`]).
    pub fn open_url(url: &str) -> Result<Self, OpenError> {
        let (dir, options) = parse_url(url)?;
        Self::open_with(dir, options)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after committing everything queued, making every
    /// write durable, and closes the file (releasing the lock).
    pub fn close(mut self) -> Result<(), StoreError> {
        self.writer.stop()
    }

    /// Writes `sessions` exactly as given, in one durable commit, all or
    /// none: for loading a store (a migration, or a benchmark such as
    /// `examples/scale.rs`, which loads about 9,000 sessions/s here in
    /// commits of 10,000, where the load test's preload, one insert per
    /// session, manages about 4,300/s). Not for logins: no subject
    /// limit is applied and no audit event is stored. Refused with
    /// [`StoreError::Collision`], writing nothing, when an id or token hash
    /// is taken (in the store or twice in `sessions`).
    pub async fn insert_all(&self, sessions: Vec<Session>) -> Result<(), StoreError> {
        match self.write(Op::InsertAll(sessions)).await? {
            Done::InsertedAll => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    pub(crate) async fn write(&self, op: Op) -> Result<Done, StoreError> {
        self.writer.submit(op).await
    }

    /// The record a token hash names, decoded and as stored.
    fn read_by_token(&self, hash: &TokenHash) -> Result<Option<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let tokens = txn.open_table(TOKENS).map_err(engine)?;
        let Some(id) = tokens.get(hash.as_bytes()).map_err(engine)? else {
            return Ok(None);
        };
        let sessions = txn.open_table(SESSIONS).map_err(engine)?;
        let stored = sessions
            .get(id.value())
            .map_err(engine)?
            .ok_or_else(|| inconsistent("token index names a missing record"))?;
        let packed: Arc<[u8]> = Arc::from(stored.value());
        Ok(Some(Record {
            session: Arc::new(codec::decode(&packed)?),
            packed,
        }))
    }

    fn read_by_id(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let sessions = txn.open_table(SESSIONS).map_err(engine)?;
        load(&sessions, id.as_str())
    }

    fn read_live_of_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let subjects = txn.open_multimap_table(SUBJECTS).map_err(engine)?;
        let sessions = txn.open_table(SESSIONS).map_err(engine)?;
        let mut live = Vec::new();
        for id in tables::subject_ids(&subjects, tenant, subject)? {
            let session = load(&sessions, &id)?.ok_or_else(|| inconsistent("subject index names a missing record"))?;
            if session.is_live(now) {
                live.push(session);
            }
        }
        Ok(live)
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Err(error) = self.writer.stop() {
            tracing::error!(%error, path = %self.path.display(), "session store did not shut down cleanly");
        }
    }
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Backend(format!("writer answered with the wrong kind of result: {done:?}").into())
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        let op = Op::Insert {
            session: session.clone(),
            limit,
            now,
            revocation,
            audit: Box::new(audit.clone()),
        };
        match self.write(op).await? {
            Done::Inserted(inserted) => Ok(inserted),
            other => Err(unexpected(other)),
        }
    }

    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        match self.cache.get(hash) {
            Cached::Record(session) => return Ok(Some(session)),
            Cached::Packed(packed) => return Ok(Some(Arc::new(codec::decode(&packed)?))),
            Cached::Missing => {}
        }
        // The ticket must be taken before the read transaction begins.
        let ticket = self.cache.ticket();
        let record = self.read_by_token(hash)?;
        if let (Some(ticket), Some(record)) = (ticket, &record) {
            self.cache.fill(ticket, record);
        }
        Ok(record.map(|r| r.session))
    }

    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.read_by_id(id)?.map(Arc::new))
    }

    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        let op = Op::Update {
            session: session.clone(),
            expected_version,
            audit: Box::new(audit.clone()),
        };
        match self.write(op).await? {
            Done::Updated => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        let op = Op::Touch {
            id: id.clone(),
            last_seen_at,
            idle_expires_at,
            client: client.clone(),
        };
        match self.write(op).await? {
            Done::Touched { wrote, .. } => Ok(wrote),
            other => Err(unexpected(other)),
        }
    }

    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        match self
            .write(Op::Revoke {
                id: id.clone(),
                revocation,
                audit: Box::new(audit.clone()),
            })
            .await?
        {
            Done::Revoked(revoked) => Ok(revoked.map(|s| *s)),
            other => Err(unexpected(other)),
        }
    }

    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        let op = Op::RevokeSubject {
            tenant: tenant.clone(),
            subject: subject.clone(),
            except: except.cloned(),
            revocation,
            now,
            audit: Box::new(audit.clone()),
        };
        match self.write(op).await? {
            Done::Sessions(revoked) => Ok(revoked),
            other => Err(unexpected(other)),
        }
    }

    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.read_live_of_subject(tenant, subject, now)
    }

    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let audit = Box::new(audit.clone());
        match self.write(Op::Purge { now, limit, audit }).await? {
            Done::Sessions(purged) => Ok(purged),
            other => Err(unexpected(other)),
        }
    }

    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        use std::ops::Bound;
        let txn = self.db.begin_read().map_err(engine)?;
        let sessions = txn.open_table(SESSIONS).map_err(engine)?;
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut ids = Vec::with_capacity(limit.min(4096));
        for entry in sessions
            .range::<&str>((start, Bound::Unbounded))
            .map_err(engine)?
            .take(limit)
        {
            let (key, _) = entry.map_err(engine)?;
            let id = SessionId::parse(key.value()).ok_or_else(|| inconsistent("a record key is not a session id"))?;
            ids.push(id);
        }
        let next = (ids.len() == limit)
            .then(|| ids.last().map(|id| id.as_str().to_owned()))
            .flatten();
        Ok(IdPage { ids, next })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.writer.is_running() {
            return Err(writer_stopped());
        }
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(META).map_err(engine)?;
        Ok(())
    }
}
