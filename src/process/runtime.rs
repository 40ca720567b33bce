//! The async side: one tokio runtime per process (made on first use, and made again in a forked
//! child, whose copy of the parent's runtime has no threads), and the bridge that turns a Rust
//! future into an asyncio future on the caller's event loop.

use crate::errors::{Error, ErrorKind, Result};
use crate::process::fork::ForkLocal;
use futures_util::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use tokio::runtime::Runtime;

/// Leaked on purpose: dropping a runtime joins its worker threads, which a forked child does
/// not have. One small runtime per fork generation is the cost.
fn build() -> &'static Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("django-redis-rs")
        .enable_all()
        .build()
        .expect("the OS refused the threads of the async runtime");
    Box::leak(Box::new(runtime))
}

static RUNTIME: LazyLock<ForkLocal<&'static Runtime>> = LazyLock::new(|| ForkLocal::new(build));

pub fn runtime() -> &'static Runtime {
    **RUNTIME.current()
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A future that turns a panic while polling its inner future into `Err(())`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// A finished call's result, turned into a Python object once the loop holds the GIL.
type Outcome = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// How a finished call settles its asyncio future, on the event loop's thread.
struct Settlement {
    future: Py<PyAny>,
    outcome: Outcome,
}

/// An async call's whole journey: the Redis exchange, then posting its result.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The bridge between one event loop and the runtime, both ways.
///
/// Outward: calls made during one turn of the loop wait in `outbox` until the turn ends, then
/// go to the runtime as one task. Their requests then reach the connection together, which
/// writes them in one system call, and the runtime is woken once per turn, not per call.
///
/// Back: finished calls wait in `queue`. Settling each call with its own
/// `call_soon_threadsafe` costs a GIL hand-off and a loop wake-up per call; here the first call
/// to finish wakes the loop once, by writing a byte to a socket the loop watches (no GIL on the
/// runtime thread), and the loop settles every call finished by then.
struct Mailbox {
    /// A weak reference to the loop: the mailbox must not keep a closed loop alive.
    event_loop: Py<PyAny>,
    outbox: Mutex<Vec<Job>>,
    queue: Mutex<Vec<Settlement>>,
    /// The loop watches `bell`'s other end (`add_reader`); runtime threads ring it.
    bell: UnixStream,
    watched: UnixStream,
    /// The fork generation that made it. A forked child inherits the thread-local mailbox and,
    /// with it, the parent's loop, whose epoll set the two processes share: the child must
    /// forget it without a word to that loop (a `remove_reader` there would unregister the
    /// parent's bell, and the parent's calls would never settle).
    generation: u64,
}

impl Mailbox {
    fn new(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Self>> {
        let py = event_loop.py();
        let (bell, watched) = UnixStream::pair()?;
        bell.set_nonblocking(true)?;
        watched.set_nonblocking(true)?;
        let weak = py.import("weakref")?.getattr("ref")?.call1((event_loop,))?;
        let mailbox = Arc::new(Mailbox {
            event_loop: weak.unbind(),
            outbox: Mutex::new(Vec::new()),
            queue: Mutex::new(Vec::new()),
            bell,
            watched,
            generation: crate::process::fork::generation(),
        });
        let drain = Drain {
            mailbox: Arc::clone(&mailbox),
        };
        event_loop.call_method1("add_reader", (mailbox.watched.as_raw_fd(), drain))?;
        Ok(mailbox)
    }

    /// On the loop's thread: hold `job` until this turn of the loop ends.
    fn send_off(self: &Arc<Self>, event_loop: &Bound<'_, PyAny>, job: Job) -> PyResult<()> {
        let first = {
            let mut outbox = self.outbox.lock();
            outbox.push(job);
            outbox.len() == 1
        };
        if first {
            let flush = Flush {
                mailbox: Arc::clone(self),
            };
            event_loop.call_method1(intern!(event_loop.py(), "call_soon"), (flush,))?;
        }
        Ok(())
    }

    /// On the loop's thread, when the turn ends: the held jobs go to the runtime as one task.
    fn flush(&self) {
        let mut jobs = std::mem::take(&mut *self.outbox.lock());
        if jobs.len() == 1 {
            runtime().spawn(jobs.pop().expect("one job"));
        } else {
            let mut all: FuturesUnordered<Job> = jobs.into_iter().collect();
            runtime().spawn(async move { while all.next().await.is_some() {} });
        }
    }

    /// From a runtime thread: queue a settlement, and ring if nothing was queued.
    fn post(&self, settlement: Settlement) {
        let first = {
            let mut queue = self.queue.lock();
            queue.push(settlement);
            queue.len() == 1
        };
        if first {
            // A full socket buffer means the loop has a ring pending already; any other
            // failure means the loop is gone, and with it everyone waiting.
            let _ = (&self.bell).write(&[1]);
        }
    }

    /// On the loop's thread: settle every queued call. The bell is silenced first, so a call
    /// queued after the take rings again. One call that cannot be settled never strands the
    /// others: its failure is reported as unraisable and the loop goes on.
    fn drain(&self, py: Python<'_>) {
        let mut rings = [0u8; 64];
        while matches!((&self.watched).read(&mut rings), Ok(n) if n > 0) {}
        let settled = std::mem::take(&mut *self.queue.lock());
        for Settlement { future, outcome } in settled {
            let future = future.bind(py);
            if let Err(err) = settle(py, future, outcome) {
                err.write_unraisable(py, Some(future));
            }
        }
    }

    /// Stop watching the bell when the loop is still open (a new loop took over this thread).
    fn retire(&self, py: Python<'_>) {
        let event_loop = self.event_loop.bind(py).call0();
        if let Some(event_loop) = event_loop.ok().filter(|l| !l.is_none()) {
            let closed = event_loop
                .call_method0("is_closed")
                .and_then(|c| c.is_truthy());
            if matches!(closed, Ok(false)) {
                let _ = event_loop.call_method1("remove_reader", (self.watched.as_raw_fd(),));
            }
        }
    }
}

/// Settle one call's asyncio future with its outcome: a future already done (cancelled, or
/// settled by someone else) is left alone; a panic while converting the reply becomes an
/// exception; a value or exception the future refuses (`set_exception(StopIteration())` raises
/// `TypeError`) is replaced by that refusal.
fn settle(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: Outcome) -> PyResult<()> {
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| outcome(py))).unwrap_or_else(|_| {
        Err(PyRuntimeError::new_err(
            "a bug in django-redis-rs: a panic while converting the reply",
        ))
    });
    let refused = match result {
        Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
        Err(err) => future.call_method1(intern!(py, "set_exception"), (err.into_value(py),)),
    };
    match refused {
        Ok(_) => Ok(()),
        Err(err) => future
            .call_method1(intern!(py, "set_exception"), (err.into_value(py),))
            .map(drop),
    }
}

