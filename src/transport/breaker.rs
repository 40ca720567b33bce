//! An optional circuit breaker per server: after `failures` consecutive connection failures, calls
//! fail at once for `reset_timeout`, then one caller probes the server and the others keep failing
//! fast until that probe succeeds. A down Redis then costs microseconds per call, not a timeout.
//!
//! Lock-free: the closed state (the hot path) is one relaxed atomic load per call.

use crate::settings::resolved::BreakerConfig;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// What the breaker says of a call about to be made.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// Open: fail now. Carries the time until the next probe.
    Reject(Duration),
}

/// The breaker's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
}

pub struct Breaker {
    config: BreakerConfig,
    consecutive: AtomicU32,
    /// While open: when the next probe may go (nanoseconds after `EPOCH`); 0 while closed.
    probe_at: AtomicU64,
    trips: AtomicU64,
}

/// A monotonic origin, so instants fit in an atomic.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    // Never 0, which means "closed".
    (EPOCH.elapsed().as_nanos() as u64).max(1)
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            consecutive: AtomicU32::new(0),
            probe_at: AtomicU64::new(0),
            trips: AtomicU64::new(0),
        }
    }

    /// Before a call: proceed, or fail fast while open. Once the reset timeout has passed, one
    /// caller wins the right to probe (it moves the next probe a whole timeout later, so a probe
    /// that never reports back only delays the next one).
    pub fn check(&self) -> Verdict {
        let probe_at = self.probe_at.load(Ordering::Relaxed);
        if probe_at == 0 {
            return Verdict::Proceed;
        }
        let now = now_nanos();
        if now < probe_at {
            return Verdict::Reject(Duration::from_nanos(probe_at - now));
        }
        let next = now + self.config.reset_timeout.as_nanos() as u64;
        match self
            .probe_at
            .compare_exchange(probe_at, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => Verdict::Proceed,
            Err(0) => Verdict::Proceed, // closed meanwhile
            Err(_) => Verdict::Reject(self.config.reset_timeout),
        }
    }

    /// The server answered (an error reply counts: the server is up).
    pub fn success(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
        if self.probe_at.load(Ordering::Relaxed) != 0 {
            self.probe_at.store(0, Ordering::Release);
        }
    }

    /// The server could not be reached or did not answer in time.
    pub fn failure(&self) {
        if self.config.failures == 0 {
            return;
        }
        let failures = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.config.failures {
            let next = now_nanos() + self.config.reset_timeout.as_nanos() as u64;
            if self.probe_at.swap(next, Ordering::AcqRel) == 0 {
                self.trips.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn state(&self) -> State {
        match self.probe_at.load(Ordering::Relaxed) {
            0 => State::Closed,
            _ => State::Open,
        }
    }

    /// How many times the breaker opened.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    pub fn threshold(&self) -> u32 {
        self.config.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, reset_ms: u64) -> Breaker {
        Breaker::new(BreakerConfig {
            failures,
            reset_timeout: Duration::from_millis(reset_ms),
        })
    }

    #[test]
    fn off_by_default() {
        let b = Breaker::new(BreakerConfig::default());
        for _ in 0..100 {
            b.failure();
        }
        assert_eq!(b.check(), Verdict::Proceed);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 10_000);
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert_eq!(b.check(), Verdict::Proceed);
        b.failure();
        assert!(matches!(b.check(), Verdict::Reject(_)));
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn one_probe_after_the_timeout_then_closed_on_success() {
        let b = breaker(1, 20);
        b.failure();
        assert!(matches!(b.check(), Verdict::Reject(_)));
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(b.check(), Verdict::Proceed, "the probe");
        assert!(
            matches!(b.check(), Verdict::Reject(_)),
            "others wait for it"
        );
        b.success();
        assert_eq!(b.check(), Verdict::Proceed);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let b = breaker(1, 20);
        b.failure();
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(b.check(), Verdict::Proceed);
        b.failure();
        assert!(matches!(b.check(), Verdict::Reject(_)));
        assert_eq!(b.trips(), 1, "still the same outage");
    }
}
