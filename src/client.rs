//! The native client: one Python object per cache, holding its topology and codec. Each method
//! packs its command while attached to the interpreter, releases the GIL for the round trip, and
//! converts the reply once it is attached again.

use crate::breaker::{BreakerConfig, State as BreakerState};
use crate::codec::serialize::Serializer;
use crate::codec::{Codec, Compressor, Encoded};
use crate::config::{parse_url, Address, ConnectionOptions, ServerConfig, TlsOptions};
use crate::connection::{
    arun_all, arun_asking, run_all, run_asking, run_fanout, run_one, RedisPool,
};
use crate::errors::{check_bulk_len, Error, ErrorKind, Result};
use crate::local::{shared_local, LocalCache, LocalConfig, Lookup};
use crate::metrics::Metrics;
use crate::reply::{self, Reply};
use crate::resp::Packed;
use crate::runtime::{awaitable, settled};
use crate::sentinel::Sentinels;
use crate::topology::Topology;
use futures_util::future::join_all;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use redis::Value;
use std::borrow::Cow;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Django warns about keys memcached would refuse, so code stays portable between backends.
const MEMCACHE_MAX_KEY_LENGTH: usize = 250;

static CACHE_KEY_WARNING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// An argument as bytes: str as UTF-8, ints and floats in decimal (as redis-py sends them).
fn arg<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    let bytes = if let Ok(s) = obj.cast::<PyString>() {
        s.to_str()?.as_bytes()
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        b.as_bytes()
    } else {
        return number_arg(obj).map(Cow::Owned);
    };
    check_bulk_len(bytes.len(), || "an argument".into())?;
    Ok(Cow::Borrowed(bytes))
}

fn number_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "a bool is not a valid Redis argument; convert it to int, str or bytes",
        ));
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        return Ok(obj.str()?.to_str()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "invalid Redis argument of type {}: use str, bytes, int or float",
        obj.get_type().name()?
    )))
}

/// A cache key (already made by the key function), warning as Django does on memcached-unsafe keys.
fn cache_key<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(s) = key.cast::<PyString>() {
        let text = s.to_str()?;
        check_key_text(key.py(), text)?;
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    arg(key)
}

/// Django's checks on a made key: memcached's length and character limits (warnings only), and
/// Redis's own limit (an error).
fn check_key_text(py: Python<'_>, text: &str) -> PyResult<()> {
    check_bulk_len(text.len(), || "the key".into())?;
    let too_long =
        text.len() > MEMCACHE_MAX_KEY_LENGTH && text.chars().count() > MEMCACHE_MAX_KEY_LENGTH;
    let odd_characters = text.bytes().any(|b| b < 33 || b == 127);
    if too_long || odd_characters {
        let key = PyString::new(py, text).into_any();
        if too_long {
            warn_key(
                &key,
                &format!(
                    "Cache key will cause errors if used with memcached: {} (longer than {MEMCACHE_MAX_KEY_LENGTH})",
                    key.repr()?
                ),
            )?;
        }
        if odd_characters {
            warn_key(
                &key,
                &format!("Cache key contains characters that will cause errors if used with memcached: {}", key.repr()?),
            )?;
        }
    }
    Ok(())
}

/// Django's default key function, `"%s:%s:%s" % (KEY_PREFIX, version, key)`, applied here to
/// many keys at once: a Python call per key would cost more than the rest of `get_many`.
fn format_key(prefix: &str, version: i64, key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let shown;
    let text = match key.cast_exact::<PyString>() {
        Ok(s) => s.to_str()?,
        Err(_) => {
            shown = key.str()?;
            shown.to_str()?
        }
    };
    let mut digits = itoa::Buffer::new();
    let version = digits.format(version);
    let mut made = String::with_capacity(prefix.len() + version.len() + text.len() + 2);
    for part in [prefix, ":", version, ":", text] {
        made.push_str(part);
    }
    check_key_text(key.py(), &made)?;
    Ok(made.into_bytes())
}

/// One key of a multi-key call: made here with `version` (see `call_keys`), else already made.
fn made_key(
    prefix: Option<&str>,
    key: &Bound<'_, PyAny>,
    version: Option<i64>,
) -> PyResult<Cow<'static, [u8]>> {
    match (prefix, version) {
        (Some(prefix), Some(version)) => Ok(Cow::Owned(format_key(prefix, version, key)?)),
        (None, Some(_)) => Err(PyTypeError::new_err(
            "this client makes keys in Python: pass made keys, not a version",
        )),
        (_, None) => Ok(Cow::Owned(cache_key(key)?.into_owned())),
    }
}

/// A caller's key object and the key made of it.
type CallKey<'py> = (Bound<'py, PyAny>, Cow<'static, [u8]>);

/// The keys of a multi-key call with the caller's key objects (the result maps those back).
/// With `version` they are made here (`format_key`); without, `keys` maps made keys to the
/// caller's keys, or lists made keys.
fn call_keys<'py>(
    prefix: Option<&str>,
    keys: &Bound<'py, PyAny>,
    version: Option<i64>,
) -> PyResult<Vec<CallKey<'py>>> {
    match (version, keys.cast::<PyDict>()) {
        (None, Ok(dict)) => dict
            .iter()
            .map(|(made, key)| Ok((key, made_key(prefix, &made, None)?)))
            .collect(),
        _ => keys
            .try_iter()?
            .map(|key| {
                let key = key?;
                let made = made_key(prefix, &key, version)?;
                Ok((key, made))
            })
            .collect(),
    }
}

fn warn_key(key: &Bound<'_, PyAny>, message: &str) -> PyResult<()> {
    let py = key.py();
    let category = CACHE_KEY_WARNING.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("django.core.cache.backends.base")?
                .getattr("CacheKeyWarning")?
                .unbind(),
        )
    })?;
    let category = category.bind(py).cast::<pyo3::types::PyType>()?;
    PyErr::warn(
        py,
        category,
        &std::ffi::CString::new(message).unwrap_or_default(),
        1,
    )
}

fn seconds(value: Option<f64>) -> Option<Duration> {
    value
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
}

#[pyclass(frozen, module = "django_redis_rs._native", name = "Client")]
pub struct Client {
    /// Shared with the async calls in flight, which outlive the Python call that made them.
    shared: Arc<Shared>,
    /// Servers as `host:port db=N`, never with credentials.
    servers: Vec<String>,
    /// `KEY_PREFIX` when the cache uses Django's default key function: multi-key calls given a
    /// `version` then make their keys here.
    key_prefix: Option<String>,
}

/// What the local cache holds of a get_many's keys.
struct ManyLookup {
    /// (key index, value) of the keys held locally.
    hits: Vec<(usize, Arc<[u8]>)>,
    /// The indexes of the keys to ask Redis for ...
    misses: Vec<usize>,
    /// ... and, for each, the epoch to `offer` its value with (None: no local cache).
    epochs: Vec<Option<u64>>,
}

pub struct Shared {
    topology: Topology,
    codec: Codec,
    metrics: Metrics,
    /// `CLIENT_SIDE_CACHE`: values kept in this process, shared by the caches configured alike.
    local: Option<Arc<LocalCache>>,
}

impl std::ops::Deref for Client {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Shared {
    /// After a write by this process (done or failed): its keys leave the local cache now —
    /// the server's invalidation message follows later — so the process reads its own writes.
    fn wrote<K: AsRef<[u8]>>(&self, keys: &[K]) {
        if let Some(local) = &self.local {
            local.evict(keys);
        }
    }

