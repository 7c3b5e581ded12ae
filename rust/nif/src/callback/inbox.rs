//! The inbox of one event loop (docs/architecture.md, "The event loop"): how the reply to an
//! `erlang.async_call` reaches the coroutine's loop in one thread hop.
//!
//! `erlang._async` gives each running loop a [`LoopInbox`] on first use (`_loop_inbox()`) and
//! watches its wake-up socket with `add_reader`. A call started with [`LoopInbox::call`] sends
//! `{'$py_async_callback', Channel, Name, Args}` to the router, as before; the process running
//! the Erlang function answers with `callback_async_reply/2` on its scheduler, which copies the
//! term into an owned environment, queues it here and, unless a wake-up is already pending,
//! writes one byte to the socket. The loop's thread wakes in its selector, and
//! [`LoopInbox::drain`] converts the replies with the GIL and settles the waiting futures. No
//! Python object is touched off the GIL: the queue holds call numbers, the futures stay in a
//! dict only the GIL's holder reads.
//!
//! An `ErlangEventLoop` about to block in its selector shortly after a call left first waits
//! for the reply spinning ([`LoopInbox::spin`], GIL released): the scheduler then hands the
//! item over through a flag instead of the socket, which saves the wake-up of a sleeping
//! thread on both sides (docs/asyncio.md, "Performance").
//!
//! The inbox of `erlang._aio`'s loop also takes `py:async_call`s (and `py:call`s) of known
//! `async def`s from the callers' schedulers ([`submit_to_loop`]): the drain starts their
//! coroutines on the loop's thread (`executor::aio::start_on_loop`), so they reach the loop
//! with one thread hop and no executor. A closing inbox hands the ones it still holds to their
//! pools.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use rustler::env::SavedTerm;
use rustler::{OwnedEnv, ResourceArc};

use super::{lost_error, AsyncCall};
use crate::bridge::callback::result_to_py;
use crate::executor::aio;
use crate::executor::{Pool, Request};

/// What reached a loop for one call.
enum Item {
    /// The reply, as `callback_async_reply/2` got it.
    Reply(u64, OwnedEnv, SavedTerm),
    /// The Erlang side ended without replying.
    Lost(u64),
    /// A `py:async_call` of an `async def`, submitted straight to the loop of `erlang._aio`
    /// ([`submit_to_loop`]).
    Start(Box<LoopStart>),
}

/// A `py:async_call` for the loop, and the pool that runs it if the loop cannot.
pub struct LoopStart {
    /// The job, its terms and its caller's `Ref`.
    pub request: Request,
    /// Where the caller would have queued it.
    pub pool: ResourceArc<Pool>,
}

/// The inbox of `erlang._aio`'s loop, once that loop serves `py:async_call`s
/// ([`LoopInbox::serve_async_calls`]).
static ASYNC_CALLS: RwLock<Option<Arc<LoopQueue>>> = RwLock::new(None);

/// Hands `request` (a `py:async_call` whose target an executor found to be an `async def`) to
/// the loop of `erlang._aio` from the caller's scheduler, where its thread starts the
/// coroutine itself: one thread hop instead of two (docs/architecture.md, "Coroutines run by
/// Erlang"). Gives the request back when that loop does not serve them (not started yet, or
/// closed): the caller then queues it on `pool`. Bounded work, no GIL (invariant 1).
pub fn submit_to_loop(start: Box<LoopStart>) -> Result<(), Box<LoopStart>> {
    let queue = ASYNC_CALLS.read().ok().and_then(|queue| queue.clone());
    let Some(queue) = queue else {
        return Err(start);
    };
    queue.push(Item::Start(start)).map_err(|item| match item {
        Item::Start(start) => start,
        _ => unreachable!("push gives back the item it was given"),
    })
}

/// How long after an `erlang.async_call` leaves its loop's thread may wait for the reply
/// spinning ([`LoopInbox::spin`]) rather than asleep in its selector. On the 2-core machine of
/// docs/asyncio.md's numbers a function that returns at once answers 2-5 us after the loop
/// starts waiting, and waking a thread asleep in `epoll_wait` costs 8-14 us more than that.
const SPIN: Duration = Duration::from_micros(30);

