//! Which server a command goes to. Every layout answers the same questions: where does this key
//! live (and may a replica serve a read of it), where do keyless commands go, which nodes hold
//! keys (for SCAN, KEYS, FLUSHDB), and how do several keys group by node.
//!
//! - replicated: a `LOCATION` list as in django-redis — the first server takes writes, reads go
//!   to a random replica (or the primary when there is none);
//! - sharded: django-redis's ShardClient placement (`ring.rs`), each shard a single server.

use crate::config::{ConnectionOptions, ServerConfig};
use crate::connection::{shared_pool, RedisPool};
use crate::errors::{Error, ErrorKind, Result};
use crate::ring::HashRing;
use std::sync::Arc;

enum Layout {
    Replicated,
    Sharded(HashRing),
}

pub struct Topology {
    pools: Vec<Arc<RedisPool>>,
    layout: Layout,
}

fn pools(servers: &[(ServerConfig, ConnectionOptions)]) -> Result<Vec<Arc<RedisPool>>> {
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
            pools: pools(servers)?,
            layout: Layout::Replicated,
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
            pools: pools(servers)?,
            layout: Layout::Sharded(HashRing::new(ring_names)),
        })
    }

    /// The node index holding `key`, and the pool to ask.
    fn locate(&self, key: &[u8], write: bool) -> usize {
        match &self.layout {
            Layout::Sharded(ring) => ring.node_for(key),
            Layout::Replicated if write || self.pools.len() == 1 => 0,
            Layout::Replicated => rand::random_range(1..self.pools.len()),
        }
    }

    pub fn route(&self, key: &[u8], write: bool) -> &RedisPool {
        &self.pools[self.locate(key, write)]
    }

    /// Where a command that names no key goes: the primary (or a replica for reads), or the
    /// first shard.
    pub fn keyless(&self, write: bool) -> &RedisPool {
        match self.layout {
            Layout::Replicated => &self.pools[self.locate(b"", write)],
            Layout::Sharded(_) => &self.pools[0],
        }
    }

    /// The one node that holds all of `keys`; an error when they live on different shards.
    pub fn route_all(&self, keys: &[&[u8]], write: bool) -> Result<&RedisPool> {
        let Some((first, rest)) = keys.split_first() else {
            return Ok(self.keyless(write));
        };
        let node = self.locate(first, write);
        if let Layout::Sharded(ring) = &self.layout {
            if rest.iter().any(|key| ring.node_for(key) != node) {
                return Err(Error::new(
                    ErrorKind::Response,
                    "CROSSSHARD these keys live on different shards; give them a common {hash tag}",
                ));
            }
        }
        Ok(&self.pools[node])
    }

    /// Key indexes grouped by the node that holds them (one group per node, first-seen order).
    pub fn group<K: AsRef<[u8]>>(&self, keys: &[K], write: bool) -> Vec<(&RedisPool, Vec<usize>)> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        let single = match self.layout {
            Layout::Replicated => Some(self.locate(b"", write)),
            Layout::Sharded(_) => None,
        };
        for (i, key) in keys.iter().enumerate() {
            let node = single.unwrap_or_else(|| self.locate(key.as_ref(), write));
            match groups.iter_mut().find(|(n, _)| *n == node) {
                Some((_, members)) => members.push(i),
                None => groups.push((node, vec![i])),
            }
        }
        groups
            .into_iter()
            .map(|(node, members)| (self.pools[node].as_ref(), members))
            .collect()
    }

    /// The nodes that own keys: the primary, or every shard.
    pub fn primaries(&self) -> impl Iterator<Item = &RedisPool> {
        let owners = match self.layout {
            Layout::Replicated => 1,
            Layout::Sharded(_) => self.pools.len(),
        };
        self.pools.iter().take(owners).map(Arc::as_ref)
    }

    pub fn all(&self) -> impl Iterator<Item = &RedisPool> {
        self.pools.iter().map(Arc::as_ref)
    }
}
