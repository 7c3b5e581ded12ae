//! A job and its typed request: the state machine that decides whether a reply is ever sent
//! (docs/architecture.md, invariant 5), and the [`Request`] that carries a job to an executor.
//!
//! A job moves `QUEUED -> RUNNING -> REPLIED`, or to `CANCELLED` when the Erlang caller gives
//! up (timeout) or dies (its resource monitors the caller). Whoever wins that race decides
//! whether a reply is ever sent, so no late reply reaches a caller that stopped waiting.
//! Touched by the caller's scheduler (cancel), the executor (start, reply) and `python-main`
//! (interrupts); none of it waits for the GIL.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use rustler::env::SavedTerm;
use rustler::{Env, LocalPid, OwnedEnv, ResourceArc};

use super::python::Namespace;
use crate::bridge::PyObjectResource;
use crate::interp;

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;
const REPLIED: u8 = 3;

/// What a job needs of the executor that runs it (implemented by `Slot`). Kept abstract so
/// that the job does not depend on the executor's thread machinery.
pub trait Runner: Send + Sync {
    /// Makes the executor look again at its job (it was cancelled while the executor waits
    /// for a callback reply).
    fn wake(&self);
    /// On `python-main`, with the GIL: stops `job` if this executor still runs it (at the
    /// next point where an exception is safe).
    fn interrupt_if_running(self: Arc<Self>, py: Python<'_>, job: Arc<JobInner>);
    /// Hands the executor the result of its callback `id`; false when it has exited.
    fn callback_result(&self, id: u64, env: OwnedEnv, term: SavedTerm) -> bool;
    /// Runs `request` on this executor, nested in the job it runs (it is waiting for a
    /// callback the caller of `request` serves); false when it has exited.
    fn run_nested(&self, request: Request) -> bool;
    /// Stops `job` without `python-main` (which needs the main interpreter's GIL): true when
    /// this runner did it (or handed it to a thread of its own, without waiting). Executors
    /// of the main interpreter cannot; the sub-interpreter workers can.
    fn interrupt_without_main(&self, _job: &Arc<JobInner>) -> bool {
        false
    }
    /// The executor, with the GIL, hands `job` to the asyncio loop: marks it handed over
    /// ([`JobInner::mark_handed_over`]) atomically with respect to this runner's interrupts,
    /// and drops an interrupt of `job` that became pending before, so that none lands in the
    /// hand-over itself.
    fn hand_over(&self, _py: Python<'_>, job: &Arc<JobInner>) {
        job.mark_handed_over();
    }
}

/// The shared state of one job, seen by the caller's resource, its executor and the
/// interrupter.
pub struct JobInner {
    state: AtomicU8,
    runner: OnceLock<Arc<dyn Runner>>,
    /// The Erlang process waiting for the reply.
    caller: LocalPid,
    /// Where the job's callback requests go: the caller, until it hands them to the process
    /// running the job's callback functions (`job_route_callbacks/2`). Held while a callback
    /// request is sent and while the job is cancelled, so that once `cancel` returns, every
    /// callback request of the job is already in a mailbox (where `py` flushes it, or with a
    /// process that is killed) or will never be sent.
    callbacks_to: Mutex<LocalPid>,
    /// The private namespace of the context the job runs in; `None` for `__main__`'s.
    namespace: Option<Arc<Namespace>>,
    /// Called (on `python-main`, with the GIL) when the job is cancelled after its executor
    /// handed it to the asyncio loop (`py:async_call`): cancels the coroutine's task.
    cancel_hook: Mutex<Option<Py<PyAny>>>,
    /// Set before the executor hands the job's coroutine to the loop: from then on the cancel
    /// hook alone stops it. An interrupt landing in the hand-over itself (the task started,
    /// its hook not registered yet) would lose the coroutine, so the executor is never
    /// interrupted for it.
    handed_over: AtomicBool,
}

/// What `job_cancel/1` tells the caller.
pub enum CancelOutcome {
    /// No reply will ever be sent.
    Cancelled,
    /// The reply is sent or about to be: receive it.
    Replied,
}

impl JobInner {
    /// The namespace the job runs in (requests nested in its callbacks run there too).
    pub fn namespace(&self) -> Option<&Arc<Namespace>> {
        self.namespace.as_ref()
    }