/// The most chances to spin a loop lets pass after spins that waited in vain (a slow
/// function, or no free CPU for the reply: a spinning thread then only delays the BEAM
/// scheduler it waits for). Spins given up in a row skip 1, 3, 7, ... up to this many of
/// the next chances, so a loop whose spins never pay off spends at most `SPIN` of CPU every
/// 64 chances; one that pays off resets the count.
const MAX_SKIP: u32 = 63;

/// What the schedulers and the loop's thread share.
pub struct LoopQueue {
    state: Mutex<QueueState>,
    /// The write end of the wake-up socket (non-blocking).
    wake: UnixStream,
    next_id: AtomicU64,
    /// Set by [`Self::push`] when it handed its item to the spinning loop thread instead of
    /// writing to the socket.
    handed: AtomicBool,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Item>,
    /// A byte is in the socket that the loop has not drained yet.
    woken: bool,
    /// The loop's thread is spinning in [`LoopQueue::spin`]: the next item wakes it through
    /// `handed`, with no system call on either side.
    spinning: bool,
    closed: bool,
}

impl LoopQueue {
    /// Queues `item` and wakes the loop unless a wake-up is pending; gives it back when the
    /// loop's inbox is closed. Any thread, no GIL: bounded work (invariant 1).
    fn push(&self, item: Item) -> Result<(), Item> {
        let wake = match self.state.lock() {
            Ok(mut state) if !state.closed => {
                state.items.push_back(item);
                if std::mem::replace(&mut state.spinning, false) {
                    self.handed.store(true, Ordering::Release);
                    false
                } else {
                    !std::mem::replace(&mut state.woken, true)
                }
            }
            _ => return Err(item),
        };
        if wake {
            // A full socket already wakes the loop; a closed one means nobody listens.
            let _ = (&self.wake).write(&[0]);
        }
        Ok(())
    }

    /// Queues the reply of call `id` (dropped when the loop is closed).
    pub fn reply(&self, id: u64, env: OwnedEnv, term: SavedTerm) {
        let _ = self.push(Item::Reply(id, env, term));
    }

    /// Tells the loop that call `id` will never be answered.
    pub fn lost(&self, id: u64) {
        let _ = self.push(Item::Lost(id));
    }

    /// Waits for an item, spinning, until `until` at the latest (the loop's thread, GIL
    /// released); true when one is queued. The item then came with no byte in the socket
    /// (unless one was queued before), so the loop must drain without waiting for the
    /// socket's readiness. A busy wait with no system call: yielding the CPU instead
    /// (`sched_yield`) measured worse, as it hands the CPU to whatever else is runnable there
    /// for a whole time slice.
    fn spin(&self, until: Instant) -> bool {
        match self.state.lock() {
            Ok(mut state) if !state.closed => {
                if !state.items.is_empty() {
                    return true;
                }
                state.spinning = true;
                self.handed.store(false, Ordering::Relaxed);
            }
            _ => return false,
        }
        while !self.handed.load(Ordering::Acquire) {
            if Instant::now() >= until {
                return match self.state.lock() {
                    // A push that took the lock first handed its item over.
                    Ok(mut state) => !std::mem::replace(&mut state.spinning, false),
                    Err(_) => false,
                };
            }
            std::hint::spin_loop();
        }
        true
    }

    fn take(&self) -> VecDeque<Item> {
        match self.state.lock() {
            Ok(mut state) => {
                state.woken = false;
                std::mem::take(&mut state.items)
            }
            Err(_) => VecDeque::new(),
        }
    }

    /// Closes the queue: later items are refused; what it held is returned.
    fn close(self: &Arc<Self>) -> VecDeque<Item> {
        if let Ok(mut serving) = ASYNC_CALLS.write() {
            if serving
                .as_ref()
                .is_some_and(|queue| Arc::ptr_eq(queue, self))
            {
                *serving = None;
            }
        }
        match self.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                std::mem::take(&mut state.items)
            }
            Err(_) => VecDeque::new(),
        }
    }
}

/// Gives the `py:async_call`s among `items` to their pools (the loop is closing); the replies
/// are dropped.
fn forward(py: Python<'_>, items: VecDeque<Item>) {
    for item in items {
        if let Item::Start(start) = item {
            let LoopStart { request, pool } = *start;
            run_elsewhere(py, request, &pool);
        }
    }
}

