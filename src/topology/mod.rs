//! Which server a command goes to. Every layout answers the same questions: where does this key
//! live (and may a replica serve a read of it), which nodes hold keys (for SCAN, KEYS, FLUSHDB),
//! and how do several keys group by node.
//!
//! - replicated: a `LOCATION` list as in django-redis — the first server takes writes, reads go
//!   to a random replica (or the primary when there is none);
//! - sharded: django-redis's ShardClient placement (`topology/ring.rs`), each shard a single server;
//! - sentinel: primary and replicas as Redis Sentinel names them now, found again after a
//!   failure or a failover;
//! - cluster: Redis Cluster's slot map, fetched again on `MOVED`; keys group by slot.
//!
//! `Topology::retry` is the one retry policy: what a failed request teaches the layout, and
//! whether it is sent again.

pub mod cluster;
pub mod ring;
pub mod sentinel;

use crate::errors::{Error, ErrorKind, NodeAddress, Refusal, Result};
use crate::process::fork::ForkLocal;
use crate::settings::location::{ConnectionOptions, ServerConfig};
use crate::settings::resolved::{ClientConfig, Layout as ConfigLayout};
use crate::topology::ring::HashRing;
use crate::topology::sentinel::Sentinels;
use crate::transport::connector::{shared_pool, RedisPool};
use arc_swap::ArcSwapOption;
use cluster::SlotMap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type SharedPool = Arc<RedisPool>;

/// The primary (index 0) and replicas.
struct Nodes {
    pools: Vec<SharedPool>,
    /// When sentinel named them (None: fixed by LOCATION).
    found: Option<Instant>,
}

/// How long sentinel's answer is trusted before asking again (replicas come and go).
const REDISCOVER_AFTER: Duration = Duration::from_secs(30);

impl Nodes {
    fn pick(&self, write: bool) -> &SharedPool {
        match self.pools.len() {
            1 => &self.pools[0],
            _ if write => &self.pools[0],
            n => &self.pools[rand::random_range(1..n)],
        }
    }
}

struct SentinelLayout {
    sentinels: Sentinels,
    /// db, credentials and TLS choice for the data nodes.
    template: ServerConfig,
    options: ConnectionOptions,
    read_from_replicas: bool,
    current: ArcSwapOption<Nodes>,
    /// One discovery at a time; fork-local, as a parent thread may be mid-discovery at a fork.
    discovering: ForkLocal<Mutex<()>>,
}

impl SentinelLayout {
    /// The nodes found last, unless it is time to ask the sentinels again.
    fn fresh(&self) -> Option<Arc<Nodes>> {
        self.current.load_full().filter(|nodes| {
            nodes
                .found
                .is_some_and(|at| at.elapsed() < REDISCOVER_AFTER)
        })
    }

    fn nodes(&self) -> Result<Arc<Nodes>> {
        if let Some(nodes) = self.fresh() {
            return Ok(nodes);
        }
        let discovering = self.discovering.current();
        let _one_at_a_time = discovering.lock();
        if let Some(nodes) = self.fresh() {
            return Ok(nodes);
        }
        let found = self.sentinels.discover()?;
        let mut pools = vec![shared_pool(
            &self.template.at(&found.primary.0, found.primary.1),
            &self.options,
        )?];
        if self.read_from_replicas {
            for replica in &found.replicas {
                pools.push(shared_pool(
                    &self.template.at(&replica.0, replica.1),
                    &self.options,
                )?);
            }
        }
        let nodes = Arc::new(Nodes {
            pools,
            found: Some(Instant::now()),
        });
        self.current.store(Some(Arc::clone(&nodes)));
        Ok(nodes)
    }
}

struct ClusterLayout {
    seeds: Vec<ServerConfig>,
    options: ConnectionOptions,
    /// The slot map last fetched; kept when stale, as the list of nodes to ask for a new one.
    map: ArcSwapOption<SlotMap>,
    stale: AtomicBool,
    /// One discovery at a time; fork-local, as a parent thread may be mid-discovery at a fork.
    discovering: ForkLocal<Mutex<()>>,
}

