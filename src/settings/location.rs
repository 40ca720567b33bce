//! `LOCATION` URLs and connection options, parsed into immutable, typed configuration.
//!
//! Pure Rust: no Python types here, so `cargo test` covers every parsing rule.

use crate::errors::{Error, Result};
use crate::settings::resolved::BreakerConfig;
use percent_encoding::percent_decode_str;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    Tcp { host: String, port: u16 },
    Tls { host: String, port: u16 },
    Unix { path: PathBuf },
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } | Address::Tls { host, port } if host.contains(':') => {
                write!(f, "[{host}]:{port}")
            }
            Address::Tcp { host, port } | Address::Tls { host, port } => write!(f, "{host}:{port}"),
            Address::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

/// One server: address, database and credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerConfig {
    pub address: Address,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ServerConfig {
    /// The same db, credentials and TLS choice at another address: a node that Sentinel or
    /// the cluster named.
    pub fn at(&self, host: &str, port: u16) -> ServerConfig {
        let host = host.to_owned();
        let address = match self.address {
            Address::Tls { .. } => Address::Tls { host, port },
            _ => Address::Tcp { host, port },
        };
        ServerConfig {
            address,
            ..self.clone()
        }
    }
}

/// Shows the server without its password, so it is safe in messages and reprs.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} db={}", self.address, self.db)
    }
}

/// Everything that decides how a connection behaves; with the server it keys the pool registry,
/// so two caches with different timeouts never share sockets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionOptions {
    pub socket_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_connections: usize,
    /// How long a caller waits for a free connection when `max_connections` are all in use.
    pub pool_timeout: Duration,
    /// redis-py's `health_check_interval`: a connection idle longer than this is checked with a
    /// PING before use. None: never.
    pub health_check_interval: Option<Duration>,
    /// Fail fast after consecutive connection failures (off unless `CIRCUIT_BREAKER` is set).
    pub breaker: BreakerConfig,
    /// Used by `rediss://` servers only.
    pub tls: TlsOptions,
}

/// Certificates and verification for `rediss://` (redis-py's `ssl_*` names in settings).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// PEM file of the CA(s) to trust instead of the system's roots.
    pub ca_certs: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require mutual TLS.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// Verify the server's certificate chain (`ssl_cert_reqs` other than "none").
    pub verify_peer: bool,
    /// Verify that the certificate names the host (`ssl_check_hostname`).
    pub verify_hostname: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            ca_certs: None,
            certfile: None,
            keyfile: None,
            verify_peer: true,
            verify_hostname: true,
        }
    }
}

impl TlsOptions {
    /// redis-py's `ssl_cert_reqs`: "none" turns verification off; "optional" and "required" keep it.
    pub fn set_cert_reqs(&mut self, value: &str) -> std::result::Result<(), String> {
        self.verify_peer = match value.to_ascii_lowercase().as_str() {
            "none" | "cert_none" => false,
            "optional" | "required" | "cert_optional" | "cert_required" => true,
            other => {
                return Err(format!(
                    "ssl_cert_reqs={other:?} is not none, optional or required"
                ))
            }
        };
        Ok(())
    }
}

impl ConnectionOptions {
    /// How long opening a connection (TCP, TLS, AUTH, SELECT) may take. Without
    /// `SOCKET_CONNECT_TIMEOUT`, `SOCKET_TIMEOUT` bounds it, as in redis-py: a stalled server must
    /// not hang the handshake.
    pub fn effective_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
            .or(self.socket_timeout)
            .filter(|t| !t.is_zero())
    }
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            socket_timeout: None,
            connect_timeout: None,
            max_connections: usize::MAX,
            pool_timeout: Duration::from_secs(5),
            health_check_interval: None,
            breaker: BreakerConfig::default(),
            tls: TlsOptions::default(),
        }
    }
}

/// redis-py query parameters that are accepted for compatibility but have no effect here.
const IGNORED_QUERY_PARAMS: &[&str] = &[
    "retry_on_timeout",
    "socket_keepalive",
    "client_name",
    "decode_responses",
    "encoding",
    "protocol",
    "single_connection_client",
];

