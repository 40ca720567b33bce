//! Client-side caching: values recently read kept in process memory, and dropped as soon as
//! Redis says they changed.
//!
//! Redis tracks the keys for us (`CLIENT TRACKING ... BCAST PREFIX <the cache's prefix>`): on
//! a connection of its own, a listener thread subscribes to `__redis__:invalidate` (RESP2, the
//! connection redirecting to itself) and evicts each key named there — a write by any client,
//! an expiry, an eviction; a `FLUSHDB`/`FLUSHALL` empties the store.
//!
//! The races, and what closes them:
//! - A read that was in flight while its key changed may carry the old value. Every eviction
//!   bumps `epoch` under the store's lock, and a read is stored only if the epoch it saw before
//!   sending is still current (`offer`): its value cannot predate an invalidation already
//!   processed, and one processed later evicts it.
//! - While the listener is not connected nothing is known about writes: the store is emptied
//!   and nothing is stored (`live` is false) until tracking is on again.
//! - This process's own writes are evicted at once by the client (`evict`), not when the
//!   server's message arrives, so a process always reads its own writes.
//! - A forked child starts empty, with a listener of its own — and with a store of its own: the
//!   parent's listener thread may have held the store's lock at the fork, and would never
//!   release it in the child.

use crate::errors::Result;
use crate::process::fork::{generation, ForkLocal};
use crate::resp::pack::Packed;
use crate::settings::location::{ConnectionOptions, ServerConfig};
use crate::settings::resolved::LocalConfig;
use crate::transport::connector::{shared_pool, RedisPool};
use parking_lot::Mutex;
use redis::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

struct Entry {
    value: Arc<[u8]>,
    expires: Instant,
    /// Its place in `Store::recency`.
    used: u64,
}

/// A map with least-recently-used eviction by entry count and by bytes.
#[derive(Default)]
struct Store {
    entries: HashMap<Arc<[u8]>, Entry>,
    /// Use tick -> key; the first is the least recently used.
    recency: BTreeMap<u64, Arc<[u8]>>,
    tick: u64,
    bytes: usize,
}

impl Store {
    fn cost(key: &[u8], value: &[u8]) -> usize {
        key.len() + value.len() + 64 // the entry's bookkeeping, roughly
    }

    fn get(&mut self, key: &[u8], now: Instant) -> Option<Arc<[u8]>> {
        let entry = self.entries.get_mut(key)?;
        if entry.expires <= now {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let shared_key = self.recency.remove(&entry.used)?;
        entry.used = self.tick;
        self.recency.insert(self.tick, shared_key);
        Some(Arc::clone(&entry.value))
    }

    fn insert(&mut self, key: &[u8], value: &[u8], expires: Instant, config: &LocalConfig) {
        self.remove(key);
        let cost = Self::cost(key, value);
        if cost > config.max_bytes || config.max_entries == 0 {
            return;
        }
        while self.entries.len() >= config.max_entries || self.bytes + cost > config.max_bytes {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.remove(&oldest);
        }
        self.tick += 1;
        let key: Arc<[u8]> = key.into();
        self.recency.insert(self.tick, Arc::clone(&key));
        self.bytes += cost;
        let entry = Entry {
            value: value.into(),
            expires,
            used: self.tick,
        };
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some((key, entry)) = self.entries.remove_entry(key) {
            self.recency.remove(&entry.used);
            self.bytes -= Self::cost(&key, &entry.value);
        }
    }

    fn clear(&mut self) {
        *self = Store::default();
    }
}

pub struct LocalCache {
    config: LocalConfig,
    /// Taken through `with_store` only: a forked child gets a fresh store, as the parent's
    /// lock may have been held, at the fork, by its listener thread (which did not come along).
    store: ForkLocal<Mutex<Store>>,
    /// Bumped by every eviction, flush and change of the listener's state.
    epoch: AtomicU64,
    live: AtomicBool,
    /// Invalidation messages received from the server (each names keys, or none: a flush).
    invalidations: AtomicU64,
    /// The fork generation (+1) whose listener runs; 0: none yet.
    listening: AtomicU64,
    pool: Arc<RedisPool>,
    /// `BCAST PREFIX`: the cache's key prefix, or None to track every key.
    prefix: Option<Vec<u8>>,
}

/// How long a quiet listener waits before checking the server with a PING (and whether the
/// cache is still wanted).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// What `lookup` found.
pub enum Lookup {
    Hit(Arc<[u8]>),
    /// Not here: read it from Redis, then `offer` it with this epoch.
    Miss(u64),
}

impl LocalCache {
    pub fn new(config: LocalConfig, pool: Arc<RedisPool>, prefix: Option<Vec<u8>>) -> Arc<Self> {
        Arc::new(Self {
            config,
            store: ForkLocal::new(Mutex::default),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            invalidations: AtomicU64::new(0),
            listening: AtomicU64::new(0),
            pool,
            prefix,
        })
    }

    /// Run `f` on the store, locked (see `store`).
    fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        self.store.with(|store| f(&mut store.lock()))
    }