impl ClusterLayout {
    /// The slot map, unless it must be fetched (first use, or found stale).
    fn current(&self) -> Option<Arc<SlotMap>> {
        self.map
            .load_full()
            .filter(|_| !self.stale.load(Ordering::Acquire))
    }

    fn map(&self) -> Result<Arc<SlotMap>> {
        if let Some(map) = self.current() {
            return Ok(map);
        }
        let discovering = self.discovering.current();
        let _one_at_a_time = discovering.lock();
        if let Some(map) = self.current() {
            return Ok(map);
        }
        // Known nodes first (a seed may be the node that died), then the seeds.
        let mut candidates: Vec<ServerConfig> = Vec::new();
        if let Some(old) = self.map.load_full() {
            candidates.extend(
                old.nodes
                    .iter()
                    .map(|pool| pool.connector().server().clone()),
            );
        }
        candidates.extend(self.seeds.iter().cloned());
        let map = Arc::new(cluster::discover(&candidates, &self.options)?);
        self.map.store(Some(Arc::clone(&map)));
        self.stale.store(false, Ordering::Release);
        Ok(map)
    }

    /// The pool of a node named by a redirect (credentials and TLS as the seeds').
    fn node(&self, node: &NodeAddress) -> Result<SharedPool> {
        let template = self
            .seeds
            .first()
            .ok_or_else(|| Error::config("LOCATION", "no cluster seed"))?;
        shared_pool(&template.at(&node.host, node.port), &self.options)
    }

    fn pool_for(&self, key: &[u8]) -> Result<SharedPool> {
        let map = self.map()?;
        Ok(Arc::clone(
            &map.nodes[usize::from(map.owners[usize::from(cluster::slot(key))])],
        ))
    }
}

enum Layout {
    Replicated(Nodes),
    Sharded(HashRing, Vec<SharedPool>),
    Sentinel(Box<SentinelLayout>),
    Cluster(Box<ClusterLayout>),
}

pub struct Topology {
    layout: Layout,
}

/// The servers' pools (`ClientConfig` guarantees at least one server, and a ring name each
/// when sharded).
fn pools(servers: &[(ServerConfig, ConnectionOptions)]) -> Result<Vec<SharedPool>> {
    servers
        .iter()
        .map(|(server, options)| shared_pool(server, options))
        .collect()
}

