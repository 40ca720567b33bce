//! The native client: one Python object per cache, holding its topology and codec. Each method
//! packs its command while attached to the interpreter, releases the GIL for the round trip, and
//! converts the reply once it is attached again.

mod async_api;
mod cache_api;
mod cache_keys;
mod commands;
mod key_commands;
mod many;
mod node_wide;
mod routing;

use cache_keys::*;

use crate::client_side_cache::{shared_local, LocalCache};
use crate::codec::serialize::Serializer;
use crate::codec::signing::Signing;
use crate::codec::{Codec, Compressor};
use crate::resp::pack::Packed;
use crate::resp::reply;
use crate::settings::options::{self, LayoutChoice, SettingValue};
use crate::settings::resolved::{Behaviour, ClientConfig, Layout};
use crate::telemetry::metrics::Metrics;
use crate::topology::Topology;
use crate::transport::breaker::State as BreakerState;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{
    IntoPyDict, PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
};
use std::borrow::Cow;
use std::sync::Arc;

/// A settings value as `options::read` takes it: containers walked, scalars typed, anything
/// else kept by its repr for the message that refuses it.
fn value_of(obj: &Bound<'_, PyAny>) -> PyResult<SettingValue> {
    Ok(if obj.is_none() {
        SettingValue::None
    } else if let Ok(b) = obj.cast::<PyBool>() {
        SettingValue::Bool(b.is_true())
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(n) => SettingValue::Int(n),
            Err(_) => SettingValue::Other(obj.repr()?.to_string()),
        }
    } else if let Ok(x) = obj.cast::<PyFloat>() {
        SettingValue::Float(x.value())
    } else if let Ok(s) = obj.cast::<PyString>() {
        SettingValue::Str(s.to_str()?.to_owned())
    } else if let Ok(map) = obj.cast::<PyMapping>() {
        let mut entries = Vec::new();
        for item in map.items()?.iter() {
            let (key, value) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            let key = match key.cast::<PyString>() {
                Ok(name) => name.to_str()?.to_owned(),
                Err(_) => key.repr()?.to_string(),
            };
            entries.push((key, value_of(&value)?));
        }
        SettingValue::Map(entries)
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        SettingValue::List(
            obj.try_iter()?
                .map(|item| value_of(&item?))
                .collect::<PyResult<_>>()?,
        )
    } else if obj.hasattr("__fspath__")? {
        // A pathlib.Path for a certificate file.
        value_of(&obj.call_method0("__fspath__")?)?
    } else {
        SettingValue::Other(obj.repr()?.to_string())
    })
}

fn layout_choice(layout: &str, read_from_replicas: Option<bool>) -> PyResult<LayoutChoice> {
    Ok(match layout {
        "replicated" => LayoutChoice::Replicated,
        "sharded" => LayoutChoice::Sharded,
        "sentinel" => LayoutChoice::Sentinel { read_from_replicas },
        "cluster" => LayoutChoice::Cluster,
        other => return Err(PyValueError::new_err(format!("unknown layout {other:?}"))),
    })
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
    /// LOCATION's URLs, as given.
    locations: Vec<String>,
    /// ShardClient: the shards' names on the ring (LOCATION's entries as written).
    shard_names: Vec<String>,
    behaviour: Behaviour,
}

pub struct Shared {
    topology: Topology,
    codec: Codec,
    /// Shared by the caches built from the same settings (one per thread in Django).
    metrics: Arc<Metrics>,
    /// `CLIENT_SIDE_CACHE`: values kept in this process, shared by the caches configured alike.
    local: Option<Arc<LocalCache>>,
}

