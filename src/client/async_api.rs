//! The same commands, awaited on the runtime.

use super::cache_keys::*;
use super::commands::*;
use super::routing::awaitable;
use super::routing::Awaiting;
use super::Client;
use crate::process::runtime::settled;
use crate::resp::reply::{self, Reply};
use crate::telemetry::metrics::GetOutcome;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::IntoPyObjectExt;
use redis::Value;
use std::borrow::Cow;
use std::sync::Arc;

#[pymethods]
impl Client {
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
            Ok(value) => return settled(py, self.local_value(py, &value, &key, default)?),
            Err(epoch) => epoch,
        };
        let packed = self.get_request(&key);
        let (shared, decoder) = (Arc::clone(&self.shared), Arc::clone(&self.shared));
        let work = async move {
            let replies = shared
                .arouted(|| shared.topology.route(&key, false), &packed)
                .await
                .inspect_err(|_| shared.metrics.get_call(GetOutcome::Failed))?;
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
        let key = cache_key(key)?;
        let command = set_command(
            &key,
            self.codec.encode_value(value, &key)?.as_bytes(),
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
        let work = async move { shared.clear_on(&Awaiting).await };
        awaitable(py, work, |py, ()| Ok(py.None()))
    }

    /// `keys`, as an awaitable: KEYS on every primary.
    fn akeys<'py>(
        &self,
        py: Python<'py>,
        pattern: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (shared, pattern) = (Arc::clone(&self.shared), arg(pattern)?.into_owned());
        let work = async move { shared.keys_on(&Awaiting, &pattern).await };
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
        let (shared, pattern) = (Arc::clone(&self.shared), arg(pattern)?.into_owned());
        let count = count.unwrap_or(10).max(1);
        let work = async move {
            shared
                .scan_on(&Awaiting, cursor, &pattern, count, node)
                .await
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
        let count = itersize.unwrap_or(1000).max(1);
        let work = async move { shared.delete_pattern_on(&Awaiting, &pattern, count).await };
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
        let lookup = self.lookup_many(py, keys, version)?;
        if lookup.asked.is_empty() {
            return settled(py, lookup.fill(py, &self.codec, Vec::new())?);
        }
        let shared = Arc::clone(&self.shared);
        let work = async move {
            let got = shared
                .get_many_on(&Awaiting, &lookup.asked, &lookup.epochs)
                .await?;
            Ok((got, lookup))
        };
        let decoder = Arc::clone(&self.shared);
        awaitable(py, work, move |py, (got, lookup)| {
            lookup.fill(py, &decoder.codec, got)
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
            .zip(&made)
            .map(|((_, value), key)| Ok(self.codec.encode_value(value, key)?.as_bytes().to_vec()))
            .collect::<PyResult<_>>()?;
        let shared = Arc::clone(&self.shared);
        let work = async move {
            shared
                .set_many_on(&Awaiting, &keys, &values, timeout_ms)
                .await
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
        let work = async move { shared.delete_many_on(&Awaiting, &keys).await };
        awaitable(py, work, |py, deleted| deleted.into_py_any(py))
    }
}
