//! Errors: why a store could not be opened, and how engine failures map
//! onto the store contract's [`StoreError`].

use std::path::PathBuf;

use sessiond_core::StoreError;

use crate::codec::{DecodeError, EncodeError};

/// Why [`EmbeddedStore::open`](crate::EmbeddedStore::open) failed.
///
/// Each case a caller acts on differently is its own variant: an admin tool
/// tells the operator to stop the server on [`OpenError::InUse`], and must
/// never "repair" a file that is [`OpenError::NotAStore`] or
/// [`OpenError::NewerFormat`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (or another handle in this one) has the store open;
    /// it is locked so that two writers can never interleave.
    #[error("the session store at {path} is in use by another process")]
    InUse {
        /// The store file.
        path: PathBuf,
    },
    /// The file was written by a newer sessiond whose format this build
    /// does not know. Its contents are left as they are.
    #[error("the session store at {path} has format version {found}; this build reads up to {supported}")]
    NewerFormat {
        /// The store file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// The file exists but is not a sessiond store (another program's file,
    /// random bytes, an empty or cut-short file). Its contents are left as
    /// they are.
    #[error("{path} is not a sessiond session store ({why})")]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        why: String,
    },
    /// The file is a sessiond store but its contents are damaged.
    #[error("the session store at {path} is corrupt")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The engine's finding.
        #[source]
        source: redb::Error,
    },
    /// The directory or file could not be created or read.
    #[error("cannot access the session store at {path}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `embedded:` URL without a path, or with another scheme.
    #[error("not an embedded store URL (expected `embedded:<directory>[?cache_mib=N&…]`): {0:?}")]
    BadUrl(String),
    /// A parameter of an `embedded:` URL that is unknown, repeated or out
    /// of range.
    #[error("embedded store URL parameter {name:?}: {reason}")]
    BadParameter {
        /// The parameter's name (at most 64 characters of it).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Any other engine failure while opening.
    #[error("the session store at {path} could not be opened")]
    Engine {
        /// The store file.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: redb::Error,
    },
    /// The writer thread could not be started.
    #[error("could not start the store's writer thread")]
    Thread(#[source] std::io::Error),
}

impl OpenError {
    /// Classifies an engine error raised while opening `path`.
    pub(crate) fn from_engine(path: PathBuf, error: impl Into<redb::Error>) -> Self {
        match error.into() {
            redb::Error::DatabaseAlreadyOpen => OpenError::InUse { path },
            redb::Error::Corrupted(why) if why.contains("magic number") => OpenError::NotAStore { path, why },
            // A file shorter than its own header says it is: cut short.
            redb::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => OpenError::NotAStore {
                path,
                why: "the file is truncated".into(),
            },
            // redb's own verdict on the header: empty file, wrong magic.
            redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => OpenError::NotAStore {
                path,
                why: e.to_string(),
            },
            redb::Error::Io(source) => OpenError::Io { path, source },
            e @ (redb::Error::Corrupted(_) | redb::Error::RepairAborted) => OpenError::Corrupt { path, source: e },
            e @ redb::Error::UpgradeRequired(_) => OpenError::NotAStore {
                path,
                why: format!("{e}"),
            },
            source => OpenError::Engine { path, source },
        }
    }
}

/// The writer thread is gone (it stopped after the store was closed, or
/// died); nothing more can be written.
#[derive(Debug, thiserror::Error)]
#[error("the store's writer has stopped")]
pub struct WriterStopped;

/// Maps an engine error onto the store contract: I/O failures mean the
/// store cannot be used right now (fail closed, "service unavailable"),
/// damaged pages are corruption, everything else is a backend failure.
pub(crate) fn engine(error: impl Into<redb::Error>) -> StoreError {
    match error.into() {
        e @ (redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed) => {
            StoreError::Unavailable(Box::new(e))
        }
        e @ redb::Error::Corrupted(_) => StoreError::Corrupt(Box::new(e)),
        e => StoreError::Backend(Box::new(e)),
    }
}

impl From<DecodeError> for StoreError {
    fn from(error: DecodeError) -> Self {
        StoreError::Corrupt(Box::new(error))
    }
}

/// An index entry that points at nothing, or disagrees with its record.
#[derive(Debug, thiserror::Error)]
#[error("index inconsistency: {0}")]
pub(crate) struct Inconsistent(pub(crate) &'static str);

pub(crate) fn inconsistent(what: &'static str) -> StoreError {
    StoreError::Corrupt(Box::new(Inconsistent(what)))
}

pub(crate) fn encode_failed(error: EncodeError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

pub(crate) fn writer_stopped() -> StoreError {
    StoreError::Unavailable(Box::new(WriterStopped))
}
