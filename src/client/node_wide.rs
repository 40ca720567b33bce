//! Operations on every primary — `keys`, `clear`, `scan` pages, `delete_pattern` — each
//! described once, as async code over a `Transport` (see `routing.rs`), for the sync and the
//! async API alike.

use super::commands::{int_of, on_batch};
use super::routing::Transport;
use super::Shared;
use crate::errors::{Error, ErrorKind, Result};
use crate::resp::pack::Packed;
use crate::transport::connector::RedisPool;
use redis::Value;
use std::sync::Arc;

impl Shared {
    /// The primaries, found as the transport allows (finding them may block on I/O).
    async fn primaries_on(&self, t: &impl Transport) -> Result<Vec<Arc<RedisPool>>> {
        t.routing(self, || self.topology.primaries())
    }

    /// `KEYS pattern` on every primary.
    pub(super) async fn keys_on(&self, t: &impl Transport, pattern: &[u8]) -> Result<Vec<String>> {
        let packed = Packed::command(&[b"KEYS", pattern]);
        let mut all = Vec::new();
        for pool in self.primaries_on(t).await? {
            all.extend(
                self.sent(t, &pool, &packed)
                    .await?
                    .into_iter()
                    .flat_map(keys_of),
            );
        }
        Ok(all)
    }

    /// `FLUSHDB` on every primary; the local cache starts empty whatever happened.
    pub(super) async fn clear_on(&self, t: &impl Transport) -> Result<()> {
        let packed = Packed::command(&[b"FLUSHDB"]);
        let flushed = async {
            for pool in self.primaries_on(t).await? {
                self.sent(t, &pool, &packed).await?;
            }
            Ok(())
        }
        .await;
        self.wrote_all();
        flushed
    }

    /// One SCAN page on primary `node`: (next cursor, keys). Cursor 0 starts and ends.
    pub(super) async fn scan_on(
        &self,
        t: &impl Transport,
        cursor: u64,
        pattern: &[u8],
        count: i64,
        node: usize,
    ) -> Result<(u64, Vec<String>)> {
        let pool = self
            .primaries_on(t)
            .await?
            .into_iter()
            .nth(node)
            .ok_or_else(|| Error::new(ErrorKind::Response, "no such node"))?;
        let packed = scan_command(cursor.to_string().as_bytes(), pattern, count);
        let reply = self
            .sent(t, &pool, &packed)
            .await?
            .pop()
            .unwrap_or_default();
        let (next, keys) = scan_reply(reply)?;
        let next = std::str::from_utf8(&next)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let keys = keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        Ok((next, keys))
    }

    /// Delete every key matching `pattern`, SCAN + UNLINK per page on every primary; the local
    /// cache starts empty whatever happened.
    pub(super) async fn delete_pattern_on(
        &self,
        t: &impl Transport,
        pattern: &[u8],
        count: i64,
    ) -> Result<u64> {
        let deleted = async {
            let mut deleted = 0;
            for pool in self.primaries_on(t).await? {
                let mut deletion = PatternDeletion::new(pattern, count);
                while let Some(packed) = t.routing(self, || deletion.request(self))? {
                    deletion.absorb(self.sent(t, &pool, &packed).await?)?;
                }
                deleted += deletion.deleted;
            }
            Ok(deleted)
        }
        .await;
        self.wrote_all();
        deleted
    }
}

fn scan_command(cursor: &[u8], pattern: &[u8], count: i64) -> Packed {
    let mut packed = Packed::new();
    packed
        .start(6)
        .arg(b"SCAN")
        .arg(cursor)
        .arg(b"MATCH")
        .arg(pattern)
        .arg(b"COUNT")
        .int_arg(count);
    packed
}

/// A SCAN reply: (next cursor, keys).
fn scan_reply(reply: Value) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    match reply {
        Value::Array(mut parts) if parts.len() == 2 => {
            let keys = match parts.pop() {
                Some(Value::Array(keys)) => keys
                    .into_iter()
                    .filter_map(|k| match k {
                        Value::BulkString(b) => Some(b),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let next = match parts.pop() {
                Some(Value::BulkString(c)) => c,
                _ => b"0".to_vec(),
            };
            Ok((next, keys))
        }
        other => Err(Error::new(
            ErrorKind::Response,
            format!("unexpected SCAN reply {other:?}"),
        )),
    }
}

fn keys_of(reply: Value) -> Vec<String> {
    match reply {
        Value::Array(keys) => keys
            .into_iter()
            .filter_map(|k| match k {
                Value::BulkString(k) => Some(String::from_utf8_lossy(&k).into_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `delete_pattern` on one node, one round trip per SCAN page: each request unlinks the keys the
/// previous page found and asks for the next page.
struct PatternDeletion<'a> {
    pattern: &'a [u8],
    count: i64,
    /// The next page to ask for; None once the scan has come round to cursor 0.
    cursor: Option<Vec<u8>>,
    /// Found, not yet unlinked.
    found: Vec<Vec<u8>>,
    deleted: u64,
}

impl<'a> PatternDeletion<'a> {
    fn new(pattern: &'a [u8], count: i64) -> Self {
        Self {
            pattern,
            count,
            cursor: Some(b"0".to_vec()),
            found: Vec::new(),
            deleted: 0,
        }
    }

    /// The next request, or None when every key found is unlinked and the scan is over. The
    /// keys found are unlinked one batch per slot in a cluster.
    fn request(&self, shared: &Shared) -> Result<Option<Packed>> {
        let mut packed = Packed::new();
        let all: Vec<usize> = (0..self.found.len()).collect();
        for (_, batches) in shared.topology.group(&self.found, &all, true)? {
            for batch in batches {
                packed.extend(&on_batch(b"UNLINK", &batch, &self.found));
            }
        }
        if let Some(cursor) = &self.cursor {
            packed.extend(&scan_command(cursor, self.pattern, self.count));
        }
        Ok((packed.commands() > 0).then_some(packed))
    }

    /// Count the unlinked keys and take the page the request's SCAN returned.
    fn absorb(&mut self, mut replies: Vec<Value>) -> Result<()> {
        let page = self.cursor.is_some().then(|| replies.pop()).flatten();
        self.deleted += replies.iter().map(int_of).sum::<i64>() as u64;
        self.found.clear();
        if let Some(page) = page {
            let (next, keys) = scan_reply(page)?;
            self.found = keys;
            self.cursor = (next != b"0").then_some(next);
        }
        Ok(())
    }
}
