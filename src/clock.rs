//! The only place that reads wall time.
//!
//! The core never reads a clock; the live daemon hands it "now" from a [`Clock`]. The
//! production clock is the system clock. The demo and the fast end-to-end tests use a
//! [`ScaledClock`], which runs from a chosen instant at a chosen speed, so hours of
//! deadlines pass in seconds with the daemon otherwise unchanged.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::core::time::Millis;

/// A source of "now" for the live daemon.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Millis;

    /// How long to sleep, in real time, until the clock reads `at` (zero if it already has).
    fn real_until(&self, at: Millis) -> Duration;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one reader of wall time
    fn now(&self) -> Millis {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(since.as_millis() as i64)
    }

    fn real_until(&self, at: Millis) -> Duration {
        Duration::from_millis(at.0.saturating_sub(self.now().0).max(0) as u64)
    }
}

/// A clock that starts at `origin` and runs `speed` times faster than real time.
#[derive(Clone, Copy, Debug)]
pub struct ScaledClock {
    origin: Millis,
    started: Instant,
    speed: f64,
}

impl ScaledClock {
    #[allow(clippy::disallowed_methods)] // the one reader of real time
    pub fn new(origin: Millis, speed: f64) -> ScaledClock {
        assert!(
            speed > 0.0 && speed.is_finite(),
            "a clock speed must be positive, got {speed}"
        );
        ScaledClock {
            origin,
            started: Instant::now(),
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Millis {
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0 * self.speed;
        Millis(self.origin.0.saturating_add(elapsed as i64))
    }

    fn real_until(&self, at: Millis) -> Duration {
        let ahead = at.0.saturating_sub(self.now().0).max(0) as f64;
        Duration::from_secs_f64(ahead / 1000.0 / self.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_faster_and_converts_sleeps_back_to_real_time() {
        let c = ScaledClock::new(Millis(0), 3600.0);
        assert!(c.now().0 >= 0);
        let real = c.real_until(Millis(3_600_000));
        assert!(
            real <= Duration::from_secs(1) && real > Duration::from_millis(900),
            "{real:?}"
        );
    }

    #[test]
    fn the_system_clock_is_after_2026() {
        assert!(SystemClock.now() > Millis(1_767_225_600_000));
    }
}
