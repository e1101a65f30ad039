//! Where the time comes from.
//!
//! Nothing in sessiond reads the wall clock directly: the manager asks an
//! injected [`Clock`], so tests can move time forward instead of sleeping.

use std::fmt::Debug;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one reader of the wall clock (clippy.toml disallows it elsewhere).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Drops sub-microsecond precision.
///
/// Every timestamp the manager stores goes through this, so a record reads
/// back equal from every backend, including those (PostgreSQL) that keep only
/// microseconds.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.microsecond();
    at.replace_microsecond(micros).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn truncation_drops_nanoseconds_only() {
        let at = datetime!(2026-01-02 03:04:05.123456789 UTC);
        assert_eq!(truncate_to_micros(at), datetime!(2026-01-02 03:04:05.123456 UTC));
    }
}
