//! How a request reaches its nodes, described once: routing, redirects (`MOVED`, `ASK`) and
//! retries while a cluster reshards or fails over, as `Topology::retry` decides, within the
//! call's retry budget.
//!
//! The description is async code over a `Transport`. Two transports run it: `Blocking`, on
//! the caller's thread with the GIL released, and `Awaiting`, on the runtime. A blocking
//! transport's futures finish on their first poll, so `blocking` runs the description to its
//! end without an executor: the sync and async paths share every line of it.

use super::Shared;
use crate::errors::{Error, ErrorKind, Result};
use crate::process::runtime;
use crate::resp::pack::{asked_replies, Packed};
use crate::telemetry::spans::{self, Trace};
use crate::topology::Retry;
use crate::transport::connector::{arun, checked, run, run_fanout, RedisPool};
use futures_util::future::join_all;
use pyo3::prelude::*;
use redis::Value;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

type SharedPool = Arc<RedisPool>;

/// How requests travel to the servers.
pub(super) trait Transport {
    /// Run `find`, which may block on I/O to find a node (sentinel, a cluster slot map).
    fn routing<T>(&self, shared: &Shared, find: impl FnOnce() -> T) -> T;
    /// One request to one node: its replies, server errors among them as values.
    async fn send(&self, pool: &RedisPool, packed: &Packed) -> Result<Vec<Value>>;
    /// Each request to its node at once (one request per node); results in request order.
    async fn send_each(&self, requests: &[(&RedisPool, &Packed)]) -> Vec<Result<Vec<Value>>>;
    async fn pause(&self, pause: Duration);
}

/// On the caller's thread; every call blocks (call it with the GIL released).
pub(super) struct Blocking;

/// On the async runtime's connections.
pub(super) struct Awaiting;

impl Transport for Blocking {
    fn routing<T>(&self, _: &Shared, find: impl FnOnce() -> T) -> T {
        find()
    }

    async fn send(&self, pool: &RedisPool, packed: &Packed) -> Result<Vec<Value>> {
        run(pool, packed)
    }

    async fn send_each(&self, requests: &[(&RedisPool, &Packed)]) -> Vec<Result<Vec<Value>>> {
        run_fanout(requests)
    }

