//! Executor threads and jobs (design.md invariants 2, 3 and 5).
//!
//! A pool owns N executor threads that pull requests from one shared crossbeam channel. Each
//! executor is one OS thread with one Python thread state for its whole life; it takes the GIL
//! per job, converts the arguments, runs the Python code, converts the result and sends the
//! reply message from its own thread through the request's owned env.
//!
//! A job moves `QUEUED -> RUNNING -> REPLIED`, or to `CANCELLED` when the Erlang caller gives up
//! (timeout) or dies (monitor). Whoever wins that race decides whether a reply is ever sent, so
//! no late reply reaches a caller that stopped waiting. Cancelling a running job asks the
//! `python-main` thread to raise `erlang.Interrupted` in the executor (it needs the GIL, which a
//! scheduler thread must never wait for).

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use erlang_python_core::callback::ErlangError;
use erlang_python_core::convert::{self, TermReader, View};
use erlang_python_core::native::Interrupted;
use pyo3::exceptions::{PyNameError, PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PyString, PyTuple};
use rustler::env::SavedTerm;
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Atom, Encoder, Env, LocalPid, OwnedEnv, ResourceArc, Term};

use crate::atoms;
use crate::interp;
use crate::term::{options, NifBuilder, NifReader};

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;
const REPLIED: u8 = 3;

/// The shared state of one job, seen by the caller's resource, its executor and the
/// interrupter.
pub struct JobInner {
    state: AtomicU8,
    slot: OnceLock<Arc<Slot>>,
    /// The Erlang process waiting for the reply (and serving the job's callbacks).
    caller: LocalPid,
    /// Held while a callback request is sent and while the job is cancelled, so that once
    /// `cancel` returns, every callback request of the job is already in the caller's mailbox
    /// (where `py` flushes it) or will never be sent.
    send_lock: Mutex<()>,
    /// The private namespace of the context the job runs in; `None` for `__main__`'s.
    namespace: Option<Arc<Namespace>>,
    /// Called (on `python-main`, with the GIL) when the job is cancelled after its executor
    /// handed it to the asyncio loop (`py:async_call`): cancels the coroutine's task.
    cancel_hook: Mutex<Option<Py<PyAny>>>,
}

/// What `job_cancel/1` tells the caller.
pub enum CancelOutcome {
    /// No reply will ever be sent.
    Cancelled,
    /// The reply is sent or about to be: receive it.
    Replied,
}

impl JobInner {
    fn new(caller: LocalPid, namespace: Option<Arc<Namespace>>) -> Self {
        JobInner {
            state: AtomicU8::new(QUEUED),
            slot: OnceLock::new(),
            caller,
            send_lock: Mutex::new(()),
            namespace,
            cancel_hook: Mutex::new(None),
        }
    }

    /// The namespace the job runs in (requests nested in its callbacks run there too).
    pub fn namespace(&self) -> Option<&Arc<Namespace>> {
        self.namespace.as_ref()
    }

    /// Runs `send` unless the job is cancelled, atomically with respect to [`Self::cancel`];
    /// false when cancelled.
    pub fn send_unless_cancelled(&self, send: impl FnOnce() -> bool) -> bool {
        let _guard = self.send_lock.lock();
        !self.is_cancelled() && send()
    }

    /// The process waiting for this job.
    pub fn caller(&self) -> &LocalPid {
        &self.caller
    }

    /// The executor running (or that ran) the job.
    pub fn slot(&self) -> Option<&Arc<Slot>> {
        self.slot.get()
    }

    fn start(&self, slot: &Arc<Slot>) -> bool {
        let _ = self.slot.set(slot.clone());
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// True once the caller gave up on the job.
    pub fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
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
    pub(crate) fn commit_reply(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, REPLIED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives up on the job: a queued job never runs, a running one is interrupted.
    pub fn cancel(self: &Arc<Self>) -> CancelOutcome {
        let _guard = self.send_lock.lock();
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
                    let hook = self.cancel_hook.lock().ok().and_then(|mut h| h.take());
                    if let Some(hook) = hook {
                        interp::send_interrupt(Interrupt::Hook(hook));
                    }
                    interp::send_interrupt(Interrupt::Job(self.clone()));
                    // An executor waiting for a callback reply of this job (or of an outer
                    // job, with a nested one running) checks for cancellation when woken.
                    if let Some(slot) = self.slot.get() {
                        let _ = slot.private_tx.send(SlotMessage::Wake);
                    }
                }
                return CancelOutcome::Cancelled;
            }
        }
    }
}

/// The resource an Erlang caller holds for its job. It monitors the caller: when the caller
/// dies, the job is cancelled (design.md invariant 5).
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

