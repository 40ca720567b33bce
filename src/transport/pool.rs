//! A bounded, thread-safe, fork-safe connection pool, generic over how connections are made.
//!
//! Pure Rust: tested with a fake connector; `transport/connector.rs` plugs in real Redis connections.

use crate::errors::{Error, ErrorKind, Result};
use crate::process::fork::{ForkLocal, Stamped};
use crate::settings::resolved::BreakerConfig;
use crate::transport::breaker::{Breaker, Verdict};
use parking_lot::{Condvar, Mutex};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Opens one connection.
pub trait Connector: Send + Sync {
    type Conn: Send;
    fn connect(&self) -> Result<Self::Conn>;
    /// Names the server in messages (no credentials).
    fn describe(&self) -> String;
    /// Whether a connection idle since `idle_since` may be handed out (a health check; the
    /// connector reads the clock only if it checks, keeping checkouts cheap when it does not).
    fn healthy(&self, _conn: &mut Self::Conn, _idle_since: Instant) -> bool {
        true
    }
}

struct Slots<T> {
    inner: Mutex<SlotsInner<T>>,
    returned: Condvar,
}

struct SlotsInner<T> {
    /// Each idle connection with the time it came back.
    idle: Vec<(T, Instant)>,
    /// Connections that exist: idle plus checked out.
    open: usize,
}

fn empty_slots<T>() -> Slots<T> {
    Slots {
        inner: Mutex::new(SlotsInner {
            idle: Vec::new(),
            open: 0,
        }),
        returned: Condvar::new(),
    }
}

pub struct Pool<C: Connector> {
    connector: C,
    max_size: usize,
    wait: Duration,
    slots: ForkLocal<Slots<C::Conn>>,
    breaker: Breaker,
    /// Connections opened, and closed because they failed (an error mid-exchange, a failed
    /// health check, or dropped with the rest of an outage's idle connections).
    opened: AtomicU64,
    dropped: AtomicU64,
}

/// Connection counts, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The most connections it opens (`CONNECTION_POOL_KWARGS["max_connections"]`).
    pub max: usize,
    pub open: usize,
    pub idle: usize,
    pub opened: u64,
    pub dropped: u64,
}

