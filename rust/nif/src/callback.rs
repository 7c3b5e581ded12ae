//! The BEAM side of `erlang.call` (docs/architecture.md, invariant 4: Python -> Erlang never re-runs
//! Python code).
//!
//! On an executor thread running a job, the call becomes a message `{Ref, {'$py_callback', Id,
//! Name, Args}}` to the job's caller, which is waiting in `py`'s receive loop; the executor then
//! waits on its private channel with the GIL released. While it waits it runs the requests the
//! caller makes from inside the callback (they are routed to this executor), so
//! Python -> Erlang -> Python nests at any depth in the same namespace without holding a
//! scheduler. On any other thread (`threading.Thread`, executors of `concurrent.futures`) the
//! call goes to the `py_callback` router process and the thread waits on a one-shot channel.
//!
//! `erlang.async_call` never waits: from any thread the call goes to the router as
//! `{'$py_async_callback', Channel, Name, Args}`, and the reply is handed to
//! `callback_async_reply/2` on a scheduler. From a loop with an inbox ([`inbox`]: every loop
//! with `add_reader`) that scheduler queues it in the inbox and wakes the loop, whose thread
//! converts it and settles the future: one thread hop. Otherwise it travels to the
//! `py-async-done` thread, which takes the GIL, converts it and calls the waiting coroutine's
//! `done` (which wakes its event loop with `call_soon_threadsafe`). Cancelling takes the target
//! out of the channel: the reply, when it comes, is dropped, and nothing is left waiting.

pub mod inbox;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crossbeam_channel::Sender;
use erlang_python_core::callback::{erlang_error, Backend};
use erlang_python_core::native::Interrupted;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::env::SavedTerm;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, LocalPid, OwnedEnv, ResourceArc};

use self::inbox::LoopQueue;
use crate::atoms;
use crate::bridge::callback::{result_to_py, save_message, save_request};
use crate::executor::run::{run, Gil, Source};
use crate::executor::{copy_running_reference, current_slot, JobInner, Slot, SlotMessage};

/// The backend the NIF installs in core.
pub struct BeamBackend;

impl Backend for BeamBackend {
    fn call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(slot) = current_slot() {
            if let Some(job) = slot.current_job() {
                return executor_call(py, &slot, &job, name, args);
            }
        }
        thread_call(py, name, args)
    }

    fn start_call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: &Bound<'py, PyTuple>,
        done: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        async_call(py, name, args, done)
    }

    fn send(
        &self,
        py: Python<'_>,
        pid: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        send_message(py, pid, message)
    }

    fn loop_inbox<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        inbox::new_inbox(py).map(Some)
    }

    fn open_mailbox<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let Some(router) = router() else {
            return Err(not_started(py));
        };
        crate::mailbox::open(py, &router)?.ok_or_else(|| not_started(py))
    }
}

/// `erlang.send(pid, message)`: a local process gets the message straight from this thread
/// (`enif_send`; a dead one drops it, as `!` does); a process of another node through the
/// router, which runs `Pid ! Message` (`enif_send` reaches local processes only).
fn send_message(
    py: Python<'_>,
    pid: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let mut env = OwnedEnv::new();
    let (to, saved) = save_message(&env, pid, message)?;
    match to {
        Some(local) => {
            // An error means the process is not alive: Erlang's send is silent then.
            let _ = env.send_and_clear(&local, |env| saved.load(env));
            Ok(())
        }
        None => {
            let Some(router) = router() else {
                return Err(not_started(py));
            };
            let _ = env.send_and_clear(&router, |env| {
                let tag = atoms::py_send().encode(env);
                let body = saved.load(env);
                make_tuple(env, &[tag, body])
            });
            Ok(())
        }
    }
}

fn executor_call<'py>(
    py: Python<'py>,
    slot: &Arc<Slot>,
    job: &Arc<JobInner>,
    name: &str,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let id = slot.next_callback_id();
    let mut env = OwnedEnv::new();
    let saved = save_request(
        &env,
        |env| vec![atoms::py_callback().encode(env), id.encode(env)],
        name,
        args,
    )?;
    let sent = job.send_callback(|to| {
        env.send_and_clear(to, |env| {
            let body = saved.load(env);
            let tag = copy_running_reference(env).unwrap_or_else(|| atoms::undefined().encode(env));
            make_tuple(env, &[tag, body])
        })
        .is_ok()
    });
    if !sent {
        return Err(Interrupted::new_err("the Erlang caller stopped waiting"));
    }
    loop {
        if job.is_cancelled() {
            return Err(Interrupted::new_err("the Erlang caller stopped waiting"));
        }
        match py.detach(|| slot.next_private(crate::executor::slot::SPIN)) {
            Some(SlotMessage::Reply { id: got, env, term }) if got == id => {
                return result_to_py(py, &env, &term);
            }
            Some(SlotMessage::Run(request)) => run(slot, request, Source::Private, Gil::Held),
            Some(SlotMessage::Reply { .. }) | Some(SlotMessage::Wake) => {}
            None => return Err(Interrupted::new_err("the executor is stopping")),
        }
    }
}