/// An interrupt request for the `python-main` thread.
pub enum Interrupt {
    /// Stop this job if its executor is still running it.
    Job(Arc<JobInner>),
    /// Stop whatever this executor runs (the pool is stopping).
    Slot(Arc<Slot>),
    /// Call a job's cancel hook (see [`JobInner::set_cancel_hook`]).
    Hook(Py<PyAny>),
}

/// Calls a cancel hook; an exception it raises is reported as unraisable.
fn call_hook(py: Python<'_>, hook: &Py<PyAny>) {
    if let Err(err) = hook.call0(py) {
        err.write_unraisable(py, Some(hook.bind(py)));
    }
}

/// Raises `erlang.Interrupted` in the executor concerned, if it still runs the job. Runs on
/// `python-main`; the GIL makes the check and the raise atomic with respect to the executor,
/// which sets and clears its current job only while holding the GIL.
pub fn deliver_interrupt(request: Interrupt) {
    Python::attach(|py| match request {
        Interrupt::Job(job) => {
            if let Some(slot) = job.slot.get() {
                if slot.is_running(&job) {
                    slot.interrupt(py);
                }
            }
        }
        Interrupt::Slot(slot) => {
            if slot.is_busy() {
                slot.interrupt(py);
            }
        }
        Interrupt::Hook(hook) => call_hook(py, &hook),
    });
}

/// One executor thread's state as others see it.
pub struct Slot {
    thread_id: AtomicU64,
    current: Mutex<Option<Arc<JobInner>>>,
    woken: Mutex<bool>,
    wake: Condvar,
    /// Messages for this executor only: callback replies, nested requests, wake-ups.
    private_tx: Sender<SlotMessage>,
    private_rx: Receiver<SlotMessage>,
    next_callback: AtomicU64,
    counters: Arc<Counters>,
    /// Checked out by a context: serves its private channel only.
    bound: AtomicBool,
}

/// A message for one executor.
pub enum SlotMessage {
    /// A request that must run on this executor (nested in a callback it is waiting for).
    Run(Request),
    /// The result of callback `id`, as `{ok, V} | {error, C, R, S} | {not_found, Name}`.
    Reply {
        /// The callback it answers.
        id: u64,
        /// The env holding the result.
        env: OwnedEnv,
        /// The result.
        term: SavedTerm,
    },
    /// Look again: a job of this executor was cancelled.
    Wake,
}

impl Slot {
    fn new(counters: Arc<Counters>) -> Self {
        let (private_tx, private_rx) = crossbeam_channel::unbounded();
        Slot {
            thread_id: AtomicU64::new(0),
            current: Mutex::new(None),
            woken: Mutex::new(false),
            wake: Condvar::new(),
            private_tx,
            private_rx,
            next_callback: AtomicU64::new(1),
            counters,
            bound: AtomicBool::new(false),
        }
    }

    /// The job this executor runs now (the innermost one, when nested).
    pub fn current_job(&self) -> Option<Arc<JobInner>> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    /// A fresh callback id.
    pub fn next_callback_id(&self) -> u64 {
        self.next_callback.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands this executor a message; false when it has exited.
    pub fn send(&self, message: SlotMessage) -> bool {
        self.private_tx.send(message).is_ok()
    }

    /// Waits (GIL released by the caller) for the next private message.
    pub fn next_private(&self) -> Option<SlotMessage> {
        spin_then_recv(&self.private_rx, |rx| match rx.try_recv() {
            Ok(m) => Poll::Ready(m),
            Err(crossbeam_channel::TryRecvError::Empty) => Poll::Empty,
            Err(crossbeam_channel::TryRecvError::Disconnected) => Poll::Closed,
        })
        .or_else(|| self.private_rx.recv().ok())
    }

    /// Runs a request nested in the current one (from a callback wait), on this thread.
    pub fn run_nested(self: &Arc<Self>, request: Request) {
        run(self, request);
    }

    fn is_running(&self, job: &Arc<JobInner>) -> bool {
        self.current
            .lock()
            .map(|c| c.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, job)))
            .unwrap_or(false)
    }

    fn is_busy(&self) -> bool {
        self.current.lock().map(|c| c.is_some()).unwrap_or(false)
    }

    fn swap_current(&self, job: Option<Arc<JobInner>>) -> Option<Arc<JobInner>> {
        let previous = match self.current.lock() {
            Ok(mut cur) => std::mem::replace(&mut *cur, job),
            Err(_) => None,
        };
        if let Ok(mut woken) = self.woken.lock() {
            *woken = false;
        }
        previous
    }

    fn interrupt(&self, py: Python<'_>) {
        let exc = py.get_type::<Interrupted>();
        interp::raise_in_thread(py, self.thread_id.load(Ordering::Acquire), &exc);
        if let Ok(mut woken) = self.woken.lock() {
            *woken = true;
        }
        self.wake.notify_all();
    }

    /// Sleeps with the GIL released; an interrupt ends it early with `erlang.Interrupted`.
    pub fn sleep(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        // Cap absurd lengths instead of overflowing `Instant` (about 31 years).
        let length = Duration::from_secs_f64(seconds.min(1.0e9));
        let deadline = Instant::now() + length;
        let interrupted = py.detach(|| {
            let Ok(mut woken) = self.woken.lock() else {
                return false;
            };
            loop {
                if *woken {
                    return true;
                }
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                match self.wake.wait_timeout(woken, deadline - now) {
                    Ok((guard, _)) => woken = guard,
                    Err(_) => return false,
                }
            }
        });
        if interrupted {
            Err(Interrupted::new_err("the Erlang caller stopped waiting"))
        } else {
            Ok(())
        }
    }
}

