//! A cache's `LOCATION` and `OPTIONS`, as settings.py writes them, checked once into the typed
//! `Settings`: every refusal names its option, and the settings that do nothing for the cache
//! are listed for the system check (W002).
//!
//! Pure Rust: the Python dict arrives as a `SettingValue` tree (`client::value_of`), so `cargo test`
//! covers every rule. The Python layer keeps what needs Python: importing dotted paths, the
//! serializer and compressor objects, and the options that read Django's settings.

use crate::errors::{ConfigKind, Error, Result};
use crate::settings::location::{
    duration_from_secs, ignored_query_params, TlsOptions, MAX_SECONDS,
};
use crate::settings::resolved::BreakerConfig;
use crate::settings::resolved::LocalConfig;
use crate::settings::resolved::{SentinelSettings, Settings};
use std::fmt;
use std::time::Duration;

/// A settings value: what Python's settings hold, reduced to what options can be.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<SettingValue>),
    Map(Vec<(String, SettingValue)>),
    /// Anything else (an int beyond 64 bits, an object), by its Python repr.
    Other(String),
}

/// As Python writes it, so that messages quote values as settings.py does.
impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::None => f.write_str("None"),
            SettingValue::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            SettingValue::Int(n) => write!(f, "{n}"),
            SettingValue::Float(x) => write!(f, "{x:?}"),
            SettingValue::Str(s) => write!(f, "{s:?}"),
            SettingValue::List(items) => write!(f, "[{}]", joined(items)),
            SettingValue::Map(entries) => {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                write!(f, "{{{}}}", entries.join(", "))
            }
            SettingValue::Other(repr) => f.write_str(repr),
        }
    }
}

fn joined(items: impl IntoIterator<Item = impl fmt::Display>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.join(", ")
}

/// How the client class lays out LOCATION's servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutChoice {
    /// The first server takes writes, the others are read replicas (DefaultClient).
    Replicated,
    /// django-redis's hash ring (ShardClient).
    Sharded,
    /// Sentinel names the servers. `read_from_replicas` None: the URLs decide, as django-redis's
    /// `SentinelConnectionFactory` does (`?is_master=0`).
    Sentinel {
        read_from_replicas: Option<bool>,
    },
    Cluster,
}

/// The options read here or by the Python layer.
pub const KNOWN_OPTIONS: &[&str] = &[
    "CLIENT_CLASS",
    "SERIALIZER",
    "COMPRESSOR",
    "PICKLE_VERSION",
    "SAFE_PICKLE",
    "SAFE_PICKLE_CLASSES",
    "SIGNED_VALUES",
    "SIGNED_VALUES_SECRET",
    "SOCKET_TIMEOUT",
    "SOCKET_CONNECT_TIMEOUT",
    "CONNECTION_POOL_KWARGS",
    "PASSWORD",
    "USERNAME",
    "IGNORE_EXCEPTIONS",
    "CLOSE_CONNECTION",
    "REPLICA_READ_ONLY",
    "REVERSE_KEY_FUNCTION",
    "COMPRESSOR_LEVEL",
    "COMPRESSOR_MIN_LENGTH",
    "COMPRESSOR_MAX_DECOMPRESSED_SIZE",
    "SENTINELS",
    "SENTINEL_KWARGS",
    "CONNECTION_FACTORY",
    "CIRCUIT_BREAKER",
    "CLEAR_SCOPE",
    "CLIENT_SIDE_CACHE",
    "SINGLE_FLIGHT",
    "SINGLE_FLIGHT_TIMEOUT",
];
/// Accepted so that django-redis settings work unchanged, without any effect here.
const NO_EFFECT_OPTIONS: &[&str] = &["REPLICA_READ_ONLY"];
/// django-redis's options for redis-py: they configure only the raw client
/// (`get_redis_connection()`), never the cache.
const REDIS_PY_OPTIONS: &[&str] = &[
    "PARSER_CLASS",
    "CONNECTION_POOL_CLASS",
    "CONNECTION_POOL_CLASS_KWARGS",
    "REDIS_CLIENT_CLASS",
    "REDIS_CLIENT_KWARGS",
];
const TLS_KWARGS: &[&str] = &[
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
];
const POOL_KWARGS: &[&str] = &["max_connections", "timeout", "health_check_interval"];
/// redis-py's connection and pool arguments the native pools do not use: the raw client's only.
const REDIS_PY_POOL_KWARGS: &[&str] = &[
    "retry_on_timeout",
    "retry_on_error",
    "retry",
    "socket_keepalive",
    "socket_keepalive_options",
    "socket_type",
    "client_name",
    "lib_name",
    "lib_version",
    "encoding",
    "encoding_errors",
    "decode_responses",
    "protocol",
    "connection_class",
    "queue_class",
    "credential_provider",
    "ssl_password",
    "ssl_min_version",
    "ssl_ciphers",
    "ssl_validate_ocsp",
    "ssl_include_verify_flags",
    "ssl_exclude_verify_flags",
];
/// redis-py's `sentinel_kwargs` that the native client reads; its timeouts are the cache's.
const SENTINEL_KWARGS: &[&str] = &["username", "password", "ssl"];
const SENTINEL_TIMEOUTS: &[&str] = &["socket_timeout", "socket_connect_timeout"];
const CLEAR_SCOPES: &[&str] = &["database", "prefix", "version"];

