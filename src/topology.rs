//! Which server a command goes to. For now: one primary that takes writes, optional replicas
//! that serve reads (a `LOCATION` list, as in django-redis). Shards, Sentinel and Cluster slot in
//! here behind the same three questions: where to write, where to read, which nodes hold keys.

use crate::config::{ConnectionOptions, ServerConfig};
use crate::connection::{shared_pool, RedisPool};
use crate::errors::{Error, Result};
use std::sync::Arc;

pub struct Topology {
    /// Primary first, then replicas.
    pools: Vec<Arc<RedisPool>>,
}

impl Topology {
    pub fn replicated(servers: &[(ServerConfig, ConnectionOptions)]) -> Result<Self> {
        if servers.is_empty() {
            return Err(Error::config("LOCATION names no server"));
        }
        let pools = servers
            .iter()
            .map(|(server, options)| shared_pool(server, options))
            .collect::<Result<_>>()?;
        Ok(Self { pools })
    }

    pub fn writer(&self) -> &RedisPool {
        &self.pools[0]
    }

    /// A random replica when there are replicas, else the primary.
    pub fn reader(&self) -> &RedisPool {
        match self.pools.len() {
            1 => &self.pools[0],
            n => &self.pools[rand::random_range(1..n)],
        }
    }

    pub fn pool(&self, write: bool) -> &RedisPool {
        if write {
            self.writer()
        } else {
            self.reader()
        }
    }

    /// The nodes that own keys (for KEYS, SCAN, FLUSHDB): the primary.
    pub fn primaries(&self) -> impl Iterator<Item = &RedisPool> {
        self.pools.iter().take(1).map(Arc::as_ref)
    }

    pub fn all(&self) -> impl Iterator<Item = &RedisPool> {
        self.pools.iter().map(Arc::as_ref)
    }
}