/// Queues `request` on `pool`, or replies `{error, stopped}` when the pool stopped.
fn run_elsewhere(py: Python<'_>, request: Request, pool: &Pool) {
    if let Err(request) = pool.submit_returning(request) {
        aio::reply_stopped(py, *request);
    }
}

/// A loop's inbox as Python sees it (`erlang._async` attaches one to each loop).
#[pyclass(frozen, module = "erlang._native", name = "LoopInbox")]
pub struct LoopInbox {
    queue: Arc<LoopQueue>,
    /// The read end of the wake-up socket, until closed.
    read: Mutex<Option<UnixStream>>,
    /// Call number -> the future its reply settles.
    futures: Py<PyDict>,
    /// When the loop may spin for a reply ([`LoopInbox::spin`]).
    spin: Mutex<SpinState>,
}

/// The loop thread's record of its spins.
#[derive(Default)]
struct SpinState {
    /// When the last call left: the loop may spin for its reply until `SPIN` after.
    last_call: Option<Instant>,
    /// The back-off after spins given up in a row: 0, 1, 3, 7, ... up to `MAX_SKIP`.
    misses: u32,
    /// Chances to spin still to let pass.
    skip: u32,
}

/// `erlang._native._loop_inbox()` inside the BEAM: a new inbox.
pub fn new_inbox(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let (read, write) = crate::mailbox::wake_pair("loop inbox")?;
    let inbox = LoopInbox {
        queue: Arc::new(LoopQueue {
            state: Mutex::new(QueueState::default()),
            wake: write,
            next_id: AtomicU64::new(1),
            handed: AtomicBool::new(false),
        }),
        read: Mutex::new(Some(read)),
        futures: PyDict::new(py).unbind(),
        spin: Mutex::new(SpinState::default()),
    };
    Bound::new(py, inbox).map(Bound::into_any)
}

#[pymethods]
impl LoopInbox {
    /// The fd the loop watches (the inbox owns it); `RuntimeError` once closed.
    fn fileno(&self) -> PyResult<i32> {
        self.read
            .lock()
            .ok()
            .and_then(|read| read.as_ref().map(AsRawFd::as_raw_fd))
            .ok_or_else(|| PyRuntimeError::new_err("the loop inbox is closed"))
    }

