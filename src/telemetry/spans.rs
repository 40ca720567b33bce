//! What OpenTelemetry's spans and duration histogram are made of: each request sent to one
//! node, as the routing layer saw it (`client/routing.rs` reports every one here, on every
//! path), handed to the Python observer that `contrib/opentelemetry.py` installs.
//!
//! Off (no observer), a call costs one relaxed atomic load where it starts and one per request:
//! nothing is timed or allocated twice. On, a call's requests are gathered in a buffer that the
//! call's future carries (a task-local, so concurrent async calls polled by one task keep theirs
//! apart), and the observer turns them into spans once the call ends, under the context the
//! caller had when it made the call: on the caller's thread for a sync call, on the event loop's
//! thread, before the awaiting coroutine resumes, for an async one.

use crate::errors::{Error, ErrorKind, Result};
use crate::resp::pack::Packed;
use crate::settings::location::Address;
use crate::transport::connector::RedisPool;
use futures_util::future::Either;
use parking_lot::{Mutex, RwLock};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static ON: AtomicBool = AtomicBool::new(false);
/// Whether spans may name the keys (`db.query.text`): the user's opt-in.
static WITH_KEYS: AtomicBool = AtomicBool::new(false);
static OBSERVER: RwLock<Option<Py<PyAny>>> = RwLock::new(None);

type Requests = Arc<Mutex<Vec<Request>>>;

tokio::task_local! {
    static REQUESTS: Requests;
}

/// Install `observer` (None: uninstall). It has `begin()`, which returns the caller's context,
/// and `end(context, requests)`, which gets a tuple per request (see `Request::to_tuple`).
#[pyfunction]
#[pyo3(signature = (observer, *, with_keys=false))]
pub fn set_observer(observer: Option<Py<PyAny>>, with_keys: bool) {
    let on = observer.is_some();
    *OBSERVER.write() = observer;
    WITH_KEYS.store(with_keys && on, Relaxed);
    ON.store(on, Relaxed);
}

/// One request to one node, answered or failed.
pub struct Request {
    /// `db.operation.name`: the command's name, `BATCH <name>` for a pipeline of one command,
    /// `BATCH` for a mixed one.
    operation: String,
    batch: usize,
    address: String,
    port: Option<u16>,
    db: i64,
    system: &'static str,
    ended: Duration,
    took: Duration,
    /// `error.type` (redis-py's class) and, for a server's refusal, `db.response.status_code`.
    error: Option<(&'static str, Option<String>)>,
    /// What was done about the failure: `("redirect", node)` or `("retry", pause in ms)`.
    events: Vec<(&'static str, String)>,
    query: Option<String>,
}

impl Request {
    fn new(pool: &RedisPool, packed: &Packed, took: Duration, result: &Result<()>) -> Self {
        let server = pool.connector().server();
        let (address, port) = match &server.address {
            Address::Tcp { host, port } | Address::Tls { host, port } => {
                (host.clone(), Some(*port))
            }
            Address::Unix { path } => (path.display().to_string(), None),
        };
        let operation = operation_name(packed);
        Self {
            batch: commands_sent(packed),
            address,
            port,
            db: server.db,
            system: pool.connector().system(),
            ended: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            took,
            error: result.as_ref().err().map(classify),
            events: Vec::new(),
            query: WITH_KEYS.load(Relaxed).then(|| query_text(packed)),
            operation,
        }
    }

    fn to_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let ended = self.ended.as_nanos() as u64;
        let started = ended.saturating_sub(self.took.as_nanos() as u64);
        let (error, status) = match &self.error {
            Some((class, status)) => (Some(*class), status.as_deref()),
            None => (None, None),
        };
        (
            self.operation.as_str(),
            self.batch,
            self.address.as_str(),
            self.port,
            self.db,
            self.system,
            started,
            ended,
            error,
            status,
            self.events.clone(),
            self.query.as_deref(),
        )
            .into_pyobject(py)
    }
}

/// The commands a request carries, `ASKING` prefixes (a redirect's) not counted.
fn commands_sent(packed: &Packed) -> usize {
    (0..packed.commands())
        .filter(|&i| packed.command_args(i).first() != Some(&&b"ASKING"[..]))
        .count()
}

fn operation_name(packed: &Packed) -> String {
    let name = String::from_utf8_lossy(packed.name()).to_ascii_uppercase();
    if commands_sent(packed) <= 1 {
        return name;
    }
    let same = (0..packed.commands())
        .map(|i| packed.command_args(i))
        .filter(|args| args.first() != Some(&&b"ASKING"[..]))
        .all(|args| {
            args.first()
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        });
    match same {
        true => format!("BATCH {name}"),
        false => "BATCH".to_owned(),
    }
}

/// The commands with their keys and no values: every argument of the commands whose arguments
/// are all keys, every other one of `MSET`'s, the first argument of the others.
fn query_text(packed: &Packed) -> String {
    const LIMIT: usize = 1000;
    let mut text = String::new();
    for i in 0..packed.commands() {
        let args = packed.command_args(i);
        let Some((name, rest)) = args.split_first() else {
            continue;
        };
        let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
        let keys: Vec<&[u8]> = match upper.as_str() {
            "ASKING" => continue,
            "MGET" | "DEL" | "UNLINK" | "EXISTS" | "TOUCH" | "WATCH" => rest.to_vec(),
            "MSET" | "MSETNX" => rest.iter().step_by(2).copied().collect(),
            "PING" | "SCAN" | "FLUSHDB" | "DBSIZE" | "INFO" | "EVALSHA" | "EVAL" | "MULTI"
            | "EXEC" => Vec::new(),
            _ => rest.iter().take(1).copied().collect(),
        };
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&upper);
        for key in keys {
            text.push(' ');
            text.push_str(&String::from_utf8_lossy(key));
        }
        if text.len() > LIMIT {
            let cut = (0..=LIMIT).rev().find(|&at| text.is_char_boundary(at));
            text.truncate(cut.unwrap_or(0));
            text.push('…');
            break;
        }
    }
    text
}

