//! Command descriptions, shared by the sync and async transports: what to send, and how to
//! read the replies.

use super::cache_keys::*;
use crate::resp::pack::Packed;
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