impl<C: Connector> Pool<C> {
    pub fn new(connector: C, max_size: usize, wait: Duration, breaker: BreakerConfig) -> Self {
        Self {
            connector,
            max_size: max_size.max(1),
            wait,
            slots: ForkLocal::new(empty_slots),
            breaker: Breaker::new(breaker),
            opened: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// The server's circuit breaker; callers report how their exchanges went.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Fail fast while the server's circuit is open.
    pub fn admit(&self) -> Result<()> {
        match self.breaker.check() {
            Verdict::Proceed => Ok(()),
            Verdict::Reject(next_probe) => Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "{}: circuit open after {} consecutive connection failures; next attempt in {:.1}s",
                    self.connector.describe(),
                    self.breaker.threshold(),
                    next_probe.as_secs_f64()
                ),
            )),
        }
    }

    pub fn connector(&self) -> &C {
        &self.connector
    }

    /// Check a connection out: an idle one (most recently used first), a new one while fewer than
    /// `max_size` exist, or — when all are in use — the first one returned within the wait.
    /// Idle connections that fail the connector's health check are closed and skipped.
    /// Blocks, so call it with the GIL released.
    pub fn get(&self) -> Result<Pooled<'_, C>> {
        self.admit()?;
        let slots = self.slots.current();
        let mut inner = slots.inner.lock();
        let mut deadline = None;
        loop {
            if let Some((mut conn, since)) = inner.idle.pop() {
                drop(inner);
                if self.connector.healthy(&mut conn, since) {
                    return Ok(self.pooled(slots, conn, true));
                }
                drop(conn);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                inner = slots.inner.lock();
                inner.open -= 1;
                continue;
            }
            if inner.open < self.max_size {
                inner.open += 1;
                drop(inner);
                return match self.connector.connect() {
                    Ok(conn) => {
                        self.opened.fetch_add(1, Ordering::Relaxed);
                        Ok(self.pooled(slots, conn, false))
                    }
                    Err(err) => {
                        slots.inner.lock().open -= 1;
                        slots.returned.notify_one();
                        if err.breaks_connection() {
                            self.breaker.failure();
                        }
                        Err(err)
                    }
                };
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.wait);
            if slots.returned.wait_until(&mut inner, deadline).timed_out()
                && inner.idle.is_empty()
                && inner.open >= self.max_size
            {
                return Err(Error::new(
                    ErrorKind::PoolExhausted,
                    format!(
                        "{}: connection pool exhausted: all {} connections (max_connections) in use for {:?}",
                        self.connector.describe(),
                        self.max_size,
                        self.wait
                    ),
                ));
            }
        }
    }

    fn pooled(
        &self,
        slots: Arc<Stamped<Slots<C::Conn>>>,
        conn: C::Conn,
        reused: bool,
    ) -> Pooled<'_, C> {
        Pooled {
            pool: self,
            slots,
            conn: Some(conn),
            broken: false,
            reused,
        }
    }

    /// Close idle connections now; connections in use are closed when they come back.
    pub fn clear(&self) {
        self.slots.reset();
    }

    /// Close the idle connections only: after a connection broke, the others opened before the
    /// same outage are likely dead too. Connections in use are left to their callers.
    pub fn discard_idle(&self) {
        let slots = self.slots.current();
        let mut inner = slots.inner.lock();
        let stale = std::mem::take(&mut inner.idle);
        inner.open -= stale.len();
        self.dropped
            .fetch_add(stale.len() as u64, Ordering::Relaxed);
        drop(inner);
        slots.returned.notify_all();
        drop(stale); // close the sockets outside the lock
    }

    pub fn stats(&self) -> PoolStats {
        let slots = self.slots.current();
        let inner = slots.inner.lock();
        PoolStats {
            max: self.max_size,
            open: inner.open,
            idle: inner.idle.len(),
            opened: self.opened.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// A checked-out connection; it goes back to the pool on drop unless marked broken.
pub struct Pooled<'a, C: Connector> {
    pool: &'a Pool<C>,
    slots: Arc<Stamped<Slots<C::Conn>>>,
    conn: Option<C::Conn>,
    broken: bool,
    reused: bool,
}

impl<C: Connector> Pooled<'_, C> {
    /// The connection may hold a half-read reply or be dead: close it instead of reusing it.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether the connection sat idle in the pool before this checkout (rather than being
    /// opened for it): such a connection may have died unnoticed while the server restarted.
    pub fn reused(&self) -> bool {
        self.reused
    }
}