    /// After a raw command: the keys it names, or everything when it names none (`FLUSHDB`).
    fn wrote_keys_of(&self, keys: &[&[u8]]) {
        if keys.is_empty() {
            self.wrote_all();
        } else {
            self.wrote(keys);
        }
    }

    /// After `clear` or `delete_pattern`: the local cache starts empty.
    fn wrote_all(&self) {
        if let Some(local) = &self.local {
            local.flush();
        }
    }

    /// GET, with the key's remaining TTL when a local cache will keep the value.
    fn get_request(&self, key: &[u8]) -> Packed {
        let mut packed = Packed::command(&[b"GET", key]);
        if self.local.is_some() {
            packed.extend(&Packed::command(&[b"PTTL", key]));
        }
        packed
    }

    /// A local copy of `key`'s value, counted as a hit; else what to `offer` the value read
    /// from Redis with (None without a local cache).
    fn local_lookup(&self, key: &[u8]) -> std::result::Result<Arc<[u8]>, Option<u64>> {
        match self.local.as_ref().map(|local| local.lookup(key)) {
            Some(Lookup::Hit(value)) => {
                self.metrics.hits(1);
                self.metrics.local_hits(1);
                Ok(value)
            }
            Some(Lookup::Miss(epoch)) => Err(Some(epoch)),
            None => Err(None),
        }
    }

    /// GET's replies (with PTTL when cached locally): the value, offered to the local cache.
    fn got(&self, mut replies: Vec<Value>, key: &[u8], epoch: Option<u64>) -> Value {
        let pttl = match (&self.local, replies.len()) {
            (Some(_), 2) => replies.pop().map(|v| int_of(&v)),
            _ => None,
        };
        let value = replies.pop().unwrap_or(Value::Nil);
        if let (Some(local), Some(epoch), Some(pttl), Value::BulkString(data)) =
            (&self.local, epoch, pttl, &value)
        {
            local.offer(key, data, pttl, epoch);
        }
        value
    }

    /// get_many's first step: the keys' local copies, counted as hits, and the keys to ask
    /// Redis for.
    fn local_lookup_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> ManyLookup {
        let mut lookup = ManyLookup {
            hits: Vec::new(),
            misses: Vec::with_capacity(keys.len()),
            epochs: Vec::with_capacity(keys.len()),
        };
        for (i, key) in keys.iter().enumerate() {
            match self.local_lookup(key.as_ref()) {
                Ok(value) => lookup.hits.push((i, value)),
                Err(epoch) => {
                    lookup.misses.push(i);
                    lookup.epochs.push(epoch);
                }
            }
        }
        lookup
    }

    /// get_many's request to one node: MGET per batch; with a local cache, then a PTTL per
    /// key, in batch order, for the values it will keep.
    fn get_many_request<K: AsRef<[u8]>>(&self, batches: &[Vec<usize>], keys: &[K]) -> Packed {
        let mut packed = per_batch(b"MGET", batches, keys);
        if self.local.is_some() {
            for &i in batches.iter().flatten() {
                packed.extend(&Packed::command(&[b"PTTL", keys[i].as_ref()]));
            }
        }
        packed
    }

    /// get_many's replies: (key index, value) for the keys found, the values offered to the
    /// local cache with their PTTLs and `epochs`; counted as hits and misses.
    fn got_many<K: AsRef<[u8]>>(
        &self,
        results: Vec<(Vec<Vec<usize>>, Vec<Value>)>,
        keys: &[K],
        epochs: &[Option<u64>],
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        let mut found = Vec::with_capacity(keys.len());
        for (batches, replies) in results {
            let mut replies = replies.into_iter();
            let mut values = Vec::new();
            for batch in &batches {
                let Some(Value::Array(batch_values)) = replies.next() else {
                    return Err(Error::new(ErrorKind::Response, "unexpected MGET reply"));
                };
                values.extend(batch.iter().copied().zip(batch_values));
            }
            for (i, value) in values {
                // With a local cache, the PTTLs follow the MGETs: a key each, in batch order.
                let pttl = self.local.as_ref().and_then(|_| replies.next());
                let Value::BulkString(data) = value else {
                    continue;
                };
                if let (Some(local), Some(pttl), Some(epoch)) = (&self.local, pttl, epochs[i]) {
                    local.offer(keys[i].as_ref(), &data, int_of(&pttl), epoch);
                }
                found.push((i, data));
            }
        }
        self.metrics.hits(found.len() as u64);
        self.metrics.misses((keys.len() - found.len()) as u64);
        Ok(found)
    }

    /// A GET's reply as the caller's value (or `default`), counted as a hit or a miss.
    fn found(
        &self,
        py: Python<'_>,
        value: Value,
        key: &[u8],
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match value {
            Value::Nil => {
                self.metrics.misses(1);
                Ok(default.unwrap_or_else(|| py.None()))
            }
            Value::BulkString(data) => {
                self.metrics.hits(1);
                self.codec.decode(py, &data, key)
            }
            other => reply::raw(py, other),
        }
    }

    /// Send a request with `send`, timed and counted in this cache's metrics. Every request
    /// the client sends goes through here or `ametered`.
    fn metered<T>(&self, packed: &Packed, send: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = send();
        self.metrics
            .record(packed.name(), started.elapsed(), result.is_ok());
        result
    }

    async fn ametered<T>(
        &self,
        packed: &Packed,
        send: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = send.await;
        self.metrics
            .record(packed.name(), started.elapsed(), result.is_ok());
        result
    }

    /// Runs `route` on a runtime worker. Routing usually answers from memory; when the
    /// topology must first ask a server (sentinel, a cluster slot map), the worker is handed
    /// to blocking I/O — a costly hand-off, so only then.
    fn routing<T>(&self, route: impl FnOnce() -> T) -> T {
        if self.topology.settled() {
            route()
        } else {
            tokio::task::block_in_place(route)
        }
    }

    /// The async twin of `Client::routed` (same failure handling); finding a node may block
    /// (sentinel or cluster discovery), which the runtime is told about.
    async fn arouted(
        &self,
        select: impl Fn() -> Result<Arc<RedisPool>>,
        packed: &Packed,
    ) -> Result<Vec<Value>> {
        let select = || self.routing(&select);
        let send = |pool: Arc<RedisPool>| async move {
            self.ametered(packed, arun_all(&pool, packed)).await
        };
        let err = match send(select()?).await {
            Ok(replies) => return Ok(replies),
            Err(err) => err,
        };
        if let Some(target) = tokio::task::block_in_place(|| self.topology.asked(&err))? {
            return self.ametered(packed, arun_asking(&target, packed)).await;
        }
        if self.topology.failed(&err) {
            return send(select()?).await;
        }
        Err(err)
    }
}

/// One cache command about one key — what to send, and how to read the replies — run by the
/// sync and the async transports alike.
struct KeyCommand<T> {
    key: Vec<u8>,
    write: bool,
    packed: Packed,
    read: fn(Vec<Value>) -> T,
}

fn last_int(replies: Vec<Value>) -> i64 {
    replies.last().map(int_of).unwrap_or(0)
}

/// SET with an optional expiry in milliseconds; an expiry <= 0 deletes instead (as django-redis
/// does), or with `nx` only reports whether the key was absent.
fn set_command(
    key: &[u8],
    value: &[u8],
    timeout_ms: Option<i64>,
    nx: bool,
    xx: bool,
) -> KeyCommand<bool> {
    if timeout_ms.is_some_and(|ms| ms <= 0) {
        return if nx {
            KeyCommand {
                key: key.to_vec(),
                write: false,
                packed: Packed::command(&[b"EXISTS", key]),
                read: |r| last_int(r) == 0,
            }
        } else {
            KeyCommand {
                key: key.to_vec(),
                write: true,
                packed: Packed::command(&[b"DEL", key]),
                read: |r| last_int(r) > 0,
            }
        };
    }
    let mut packed = Packed::new();
    let argc = 3 + 2 * usize::from(timeout_ms.is_some()) + usize::from(nx || xx);
    packed.start(argc).arg(b"SET").arg(key).arg(value);
    if let Some(ms) = timeout_ms {
        packed.arg(b"PX").int_arg(ms);
    }
    if nx {
        packed.arg(b"NX");
    } else if xx {
        packed.arg(b"XX");
    }
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed,
        read: |r| !matches!(r.last(), None | Some(Value::Nil)),
    }
}

