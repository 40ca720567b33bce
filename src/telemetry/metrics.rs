//! A cache's own counters: calls, errors and latencies per Redis command, and hits and misses.
//!
//! Recording is a handful of relaxed atomic increments: a command's entry is looked up under a
//! read lock (written once, on the command's first use), and nothing is logged. Latencies go to
//! a log-linear histogram — 8 buckets per power of two of nanoseconds — so a percentile is known
//! to within 1/8 of its value without keeping samples.

use crate::process::fork::ForkLocal;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

const SUB_BUCKETS: u32 = 8;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
const BUCKETS: usize = (64 * SUB_BUCKETS) as usize;

/// The histogram bucket of a latency of `ns` nanoseconds: exact below 8 ns, then 8 buckets per
/// power of two.
fn bucket_of(ns: u64) -> usize {
    if ns < u64::from(SUB_BUCKETS) {
        return ns as usize;
    }
    let exponent = 63 - ns.leading_zeros();
    let sub = (ns >> (exponent - SUB_BITS)) & u64::from(SUB_BUCKETS - 1);
    ((exponent - SUB_BITS + 1) * SUB_BUCKETS) as usize + sub as usize
}

/// The largest latency (ns) bucket `index` holds: what a percentile in that bucket reports.
fn bucket_ceiling(index: usize) -> u64 {
    let index = index as u64;
    let sub_buckets = u64::from(SUB_BUCKETS);
    if index < sub_buckets {
        return index;
    }
    let exponent = index / sub_buckets - 1 + u64::from(SUB_BITS);
    let sub = index % sub_buckets;
    let low = (sub_buckets + sub) << (exponent - u64::from(SUB_BITS));
    low + ((1u64 << (exponent - u64::from(SUB_BITS))) - 1)
}

struct CommandStats {
    calls: AtomicU64,
    errors: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
    buckets: Box<[AtomicU64]>,
}

impl CommandStats {
    fn new() -> Self {
        Self {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, took: Duration, ok: bool) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
        }
        self.total_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> CommandSnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let recorded: u64 = counts.iter().sum();
        let percentile = |p: f64| {
            let rank = ((recorded as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return bucket_ceiling(index);
                }
            }
            0
        };
        let calls = self.calls.load(Relaxed);
        let total_ns = self.total_ns.load(Relaxed);
        let max_ns = self.max_ns.load(Relaxed);
        CommandSnapshot {
            calls,
            errors: self.errors.load(Relaxed),
            mean_ns: total_ns.checked_div(calls).unwrap_or(0),
            // A bucket's ceiling may pass the largest value seen in it.
            p50_ns: percentile(0.50).min(max_ns),
            p90_ns: percentile(0.90).min(max_ns),
            p99_ns: percentile(0.99).min(max_ns),
            max_ns,
        }
    }

    fn reset(&self) {
        for counter in [&self.calls, &self.errors, &self.total_ns, &self.max_ns] {
            counter.store(0, Relaxed);
        }
        self.buckets.iter().for_each(|b| b.store(0, Relaxed));
    }
}

/// One command's figures at the time they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSnapshot {
    pub calls: u64,
    pub errors: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// A cache's counters. A forked child counts from zero: its copy of the parent's figures is
/// dropped with the parent's lock, which a parent thread may have held at the fork.
pub struct Metrics(ForkLocal<Counters>);

#[derive(Default)]
struct Counters {
    commands: RwLock<HashMap<Vec<u8>, Arc<CommandStats>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// The hits served by the client-side cache (also counted in `hits`).
    local_hits: AtomicU64,
    /// `get` and `aget` calls by outcome: what django-prometheus's `django_cache_get_*` count.
    gets: [AtomicU64; 3],
    /// The errors `IGNORE_EXCEPTIONS` swallowed, by the redis-py class they were raised as:
    /// written only on that failure path.
    ignored: parking_lot::Mutex<HashMap<String, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self(ForkLocal::new(Counters::default))
    }
}

