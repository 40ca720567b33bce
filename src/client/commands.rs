//! Command descriptions, shared by the sync and async transports: what to send, and how to
//! read the replies.

use super::keys::*;
use super::Shared;
use crate::connection::{run_one, RedisPool};
use crate::errors::{Error, ErrorKind, Result};
use crate::resp::Packed;
use crate::topology::Topology;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use redis::Value;

/// One cache command about one key — what to send, and how to read the replies — run by the
/// sync and the async transports alike.
pub(super) struct KeyCommand<T> {
    pub(super) key: Vec<u8>,
    pub(super) write: bool,
    pub(super) packed: Packed,
    pub(super) read: fn(Vec<Value>) -> T,
}

fn last_int(replies: Vec<Value>) -> i64 {
    replies.last().map(int_of).unwrap_or(0)
}

/// SET with an optional expiry in milliseconds; an expiry <= 0 deletes instead (as django-redis
/// does), or with `nx` only reports whether the key was absent.
pub(super) fn set_command(
    key: &[u8],
    value: &[u8],
    timeout_ms: Option<i64>,
    nx: bool,
    xx: bool,
) -> KeyCommand<bool> {
    if timeout_ms.is_some_and(|ms| ms <= 0) {
        return if nx {
            KeyCommand {
                key: key.to_vec(),
                write: false,
                packed: Packed::command(&[b"EXISTS", key]),
                read: |r| last_int(r) == 0,
            }
        } else {
            KeyCommand {
                key: key.to_vec(),
                write: true,
                packed: Packed::command(&[b"DEL", key]),
                read: |r| last_int(r) > 0,
            }
        };
    }
    let mut packed = Packed::new();
    let argc = 3 + 2 * usize::from(timeout_ms.is_some()) + usize::from(nx || xx);
    packed.start(argc).arg(b"SET").arg(key).arg(value);
    if let Some(ms) = timeout_ms {
        packed.arg(b"PX").int_arg(ms);
    }
    if nx {
        packed.arg(b"NX");
    } else if xx {
        packed.arg(b"XX");
    }
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed,
        read: |r| !matches!(r.last(), None | Some(Value::Nil)),
    }
}

/// A new expiry in milliseconds, or None to persist. True when the key exists: PERSIST answers
/// 0 for a key without expiry, so EXISTS is asked too.
pub(super) fn touch_command(key: &[u8], timeout_ms: Option<i64>) -> KeyCommand<bool> {
    let packed = match timeout_ms {
        Some(ms) => Packed::command(&[b"PEXPIRE", key, itoa::Buffer::new().format(ms).as_bytes()]),
        None => {
            let mut packed = Packed::command(&[b"PERSIST", key]);
            packed.extend(&Packed::command(&[b"EXISTS", key]));
            packed
        }
    };
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed,
        read: |r| last_int(r) == 1,
    }
}

pub(super) fn delete_command(key: &[u8]) -> KeyCommand<i64> {
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed: Packed::command(&[b"DEL", key]),
        read: last_int,
    }
}

pub(super) fn has_key_command(key: &[u8]) -> KeyCommand<bool> {
    KeyCommand {
        key: key.to_vec(),
        write: false,
        packed: Packed::command(&[b"EXISTS", key]),
        read: |r| last_int(r) == 1,
    }
}

/// INCRBY, atomically refusing a missing key unless `ignore_key_check`: None for a missing key.
pub(super) fn incr_command(
    key: &[u8],
    delta: i64,
    ignore_key_check: bool,
) -> KeyCommand<Option<i64>> {
    const SCRIPT: &[u8] = b"if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) else return false end";
    let delta = itoa::Buffer::new().format(delta).to_owned();
    let packed = if ignore_key_check {
        Packed::command(&[b"INCRBY", key, delta.as_bytes()])
    } else {
        Packed::command(&[b"EVAL", SCRIPT, b"1", key, delta.as_bytes()])
    };
    KeyCommand {
        key: key.to_vec(),
        write: true,
        packed,
        read: |r| match r.last() {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        },
    }
}