/// A new expiry in milliseconds, or None to persist. True when the key exists: PERSIST answers
/// 0 for a key without expiry, so EXISTS is asked too.
fn touch_command(key: &[u8], timeout_ms: Option<i64>) -> KeyCommand<bool> {
    let packed = match timeout_ms {
        Some(ms) => Packed::command(&[b"PEXPIRE", key, itoa::Buffer::new().format(ms).as_bytes()]),
        None => {
            let mut packed = Packed::command(&[b"PERSIST", key]);
            packed.extend(&Packed::command(&[b"EXISTS", key]));
            packed
        }
    };
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed,
        read: |r| last_int(r) == 1,
    }
}

fn delete_command(key: &[u8]) -> KeyCommand<i64> {
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed: Packed::command(&[b"DEL", key]),
        read: last_int,
    }
}

fn has_key_command(key: &[u8]) -> KeyCommand<bool> {
    KeyCommand {
        key: key.to_vec(),
        write: false,
        packed: Packed::command(&[b"EXISTS", key]),
        read: |r| last_int(r) == 1,
    }
}

/// INCRBY, atomically refusing a missing key unless `ignore_key_check`: None for a missing key.
fn incr_command(key: &[u8], delta: i64, ignore_key_check: bool) -> KeyCommand<Option<i64>> {
    const SCRIPT: &[u8] = b"if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) else return false end";
    let delta = itoa::Buffer::new().format(delta).to_owned();
    let packed = if ignore_key_check {
        Packed::command(&[b"INCRBY", key, delta.as_bytes()])
    } else {
        Packed::command(&[b"EVAL", SCRIPT, b"1", key, delta.as_bytes()])
    };
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed,
        read: |r| match r.last() {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        },
    }
}

/// The packed command of `execute`'s arguments, and the keys that route it.
fn command_of(
    args: &Bound<'_, PyTuple>,
    keys: Option<Vec<Bound<'_, PyAny>>>,
) -> PyResult<(Packed, Vec<Vec<u8>>)> {
    if args.is_empty() {
        return Err(PyTypeError::new_err("execute() needs a command name"));
    }
    let mut packed = Packed::new();
    packed.start(args.len());
    for item in args.iter() {
        packed.arg(&arg(&item)?);
    }
    let keys = match keys {
        Some(keys) => keys
            .iter()
            .map(|k| Ok(arg(k)?.into_owned()))
            .collect::<PyResult<_>>()?,
        None if args.len() > 1 => vec![arg(&args.get_item(1)?)?.into_owned()],
        None => Vec::new(),
    };
    Ok((packed, keys))
}

impl Client {
    /// Run `packed` on the node `select` names, with the GIL released. A failure teaches the
    /// topology (sentinel and cluster find their nodes again); a command refused as `READONLY`
    /// (demoted primary) or `MOVED` (slot map changed) runs once more on the new owner, and an
    /// `ASK` redirect sends it to the importing node.
    fn routed(
        &self,
        py: Python<'_>,
        select: impl Fn() -> Result<Arc<RedisPool>> + Sync,
        packed: &Packed,
    ) -> Result<Vec<Value>> {
        py.detach(|| {
            let send = |pool: Arc<RedisPool>| self.metered(packed, || run_all(&pool, packed));
            let err = match send(select()?) {
                Ok(replies) => return Ok(replies),
                Err(err) => err,
            };
            if let Some(target) = self.topology.asked(&err)? {
                return self.metered(packed, || run_asking(&target, packed));
            }
            if self.topology.failed(&err) {
                return send(select()?);
            }
            Err(err)
        })
    }

    /// Several pipelined commands about `key`, in one round trip.
    fn on_key_all(
        &self,
        py: Python<'_>,
        key: &[u8],
        write: bool,
        packed: Packed,
    ) -> Result<Vec<Value>> {
        let replies = self.routed(py, || self.topology.route(key, write), &packed);
        if write {
            self.wrote(&[key]);
        }
        replies
    }

    fn run_key<T>(&self, py: Python<'_>, command: KeyCommand<T>) -> Result<T> {
        let replies = self.on_key_all(py, &command.key, command.write, command.packed)?;
        Ok((command.read)(replies))
    }