    /// Runs `send` with the process that serves the job's callbacks, unless the job is
    /// cancelled, atomically with respect to [`Self::cancel`]; false when cancelled.
    pub fn send_callback(&self, send: impl FnOnce(&LocalPid) -> bool) -> bool {
        let Ok(to) = self.callbacks_to.lock() else {
            return false;
        };
        !self.is_cancelled() && send(&to)
    }

    /// Sends the job's later callback requests to `pid` instead of the caller.
    pub fn route_callbacks(&self, pid: LocalPid) {
        if let Ok(mut to) = self.callbacks_to.lock() {
            *to = pid;
        }
    }

    /// The process waiting for this job.
    pub fn caller(&self) -> &LocalPid {
        &self.caller
    }

    /// The executor running (or that ran) the job.
    pub fn runner(&self) -> Option<&Arc<dyn Runner>> {
        self.runner.get()
    }

    /// Moves a queued job to `RUNNING` on `runner`; false when it was cancelled first.
    pub(crate) fn start(&self, runner: Arc<dyn Runner>) -> bool {
        let _ = self.runner.set(runner);
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Starts a queued job on the asyncio loop's thread, handed over from the start (a
    /// `py:async_call` of an `async def` submitted straight to the loop, no executor): a
    /// cancel then runs the cancel hook only. False when it was cancelled first.
    pub(crate) fn start_on_loop(&self) -> bool {
        self.mark_handed_over();
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// True once the caller gave up on the job.
    pub fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }

    /// Hands the job to the asyncio loop (called by its executor, with the GIL): from now on
    /// a cancel no longer interrupts the executor, it runs the hook set by
    /// [`Self::set_cancel_hook`] (now or when it is set). An interrupt of the job already
    /// pending is dropped by the runner ([`Runner::hand_over`]).
    pub fn hand_over(self: &Arc<Self>, py: Python<'_>) {
        match self.runner.get() {
            Some(runner) => runner.hand_over(py, self),
            None => self.mark_handed_over(),
        }
    }

    /// Sets the flag [`Self::hand_over`] stands for; runners call it under their own lock.
    pub(crate) fn mark_handed_over(&self) {
        self.handed_over.store(true, Ordering::Release);
    }

    /// True once the job was handed to the asyncio loop.
    pub(crate) fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Acquire)
    }

    /// Sets the hook that cancels the job's coroutine; calls it at once when the job is
    /// already cancelled.
    pub fn set_cancel_hook(&self, py: Python<'_>, hook: Py<PyAny>) {
        let now = {
            let Ok(mut slot) = self.cancel_hook.lock() else {
                return;
            };
            if self.is_cancelled() {
                Some(hook)
            } else {
                *slot = Some(hook);
                None
            }
        };
        if let Some(hook) = now {
            call_hook(py, &hook);
        }
    }

    /// Moves a running job to `REPLIED`; false when it was cancelled (or already replied).
    pub fn commit_reply(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, REPLIED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives up on the job: a queued job never runs, a running one is interrupted (by
    /// `python-main`, which may wait for the GIL; the cancelling scheduler never does).
    pub fn cancel(self: &Arc<Self>) -> CancelOutcome {
        let _guard = self.callbacks_to.lock();
        loop {
            let state = self.state.load(Ordering::Acquire);
            let outcome = match state {
                QUEUED | RUNNING => self.state.compare_exchange(
                    state,
                    CANCELLED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ),
                REPLIED => return CancelOutcome::Replied,
                _ => return CancelOutcome::Cancelled,
            };
            if outcome.is_ok() {
                if state == RUNNING {
                    self.interrupt();
                }
                return CancelOutcome::Cancelled;
            }
        }
    }

    fn interrupt(self: &Arc<Self>) {
        let hook = self.cancel_hook.lock().ok().and_then(|mut h| h.take());
        if let Some(hook) = hook {
            interp::run_on_main(Box::new(move |py| call_hook(py, &hook)));
        }
        if self.handed_over.load(Ordering::Acquire) {
            return;
        }
        let Some(runner) = self.runner.get().cloned() else {
            return;
        };
        if runner.interrupt_without_main(self) {
            return;
        }
        let job = self.clone();
        let target = runner.clone();
        interp::run_on_main(Box::new(move |py| target.interrupt_if_running(py, job)));
        // An executor waiting for a callback reply of this job (or of an outer job, with a
        // nested one running) checks for cancellation when woken.
        runner.wake();
    }
}

/// Calls a cancel hook; an exception it raises is reported as unraisable.
fn call_hook(py: Python<'_>, hook: &Py<PyAny>) {
    if let Err(err) = hook.call0(py) {
        err.write_unraisable(py, Some(hook.bind(py)));
    }
}

/// The resource an Erlang caller holds for its job. It monitors the caller: when the caller
/// dies, the job is cancelled (docs/architecture.md, invariant 5).
pub struct JobResource {
    inner: Arc<JobInner>,
}

#[rustler::resource_impl]
impl rustler::Resource for JobResource {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: rustler::Monitor) {
        self.inner.cancel();
    }
}

impl JobResource {
    /// Cancels the job (see [`JobInner::cancel`]).
    pub fn cancel(&self) -> CancelOutcome {
        self.inner.cancel()
    }