    /// Starts `erlang.async_call(name, *args)` whose reply settles `future` (an
    /// `asyncio.Future` of this inbox's loop) when [`Self::drain`] runs; returns the handle
    /// whose `cancel()` forgets the call. Raises as `erlang._native._async_start` does.
    fn call<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        future: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("Function name must be a string"))?
            .to_str()?;
        let inbox = slf.get();
        if inbox.read.lock().map(|r| r.is_none()).unwrap_or(true) {
            return Err(PyRuntimeError::new_err("the loop inbox is closed"));
        }
        let id = inbox.queue.next_id.fetch_add(1, Ordering::Relaxed);
        // In place before the call leaves: its reply can never find it missing.
        let futures = inbox.futures.bind(py);
        futures.set_item(id, future)?;
        let target = super::Target::Loop(inbox.queue.clone(), id);
        let channel = match super::start(py, name, args, target) {
            Ok(channel) => channel,
            Err(err) => {
                futures.del_item(id)?;
                return Err(err);
            }
        };
        if let Ok(mut spin) = inbox.spin.lock() {
            spin.last_call = Some(Instant::now());
        }
        Bound::new(
            py,
            AsyncCall {
                channel,
                pending: Some((inbox.futures.clone_ref(py), id)),
            },
        )
        .map(Bound::into_any)
    }

    /// Called by the loop's selector before it blocks for up to `timeout` seconds (`None`:
    /// no limit): while one call of this loop is waiting and left less than `SPIN` ago, waits
    /// for a reply (or any item) spinning with the GIL released, at most until then (and
    /// `timeout`). True when something arrived: the selector then reports the inbox ready,
    /// and [`Self::drain`] takes it, whether or not a byte was written. An idle loop, one
    /// whose calls all left longer ago, and one backing off after spins in vain (`MAX_SKIP`)
    /// return false at once and sleep in their selector as before.
    #[pyo3(signature = (timeout=None))]
    fn spin(&self, py: Python<'_>, timeout: Option<f64>) -> bool {
        let Some(last) = self.spin.lock().ok().and_then(|spin| spin.last_call) else {
            return false;
        };
        let now = Instant::now();
        let full = last + SPIN;
        let mut until = full;
        if let Some(timeout) = timeout {
            let Ok(timeout) = Duration::try_from_secs_f64(timeout) else {
                return false;
            };
            if let Some(deadline) = now.checked_add(timeout) {
                until = until.min(deadline);
            }
        }
        // One call waiting: a coroutine awaiting Erlang one call at a time, bound by the
        // latency of each. With more in flight the loop is busy enough to be woken anyway, and
        // on 2 cores a spinning thread took the CPU of the schedulers serving them (a FastAPI
        // app served by py_http with 50 connections: 15% fewer requests per second).
        if until <= now || self.futures.bind(py).len() != 1 {
            return false;
        }
        let backing_off = self.spin.lock().is_ok_and(|mut spin| {
            let skip = spin.skip > 0;
            spin.skip = spin.skip.saturating_sub(1);
            skip
        });
        if backing_off {
            return false;
        }
        // No lock is held while the GIL is released.
        let got = py.detach(|| self.queue.spin(until));
        if let Ok(mut spin) = self.spin.lock() {
            if got {
                spin.misses = 0;
            } else if until == full {
                // Waited its whole time in vain (not cut short by the loop's next timer).
                spin.misses = (spin.misses * 2 + 1).min(MAX_SKIP);
                spin.skip = spin.misses;
            }
        }
        got
    }

    /// Settles the futures whose replies arrived (on the loop's thread, from its reader
    /// callback): the value, or the `erlang.ErlangError` of a failed call. A future already
    /// done (its task was cancelled) is left alone.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        if let Ok(read) = self.read.lock() {
            if let Some(mut read) = read.as_ref() {
                let mut buffer = [0u8; 256];
                loop {
                    match read.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(err) if err.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
        }
        let futures = self.futures.bind(py);
        for item in self.queue.take() {
            let (id, reply) = match item {
                Item::Reply(id, env, term) => (id, Some((env, term))),
                Item::Lost(id) => (id, None),
                Item::Start(start) => {
                    let LoopStart { request, pool } = *start;
                    if let Err(request) = aio::start_on_loop(py, request, pool.is_stopped()) {
                        run_elsewhere(py, request, &pool);
                    }
                    continue;
                }
            };
            let Some(future) = futures.get_item(id)? else {
                continue;
            };
            futures.del_item(id)?;
            if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                continue;
            }
            let outcome = match reply {
                Some((env, term)) => result_to_py(py, &env, &term),
                None => Err(lost_error(py)),
            };
            let settled = match outcome {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
                Err(err) => {
                    future.call_method1(intern!(py, "set_exception"), (err.into_value(py),))
                }
            };
            if let Err(err) = settled {
                err.write_unraisable(py, Some(&future));
            }
        }
        Ok(())
    }

    /// Closes the inbox (its loop is closing): later replies are dropped, the fd is closed,
    /// the futures still waiting are forgotten. Nothing happens the second time.
    fn close(&self, py: Python<'_>) {
        forward(py, self.queue.close());
        if let Ok(mut read) = self.read.lock() {
            read.take();
        }
        self.futures.bind(py).clear();
    }

    /// Makes this inbox (that of `erlang._aio`'s loop, called on its thread) the one
    /// `py:async_call`s of known `async def`s are submitted to (see [`submit_to_loop`]).
    fn serve_async_calls(&self) -> PyResult<()> {
        if self.read.lock().map(|r| r.is_none()).unwrap_or(true) {
            return Err(PyRuntimeError::new_err("the loop inbox is closed"));
        }
        if let Ok(mut serving) = ASYNC_CALLS.write() {
            *serving = Some(self.queue.clone());
        }
        Ok(())
    }

    /// The number of calls whose replies this inbox still waits for.
    fn waiting(&self, py: Python<'_>) -> usize {
        self.futures.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<erlang._native.LoopInbox, {} waiting>",
            self.futures.bind(py).len()
        )
    }
}

impl Drop for LoopInbox {
    fn drop(&mut self) {
        let items = self.queue.close();
        if items.iter().any(|item| matches!(item, Item::Start(..))) {
            // Dropped by Python's collector, which holds the GIL already.
            Python::attach(|py| forward(py, items));
        }
    }
}