fn classify(err: &Error) -> (&'static str, Option<String>) {
    let status = match (err.kind, &err.refusal) {
        (ErrorKind::Response, Some(_)) => err.message.split(' ').next().map(str::to_owned),
        _ => None,
    };
    (err.python_class(), status)
}

/// Note a request that `pool` answered (or failed) after `took`, when a call is traced.
pub fn sent<T>(pool: &RedisPool, packed: &Packed, took: Duration, result: &Result<T>) {
    if !ON.load(Relaxed) {
        return;
    }
    let result = result.as_ref().map(drop).map_err(Error::clone);
    let request = Request::new(pool, packed, took, &result);
    let _ = REQUESTS.try_with(|requests| requests.lock().push(request));
}

/// Note what is done about the last request's failure: `kind` is `redirect` or `retry`.
pub fn retrying(kind: &'static str, detail: impl FnOnce() -> String) {
    if !ON.load(Relaxed) {
        return;
    }
    let _ = REQUESTS.try_with(|requests| {
        if let Some(last) = requests.lock().last_mut() {
            last.events.push((kind, detail()));
        }
    });
}

/// One traced call: the caller's context, and the requests its future gathers.
pub struct Trace {
    observer: Py<PyAny>,
    context: Py<PyAny>,
    requests: Requests,
}

impl Trace {
    /// A trace for a call starting now, when an observer is installed. A failing observer
    /// never fails the call: its error is reported as unraisable, and the call goes untraced.
    pub fn begin(py: Python<'_>) -> Option<Trace> {
        if !ON.load(Relaxed) {
            return None;
        }
        let observer = OBSERVER.read().as_ref()?.clone_ref(py);
        match observer.call_method0(py, pyo3::intern!(py, "begin")) {
            Ok(context) => Some(Trace {
                observer,
                context,
                requests: Requests::default(),
            }),
            Err(err) => {
                err.write_unraisable(py, Some(observer.bind(py)));
                None
            }
        }
    }

    /// `work`, gathering its requests into this trace.
    pub fn around<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        REQUESTS.scope(Arc::clone(&self.requests), work)
    }

    /// Hand the call's requests to the observer.
    pub fn end(self, py: Python<'_>) {
        let requests = std::mem::take(&mut *self.requests.lock());
        let tuples: PyResult<Vec<_>> = requests.iter().map(|r| r.to_tuple(py)).collect();
        let ended = tuples.and_then(|tuples| {
            self.observer
                .call_method1(py, pyo3::intern!(py, "end"), (self.context, tuples))
        });
        if let Err(err) = ended {
            err.write_unraisable(py, Some(self.observer.bind(py)));
        }
    }
}

/// `work` in `trace`'s scope when there is one.
pub fn around<F: Future>(trace: Option<&Trace>, work: F) -> impl Future<Output = F::Output> {
    match trace {
        Some(trace) => Either::Left(trace.around(work)),
        None => Either::Right(work),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(commands: &[&[&[u8]]]) -> Packed {
        let mut packed = Packed::new();
        for args in commands {
            packed.extend(&Packed::command(args));
        }
        packed
    }

    #[test]
    fn operation_names_follow_the_batch_convention() {
        assert_eq!(operation_name(&packed(&[&[b"get", b"k"]])), "GET");
        let same = packed(&[&[b"SET", b"a", b"1"], &[b"SET", b"b", b"2"]]);
        assert_eq!(operation_name(&same), "BATCH SET");
        let mixed = packed(&[&[b"SET", b"a", b"1"], &[b"EXPIRE", b"a", b"5"]]);
        assert_eq!(operation_name(&mixed), "BATCH");
        // A redirect's ASKING prefix is neither the name nor part of the batch.
        let asked = packed(&[&[b"GET", b"k"]]).asking();
        assert_eq!(
            (operation_name(&asked), commands_sent(&asked)),
            ("GET".into(), 1)
        );
    }

    #[test]
    fn query_text_names_keys_and_never_values() {
        let request = packed(&[
            &[b"SET", b"k1", b"secret", b"PX", b"10"],
            &[b"MSET", b"a", b"v1", b"b", b"v2"],
            &[b"MGET", b"a", b"b"],
        ]);
        assert_eq!(query_text(&request), "SET k1; MSET a b; MGET a b");
        let long = packed(&[&[b"GET", "é".repeat(800).as_bytes()]]);
        let text = query_text(&long);
        assert!(text.ends_with('…') && text.len() <= 1000 + '…'.len_utf8());
    }
}
