//! The async side: one tokio runtime per process (made on first use, and made again in a forked
//! child, whose copy of the parent's runtime has no threads), and the bridge that turns a Rust
//! future into an asyncio future on the caller's event loop.

use crate::errors::{Error, ErrorKind, Result};
use crate::fork::ForkLocal;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::future::Future;
use std::sync::LazyLock;
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

/// Called on the event loop's thread: settle the asyncio future unless it was cancelled.
#[pyfunction]
pub fn _resolve_future(
    future: &Bound<'_, PyAny>,
    ok: bool,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if future.call_method0("cancelled")?.is_truthy()? {
        return Ok(());
    }
    future.call_method1(if ok { "set_result" } else { "set_exception" }, (value,))?;
    Ok(())
}

static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Run `work` on the runtime and return an asyncio future for its result, converted by
/// `convert` (with the GIL, on a runtime thread: off the event loop). Cancelling the asyncio
/// future leaves the Redis exchange to finish on its own: the multiplexed connection reads the
/// reply, so no half-read reply is left behind for the next caller.
pub fn awaitable<'py, T: Send + 'static>(
    py: Python<'py>,
    work: impl Future<Output = Result<T>> + Send + 'static,
    convert: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let resolve = RESOLVE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(wrap_pyfunction!(_resolve_future, py)?.into_any().unbind())
        })?
        .clone_ref(py);
    let (event_loop, target) = (event_loop.unbind(), future.clone().unbind());
    runtime().spawn(async move {
        // Run the work as its own task so that a panic in it comes back as an error here and
        // the asyncio future is always settled.
        let outcome = match tokio::spawn(work).await {
            Ok(outcome) => outcome,
            Err(join) => Err(Error::new(
                ErrorKind::Connection,
                format!("the async call failed: {join}"),
            )),
        };
        Python::attach(|py| {
            let (ok, value) = match outcome.map_err(PyErr::from).and_then(|v| convert(py, v)) {
                Ok(value) => (true, value),
                Err(err) => (false, err.into_value(py).into_any()),
            };
            // A closed loop has nobody left to tell.
            let _ =
                event_loop.call_method1(py, "call_soon_threadsafe", (resolve, target, ok, value));
        });
    });
    Ok(future)
}
