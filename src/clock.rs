//! The time source.
//!
//! Everything that depends on the passage of time (windows, `for` durations,
//! staleness) reads it through a [`Clock`], so tests drive time by hand with
//! [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current time as seconds since the Unix epoch.
    fn now(&self) -> f64;

    /// How many of this clock's seconds pass per real second (1 for a real
    /// clock). Periodic work scheduled in real time divides its period by it.
    fn speed(&self) -> f64 {
        1.0
    }
}

/// A clock running `speed` times faster than the system clock, from the
/// moment it is made: for demonstrations that replay an hour in minutes.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    origin: f64,
    started: std::time::Instant,
    speed: f64,
}

impl ScaledClock {
    /// A clock that starts at the system time and runs `speed` times faster.
    pub fn new(speed: f64) -> Self {
        ScaledClock {
            origin: SystemClock.now(),
            started: std::time::Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> f64 {
        self.origin + self.started.elapsed().as_secs_f64() * self.speed
    }

    fn speed(&self) -> f64 {
        self.speed
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
    }
}

/// A clock that only moves when told to; cheap to clone, clones share time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `secs` seconds since the epoch.
    pub fn new(secs: f64) -> Self {
        let c = Self::default();
        c.set(secs);
        c
    }

    /// Moves the clock to `secs` seconds since the epoch.
    pub fn set(&self, secs: f64) {
        self.micros
            .store((secs * 1e6).round() as u64, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.micros
            .fetch_add(d.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> f64 {
        self.micros.load(Ordering::SeqCst) as f64 / 1e6
    }
}

/// A shared, dynamically chosen clock.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100.0);
        assert_eq!(c.now(), 100.0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), 101.5);
        let shared = c.clone();
        shared.set(7.0);
        assert_eq!(c.now(), 7.0);
    }

    #[test]
    fn scaled_clock_runs_faster() {
        let c = ScaledClock::new(1000.0);
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now() - t0 >= 20.0);
        assert_eq!(c.speed(), 1000.0);
        assert_eq!(ScaledClock::new(-1.0).speed(), 1.0);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800.0);
    }
}
