//! Fork safety: state that a forked child must never inherit.
//!
//! gunicorn with `preload_app`, Celery prefork and multiprocessing fork a process that already
//! holds sockets. A child that reused them would interleave its replies with the parent's. A
//! `pthread_atfork` hook bumps a generation counter in the child; `ForkLocal` compares its stamp
//! to that counter (one atomic load) *before* taking any lock — a lock may have been held by a
//! parent thread that does not exist in the child — and starts afresh when they differ.

use arc_swap::ArcSwap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Register the fork hook (idempotent).
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handler only touches an atomic, which is async-signal-safe.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// Run `check` in a real forked child and tell whether it passed: for tests of what a child
/// inherits. The parent's state is untouched (bumping the generation in the test process would
/// reset the pools of every test running beside it). A child that panics, or hangs on a lock a
/// parent thread held, fails within 10 s.
#[cfg(test)]
pub fn in_forked_child(check: impl FnOnce() -> bool) -> bool {
    use std::time::{Duration, Instant};
    install_hook();
    // SAFETY: the child runs `check` on this thread only and leaves with `_exit`, without
    // running destructors or the test harness's hooks.
    match unsafe { libc::fork() } {
        -1 => panic!("fork failed"),
        0 => {
            let passed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
            unsafe { libc::_exit(if matches!(passed, Ok(true)) { 0 } else { 1 }) }
        }
        child => {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut status = 0;
            loop {
                // SAFETY: waiting for our own child.
                let done = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
                if done == child {
                    return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
                }
                if Instant::now() > deadline {
                    unsafe { libc::kill(child, libc::SIGKILL) };
                    unsafe { libc::waitpid(child, &mut status, 0) };
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// How many forks separate this process from the one that loaded the module.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// A value stamped with the fork generation it was made in.
pub struct Stamped<T> {
    generation: u64,
    value: T,
}

impl<T> Deref for Stamped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A value rebuilt on first use in a forked child, and on demand with `reset`.
pub struct ForkLocal<T> {
    cell: ArcSwap<Stamped<T>>,
    make: fn() -> T,
}

impl<T> ForkLocal<T> {
    pub fn new(make: fn() -> T) -> Self {
        install_hook();
        Self {
            cell: ArcSwap::from_pointee(Stamped {
                generation: generation(),
                value: make(),
            }),
            make,
        }
    }

    /// The value for this process, made afresh if it was inherited through fork.
    pub fn current(&self) -> Arc<Stamped<T>> {
        let current = self.cell.load_full();
        let now = generation();
        if current.generation == now {
            return current;
        }
        // Whoever swaps first wins; a concurrent caller then sees the fresh value.
        let fresh = Arc::new(Stamped {
            generation: now,
            value: (self.make)(),
        });
        let previous = self.cell.compare_and_swap(&current, fresh);
        if Arc::ptr_eq(&previous, &current) {
            self.cell.load_full()
        } else {
            Arc::clone(&previous)
        }
    }

    /// Run `f` on this process's value: `current` without counting a reference, for hot paths.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let value = self.cell.load();
        if value.generation == generation() {
            return f(&value.value);
        }
        drop(value);
        f(&self.current().value)
    }

    /// Replace the value; holders of the old one can tell with `is_current`.
    pub fn reset(&self) {
        self.cell.store(Arc::new(Stamped {
            generation: generation(),
            value: (self.make)(),
        }));
    }

    pub fn is_current(&self, value: &Arc<Stamped<T>>) -> bool {
        Arc::ptr_eq(&self.cell.load(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_replaces_and_is_current_tells() {
        let local = ForkLocal::new(Vec::<u8>::new);
        let first = local.current();
        assert!(local.is_current(&first));
        local.reset();
        assert!(!local.is_current(&first));
        assert!(local.is_current(&local.current()));
    }

    #[test]
    fn a_forked_child_rebuilds_and_the_parent_keeps_its_own() {
        let local = ForkLocal::new(|| 7u8);
        let before = local.current();
        let parent = Arc::as_ptr(&before) as usize;
        assert!(in_forked_child(|| {
            let after = local.current();
            Arc::as_ptr(&after) as usize != parent && Arc::ptr_eq(&after, &local.current())
        }));
        assert!(Arc::ptr_eq(&before, &local.current()));
    }
}