/// Where threads that are not executors send their callbacks.
static ROUTER: RwLock<Option<LocalPid>> = RwLock::new(None);

/// The router, while the application runs.
fn router() -> Option<LocalPid> {
    ROUTER.read().ok().and_then(|r| *r)
}

/// What `erlang.call` raises inside the BEAM while the application is stopped: the
/// `erlang.ErlangError` of `{error, not_started}` (this is the BEAM, so not `NotInBeamError`).
fn not_started(py: Python<'_>) -> PyErr {
    erlang_error(py, "error", "not_started", "")
}

/// Sets (or clears) the router process.
pub fn set_router(pid: Option<LocalPid>) {
    if let Ok(mut router) = ROUTER.write() {
        *router = pid;
    }
}

/// The one-shot reply channel of a callback made from a non-executor thread.
pub struct ReplyChannel {
    sender: Mutex<Option<Sender<(OwnedEnv, SavedTerm)>>>,
}

#[rustler::resource_impl]
impl rustler::Resource for ReplyChannel {}

impl ReplyChannel {
    /// Delivers the result; false when it was already delivered.
    pub fn deliver(&self, env: OwnedEnv, term: SavedTerm) -> bool {
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        sender.is_some_and(|s| s.send((env, term)).is_ok())
    }
}

fn thread_call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(router) = router() else {
        return Err(not_started(py));
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    let channel = ResourceArc::new(ReplyChannel {
        sender: Mutex::new(Some(tx)),
    });
    let mut env = OwnedEnv::new();
    let saved = save_request(
        &env,
        |env| vec![atoms::py_thread_callback().encode(env), channel.encode(env)],
        name,
        args,
    )?;
    drop(channel);
    if env.send_and_clear(&router, |env| saved.load(env)).is_err() {
        return Err(not_started(py));
    }
    match py.detach(|| rx.recv()) {
        Ok((env, term)) => result_to_py(py, &env, &term),
        Err(_) => Err(erlang_error(
            py,
            "error",
            "the callback's Erlang process ended without replying",
            "",
        )),
    }
}

/// Async calls neither answered nor cancelled.
static PENDING_ASYNC: AtomicUsize = AtomicUsize::new(0);

/// The number of `erlang.async_call`s still waiting for their Erlang function.
pub fn pending_async() -> usize {
    PENDING_ASYNC.load(Ordering::Relaxed)
}

/// Where the reply of one `erlang.async_call` goes.
enum Target {
    /// The inbox of the coroutine's loop ([`inbox::LoopInbox`]), as call number `id`: the
    /// loop's thread converts the reply and settles the future (one thread hop).
    Loop(Arc<LoopQueue>, u64),
    /// A loop with no inbox (one without `add_reader`): `done(ok, value)`, called by the
    /// `py-async-done` thread, hands the reply over with `call_soon_threadsafe`.
    Done(Py<PyAny>),
}

/// The channel of one `erlang.async_call`: holds where the reply goes until it comes or the
/// coroutine is cancelled. Also a resource, held by the Erlang process running the function;
/// if that process dies without replying, dropping the last reference completes the call with
/// an error.
pub struct AsyncChannel {
    target: Mutex<Option<Target>>,
}

#[rustler::resource_impl]
impl rustler::Resource for AsyncChannel {}

impl AsyncChannel {
    fn take(&self) -> Option<Target> {
        let target = self.target.lock().ok().and_then(|mut t| t.take());
        if target.is_some() {
            PENDING_ASYNC.fetch_sub(1, Ordering::Relaxed);
        }
        target
    }

    /// Hands the reply to the coroutine's loop (or the completion thread); false when the
    /// call was cancelled or already answered. Bounded work, no GIL (invariant 1).
    pub fn deliver(&self, env: OwnedEnv, term: SavedTerm) -> bool {
        match self.take() {
            Some(Target::Loop(queue, id)) => {
                queue.reply(id, env, term);
                true
            }
            Some(Target::Done(done)) => {
                complete(Completion::Reply(done, env, term));
                true
            }
            None => false,
        }
    }
}