thread_local! {
    static CURRENT_SLOT: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// The slot of the executor running on this thread, if it is one.
pub fn current_slot() -> Option<Arc<Slot>> {
    CURRENT_SLOT.with(|c| c.borrow().clone())
}

/// What a request asks for.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `{Ref, Module, Function, Args, Kwargs}`
    Call,
    /// `{Ref, Code, Locals}`
    Eval,
    /// `{Ref, Code}`
    Exec,
    /// `{Ref, Handle, Max}`: up to `Max` items of the iterator behind `Handle`.
    Next,
    /// `{Ref, Module, Function, Args, Kwargs, Stream}`: a call whose awaitable result (or, with
    /// `Stream`, async iterable) is finished on the asyncio loop of `erlang._aio`, which
    /// replies when it is done (`py:async_call`, `py:async_stream`).
    Async,
}

/// What a successful job produced.
pub(crate) enum Produced<'py> {
    /// A call's or an eval's result.
    Value(Bound<'py, PyAny>),
    /// `exec` returns nothing.
    Nothing,
    /// Items taken from an iterator, and whether it is exhausted.
    Items(Vec<Bound<'py, PyAny>>, bool),
    /// Handed to the asyncio loop, which will reply.
    Deferred,
}

/// A job as it travels to an executor: the caller, the job, and the terms copied into an
/// owned env (the first element of the saved tuple is always the caller's reply `Ref`).
pub struct Request {
    job: ResourceArc<JobResource>,
    env: OwnedEnv,
    payload: SavedTerm,
    kind: Kind,
}

enum Message {
    Run(Request),
    Stop,
}

struct Counters {
    queued: AtomicUsize,
    running: AtomicUsize,
    stopped: AtomicBool,
    /// Executors checked out by contexts (`py:bind`).
    bound: AtomicUsize,
}

/// A set of executor threads fed by one queue.
pub struct Pool {
    sender: RwLock<Option<Sender<Message>>>,
    slots: Vec<Arc<Slot>>,
    counters: Arc<Counters>,
}

/// Snapshot of a pool's counters.
pub struct PoolStats {
    /// Executor threads.
    pub executors: usize,
    /// Requests waiting for an executor.
    pub queued: usize,
    /// Requests being run.
    pub running: usize,
    /// Executors checked out by contexts.
    pub bound: usize,
}

/// Why a request could not be queued.
pub enum SubmitError {
    /// The pool is stopped.
    Stopped,
    /// Every executor is checked out by a context.
    NoWorkers,
}

/// A private namespace: a fresh `dict` that works like a module's globals.
pub struct Namespace {
    dict: PyOnceLock<Py<PyDict>>,
}

impl Namespace {
    fn new() -> Self {
        Namespace {
            dict: PyOnceLock::new(),
        }
    }

    fn dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.dict
            .get_or_try_init(py, || {
                let dict = PyDict::new(py);
                dict.set_item("__builtins__", builtins(py)?)?;
                dict.set_item("__name__", "__main__")?;
                dict.set_item("erlang", py.import("erlang")?)?;
                Ok::<_, PyErr>(dict.unbind())
            })
            .map(|d| d.bind(py).clone())
    }
}

/// An executor checked out by `py:bind`, with its own namespace. Released (the executor goes
/// back to the pool) by [`Context::release`], when its resource is dropped, or when the
/// process that created it dies.
pub struct Context {
    slot: Arc<Slot>,
    namespace: Arc<Namespace>,
    released: AtomicBool,
}