    fn arun_key<'py, T>(
        &self,
        py: Python<'py>,
        command: KeyCommand<T>,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: Send + 'static + for<'a> IntoPyObject<'a>,
    {
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let KeyCommand {
                key,
                write,
                packed,
                read,
            } = command;
            let replies = shared
                .arouted(|| shared.topology.route(&key, write), &packed)
                .await;
            if write {
                shared.wrote(&[&key]);
            }
            Ok(read(replies?))
        };
        awaitable(py, work, |py, value| value.into_py_any(py))
    }

    /// A request per node holding some of `keys`, sent to all nodes at once. `build` packs a
    /// node's request from its key indexes, given in batches that one multi-key command may
    /// carry (a cluster needs one per slot). Returns each node's batches with its replies.
    /// When the topology changed under the call (`MOVED`, a failover) it runs once more.
    #[allow(clippy::type_complexity)]
    fn per_node<K: AsRef<[u8]> + Sync>(
        &self,
        py: Python<'_>,
        keys: &[K],
        write: bool,
        mut build: impl FnMut(&[Vec<usize>]) -> PyResult<Packed>,
    ) -> PyResult<Vec<(Vec<Vec<usize>>, Vec<Value>)>> {
        let mut retried = false;
        loop {
            // Grouping may have to ask sentinel or the cluster where nodes are: I/O, detached.
            let groups = py.detach(|| self.topology.group(keys, write))?;
            let mut requests = Vec::with_capacity(groups.len());
            for (pool, batches) in groups {
                let packed = build(&batches)?;
                requests.push((pool, batches, packed));
            }
            let outcome = py.detach(|| {
                let sends: Vec<_> = requests
                    .iter()
                    .map(|(pool, _, packed)| (pool.as_ref(), packed))
                    .collect();
                let started = Instant::now();
                let results = run_fanout(&sends);
                for ((_, packed), result) in sends.iter().zip(&results) {
                    self.metrics
                        .record(packed.name(), started.elapsed(), result.is_ok());
                }
                // A node's failure fails the call (after the other nodes' replies were read).
                results.into_iter().collect::<Result<Vec<_>>>()
            });
            if write {
                self.wrote(keys);
            }
            match outcome {
                Ok(results) => {
                    return Ok(requests
                        .into_iter()
                        .zip(results)
                        .map(|((_, batches, _), replies)| (batches, replies))
                        .collect())
                }
                Err(err) if !retried && self.topology.failed(&err) => retried = true,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The nodes that own keys, found with the GIL released.
    fn primaries(&self, py: Python<'_>) -> Result<Vec<Arc<RedisPool>>> {
        py.detach(|| self.topology.primaries())
    }
}

impl Shared {
    /// Send each node its request at once and collect every node's replies.
    async fn fan_out(
        &self,
        requests: Vec<(Arc<RedisPool>, Vec<Vec<usize>>, Packed)>,
    ) -> Result<Vec<(Vec<Vec<usize>>, Vec<Value>)>> {
        let sends = requests
            .iter()
            .map(|(pool, _, packed)| self.ametered(packed, arun_all(pool, packed)));
        let replies = join_all(sends).await;
        requests
            .into_iter()
            .zip(replies)
            .map(|((_, batches, _), replies)| Ok((batches, replies?)))
            .collect()
    }

    /// The async twin of `Client::per_node`: group `keys` by node, `build` each node's request
    /// (from owned data, so it can be built again), send all at once, and run once more when
    /// the topology changed under the call (`MOVED`, a failover).
    async fn aper_node(
        &self,
        keys: &[Vec<u8>],
        write: bool,
        build: impl Fn(&[Vec<usize>]) -> Packed,
    ) -> Result<Vec<(Vec<Vec<usize>>, Vec<Value>)>> {
        let mut retried = false;
        loop {
            let groups = self.routing(|| self.topology.group(keys, write))?;
            let requests = groups
                .into_iter()
                .map(|(pool, batches)| {
                    let packed = build(&batches);
                    (pool, batches, packed)
                })
                .collect();
            let outcome = self.fan_out(requests).await;
            if write {
                self.wrote(keys);
            }
            match outcome {
                Ok(results) => return Ok(results),
                Err(err) if !retried && self.topology.failed(&err) => retried = true,
                Err(err) => return Err(err),
            }
        }
    }
}

/// One multi-key command (`MGET`, `DEL`, `UNLINK`) per batch of `keys` — a node's request.
fn per_batch<K: AsRef<[u8]>>(command: &[u8], batches: &[Vec<usize>], keys: &[K]) -> Packed {
    let mut packed = Packed::new();
    for batch in batches {
        packed.start(batch.len() + 1).arg(command);
        batch.iter().for_each(|&i| {
            packed.arg(keys[i].as_ref());
        });
    }
    packed
}

/// `set_many`'s request to one node: MSET per batch, or one SET PX per key, or (an expiry
/// already past) DEL — the values still had to be serializable, as with SET.
fn set_many_request<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    batches: &[Vec<usize>],
    made: &[K],
    encoded: &[V],
    timeout_ms: Option<i64>,
) -> Packed {
    let mut packed = Packed::new();
    for members in batches {
        match timeout_ms {
            None => {
                packed.start(1 + 2 * members.len()).arg(b"MSET");
                for &i in members {
                    packed.arg(made[i].as_ref()).arg(encoded[i].as_ref());
                }
            }
            Some(ms) if ms <= 0 => {
                packed.start(1 + members.len()).arg(b"DEL");
                for &i in members {
                    packed.arg(made[i].as_ref());
                }
            }
            Some(ms) => {
                for &i in members {
                    packed
                        .start(5)
                        .arg(b"SET")
                        .arg(made[i].as_ref())
                        .arg(encoded[i].as_ref())
                        .arg(b"PX")
                        .int_arg(ms);
                }
            }
        }
    }
    packed
}

fn int_of(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        Value::Okay => 1,
        _ => 0,
    }
}

fn scan_command(cursor: &[u8], pattern: &[u8], count: i64) -> Packed {
    let mut packed = Packed::new();
    packed
        .start(6)
        .arg(b"SCAN")
        .arg(cursor)
        .arg(b"MATCH")
        .arg(pattern)
        .arg(b"COUNT")
        .int_arg(count);
    packed
}

/// A SCAN reply: (next cursor, keys).
fn scan_reply(reply: Value) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    match reply {
        Value::Array(mut parts) if parts.len() == 2 => {
            let keys = match parts.pop() {
                Some(Value::Array(keys)) => keys
                    .into_iter()
                    .filter_map(|k| match k {
                        Value::BulkString(b) => Some(b),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let next = match parts.pop() {
                Some(Value::BulkString(c)) => c,
                _ => b"0".to_vec(),
            };
            Ok((next, keys))
        }
        other => Err(Error::new(
            ErrorKind::Response,
            format!("unexpected SCAN reply {other:?}"),
        )),
    }
}

fn scan_page(
    shared: &Shared,
    pool: &RedisPool,
    cursor: &[u8],
    pattern: &[u8],
    count: i64,
) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let packed = scan_command(cursor, pattern, count);
    scan_reply(shared.metered(&packed, || run_one(pool, &packed))?)
}

/// `delete_pattern` on one node, one round trip per SCAN page: each request unlinks the keys the
/// previous page found and asks for the next page.
struct PatternDeletion<'a> {
    pattern: &'a [u8],
    count: i64,
    /// The next page to ask for; None once the scan has come round to cursor 0.
    cursor: Option<Vec<u8>>,
    /// Found, not yet unlinked.
    found: Vec<Vec<u8>>,
    deleted: u64,
}

impl<'a> PatternDeletion<'a> {
    fn new(pattern: &'a [u8], count: i64) -> Self {
        Self {
            pattern,
            count,
            cursor: Some(b"0".to_vec()),
            found: Vec::new(),
            deleted: 0,
        }
    }

    /// The next request, or None when every key found is unlinked and the scan is over.
    fn request(&self, topology: &Topology) -> Result<Option<Packed>> {
        let mut packed = if self.found.is_empty() {
            Packed::new()
        } else {
            unlink_command(topology, &self.found)?
        };
        if let Some(cursor) = &self.cursor {
            packed.extend(&scan_command(cursor, self.pattern, self.count));
        }
        Ok((packed.commands() > 0).then_some(packed))
    }

    /// Count the unlinked keys and take the page the request's SCAN returned.
    fn absorb(&mut self, mut replies: Vec<Value>) -> Result<()> {
        let page = self.cursor.is_some().then(|| replies.pop()).flatten();
        self.deleted += replies.iter().map(int_of).sum::<i64>() as u64;
        self.found.clear();
        if let Some(page) = page {
            let (next, keys) = scan_reply(page)?;
            self.found = keys;
            self.cursor = (next != b"0").then_some(next);
        }
        Ok(())
    }
}

/// One UNLINK per batch the topology allows (per slot in a cluster) for keys of one node.
fn unlink_command(topology: &Topology, keys: &[Vec<u8>]) -> Result<Packed> {
    let mut packed = Packed::new();
    for (_, batches) in topology.group(keys, true)? {
        packed.extend(&per_batch(b"UNLINK", &batches, keys));
    }
    Ok(packed)
}

