//! Which server a command goes to. Every layout answers the same questions: where does this key
//! live (and may a replica serve a read of it), which nodes hold keys (for SCAN, KEYS, FLUSHDB),
//! and how do several keys group by node.
//!
//! - replicated: a `LOCATION` list as in django-redis — the first server takes writes, reads go
//!   to a random replica (or the primary when there is none);
//! - sharded: django-redis's ShardClient placement (`ring.rs`), each shard a single server;
//! - sentinel: primary and replicas as Redis Sentinel names them now, found again after a
//!   failure or a failover.

use crate::config::{ConnectionOptions, ServerConfig};
use crate::connection::{shared_pool, RedisPool};
use crate::errors::{Error, ErrorKind, Result};
use crate::ring::HashRing;
use crate::sentinel::{self, Sentinels};
use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
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
    discovering: Mutex<()>,
}

impl SentinelLayout {
    fn nodes(&self) -> Result<Arc<Nodes>> {
        let fresh = |nodes: &Nodes| {
            nodes
                .found
                .is_some_and(|at| at.elapsed() < REDISCOVER_AFTER)
        };
        if let Some(nodes) = self.current.load_full().filter(|n| fresh(n)) {
            return Ok(nodes);
        }
        let _one_at_a_time = self.discovering.lock();
        if let Some(nodes) = self.current.load_full().filter(|n| fresh(n)) {
            return Ok(nodes);
        }
        let found = self.sentinels.discover()?;
        let mut pools = vec![shared_pool(
            &sentinel::node(&self.template, &found.primary),
            &self.options,
        )?];
        if self.read_from_replicas {
            for replica in &found.replicas {
                pools.push(shared_pool(
                    &sentinel::node(&self.template, replica),
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

enum Layout {
    Replicated(Nodes),
    Sharded(HashRing, Vec<Pool>),
    Sentinel(Box<SentinelLayout>),
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
                discovering: Mutex::new(()),
            })),
        }
    }

    /// The pool holding `key` (or a replica that may serve a read of it).
    pub fn route(&self, key: &[u8], write: bool) -> Result<Pool> {
        Ok(match &self.layout {
            Layout::Replicated(nodes) => Arc::clone(nodes.pick(write)),
            Layout::Sharded(ring, pools) => Arc::clone(&pools[ring.node_for(key)]),
            Layout::Sentinel(s) => Arc::clone(s.nodes()?.pick(write)),
        })
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
        self.route(b"", write)
    }

    /// Key indexes grouped by the node that holds them (one group per node, first-seen order).
    pub fn group<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        write: bool,
    ) -> Result<Vec<(Pool, Vec<usize>)>> {
        let Layout::Sharded(ring, pools) = &self.layout else {
            return Ok(vec![(self.route(b"", write)?, (0..keys.len()).collect())]);
        };
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let node = ring.node_for(key.as_ref());
            match groups.iter_mut().find(|(n, _)| *n == node) {
                Some((_, members)) => members.push(i),
                None => groups.push((node, vec![i])),
            }
        }
        Ok(groups
            .into_iter()
            .map(|(node, members)| (Arc::clone(&pools[node]), members))
            .collect())
    }

    /// The nodes that own keys: the primary, or every shard.
    pub fn primaries(&self) -> Result<Vec<Pool>> {
        Ok(match &self.layout {
            Layout::Replicated(nodes) => vec![Arc::clone(&nodes.pools[0])],
            Layout::Sharded(_, pools) => pools.clone(),
            Layout::Sentinel(s) => vec![Arc::clone(&s.nodes()?.pools[0])],
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
        }
    }

    /// Learn from a failed command. Under sentinel a connection failure or a `READONLY` reply
    /// (the primary was demoted) means the nodes must be found again. Returns whether the
    /// command may be retried at once: only `READONLY`, which the server refused before
    /// running anything.
    pub fn failed(&self, err: &Error) -> bool {
        let Layout::Sentinel(s) = &self.layout else {
            return false;
        };
        let readonly = err.kind == ErrorKind::Response && err.message.starts_with("READONLY");
        if readonly || err.breaks_connection() {
            s.current.store(None);
        }
        readonly
    }
}
