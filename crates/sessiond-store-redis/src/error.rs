//! How engine failures become [`StoreError`]s: unreachable means
//! [`StoreError::Unavailable`], which the service answers with 503.

use redis::{ErrorKind, RedisError, ServerErrorKind};
use sessiond_core::StoreError;

/// A reply the scripts never give: the stored data or the scripts are not
/// what this version of the crate wrote.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unexpected(pub(crate) String);

pub(crate) fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(Box::new(Unexpected(what)))
}

/// True when the failure says "the engine cannot serve now" rather than
/// "this request is wrong": I/O errors, timeouts, refused or dropped
/// connections, the server states of a restart or failover
/// ([`is_failover_state`]), sentinels that name no usable master (yet), and
/// a cluster slot without a reachable node or still moving.
pub(crate) fn is_unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(error.kind(), ErrorKind::Server(kind) if is_failover_state(kind))
        || matches!(
            error.kind(),
            ErrorKind::MasterNameNotFoundBySentinel
                | ErrorKind::EmptySentinelList
                | ErrorKind::ClusterConnectionNotFound
                // Still redirected when redis-rs' retries ran out: a slot
                // in motion, as during a resharding.
                | ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
        )
}

/// The server states of a restart or failover: loading the append-only
/// file, a replica that became read-only, a cluster or master that is down.
pub(crate) fn is_failover_state(kind: ServerErrorKind) -> bool {
    matches!(
        kind,
        ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
    )
}

/// Maps a client error, keeping it as the cause.
pub(crate) fn from_redis(error: RedisError) -> StoreError {
    if is_unreachable(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}