impl Context {
    /// Queues a request on the context's executor, in its namespace; false once released.
    pub fn submit_with(&self, make: impl FnOnce(Option<Arc<Namespace>>) -> Request) -> bool {
        if self.released.load(Ordering::Acquire) {
            return false;
        }
        self.slot
            .send(SlotMessage::Run(make(Some(self.namespace.clone()))))
    }

    /// True until released.
    pub fn is_bound(&self) -> bool {
        !self.released.load(Ordering::Acquire)
    }

    /// Gives the executor back to the pool (idempotent).
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.slot.bound.swap(false, Ordering::AcqRel) {
            self.slot.counters.bound.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = self.slot.private_tx.send(SlotMessage::Wake);
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.release();
    }
}

/// Copies a request's terms into an owned env and makes its job resource, which monitors the
/// calling process. Runs on the caller's scheduler: bounded work, no Python.
pub fn new_request<'a>(
    env: Env<'a>,
    kind: Kind,
    parts: &[Term<'a>],
    namespace: Option<Arc<Namespace>>,
) -> (ResourceArc<JobResource>, Request) {
    let owned = OwnedEnv::new();
    let payload = owned.save(make_tuple(env, parts));
    let caller = env.pid();
    let job = ResourceArc::new(JobResource {
        inner: Arc::new(JobInner::new(caller, namespace)),
    });
    // A caller that is already gone gets no monitor; its reply is simply dropped.
    let _ = job.monitor(Some(env), &caller);
    let request = Request {
        job: job.clone(),
        env: owned,
        payload,
        kind,
    };
    (job, request)
}