type Scopes = parking_lot::Mutex<HashMap<String, std::sync::Weak<Metrics>>>;
static SCOPES: std::sync::LazyLock<ForkLocal<Scopes>> =
    std::sync::LazyLock::new(|| ForkLocal::new(Scopes::default));

/// The counters of the caches built from the same settings (`scope`) in this process: Django
/// makes a cache object per thread, and `metrics()` must count them all, whichever thread asks.
pub fn shared(scope: &str) -> Arc<Metrics> {
    let scopes = SCOPES.current();
    let mut scopes = scopes.lock();
    scopes.retain(|_, metrics| metrics.strong_count() > 0);
    if let Some(metrics) = scopes.get(scope).and_then(std::sync::Weak::upgrade) {
        return metrics;
    }
    let metrics = Arc::new(Metrics::default());
    scopes.insert(scope.to_owned(), Arc::downgrade(&metrics));
    metrics
}

/// How one `get` (or `aget`) call ended.
#[derive(Clone, Copy)]
pub enum GetOutcome {
    Hit = 0,
    Miss = 1,
    Failed = 2,
}

impl Metrics {
    pub fn get_call(&self, outcome: GetOutcome) {
        self.0
            .with(|c| c.gets[outcome as usize].fetch_add(1, Relaxed));
    }

    /// `get`/`aget` calls since the last reset: hits, misses, failures.
    pub fn get_calls(&self) -> [u64; 3] {
        self.0.with(|c| c.gets.each_ref().map(|n| n.load(Relaxed)))
    }

    /// Count one request named `command` (its first command's name) that took `took`.
    pub fn record(&self, command: &[u8], took: Duration, ok: bool) {
        self.0.with(|counters| counters.record(command, took, ok))
    }

    pub fn hits(&self, n: u64) {
        self.0.with(|c| c.hits.fetch_add(n, Relaxed));
    }

    pub fn local_hits(&self, n: u64) {
        self.0.with(|c| c.local_hits.fetch_add(n, Relaxed));
    }

    pub fn local_hit_count(&self) -> u64 {
        self.0.with(|c| c.local_hits.load(Relaxed))
    }

    pub fn misses(&self, n: u64) {
        self.0.with(|c| c.misses.fetch_add(n, Relaxed));
    }

    /// One error of class `class` that `IGNORE_EXCEPTIONS` swallowed.
    pub fn ignored(&self, class: &str) {
        self.0.with(|c| {
            let mut ignored = c.ignored.lock();
            match ignored.get_mut(class) {
                Some(count) => *count += 1,
                None => {
                    ignored.insert(class.to_owned(), 1);
                }
            }
        })
    }

    /// The swallowed errors by class, sorted by class.
    pub fn ignored_counts(&self) -> Vec<(String, u64)> {
        let mut counts: Vec<_> = self
            .0
            .with(|c| c.ignored.lock().clone().into_iter().collect());
        counts.sort();
        counts
    }

    /// (hits, misses)
    pub fn lookups(&self) -> (u64, u64) {
        self.0
            .with(|c| (c.hits.load(Relaxed), c.misses.load(Relaxed)))
    }

    /// Every command used since the last reset, by upper-case name, sorted.
    pub fn commands(&self) -> Vec<(String, CommandSnapshot)> {
        self.0.with(|counters| {
            let commands = counters.commands.read();
            let mut out: Vec<(String, CommandSnapshot)> = commands
                .iter()
                .filter(|(name, _)| !name.iter().any(u8::is_ascii_lowercase))
                .map(|(name, stats)| (String::from_utf8_lossy(name).into_owned(), stats.snapshot()))
                .filter(|(_, snapshot)| snapshot.calls > 0)
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        })
    }

    pub fn reset(&self) {
        self.0.with(|c| {
            c.commands.read().values().for_each(|s| s.reset());
            c.hits.store(0, Relaxed);
            c.misses.store(0, Relaxed);
            c.local_hits.store(0, Relaxed);
            c.gets.iter().for_each(|n| n.store(0, Relaxed));
            c.ignored.lock().clear();
        })
    }
}