impl std::ops::Deref for Client {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

#[pymethods]
impl Client {
    /// `location` and `options` as settings.py gives them (refused with ConfigError naming the
    /// option); `layout` is the client class's: "replicated", "sharded", "sentinel" or
    /// "cluster".
    #[new]
    #[pyo3(signature = (
        location, options, *, layout="replicated", read_from_replicas=None, serializer=None,
        compressor=None, signing=None, key_prefix=None, tracking_prefix=None, metrics_scope=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        location: &Bound<'_, PyAny>,
        options: &Bound<'_, PyAny>,
        layout: &str,
        read_from_replicas: Option<bool>,
        serializer: Option<&Bound<'_, PyAny>>,
        compressor: Option<&Bound<'_, PyAny>>,
        signing: Option<(bool, Vec<Vec<u8>>)>,
        key_prefix: Option<String>,
        tracking_prefix: Option<String>,
        metrics_scope: Option<String>,
    ) -> PyResult<Self> {
        let layout = layout_choice(layout, read_from_replicas)?;
        let mut settings = options::read(&value_of(location)?, &value_of(options)?, layout)?;
        settings.tracking_prefix = tracking_prefix;
        let config = ClientConfig::new(settings)?;
        let topology = Topology::new(&config)?;
        let shard_names = match &config.layout {
            Layout::Sharded { ring_names } => ring_names.clone(),
            _ => Vec::new(),
        };
        let local = match config.client_side_cache {
            Some(local) => {
                let (server, options) = &config.servers[0];
                Some(shared_local(
                    server,
                    options,
                    local,
                    config.tracking_prefix,
                )?)
            }
            None => None,
        };
        let servers = &config.servers;
        let codec = Codec {
            serializer: match serializer {
                Some(spec) => Serializer::from_spec(spec)?,
                None => Serializer::Pickle {
                    protocol: -1,
                    restricted: None,
                },
            },
            compressor: match compressor {
                Some(spec) => Compressor::from_spec(spec)?,
                None => Compressor::Identity,
            },
            // `(accept_unsigned, secrets)`, checked by options.py (the current secret first).
            signing: match signing {
                Some((_, secrets)) if secrets.is_empty() => {
                    return Err(PyValueError::new_err("SIGNED_VALUES needs a secret"))
                }
                Some((accept_unsigned, secrets)) => Some(Signing::new(&secrets, accept_unsigned)),
                None => None,
            },
        };
        Ok(Self {
            shared: Arc::new(Shared {
                topology,
                codec,
                metrics: match &metrics_scope {
                    Some(scope) => crate::telemetry::metrics::shared(scope),
                    None => Arc::default(),
                },
                local,
            }),
            servers: servers.iter().map(|(s, _)| s.to_string()).collect(),
            key_prefix,
            locations: config.given_locations,
            shard_names,
            behaviour: config.behaviour,
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

    /// LOCATION's URLs, as given: what the raw clients connect to.
    #[getter]
    fn locations(&self) -> Vec<String> {
        self.locations.clone()
    }

    /// ShardClient: the shards' names (LOCATION's entries as written), as `servers` orders
    /// them; empty for other layouts.
    #[getter]
    fn shard_names(&self) -> Vec<String> {
        self.shard_names.clone()
    }

    /// `CLEAR_SCOPE`: "database", "prefix" or "version".
    #[getter]
    fn clear_scope(&self) -> &'static str {
        self.behaviour.clear_scope
    }

    /// Seconds a `get_or_set` waits for another caller computing the same key; None: no
    /// single-flight.
    #[getter]
    fn single_flight_timeout(&self) -> Option<f64> {
        self.behaviour.single_flight_timeout
    }

    /// The settings given that do nothing for the cache (system check W002).
    #[getter]
    fn ignored_settings(&self) -> Vec<String> {
        self.behaviour.ignored.clone()
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

    /// The index (into `servers`) of the shard that holds `key`, placed by django-redis's hash
    /// ring; None unless sharded.
    fn shard_of(&self, key: Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        Ok(self.topology.shard_of(&arg(&key)?))
    }

    /// The stored form of a value (the integer rule, then serializer and compressor): with
    /// `key`, of the cache value stored there (signed for it with SIGNED_VALUES); without, of a
    /// member (never signed).
    #[pyo3(signature = (value, key=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
        key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let encoded = match key {
            Some(key) => self.codec.encode_value(value, &arg(key)?)?,
            None => self.codec.encode(value)?,
        };
        Ok(PyBytes::new(py, encoded.as_bytes()))
    }

    /// Bytes stored at `key` outside the codec (the session engine's), signed for it with
    /// SIGNED_VALUES; `unseal` gives them back, or None for a refused value (a miss).
    fn seal<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        data: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.codec.seal(&arg(key)?, data)))
    }

    fn unseal<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        data: &[u8],
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key)?;
        Ok(self
            .codec
            .unseal(py, &key, data)
            .map(|d| PyBytes::new(py, d)))
    }

    /// Whether SIGNED_VALUES is on (a value then cannot simply be renamed to another key).
    #[getter]
    fn signs_values(&self) -> bool {
        self.codec.signing.is_some()
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

    /// Connections per server (`host:port db=N`): `max`, the pool's limit; `open`, `in_use` and `idle` now; `opened` and
    /// `dropped` (closed after a failure) since start; `async_opened`, the async connection's
    /// (re)connects; and the circuit breaker's `breaker` state and `breaker_trips`. A server's
    /// pool is shared by the caches configured alike, and so are these figures.
    fn pool_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = PyDict::new(py);
        for pool in self.topology.known() {
            let s = pool.stats();
            let breaker = pool.breaker();
            let entry = PyDict::new(py);
            entry.set_item("max", s.max)?;
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
    /// (`mean_us`, `p50_us`, `p90_us`, `p99_us`, `max_us`; percentiles within 1/8);
    /// `get`, the `get`/`aget` calls: `calls`, `hits`, `misses` and `failures` (connection or
    /// server errors); `signature_failures`, the values SIGNED_VALUES read as misses;
    /// `ignored_errors`, the errors `IGNORE_EXCEPTIONS` swallowed by class; and `servers`, as
    /// `pool_stats` gives them.
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
        let [hit, miss, failed] = self.metrics.get_calls();
        let gets = PyDict::new(py);
        gets.set_item("calls", hit + miss + failed)?;
        gets.set_item("hits", hit)?;
        gets.set_item("misses", miss)?;
        gets.set_item("failures", failed)?;
        out.set_item("get", gets)?;
        out.set_item("signature_failures", self.codec.signature_failures())?;
        out.set_item(
            "ignored_errors",
            self.metrics.ignored_counts().into_py_dict(py)?,
        )?;
        out.set_item("servers", self.pool_stats(py)?)?;
        Ok(out)
    }

    /// Count one error that `IGNORE_EXCEPTIONS` swallowed, by the name of its class (read back
    /// as `metrics()["ignored_errors"]`).
    fn note_ignored(&self, name: &str) {
        self.metrics.ignored(name);
    }

    /// Start this cache's counters afresh (the servers' connection counts are not reset).
    fn reset_metrics(&self) {
        self.metrics.reset();
        self.codec.reset_signature_failures();
    }
}
