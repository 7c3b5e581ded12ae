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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use erlang_python_core::convert::is_plain_value;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use rustler::env::SavedTerm;
use rustler::OwnedEnv;

use super::job::{Body, JobInner, Request, Target};
use super::python;
use crate::bridge::{self, Outcome};

static PREPARE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SCHEDULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static COROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static COROUTINE_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASYNC_GENERATOR_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FUNCTION_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static METHOD_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static START: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `inspect.CO_COROUTINE`: the code flag of an `async def`.
const CO_COROUTINE: u32 = 0x80;
/// More distinct names than this and the cache of `async def`s starts again.
const ASYNC_DEFS_LIMIT: usize = 4096;

/// Module name -> names in it (possibly dotted) that an executor found to be `async def`s, in
/// the main namespace or an imported module: a `py:async_call` of one of them is submitted
/// straight to the loop of `erlang._aio` ([`start_on_loop`]). A hint only: the loop's thread
/// checks again before it calls anything.
type AsyncDefs = HashMap<Box<[u8]>, HashSet<Box<[u8]>>>;
static ASYNC_DEFS: RwLock<Option<AsyncDefs>> = RwLock::new(None);

/// Whether an executor found `module.function` to be an `async def` (and the loop's thread
/// did not find it changed since). Any thread, no GIL: a lookup under a read lock.
pub fn is_known_async_def(module: &[u8], function: &[u8]) -> bool {
    ASYNC_DEFS.read().is_ok_and(|defs| {
        defs.as_ref()
            .and_then(|defs| defs.get(module))
            .is_some_and(|names| names.contains(function))
    })
}

fn remember_async_def(module: &[u8], function: &[u8]) {
    if let Ok(mut defs) = ASYNC_DEFS.write() {
        let defs = defs.get_or_insert_with(HashMap::new);
        if defs.values().map(HashSet::len).sum::<usize>() >= ASYNC_DEFS_LIMIT {
            defs.clear();
        }
        defs.entry(module.into())
            .or_default()
            .insert(function.into());
    }
}

fn forget_async_def(module: &[u8], function: &[u8]) {
    if let Ok(mut defs) = ASYNC_DEFS.write() {
        if let Some(names) = defs.as_mut().and_then(|defs| defs.get_mut(module)) {
            names.remove(function);
        }
    }
}

/// Whether calling `callable` does nothing but make a coroutine: a Python function (or a
/// method bound to one) whose code is an `async def`'s. Anything else (a `functools.partial`,
/// a class, an object with `__call__`, a function only marked as a coroutine function) may run
/// code, so it is called on an executor. Reads types and code flags only: no Python code runs.
fn is_async_def(py: Python<'_>, callable: &Bound<'_, PyAny>) -> PyResult<bool> {
    let function = if is_native(py, callable, &METHOD_TYPE, "MethodType")? {
        callable.getattr(intern!(py, "__func__"))?
    } else {
        callable.clone()
    };
    if !is_native(py, &function, &FUNCTION_TYPE, "FunctionType")? {
        return Ok(false);
    }
    let flags: u32 = function
        .getattr(intern!(py, "__code__"))?
        .getattr(intern!(py, "co_flags"))?
        .extract()?;
    Ok(flags & CO_COROUTINE != 0)
}

/// Called by an executor once it handed the coroutine of a `py:async_call` (or of a `py:call`)
/// to the loop:
/// remembers `target` when `callable`, what it names in the main namespace, is an `async def`,
/// so that later calls go straight to the loop.
pub fn learn(py: Python<'_>, env: &OwnedEnv, target: &Target, callable: &Bound<'_, PyAny>) {
    if !is_async_def(py, callable).unwrap_or(false) {
        return;
    }
    let _ = bridge::request::with_names(env, &target.module, &target.function, |m, f| {
        remember_async_def(m, f);
        Ok(())
    });
}

/// On the loop thread of `erlang._aio`, with the GIL: starts a `py:async_call` (or a `py:call`)
/// that was submitted straight to the loop (its target is a known `async def`, [`is_known_async_def`]).
/// The function is looked up without importing anything and checked to be an `async def`
/// still; then the job starts (unless cancelled first: nothing is sent), the arguments are
/// converted, the function is called (that only makes the coroutine) and
/// `erlang._aio.start` runs the coroutine as a task that replies through the job, as a
/// coroutine handed over by an executor does. `Err(request)`, untouched, when an executor
/// must run it instead (the name no longer names an `async def`, or its module is not
/// imported); `stopped`: the pool stopped, the caller gets `{error, stopped}`.
pub fn start_on_loop(py: Python<'_>, request: Request, stopped: bool) -> Result<(), Request> {
    let (target, args, kwargs) = match &request.body {
        Body::Call {
            target,
            args,
            kwargs,
        }
        | Body::Async {
            target,
            args,
            kwargs,
            stream: false,
        } => (target, args, kwargs),
        _ => return Err(request),
    };
    let found =
        bridge::request::with_names(&request.env, &target.module, &target.function, |m, f| {
            let callable =
                python::resolve_loaded(py, m, f).filter(|c| is_async_def(py, c).unwrap_or(false));
            if callable.is_none() {
                forget_async_def(m, f);
            }
            Ok(callable)
        });
    let Ok(Some(callable)) = found else {
        return Err(request);
    };
    let job = request.job.inner().clone();
    if !job.start_on_loop() {
        return Ok(());
    }
    let coroutine = if stopped {
        Err(None)
    } else {
        bridge::request::call_arguments(py, &request.env, args, kwargs)
            .and_then(|(args, kwargs)| python::call(&callable, args, &kwargs))
            .map_err(Some)
    };
    let Request { env, reference, .. } = request;
    let reply = AsyncReply {
        pending: Mutex::new(Some(Pending {
            job,
            env,
            reference,
        })),
    };
    match coroutine {
        Ok(coroutine) => match Bound::new(py, reply) {
            Ok(reply) => {
                let started = START
                    .import(py, "erlang._aio", "start")
                    .and_then(|start| start.call1((coroutine, &reply)));
                if let Err(err) = started {
                    reply.get().send(py, Outcome::Raised(err));
                }
            }
            Err(err) => {
                log::error!("cannot make the reply of a py:async_call: {err}");
            }
        },
        Err(Some(err)) => {
            reply.send(py, Outcome::Raised(err));
        }
        Err(None) => {
            reply.send(py, Outcome::Stopped);
        }
    }
    Ok(())
}

/// Replies `{error, stopped}` to a request that can run nowhere (its pool stopped while it
/// waited for the loop).
pub fn reply_stopped(py: Python<'_>, request: Request) {
    let Request {
        job,
        mut env,
        reference,
        ..
    } = request;
    let job = job.inner();
    if job.start_on_loop() && job.commit_reply() {
        bridge::reply::send(py, &mut env, job.caller(), &reference, Outcome::Stopped);
    }
}

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
