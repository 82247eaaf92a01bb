//! The pollers' wall clock: the system's in production, or one that moves with tokio's time so
//! that schedules, back-off and reading stamps can be tested in paused (virtual) time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};

/// Where "now" comes from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    /// `Some((wall, at))`: `wall` was the time at tokio instant `at`; now is `wall` plus the
    /// tokio time elapsed since (paused in tests, so it jumps as timers fire).
    follows_tokio: Option<(DateTime<Utc>, tokio::time::Instant)>,
    /// Tests only: milliseconds the simulated host spent suspended, on the wall clock only
    /// (see [`Clock::following_tokio_with_suspend`]). Always `None` for [`Clock::system`].
    suspended_ms: Option<&'static AtomicI64>,
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
            suspended_ms: None,
        }
    }

    /// [`Clock::following_tokio`], plus a handle that suspends the simulated host: its wall
    /// clock jumps on while tokio's (the monotonic clock, which stops in a real suspend) does
    /// not. For tests; each call leaks one counter, shared by every copy of the clock.
    pub fn following_tokio_with_suspend(start: DateTime<Utc>) -> (Clock, HostSuspend) {
        let suspended: &'static AtomicI64 = Box::leak(Box::new(AtomicI64::new(0)));
        let clock = Clock {
            suspended_ms: Some(suspended),
            ..Clock::following_tokio(start)
        };
        (clock, HostSuspend(suspended))
    }

    /// Now, in UTC.
    pub fn now(&self) -> DateTime<Utc> {
        match self.follows_tokio {
            None => Utc::now(),
            Some((wall, at)) => {
                let elapsed = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                let suspended = self.suspended_ms.map_or(0, |ms| ms.load(Ordering::SeqCst));
                wall + elapsed + chrono::Duration::milliseconds(suspended)
            }
        }
    }

    /// Now, in the host's zone (the schedules' wall-clock times are local).
    pub fn local(&self) -> DateTime<Local> {
        self.now().with_timezone(&Local)
    }
}

/// Suspends the host of a [`Clock::following_tokio_with_suspend`] clock (tests only).
#[derive(Debug)]
pub struct HostSuspend(&'static AtomicI64);

impl HostSuspend {
    /// The host sleeps for `slept`: the clock's wall time moves on by it at once, tokio's
    /// (monotonic) time does not, so timers pending fire as late on the wall clock as after a
    /// real suspend.
    pub fn suspend(&self, slept: Duration) {
        let ms = i64::try_from(slept.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_suspend_moves_the_wall_clock_but_not_tokio_time() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (clock, host) = Clock::following_tokio_with_suspend(start);
        let copy = clock;
        let mono = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(60)).await;
        host.suspend(Duration::from_secs(5 * 3600));
        assert_eq!(mono.elapsed(), Duration::from_secs(60));
        let want = start + chrono::Duration::seconds(60 + 5 * 3600);
        assert_eq!(clock.now(), want);
        assert_eq!(copy.now(), want, "every copy of the clock slept");
        // A clock without the handle never jumps.
        let plain = Clock::following_tokio(start);
        host.suspend(Duration::from_secs(3600));
        assert_eq!(plain.now(), start);
    }
}
