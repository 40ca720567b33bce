//! Which server a command goes to. Every layout answers the same questions: where does this key
//! live (and may a replica serve a read of it), which nodes hold keys (for SCAN, KEYS, FLUSHDB),
//! and how do several keys group by node.
//!
//! - replicated: a `LOCATION` list as in django-redis — the first server takes writes, reads go
//!   to a random replica (or the primary when there is none);
//! - sharded: django-redis's ShardClient placement (`ring.rs`), each shard a single server;
//! - sentinel: primary and replicas as Redis Sentinel names them now, found again after a
//!   failure or a failover;
//! - cluster: Redis Cluster's slot map, fetched again on `MOVED`; keys group by slot.

use crate::cluster::{self, Redirect, SlotMap};
use crate::config::{ConnectionOptions, ServerConfig};
use crate::connection::{shared_pool, RedisPool};
use crate::errors::{Error, ErrorKind, Result};
use crate::fork::ForkLocal;
use crate::ring::HashRing;
use crate::sentinel::Sentinels;
use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Pool = Arc<RedisPool>;

/// The primary (index 0) and replicas.
struct Nodes {
    pools: Vec<Pool>,
    /// When sentinel named them (None: fixed by LOCATION).
    found: Option<Instant>,
}

/// How long sentinel's answer is trusted before asking again (replicas come and go).
const REDISCOVER_AFTER: Duration = Duration::from_secs(30);

impl Nodes {
    fn pick(&self, write: bool) -> &Pool {
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

    fn pool_for(&self, key: &[u8]) -> Result<Pool> {
        let map = self.map()?;
        Ok(Arc::clone(
            &map.nodes[usize::from(map.owners[usize::from(cluster::slot(key))])],
        ))
    }
}

enum Layout {
    Replicated(Nodes),
    Sharded(HashRing, Vec<Pool>),
    Sentinel(Box<SentinelLayout>),
    Cluster(Box<ClusterLayout>),
}

pub struct Topology {
    layout: Layout,
}

fn pools(servers: &[(ServerConfig, ConnectionOptions)]) -> Result<Vec<Pool>> {
    if servers.is_empty() {
        return Err(Error::config("LOCATION names no server"));
    }
    servers
        .iter()
        .map(|(server, options)| shared_pool(server, options))
        .collect()
}

impl Topology {
    pub fn replicated(servers: &[(ServerConfig, ConnectionOptions)]) -> Result<Self> {
        Ok(Self {
            layout: Layout::Replicated(Nodes {
                pools: pools(servers)?,
                found: None,
            }),
        })
    }

    /// `ring_names` name the shards as django-redis does (the LOCATION entries as written).
    pub fn sharded<S: AsRef<str>>(
        servers: &[(ServerConfig, ConnectionOptions)],
        ring_names: &[S],
    ) -> Result<Self> {
        if ring_names.len() != servers.len() {
            return Err(Error::config("one ring name per shard is required"));
        }
        Ok(Self {
            layout: Layout::Sharded(HashRing::new(ring_names), pools(servers)?),
        })
    }

    /// Nodes are found on first use (so a sentinel outage at start-up is not a configuration
    /// error) and again after a failure.
    pub fn sentinel(
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
    pub fn cluster(seeds: Vec<ServerConfig>, options: ConnectionOptions) -> Self {
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
    pub fn route(&self, key: &[u8], write: bool) -> Result<Pool> {
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
    pub fn route_all(&self, keys: &[&[u8]], write: bool) -> Result<Pool> {
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

    /// Key indexes grouped by the node that holds them (first-seen order), each node's keys in
    /// batches that one multi-key command may carry: all of them, or, in a cluster, one batch
    /// per slot.
    pub fn group<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        write: bool,
    ) -> Result<Vec<(Pool, Vec<Vec<usize>>)>> {
        // Per node: (batch id, key indexes) — the batch id is the slot in a cluster, else 0.
        type Batches = Vec<(u16, Vec<usize>)>;
        let mut nodes: Vec<(Pool, Batches)> = Vec::new();
        let map = match &self.layout {
            Layout::Cluster(c) => Some(c.map()?),
            _ => None,
        };
        let single = match &self.layout {
            Layout::Replicated(_) | Layout::Sentinel(_) => Some(self.route(b"", write)?),
            _ => None,
        };
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_ref();
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
    pub fn primaries(&self) -> Result<Vec<Pool>> {
        Ok(match &self.layout {
            Layout::Replicated(nodes) => vec![Arc::clone(&nodes.pools[0])],
            Layout::Sharded(_, pools) => pools.clone(),
            Layout::Sentinel(s) => vec![Arc::clone(&s.nodes()?.pools[0])],
            Layout::Cluster(c) => c.map()?.nodes.clone(),
        })
    }

    /// Every node known now (for closing connections and for statistics).
    pub fn known(&self) -> Vec<Pool> {
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

    /// The node an `ASK` redirect names, for one command preceded by `ASKING`.
    pub fn asked(&self, err: &Error) -> Result<Option<Pool>> {
        let Layout::Cluster(c) = &self.layout else {
            return Ok(None);
        };
        match Redirect::parse(err) {
            Some(redirect) if redirect.ask => {
                let template = c
                    .seeds
                    .first()
                    .ok_or_else(|| Error::config("no cluster seed"))?;
                let target = template.at(&redirect.host, redirect.port);
                Ok(Some(shared_pool(&target, &c.options)?))
            }
            _ => Ok(None),
        }
    }

    /// Learn from a failed command; returns whether it may be retried at once.
    /// - sentinel: a connection failure or a `READONLY` reply (the primary was demoted) means
    ///   the nodes must be found again; `READONLY` commands were refused before running, so
    ///   they are retried;
    /// - cluster: `MOVED` means the slot map is stale: it is fetched again and the command
    ///   retried on the slot's new owner; a connection failure or `CLUSTERDOWN` drops the map.
    pub fn failed(&self, err: &Error) -> bool {
        match &self.layout {
            Layout::Sentinel(s) => {
                let readonly =
                    err.kind == ErrorKind::Response && err.message.starts_with("READONLY");
                if readonly || err.breaks_connection() {
                    s.current.store(None);
                }
                readonly
            }
            Layout::Cluster(c) => {
                let moved = Redirect::parse(err).is_some_and(|r| !r.ask);
                if moved || err.breaks_connection() || err.message.starts_with("CLUSTERDOWN") {
                    c.stale.store(true, Ordering::Release);
                }
                moved
            }
            _ => false,
        }
    }
}
