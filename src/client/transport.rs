//! How a request reaches Redis: routing, retries on a changed topology, fan-out to every
//! node holding keys, metering, and the client-side cache on the way.

use super::commands::*;
use super::keys::call_keys;
use super::{Client, Shared};
use crate::connection::{arun_all, arun_asking, run_all, run_asking, run_fanout, RedisPool};
use crate::errors::{Error, ErrorKind, Result};
use crate::local::Lookup;
use crate::reply;
use crate::resp::Packed;
use crate::runtime::awaitable;
use futures_util::future::join_all;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use redis::Value;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// get_many's first half, shared by the sync and async forms: the keys made, the values the
/// local cache holds already decoded into `found`, and what is left to ask Redis for.
pub(super) struct ManyLookup<'py> {
    /// The caller's key -> value, for the keys held locally.
    pub(super) found: Bound<'py, PyDict>,
    /// The caller's keys, and the keys made from them.
    pub(super) callers: Vec<Bound<'py, PyAny>>,
    pub(super) made: Vec<Cow<'static, [u8]>>,
    /// The indexes of the keys to ask Redis for ...
    pub(super) misses: Vec<usize>,
    /// ... and, for each, the epoch to `offer` its value with (None: no local cache).
    pub(super) epochs: Vec<Option<u64>>,
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
    pub(super) fn wrote_keys_of(&self, keys: &[&[u8]]) {
        if keys.is_empty() {
            self.wrote_all();
        } else {
            self.wrote(keys);
        }
    }

    /// After `clear` or `delete_pattern`: the local cache starts empty.
    pub(super) fn wrote_all(&self) {
        if let Some(local) = &self.local {
            local.flush();
        }
    }

    /// GET, with the key's remaining TTL when a local cache will keep the value.
    pub(super) fn get_request(&self, key: &[u8]) -> Packed {
        let mut packed = Packed::command(&[b"GET", key]);
        if self.local.is_some() {
            packed.extend(&Packed::command(&[b"PTTL", key]));
        }
        packed
    }

    /// A local copy of `key`'s value, counted as a hit; else what to `offer` the value read
    /// from Redis with (None without a local cache).
    pub(super) fn local_lookup(&self, key: &[u8]) -> std::result::Result<Arc<[u8]>, Option<u64>> {
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
    pub(super) fn got(&self, mut replies: Vec<Value>, key: &[u8], epoch: Option<u64>) -> Value {
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

    /// get_many's request to one node: MGET per batch; with a local cache, then a PTTL per
    /// key, in batch order, for the values it will keep.
    pub(super) fn get_many_request<K: AsRef<[u8]>>(
        &self,
        batches: &[Vec<usize>],
        keys: &[K],
    ) -> Packed {
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
    pub(super) fn got_many<K: AsRef<[u8]>>(
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
    pub(super) fn found(
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
    pub(super) fn metered<T>(
        &self,
        packed: &Packed,
        send: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = send();
        self.metrics
            .record(packed.name(), started.elapsed(), result.is_ok());
        result
    }

    pub(super) async fn ametered<T>(
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
    pub(super) fn routing<T>(&self, route: impl FnOnce() -> T) -> T {
        if self.topology.settled() {
            route()
        } else {
            tokio::task::block_in_place(route)
        }
    }

    /// The async twin of `Client::routed` (same failure handling); finding a node may block
    /// (sentinel or cluster discovery), which the runtime is told about.
    pub(super) async fn arouted(
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

impl Client {
    /// get_many's first half (see `ManyLookup`); local hits are counted as hits.
    pub(super) fn lookup_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        version: Option<i64>,
    ) -> PyResult<ManyLookup<'py>> {
        let (callers, made): (Vec<_>, Vec<_>) =
            call_keys(self.key_prefix.as_deref(), keys, version)?
                .into_iter()
                .unzip();
        let found = PyDict::new(py);
        let (mut misses, mut epochs) = (Vec::with_capacity(made.len()), Vec::new());
        for (i, key) in made.iter().enumerate() {
            match self.local_lookup(key) {
                Ok(value) => found.set_item(&callers[i], self.codec.decode(py, &value, key)?)?,
                Err(epoch) => {
                    misses.push(i);
                    epochs.push(epoch);
                }
            }
        }
        Ok(ManyLookup {
            found,
            callers,
            made,
            misses,
            epochs,
        })
    }

    /// Run `packed` on the node `select` names, with the GIL released. A failure teaches the
    /// topology (sentinel and cluster find their nodes again); a command refused as `READONLY`
    /// (demoted primary) or `MOVED` (slot map changed) runs once more on the new owner, and an
    /// `ASK` redirect sends it to the importing node.
    pub(super) fn routed(
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
    pub(super) fn on_key_all(
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

    pub(super) fn run_key<T>(&self, py: Python<'_>, command: KeyCommand<T>) -> Result<T> {
        let replies = self.on_key_all(py, &command.key, command.write, command.packed)?;
        Ok((command.read)(replies))
    }

    pub(super) fn arun_key<'py, T>(
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
    pub(super) fn per_node<K: AsRef<[u8]> + Sync>(
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
    pub(super) fn primaries(&self, py: Python<'_>) -> Result<Vec<Arc<RedisPool>>> {
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
    pub(super) async fn aper_node(
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
