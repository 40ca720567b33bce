//! A cache's settings as the native client uses them: LOCATION's servers with their connection
//! options, how they are laid out, and the client-side cache — checked and typed once, then
//! immutable. Pure Rust, unit-tested without Python; `Topology::new` builds the layout from it.

use crate::errors::{Error, Result};
use crate::settings::location::{parse_url, Address, ConnectionOptions, ServerConfig};
use std::time::Duration;

/// The breaker's settings; `failures == 0` turns it off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BreakerConfig {
    pub failures: u32,
    pub reset_timeout: Duration,
}

/// `OPTIONS["CLIENT_SIDE_CACHE"]`: the client-side cache's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalConfig {
    pub max_entries: usize,
    pub max_bytes: usize,
    /// The longest a value is kept (the key's own Redis TTL, when shorter, wins).
    pub ttl: Duration,
}

/// LOCATION and OPTIONS, typed (`options::read` checks them into this).
#[derive(Default)]
pub struct Settings {
    pub locations: Vec<String>,
    /// LOCATION's URLs as given (Sentinel's `?is_master` kept): what the raw clients connect to.
    pub given_locations: Vec<String>,
    /// Every server's options, before a URL's own parameters override them.
    pub options: ConnectionOptions,
    /// `USERNAME`/`PASSWORD`, for the URLs that carry none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// ShardClient: the shards' names on django-redis's hash ring.
    pub shard_names: Option<Vec<String>>,
    pub sentinels: Option<SentinelSettings>,
    pub cluster: bool,
    pub client_side_cache: Option<LocalConfig>,
    /// The key prefix the server tracks for the client-side cache (None: every key).
    pub tracking_prefix: Option<String>,
    pub behaviour: Behaviour,
}

/// What the Python layer does with the settings it does not read itself.
#[derive(Default)]
pub struct Behaviour {
    /// `CLEAR_SCOPE`: "database", "prefix" or "version".
    pub clear_scope: &'static str,
    /// Seconds a `get_or_set` waits for another caller computing the same key (None: no
    /// single-flight).
    pub single_flight_timeout: Option<f64>,
    /// The settings given that do nothing for the cache (system check W002).
    pub ignored: Vec<String>,
}

pub struct SentinelSettings {
    pub nodes: Vec<(String, u16)>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS to the sentinels (`SENTINEL_KWARGS`'s `ssl`), with these options.
    pub tls: Option<crate::settings::location::TlsOptions>,
    pub read_from_replicas: bool,
}

/// How the servers are used.
pub enum Layout {
    /// The first server takes writes; reads go to the others (django-redis's replicas).
    Replicated,
    Sharded {
        ring_names: Vec<String>,
    },
    /// The primary and replicas Sentinel names.
    Sentinel(Box<SentinelConfig>),
    /// The seeds of a Redis Cluster.
    Cluster,
}

pub struct SentinelConfig {
    /// The service, as LOCATION names it.
    pub service: String,
    pub sentinels: Vec<ServerConfig>,
    /// The sentinels' connection options (their own TLS, if any).
    pub sentinel_options: ConnectionOptions,
    pub read_from_replicas: bool,
}

pub struct ClientConfig {
    /// LOCATION's servers (credentials resolved), each with its options.
    pub servers: Vec<(ServerConfig, ConnectionOptions)>,
    pub layout: Layout,
    pub client_side_cache: Option<LocalConfig>,
    pub tracking_prefix: Option<String>,
    pub given_locations: Vec<String>,
    pub behaviour: Behaviour,
}

impl ClientConfig {
    pub fn new(settings: Settings) -> Result<Self> {
        let mut servers = Vec::with_capacity(settings.locations.len());
        for location in &settings.locations {
            let (mut server, options) = parse_url(location, &settings.options)?;
            server.username = server.username.or_else(|| settings.username.clone());
            server.password = server.password.or_else(|| settings.password.clone());
            servers.push((server, options));
        }
        if servers.is_empty() {
            return Err(Error::config("LOCATION", "LOCATION names no server"));
        }
        let layout = match (settings.shard_names, settings.sentinels) {
            _ if settings.cluster => {
                if servers.iter().any(|(server, _)| server.db != 0) {
                    return Err(Error::config(
                        "LOCATION",
                        "Redis Cluster has only database 0: drop the /db from LOCATION",
                    ));
                }
                Layout::Cluster
            }
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "CLIENT_CLASS",
                    "a cache is either sharded or sentinel-managed",
                ))
            }
            (Some(ring_names), None) => {
                if ring_names.len() != servers.len() {
                    return Err(Error::config(
                        "LOCATION",
                        "one ring name per shard is required",
                    ));
                }
                Layout::Sharded { ring_names }
            }
            (None, Some(sentinel)) => sentinel_layout(&servers, sentinel)?,
            (None, None) => Layout::Replicated,
        };
        let single = matches!(layout, Layout::Replicated) && servers.len() == 1;
        if settings.client_side_cache.is_some() && !single {
            return Err(Error::config(
                "CLIENT_SIDE_CACHE",
                "CLIENT_SIDE_CACHE is offered for a single server (one URL in LOCATION): \
                 not with replicas, shards, Sentinel or Cluster",
            ));
        }
        Ok(Self {
            servers,
            layout,
            client_side_cache: settings.client_side_cache,
            tracking_prefix: settings.tracking_prefix,
            given_locations: settings.given_locations,
            behaviour: settings.behaviour,
        })
    }
}