impl Pool {
    /// Starts `n` executor threads.
    pub fn start(n: usize) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let counters = Arc::new(Counters {
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            bound: AtomicUsize::new(0),
        });
        let mut slots = Vec::with_capacity(n);
        for i in 0..n {
            let slot = Arc::new(Slot::new(counters.clone()));
            let (thread_slot, thread_rx) = (slot.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("py-executor-{i}"))
                .stack_size(64 << 20)
                .spawn(move || executor_main(&thread_slot, &thread_rx))?;
            slots.push(slot);
        }
        log::debug!("started {n} executor threads");
        Ok(Pool {
            sender: RwLock::new(Some(tx)),
            slots,
            counters,
        })
    }

    /// Queues a request for any executor not checked out by a context.
    pub fn submit(&self, request: Request) -> Result<(), SubmitError> {
        let Ok(guard) = self.sender.read() else {
            return Err(SubmitError::Stopped);
        };
        let Some(sender) = guard.as_ref() else {
            return Err(SubmitError::Stopped);
        };
        if self.counters.bound.load(Ordering::Acquire) >= self.slots.len() {
            return Err(SubmitError::NoWorkers);
        }
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if sender.send(Message::Run(request)).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(SubmitError::Stopped);
        }
        Ok(())
    }

    /// Checks out an executor for a context with a private namespace, preferring an idle one.
    pub fn bind(&self) -> Result<Context, SubmitError> {
        if self.counters.stopped.load(Ordering::Acquire) {
            return Err(SubmitError::Stopped);
        }
        let idle = self.slots.iter().filter(|s| !s.is_busy());
        let busy = self.slots.iter().filter(|s| s.is_busy());
        for slot in idle.chain(busy) {
            if slot
                .bound
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.counters.bound.fetch_add(1, Ordering::AcqRel);
                return Ok(Context {
                    slot: slot.clone(),
                    namespace: Arc::new(Namespace::new()),
                    released: AtomicBool::new(false),
                });
            }
        }
        Err(SubmitError::NoWorkers)
    }

    /// Stops the pool without waiting: queued jobs reply `{error, stopped}`, running ones are
    /// interrupted, and the threads exit on their own.
    pub fn stop(&self) {
        let Ok(mut guard) = self.sender.write() else {
            return;
        };
        let Some(sender) = guard.take() else {
            return;
        };
        self.counters.stopped.store(true, Ordering::Release);
        log::debug!(
            "stopping {} executor threads ({} jobs running)",
            self.slots.len(),
            self.counters.running.load(Ordering::Relaxed)
        );
        for _ in &self.slots {
            let _ = sender.send(Message::Stop);
        }
        for slot in &self.slots {
            interp::send_interrupt(Interrupt::Slot(slot.clone()));
            let _ = slot.private_tx.send(SlotMessage::Wake);
        }
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            executors: self.slots.len(),
            queued: self.counters.queued.load(Ordering::Relaxed),
            running: self.counters.running.load(Ordering::Relaxed),
            bound: self.counters.bound.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

fn executor_main(slot: &Arc<Slot>, rx: &Receiver<Message>) {
    Python::attach(|py| {
        let ident = py
            .import("threading")
            .and_then(|t| t.call_method0("get_ident"))
            .and_then(|id| id.extract::<u64>());
        if let Ok(id) = ident {
            slot.thread_id.store(id, Ordering::Release);
        }
        CURRENT_SLOT.with(|c| *c.borrow_mut() = Some(slot.clone()));
        py.detach(|| serve(slot, rx));
        CURRENT_SLOT.with(|c| c.borrow_mut().take());
    });
}

/// The executor's main loop: requests from the shared queue, and private messages that
/// arrive outside a callback wait (late replies and wake-ups are dropped, nested requests
/// whose callback already ended still run).
fn serve(slot: &Arc<Slot>, rx: &Receiver<Message>) {
    loop {
        if slot.bound.load(Ordering::Acquire) {
            // Checked out by a context: its requests only, until it is released (Wake).
            match slot.next_private() {
                Some(SlotMessage::Run(request)) => run(slot, request),
                Some(_) => {}
                None => return,
            }
            continue;
        }
        let next = spin_then_recv(rx, |rx| {
            if let Ok(private) = slot.private_rx.try_recv() {
                return Poll::Ready(Either::Private(private));
            }
            match rx.try_recv() {
                Ok(m) => Poll::Ready(Either::Shared(m)),
                Err(crossbeam_channel::TryRecvError::Empty) => Poll::Empty,
                Err(crossbeam_channel::TryRecvError::Disconnected) => Poll::Closed,
            }
        })
        .or_else(|| {
            crossbeam_channel::select! {
                recv(rx) -> m => m.ok().map(Either::Shared),
                recv(slot.private_rx) -> m => m.ok().map(Either::Private),
            }
        });
        match next {
            Some(Either::Shared(Message::Run(request))) => {
                slot.counters.queued.fetch_sub(1, Ordering::Relaxed);
                run(slot, request);
            }
            Some(Either::Private(SlotMessage::Run(request))) => run(slot, request),
            Some(Either::Private(_)) => {}
            Some(Either::Shared(Message::Stop)) | None => return,
        }
    }
}

enum Either {
    Shared(Message),
    Private(SlotMessage),
}

/// What one poll of a channel found.
pub enum Poll<T> {
    /// A message.
    Ready(T),
    /// Nothing yet.
    Empty,
    /// The channel is closed.
    Closed,
}

/// How long an idle executor polls before it parks. Sequential callers send their next
/// request (or callback reply) a few microseconds after the previous message; catching it
/// while still awake saves two futex wake-ups per round trip.
const SPIN: Duration = Duration::from_micros(50);

/// Polls `poll` for up to [`SPIN`]; `None` when nothing came (the caller then blocks) or the
/// channel closed.
fn spin_then_recv<C, T>(channel: &C, mut poll: impl FnMut(&C) -> Poll<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        match poll(channel) {
            Poll::Ready(message) => return Some(message),
            Poll::Closed => return None,
            Poll::Empty => {}
        }
        if start.elapsed() >= SPIN {
            return None;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

/// How a job ended, before its result is turned into a term.
pub(crate) enum Outcome<'py> {
    Value(Bound<'py, PyAny>),
    Items(Vec<Bound<'py, PyAny>>, bool),
    Done,
    Raised(PyErr),
    Panicked(String),
    Stopped,
    /// Someone else replies (the asyncio loop).
    Deferred,
}

fn run(slot: &Arc<Slot>, request: Request) {
    let Request {
        job,
        env,
        payload,
        kind,
    } = request;
    if !job.inner.start(slot) {
        return;
    }
    // Reachable from callbacks made while the job runs (see `copy_running_reference`).
    let terms = Rc::new(RunningTerms {
        env: RefCell::new(env),
        payload,
    });
    let counters = &slot.counters;
    counters.running.fetch_add(1, Ordering::Relaxed);
    Python::attach(|py| {
        // Nested requests (served while waiting for a callback) restore the outer job.
        let outer = slot.swap_current(Some(job.inner.clone()));
        // A cancel that landed between `start` and `swap_current` found no current job to
        // interrupt; now that the job is current (under the GIL, which the interrupter also
        // takes), a later cancel will find it, and an earlier one is seen here.
        let outcome = if job.inner.is_cancelled() {
            Outcome::Done
        } else if counters.stopped.load(Ordering::Acquire) {
            Outcome::Stopped
        } else {
            let namespace = job.inner.namespace.clone();
            let run_job = || {
                let namespace = match &namespace {
                    Some(ns) => ns.dict(py)?,
                    None => main_namespace(py)?.clone(),
                };
                execute(
                    py,
                    &job.inner,
                    &terms.env.borrow(),
                    &terms.payload,
                    kind,
                    &namespace,
                )
            };
            RUNNING_TERMS.with(|r| r.borrow_mut().push(terms.clone()));
            let result = catch_unwind(AssertUnwindSafe(run_job));
            RUNNING_TERMS.with(|r| r.borrow_mut().pop());
            match result {
                Ok(Ok(Produced::Value(value))) => Outcome::Value(value),
                Ok(Ok(Produced::Items(items, done))) => Outcome::Items(items, done),
                Ok(Ok(Produced::Nothing)) => Outcome::Done,
                Ok(Ok(Produced::Deferred)) => Outcome::Deferred,
                // Interrupted because the pool is stopping: say so plainly.
                Ok(Err(err))
                    if err.is_instance_of::<Interrupted>(py)
                        && counters.stopped.load(Ordering::Acquire) =>
                {
                    Outcome::Stopped
                }
                Ok(Err(err)) => Outcome::Raised(err),
                Err(panic) => {
                    let message = panic_message(&panic);
                    log::error!("a job panicked on an executor (the caller gets an internal error): {message}");
                    Outcome::Panicked(message)
                }
            }
        };
        slot.swap_current(outer);
        interp::clear_pending(py, slot.thread_id.load(Ordering::Acquire));
        if !matches!(outcome, Outcome::Deferred) && job.inner.commit_reply() {
            let mut env = terms.env.borrow_mut();
            let _ = env.send_and_clear(job.inner.caller(), |env| {
                reply(py, env, &terms.payload, outcome)
            });
        }
    });
    counters.running.fetch_sub(1, Ordering::Relaxed);
}

/// The terms of a request while an executor runs it.
struct RunningTerms {
    env: RefCell<OwnedEnv>,
    payload: SavedTerm,
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
    env.run(|src| {
        let items = get_tuple(terms.payload.load(src)).ok()?;
        items.first().map(|reference| reference.in_env(dst))
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// `{Ref, Reply}` for `outcome`, `Ref` being the first element of the tuple `payload`.
pub(crate) fn reply<'a>(
    py: Python<'_>,
    env: Env<'a>,
    payload: &SavedTerm,
    outcome: Outcome<'_>,
) -> Term<'a> {
    let reference = get_tuple(payload.load(env))
        .ok()
        .and_then(|items| items.first().copied())
        .unwrap_or_else(|| atoms::undefined().encode(env));
    let builder = NifBuilder { env };
    let body = catch_unwind(AssertUnwindSafe(|| match outcome {
        Outcome::Value(value) => {
            let mut b = NifBuilder { env };
            match convert::result_from_py(&mut b, &value, &options()) {
                Ok(term) => b.pair(atoms::ok(), term),
                Err(err) => python_error(py, env, PyErr::from(err)),
            }
        }
        Outcome::Items(items, done) => {
            let mut b = NifBuilder { env };
            let opts = options();
            let terms: Result<Vec<_>, _> = items
                .iter()
                .map(|item| convert::from_py(&mut b, item, &opts))
                .collect();
            match terms {
                Ok(terms) => {
                    let tag = if done { atoms::done() } else { atoms::ok() };
                    b.pair(tag, terms)
                }
                Err(err) => python_error(py, env, PyErr::from(err)),
            }
        }
        Outcome::Done => atoms::ok().encode(env),
        Outcome::Raised(err) => python_error(py, env, err),
        Outcome::Panicked(msg) => internal_error(env, &msg),
        Outcome::Stopped => builder.pair(atoms::error(), atoms::stopped()),
        // Never sent: `run` skips the reply of a deferred job.
        Outcome::Deferred => builder.pair(atoms::error(), atoms::internal()),
    }))
    .unwrap_or_else(|panic| internal_error(env, &panic_message(&panic)));
    builder.pair(reference, body)
}

fn internal_error<'a>(env: Env<'a>, msg: &str) -> Term<'a> {
    let builder = NifBuilder { env };
    builder.pair(atoms::error(), builder.pair(atoms::internal(), msg))
}

/// `{error, {Type, Msg}, Traceback}` for a Python exception (see docs/errors.md).
fn python_error<'a>(py: Python<'_>, env: Env<'a>, err: PyErr) -> Term<'a> {
    let builder = NifBuilder { env };
    let traceback = format_traceback(py, &err);
    let reason = if err.is_instance_of::<PyStopIteration>(py) {
        builder.pair(atoms::stop_iteration(), atoms::none())
    } else {
        let ty = err.get_type(py);
        let name = ty
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "Exception".to_owned());
        // Builtin classes and this package's own exceptions form a fixed set of names, so
        // they may become atoms; any other class name is a binary unless the atom exists.
        let builtin = ty.module().map(|m| m == "builtins").unwrap_or(false)
            || ty.is(py.get_type::<ErlangError>())
            || ty.is(py.get_type::<Interrupted>());
        let type_term = if builtin {
            Atom::from_str(env, &name)
                .map(|a| a.encode(env))
                .unwrap_or_else(|_| name.encode(env))
        } else {
            match Atom::existing_from_str(env, &name) {
                Ok(atom) => atom.encode(env),
                Err(_) => name.encode(env),
            }
        };
        let message = err
            .value(py)
            .str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "<str() of the exception failed>".to_owned());
        make_tuple(env, &[type_term, message.encode(env)])
    };
    make_tuple(
        env,
        &[atoms::error().encode(env), reason, traceback.encode(env)],
    )
}

static FORMAT_EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = FORMAT_EXCEPTION
        .import(py, "traceback", "format_exception")
        // The three-argument form: before 3.12 the exception value does not always carry its
        // `__traceback__` (pyo3 keeps the traceback beside it), so pass it explicitly.
        .and_then(|f| f.call1((err.get_type(py), err.value(py), err.traceback(py))))
        .and_then(|lines| {
            let lines = lines.cast::<PyList>().map_err(PyErr::from)?;
            let mut text = String::new();
            for line in lines.iter() {
                text.push_str(&line.extract::<String>()?);
            }
            Ok(text)
        });
    formatted.unwrap_or_else(|_| err.to_string())
}