/// The callback that ends a turn's calls to the runtime.
#[pyclass(frozen, module = "django_redis_rs._native")]
struct Flush {
    mailbox: Arc<Mailbox>,
}

#[pymethods]
impl Flush {
    fn __call__(&self) {
        self.mailbox.flush()
    }
}

/// The callback the loop runs when the bell rings.
#[pyclass(frozen, module = "django_redis_rs._native")]
struct Drain {
    mailbox: Arc<Mailbox>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        self.mailbox.drain(py)
    }
}

thread_local! {
    /// The mailbox of the loop last seen on this thread (an event loop runs on one thread).
    static MAILBOX: RefCell<Option<Arc<Mailbox>>> = const { RefCell::new(None) };
}

/// This thread's running loop's mailbox, made when the loop is new to the thread.
fn mailbox_for(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Mailbox>> {
    let py = event_loop.py();
    let cached = MAILBOX.with(|cell| cell.borrow().clone());
    if let Some(mailbox) = cached.filter(|m| m.generation == crate::process::fork::generation()) {
        if mailbox.event_loop.bind(py).call0()?.is(event_loop) {
            return Ok(mailbox);
        }
        mailbox.retire(py);
    }
    let mailbox = Mailbox::new(event_loop)?;
    MAILBOX.with(|cell| *cell.borrow_mut() = Some(Arc::clone(&mailbox)));
    Ok(mailbox)
}

/// An awaitable that already holds `value`: for answers that need no trip to the runtime (a
/// local cache hit).
pub fn settled<'py>(py: Python<'py>, value: Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    future.call_method1(intern!(py, "set_result"), (value,))?;
    Ok(future)
}

/// Run `work` on the runtime and return an asyncio future for its result, converted by
/// `convert` on the event loop's thread when the loop settles it (with the other calls finished
/// by then). Cancelling the asyncio future leaves the Redis exchange to finish on its own: the
/// multiplexed connection reads the reply, so no half-read reply is left behind for the next
/// caller.
pub fn awaitable<'py, T: Send + 'static>(
    py: Python<'py>,
    work: impl Future<Output = Result<T>> + Send + 'static,
    convert: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    let mailbox = mailbox_for(&event_loop)?;
    let target = future.clone().unbind();
    let reply_to = Arc::clone(&mailbox);
    let job = async move {
        // A panic in the work comes back as an error, so the asyncio future is always settled.
        let outcome = match CatchUnwind(Box::pin(work)).await {
            Ok(outcome) => outcome,
            Err(()) => Err(Error::new(
                ErrorKind::Connection,
                "the async call failed: a bug in django-redis-rs (a panic)",
            )),
        };
        reply_to.post(Settlement {
            future: target,
            outcome: Box::new(move |py| outcome.map_err(PyErr::from).and_then(|v| convert(py, v))),
        });
    };
    mailbox.send_off(&event_loop, Box::pin(job))?;
    Ok(future)
}