/// The parameters of `url` that are accepted without effect (for the system check).
pub fn ignored_query_params(url: &str) -> Vec<String> {
    url::Url::parse(url)
        .map(|parsed| {
            parsed
                .query_pairs()
                .map(|(name, _)| name.into_owned())
                .filter(|name| IGNORED_QUERY_PARAMS.contains(&name.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// A URL with its password replaced, for error messages.
pub fn redact(url: &str) -> String {
    let without_userinfo = match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &url[..start + 3], &url[at..])
            }
            _ => url.to_owned(),
        },
    };
    redact_query(&without_userinfo)
}

/// Query parameters whose names say they carry a secret (`password`, `ssl_password`, a
/// `token`, ...): their values are replaced wherever they stand.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let secret = |name: &str| {
        let name = decode(name).to_ascii_lowercase();
        ["pass", "secret", "token", "auth", "credential"]
            .iter()
            .any(|word| name.contains(word))
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if secret(name) => format!("{name}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn invalid(url: &str, why: impl fmt::Display) -> Error {
    Error::config(
        "LOCATION",
        format!("LOCATION {:?} is invalid: {why}", redact(url)),
    )
}

fn decode(part: &str) -> String {
    percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// The longest timeout accepted, in seconds (about 31 years): longer ones would overflow the
/// clock arithmetic of deadlines.
pub const MAX_SECONDS: f64 = 1e9;

/// A number of seconds as a `Duration`: finite, from 0 to `MAX_SECONDS`, and, when positive, at
/// least a nanosecond (a smaller one would round to zero, which means "no timeout"). The Python
/// layer checks options by the same rule (`options.seconds`).
pub fn duration_from_secs(seconds: f64) -> Option<Duration> {
    if !(0.0..=MAX_SECONDS).contains(&seconds) {
        return None;
    }
    let duration = Duration::try_from_secs_f64(seconds).ok()?;
    (seconds == 0.0 || !duration.is_zero()).then_some(duration)
}

fn parse_seconds(url: &str, name: &str, value: &str) -> Result<Duration> {
    value
        .parse::<f64>()
        .ok()
        .and_then(duration_from_secs)
        .ok_or_else(|| {
            invalid(
                url,
                format!(
                    "{name}={value:?} is not a number of seconds from 0 to {MAX_SECONDS:e} \
                     (and, when positive, at least 1e-9)"
                ),
            )
        })
}

fn parse_bool(url: &str, name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(url, format!("{name}={value:?} is not a boolean"))),
    }
}