/// A dict of settings, named for messages.
struct Table<'a> {
    label: &'static str,
    entries: &'a [(String, SettingValue)],
}

impl<'a> Table<'a> {
    /// `value` as a dict; None and an empty dict alike mean "nothing set" (Python's `or {}`).
    fn of(label: &'static str, value: Option<&'a SettingValue>) -> Result<Self> {
        match value {
            None | Some(SettingValue::None) => Ok(Self {
                label,
                entries: &[],
            }),
            Some(SettingValue::Map(entries)) => Ok(Self { label, entries }),
            Some(other) => Err(Error::config(
                label,
                format!("{label} must be a dict, not {other}"),
            )),
        }
    }

    /// The value set for `name`, None included.
    fn raw(&self, name: &str) -> Option<&'a SettingValue> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value set for `name`; None counts as unset.
    fn get(&self, name: &str) -> Option<&'a SettingValue> {
        self.raw(name).filter(|v| **v != SettingValue::None)
    }

    fn names(&self) -> impl Iterator<Item = &'a str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Refuse names outside `known` (kind `Unknown`, naming them for the check's hint).
    fn only(&self, known: &[&[&str]], what: &str) -> Result<()> {
        let mut unknown: Vec<String> = self
            .names()
            .filter(|name| !known.iter().any(|list| list.contains(name)))
            .map(str::to_owned)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        let mut supported: Vec<&str> = known.iter().flat_map(|list| list.iter().copied()).collect();
        supported.sort();
        let summary = format!(
            "Unknown {what} [{}]",
            joined(unknown.iter().map(|n| format!("{n:?}"))),
        );
        let message = format!(
            "{summary}; supported: [{}]",
            joined(supported.iter().map(|n| format!("{n:?}"))),
        );
        Err(
            Error::misconfigured(self.label, ConfigKind::Unknown, unknown, message)
                .summarised(summary),
        )
    }
}

/// A number of seconds (see `duration_from_secs`), or None when unset.
fn seconds(value: Option<&SettingValue>, label: &'static str) -> Result<Option<Duration>> {
    let secs = match value {
        None | Some(SettingValue::None) => return Ok(None),
        Some(SettingValue::Int(n)) => Some(*n as f64),
        Some(SettingValue::Float(x)) => Some(*x),
        Some(_) => None,
    };
    match secs.and_then(duration_from_secs) {
        Some(duration) => Ok(Some(duration)),
        None => Err(Error::misconfigured(
            label,
            ConfigKind::Timeout,
            Vec::new(),
            format!(
                "{label} must be a number of seconds from 0 to {MAX_SECONDS:e} (and, when \
                 positive, at least 1e-9), not {}",
                value.unwrap_or(&SettingValue::None)
            ),
        )),
    }
}

/// A positive number of seconds, `default` when unset.
fn positive_seconds(
    value: Option<&SettingValue>,
    label: &'static str,
    default: f64,
) -> Result<Duration> {
    match seconds(value, label)? {
        None => Ok(Duration::from_secs_f64(default)),
        Some(d) if d.is_zero() => Err(Error::misconfigured(
            label,
            ConfigKind::Timeout,
            Vec::new(),
            format!("{label} must be more than 0 seconds"),
        )),
        Some(d) => Ok(d),
    }
}

