//! `py:async_call` and `py:async_stream`: jobs whose result is finished on an asyncio loop.
//!
//! An `Async` job runs like a call on an executor; when the result is awaitable (or, for a
//! stream, an async iterable) the executor hands it to `erlang._aio.schedule` together with an
//! [`AsyncReply`] and goes back to its queue without replying. A `Call` or `Eval` job whose
//! result is a coroutine ([`is_coroutine`]: `py:call` of an `async def`) is handed over the
//! same way, so that it is awaited rather than returned as a handle nobody can await. The coroutine then runs on the
//! loop thread of `erlang._aio`, and its outcome is sent to the Erlang caller through the
//! `AsyncReply`, from that thread, as the one `{Ref, Reply}` message the job ever sends: the
//! job state machine (docs/architecture.md, invariant 5) still decides, so a caller that timed out or died
//! gets nothing, and cancelling the job cancels the coroutine's task (the hook runs on
//! `python-main`, which may take the GIL; the cancelling scheduler never does).

use std::sync::{Arc, Mutex};

use erlang_python_core::convert::is_plain_value;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use rustler::env::SavedTerm;
use rustler::OwnedEnv;

use super::job::JobInner;
use crate::bridge::{self, Outcome};

static PREPARE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SCHEDULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static COROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static COROUTINE_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASYNC_GENERATOR_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Whether `value`, the result of a call or an eval, is a coroutine (`collections.abc.Coroutine`:
/// native coroutines and those of compiled code such as Cython's). Only coroutines: a generator
/// still streams, and other awaitables (futures, tasks) stay values that may be passed around.
/// The common results (numbers, strings, containers, `None`) are told apart with no Python call,
/// and a native coroutine by its type alone: the ABC's check may run Python code (its subclass
/// hook, once per type), where an interrupt would lose the coroutine before it is handed over.
pub fn is_coroutine(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_none() || is_plain_value(value) {
        return Ok(false);
    }
    if is_native(py, value, &COROUTINE_TYPE, "CoroutineType")? {
        return Ok(true);
    }
    let coroutine = COROUTINE.import(py, "collections.abc", "Coroutine")?;
    value.is_instance(coroutine)
}

/// Whether an `Async` job's result needs the loop and can be told so by its type alone, with no
/// Python code run: a native coroutine, or for a stream also a native async generator. Such a
/// result is handed over before `erlang._aio` looks at it, so an interrupt cannot lose it.
pub fn is_native_awaitable(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    stream: bool,
) -> PyResult<bool> {
    Ok(is_native(py, value, &COROUTINE_TYPE, "CoroutineType")?
        || (stream && is_native(py, value, &ASYNC_GENERATOR_TYPE, "AsyncGeneratorType")?))
}

fn is_native(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    cell: &PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<bool> {
    Ok(value.get_type().is(cell.import(py, "types", name)?))
}

/// What `erlang._aio.prepare` made of an `Async` job's result.
pub enum Prepared<'py> {
    /// A value that needs no loop: the job's result at once.
    Ready(Bound<'py, PyAny>),
    /// Work for the loop ([`schedule`]).
    Deferred(Bound<'py, PyAny>),
}

/// Asks `erlang._aio.prepare` whether `value` (the result of an `Async` job's call) needs the
/// loop.
pub fn prepare<'py>(
    py: Python<'py>,
    value: Bound<'py, PyAny>,
    stream: bool,
) -> PyResult<Prepared<'py>> {
    let prepared = PREPARE
        .import(py, "erlang._aio", "prepare")?
        .call1((value, stream))?;
    let (deferred, work): (bool, Bound<'py, PyAny>) = prepared.extract()?;
    Ok(if deferred {
        Prepared::Deferred(work)
    } else {
        Prepared::Ready(work)
    })
}

/// Hands `work` to the loop (`erlang._aio.schedule`) with the job's [`AsyncReply`]; `env` owns
/// `reference`, the caller's `Ref`. With `stream`, `work` is an `Async` job's raw result (a
/// native coroutine or async generator, [`is_native_awaitable`]), which `erlang._aio` prepares
/// as [`prepare`] would, after the hand-over.
pub fn schedule(
    py: Python<'_>,
    job: &Arc<JobInner>,
    env: OwnedEnv,
    reference: SavedTerm,
    work: Bound<'_, PyAny>,
    stream: Option<bool>,
) -> PyResult<()> {
    // From here a cancel stops the coroutine through the hook `erlang._aio.schedule`
    // registers (at once if the job is already cancelled), never by interrupting this
    // executor in the middle of the hand-over.
    job.hand_over(py);
    let handle = Bound::new(
        py,
        AsyncReply {
            pending: Mutex::new(Some(Pending {
                job: job.clone(),
                env,
                reference,
            })),
        },
    )?;
    SCHEDULE
        .import(py, "erlang._aio", "schedule")?
        .call1((work, handle, stream))?;
    Ok(())
}

/// What a deferred job needs to reply: the job and its caller's `Ref`.
struct Pending {
    job: Arc<JobInner>,
    env: OwnedEnv,
    reference: SavedTerm,
}

/// The reply of a deferred `py:async_call` job, used once by the coroutine that finishes it.
#[pyclass(frozen, module = "erlang._native", name = "AsyncReply")]
pub struct AsyncReply {
    pending: Mutex<Option<Pending>>,
}

impl AsyncReply {
    fn send(&self, py: Python<'_>, outcome: Outcome<'_>) -> bool {
        let Some(mut pending) = self.pending.lock().ok().and_then(|mut p| p.take()) else {
            return false;
        };
        if !pending.job.commit_reply() {
            return false;
        }
        let caller = *pending.job.caller();
        bridge::reply::send(py, &mut pending.env, &caller, &pending.reference, outcome)
    }
}

#[pymethods]
impl AsyncReply {
    /// Replies `{ok, Value}` (converted as a call's result); false when the caller stopped
    /// waiting or the job was already answered.
    fn resolve(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> bool {
        self.send(py, Outcome::Value(value))
    }

    /// Replies with the error of `exc`, as a failed call does.
    fn fail(&self, py: Python<'_>, exc: Bound<'_, PyAny>) -> bool {
        self.send(py, Outcome::Raised(PyErr::from_value(exc)))
    }

    /// Sets the function called (with no arguments, on another thread) if the Erlang caller
    /// stops waiting before the reply; called at once if it already has.
    fn on_cancel(&self, py: Python<'_>, hook: Bound<'_, PyAny>) {
        let job = self
            .pending
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.job.clone()));
        if let Some(job) = job {
            job.set_cancel_hook(py, hook.unbind());
        }
    }

    /// True once the Erlang caller stopped waiting (timed out or died).
    #[getter]
    fn cancelled(&self) -> bool {
        self.pending
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.job.is_cancelled()))
            .unwrap_or(true)
    }

    fn __repr__(&self) -> &'static str {
        "<erlang._native.AsyncReply>"
    }
}
