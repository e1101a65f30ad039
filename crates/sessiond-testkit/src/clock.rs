//! A clock that moves only when a test says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_core::Clock;
use time::OffsetDateTime;
use time::macros::datetime;

/// A [`Clock`] that starts at a fixed instant and moves only through
/// [`FakeClock::advance`]. Clones share the same time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new(datetime!(2026-01-01 00:00:00 UTC))
    }
}

impl FakeClock {
    /// A clock reading `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}