impl Topology {
    /// The layout a cache's configuration asks for.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let servers = &config.servers;
        Ok(match &config.layout {
            ConfigLayout::Replicated => Self::replicated(servers)?,
            ConfigLayout::Sharded { ring_names } => Self::sharded(servers, ring_names)?,
            ConfigLayout::Cluster => Self::cluster(
                servers.iter().map(|(server, _)| server.clone()).collect(),
                servers[0].1.clone(),
            ),
            ConfigLayout::Sentinel(sentinel) => {
                let finder = Sentinels {
                    service: sentinel.service.clone(),
                    nodes: sentinel.sentinels.clone(),
                    options: sentinel.sentinel_options.clone(),
                };
                let (template, options) = servers[0].clone();
                Self::sentinel(finder, template, options, sentinel.read_from_replicas)
            }
        })
    }

    fn replicated(servers: &[(ServerConfig, ConnectionOptions)]) -> Result<Self> {
        Ok(Self {
            layout: Layout::Replicated(Nodes {
                pools: pools(servers)?,
                found: None,
            }),
        })
    }

    /// `ring_names` name the shards as django-redis does (the LOCATION entries as written).
    fn sharded<S: AsRef<str>>(
        servers: &[(ServerConfig, ConnectionOptions)],
        ring_names: &[S],
    ) -> Result<Self> {
        Ok(Self {
            layout: Layout::Sharded(HashRing::new(ring_names), pools(servers)?),
        })
    }

    /// Nodes are found on first use (so a sentinel outage at start-up is not a configuration
    /// error) and again after a failure.
    fn sentinel(
        sentinels: Sentinels,
        template: ServerConfig,
        options: ConnectionOptions,
        read_from_replicas: bool,
    ) -> Self {
        Self {
            layout: Layout::Sentinel(Box::new(SentinelLayout {
                sentinels,
                template,
                options,
                read_from_replicas,
                current: ArcSwapOption::empty(),
                discovering: ForkLocal::new(Mutex::default),
            })),
        }
    }

    /// The slot map is fetched on first use from the first seed that answers.
    fn cluster(seeds: Vec<ServerConfig>, options: ConnectionOptions) -> Self {
        Self {
            layout: Layout::Cluster(Box::new(ClusterLayout {
                seeds,
                options,
                map: ArcSwapOption::empty(),
                stale: AtomicBool::new(false),
                discovering: ForkLocal::new(Mutex::default),
            })),
        }
    }

    /// Whether routing can answer from memory now; when not, it will ask a server (sentinel
    /// discovery, a cluster slot map) and so may block.
    pub fn settled(&self) -> bool {
        match &self.layout {
            Layout::Replicated(_) | Layout::Sharded(..) => true,
            Layout::Sentinel(s) => s.fresh().is_some(),
            Layout::Cluster(c) => c.current().is_some(),
        }
    }

    /// The pool holding `key` (or a replica that may serve a read of it).
    pub fn route(&self, key: &[u8], write: bool) -> Result<SharedPool> {
        Ok(match &self.layout {
            Layout::Replicated(nodes) => Arc::clone(nodes.pick(write)),
            Layout::Sharded(ring, pools) => Arc::clone(&pools[ring.node_for(key)]),
            Layout::Sentinel(s) => Arc::clone(s.nodes()?.pick(write)),
            Layout::Cluster(c) => c.pool_for(key)?,
        })
    }

    /// The shard (index into the servers) that holds `key`; None when not sharded.
    pub fn shard_of(&self, key: &[u8]) -> Option<usize> {
        match &self.layout {
            Layout::Sharded(ring, _) => Some(ring.node_for(key)),
            _ => None,
        }
    }

    /// The one node that holds all of `keys` (any node when there are none); an error when
    /// they live on different shards.
    pub fn route_all(&self, keys: &[&[u8]], write: bool) -> Result<SharedPool> {
        if let Layout::Sharded(ring, pools) = &self.layout {
            let node = keys.first().map_or(0, |key| ring.node_for(key));
            if keys.iter().any(|key| ring.node_for(key) != node) {
                return Err(Error::new(
                    ErrorKind::Response,
                    "CROSSSHARD these keys live on different shards; give them a common {hash tag}",
                ));
            }
            return Ok(Arc::clone(&pools[node]));
        }
        if let Layout::Cluster(c) = &self.layout {
            let slot = keys.first().map(|key| cluster::slot(key));
            if keys.iter().any(|key| Some(cluster::slot(key)) != slot) {
                return Err(Error::new(
                    ErrorKind::Response,
                    "CROSSSLOT Keys in request don't hash to the same slot",
                ));
            }
            return c.pool_for(keys.first().copied().unwrap_or_default());
        }
        self.route(b"", write)
    }

    /// The indexes `which` of `keys` grouped by the node that holds them (first-seen order),
    /// each node's keys in batches that one multi-key command may carry: all of them, or, in a
    /// cluster, one batch per slot.
    pub fn group<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        which: &[usize],
        write: bool,
    ) -> Result<Vec<(SharedPool, Vec<Vec<usize>>)>> {
        // Per node: (batch id, key indexes) — the batch id is the slot in a cluster, else 0.
        type Batches = Vec<(u16, Vec<usize>)>;
        let mut nodes: Vec<(SharedPool, Batches)> = Vec::new();
        let map = match &self.layout {
            Layout::Cluster(c) => Some(c.map()?),
            _ => None,
        };
        let single = match &self.layout {
            Layout::Replicated(_) | Layout::Sentinel(_) => Some(self.route(b"", write)?),
            _ => None,
        };
        for &i in which {
            let key = keys[i].as_ref();
            let (pool, batch) = match (&self.layout, &map, &single) {
                (_, _, Some(pool)) => (pool, 0),
                (Layout::Sharded(ring, pools), _, _) => (&pools[ring.node_for(key)], 0),
                (_, Some(map), _) => {
                    let slot = cluster::slot(key);
                    (&map.nodes[usize::from(map.owners[usize::from(slot)])], slot)
                }
                _ => unreachable!("every layout is covered above"),
            };
            let node = match nodes.iter().position(|(p, _)| Arc::ptr_eq(p, pool)) {
                Some(node) => node,
                None => {
                    nodes.push((Arc::clone(pool), Vec::new()));
                    nodes.len() - 1
                }
            };
            let batches = &mut nodes[node].1;
            match batches.iter_mut().find(|(b, _)| *b == batch) {
                Some((_, members)) => members.push(i),
                None => batches.push((batch, vec![i])),
            }
        }
        Ok(nodes
            .into_iter()
            .map(|(pool, batches)| {
                (
                    pool,
                    batches.into_iter().map(|(_, members)| members).collect(),
                )
            })
            .collect())
    }

    /// The nodes that own keys: the primary, or every shard.
    pub fn primaries(&self) -> Result<Vec<SharedPool>> {
        Ok(match &self.layout {
            Layout::Replicated(nodes) => vec![Arc::clone(&nodes.pools[0])],
            Layout::Sharded(_, pools) => pools.clone(),
            Layout::Sentinel(s) => vec![Arc::clone(&s.nodes()?.pools[0])],
            Layout::Cluster(c) => c.map()?.nodes.clone(),
        })
    }

    /// Every node known now (for closing connections and for statistics).
    pub fn known(&self) -> Vec<SharedPool> {
        match &self.layout {
            Layout::Replicated(nodes) => nodes.pools.clone(),
            Layout::Sharded(_, pools) => pools.clone(),
            Layout::Sentinel(s) => s
                .current
                .load_full()
                .map(|n| n.pools.clone())
                .unwrap_or_default(),
            Layout::Cluster(c) => c
                .map
                .load_full()
                .map(|m| m.nodes.clone())
                .unwrap_or_default(),
        }
    }

    /// How long a call may spend retrying (see `retry`): `SOCKET_TIMEOUT`, or
    /// `DEFAULT_RETRY_BUDGET` without one.
    pub fn retry_budget(&self) -> Duration {
        let options = match &self.layout {
            Layout::Sentinel(s) => &s.options,
            Layout::Cluster(c) => &c.options,
            Layout::Replicated(_) | Layout::Sharded(..) => return Duration::ZERO,
        };
        options
            .socket_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_RETRY_BUDGET)
    }

    /// The retry policy, for every driver: learn from a failed request and say whether and how
    /// to send it again. `attempt` counts the retries already made; the driver stops at the
    /// call's `retry_budget`. As redis-py's and valkey-glide's cluster clients do:
    /// - cluster: `MOVED` means the slot map is stale: it is fetched again and the request
    ///   routed again (at once the first time); `ASK` sends it to the importing node;
    ///   `TRYAGAIN` (a multi-key request on a slot mid-migration) and `LOADING` (a node loading
    ///   its dataset after a restart) are retried after a backoff;
    ///   `CLUSTERDOWN` (a failover under way) fetches the map and retries after a backoff. A
    ///   broken connection drops the map but is not retried: the request may have run, and a
    ///   dead primary is replaced in seconds, longer than a cache call should wait.
    /// - sentinel: a broken connection or `READONLY` (the primary was demoted) means the nodes
    ///   must be found again; `READONLY` requests were refused before running: retried once.
    /// - replicated and sharded layouts never retry (the pool resends on a dead idle connection).
    pub fn retry(&self, err: &Error, attempt: u32) -> Result<Retry> {
        match &self.layout {
            Layout::Sentinel(s) => {
                let readonly = err.refusal == Some(Refusal::ReadOnly);
                if readonly || err.breaks_connection() {
                    s.current.store(None);
                }
                Ok(if readonly && attempt == 0 {
                    Retry::After(Duration::ZERO)
                } else {
                    Retry::No
                })
            }
            Layout::Cluster(c) => Ok(match &err.refusal {
                Some(Refusal::Moved(_)) => {
                    c.stale.store(true, Ordering::Release);
                    Retry::After(backoff(attempt))
                }
                Some(Refusal::Ask(node)) => Retry::Ask(c.node(node)?),
                // A node loading its data answers in moments; a multi-key request whose
                // keys a migration split, once the migration moves on.
                Some(Refusal::TryAgain | Refusal::Loading) => Retry::After(backoff(attempt.max(1))),
                Some(Refusal::ClusterDown) => {
                    c.stale.store(true, Ordering::Release);
                    Retry::After(backoff(attempt.max(1)))
                }
                _ => {
                    if err.breaks_connection() {
                        c.stale.store(true, Ordering::Release);
                    }
                    Retry::No
                }
            }),
            Layout::Replicated(_) | Layout::Sharded(..) => Ok(Retry::No),
        }
    }
}