impl<C: Connector> Deref for Pooled<'_, C> {
    type Target = C::Conn;
    fn deref(&self) -> &C::Conn {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl<C: Connector> DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C::Conn {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl<C: Connector> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.broken {
            self.pool.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let keep = !self.broken && self.pool.slots.is_current(&self.slots);
        let mut inner = self.slots.inner.lock();
        let closed = if keep {
            inner.idle.push((conn, Instant::now()));
            None
        } else {
            inner.open -= 1;
            Some(conn)
        };
        drop(inner);
        self.slots.returned.notify_one();
        drop(closed); // close the socket outside the lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counter {
        made: AtomicUsize,
        fail: bool,
    }

    impl Connector for Counter {
        type Conn = usize;
        fn connect(&self) -> Result<usize> {
            if self.fail {
                return Err(Error::new(ErrorKind::Connection, "refused"));
            }
            Ok(self.made.fetch_add(1, Ordering::SeqCst))
        }
        fn describe(&self) -> String {
            "test".into()
        }
        /// Even-numbered connections fail their health check once idle for 20 ms.
        fn healthy(&self, conn: &mut usize, idle_since: Instant) -> bool {
            *conn % 2 == 1 || idle_since.elapsed() < Duration::from_millis(20)
        }
    }

    fn pool_with(max: usize, fail: bool, breaker: BreakerConfig) -> Pool<Counter> {
        Pool::new(
            Counter {
                made: AtomicUsize::new(0),
                fail,
            },
            max,
            Duration::from_millis(50),
            breaker,
        )
    }

    fn pool(max: usize, fail: bool) -> Pool<Counter> {
        pool_with(max, fail, BreakerConfig::default())
    }

    #[test]
    fn knows_reused_from_new_connections() {
        let p = pool(2, false);
        let first = p.get().unwrap();
        assert!(!first.reused());
        drop(first);
        assert!(p.get().unwrap().reused());
    }

    /// (open, idle)
    fn counts<C: Connector>(p: &Pool<C>) -> (usize, usize) {
        let stats = p.stats();
        (stats.open, stats.idle)
    }

    #[test]
    fn unhealthy_idle_connections_are_replaced() {
        let p = pool(2, false);
        drop(p.get().unwrap()); // connection 0: fails its check once idle 20 ms
        std::thread::sleep(Duration::from_millis(25));
        let c = p.get().unwrap();
        assert_eq!(*c, 1);
        assert!(!c.reused());
        drop(c);
        assert_eq!(counts(&p), (1, 1));
        assert_eq!((p.stats().opened, p.stats().dropped), (2, 1));
    }

    #[test]
    fn discard_idle_keeps_connections_in_use() {
        let p = pool(3, false);
        let held = p.get().unwrap();
        drop(p.get().unwrap());
        assert_eq!(counts(&p), (2, 1));
        p.discard_idle();
        assert_eq!(counts(&p), (1, 0));
        drop(held);
        assert_eq!(counts(&p), (1, 1));
        assert_eq!((p.stats().opened, p.stats().dropped), (2, 1));
    }

    #[test]
    fn failed_connects_open_the_circuit() {
        let p = pool_with(
            2,
            true,
            BreakerConfig {
                failures: 2,
                reset_timeout: Duration::from_secs(60),
            },
        );
        assert!(p.get().err().unwrap().message.contains("refused"));
        assert!(p.get().err().unwrap().message.contains("refused"));
        let fast = p.get().err().unwrap();
        assert_eq!(fast.kind, ErrorKind::Connection);
        assert!(fast.message.contains("circuit open"), "{}", fast.message);
    }

    #[test]
    fn reuses_the_most_recent_connection() {
        let p = pool(4, false);
        let a = *p.get().unwrap();
        let b = *p.get().unwrap();
        assert_eq!(a, b);
        assert_eq!(counts(&p), (1, 1));
    }

    #[test]
    fn bounded_and_times_out_when_exhausted() {
        let p = pool(2, false);
        let _a = p.get().unwrap();
        let _b = p.get().unwrap();
        let started = Instant::now();
        let err = p.get().err().unwrap();
        assert_eq!(err.kind, ErrorKind::PoolExhausted);
        assert!(err.message.contains("max_connections"));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_waiter_gets_the_returned_connection() {
        let p = Arc::new(pool(1, false));
        let held = p.get().unwrap();
        let value = *held;
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *p.get().unwrap());
            std::thread::sleep(Duration::from_millis(10));
            drop(held);
            assert_eq!(waiter.join().unwrap(), value);
        });
    }

    #[test]
    fn broken_connections_are_dropped() {
        let p = pool(2, false);
        let mut c = p.get().unwrap();
        c.mark_broken();
        drop(c);
        assert_eq!(counts(&p), (0, 0));
        assert_eq!(*p.get().unwrap(), 1);
        assert_eq!((p.stats().opened, p.stats().dropped), (2, 1));
    }

    #[test]
    fn failed_connects_release_their_slot() {
        let p = pool(1, true);
        assert!(p.get().is_err());
        assert_eq!(p.stats().open, 0);
    }

    #[test]
    fn clear_drops_idle_and_in_use_connections() {
        let p = pool(3, false);
        let held = p.get().unwrap();
        drop(p.get().unwrap());
        p.clear();
        assert_eq!(counts(&p), (0, 0));
        drop(held);
        assert_eq!(counts(&p), (0, 0));
    }

    #[test]
    fn threads_never_exceed_the_bound() {
        let p = pool(3, false);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        if let Ok(c) = p.get() {
                            assert!(p.stats().open <= 3);
                            drop(c);
                        }
                    }
                });
            }
        });
        assert!(p.stats().open <= 3);
    }
}