fn keys_of(reply: Value) -> Vec<String> {
    match reply {
        Value::Array(keys) => keys
            .into_iter()
            .filter_map(|k| match k {
                Value::BulkString(k) => Some(String::from_utf8_lossy(&k).into_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        locations, *, socket_timeout=None, connect_timeout=None, max_connections=None,
        pool_timeout=None, username=None, password=None, serializer=None, compressor=None,
        shard_names=None, sentinels=None, sentinel_username=None, sentinel_password=None,
        read_from_replicas=true, cluster=false, ssl_ca_certs=None, ssl_certfile=None,
        ssl_keyfile=None, ssl_verify_peer=true, ssl_check_hostname=true,
        health_check_interval=None, circuit_breaker=None, key_prefix=None,
        client_side_cache=None, tracking_prefix=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        locations: Vec<String>,
        socket_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        max_connections: Option<usize>,
        pool_timeout: Option<f64>,
        username: Option<String>,
        password: Option<String>,
        serializer: Option<&Bound<'_, PyAny>>,
        compressor: Option<&Bound<'_, PyAny>>,
        shard_names: Option<Vec<String>>,
        sentinels: Option<Vec<(String, u16)>>,
        sentinel_username: Option<String>,
        sentinel_password: Option<String>,
        read_from_replicas: bool,
        cluster: bool,
        ssl_ca_certs: Option<PathBuf>,
        ssl_certfile: Option<PathBuf>,
        ssl_keyfile: Option<PathBuf>,
        ssl_verify_peer: bool,
        ssl_check_hostname: bool,
        health_check_interval: Option<f64>,
        circuit_breaker: Option<(u32, f64)>,
        key_prefix: Option<String>,
        client_side_cache: Option<(usize, usize, f64)>,
        tracking_prefix: Option<String>,
    ) -> PyResult<Self> {
        let defaults = ConnectionOptions::default();
        let base = ConnectionOptions {
            socket_timeout: seconds(socket_timeout),
            connect_timeout: seconds(connect_timeout),
            max_connections: max_connections.unwrap_or(defaults.max_connections),
            pool_timeout: pool_timeout
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(defaults.pool_timeout),
            health_check_interval: seconds(health_check_interval),
            breaker: match circuit_breaker {
                Some((failures, reset_timeout)) => BreakerConfig {
                    failures,
                    reset_timeout: seconds(Some(reset_timeout)).unwrap_or_default(),
                },
                None => BreakerConfig::default(),
            },
            tls: TlsOptions {
                ca_certs: ssl_ca_certs,
                certfile: ssl_certfile,
                keyfile: ssl_keyfile,
                verify_peer: ssl_verify_peer,
                verify_hostname: ssl_check_hostname,
            },
        };
        let mut servers: Vec<(ServerConfig, ConnectionOptions)> = Vec::new();
        for location in &locations {
            let (mut server, options) = parse_url(location, &base)?;
            server.username = server.username.or_else(|| username.clone());
            server.password = server.password.or_else(|| password.clone());
            servers.push((server, options));
        }
        let sentinel_managed = sentinels.is_some();
        let topology = match (shard_names, sentinels) {
            _ if cluster => {
                if servers.iter().any(|(server, _)| server.db != 0) {
                    return Err(Error::config(
                        "Redis Cluster has only database 0: drop the /db from LOCATION",
                    )
                    .into());
                }
                let options = servers.first().map(|(_, o)| o.clone()).unwrap_or_default();
                Topology::cluster(
                    servers.iter().map(|(server, _)| server.clone()).collect(),
                    options,
                )
            }
            (Some(_), Some(_)) => {
                return Err(Error::config("a cache is either sharded or sentinel-managed").into())
            }
            (Some(names), None) => Topology::sharded(&servers, &names)?,
            (None, Some(sentinels)) => {
                // LOCATION names the service ("redis://SERVICE/db"): its host is the name.
                let (template, options) = servers
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::config("LOCATION names no service"))?;
                let service = match &template.address {
                    Address::Tcp { host, .. } | Address::Tls { host, .. } => host.clone(),
                    Address::Unix { .. } => {
                        return Err(Error::config(
                            "a sentinel service is named by redis://SERVICE/db",
                        )
                        .into())
                    }
                };
                if sentinels.is_empty() {
                    return Err(
                        Error::config("SENTINELS must list at least one (host, port)").into(),
                    );
                }
                let nodes = sentinels
                    .into_iter()
                    .map(|(host, port)| ServerConfig {
                        address: Address::Tcp { host, port },
                        db: 0,
                        username: sentinel_username.clone(),
                        password: sentinel_password.clone(),
                    })
                    .collect();
                let finder = Sentinels {
                    service,
                    nodes,
                    options: options.clone(),
                };
                Topology::sentinel(finder, template, options, read_from_replicas)
            }
            (None, None) => Topology::replicated(&servers)?,
        };
        let local = match client_side_cache {
            None => None,
            Some(_) if cluster || sentinel_managed || servers.len() != 1 => {
                return Err(Error::config(
                    "CLIENT_SIDE_CACHE is offered for a single server (one URL in LOCATION): \
                     not with replicas, shards, Sentinel or Cluster",
                )
                .into())
            }
            Some((max_entries, max_bytes, ttl)) => {
                let config = LocalConfig {
                    max_entries,
                    max_bytes,
                    ttl: seconds(Some(ttl)).unwrap_or_default(),
                };
                let (server, options) = &servers[0];
                Some(shared_local(server, options, config, tracking_prefix)?)
            }
        };
        let codec = Codec {
            serializer: match serializer {
                Some(spec) => Serializer::from_spec(spec)?,
                None => Serializer::Pickle { protocol: -1 },
            },
            compressor: match compressor {
                Some(spec) => Compressor::from_spec(spec)?,
                None => Compressor::Identity,
            },
        };
        Ok(Self {
            shared: Arc::new(Shared {
                topology,
                codec,
                metrics: Metrics::default(),
                local,
            }),
            servers: servers.iter().map(|(s, _)| s.to_string()).collect(),
            key_prefix,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<django_redis_rs._native.Client servers={:?}>",
            self.servers
        )
    }

    /// The servers, primary first, without credentials.
    #[getter]
    fn servers(&self) -> Vec<String> {
        self.servers.clone()
    }

    // ---- the Django cache API -------------------------------------------------------------

    #[pyo3(signature = (key, default=None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let key = cache_key(key)?;
        let epoch = match self.local_lookup(&key) {
            Ok(value) => return self.codec.decode(py, &value, &key),
            Err(epoch) => epoch,
        };
        let replies = self.on_key_all(py, &key, false, self.get_request(&key))?;
        let value = self.got(replies, &key, epoch);
        self.found(py, value, &key, default)
    }

    /// SET with an optional expiry in milliseconds; an expiry <= 0 deletes instead (as
    /// django-redis does), or with `nx` only reports whether the key was absent.
    #[pyo3(signature = (key, value, timeout_ms=None, nx=false, xx=false))]
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        timeout_ms: Option<i64>,
        nx: bool,
        xx: bool,
    ) -> PyResult<bool> {
        let command = set_command(
            &cache_key(key)?,
            self.codec.encode(value)?.as_bytes(),
            timeout_ms,
            nx,
            xx,
        );
        Ok(self.run_key(py, command)?)
    }

    /// New expiry in milliseconds, or None to persist. True when the key exists.
    #[pyo3(signature = (key, timeout_ms=None))]
    fn touch(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        timeout_ms: Option<i64>,
    ) -> PyResult<bool> {
        Ok(self.run_key(py, touch_command(&cache_key(key)?, timeout_ms))?)
    }

    fn delete(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<i64> {
        Ok(self.run_key(py, delete_command(&cache_key(key)?))?)
    }

    fn has_key(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.run_key(py, has_key_command(&cache_key(key)?))?)
    }

    /// `keys` maps made keys to the caller's keys — or, with `version`, lists the caller's keys
    /// (made here); the result maps the caller's keys to the values found.
    #[pyo3(signature = (keys, version=None))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        version: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let found = PyDict::new(py);
        let (callers, made): (Vec<_>, Vec<_>) =
            call_keys(self.key_prefix.as_deref(), keys, version)?
                .into_iter()
                .unzip();
        let ManyLookup {
            hits,
            misses,
            epochs,
        } = self.local_lookup_many(&made);
        for (i, value) in hits {
            found.set_item(&callers[i], self.codec.decode(py, &value, &made[i])?)?;
        }
        if misses.is_empty() {
            return Ok(found);
        }
        let asked: Vec<&[u8]> = misses.iter().map(|&i| made[i].as_ref()).collect();
        let results = self.per_node(py, &asked, false, |batches| {
            Ok(self.get_many_request(batches, &asked))
        })?;
        for (j, data) in self.got_many(results, &asked, &epochs)? {
            let i = misses[j];
            found.set_item(&callers[i], self.codec.decode(py, &data, &made[i])?)?;
        }
        Ok(found)
    }

    /// Store every made key -> value of `items` in one round trip (MSET, or SET PX per key).
    /// With `version`, the keys of `items` are the caller's (made here).
    #[pyo3(signature = (items, timeout_ms=None, version=None))]
    fn set_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyDict>,
        timeout_ms: Option<i64>,
        version: Option<i64>,
    ) -> PyResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = items.iter().collect();
        let made: Vec<Cow<'_, [u8]>> = pairs
            .iter()
            .map(|(key, _)| made_key(self.key_prefix.as_deref(), key, version))
            .collect::<PyResult<_>>()?;
        let encoded: Vec<Encoded<'_>> = pairs
            .iter()
            .map(|(_, value)| self.codec.encode(value))
            .collect::<PyResult<_>>()?;
        self.per_node(py, &made, true, |batches| {
            Ok(set_many_request(batches, &made, &encoded, timeout_ms))
        })?;
        Ok(())
    }

    /// With `version`, `keys` are the caller's (made here).
    #[pyo3(signature = (keys, version=None))]
    fn delete_many(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        version: Option<i64>,
    ) -> PyResult<i64> {
        let made: Vec<Cow<'_, [u8]>> = call_keys(self.key_prefix.as_deref(), keys, version)?
            .into_iter()
            .map(|(_, made)| made)
            .collect();
        if made.is_empty() {
            return Ok(0);
        }
        let replies = self.per_node(py, &made, true, |batches| {
            Ok(per_batch(b"DEL", batches, &made))
        })?;
        Ok(replies
            .iter()
            .flat_map(|(_, values)| values)
            .map(int_of)
            .sum())
    }

    /// INCRBY, atomically refusing a missing key unless `ignore_key_check`. Returns None for a
    /// missing key; raises ResponseError when the stored value is not a 64-bit integer.
    #[pyo3(signature = (key, delta=1, ignore_key_check=false))]
    fn incr(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        delta: i64,
        ignore_key_check: bool,
    ) -> PyResult<Option<i64>> {
        Ok(self.run_key(py, incr_command(&cache_key(key)?, delta, ignore_key_check))?)
    }

    /// Delete every key matching `pattern` (SCAN + UNLINK per page, all in Rust, GIL released).
    #[pyo3(signature = (pattern, itersize=None))]
    fn delete_pattern(
        &self,
        py: Python<'_>,
        pattern: &Bound<'_, PyAny>,
        itersize: Option<i64>,
    ) -> PyResult<u64> {
        let pattern = arg(pattern)?.into_owned();
        let count = itersize.unwrap_or(1000).max(1);
        let deleted = py.detach(|| -> Result<u64> {
            let mut deleted = 0;
            for pool in self.topology.primaries()? {
                let mut deletion = PatternDeletion::new(&pattern, count);
                while let Some(packed) = deletion.request(&self.topology)? {
                    deletion.absorb(self.metered(&packed, || run_all(&pool, &packed))?)?;
                }
                deleted += deletion.deleted;
            }
            Ok(deleted)
        });
        self.wrote_all();
        Ok(deleted?)
    }

    /// One SCAN page on primary `node`: (next cursor, keys). Cursor 0 starts and ends.
    #[pyo3(signature = (cursor, pattern, count=None, node=0))]
    fn scan(
        &self,
        py: Python<'_>,
        cursor: u64,
        pattern: &Bound<'_, PyAny>,
        count: Option<i64>,
        node: usize,
    ) -> PyResult<(u64, Vec<String>)> {
        let pattern = arg(pattern)?.into_owned();
        let pool = self
            .primaries(py)?
            .into_iter()
            .nth(node)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("no such node"))?;
        let cursor = cursor.to_string();
        let (next, keys) = py.detach(|| {
            scan_page(
                self,
                &pool,
                cursor.as_bytes(),
                &pattern,
                count.unwrap_or(10).max(1),
            )
        })?;
        let next = std::str::from_utf8(&next)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((
            next,
            keys.iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect(),
        ))
    }

    /// How many primaries hold keys (SCAN each of them).
    #[getter]
    fn node_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.primaries(py)?.len())
    }

    /// KEYS on every primary.
    fn keys(&self, py: Python<'_>, pattern: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let pattern = arg(pattern)?;
        let mut all = Vec::new();
        for pool in self.primaries(py)? {
            let packed = Packed::command(&[b"KEYS", &pattern]);
            all.extend(keys_of(
                py.detach(|| self.metered(&packed, || run_one(&pool, &packed)))?,
            ));
        }
        Ok(all)
    }

    /// FLUSHDB on every primary.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let flushed = (|| -> Result<()> {
            for pool in self.primaries(py)? {
                let packed = Packed::command(&[b"FLUSHDB"]);
                py.detach(|| self.metered(&packed, || run_one(&pool, &packed)))?;
            }
            Ok(())
        })();
        self.wrote_all();
        Ok(flushed?)
    }

    // ---- everything else: one generic path -------------------------------------------------

    /// Run one command (`args[0]` is its name) and convert the reply into the shape `reply`
    /// (see `Reply`). It goes to the node holding `keys` (default: `args[1]`); keys on
    /// different shards raise ResponseError. Cache values in the reply are decoded; the first
    /// key names them in errors.
    #[pyo3(signature = (write, args, reply=0, keys=None))]
    fn execute(
        &self,
        py: Python<'_>,
        write: bool,
        args: &Bound<'_, PyTuple>,
        reply: u8,
        keys: Option<Vec<Bound<'_, PyAny>>>,
    ) -> PyResult<Py<PyAny>> {
        let kind = Reply::from_code(reply)?;
        let (packed, keys) = command_of(args, keys)?;
        let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let replies = self.routed(py, || self.topology.route_all(&key_refs, write), &packed);
        if write {
            self.wrote_keys_of(&key_refs);
        }
        let value = replies?.pop().unwrap_or(Value::Nil);
        reply::convert(
            py,
            &self.codec,
            value,
            kind,
            key_refs.first().copied().unwrap_or_default(),
        )
    }

    // ---- async: the same commands, awaited on the runtime --------------------------------

    /// `execute`, as an awaitable.
    #[pyo3(signature = (write, args, reply=0, keys=None))]
    fn aexecute<'py>(
        &self,
        py: Python<'py>,
        write: bool,
        args: &Bound<'py, PyTuple>,
        reply: u8,
        keys: Option<Vec<Bound<'py, PyAny>>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = Reply::from_code(reply)?;
        let (packed, keys) = command_of(args, keys)?;
        let (shared, decoder) = (Arc::clone(&self.shared), Arc::clone(&self.shared));
        let work = async move {
            let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let replies = shared
                .arouted(|| shared.topology.route_all(&key_refs, write), &packed)
                .await;
            if write {
                shared.wrote_keys_of(&key_refs);
            }
            Ok((replies?.into_iter().last().unwrap_or(Value::Nil), keys))
        };
        awaitable(py, work, move |py, (value, keys)| {
            reply::convert(
                py,
                &decoder.codec,
                value,
                kind,
                keys.first().map(Vec::as_slice).unwrap_or_default(),
            )
        })
    }

    /// `get`, as an awaitable.
    #[pyo3(signature = (key, default=None))]
    fn aget<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = cache_key(key)?.into_owned();
        let epoch = match self.local_lookup(&key) {
            Ok(value) => return settled(py, self.codec.decode(py, &value, &key)?),
            Err(epoch) => epoch,
        };
        let packed = self.get_request(&key);
        let (shared, decoder) = (Arc::clone(&self.shared), Arc::clone(&self.shared));
        let work = async move {
            let replies = shared
                .arouted(|| shared.topology.route(&key, false), &packed)
                .await?;
            Ok((shared.got(replies, &key, epoch), key))
        };
        awaitable(py, work, move |py, (value, key)| {
            decoder.found(py, value, &key, default)
        })
    }

    /// `set`, as an awaitable.
    #[pyo3(signature = (key, value, timeout_ms=None, nx=false, xx=false))]
    fn aset<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        timeout_ms: Option<i64>,
        nx: bool,
        xx: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let command = set_command(
            &cache_key(key)?,
            self.codec.encode(value)?.as_bytes(),
            timeout_ms,
            nx,
            xx,
        );
        self.arun_key(py, command)
    }

    /// `touch`, as an awaitable.
    #[pyo3(signature = (key, timeout_ms=None))]
    fn atouch<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        timeout_ms: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.arun_key(py, touch_command(&cache_key(key)?, timeout_ms))
    }

    /// `delete`, as an awaitable.
    fn adelete<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.arun_key(py, delete_command(&cache_key(key)?))
    }

    /// `has_key`, as an awaitable.
    fn ahas_key<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.arun_key(py, has_key_command(&cache_key(key)?))
    }

    /// `incr`, as an awaitable.
    #[pyo3(signature = (key, delta=1, ignore_key_check=false))]
    fn aincr<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        delta: i64,
        ignore_key_check: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.arun_key(py, incr_command(&cache_key(key)?, delta, ignore_key_check))
    }

    /// `clear`, as an awaitable: FLUSHDB on every primary.
    fn aclear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let flushed = async {
                for pool in shared.routing(|| shared.topology.primaries())? {
                    let packed = Packed::command(&[b"FLUSHDB"]);
                    shared.ametered(&packed, arun_all(&pool, &packed)).await?;
                }
                Ok::<(), Error>(())
            }
            .await;
            shared.wrote_all();
            flushed
        };
        awaitable(py, work, |py, ()| Ok(py.None()))
    }

    /// `keys`, as an awaitable: KEYS on every primary.
    fn akeys<'py>(
        &self,
        py: Python<'py>,
        pattern: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (shared, packed) = (
            Arc::clone(&self.shared),
            Packed::command(&[b"KEYS", &arg(pattern)?]),
        );
        let work = async move {
            let mut all = Vec::new();
            for pool in shared.routing(|| shared.topology.primaries())? {
                let replies = shared.ametered(&packed, arun_all(&pool, &packed)).await?;
                all.extend(replies.into_iter().flat_map(keys_of));
            }
            Ok(all)
        };
        awaitable(py, work, |py, keys| keys.into_py_any(py))
    }

    /// `scan`, as an awaitable: one SCAN page on primary `node`.
    #[pyo3(signature = (cursor, pattern, count=None, node=0))]
    fn ascan<'py>(
        &self,
        py: Python<'py>,
        cursor: u64,
        pattern: &Bound<'py, PyAny>,
        count: Option<i64>,
        node: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        let packed = scan_command(
            cursor.to_string().as_bytes(),
            &arg(pattern)?,
            count.unwrap_or(10).max(1),
        );
        let work = async move {
            let primaries = shared.routing(|| shared.topology.primaries())?;
            let pool = primaries
                .get(node)
                .ok_or_else(|| Error::new(ErrorKind::Response, "no such node"))?;
            let reply = shared
                .ametered(&packed, arun_all(pool, &packed))
                .await?
                .pop()
                .unwrap_or(Value::Nil);
            let (next, keys) = scan_reply(reply)?;
            let next: u64 = std::str::from_utf8(&next)
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            Ok((
                next,
                keys.iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect::<Vec<_>>(),
            ))
        };
        awaitable(py, work, |py, page| page.into_py_any(py))
    }

    /// `delete_pattern`, as an awaitable: SCAN + UNLINK per page on every primary.
    #[pyo3(signature = (pattern, itersize=None))]
    fn adelete_pattern<'py>(
        &self,
        py: Python<'py>,
        pattern: &Bound<'py, PyAny>,
        itersize: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (shared, pattern) = (Arc::clone(&self.shared), arg(pattern)?.into_owned());
        let flusher = Arc::clone(&self.shared);
        let count = itersize.unwrap_or(1000).max(1);
        let work = async move {
            let mut deleted = 0u64;
            for pool in shared.routing(|| shared.topology.primaries())? {
                let mut deletion = PatternDeletion::new(&pattern, count);
                while let Some(packed) = shared.routing(|| deletion.request(&shared.topology))? {
                    deletion.absorb(shared.ametered(&packed, arun_all(&pool, &packed)).await?)?;
                }
                deleted += deletion.deleted;
            }
            Ok(deleted)
        };
        let work = async move {
            let deleted = work.await;
            flusher.wrote_all();
            deleted
        };
        awaitable(py, work, |py, deleted| deleted.into_py_any(py))
    }

    /// `get_many`, as an awaitable: one request per node, all nodes at once.
    #[pyo3(signature = (keys, version=None))]
    fn aget_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (callers, made): (Vec<_>, Vec<_>) =
            call_keys(self.key_prefix.as_deref(), keys, version)?
                .into_iter()
                .unzip();
        let ManyLookup {
            hits,
            misses,
            epochs,
        } = self.local_lookup_many(&made);
        let found = PyDict::new(py);
        for (i, value) in hits {
            found.set_item(&callers[i], self.codec.decode(py, &value, &made[i])?)?;
        }
        if misses.is_empty() {
            return settled(py, found.into_any().unbind());
        }
        // The keys to ask Redis for, owned by the work (it may run again after a failover).
        let asked: Vec<Vec<u8>> = misses.iter().map(|&i| made[i].to_vec()).collect();
        let callers: Vec<Py<PyAny>> = misses
            .iter()
            .map(|&i| callers[i].clone().unbind())
            .collect();
        let found = found.unbind();
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let results = shared
                .aper_node(&asked, false, |batches| {
                    shared.get_many_request(batches, &asked)
                })
                .await?;
            let got = shared.got_many(results, &asked, &epochs)?;
            Ok((got, asked))
        };
        let decoder = Arc::clone(&self.shared);
        awaitable(py, work, move |py, (got, asked)| {
            let found = found.into_bound(py);
            for (j, data) in got {
                let value = decoder.codec.decode(py, &data, &asked[j])?;
                found.set_item(callers[j].bind(py), value)?;
            }
            Ok(found.into_any().unbind())
        })
    }

    /// `set_many`, as an awaitable.
    #[pyo3(signature = (items, timeout_ms=None, version=None))]
    fn aset_many<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyDict>,
        timeout_ms: Option<i64>,
        version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pairs: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = items.iter().collect();
        let made: Vec<Cow<'_, [u8]>> = pairs
            .iter()
            .map(|(key, _)| made_key(self.key_prefix.as_deref(), key, version))
            .collect::<PyResult<_>>()?;
        // Owned copies: the request may have to be built again after a topology change.
        let keys: Vec<Vec<u8>> = made.iter().map(|k| k.to_vec()).collect();
        let values: Vec<Vec<u8>> = pairs
            .iter()
            .map(|(_, value)| Ok(self.codec.encode(value)?.as_bytes().to_vec()))
            .collect::<PyResult<_>>()?;
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let build =
                |batches: &[Vec<usize>]| set_many_request(batches, &keys, &values, timeout_ms);
            shared.aper_node(&keys, true, build).await
        };
        awaitable(py, work, |py, _| Ok(py.None()))
    }

    /// `delete_many`, as an awaitable: the number of keys deleted.
    #[pyo3(signature = (keys, version=None))]
    fn adelete_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keys: Vec<Vec<u8>> = call_keys(self.key_prefix.as_deref(), keys, version)?
            .into_iter()
            .map(|(_, made)| made.into_owned())
            .collect();
        let shared = Arc::clone(&self.shared);
        let work = async move {
            shared
                .aper_node(&keys, true, |batches| per_batch(b"DEL", batches, &keys))
                .await
        };
        awaitable(py, work, |py, results| {
            let deleted: i64 = results
                .iter()
                .flat_map(|(_, values)| values)
                .map(int_of)
                .sum();
            Ok(deleted.into_pyobject(py)?.into_any().unbind())
        })
    }

    /// Run several commands in one round trip; replies in redis-py's plain form. All commands'
    /// keys (`args[1]`) must live on one node. The first server error raises ResponseError
    /// (redis-py's `raise_on_error`).
    #[pyo3(signature = (commands, write=true))]
    fn pipeline(
        &self,
        py: Python<'_>,
        commands: &Bound<'_, PyList>,
        write: bool,
    ) -> PyResult<Vec<Py<PyAny>>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut packed = Packed::new();
        let mut keys = Vec::new();
        for command in commands.iter() {
            let command = command.cast_into::<PyTuple>()?;
            packed.start(command.len());
            for (i, item) in command.iter().enumerate() {
                let item = arg(&item)?;
                packed.arg(&item);
                if i == 1 {
                    keys.push(item.into_owned());
                }
            }
        }
        let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let replies = self.routed(py, || self.topology.route_all(&key_refs, write), &packed)?;
        replies.into_iter().map(|v| reply::raw(py, v)).collect()
    }

    /// Whether all `keys` live on one node (always, unless sharded).
    fn same_node(&self, keys: Vec<Bound<'_, PyAny>>) -> PyResult<bool> {
        let keys: Vec<Cow<'_, [u8]>> = keys.iter().map(arg).collect::<PyResult<_>>()?;
        let key_refs: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
        Ok(self.topology.route_all(&key_refs, true).is_ok())
    }

    /// The stored form of a cache value (the integer rule, then serializer and compressor).
    fn encode<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, self.codec.encode(value)?.as_bytes()))
    }

    /// The stored form without the integer rule (sorted-set members).
    fn encode_member<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(
            py,
            self.codec.encode_serialized(value)?.as_bytes(),
        ))
    }

    fn decode(&self, py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
        self.codec.decode(py, data, b"")
    }

    /// Close every pooled connection of this client's servers (they reopen on demand).
    fn close(&self) {
        self.topology.known().iter().for_each(|pool| pool.clear());
    }

    /// Connections per server (`host:port db=N`): `open`, `in_use` and `idle` now; `opened` and
    /// `dropped` (closed after a failure) since start; `async_opened`, the async connection's
    /// (re)connects; and the circuit breaker's `breaker` state and `breaker_trips`. A server's
    /// pool is shared by the caches configured alike, and so are these figures.
    fn pool_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = PyDict::new(py);
        for pool in self.topology.known() {
            let s = pool.stats();
            let breaker = pool.breaker();
            let entry = PyDict::new(py);
            entry.set_item("open", s.open)?;
            entry.set_item("in_use", s.open - s.idle)?;
            entry.set_item("idle", s.idle)?;
            entry.set_item("opened", s.opened)?;
            entry.set_item("dropped", s.dropped)?;
            entry.set_item("async_opened", pool.connector().multiplexed_opened())?;
            let state = match breaker.state() {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
            };
            entry.set_item("breaker", state)?;
            entry.set_item("breaker_trips", breaker.trips())?;
            stats.set_item(pool.connector().server().to_string(), entry)?;
        }
        Ok(stats)
    }

    /// This cache's figures since start or the last `reset_metrics`: `hits` and `misses` of
    /// get/get_many (and with a client-side cache, `client_side_cache`: its `hits`, `entries`,
    /// `bytes`, whether it is `live`, and the `invalidations` received); per Redis command, `calls`, `errors` and latencies in microseconds
    /// (`mean_us`, `p50_us`, `p90_us`, `p99_us`, `max_us`; percentiles within 1/8); and
    /// `servers`, as `pool_stats` gives them.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let (hits, misses) = self.metrics.lookups();
        out.set_item("hits", hits)?;
        out.set_item("misses", misses)?;
        if let Some(local) = &self.local {
            let (entries, bytes) = local.size();
            let entry = PyDict::new(py);
            entry.set_item("hits", self.metrics.local_hit_count())?;
            entry.set_item("entries", entries)?;
            entry.set_item("bytes", bytes)?;
            entry.set_item("live", local.is_live())?;
            entry.set_item("invalidations", local.invalidations())?;
            out.set_item("client_side_cache", entry)?;
        }
        let commands = PyDict::new(py);
        let us = |ns: u64| ns as f64 / 1000.0;
        for (name, c) in self.metrics.commands() {
            let entry = PyDict::new(py);
            entry.set_item("calls", c.calls)?;
            entry.set_item("errors", c.errors)?;
            entry.set_item("mean_us", us(c.mean_ns))?;
            entry.set_item("p50_us", us(c.p50_ns))?;
            entry.set_item("p90_us", us(c.p90_ns))?;
            entry.set_item("p99_us", us(c.p99_ns))?;
            entry.set_item("max_us", us(c.max_ns))?;
            commands.set_item(name, entry)?;
        }
        out.set_item("commands", commands)?;
        out.set_item("servers", self.pool_stats(py)?)?;
        Ok(out)
    }

    /// Start this cache's counters afresh (the servers' connection counts are not reset).
    fn reset_metrics(&self) {
        self.metrics.reset();
    }
}
