//! The Django cache API and the raw `execute`, sync.

use super::cache_keys::*;
use super::commands::*;
use super::routing::{detached, Blocking};
use super::Client;
use crate::codec::Encoded;
use crate::resp::reply::{self, Reply};
use crate::telemetry::metrics::GetOutcome;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use redis::Value;
use std::borrow::Cow;

#[pymethods]
impl Client {
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
            Ok(value) => return self.local_value(py, &value, &key, default),
            Err(epoch) => epoch,
        };
        let replies = self
            .on_key_all(py, &key, false, self.get_request(&key))
            .inspect_err(|_| self.metrics.get_call(GetOutcome::Failed))?;
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
        let key = cache_key(key)?;
        let command = set_command(
            &key,
            self.codec.encode_value(value, &key)?.as_bytes(),
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
    fn get_many(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let lookup = self.lookup_many(py, keys, version)?;
        let (asked, epochs) = (&lookup.asked, &lookup.epochs);
        let got = match asked.is_empty() {
            true => Vec::new(),
            false => detached(py, self.get_many_on(&Blocking, asked, epochs))?,
        };
        lookup.fill(py, &self.codec, got)
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
            .zip(&made)
            .map(|((_, value), key)| self.codec.encode_value(value, key))
            .collect::<PyResult<_>>()?;
        // The bytes, readable with the GIL released (the objects stay alive in `encoded`).
        let values: Vec<&[u8]> = encoded.iter().map(Encoded::as_bytes).collect();
        Ok(detached(
            py,
            self.set_many_on(&Blocking, &made, &values, timeout_ms),
        )?)
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
        Ok(detached(py, self.delete_many_on(&Blocking, &made))?)
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
        let (pattern, count) = (arg(pattern)?, itersize.unwrap_or(1000).max(1));
        Ok(detached(
            py,
            self.delete_pattern_on(&Blocking, &pattern, count),
        )?)
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
        let (pattern, count) = (arg(pattern)?, count.unwrap_or(10).max(1));
        Ok(detached(
            py,
            self.scan_on(&Blocking, cursor, &pattern, count, node),
        )?)
    }

    /// How many primaries hold keys (SCAN each of them).
    #[getter]
    fn node_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.primaries(py)?.len())
    }

    /// KEYS on every primary.
    fn keys(&self, py: Python<'_>, pattern: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let pattern = arg(pattern)?;
        Ok(detached(py, self.keys_on(&Blocking, &pattern))?)
    }

    /// FLUSHDB on every primary.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        Ok(detached(py, self.clear_on(&Blocking))?)
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
}
