//! Opening the store file: creating a new one safely, and refusing files
//! that are not a sessiond store this build can read.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase};

use crate::error::OpenError;
use crate::store::FILE_NAME;
use crate::tables::{EXPIRY, FORMAT_KEY, FORMAT_VERSION, META, SESSIONS, SUBJECTS, TOKENS, USERS};

/// Tuning for [`EmbeddedStore::open_with`](crate::EmbeddedStore::open_with):
/// the memory budgets, in bytes, which bound what a store holds in
/// memory whatever its number of sessions (measured by `examples/scale.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Decoded records kept in memory for verify, by token hash, in
    /// estimated heap bytes (a browser session is about 1,100, 2,600 with
    /// a small cart in its data: a JSON object's first member costs a
    /// 640-byte B-tree node).
    /// 0 turns the cache off: every read then runs a read transaction.
    /// Default 256 MiB.
    pub cache_bytes: usize,
    /// Records kept in memory as stored (encoded), by token hash, in
    /// estimated heap bytes: about 730 for a browser session with a small
    /// cart, under a third of its decoded form. A verify that misses the
    /// decoded records but finds its session here decodes it instead of
    /// running a read transaction: with 1 M sessions all packed,
    /// `examples/scale.rs` measured uniform verifies at 840k/s against
    /// 204k/s without. For nodes with more sessions in use than
    /// [`Options::cache_bytes`] holds. Default 0 (off).
    pub packed_cache_bytes: usize,
    /// redb's own cache of file pages. Default 1 GiB (redb's default).
    pub engine_cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cache_bytes: 256 << 20,
            packed_cache_bytes: 0,
            engine_cache_bytes: 1 << 30,
        }
    }
}

impl Options {
    /// Sets [`Options::cache_bytes`].
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Sets [`Options::packed_cache_bytes`].
    pub fn packed_cache_bytes(mut self, bytes: usize) -> Self {
        self.packed_cache_bytes = bytes;
        self
    }

    /// Sets [`Options::engine_cache_bytes`].
    pub fn engine_cache_bytes(mut self, bytes: usize) -> Self {
        self.engine_cache_bytes = bytes;
        self
    }
}

/// The most MiB a budget in an `embedded:` URL accepts (1 TiB: far above
/// any machine here, and no overflow).
const MAX_MIB: usize = 1 << 20;

/// The directory and options named by an `embedded:` URL:
/// `embedded:<directory>[?cache_mib=N&packed_cache_mib=N&engine_cache_mib=N]`
/// (each sets the [`Options`] field of that name, in MiB; an unknown or
/// repeated parameter is refused rather than ignored).
pub fn parse_url(url: &str) -> Result<(PathBuf, Options), OpenError> {
    let rest = url
        .strip_prefix("embedded:")
        .ok_or_else(|| OpenError::BadUrl(url.to_owned()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // `embedded:///abs` and `embedded://./rel` name the path after `//`.
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(OpenError::BadUrl(url.to_owned()));
    }
    let mut options = Options::default();
    let mut seen = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |reason: &'static str| OpenError::BadParameter {
            name: name.chars().take(64).collect(),
            reason,
        };
        // The budget the parameter sets, and its least value.
        let (budget, least) = match name {
            "cache_mib" => (&mut options.cache_bytes, 0),
            "packed_cache_mib" => (&mut options.packed_cache_bytes, 0),
            "engine_cache_mib" => (&mut options.engine_cache_bytes, 1),
            _ => return Err(bad("unknown (known: cache_mib, packed_cache_mib, engine_cache_mib)")),
        };
        if seen.contains(&name) {
            return Err(bad("given twice"));
        }
        seen.push(name);
        let mib: usize = value.parse().map_err(|_| bad("not a whole number of MiB"))?;
        if mib > MAX_MIB {
            return Err(bad("above 1048576 (1 TiB)"));
        }
        if mib < least {
            return Err(bad("must be at least 1"));
        }
        *budget = mib << 20;
    }
    Ok((PathBuf::from(path), options))
}

/// Creates a new store file without ever exposing a half-made one: it is
/// built under a temporary name and then linked into place, which fails
/// instead of replacing if another process got there first.
pub(crate) fn create_new(dir: &Path, path: &Path, options: Options) -> Result<Database, OpenError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OpenError::Io { path, source }
    };
    let temp = dir.join(format!("{FILE_NAME}.new-{}", std::process::id()));
    // Left over from a crashed creation by an earlier process with our pid.
    let _ = std::fs::remove_file(&temp);
    let db = Database::builder()
        .set_cache_size(options.engine_cache_bytes)
        .create(&temp)
        .map_err(|e| OpenError::from_engine(temp.clone(), e))?;
    // Owner only before anyone can open it by its real name: it holds
    // password hashes, subjects, IPs and session data.
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).map_err(io(&temp))?;
    initialize(&db).map_err(|e| OpenError::from_engine(temp.clone(), e))?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
            Ok(db)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            drop(db);
            open_existing(path, options)
        }
        Err(source) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes the format version and creates every table, durably.
fn initialize(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(FORMAT_KEY, u64::from(FORMAT_VERSION))?;
        txn.open_table(SESSIONS)?;
        txn.open_table(TOKENS)?;
        txn.open_multimap_table(SUBJECTS)?;
        txn.open_table(EXPIRY)?;
        txn.open_table(USERS)?;
    }
    txn.commit()?;
    Ok(())
}

/// Opens an existing file and checks that it is a sessiond store this
/// build can read. The integrity check verifies every page checksum, so a
/// damaged or cut-short file is an error here rather than a panic later.
pub(crate) fn open_existing(path: &Path, options: Options) -> Result<Database, OpenError> {
    let db = Database::builder()
        .set_cache_size(options.engine_cache_bytes)
        .set_check_integrity_on_open(true)
        .open(path)
        .map_err(|e| OpenError::from_engine(path.to_owned(), e))?;
    let not_a_store = |why: &str| OpenError::NotAStore {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let fail = |e: redb::Error| OpenError::from_engine(path.to_owned(), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_) | redb::TableError::TableTypeMismatch { .. }) => {
            return Err(not_a_store("no sessiond format version"));
        }
        Err(e) => return Err(fail(e.into())),
    };
    let version = meta.get(FORMAT_KEY).map_err(|e| fail(e.into()))?.map(|v| v.value());
    match version {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) if v > u64::from(FORMAT_VERSION) => {
            return Err(OpenError::NewerFormat {
                path: path.to_owned(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
                supported: FORMAT_VERSION,
            });
        }
        Some(_) => return Err(not_a_store("unknown format version")),
        None => return Err(not_a_store("no sessiond format version")),
    }
    let tables_ok = txn.open_table(SESSIONS).is_ok()
        && txn.open_table(TOKENS).is_ok()
        && txn.open_multimap_table(SUBJECTS).is_ok()
        && txn.open_table(EXPIRY).is_ok();
    if !tables_ok {
        return Err(not_a_store("a sessiond table is missing or has the wrong type"));
    }
    // `users` came later than format 1: a file without it gets it, durably,
    // so that nothing else has to expect its absence.
    let has_users = match txn.open_table(USERS) {
        Ok(_) => true,
        Err(redb::TableError::TableDoesNotExist(_)) => false,
        Err(redb::TableError::Storage(e)) => return Err(fail(e.into())),
        Err(_) => return Err(not_a_store("the users table has the wrong type")),
    };
    drop(meta);
    drop(txn);
    if !has_users {
        add_users_table(&db).map_err(fail)?;
    }
    Ok(db)
}

fn add_users_table(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(USERS)?;
    txn.commit()?;
    Ok(())
}