    pub fn lookup(self: &Arc<Self>, key: &[u8]) -> Lookup {
        self.ensure_listener();
        self.with_store(|store| {
            if self.live.load(Ordering::Acquire) {
                if let Some(value) = store.get(key, Instant::now()) {
                    return Lookup::Hit(value);
                }
            }
            Lookup::Miss(self.epoch.load(Ordering::Acquire))
        })
    }

    /// Keep `value`, read from Redis with `pttl_ms` left, unless something changed since
    /// `epoch` (see the module's notes).
    pub fn offer(&self, key: &[u8], value: &[u8], pttl_ms: i64, epoch: u64) {
        let ttl = match u64::try_from(pttl_ms) {
            Ok(ms) => self.config.ttl.min(Duration::from_millis(ms)),
            Err(_) if pttl_ms == -1 => self.config.ttl, // no expiry in Redis
            Err(_) => return,                           // gone already
        };
        if ttl.is_zero() {
            return;
        }
        self.with_store(|store| {
            if self.live.load(Ordering::Acquire) && self.epoch.load(Ordering::Acquire) == epoch {
                store.insert(key, value, Instant::now() + ttl, &self.config);
            }
        })
    }

    /// Apply one invalidation message: the keys it names, or nil for a flushed database.
    /// It is counted under the store's lock, so whoever sees the count also sees its effect.
    fn invalidated(&self, payload: Value) {
        self.with_store(|store| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            match payload {
                Value::Array(keys) => keys.iter().for_each(|key| {
                    if let Value::BulkString(key) = key {
                        store.remove(key);
                    }
                }),
                _ => store.clear(),
            }
            self.invalidations.fetch_add(1, Ordering::AcqRel);
        })
    }

    /// Forget `keys` (this process wrote them).
    pub fn evict<K: AsRef<[u8]>>(&self, keys: &[K]) {
        self.with_store(|store| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            keys.iter().for_each(|key| store.remove(key.as_ref()));
        })
    }

    /// Forget everything (this process cleared the cache).
    pub fn flush(&self) {
        self.with_store(|store| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            store.clear();
        })
    }

    fn set_live(&self, live: bool) {
        self.with_store(|store| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            store.clear();
            self.live.store(live, Ordering::Release);
        })
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Invalidation messages handled since the cache was made (they are applied in the order
    /// the server sent them, so a count past a write's message means the write's was applied).
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Acquire)
    }

    /// (entries, bytes) held now.
    pub fn size(&self) -> (usize, usize) {
        self.with_store(|store| (store.entries.len(), store.bytes))
    }

    /// Start this process's listener on first use (and again in a forked child, whose copy
    /// of the parent's store is emptied: its listener did not come along).
    fn ensure_listener(self: &Arc<Self>) {
        let current = generation() + 1;
        let seen = self.listening.load(Ordering::Acquire);
        if seen == current
            || self
                .listening
                .compare_exchange(seen, current, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        self.set_live(false);
        let weak = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("drr-invalidate".into())
            .spawn(move || listen(weak, current));
        if started.is_err() {
            // No thread, no invalidations: the cache stays off (reads go to Redis).
            self.listening.store(0, Ordering::Release);
        }
    }
}

type Registry = Mutex<
    HashMap<
        (
            ServerConfig,
            ConnectionOptions,
            LocalConfig,
            Option<Vec<u8>>,
        ),
        Weak<LocalCache>,
    >,
>;

static LOCALS: LazyLock<ForkLocal<Registry>> = LazyLock::new(|| ForkLocal::new(Registry::default));

/// The process's local cache for this server, options and key prefix: Django makes a cache
/// object per thread, and they must share one store and one tracking connection.
pub fn shared_local(
    server: &ServerConfig,
    options: &ConnectionOptions,
    config: LocalConfig,
    prefix: Option<String>,
) -> Result<Arc<LocalCache>> {
    let prefix = prefix.map(String::into_bytes);
    let registry = LOCALS.current();
    let mut locals = registry.lock();
    locals.retain(|_, cache| cache.strong_count() > 0);
    let key = (server.clone(), options.clone(), config, prefix.clone());
    if let Some(cache) = locals.get(&key).and_then(Weak::upgrade) {
        return Ok(cache);
    }
    let cache = LocalCache::new(config, shared_pool(server, options)?, prefix);
    locals.insert(key, Arc::downgrade(&cache));
    Ok(cache)
}

