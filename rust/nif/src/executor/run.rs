//! Running one request on an executor: start the job (unless cancelled), run its Python code
//! in the job's namespace, and reply through the job state machine. Executor threads; takes
//! the GIL for the job and releases it before returning.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use erlang_python_core::native::Interrupted;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::env::SavedTerm;
use rustler::{Env, OwnedEnv, Term};

use super::aio::{self, Prepared};
use super::fair::{self, Usage};
use super::job::{Body, JobInner, Request, Target};
use super::python;
use super::slot::Slot;
use crate::bridge::{self, reply::panic_message, Outcome};

/// The env and reply tag of a request while an executor runs it.
struct RunningTerms {
    env: RefCell<OwnedEnv>,
    reference: SavedTerm,
    /// A call's arguments once the call has returned, freed after the reply (see
    /// [`call_resolved`]).
    spent: RefCell<Option<Spent>>,
}

/// A call's positional and keyword arguments.
type Spent = (Py<PyTuple>, Py<PyDict>);

impl RunningTerms {
    /// Copies the request's `Ref` into `dst`; `env` is this request's env, borrowed.
    fn reference_in<'a>(&self, env: &OwnedEnv, dst: Env<'a>) -> Term<'a> {
        env.run(|src| self.reference.load(src).in_env(dst))
    }
}

thread_local! {
    /// The requests this executor is running, innermost last (nested ones run during callbacks).
    static RUNNING_TERMS: RefCell<Vec<Rc<RunningTerms>>> = const { RefCell::new(Vec::new()) };
}

/// Copies the reply tag (`Ref`) of the request this executor is running into `dst`, so that a
/// callback message can carry it; `None` off an executor. Only callbacks pay for this.
pub fn copy_running_reference<'a>(dst: Env<'a>) -> Option<Term<'a>> {
    let terms = RUNNING_TERMS.with(|r| r.borrow().last().cloned())?;
    let env = terms.env.borrow();
    Some(terms.reference_in(&env, dst))
}

/// Where a request came from: the pool's shared queue (counted in `queued` until it runs) or
/// the executor's private channel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The pool's queue.
    Queue,
    /// The executor's own channel (a context's request, or one nested in a callback).
    Private,
}

/// Whether the executor holds the GIL when it starts a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Gil {
    /// It does not (its loop): it takes the GIL through the turnstile ([`fair`]).
    Released,
    /// It does (a request nested in a callback wait, run between two waits).
    Held,
}

/// Runs `request` on `slot`'s thread (from its queue, or nested in a callback wait).
pub fn run(slot: &Arc<Slot>, request: Request, from: Source, gil: Gil) {
    let Request {
        job,
        env,
        reference,
        body,
    } = request;
    let job = job.inner().clone();
    let counters = slot.counters();
    let started = job.start(slot.clone());
    // `running` goes up before `queued` goes down: a request never looks finished (both at
    // 0 in the pool's statistics) between leaving the queue and starting.
    if started {
        counters.running.fetch_add(1, Ordering::Relaxed);
    }
    if from == Source::Queue {
        counters.queued.fetch_sub(1, Ordering::Relaxed);
    }
    if !started {
        return;
    }
    // Reachable from callbacks made while the job runs (see `copy_running_reference`).
    let terms = Rc::new(RunningTerms {
        env: RefCell::new(env),
        reference,
        spent: RefCell::new(None),
    });
    let body = |py: Python<'_>| {
        // Nested requests (served while waiting for a callback) restore the outer job.
        let outer = slot.enter(job.clone());
        // A cancel that landed between `start` and `enter` found no current job to interrupt;
        // now that the job is current (under the slot's lock, which the interrupter also
        // takes), a later cancel will find it, and an earlier one is seen here.
        let outcome = if job.is_cancelled() {
            Some(Outcome::Done)
        } else if counters.stopped.load(Ordering::Acquire) {
            Some(Outcome::Stopped)
        } else {
            RUNNING_TERMS.with(|r| r.borrow_mut().push(terms.clone()));
            // The request's own `contextvars` context, entered around everything that runs
            // its Python code (left again even when that panics).
            let result = python::in_request_context(py, job.namespace().map(|ns| &**ns), || {
                catch_unwind(AssertUnwindSafe(|| execute(py, &job, &terms, &body)))
            });
            RUNNING_TERMS.with(|r| r.borrow_mut().pop());
            let result = result.unwrap_or_else(|err| Ok(Err(err)));
            match result {
                Ok(Ok(outcome)) => outcome,
                // Interrupted because the pool is stopping: say so plainly.
                Ok(Err(err))
                    if err.is_instance_of::<Interrupted>(py)
                        && counters.stopped.load(Ordering::Acquire) =>
                {
                    Some(Outcome::Stopped)
                }
                Ok(Err(err)) => Some(Outcome::Raised(err)),
                Err(panic) => {
                    let message = panic_message(&panic);
                    log::error!(
                        "a job panicked on an executor (the caller gets an internal error): \
                         {message}"
                    );
                    Some(Outcome::Panicked(message))
                }
            }
        };
        slot.leave(py, outer, &job);
        // Before the reply: a caller that reads the pool's counters once it has its reply
        // must not count its own job as running.
        counters.running.fetch_sub(1, Ordering::Relaxed);
        // `None`: the asyncio loop replies when the coroutine is done.
        if let Some(outcome) = outcome {
            if job.commit_reply() {
                let mut env = terms.env.borrow_mut();
                bridge::reply::send(py, &mut env, job.caller(), &terms.reference, outcome);
            }
        }
        // With the GIL, once the caller has its reply.
        drop(terms.spent.borrow_mut().take());
    };
    match gil {
        Gil::Released => fair::attach(Usage::of(job.caller()), body),
        Gil::Held => Python::attach(body),
    }
}