impl Counters {
    fn record(&self, command: &[u8], took: Duration, ok: bool) {
        if let Some(stats) = self.commands.read().get(command) {
            return stats.record(took, ok);
        }
        // First use of this command (or a lower-case spelling of one, via `execute`).
        let name = command.to_ascii_uppercase();
        let stats = Arc::clone(
            self.commands
                .write()
                .entry(name)
                .or_insert_with(|| Arc::new(CommandStats::new())),
        );
        if command.iter().any(u8::is_ascii_lowercase) {
            // Keep the exact spelling too, so the next call finds it under the read lock.
            self.commands
                .write()
                .entry(command.to_vec())
                .or_insert_with(|| Arc::clone(&stats));
        }
        stats.record(took, ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for ns in (0..200_000u64).chain([1 << 40, u64::MAX / 2, u64::MAX]) {
            let index = bucket_of(ns);
            assert!(index < BUCKETS, "{ns} -> {index}");
            assert!(index >= last, "buckets must grow with the latency");
            last = index;
            let ceiling = bucket_ceiling(index);
            assert!(
                ceiling >= ns,
                "{ns} is above its bucket's ceiling {ceiling}"
            );
            // Within 1/8 of the value (exact below 8 ns).
            assert!(ceiling - ns <= ns / 8, "{ns}: ceiling {ceiling} too far");
        }
    }

    #[test]
    fn a_forked_child_counts_from_zero_whatever_lock_the_parent_held() {
        let metrics = Metrics::default();
        metrics.hits(3);
        metrics.record(b"GET", Duration::from_micros(10), true);
        let parents = metrics.0.current();
        let held = parents.commands.write(); // a parent thread adding a command at the fork
        assert!(crate::process::fork::in_forked_child(|| {
            metrics.record(b"SET", Duration::from_micros(10), true); // would wait forever
            let names: Vec<String> = metrics.commands().into_iter().map(|(n, _)| n).collect();
            metrics.lookups() == (0, 0) && names == ["SET"]
        }));
        drop(held);
        assert_eq!(metrics.lookups().0, 3); // the parent counts on
    }

    #[test]
    fn percentiles_calls_errors_and_reset() {
        let metrics = Metrics::default();
        for us in 1..=100u64 {
            metrics.record(b"GET", Duration::from_micros(us), us != 7);
        }
        metrics.record(b"set", Duration::from_micros(3), true);
        metrics.record(b"SET", Duration::from_micros(5), true);
        metrics.hits(3);
        metrics.misses(1);
        metrics.ignored("OutOfMemoryError");
        metrics.ignored("ConnectionError");
        metrics.ignored("OutOfMemoryError");
        assert_eq!(
            metrics.ignored_counts(),
            [
                ("ConnectionError".to_owned(), 1),
                ("OutOfMemoryError".to_owned(), 2)
            ]
        );
        let commands = metrics.commands();
        let names: Vec<_> = commands.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["GET", "SET"]);
        let get = &commands[0].1;
        assert_eq!((get.calls, get.errors), (100, 1));
        let near = |ns: u64, us: u64| {
            let want = us * 1000;
            assert!(
                ns >= want && ns <= want + want / 8,
                "{ns} ns is not ~{us} µs"
            );
        };
        near(get.p50_ns, 50);
        near(get.p90_ns, 90);
        near(get.p99_ns, 99);
        assert_eq!(get.max_ns, 100_000);
        assert_eq!(get.mean_ns, 50_500);
        assert_eq!(commands[1].1.calls, 2);
        assert_eq!(metrics.lookups(), (3, 1));
        metrics.reset();
        assert!(metrics.commands().is_empty());
        assert_eq!(metrics.lookups(), (0, 0));
        assert!(metrics.ignored_counts().is_empty());
    }
}