static MAIN_NAMESPACE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static SYS_MODULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static BUILTINS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
/// Compiled code objects by (mode, source); bounded, cleared when full. Only touched with the
/// GIL held, so the lock is never contended.
type CodeCache = HashMap<(u8, Vec<u8>), Py<PyAny>>;
static CODE_CACHE: Mutex<Option<CodeCache>> = Mutex::new(None);
const CODE_CACHE_LIMIT: usize = 512;

fn main_namespace(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    MAIN_NAMESPACE
        .get_or_try_init(py, || {
            let main = py.import("__main__")?;
            Ok::<_, PyErr>(main.dict().unbind())
        })
        .map(|ns| ns.bind(py))
}

fn builtins(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    BUILTINS
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("builtins")?.unbind()))
        .map(|m| m.bind(py))
}

fn import<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let modules = SYS_MODULES
        .get_or_try_init(py, || {
            let modules = py.import("sys")?.getattr("modules")?;
            Ok::<_, PyErr>(modules.cast_into::<PyDict>().map_err(PyErr::from)?.unbind())
        })?
        .bind(py);
    if let Some(module) = modules.get_item(name)? {
        return Ok(module);
    }
    Ok(py.import(name)?.into_any())
}

fn utf8<'b>(bytes: &'b [u8], what: &str) -> PyResult<&'b str> {
    std::str::from_utf8(bytes)
        .map_err(|_| PyTypeError::new_err(format!("{what} is not valid UTF-8")))
}

