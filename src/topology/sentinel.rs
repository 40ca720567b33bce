//! Finding the current primary and replicas of a service through Redis Sentinel.
//!
//! Asks each sentinel in turn (`SENTINEL GET-MASTER-ADDR-BY-NAME`, `SENTINEL REPLICAS`), skipping
//! sentinels that do not answer; replicas that sentinel marks down or disconnected are left out.

use crate::errors::{Error, ErrorKind, Result};
use crate::resp::pack::{text, Packed};
use crate::settings::location::{ConnectionOptions, ServerConfig};
use crate::transport::connector::RedisConnector;
use crate::transport::pool::Connector;
use redis::Value;

pub struct Sentinels {
    pub service: String,
    /// The sentinels themselves, with the credentials of `SENTINEL_KWARGS`.
    pub nodes: Vec<ServerConfig>,
    pub options: ConnectionOptions,
}

/// Where the service's nodes are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub primary: (String, u16),
    pub replicas: Vec<(String, u16)>,
}

fn address(host: Option<String>, port: Option<String>) -> Option<(String, u16)> {
    Some((host?, port?.parse().ok()?))
}

/// One replica entry of `SENTINEL REPLICAS`: a flat [field, value, ...] array (or a RESP3 map).
fn replica(entry: Value) -> Option<(String, u16)> {
    let pairs: Vec<(String, String)> = match entry {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| Some((text(&pair[0])?, text(pair.get(1)?)?)))
            .collect(),
        Value::Map(items) => items
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        _ => return None,
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let flags = field("flags").unwrap_or_default();
    if flags
        .split(',')
        .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"))
    {
        return None;
    }
    address(field("ip"), field("port"))
}

impl Sentinels {
    fn ask(&self, sentinel: &ServerConfig) -> Result<Discovered> {
        let connector = RedisConnector::new(sentinel.clone(), self.options.clone())?;
        let mut conn = connector.connect()?;
        let describe = connector.describe();
        let mut query = |args: &[&[u8]]| -> Result<Value> {
            let packed = Packed::command(args);
            Ok(conn.exchange(packed.bytes(), 1)?.pop().unwrap_or_default())
        };
        let service = self.service.as_bytes();
        let primary = match query(&[b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME", service])? {
            Value::Array(parts) if parts.len() == 2 => address(text(&parts[0]), text(&parts[1])),
            _ => None,
        }
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Connection,
                format!(
                    "{describe}: no primary known for service {:?}",
                    self.service
                ),
            )
        })?;
        let replicas = match query(&[b"SENTINEL", b"REPLICAS", service]) {
            Ok(Value::Array(entries)) => entries.into_iter().filter_map(replica).collect(),
            _ => Vec::new(),
        };
        Ok(Discovered { primary, replicas })
    }

    /// The first sentinel that knows the service answers; errors name every sentinel tried.
    pub fn discover(&self) -> Result<Discovered> {
        let mut failures = Vec::new();
        for sentinel in &self.nodes {
            match self.ask(sentinel) {
                Ok(found) => return Ok(found),
                Err(e) => failures.push(e.message),
            }
        }
        Err(Error::new(
            ErrorKind::Connection,
            format!(
                "no sentinel could name the primary of {:?}: {}",
                self.service,
                failures.join("; ")
            ),
        ))
    }
}