/// The listener thread: keep a tracking connection up while the cache exists in this process.
fn listen(cache: Weak<LocalCache>, generation_plus_one: u64) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        if strong.listening.load(Ordering::Acquire) != generation_plus_one {
            return; // a forked child's listener took over
        }
        let outcome = track(&strong, &cache);
        strong.set_live(false);
        drop(strong);
        match outcome {
            Ok(()) => return, // the cache is gone
            Err(_) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// One tracking connection's life: set up, then evict what the server names until the
/// connection fails (Err) or the cache is dropped (Ok).
fn track(cache: &Arc<LocalCache>, weak: &Weak<LocalCache>) -> std::result::Result<(), String> {
    use crate::transport::pool::Connector;
    let mut conn = cache.pool.connector().connect().map_err(|e| e.message)?;
    let mut ask = |args: &[&[u8]]| -> std::result::Result<Value, String> {
        let packed = Packed::command(args);
        let reply = conn.exchange(packed.bytes(), 1).map_err(|e| e.message)?;
        match reply.into_iter().next() {
            Some(Value::ServerError(err)) => Err(crate::errors::Error::from_server(&err).message),
            reply => Ok(reply.unwrap_or_default()),
        }
    };
    let Value::Int(id) = ask(&[b"CLIENT", b"ID"])? else {
        return Err("CLIENT ID did not answer an integer".into());
    };
    let id = id.to_string();
    let mut tracking: Vec<&[u8]> = vec![
        b"CLIENT",
        b"TRACKING",
        b"ON",
        b"REDIRECT",
        id.as_bytes(),
        b"BCAST",
    ];
    if let Some(prefix) = &cache.prefix {
        tracking.extend([b"PREFIX".as_slice(), prefix.as_slice()]);
    }
    ask(&tracking)?;
    ask(&[b"SUBSCRIBE", b"__redis__:invalidate"])?;
    cache.set_live(true);
    // A PING sent in a quiet moment, not answered yet: the server must answer by the next.
    let mut pinged = false;
    loop {
        match conn.listen(HEARTBEAT).map_err(|e| e.message)? {
            Some(Value::Array(message)) => {
                pinged = false;
                // ["message", channel, payload]; the answer to PING is ["pong", ""].
                if let Ok([Value::BulkString(kind), _, payload]) = <[Value; 3]>::try_from(message) {
                    if kind == b"message" {
                        cache.invalidated(payload);
                    }
                }
            }
            Some(_) => pinged = false,
            None if pinged => return Err("the server did not answer PING".into()),
            None => {
                // Quiet: is the cache still wanted, and the server still there?
                if weak.strong_count() <= 1 {
                    return Ok(()); // only this thread holds it
                }
                conn.send(Packed::command(&[b"PING"]).bytes())
                    .map_err(|e| e.message)?;
                pinged = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_entries: usize, max_bytes: usize) -> LocalConfig {
        LocalConfig {
            max_entries,
            max_bytes,
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn least_recently_used_goes_first_by_count_and_by_bytes() {
        let cfg = config(3, 10_000);
        let mut store = Store::default();
        let later = Instant::now() + Duration::from_secs(60);
        for key in [b"a", b"b", b"c"] {
            store.insert(key, b"v", later, &cfg);
        }
        store.get(b"a", Instant::now()); // b is now the least recently used
        store.insert(b"d", b"v", later, &cfg);
        assert!(store.get(b"b", Instant::now()).is_none());
        assert_eq!(store.entries.len(), 3);

        let cfg = config(100, 3 * (1 + 100 + 64));
        let mut store = Store::default();
        for key in [b"1", b"2", b"3", b"4"] {
            store.insert(key, &[0; 100], later, &cfg);
        }
        assert_eq!(store.entries.len(), 3);
        assert!(store.bytes <= cfg.max_bytes);
        assert!(store.get(b"1", Instant::now()).is_none());
        store.insert(b"huge", &[0; 1000], later, &cfg); // bigger than the whole budget
        assert!(store.get(b"huge", Instant::now()).is_none());
        assert_eq!(store.entries.len(), 3);
    }

    #[test]
    fn a_child_forked_while_the_store_was_locked_gets_its_own() {
        let (server, options) = crate::settings::location::parse_url(
            "redis://127.0.0.1:1/0",
            &ConnectionOptions::default(),
        )
        .unwrap();
        let cache = LocalCache::new(
            config(10, 10_000),
            shared_pool(&server, &options).unwrap(),
            None,
        );
        cache.set_live(true);
        cache.offer(b"k", b"v", -1, cache.epoch.load(Ordering::Acquire));
        assert_eq!(cache.size(), (1, 1 + 1 + 64));
        // The listener thread holds the lock when the process forks; in the child it never
        // lets go.
        let store = cache.store.current();
        let held = store.lock();
        assert!(crate::process::fork::in_forked_child(|| {
            let empty = cache.size() == (0, 0); // would block forever on the parent's lock
            cache.flush();
            empty
        }));
        drop(held);
        assert_eq!(cache.size(), (1, 1 + 1 + 64)); // the parent's store is its own
    }

    #[test]
    fn expired_entries_are_not_served() {
        let mut store = Store::default();
        let now = Instant::now();
        store.insert(
            b"k",
            b"v",
            now + Duration::from_millis(5),
            &config(10, 10_000),
        );
        assert!(store.get(b"k", now).is_some());
        assert!(store.get(b"k", now + Duration::from_millis(6)).is_none());
        assert_eq!(
            (store.entries.len(), store.bytes, store.recency.len()),
            (0, 0, 0)
        );
    }
}
