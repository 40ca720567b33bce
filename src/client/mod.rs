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

use crate::breaker::{BreakerConfig, State as BreakerState};
use crate::client_config::{ClientConfig, SentinelSettings, Settings};
use crate::client_side_cache::{shared_local, LocalCache, LocalConfig};
use crate::codec::serialize::Serializer;
use crate::codec::{Codec, Compressor};
use crate::config::{duration_from_secs, ConnectionOptions, TlsOptions};
use crate::metrics::Metrics;
use crate::reply;
use crate::resp::Packed;
use crate::topology::Topology;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// TLS to the sentinels: CA file, client certificate and key, verify the peer, verify the
/// host name.
type SentinelTls = (
    Option<PathBuf>,
    Option<PathBuf>,
    Option<PathBuf>,
    bool,
    bool,
);

/// A timeout given in seconds; none when absent, zero or out of range (the Python layer refuses
/// out-of-range values first, naming the option).
fn seconds(value: Option<f64>) -> Option<Duration> {
    value.and_then(duration_from_secs).filter(|d| !d.is_zero())
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
        client_side_cache=None, tracking_prefix=None, sentinel_tls=None
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
        sentinel_tls: Option<SentinelTls>,
    ) -> PyResult<Self> {
        let defaults = ConnectionOptions::default();
        let options = ConnectionOptions {
            socket_timeout: seconds(socket_timeout),
            connect_timeout: seconds(connect_timeout),
            max_connections: max_connections.unwrap_or(defaults.max_connections),
            pool_timeout: pool_timeout
                .and_then(duration_from_secs)
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
        let tls_options =
            |(ca_certs, certfile, keyfile, verify_peer, verify_hostname)| TlsOptions {
                ca_certs,
                certfile,
                keyfile,
                verify_peer,
                verify_hostname,
            };
        let config = ClientConfig::new(Settings {
            locations,
            options,
            username,
            password,
            shard_names,
            sentinels: sentinels.map(|nodes| SentinelSettings {
                nodes,
                username: sentinel_username,
                password: sentinel_password,
                tls: sentinel_tls.map(tls_options),
                read_from_replicas,
            }),
            cluster,
            client_side_cache: client_side_cache.map(|(max_entries, max_bytes, ttl)| LocalConfig {
                max_entries,
                max_bytes,
                ttl: seconds(Some(ttl)).unwrap_or_default(),
            }),
            tracking_prefix,
        })?;
        let topology = Topology::new(&config)?;
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
