//! The async side: one tokio runtime per process (made on first use, and made again in a forked
//! child, whose copy of the parent's runtime has no threads), and the bridge that turns a Rust
//! future into an asyncio future on the caller's event loop.

use crate::errors::{Error, ErrorKind, Result};
use crate::fork::ForkLocal;
use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::cell::RefCell;
use std::future::Future;
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

/// Finished calls waiting for their event loop. Settling each call with its own
/// `call_soon_threadsafe` costs a GIL hand-off and a loop wake-up per call; here the first call
/// to finish wakes the loop once, and the loop settles every call finished by then.
struct Mailbox {
    /// A weak reference to the loop: the mailbox must not keep a closed loop alive.
    event_loop: Py<PyAny>,
    queue: Mutex<Vec<Settlement>>,
}

impl Mailbox {
    /// From a runtime thread: queue a settlement, and wake the loop if nothing was queued.
    fn post(self: &Arc<Self>, settlement: Settlement) {
        let first = {
            let mut queue = self.queue.lock();
            queue.push(settlement);
            queue.len() == 1
        };
        if !first {
            return; // a wake-up is already on its way
        }
        Python::attach(|py| {
            let drain = Drain {
                mailbox: Arc::clone(self),
            };
            let woke = (|| -> PyResult<()> {
                let event_loop = self.event_loop.bind(py).call0()?;
                if event_loop.is_none() {
                    return Ok(());
                }
                event_loop.call_method1("call_soon_threadsafe", (Py::new(py, drain)?,))?;
                Ok(())
            })();
            if woke.is_err() {
                // The loop is closed (or gone): nobody is left to tell.
                self.queue.lock().clear();
            }
        });
    }

    /// On the loop's thread: settle every queued call (cancelled futures are left alone).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        let settled = std::mem::take(&mut *self.queue.lock());
        for Settlement { future, outcome } in settled {
            let future = future.bind(py);
            if future.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
                continue;
            }
            match outcome(py) {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,))?,
                Err(err) => {
                    future.call_method1(intern!(py, "set_exception"), (err.into_value(py),))?
                }
            };
        }
        Ok(())
    }
}

/// The callback a wake-up schedules on the loop.
#[pyclass(frozen, module = "django_redis_rs._native")]
struct Drain {
    mailbox: Arc<Mailbox>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
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
    if let Some(mailbox) = cached {
        if mailbox.event_loop.bind(py).call0()?.is(event_loop) {
            return Ok(mailbox);
        }
    }
    let weak = py
        .import("weakref")?
        .getattr("ref")?
        .call1((event_loop,))?
        .unbind();
    let mailbox = Arc::new(Mailbox {
        event_loop: weak,
        queue: Mutex::new(Vec::new()),
    });
    MAILBOX.with(|cell| *cell.borrow_mut() = Some(Arc::clone(&mailbox)));
    Ok(mailbox)
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
    runtime().spawn(async move {
        // A panic in the work comes back as an error, so the asyncio future is always settled.
        let outcome = match CatchUnwind(Box::pin(work)).await {
            Ok(outcome) => outcome,
            Err(()) => Err(Error::new(
                ErrorKind::Connection,
                "the async call failed: a bug in django-redis-rs (a panic)",
            )),
        };
        mailbox.post(Settlement {
            future: target,
            outcome: Box::new(move |py| outcome.map_err(PyErr::from).and_then(|v| convert(py, v))),
        });
    });
    Ok(future)
}
