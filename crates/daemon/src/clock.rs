//! The pollers' wall clock: the system's in production, or one that moves with tokio's time so
//! that schedules, back-off and reading stamps can be tested in paused (virtual) time.

use chrono::{DateTime, Local, Utc};

/// Where "now" comes from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    /// `Some((wall, at))`: `wall` was the time at tokio instant `at`; now is `wall` plus the
    /// tokio time elapsed since (paused in tests, so it jumps as timers fire).
    follows_tokio: Option<(DateTime<Utc>, tokio::time::Instant)>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `start` now and then advances with tokio's clock (for tests that
    /// pause it: an hour of polls passes in milliseconds, exactly).
    pub fn following_tokio(start: DateTime<Utc>) -> Clock {
        Clock {
            follows_tokio: Some((start, tokio::time::Instant::now())),
        }
    }

    /// Now, in UTC.
    pub fn now(&self) -> DateTime<Utc> {
        match self.follows_tokio {
            None => Utc::now(),
            Some((wall, at)) => {
                let elapsed = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                wall + elapsed
            }
        }
    }

    /// Now, in the host's zone (the schedules' wall-clock times are local).
    pub fn local(&self) -> DateTime<Local> {
        self.now().with_timezone(&Local)
    }
}