/// Parse one server URL: `redis://`, `rediss://`, `valkey://`, `valkeys://` or `unix://`.
/// Query parameters override `base` (the cache's `OPTIONS`) for this server.
pub fn parse_url(url: &str, base: &ConnectionOptions) -> Result<(ServerConfig, ConnectionOptions)> {
    let parsed = url::Url::parse(url).map_err(|e| invalid(url, e))?;
    let tls = match parsed.scheme() {
        "redis" | "valkey" | "unix" => false,
        "rediss" | "valkeys" => true,
        other => {
            return Err(invalid(
                url,
                format!("unknown scheme {other:?} (use redis://, rediss://, valkey://, valkeys:// or unix://)"),
            ))
        }
    };
    let username = Some(decode(parsed.username())).filter(|u| !u.is_empty());
    let mut password = parsed.password().map(decode);
    let mut db: Option<i64> = None;
    let mut options = base.clone();

    let address = if parsed.scheme() == "unix" {
        if parsed.path().is_empty() || parsed.path() == "/" {
            return Err(invalid(url, "a unix:// URL needs a socket path"));
        }
        Address::Unix {
            path: PathBuf::from(decode(parsed.path())),
        }
    } else {
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(invalid(url, "no host")),
        };
        if host.is_empty() {
            return Err(invalid(url, "no host"));
        }
        let port = parsed.port().unwrap_or(6379);
        let path = parsed.path().trim_matches('/');
        if !path.is_empty() {
            db = Some(
                path.parse()
                    .map_err(|_| invalid(url, format!("database {path:?} is not a number")))?,
            );
        }
        if tls {
            Address::Tls { host, port }
        } else {
            Address::Tcp { host, port }
        }
    };

    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "db" => {
                db = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(url, format!("db={value:?} is not a number")))?,
                )
            }
            "password" => password = Some(value.into_owned()),
            "socket_timeout" => {
                options.socket_timeout = Some(parse_seconds(url, "socket_timeout", &value)?)
            }
            "socket_connect_timeout" => {
                options.connect_timeout =
                    Some(parse_seconds(url, "socket_connect_timeout", &value)?)
            }
            "health_check_interval" => {
                let every = parse_seconds(url, "health_check_interval", &value)?;
                options.health_check_interval = Some(every).filter(|t| !t.is_zero());
            }
            "max_connections" => {
                options.max_connections =
                    value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        invalid(
                            url,
                            format!("max_connections={value:?} is not a positive integer"),
                        )
                    })?
            }
            "ssl_cert_reqs" => options
                .tls
                .set_cert_reqs(&value)
                .map_err(|why| invalid(url, why))?,
            "ssl_check_hostname" => {
                options.tls.verify_hostname = parse_bool(url, "ssl_check_hostname", &value)?
            }
            "ssl_ca_certs" => options.tls.ca_certs = Some(PathBuf::from(value.as_ref())),
            "ssl_certfile" => options.tls.certfile = Some(PathBuf::from(value.as_ref())),
            "ssl_keyfile" => options.tls.keyfile = Some(PathBuf::from(value.as_ref())),
            known if IGNORED_QUERY_PARAMS.contains(&known) => {}
            other => return Err(invalid(url, format!("unknown query parameter {other:?}"))),
        }
    }
    let db = db.unwrap_or(0);
    if db < 0 {
        return Err(invalid(url, format!("database {db} is negative")));
    }
    Ok((
        ServerConfig {
            address,
            db,
            username,
            password,
        },
        options,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(ServerConfig, ConnectionOptions)> {
        parse_url(url, &ConnectionOptions::default())
    }

    fn server(url: &str) -> ServerConfig {
        parse(url).unwrap().0
    }

    #[test]
    fn tcp_defaults() {
        let s = server("redis://localhost");
        assert_eq!(
            s.address,
            Address::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        assert_eq!(s.db, 0);
        assert_eq!(s.username, None);
        assert_eq!(s.password, None);
    }

    #[test]
    fn seconds_out_of_range_are_refused() {
        assert_eq!(duration_from_secs(0.0), Some(Duration::ZERO));
        assert_eq!(duration_from_secs(1.5), Some(Duration::from_millis(1500)));
        for bad in [-1.0, 1e30, 1e300, f64::NAN, f64::INFINITY, 1e-12] {
            assert_eq!(duration_from_secs(bad), None, "{bad}");
        }
        for bad in ["1e30", "1e-12", "-1", "nan", "inf"] {
            let url = format!("redis://h?socket_timeout={bad}");
            assert!(parse(&url).is_err(), "{url}");
        }
    }

    #[test]
    fn db_from_path_or_query() {
        assert_eq!(server("redis://127.0.0.1:6380/3").db, 3);
        assert_eq!(server("redis://127.0.0.1:6380?db=4").db, 4);
        assert_eq!(server("unix:///tmp/r.sock?db=2").db, 2);
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let s = server("redis://us%40er:p%3Ass@host:1/0");
        assert_eq!(s.username.as_deref(), Some("us@er"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        let s = server("redis://:secret@host");
        assert_eq!(s.username, None);
        assert_eq!(s.password.as_deref(), Some("secret"));
    }

    #[test]
    fn schemes_and_aliases() {
        assert!(matches!(server("rediss://h").address, Address::Tls { .. }));
        assert!(matches!(server("valkeys://h").address, Address::Tls { .. }));
        assert!(matches!(server("valkey://h").address, Address::Tcp { .. }));
        assert_eq!(
            server("unix:///run/redis.sock").address,
            Address::Unix {
                path: "/run/redis.sock".into()
            }
        );
        assert_eq!(
            server("redis://[::1]:7000").address,
            Address::Tcp {
                host: "::1".into(),
                port: 7000
            }
        );
    }

    #[test]
    fn query_options_override_the_base() {
        let base = ConnectionOptions {
            socket_timeout: Some(Duration::from_secs(9)),
            max_connections: 3,
            ..ConnectionOptions::default()
        };
        let url = "redis://h?socket_connect_timeout=2&max_connections=9";
        let (_, o) = parse_url(url, &base).unwrap();
        assert_eq!(o.socket_timeout, Some(Duration::from_secs(9)));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.max_connections, 9);
        let (_, o) = parse_url("redis://h?socket_timeout=0.5", &base).unwrap();
        assert_eq!(o.socket_timeout, Some(Duration::from_millis(500)));
        assert_eq!(o.max_connections, 3);
        let (_, o) = parse("redis://h?health_check_interval=30").unwrap();
        assert_eq!(o.health_check_interval, Some(Duration::from_secs(30)));
        assert!(parse("redis://h?health_check_interval=soon").is_err());
    }

    #[test]
    fn tls_query_options() {
        let (_, o) = parse("rediss://h").unwrap();
        assert!(o.tls.verify_peer && o.tls.verify_hostname);
        let (_, o) = parse("rediss://h?ssl_cert_reqs=none").unwrap();
        assert!(!o.tls.verify_peer);
        let (_, o) = parse("rediss://h?ssl_check_hostname=false&ssl_ca_certs=/ca.pem").unwrap();
        assert!(o.tls.verify_peer && !o.tls.verify_hostname);
        assert_eq!(o.tls.ca_certs, Some(PathBuf::from("/ca.pem")));
        assert!(parse("rediss://h?ssl_cert_reqs=maybe").is_err());
    }

    #[test]
    fn errors_name_the_problem_and_hide_the_password() {
        for (url, needle) in [
            ("http://h", "unknown scheme"),
            ("redis://:pw@h/abc", "not a number"),
            ("redis://:pw@h?db=x", "not a number"),
            ("redis://:pw@h?bogus=1", "unknown query parameter"),
            ("redis://:pw@h?socket_timeout=-1", "socket_timeout"),
            ("redis://:pw@h?max_connections=0", "max_connections"),
            ("unix://", "socket path"),
            ("localhost:6379", "invalid"),
            ("redis://:pw@h:99999", "invalid"),
        ] {
            let err = parse(url).unwrap_err();
            assert!(err.message.contains(needle), "{url}: {}", err.message);
            assert!(!err.message.contains("pw"), "{url}: {}", err.message);
        }
    }

    #[test]
    fn display_never_shows_password() {
        let s = server("redis://user:hunter2@h:1/2");
        assert_eq!(format!("{s}"), "h:1 db=2");
        assert_eq!(format!("{s:?}"), "h:1 db=2");
        assert_eq!(
            redact("redis://user:hunter2@h:1/2"),
            "redis://user:***@h:1/2"
        );
        for (url, shown) in [
            (
                "redis://h:6379/0?password=S3CRET&db=abc",
                "redis://h:6379/0?password=***&db=abc",
            ),
            (
                "unix:///s.sock?db=z&ssl_password=S3CRET",
                "unix:///s.sock?db=z&ssl_password=***",
            ),
            (
                "redis://u:S3CRET@h:99999/0?Password=S3CRET",
                "redis://***@h:99999/0?Password=***",
            ),
        ] {
            assert_eq!(redact(url), shown);
        }
        let err = parse("redis://h:6379/0?password=S3CRET&db=abc").unwrap_err();
        assert!(!err.message.contains("S3CRET"), "{}", err.message);
    }
}