/// Runs the Python code of `body`; `None` when the job was handed to the asyncio loop (an
/// `Async` job's awaitable, or the coroutine a call or an eval returned).
fn execute<'py>(
    py: Python<'py>,
    job: &Arc<JobInner>,
    terms: &RunningTerms,
    body: &Body,
) -> PyResult<Option<Outcome<'py>>> {
    let namespace = python::namespace(py, job.namespace().map(|ns| &**ns))?;
    let env = terms.env.borrow();
    Ok(Some(match body {
        Body::Call {
            target,
            args,
            kwargs,
        } => {
            let callable = resolve(py, &namespace, &env, target)?;
            let value = call_resolved(py, &env, &callable, args, kwargs, &terms.spent)?;
            if aio::is_coroutine(py, &value)? {
                defer(py, job, terms, &env, value, None)?;
                if job.namespace().is_none() {
                    aio::learn(py, &env, target, &callable);
                }
                return Ok(None);
            }
            Outcome::Value(value)
        }
        Body::Async {
            target,
            args,
            kwargs,
            stream,
        } => {
            let callable = resolve(py, &namespace, &env, target)?;
            let value = call_resolved(py, &env, &callable, args, kwargs, &terms.spent)?;
            if aio::is_native_awaitable(py, &value, *stream)? {
                defer(py, job, terms, &env, value, Some(*stream))?;
                // Handed over: no interrupt reaches this job any more. The next call of the
                // same `async def` may go straight to the loop.
                if !*stream && job.namespace().is_none() {
                    aio::learn(py, &env, target, &callable);
                }
                return Ok(None);
            }
            match aio::prepare(py, value, *stream)? {
                Prepared::Ready(value) => Outcome::Value(value),
                Prepared::Deferred(work) => {
                    defer(py, job, terms, &env, work, None)?;
                    return Ok(None);
                }
            }
        }
        Body::Eval { code, locals } => {
            let locals = bridge::request::locals(py, &env, locals)?;
            let value = bridge::request::with_code(&env, code, |source| {
                python::eval(py, &namespace, source, &locals)
            })?;
            if aio::is_coroutine(py, &value)? {
                defer(py, job, terms, &env, value, None)?;
                return Ok(None);
            }
            Outcome::Value(value)
        }
        Body::Exec { code } => {
            bridge::request::with_code(&env, code, |source| python::exec(py, &namespace, source))?;
            Outcome::Done
        }
        Body::Next { handle, max } => {
            let Some(handle) = handle else {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "expected a generator handle",
                ));
            };
            let (items, done) = python::take(handle.object(py), *max)?;
            Outcome::Items(items, done)
        }
    }))
}

/// Hands `work` (an awaitable; with `stream`, an `Async` job's raw result, see
/// [`aio::schedule`]) to the asyncio loop, which replies to the job's caller when it is done
/// (`py:async_call`'s way, for any job whose result must be awaited).
fn defer(
    py: Python<'_>,
    job: &Arc<JobInner>,
    terms: &RunningTerms,
    env: &OwnedEnv,
    work: Bound<'_, PyAny>,
    stream: Option<bool>,
) -> PyResult<()> {
    let owned = OwnedEnv::new();
    let reference = owned.run(|dst| owned.save(terms.reference_in(env, dst)));
    aio::schedule(py, job, owned, reference, work, stream)
}

fn resolve<'py>(
    py: Python<'py>,
    namespace: &Bound<'py, PyDict>,
    env: &OwnedEnv,
    target: &Target,
) -> PyResult<Bound<'py, PyAny>> {
    bridge::request::with_names(env, &target.module, &target.function, |m, f| {
        python::resolve(py, namespace, m, f)
    })
}

/// Calls `callable` with the request's arguments. The arguments are left in `spent`, to be
/// freed once the caller has its reply: freeing a big argument (the 10k objects of a 10k-int
/// list) takes as long as a good part of making it, and the caller need not wait for it.
/// Python's own calls keep their arguments alive past the call in the caller's frame too.
fn call_resolved<'py>(
    py: Python<'py>,
    env: &OwnedEnv,
    callable: &Bound<'py, PyAny>,
    args: &SavedTerm,
    kwargs: &SavedTerm,
    spent: &RefCell<Option<Spent>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (args, kwargs) = bridge::request::call_arguments(py, env, args, kwargs)?;
    let result = python::call(callable, args.clone(), &kwargs);
    *spent.borrow_mut() = Some((args.unbind(), kwargs.unbind()));
    result
}