    async fn pause(&self, pause: Duration) {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

impl Transport for Awaiting {
    /// On a runtime worker: routing usually answers from memory; when the topology must first
    /// ask a server (sentinel, a cluster slot map), the worker is handed to blocking I/O — a
    /// costly hand-off, so only then.
    fn routing<T>(&self, shared: &Shared, find: impl FnOnce() -> T) -> T {
        if shared.topology.settled() {
            find()
        } else {
            tokio::task::block_in_place(find)
        }
    }

    async fn send(&self, pool: &RedisPool, packed: &Packed) -> Result<Vec<Value>> {
        arun(pool, packed).await
    }

    async fn send_each(&self, requests: &[(&RedisPool, &Packed)]) -> Vec<Result<Vec<Value>>> {
        join_all(requests.iter().map(|(pool, packed)| arun(pool, packed))).await
    }

    async fn pause(&self, pause: Duration) {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Run a description on the `Blocking` transport with the GIL released, traced when
/// telemetry is on (the spans are made on the caller's thread, once the GIL is back).
pub(super) fn detached<T: Send>(
    py: Python<'_>,
    work: impl Future<Output = Result<T>> + Send,
) -> Result<T> {
    let trace = Trace::begin(py);
    let result = py.detach(|| blocking(spans::around(trace.as_ref(), work)));
    if let Some(trace) = trace {
        trace.end(py);
    }
    result
}

/// `runtime::awaitable`, traced when telemetry is on: the trace begins here, in the caller's
/// context, and ends on the event loop's thread as the call settles (failed or not), before
/// the awaiting coroutine resumes.
pub(super) fn awaitable<'py, T: Send + 'static>(
    py: Python<'py>,
    work: impl Future<Output = Result<T>> + Send + 'static,
    convert: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(trace) = Trace::begin(py) else {
        return runtime::awaitable(py, work, convert);
    };
    let work = trace.around(work);
    let settled = async move { Ok(work.await) };
    runtime::awaitable(py, settled, move |py, outcome: Result<T>| {
        trace.end(py);
        convert(py, outcome?)
    })
}

/// Run a description on the `Blocking` transport to its end.
fn blocking<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    match pin!(work).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        // Unreachable: nothing the blocking transport awaits is ever pending.
        Poll::Pending => Err(Error::new(
            ErrorKind::Protocol,
            "a blocking request was left pending",
        )),
    }
}

/// A call's retries: how many rounds were retried, and until when more may be.
struct Retries {
    attempt: u32,
    until: Instant,
}

impl Retries {
    fn new(shared: &Shared) -> Self {
        Self {
            attempt: 0,
            until: Instant::now() + shared.topology.retry_budget(),
        }
    }

    /// What to do about `err` (the topology learns from it); None when the caller gets it.
    fn after(&self, shared: &Shared, t: &impl Transport, err: &Error) -> Result<Option<Retry>> {
        let retry = t.routing(shared, || shared.topology.retry(err, self.attempt))?;
        Ok(match retry {
            Retry::After(pause) if Instant::now() + pause < self.until => {
                spans::retrying("retry", || format!("{}ms", pause.as_millis()));
                Some(retry)
            }
            Retry::Ask(ref node) if Instant::now() < self.until => {
                spans::retrying("redirect", || node.connector().server().address.to_string());
                Some(retry)
            }
            _ => None,
        })
    }
}

/// One node's request in a fan-out round: its pipeline and, per batch of keys, how many of
/// the pipeline's commands are the batch's and whether each follows an `ASKING`.
struct NodeRequest {
    pool: SharedPool,
    packed: Packed,
    spans: Vec<(Vec<usize>, usize, bool)>,
}

impl NodeRequest {
    /// Add `batch`'s request to the request for `pool` among `requests`.
    fn add(
        requests: &mut Vec<Self>,
        pool: SharedPool,
        batch: Vec<usize>,
        packed: Packed,
        asking: bool,
    ) {
        let at = match requests.iter().position(|r| Arc::ptr_eq(&r.pool, &pool)) {
            Some(at) => at,
            None => {
                requests.push(Self {
                    pool,
                    packed: Packed::new(),
                    spans: Vec::new(),
                });
                requests.len() - 1
            }
        };
        let request = &mut requests[at];
        let packed = if asking { packed.asking() } else { packed };
        request.spans.push((batch, packed.commands(), asking));
        request.packed.extend(&packed);
    }

    /// Each batch with its replies, or with the error that failed it: the node's, or the first
    /// error reply among the batch's.
    fn split(&mut self, result: Result<Vec<Value>>) -> Vec<(Vec<usize>, Result<Vec<Value>>)> {
        let spans = std::mem::take(&mut self.spans);
        let result = match result {
            Ok(replies) if replies.len() != self.packed.commands() => {
                Err(Error::new(ErrorKind::Protocol, "a reply is missing"))
            }
            result => result,
        };
        let mut replies = match result {
            Ok(replies) => replies.into_iter(),
            Err(err) => return spans.into_iter().map(|s| (s.0, Err(err.clone()))).collect(),
        };
        spans
            .into_iter()
            .map(|(batch, commands, asking)| {
                let own = checked(replies.by_ref().take(commands).collect());
                (batch, if asking { own.map(asked_replies) } else { own })
            })
            .collect()
    }
}

impl Shared {
    /// One request to one node, timed and counted in this cache's metrics (every request the
    /// client sends is counted: here, or by the fan-out below); its replies checked.
    pub(super) async fn sent(
        &self,
        t: &impl Transport,
        pool: &RedisPool,
        packed: &Packed,
    ) -> Result<Vec<Value>> {
        let started = Instant::now();
        let result = t.send(pool, packed).await.and_then(checked);
        let took = started.elapsed();
        self.metrics.record(packed.name(), took, result.is_ok());
        spans::sent(pool, packed, took, &result);
        result
    }

    /// Run `packed` on the node `select` names, through redirects and retries; the replies
    /// are checked (the first error reply is the call's error).
    pub(super) async fn route_on(
        &self,
        t: &impl Transport,
        select: impl Fn() -> Result<SharedPool>,
        packed: &Packed,
    ) -> Result<Vec<Value>> {
        let mut retries = Retries::new(self);
        let mut pool = t.routing(self, &select)?;
        let mut asking: Option<Packed> = None;
        loop {
            let err = match self.sent(t, &pool, asking.as_ref().unwrap_or(packed)).await {
                Ok(replies) if asking.is_some() => return Ok(asked_replies(replies)),
                Ok(replies) => return Ok(replies),
                Err(err) => err,
            };
            match retries.after(self, t, &err)? {
                Some(Retry::Ask(target)) => {
                    pool = target;
                    asking = Some(packed.asking());
                }
                Some(Retry::After(pause)) => {
                    t.pause(pause).await;
                    pool = t.routing(self, &select)?;
                    asking = None;
                }
                Some(Retry::No) | None => return Err(err),
            }
            retries.attempt += 1;
        }
    }

    /// A request per node holding some of `keys`, sent to all nodes at once. `build` packs
    /// the request for one batch of key indexes (keys one multi-key command may carry: a
    /// cluster needs a batch per slot). Returns each batch with its replies, in no particular
    /// order. A batch refused by a topology change (a slot moving or migrating, a failover) is
    /// sent again, alone: the batches that succeeded are not repeated.
    pub(super) async fn per_node_on<K: AsRef<[u8]>>(
        &self,
        t: &impl Transport,
        keys: &[K],
        write: bool,
        build: impl Fn(&[usize]) -> Packed,
    ) -> Result<Vec<(Vec<usize>, Vec<Value>)>> {
        // One block, so that every way out of it passes the local cache's eviction below.
        let result = async {
            let mut retries = Retries::new(self);
            let mut done = Vec::new();
            // The keys to route (again), and the batches to send to the node an `ASK` named.
            let mut todo: Vec<usize> = (0..keys.len()).collect();
            let mut asked: Vec<(SharedPool, Vec<usize>)> = Vec::new();
            loop {
                let mut requests = Vec::new();
                if !todo.is_empty() {
                    for (pool, batches) in
                        t.routing(self, || self.topology.group(keys, &todo, write))?
                    {
                        for batch in batches {
                            let packed = build(&batch);
                            NodeRequest::add(
                                &mut requests,
                                Arc::clone(&pool),
                                batch,
                                packed,
                                false,
                            );
                        }
                    }
                }
                for (pool, batch) in asked.drain(..) {
                    let packed = build(&batch);
                    NodeRequest::add(&mut requests, pool, batch, packed, true);
                }
                let sends: Vec<_> = requests
                    .iter()
                    .map(|r| (r.pool.as_ref(), &r.packed))
                    .collect();
                let started = Instant::now();
                let results = t.send_each(&sends).await;
                todo.clear();
                let mut pause = Duration::ZERO;
                for (mut request, result) in requests.into_iter().zip(results) {
                    let outcomes = request.split(result);
                    let ok = outcomes.iter().all(|(_, outcome)| outcome.is_ok());
                    let took = started.elapsed();
                    self.metrics.record(request.packed.name(), took, ok);
                    let failed = outcomes
                        .iter()
                        .find_map(|(_, outcome)| outcome.as_ref().err());
                    spans::sent(
                        &request.pool,
                        &request.packed,
                        took,
                        &failed.map_or(Ok(()), |e| Err(e.clone())),
                    );
                    for (batch, outcome) in outcomes {
                        let err = match outcome {
                            Ok(replies) => {
                                done.push((batch, replies));
                                continue;
                            }
                            Err(err) => err,
                        };
                        match retries.after(self, t, &err)? {
                            Some(Retry::Ask(target)) => asked.push((target, batch)),
                            Some(Retry::After(wait)) => {
                                pause = pause.max(wait);
                                todo.extend(batch);
                            }
                            // The other nodes' replies were read: no connection is left mid-reply.
                            Some(Retry::No) | None => return Err(err),
                        }
                    }
                }
                if todo.is_empty() && asked.is_empty() {
                    return Ok(done);
                }
                t.pause(pause).await;
                retries.attempt += 1;
            }
        }
        .await;
        if write {
            self.wrote(keys);
        }
        result
    }
}
