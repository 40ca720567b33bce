//! Redis Cluster: which of 16384 slots a key hashes to, and which node serves each slot now.
//!
//! The slot map comes from `CLUSTER SLOTS` on any reachable node; `MOVED` replies make it be
//! fetched again, `ASK` replies send one request to the importing node (see topology/mod.rs).

use crate::errors::{Error, ErrorKind, Result};
use crate::resp::pack::{text, Packed};
use crate::settings::location::{Address, ConnectionOptions, ServerConfig};
use crate::transport::connector::{shared_pool, RedisConnector, RedisPool};
use crate::transport::pool::Connector;
use redis::Value;
use std::sync::Arc;

pub const SLOTS: usize = 16384;

/// CRC16/XMODEM, the checksum Redis Cluster hashes keys with.
fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, byte| {
        (0..8).fold(crc ^ (u16::from(*byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

/// The part of a key Redis Cluster hashes: the text between the first `{` and the next `}`
/// when it is not empty, else the whole key.
fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|b| *b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|b| *b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

pub fn slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % SLOTS as u16
}

/// Which node serves each slot; nodes are primaries.
pub struct SlotMap {
    pub owners: Vec<u16>,
    pub nodes: Vec<Arc<RedisPool>>,
}

/// Ask `CLUSTER SLOTS` of the first node that answers among `candidates`.
pub fn discover(candidates: &[ServerConfig], options: &ConnectionOptions) -> Result<SlotMap> {
    let mut failures = Vec::new();
    for candidate in candidates {
        match slots_from(candidate, options) {
            Ok(map) => return Ok(map),
            Err(e) => failures.push(e.message),
        }
    }
    Err(Error::new(
        ErrorKind::Connection,
        format!("no cluster node gave its slot map: {}", failures.join("; ")),
    ))
}

fn slots_from(candidate: &ServerConfig, options: &ConnectionOptions) -> Result<SlotMap> {
    let connector = RedisConnector::new(candidate.clone(), options.clone())?;
    let describe = connector.describe();
    let mut conn = connector.connect()?;
    let reply = conn
        .exchange(Packed::command(&[b"CLUSTER", b"SLOTS"]).bytes(), 1)?
        .pop()
        .unwrap_or_default();
    let Value::Array(ranges) = reply else {
        return Err(Error::new(
            ErrorKind::Response,
            format!("{describe}: CLUSTER SLOTS answered {reply:?}"),
        ));
    };
    let mut owners = vec![u16::MAX; SLOTS];
    let mut addresses: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let (Some(host), Some(Value::Int(port))) = (primary.first().and_then(text), primary.get(1))
        else {
            continue;
        };
        // An empty host means "the node you asked".
        let host = if host.is_empty() {
            match &candidate.address {
                Address::Tcp { host, .. } | Address::Tls { host, .. } => host.clone(),
                Address::Unix { .. } => continue,
            }
        } else {
            host
        };
        // A port out of range is refused, not wrapped (70000 as u16 is 4464: another server).
        let Ok(port) = u16::try_from(*port) else {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{describe}: CLUSTER SLOTS named port {port}, out of range"),
            ));
        };
        let address = (host, port);
        let index = addresses
            .iter()
            .position(|a| *a == address)
            .unwrap_or_else(|| {
                addresses.push(address);
                addresses.len() - 1
            });
        let (start, end) = (
            (*start).max(0) as usize,
            ((*end).max(0) as usize).min(SLOTS - 1),
        );
        if start <= end {
            owners[start..=end].fill(index as u16);
        }
    }
    if owners.contains(&u16::MAX) {
        return Err(Error::new(
            ErrorKind::Connection,
            format!("{describe}: the cluster does not cover every slot yet"),
        ));
    }
    let nodes = addresses
        .iter()
        .map(|(host, port)| shared_pool(&candidate.at(host, *port), options))
        .collect::<Result<_>>()?;
    Ok(SlotMap { owners, nodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_and_slots_match_redis() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}")); // empty tag: whole key
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }
}