    /// The shared job state.
    pub fn inner(&self) -> &Arc<JobInner> {
        &self.inner
    }
}

/// A module and function to call (`Function` may be dotted: `Class.method`): binaries saved
/// in the request's env (no allocation of their own: the scheduler that makes the request and
/// the executor that runs it would allocate and free across threads); the executor checks
/// them as UTF-8 when it resolves them.
pub struct Target {
    /// The module's name, a binary.
    pub module: SavedTerm,
    /// The function's name, possibly dotted, a binary.
    pub function: SavedTerm,
}

/// What a request asks for, decoded and checked once on the caller's scheduler. The terms
/// that still need the GIL to become Python objects are saved in the request's env.
pub enum Body {
    /// `Module:Function(*Args, **Kwargs)`.
    Call {
        /// What to call.
        target: Target,
        /// A list.
        args: SavedTerm,
        /// A map.
        kwargs: SavedTerm,
    },
    /// A call whose awaitable result (or, with `stream`, async iterable) is finished on the
    /// asyncio loop of `erlang._aio`, which replies when it is done (`py:async_call`,
    /// `py:async_stream`).
    Async {
        /// What to call.
        target: Target,
        /// A list.
        args: SavedTerm,
        /// A map.
        kwargs: SavedTerm,
        /// Collect an async iterable instead of awaiting one value.
        stream: bool,
    },
    /// `eval(Code)` after merging `Locals` into the namespace.
    Eval {
        /// A binary.
        code: SavedTerm,
        /// A map.
        locals: SavedTerm,
    },
    /// `exec(Code)`.
    Exec {
        /// A binary.
        code: SavedTerm,
    },
    /// Up to `max` items of the iterator behind `handle` (`None`: the term was not a handle).
    Next {
        /// The iterator.
        handle: Option<ResourceArc<PyObjectResource>>,
        /// At least 1.
        max: usize,
    },
}

/// A job as it travels to an executor: the job, the env owning its terms, the caller's reply
/// tag (`Ref`) and what to do.
pub struct Request {
    /// The job's shared state, held by the caller too.
    pub job: ResourceArc<JobResource>,
    /// Owns `reference` and the terms of `body`.
    pub env: OwnedEnv,
    /// The `Ref` of the reply `{Ref, Reply}`.
    pub reference: SavedTerm,
    /// What to do.
    pub body: Body,
}

impl Request {
    /// Makes the job (its resource monitors the calling process) and the request around terms
    /// already saved in `env`. Runs on the caller's scheduler: bounded work, no Python.
    pub fn new(
        caller_env: Env<'_>,
        env: OwnedEnv,
        reference: SavedTerm,
        body: Body,
        namespace: Option<Arc<Namespace>>,
    ) -> Request {
        Request {
            job: JobResource::new(caller_env, namespace),
            env,
            reference,
            body,
        }
    }
}

impl JobResource {
    /// A queued job whose resource monitors the calling process. Runs on the caller's
    /// scheduler: bounded work, no Python.
    pub fn new(caller_env: Env<'_>, namespace: Option<Arc<Namespace>>) -> ResourceArc<Self> {
        let caller = caller_env.pid();
        let job = ResourceArc::new(JobResource {
            inner: Arc::new(JobInner {
                state: AtomicU8::new(QUEUED),
                runner: OnceLock::new(),
                caller,
                callbacks_to: Mutex::new(caller),
                namespace,
                cancel_hook: Mutex::new(None),
                handed_over: AtomicBool::new(false),
            }),
        });
        // A caller that is already gone gets no monitor; its reply is simply dropped.
        let _ = job.monitor(Some(caller_env), &caller);
        job
    }
}
