//! The multi-key operations — `get_many`, `set_many`, `delete_many` — each described once,
//! as async code over a `Transport` (see `routing.rs`), for the sync and the async API alike.
//! The Python-facing halves (making keys, encoding and decoding values) stay in the API files.

use super::commands::{int_of, on_batch, set_many_request};
use super::routing::Transport;
use super::Shared;
use crate::errors::{Error, ErrorKind, Result};
use crate::resp::pack::Packed;
use redis::Value;

impl Shared {
    /// get_many's second half: the values of `keys` (made keys the local cache did not hold),
    /// as (key index, bytes) for the keys found; `epochs` as `ManyLookup` gives them.
    pub(super) async fn get_many_on<K: AsRef<[u8]>>(
        &self,
        t: &impl Transport,
        keys: &[K],
        epochs: &[Option<u64>],
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        let results = self
            .per_node_on(t, keys, false, |batch| self.get_many_request(batch, keys))
            .await?;
        self.got_many(results, keys, epochs)
    }

    /// Store `values[i]` at `keys[i]`, MSET per batch, or SET PX per key with `timeout_ms`.
    pub(super) async fn set_many_on<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        t: &impl Transport,
        keys: &[K],
        values: &[V],
        timeout_ms: Option<i64>,
    ) -> Result<()> {
        let build = |batch: &[usize]| set_many_request(batch, keys, values, timeout_ms);
        self.per_node_on(t, keys, true, build).await.map(drop)
    }

    /// Delete `keys`: how many existed.
    pub(super) async fn delete_many_on<K: AsRef<[u8]>>(
        &self,
        t: &impl Transport,
        keys: &[K],
    ) -> Result<i64> {
        let build = |batch: &[usize]| on_batch(b"DEL", batch, keys);
        let replies = self.per_node_on(t, keys, true, build).await?;
        Ok(replies.iter().flat_map(|(_, v)| v).map(int_of).sum())
    }

    /// get_many's request for a batch of keys: MGET; with a local cache, then a PTTL per key
    /// for the values it will keep.
    fn get_many_request<K: AsRef<[u8]>>(&self, batch: &[usize], keys: &[K]) -> Packed {
        let mut packed = on_batch(b"MGET", batch, keys);
        if self.local.is_some() {
            for &i in batch {
                packed.extend(&Packed::command(&[b"PTTL", keys[i].as_ref()]));
            }
        }
        packed
    }

    /// get_many's replies, per batch: (key index, value) for the keys found, the values
    /// offered to the local cache with their PTTLs and `epochs`; counted as hits and misses.
    fn got_many<K: AsRef<[u8]>>(
        &self,
        results: Vec<(Vec<usize>, Vec<Value>)>,
        keys: &[K],
        epochs: &[Option<u64>],
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        let mut found = Vec::with_capacity(keys.len());
        for (batch, replies) in results {
            let mut replies = replies.into_iter();
            let Some(Value::Array(values)) = replies.next() else {
                return Err(Error::new(ErrorKind::Protocol, "unexpected MGET reply"));
            };
            for (i, value) in batch.into_iter().zip(values) {
                // With a local cache, the PTTLs follow the MGET: a key each, in batch order.
                let pttl = self.local.as_ref().and_then(|_| replies.next());
                let Value::BulkString(data) = value else {
                    continue;
                };
                if let (Some(local), Some(pttl), Some(epoch)) = (&self.local, pttl, epochs[i]) {
                    local.offer(keys[i].as_ref(), &data, int_of(&pttl), epoch);
                }
                found.push((i, data));
            }
        }
        self.metrics.hits(found.len() as u64);
        self.metrics.misses((keys.len() - found.len()) as u64);
        Ok(found)
    }
}