fn resolve<'py>(
    py: Python<'py>,
    namespace: &Bound<'py, PyDict>,
    module: &[u8],
    function: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let module = utf8(module, "module name")?;
    let function = utf8(function, "function name")?;
    let mut parts = function.split('.');
    let first = parts.next().unwrap_or_default();
    let mut target = if module == "__main__" {
        namespace
            .get_item(first)?
            .ok_or_else(|| PyNameError::new_err(format!("name '{first}' is not defined")))?
    } else {
        import(py, module)?.getattr(PyString::intern(py, first))?
    };
    for part in parts {
        target = target.getattr(PyString::intern(py, part))?;
    }
    Ok(target)
}

fn compiled<'py>(py: Python<'py>, source: &[u8], mode: u8) -> PyResult<Bound<'py, PyAny>> {
    let key = (mode, source.to_vec());
    if let Ok(cache) = CODE_CACHE.lock() {
        if let Some(code) = cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(code.bind(py).clone());
        }
    }
    let mode_name = if mode == 0 { "eval" } else { "exec" };
    let code = builtins(py)?.getattr("compile")?.call1((
        PyBytes::new(py, source),
        "<erlang>",
        mode_name,
    ))?;
    if let Ok(mut cache) = CODE_CACHE.lock() {
        let cache = cache.get_or_insert_with(HashMap::new);
        if cache.len() >= CODE_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, code.clone().unbind());
    }
    Ok(code)
}