/// What to do about a failed request (see `Topology::retry`).
pub enum Retry {
    /// The caller gets the error.
    No,
    /// Route the request again after this pause (zero: at once).
    After(Duration),
    /// Send the request to this node, the one importing its slot, each command after `ASKING`.
    Ask(SharedPool),
}

/// The retry budget of a call when `SOCKET_TIMEOUT` sets none.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(2);

/// The pause before retry `attempt` (0: the first, at once): 2 ms doubling up to 100 ms, and
/// jittered between half and all of that so that threads retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let ceiling = Duration::from_millis(1 << attempt.min(7)).min(Duration::from_millis(100));
    ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::NodeAddress;
    use crate::settings::location::Address;

    fn server(port: u16) -> ServerConfig {
        ServerConfig {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            db: 0,
            username: None,
            password: None,
        }
    }

    fn refused(refusal: Refusal) -> Error {
        Error {
            refusal: Some(refusal),
            ..Error::new(ErrorKind::Response, "refused")
        }
    }

    /// Retried after a pause (Some(true)), at once (Some(false)), or not (None).
    fn retried(topology: &Topology, err: &Error, attempt: u32) -> Option<bool> {
        match topology.retry(err, attempt).unwrap() {
            Retry::After(pause) => Some(!pause.is_zero()),
            Retry::Ask(_) => Some(false),
            Retry::No => None,
        }
    }

    #[test]
    fn the_cluster_retry_policy() {
        // No I/O: the slot map is fetched on first use only.
        let cluster = Topology::cluster(vec![server(1)], ConnectionOptions::default());
        for waits in [Refusal::TryAgain, Refusal::Loading, Refusal::ClusterDown] {
            assert_eq!(
                retried(&cluster, &refused(waits.clone()), 0),
                Some(true),
                "{waits:?}"
            );
        }
        let moved = refused(Refusal::Moved(NodeAddress {
            host: "127.0.0.1".into(),
            port: 2,
        }));
        assert_eq!(retried(&cluster, &moved, 0), Some(false)); // at once the first time
        assert_eq!(retried(&cluster, &moved, 3), Some(true));
        let ask = refused(Refusal::Ask(NodeAddress {
            host: "127.0.0.1".into(),
            port: 2,
        }));
        assert_eq!(retried(&cluster, &ask, 0), Some(false));
        for final_ in [Refusal::WrongType, Refusal::NoScript, Refusal::Other] {
            assert_eq!(
                retried(&cluster, &refused(final_.clone()), 0),
                None,
                "{final_:?}"
            );
        }
        // A broken connection may have run the request: not retried.
        let broken = Error::new(ErrorKind::Connection, "reset");
        assert_eq!(retried(&cluster, &broken, 0), None);
        assert!(backoff(40) <= Duration::from_millis(100));
    }

    #[test]
    fn fixed_layouts_never_retry() {
        let single = Topology::replicated(&[(server(1), ConnectionOptions::default())]).unwrap();
        assert_eq!(single.retry_budget(), Duration::ZERO);
        assert_eq!(retried(&single, &refused(Refusal::ReadOnly), 0), None);
        assert_eq!(retried(&single, &refused(Refusal::TryAgain), 0), None);
    }
}