impl Drop for AsyncChannel {
    fn drop(&mut self) {
        match self.take() {
            Some(Target::Loop(queue, id)) => queue.lost(id),
            Some(Target::Done(done)) => complete(Completion::Lost(done)),
            None => {}
        }
    }
}

/// What an `erlang.async_call` whose Erlang process ended without replying raises.
fn lost_error(py: Python<'_>) -> PyErr {
    erlang_error(
        py,
        "error",
        "the callback's Erlang process ended without replying",
        "",
    )
}

/// What the completion thread does with one finished async call.
enum Completion {
    /// The reply, as `callback_reply` answers take it.
    Reply(Py<PyAny>, OwnedEnv, SavedTerm),
    /// The Erlang side ended without replying.
    Lost(Py<PyAny>),
}

static COMPLETIONS: OnceLock<Sender<Completion>> = OnceLock::new();

/// Queues `completion` for the `py-async-done` thread (started on first use).
fn complete(completion: Completion) {
    let sender = COMPLETIONS.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Completion>();
        // Without the thread (the OS refused one) completions pile up unread and the
        // coroutines stay pending until cancelled; nothing better can be done than saying so.
        let started = std::thread::Builder::new()
            .name("py-async-done".into())
            .spawn(move || {
                for completion in rx {
                    Python::attach(|py| finish(py, completion));
                }
            });
        if let Err(err) = started {
            log::error!(
                "cannot start the py-async-done thread, erlang.async_call cannot complete: {err}"
            );
        }
        tx
    });
    let _ = sender.send(completion);
}

/// Converts the reply and calls `done(ok, value)`; an exception from `done` (a closed loop
/// is already handled there) is reported as unraisable rather than lost silently.
fn finish(py: Python<'_>, completion: Completion) {
    let (done, outcome) = match completion {
        Completion::Reply(done, env, term) => {
            let outcome = result_to_py(py, &env, &term);
            (done, outcome)
        }
        Completion::Lost(done) => (done, Err(lost_error(py))),
    };
    let args = match outcome {
        Ok(value) => (true, value),
        Err(err) => (false, err.into_value(py).into_bound(py).into_any()),
    };
    if let Err(err) = done.bind(py).call1(args) {
        err.write_unraisable(py, Some(done.bind(py)));
    }
}

/// The handle of a started `erlang.async_call`: `cancel()` drops the pending call.
#[pyclass(frozen, module = "erlang._native", name = "AsyncCall")]
pub struct AsyncCall {
    channel: ResourceArc<AsyncChannel>,
    /// For a call answered through a loop's inbox: the inbox's futures and this call's number,
    /// forgotten on cancel.
    pending: Option<(Py<PyDict>, u64)>,
}

#[pymethods]
impl AsyncCall {
    /// Forgets the call: its reply will settle nothing (`done` will not be called). True when
    /// it was still pending.
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        if let Some((futures, id)) = &self.pending {
            let futures = futures.bind(py);
            if futures.contains(*id)? {
                futures.del_item(*id)?;
            }
        }
        Ok(self.channel.take().is_some())
    }
}

/// Sends `{'$py_async_callback', Channel, Name, Args}` to the router; the reply goes to
/// `target`. Raises what converting the arguments raises, or `not_started`.
fn start(
    py: Python<'_>,
    name: &str,
    args: &Bound<'_, PyTuple>,
    target: Target,
) -> PyResult<ResourceArc<AsyncChannel>> {
    let Some(router) = router() else {
        return Err(not_started(py));
    };
    PENDING_ASYNC.fetch_add(1, Ordering::Relaxed);
    let channel = ResourceArc::new(AsyncChannel {
        target: Mutex::new(Some(target)),
    });
    let mut env = OwnedEnv::new();
    let saved = save_request(
        &env,
        |env| vec![atoms::py_async_callback().encode(env), channel.encode(env)],
        name,
        args,
    );
    let saved = match saved {
        Ok(saved) => saved,
        Err(err) => {
            // Nothing was sent: forget the target quietly (the caller gets the exception).
            channel.take();
            return Err(err);
        }
    };
    if env.send_and_clear(&router, |env| saved.load(env)).is_err() {
        channel.take();
        return Err(not_started(py));
    }
    Ok(channel)
}

fn async_call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
    done: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let channel = start(py, name, args, Target::Done(done.clone().unbind()))?;
    Bound::new(
        py,
        AsyncCall {
            channel,
            pending: None,
        },
    )
    .map(Bound::into_any)
}