/// An integer (not a bool) from `min` to `max`.
fn bounded(value: &SettingValue, label: &'static str, min: i64, max: i64) -> Result<i64> {
    match value {
        SettingValue::Int(n) if (min..=max).contains(n) => Ok(*n),
        _ => Err(Error::config(
            label,
            format!("{label} must be an integer from {min} to {max}, not {value}"),
        )),
    }
}

fn flag(value: Option<&SettingValue>, label: &'static str, default: bool) -> Result<bool> {
    match value {
        None => Ok(default),
        Some(SettingValue::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::config(
            label,
            format!("{label} must be True or False, not {other}"),
        )),
    }
}

fn text(value: Option<&SettingValue>, label: &'static str) -> Result<Option<String>> {
    match value {
        None | Some(SettingValue::None) => Ok(None),
        Some(SettingValue::Str(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(other) => Err(Error::config(
            label,
            format!("{label} must be a string, not {other}"),
        )),
    }
}

/// LOCATION: a URL string, comma-separated URLs, or a list of them. Returns the URLs and the
/// entries as written (django-redis names its ring nodes by those).
fn locations(location: &SettingValue) -> Result<(Vec<String>, Vec<String>)> {
    let written: Vec<String> = match location {
        SettingValue::Str(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        SettingValue::List(items) => items
            .iter()
            .map(|item| match item {
                SettingValue::Str(s) => Ok(s.clone()),
                _ => Err(()),
            })
            .collect::<std::result::Result<_, ()>>()
            .map_err(|()| not_urls(location))?,
        _ => return Err(not_urls(location)),
    };
    if written.is_empty() {
        return Err(Error::config("LOCATION", "LOCATION names no server"));
    }
    let urls = written.iter().map(|w| w.trim().to_owned()).collect();
    Ok((urls, written))
}

fn not_urls(location: &SettingValue) -> Error {
    Error::config(
        "LOCATION",
        format!("LOCATION must be a URL string or a list of them, not {location}"),
    )
}

/// redis-py's `ssl_*` arguments: for `rediss://` servers from `CONNECTION_POOL_KWARGS`, for
/// sentinels from `SENTINEL_KWARGS`.
fn tls(table: &Table<'_>) -> Result<TlsOptions> {
    let label = table.label;
    let path = |name: &str| match table.get(name) {
        None => Ok(None),
        Some(SettingValue::Str(p)) => Ok(Some(p.into())),
        Some(_) => Err(Error::config(
            label,
            format!("{label}['{name}'] must be a file path"),
        )),
    };
    let mut tls = TlsOptions {
        ca_certs: path("ssl_ca_certs")?,
        certfile: path("ssl_certfile")?,
        keyfile: path("ssl_keyfile")?,
        ..TlsOptions::default()
    };
    let refused = |other: &SettingValue| {
        let message = format!(
            "{label}['ssl_cert_reqs'] must be None, 'none', 'optional' or 'required' \
             (or an ssl.CERT_* constant), not {other}"
        );
        Error::config(label, message)
    };
    match table.raw("ssl_cert_reqs") {
        // ssl.CERT_NONE is 0; CERT_OPTIONAL 1 and CERT_REQUIRED 2.
        Some(SettingValue::None | SettingValue::Int(0)) => tls.verify_peer = false,
        None | Some(SettingValue::Int(1 | 2)) => {}
        // By name: the rule a URL's ?ssl_cert_reqs= follows.
        Some(named @ SettingValue::Str(s)) => tls.set_cert_reqs(s).map_err(|_| refused(named))?,
        Some(other) => return Err(refused(other)),
    }
    tls.verify_hostname = flag(table.raw("ssl_check_hostname"), "ssl_check_hostname", true)
        .map_err(|_| {
            Error::config(
                label,
                format!("{label}['ssl_check_hostname'] must be a bool"),
            )
        })?;
    Ok(tls)
}

/// `CLIENT_SIDE_CACHE`: True, or a dict of `max_entries`, `max_bytes` and `ttl`.
fn client_side_cache(value: Option<&SettingValue>) -> Result<Option<LocalConfig>> {
    const LABEL: &str = "CLIENT_SIDE_CACHE";
    let table = match value {
        None | Some(SettingValue::None | SettingValue::Bool(false)) => return Ok(None),
        Some(SettingValue::Bool(true)) => Table::of(LABEL, None)?,
        Some(SettingValue::Map(_)) => Table::of(LABEL, value)?,
        Some(_) => {
            return Err(Error::config(
                LABEL,
                "CLIENT_SIDE_CACHE must be True or a dict with max_entries, max_bytes and ttl",
            ))
        }
    };
    table.only(
        &[&["max_entries", "max_bytes", "ttl"]],
        "CLIENT_SIDE_CACHE keys",
    )?;
    let size = |name, label, default: i64| match table.get(name) {
        None => Ok(default as usize),
        Some(v) => bounded(v, label, 1, i64::MAX).map(|n| n as usize),
    };
    Ok(Some(LocalConfig {
        max_entries: size("max_entries", "CLIENT_SIDE_CACHE['max_entries']", 10_000)?,
        max_bytes: size("max_bytes", "CLIENT_SIDE_CACHE['max_bytes']", 64 << 20)?,
        ttl: positive_seconds(table.get("ttl"), "CLIENT_SIDE_CACHE['ttl']", 60.0)?,
    }))
}

/// `CIRCUIT_BREAKER = {"failures": N, "reset_timeout": T}`: after N consecutive connection
/// failures to a server, calls to it fail at once for T seconds, then one call probes it.
fn circuit_breaker(value: Option<&SettingValue>) -> Result<BreakerConfig> {
    if value.is_none() {
        return Ok(BreakerConfig::default());
    }
    let table = Table::of("CIRCUIT_BREAKER", value)?;
    table.only(&[&["failures", "reset_timeout"]], "CIRCUIT_BREAKER keys")?;
    let failures = match table.get("failures") {
        None => 5,
        Some(v) => bounded(v, "CIRCUIT_BREAKER['failures']", 1, u32::MAX.into())? as u32,
    };
    let reset = table.get("reset_timeout");
    Ok(BreakerConfig {
        failures,
        reset_timeout: positive_seconds(reset, "CIRCUIT_BREAKER['reset_timeout']", 10.0)?,
    })
}

/// `?is_master=...` taken off a LOCATION URL (django-redis's Sentinel factory reads it; as
/// redis-py reads a flag, anything but 0/false/no/off is true).
fn pop_is_master(url: &str) -> (String, Option<bool>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut flag = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| match param.split_once('=') {
            Some(("is_master", value)) => {
                let off = ["0", "false", "f", "n", "no", "off"];
                flag = Some(!off.contains(&value.to_ascii_lowercase().as_str()));
                false
            }
            _ => true,
        })
        .collect();
    match kept.is_empty() {
        true => (base.to_owned(), flag),
        false => (format!("{base}?{}", kept.join("&")), flag),
    }
}

fn sentinels(
    options: &Table<'_>,
    pool: &Table<'_>,
    urls: &mut Vec<String>,
    read_from_replicas: Option<bool>,
    ignored: &mut Vec<String>,
) -> Result<SentinelSettings> {
    let bad = || {
        Error::config(
            "SENTINELS",
            "SENTINELS must be provided as a list of (host, port).",
        )
    };
    let nodes = match options.get("SENTINELS") {
        Some(SettingValue::List(nodes)) if !nodes.is_empty() => nodes
            .iter()
            .map(|node| match node {
                SettingValue::List(pair) => match pair.as_slice() {
                    [SettingValue::Str(host), SettingValue::Int(port)] => {
                        Ok((host.clone(), u16::try_from(*port).map_err(|_| bad())?))
                    }
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(bad()),
    };
    let extra = Table::of("SENTINEL_KWARGS", options.get("SENTINEL_KWARGS"))?;
    extra.only(
        &[SENTINEL_KWARGS, SENTINEL_TIMEOUTS, TLS_KWARGS],
        "SENTINEL_KWARGS",
    )?;
    ignored.extend(
        SENTINEL_TIMEOUTS
            .iter()
            .filter(|name| extra.raw(name).is_some())
            .map(|name| format!("SENTINEL_KWARGS['{name}']")),
    );
    // The service URL, is_master taken off.
    let mut replica_flags = Vec::new();
    for url in urls.iter_mut() {
        let (kept, is_master) = pop_is_master(url);
        *url = kept;
        replica_flags.extend(is_master.map(|primary| !primary));
    }
    urls.truncate(1);
    let read_from_replicas = match read_from_replicas {
        None => replica_flags.iter().any(|&replica| replica),
        // ?is_master=1 alone: everything on the primary.
        Some(_) if !replica_flags.is_empty() && !replica_flags.contains(&true) => false,
        Some(chosen) => chosen,
    };
    let tls_on = flag(extra.raw("ssl"), "SENTINEL_KWARGS", false).map_err(|_| {
        Error::config(
            "SENTINEL_KWARGS",
            "SENTINEL_KWARGS['ssl'] must be True or False",
        )
    })?;
    // Their own ssl_* arguments, else the data connections' (same defaults: verified).
    let own_tls = TLS_KWARGS.iter().any(|name| extra.raw(name).is_some());
    Ok(SentinelSettings {
        nodes,
        username: text(extra.get("username"), "SENTINEL_KWARGS")?,
        password: text(extra.get("password"), "SENTINEL_KWARGS")?,
        tls: match tls_on {
            false => None,
            true => Some(tls(if own_tls { &extra } else { pool })?),
        },
        read_from_replicas,
    })
}

/// `LOCATION` and `OPTIONS`, checked into `Settings` for `layout`.
pub fn read(
    location: &SettingValue,
    options: &SettingValue,
    layout: LayoutChoice,
) -> Result<Settings> {
    let options = Table::of("OPTIONS", Some(options))?;
    options.only(&[KNOWN_OPTIONS, REDIS_PY_OPTIONS], "cache OPTIONS")?;
    let pool = Table::of(
        "CONNECTION_POOL_KWARGS",
        options.get("CONNECTION_POOL_KWARGS"),
    )?;
    pool.only(
        &[POOL_KWARGS, TLS_KWARGS, REDIS_PY_POOL_KWARGS],
        "CONNECTION_POOL_KWARGS",
    )?;
    let (mut urls, written) = locations(location)?;

    let mut settings = Settings::default();
    let connection = &mut settings.options;
    connection.socket_timeout = seconds(options.get("SOCKET_TIMEOUT"), "SOCKET_TIMEOUT")?;
    connection.connect_timeout = seconds(
        options.get("SOCKET_CONNECT_TIMEOUT"),
        "SOCKET_CONNECT_TIMEOUT",
    )?;
    if let Some(max) = pool.get("max_connections") {
        let label = "CONNECTION_POOL_KWARGS['max_connections']";
        connection.max_connections = bounded(max, label, 1, u32::MAX.into())? as usize;
    }
    if let Some(wait) = seconds(pool.get("timeout"), "CONNECTION_POOL_KWARGS['timeout']")? {
        connection.pool_timeout = wait;
    }
    connection.health_check_interval = seconds(
        pool.get("health_check_interval"),
        "CONNECTION_POOL_KWARGS['health_check_interval']",
    )?;
    connection.breaker = circuit_breaker(options.get("CIRCUIT_BREAKER"))?;
    connection.tls = tls(&pool)?;
    // Zero: no timeout, no check.
    for setting in [
        &mut connection.socket_timeout,
        &mut connection.connect_timeout,
        &mut connection.health_check_interval,
    ] {
        *setting = setting.filter(|d| !d.is_zero());
    }

    settings.username = text(options.get("USERNAME"), "USERNAME")?;
    settings.password = text(options.get("PASSWORD"), "PASSWORD")?;
    settings.client_side_cache = client_side_cache(options.get("CLIENT_SIDE_CACHE"))?;
    let behaviour = &mut settings.behaviour;
    behaviour.clear_scope = match options.raw("CLEAR_SCOPE") {
        None => "database",
        Some(value) => match value {
            SettingValue::Str(s) => CLEAR_SCOPES.iter().copied().find(|scope| scope == s),
            _ => None,
        }
        .ok_or_else(|| {
            let message =
                format!("CLEAR_SCOPE must be one of 'database', 'prefix', 'version', not {value}");
            Error::config("CLEAR_SCOPE", message)
        })?,
    };
    let flight = flag(options.raw("SINGLE_FLIGHT"), "SINGLE_FLIGHT", true)?;
    let wait = seconds(
        options.get("SINGLE_FLIGHT_TIMEOUT"),
        "SINGLE_FLIGHT_TIMEOUT",
    )?;
    behaviour.single_flight_timeout = flight.then(|| wait.map_or(30.0, |d| d.as_secs_f64()));

    settings.given_locations = urls.clone();
    let ignored = &mut settings.behaviour.ignored;
    ignored.extend(
        options
            .names()
            .filter(|name| NO_EFFECT_OPTIONS.contains(name) || REDIS_PY_OPTIONS.contains(name))
            .map(str::to_owned),
    );
    ignored.extend(
        pool.names()
            .filter(|name| REDIS_PY_POOL_KWARGS.contains(name))
            .map(|name| format!("CONNECTION_POOL_KWARGS['{name}']")),
    );
    match layout {
        LayoutChoice::Replicated => {}
        LayoutChoice::Sharded => settings.shard_names = Some(written),
        LayoutChoice::Cluster => settings.cluster = true,
        LayoutChoice::Sentinel { read_from_replicas } => {
            settings.sentinels = Some(sentinels(
                &options,
                &pool,
                &mut urls,
                read_from_replicas,
                ignored,
            )?)
        }
    }
    for url in &urls {
        ignored.extend(
            ignored_query_params(url)
                .into_iter()
                .map(|name| format!("LOCATION's ?{name}")),
        );
    }
    settings.locations = urls;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, SettingValue)]) -> SettingValue {
        SettingValue::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn url(s: &str) -> SettingValue {
        SettingValue::Str(s.into())
    }

    fn fault(read: Result<Settings>) -> crate::errors::Misconfigured {
        match read {
            Ok(_) => panic!("accepted"),
            Err(e) => *e.setting.expect("a configuration error names its setting"),
        }
    }

    fn refused(options: SettingValue) -> crate::errors::Misconfigured {
        fault(read(&url("redis://h"), &options, LayoutChoice::Replicated))
    }

    #[test]
    fn every_refusal_names_its_option_and_kind() {
        let pool = |entries| map(&[("CONNECTION_POOL_KWARGS", map(entries))]);
        let cases = [
            (
                map(&[("SOCKET_TIMEOUT", url("5"))]),
                "SOCKET_TIMEOUT",
                ConfigKind::Timeout,
            ),
            (
                map(&[("SOCKET_TIMEOUT", SettingValue::Float(1e-12))]),
                "SOCKET_TIMEOUT",
                ConfigKind::Timeout,
            ),
            (
                map(&[("SOCKET_TIMOUT", SettingValue::Int(1))]),
                "OPTIONS",
                ConfigKind::Unknown,
            ),
            (
                pool(&[("max_connections", SettingValue::Int(0))]),
                "CONNECTION_POOL_KWARGS['max_connections']",
                ConfigKind::Value,
            ),
            (
                pool(&[("max_conections", SettingValue::Int(5))]),
                "CONNECTION_POOL_KWARGS",
                ConfigKind::Unknown,
            ),
            (
                pool(&[("timeout", SettingValue::Float(1e300))]),
                "CONNECTION_POOL_KWARGS['timeout']",
                ConfigKind::Timeout,
            ),
            (
                pool(&[("ssl_cert_reqs", url("sometimes"))]),
                "CONNECTION_POOL_KWARGS",
                ConfigKind::Value,
            ),
            (
                map(&[("PASSWORD", SettingValue::Int(1234))]),
                "PASSWORD",
                ConfigKind::Value,
            ),
            (
                map(&[("CLEAR_SCOPE", url("all"))]),
                "CLEAR_SCOPE",
                ConfigKind::Value,
            ),
            (
                map(&[("SINGLE_FLIGHT", SettingValue::Int(1))]),
                "SINGLE_FLIGHT",
                ConfigKind::Value,
            ),
            (
                map(&[(
                    "CIRCUIT_BREAKER",
                    map(&[("reset_timeout", SettingValue::Int(0))]),
                )]),
                "CIRCUIT_BREAKER['reset_timeout']",
                ConfigKind::Timeout,
            ),
            (
                map(&[(
                    "CLIENT_SIDE_CACHE",
                    map(&[(
                        "max_bytes",
                        SettingValue::Other("18446744073709551616".into()),
                    )]),
                )]),
                "CLIENT_SIDE_CACHE['max_bytes']",
                ConfigKind::Value,
            ),
            (
                map(&[("CLIENT_SIDE_CACHE", map(&[("size", SettingValue::Int(1))]))]),
                "CLIENT_SIDE_CACHE",
                ConfigKind::Unknown,
            ),
            (SettingValue::List(Vec::new()), "OPTIONS", ConfigKind::Value),
        ];
        for (options, option, kind) in cases {
            let refusal = refused(options.clone());
            assert_eq!((refusal.option, refusal.kind), (option, kind), "{options}");
        }
        assert_eq!(
            refused(map(&[("SOCKET_TIMOUT", SettingValue::Int(1))])).names,
            ["SOCKET_TIMOUT"]
        );
    }

    #[test]
    fn locations_are_a_string_a_comma_list_or_a_list() {
        let read_urls = |location: SettingValue| read(&location, &map(&[]), LayoutChoice::Sharded);
        let settings = read_urls(url("redis://a, redis://b")).unwrap();
        assert_eq!(settings.locations, ["redis://a", "redis://b"]);
        // The ring names are the entries as written, as django-redis names them.
        assert_eq!(settings.shard_names.unwrap(), ["redis://a", " redis://b"]);
        let listed =
            read_urls(SettingValue::List(vec![url("redis://a"), url("redis://b")])).unwrap();
        assert_eq!(listed.locations, ["redis://a", "redis://b"]);
        for bad in [
            SettingValue::Int(123),
            url(""),
            SettingValue::List(vec![SettingValue::Int(1)]),
        ] {
            let refusal = fault(read_urls(bad));
            assert_eq!(
                (refusal.option, refusal.kind),
                ("LOCATION", ConfigKind::Location)
            );
        }
    }

    #[test]
    fn options_become_connection_settings() {
        let options = map(&[
            ("SOCKET_TIMEOUT", SettingValue::Float(0.5)),
            ("SOCKET_CONNECT_TIMEOUT", SettingValue::Int(0)),
            ("USERNAME", url("")),
            ("PASSWORD", url("secret")),
            (
                "CONNECTION_POOL_KWARGS",
                map(&[
                    ("max_connections", SettingValue::Int(7)),
                    ("ssl_cert_reqs", SettingValue::None),
                    ("retry_on_timeout", SettingValue::Bool(true)),
                ]),
            ),
            ("SINGLE_FLIGHT_TIMEOUT", SettingValue::Int(3)),
            ("REPLICA_READ_ONLY", SettingValue::Bool(true)),
        ]);
        let settings = read(
            &url("redis://h?decode_responses=1"),
            &options,
            LayoutChoice::Replicated,
        )
        .unwrap();
        let connection = &settings.options;
        assert_eq!(connection.socket_timeout, Some(Duration::from_millis(500)));
        assert_eq!(connection.connect_timeout, None);
        assert_eq!(connection.max_connections, 7);
        assert!(!connection.tls.verify_peer);
        assert_eq!(
            (settings.username, settings.password.as_deref()),
            (None, Some("secret"))
        );
        assert_eq!(settings.behaviour.single_flight_timeout, Some(3.0));
        assert_eq!(settings.behaviour.clear_scope, "database");
        assert_eq!(
            settings.behaviour.ignored,
            [
                "REPLICA_READ_ONLY",
                "CONNECTION_POOL_KWARGS['retry_on_timeout']",
                "LOCATION's ?decode_responses"
            ]
        );
    }

    #[test]
    fn sentinel_reads_is_master_as_django_redis_does() {
        let options = map(&[(
            "SENTINELS",
            SettingValue::List(vec![SettingValue::List(vec![
                url("s1"),
                SettingValue::Int(26379),
            ])]),
        )]);
        let sentinel = |location: &str, read_from_replicas| {
            let layout = LayoutChoice::Sentinel { read_from_replicas };
            let settings = read(&url(location), &options, layout).unwrap();
            (
                settings.locations,
                settings.sentinels.unwrap().read_from_replicas,
            )
        };
        assert_eq!(
            sentinel("redis://svc/1?is_master=0&db=2", None),
            (vec!["redis://svc/1?db=2".into()], true)
        );
        assert_eq!(
            sentinel("redis://svc/1", None),
            (vec!["redis://svc/1".into()], false)
        );
        assert_eq!(
            sentinel("redis://svc?is_master=1", Some(true)),
            (vec!["redis://svc".into()], false)
        );
        assert!(sentinel("redis://svc", Some(true)).1);
        let bad_port = map(&[(
            "SENTINELS",
            SettingValue::List(vec![SettingValue::List(vec![
                url("s"),
                SettingValue::Int(70000),
            ])]),
        )]);
        let layout = LayoutChoice::Sentinel {
            read_from_replicas: None,
        };
        let refusal = fault(read(&url("redis://svc"), &bad_port, layout));
        assert_eq!(refusal.option, "SENTINELS");
    }
}
