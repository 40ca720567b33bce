//! Commands about one key, sync and async (`KeyCommand`s, `execute`), and the client-side
//! cache on their way: looking values up before asking Redis, offering what Redis returned,
//! evicting what this process wrote. Requests travel through `routing.rs`.

use super::cache_keys::call_keys;
use super::commands::*;
use super::routing::{awaitable, detached, Awaiting, Blocking};
use super::{Client, Shared};
use crate::client_side_cache::Lookup;
use crate::codec::Codec;
use crate::errors::Result;
use crate::resp::pack::Packed;
use crate::resp::reply;
use crate::telemetry::metrics::GetOutcome;
use crate::transport::connector::RedisPool;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use redis::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// get_many's first half, shared by the sync and async forms: the values the local cache
/// holds, already decoded into `found`, and the keys left to ask Redis for.
pub(super) struct ManyLookup {
    /// The caller's key -> value, for the keys held locally (then for those Redis returns).
    pub(super) found: Py<PyDict>,
    /// For each key to ask Redis for: the caller's key, the key made from it, and the epoch
    /// to `offer` its value to the local cache with (None: no local cache).
    pub(super) callers: Vec<Py<PyAny>>,
    pub(super) asked: Vec<Cow<'static, [u8]>>,
    pub(super) epochs: Vec<Option<u64>>,
}

impl ManyLookup {
    /// get_many's last half: the values Redis returned (`got`: index into `asked`, bytes),
    /// decoded into `found`.
    pub(super) fn fill(
        self,
        py: Python<'_>,
        codec: &Codec,
        got: Vec<(usize, Vec<u8>)>,
    ) -> PyResult<Py<PyAny>> {
        let found = self.found.into_bound(py);
        for (j, data) in got {
            // A value SIGNED_VALUES refuses is a miss: left out.
            if let Some(value) = codec.decode_value(py, &data, &self.asked[j])? {
                found.set_item(self.callers[j].bind(py), value)?;
            }
        }
        Ok(found.into_any().unbind())
    }
}

impl Shared {
    /// After a write by this process (done or failed): its keys leave the local cache now —
    /// the server's invalidation message follows later — so the process reads its own writes.
    pub(super) fn wrote<K: AsRef<[u8]>>(&self, keys: &[K]) {
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

    /// A `get`'s reply as the caller's value (or `default`), counted as a hit or a miss.
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
                self.metrics.get_call(GetOutcome::Miss);
                Ok(default.unwrap_or_else(|| py.None()))
            }
            Value::BulkString(data) => {
                let (value, hit) = self.get_value(py, &data, key, default)?;
                match hit {
                    true => self.metrics.hits(1),
                    false => self.metrics.misses(1), // refused by SIGNED_VALUES
                }
                Ok(value)
            }
            other => reply::raw(py, other),
        }
    }

    /// A value the local cache held for `key` (its lookup already counted), or `default`.
    pub(super) fn local_value(
        &self,
        py: Python<'_>,
        data: &[u8],
        key: &[u8],
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        Ok(self.get_value(py, data, key, default)?.0)
    }

    /// A `get`'s stored value read from `key` (from Redis or the local cache), and whether it
    /// was one: `default` when SIGNED_VALUES refuses it. The call is counted by outcome.
    fn get_value(
        &self,
        py: Python<'_>,
        data: &[u8],
        key: &[u8],
        default: Option<Py<PyAny>>,
    ) -> PyResult<(Py<PyAny>, bool)> {
        Ok(match self.codec.decode_value(py, data, key)? {
            Some(value) => {
                self.metrics.get_call(GetOutcome::Hit);
                (value, true)
            }
            None => {
                self.metrics.get_call(GetOutcome::Miss);
                (default.unwrap_or_else(|| py.None()), false)
            }
        })
    }

    /// `Client::routed` on the runtime.
    pub(super) async fn arouted(
        &self,
        select: impl Fn() -> Result<Arc<RedisPool>>,
        packed: &Packed,
    ) -> Result<Vec<Value>> {
        self.route_on(&Awaiting, select, packed).await
    }
}

impl Client {
    /// get_many's first half (see `ManyLookup`); local hits are counted as hits.
    pub(super) fn lookup_many(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        version: Option<i64>,
    ) -> PyResult<ManyLookup> {
        let found = PyDict::new(py);
        let (mut callers, mut asked, mut epochs) = (Vec::new(), Vec::new(), Vec::new());
        for (caller, made) in call_keys(self.key_prefix.as_deref(), keys, version)? {
            match self.local_lookup(&made) {
                Ok(value) => {
                    if let Some(value) = self.codec.decode_value(py, &value, &made)? {
                        found.set_item(&caller, value)?;
                    }
                }
                Err(epoch) => {
                    callers.push(caller.unbind());
                    asked.push(Cow::Owned(made.into_owned()));
                    epochs.push(epoch);
                }
            }
        }
        Ok(ManyLookup {
            found: found.unbind(),
            callers,
            asked,
            epochs,
        })
    }

    /// Run `packed` on the node `select` names, with the GIL released, through redirects
    /// and retries (`routing.rs`).
    pub(super) fn routed(
        &self,
        py: Python<'_>,
        select: impl Fn() -> Result<Arc<RedisPool>> + Sync,
        packed: &Packed,
    ) -> Result<Vec<Value>> {
        detached(py, self.route_on(&Blocking, &select, packed))
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

    /// The nodes that own keys, found with the GIL released.
    pub(super) fn primaries(&self, py: Python<'_>) -> Result<Vec<Arc<RedisPool>>> {
        py.detach(|| self.topology.primaries())
    }
}