/// The packed command of `execute`'s arguments, and the keys that route it.
pub(super) fn command_of(
    args: &Bound<'_, PyTuple>,
    keys: Option<Vec<Bound<'_, PyAny>>>,
) -> PyResult<(Packed, Vec<Vec<u8>>)> {
    if args.is_empty() {
        return Err(PyTypeError::new_err("execute() needs a command name"));
    }
    let mut packed = Packed::new();
    packed.start(args.len());
    for item in args.iter() {
        packed.arg(&arg(&item)?);
    }
    let keys = match keys {
        Some(keys) => keys
            .iter()
            .map(|k| Ok(arg(k)?.into_owned()))
            .collect::<PyResult<_>>()?,
        None if args.len() > 1 => vec![arg(&args.get_item(1)?)?.into_owned()],
        None => Vec::new(),
    };
    Ok((packed, keys))
}

/// One multi-key command (`MGET`, `DEL`, `UNLINK`) on a batch of `keys` (their indexes).
pub(super) fn on_batch<K: AsRef<[u8]>>(command: &[u8], batch: &[usize], keys: &[K]) -> Packed {
    let mut packed = Packed::new();
    packed.start(batch.len() + 1).arg(command);
    for &i in batch {
        packed.arg(keys[i].as_ref());
    }
    packed
}

/// `set_many`'s request for a batch of keys: MSET, or one SET PX per key, or (an expiry
/// already past) DEL — the values still had to be serializable, as with SET.
pub(super) fn set_many_request<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    batch: &[usize],
    made: &[K],
    encoded: &[V],
    timeout_ms: Option<i64>,
) -> Packed {
    let mut packed = Packed::new();
    match timeout_ms {
        None => {
            packed.start(1 + 2 * batch.len()).arg(b"MSET");
            for &i in batch {
                packed.arg(made[i].as_ref()).arg(encoded[i].as_ref());
            }
        }
        Some(ms) if ms <= 0 => return on_batch(b"DEL", batch, made),
        Some(ms) => {
            for &i in batch {
                packed
                    .start(5)
                    .arg(b"SET")
                    .arg(made[i].as_ref())
                    .arg(encoded[i].as_ref())
                    .arg(b"PX")
                    .int_arg(ms);
            }
        }
    }
    packed
}

pub(super) fn int_of(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        Value::Okay => 1,
        _ => 0,
    }
}

pub(super) fn scan_command(cursor: &[u8], pattern: &[u8], count: i64) -> Packed {
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
pub(super) fn scan_reply(reply: Value) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
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

pub(super) fn scan_page(
    shared: &Shared,
    pool: &RedisPool,
    cursor: &[u8],
    pattern: &[u8],
    count: i64,
) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let packed = scan_command(cursor, pattern, count);
    scan_reply(shared.metered(&packed, || run_one(pool, &packed))?)
}

/// `delete_pattern` on one node, one round trip per SCAN page: each request unlinks the keys the
/// previous page found and asks for the next page.
pub(super) struct PatternDeletion<'a> {
    pub(super) pattern: &'a [u8],
    pub(super) count: i64,
    /// The next page to ask for; None once the scan has come round to cursor 0.
    pub(super) cursor: Option<Vec<u8>>,
    /// Found, not yet unlinked.
    pub(super) found: Vec<Vec<u8>>,
    pub(super) deleted: u64,
}

impl<'a> PatternDeletion<'a> {
    pub(super) fn new(pattern: &'a [u8], count: i64) -> Self {
        Self {
            pattern,
            count,
            cursor: Some(b"0".to_vec()),
            found: Vec::new(),
            deleted: 0,
        }
    }

    /// The next request, or None when every key found is unlinked and the scan is over.
    pub(super) fn request(&self, topology: &Topology) -> Result<Option<Packed>> {
        let mut packed = if self.found.is_empty() {
            Packed::new()
        } else {
            unlink_command(topology, &self.found)?
        };
        if let Some(cursor) = &self.cursor {
            packed.extend(&scan_command(cursor, self.pattern, self.count));
        }
        Ok((packed.commands() > 0).then_some(packed))
    }

    /// Count the unlinked keys and take the page the request's SCAN returned.
    pub(super) fn absorb(&mut self, mut replies: Vec<Value>) -> Result<()> {
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

/// One UNLINK per batch the topology allows (per slot in a cluster) for keys of one node.
fn unlink_command(topology: &Topology, keys: &[Vec<u8>]) -> Result<Packed> {
    let mut packed = Packed::new();
    let all: Vec<usize> = (0..keys.len()).collect();
    for batch in topology
        .group(keys, &all, true)?
        .into_iter()
        .flat_map(|(_, b)| b)
    {
        packed.extend(&on_batch(b"UNLINK", &batch, keys));
    }
    Ok(packed)
}

pub(super) fn keys_of(reply: Value) -> Vec<String> {
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