/// LOCATION names the service (`redis://SERVICE/db`): its host is the name.
fn sentinel_layout(
    servers: &[(ServerConfig, ConnectionOptions)],
    sentinel: SentinelSettings,
) -> Result<Layout> {
    let (template, options) = &servers[0];
    let service = match &template.address {
        Address::Tcp { host, .. } | Address::Tls { host, .. } => host.clone(),
        Address::Unix { .. } => {
            return Err(Error::config(
                "LOCATION",
                "a sentinel service is named by redis://SERVICE/db",
            ))
        }
    };
    if sentinel.nodes.is_empty() {
        return Err(Error::config(
            "SENTINELS",
            "SENTINELS must list at least one (host, port)",
        ));
    }
    let tls = sentinel.tls.is_some();
    let mut sentinel_options = options.clone();
    if let Some(own) = sentinel.tls {
        sentinel_options.tls = own;
    }
    let sentinels = sentinel
        .nodes
        .into_iter()
        .map(|(host, port)| ServerConfig {
            address: if tls {
                Address::Tls { host, port }
            } else {
                Address::Tcp { host, port }
            },
            db: 0,
            username: sentinel.username.clone(),
            password: sentinel.password.clone(),
        })
        .collect();
    Ok(Layout::Sentinel(Box::new(SentinelConfig {
        service,
        sentinels,
        sentinel_options,
        read_from_replicas: sentinel.read_from_replicas,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(locations: &[&str]) -> Settings {
        Settings {
            locations: locations.iter().map(|l| l.to_string()).collect(),
            ..Settings::default()
        }
    }

    fn refused(settings: Settings) -> (Option<&'static str>, String) {
        match ClientConfig::new(settings) {
            Ok(_) => panic!("accepted"),
            Err(e) => (e.setting.map(|s| s.option), e.message),
        }
    }

    fn sentinel(nodes: Vec<(String, u16)>) -> SentinelSettings {
        SentinelSettings {
            nodes,
            username: None,
            password: None,
            tls: None,
            read_from_replicas: true,
        }
    }

    #[test]
    fn credentials_in_the_url_win_over_the_options() {
        let mut s = settings(&["redis://u:p@h:1/2", "redis://h:3"]);
        (s.username, s.password) = (Some("opt-user".into()), Some("opt-pass".into()));
        let config = ClientConfig::new(s).unwrap();
        let creds = |i: usize| {
            let server = &config.servers[i].0;
            (server.username.clone(), server.password.clone())
        };
        assert_eq!(creds(0), (Some("u".into()), Some("p".into())));
        assert_eq!(creds(1), (Some("opt-user".into()), Some("opt-pass".into())));
        assert!(matches!(config.layout, Layout::Replicated));
    }

    #[test]
    fn each_refusal_names_its_setting() {
        let mut cluster = settings(&["redis://h:1/3"]);
        cluster.cluster = true;
        assert_eq!(refused(cluster).0, Some("LOCATION"));
        let mut both = settings(&["redis://h:1"]);
        both.shard_names = Some(vec!["a".into()]);
        both.sentinels = Some(sentinel(vec![("s".into(), 26379)]));
        assert_eq!(refused(both).0, Some("CLIENT_CLASS"));
        let mut unix = settings(&["unix:///tmp/redis.sock"]);
        unix.sentinels = Some(sentinel(vec![("s".into(), 26379)]));
        assert_eq!(refused(unix).0, Some("LOCATION"));
        let mut none = settings(&["redis://mymaster/0"]);
        none.sentinels = Some(sentinel(Vec::new()));
        assert_eq!(refused(none).0, Some("SENTINELS"));
        let mut local = settings(&["redis://h:1", "redis://h:2"]);
        local.client_side_cache = Some(LocalConfig {
            max_entries: 10,
            max_bytes: 1000,
            ttl: Duration::from_secs(1),
        });
        assert_eq!(refused(local).0, Some("CLIENT_SIDE_CACHE"));
        assert_eq!(refused(settings(&[])).0, Some("LOCATION"));
        assert_eq!(refused(settings(&["http://h"])).0, Some("LOCATION"));
    }

    #[test]
    fn sentinel_layout_names_the_service_and_its_sentinels() {
        let mut s = settings(&["rediss://mymaster/1"]);
        s.sentinels = Some(SentinelSettings {
            username: Some("sentinel-user".into()),
            ..sentinel(vec![("s1".into(), 26379), ("s2".into(), 26380)])
        });
        let config = ClientConfig::new(s).unwrap();
        let Layout::Sentinel(sentinel) = &config.layout else {
            panic!("not a sentinel layout")
        };
        let (service, sentinels) = (&sentinel.service, &sentinel.sentinels);
        assert_eq!(service, "mymaster");
        assert_eq!(sentinels.len(), 2);
        // Plain TCP to the sentinels unless SENTINEL_KWARGS asks for TLS.
        assert!(
            matches!(sentinels[1].address, Address::Tcp { ref host, port: 26380 } if host == "s2")
        );
        assert_eq!(sentinels[0].username.as_deref(), Some("sentinel-user"));
    }
}