fn binary_of<'a>(term: Term<'a>, what: &str) -> PyResult<&'a [u8]> {
    term.decode::<rustler::Binary<'a>>()
        .map(|b| b.as_slice())
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a binary")))
}

/// Runs one request.
fn execute<'py>(
    py: Python<'py>,
    job: &Arc<JobInner>,
    env: &OwnedEnv,
    payload: &SavedTerm,
    kind: Kind,
    namespace: &Bound<'py, PyDict>,
) -> PyResult<Produced<'py>> {
    let opts = options();
    match kind {
        Kind::Call | Kind::Async => {
            let (callable, args, kwargs, stream) = env.run(|env| -> PyResult<_> {
                let items = get_tuple(payload.load(env)).map_err(|_| bad_request())?;
                let (module, function, args, kwargs, stream) = match (kind, &items[..]) {
                    (Kind::Call, &[_, m, f, a, k]) => (m, f, a, k, false),
                    (Kind::Async, &[_, m, f, a, k, s]) => {
                        (m, f, a, k, s.decode::<bool>().map_err(|_| bad_request())?)
                    }
                    _ => return Err(bad_request()),
                };
                let callable = resolve(
                    py,
                    namespace,
                    binary_of(module, "module")?,
                    binary_of(function, "function")?,
                )?;
                let reader = NifReader::new(env);
                let args = match reader.view(py, args).map_err(PyErr::from)? {
                    View::List(items) => items
                        .into_iter()
                        .map(|t| convert::to_py(py, &reader, t, &opts))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(PyErr::from)?,
                    _ => return Err(PyTypeError::new_err("arguments must be a list")),
                };
                let kwargs =
                    convert::kwargs_to_py(py, &reader, kwargs, &opts).map_err(PyErr::from)?;
                Ok((callable, PyTuple::new(py, args)?, kwargs, stream))
            })?;
            let kwargs = if kwargs.is_empty() {
                None
            } else {
                Some(&kwargs)
            };
            let value = callable.call(args, kwargs)?;
            if matches!(kind, Kind::Async) {
                crate::aio::dispatch(py, job, value, stream)
            } else {
                Ok(Produced::Value(value))
            }
        }
        Kind::Eval => {
            let (code, namespace) = env.run(|env| -> PyResult<_> {
                let items = get_tuple(payload.load(env)).map_err(|_| bad_request())?;
                let [_, source, locals] = items[..] else {
                    return Err(bad_request());
                };
                let reader = NifReader::new(env);
                let locals =
                    convert::kwargs_to_py(py, &reader, locals, &opts).map_err(PyErr::from)?;
                if !locals.is_empty() {
                    namespace.update(locals.as_mapping())?;
                }
                Ok((
                    compiled(py, binary_of(source, "code")?, 0)?,
                    namespace.clone(),
                ))
            })?;
            builtins(py)?
                .getattr("eval")?
                .call1((code, namespace))
                .map(Produced::Value)
        }
        Kind::Exec => {
            let code = env.run(|env| -> PyResult<_> {
                let items = get_tuple(payload.load(env)).map_err(|_| bad_request())?;
                let [_, source] = items[..] else {
                    return Err(bad_request());
                };
                compiled(py, binary_of(source, "code")?, 1)
            })?;
            builtins(py)?
                .getattr("exec")?
                .call1((code, namespace))
                .map(|_| Produced::Nothing)
        }
        Kind::Next => {
            let (iterator, max) = env.run(|env| -> PyResult<_> {
                let items = get_tuple(payload.load(env)).map_err(|_| bad_request())?;
                let [_, handle, max] = items[..] else {
                    return Err(bad_request());
                };
                let max: usize = max.decode().map_err(|_| bad_request())?;
                let reader = NifReader::new(env);
                match reader.view(py, handle).map_err(PyErr::from)? {
                    View::Object(object) => Ok((object.into_bound(py), max)),
                    _ => Err(PyTypeError::new_err("expected a generator handle")),
                }
            })?;
            let mut iterator = match iterator.cast_into::<PyIterator>() {
                Ok(iterator) => iterator,
                Err(err) => {
                    let name = err
                        .into_inner()
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    return Err(PyTypeError::new_err(format!(
                        "'{name}' object is not an iterator"
                    )));
                }
            };
            let mut items = Vec::with_capacity(max.min(1024));
            while items.len() < max {
                match iterator.next() {
                    Some(item) => items.push(item?),
                    None => return Ok(Produced::Items(items, true)),
                }
            }
            Ok(Produced::Items(items, false))
        }
    }
}

fn bad_request() -> PyErr {
    PyTypeError::new_err("malformed request")
}
