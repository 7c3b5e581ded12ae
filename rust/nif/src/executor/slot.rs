//! One executor thread as other threads see it (its [`Slot`]): the job it runs, its private
//! channel (callback results, nested requests, wake-ups), the interrupt and the interruptible
//! sleep; and the thread-local that tells code running on an executor which one it is.
//!
//! The slot is shared by the executor thread, schedulers (cancel, callback results) and
//! `python-main` (interrupts); only `python-main` and the executor itself take the GIL. Which
//! job the executor runs, and the interrupt meant for it, change under one lock: an interrupt
//! never lands in a job it was not meant for, with or without a GIL to order them.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use erlang_python_core::native::Interrupted;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyTuple};
use rustler::env::SavedTerm;
use rustler::OwnedEnv;

use super::job::{JobInner, Request, Runner};
use super::{monitor, python};
use crate::interp;

/// How soon an interrupt that found its executor at an unsafe point looks again
/// (then less and less often, down to once per [`IMPORT_POLL_MAX`]).
const IMPORT_POLL: Duration = Duration::from_millis(1);
const IMPORT_POLL_MAX: Duration = Duration::from_millis(50);
/// How long a job may go on after its interrupt before its executor is given up on.
pub const LOST_AFTER: Duration = Duration::from_secs(2);

/// A message for one executor.
pub enum SlotMessage {
    /// A request that must run on this executor (a context's, or one nested in a callback it
    /// is waiting for).
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
    /// Look again: a job of this executor was cancelled, or its context released it.
    Wake,
}

/// The counters of a pool, shared by its slots.
#[derive(Default)]
pub struct Counters {
    /// Requests waiting in the shared queue.
    pub queued: AtomicUsize,
    /// Requests being run.
    pub running: AtomicUsize,
    /// The pool is stopping.
    pub stopped: AtomicBool,
    /// Executors checked out by contexts (`py:bind`).
    pub bound: AtomicUsize,
}

/// The job an executor runs, and the interrupt waiting for it.
#[derive(Default)]
struct Current {
    /// The job running now (the innermost one, when nested).
    job: Option<Arc<JobInner>>,
    /// Free-threaded builds: the job whose interrupt waits for the executor to reach a safe
    /// point ([`monitor`]); an outer job's while a nested one runs.
    interrupt: Option<Arc<JobInner>>,
}

/// One executor thread's state as others see it.
pub struct Slot {
    thread_id: AtomicU64,
    /// The executor's thread state (see [`Slot::set_tstate`]).
    tstate: AtomicUsize,
    /// Never held while Python code runs or while waiting for anything else.
    current: Mutex<Current>,
    /// `current.interrupt.is_some()`, for the monitoring callback's look without the lock.
    interrupt_pending: AtomicBool,
    woken: Mutex<bool>,
    wake: Condvar,
    private_tx: Sender<SlotMessage>,
    private_rx: Receiver<SlotMessage>,
    next_callback: AtomicU64,
    counters: Arc<Counters>,
    /// Checked out by a context: serves its private channel only.
    bound: AtomicBool,
    /// Given up on: its job ignored an interrupt, and a replacement took its place in the pool.
    /// The thread exits once that job returns.
    lost: AtomicBool,
    /// Called (on `python-main`) when the slot is given up on: starts its replacement.
    on_lost: OnLost,
}

/// Starts the replacement of a slot given up on (installed by the pool).
pub type OnLost = Box<dyn Fn(&Arc<Slot>) + Send + Sync>;

impl Slot {
    /// A slot for an executor of the pool counting in `counters`; `on_lost` starts its
    /// replacement if it is ever given up on.
    pub fn new(counters: Arc<Counters>, on_lost: OnLost) -> Self {
        let (private_tx, private_rx) = crossbeam_channel::unbounded();
        Slot {
            thread_id: AtomicU64::new(0),
            tstate: AtomicUsize::new(0),
            current: Mutex::new(Current::default()),
            interrupt_pending: AtomicBool::new(false),
            woken: Mutex::new(false),
            wake: Condvar::new(),
            private_tx,
            private_rx,
            next_callback: AtomicU64::new(1),
            counters,
            bound: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            on_lost,
        }
    }

    /// True once given up on (see [`LOST_AFTER`]): the thread takes no more work.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// The pool's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Records the Python thread id of the executor (for interrupts).
    pub fn set_thread_id(&self, id: u64) {
        self.thread_id.store(id, Ordering::Release);
    }

    /// The Python thread id of the executor.
    pub fn thread_id(&self) -> u64 {
        self.thread_id.load(Ordering::Acquire)
    }

    /// Records the executor's Python thread state (an address; 0 once it ends), set and
    /// cleared by the executor with the GIL held, read by `python-main` with the GIL held.
    pub fn set_tstate(&self, tstate: usize) {
        self.tstate.store(tstate, Ordering::Release);
    }

    /// The executor's Python thread state, for reading its frames; 0 when it has none.
    pub fn tstate(&self) -> usize {
        self.tstate.load(Ordering::Acquire)
    }

    /// The job this executor runs now (the innermost one, when nested).
    pub fn current_job(&self) -> Option<Arc<JobInner>> {
        self.current.lock().ok().and_then(|c| c.job.clone())
    }

    /// A fresh callback id.
    pub fn next_callback_id(&self) -> u64 {
        self.next_callback.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands this executor a message; false when it has exited.
    pub fn send(&self, message: SlotMessage) -> bool {
        self.private_tx.send(message).is_ok()
    }

    /// Waits (GIL released by the caller) for the next private message, polling for `spin`
    /// first.
    pub fn next_private(&self, spin: Duration) -> Option<SlotMessage> {
        spin_then_recv(&self.private_rx, spin, |rx| match rx.try_recv() {
            Ok(m) => Poll::Ready(m),
            Err(crossbeam_channel::TryRecvError::Empty) => Poll::Empty,
            Err(crossbeam_channel::TryRecvError::Disconnected) => Poll::Closed,
        })
        .or_else(|| self.private_rx.recv().ok())
    }

    /// A private message if one is waiting.
    pub fn try_private(&self) -> Option<SlotMessage> {
        self.private_rx.try_recv().ok()
    }

    /// The private channel, for a `select` with the pool's queue.
    pub fn private_receiver(&self) -> &Receiver<SlotMessage> {
        &self.private_rx
    }

    /// True while checked out by a context.
    pub fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Acquire)
    }

    /// Checks the slot out for a context; false when it already is.
    pub fn try_bind(&self) -> bool {
        let won = self
            .bound
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            self.counters.bound.fetch_add(1, Ordering::AcqRel);
        }
        won
    }

    /// Gives the slot back to the pool (its context is released).
    pub fn unbind(&self) {
        if self.bound.swap(false, Ordering::AcqRel) {
            self.counters.bound.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = self.private_tx.send(SlotMessage::Wake);
    }

    fn is_running(&self, job: &Arc<JobInner>) -> bool {
        self.current
            .lock()
            .map(|c| is_job(&c.job, job))
            .unwrap_or(false)
    }

    /// True while the executor runs a job.
    pub fn is_busy(&self) -> bool {
        self.current
            .lock()
            .map(|c| c.job.is_some())
            .unwrap_or(false)
    }

    /// The executor starts `job` (nested in the one it runs, if any); returns that outer one.
    pub fn enter(&self, job: Arc<JobInner>) -> Option<Arc<JobInner>> {
        let Ok(mut cur) = self.current.lock() else {
            return None;
        };
        let outer = cur.job.replace(job);
        self.set_woken(false);
        outer
    }

    /// The executor is done with `finished` and goes back to `outer`: an interrupt of
    /// `finished` still pending (it found no safe point, or came as the job returned) is
    /// dropped, not left to hit the next job.
    pub fn leave(&self, py: Python<'_>, outer: Option<Arc<JobInner>>, finished: &Arc<JobInner>) {
        let Ok(mut cur) = self.current.lock() else {
            return;
        };
        cur.job = outer;
        if is_job(&cur.interrupt, finished) {
            self.drop_interrupt(&mut cur);
        }
        if !interp::FREE_THREADED {
            interp::clear_pending(py, self.thread_id());
        }
        self.set_woken(false);
    }

    fn set_woken(&self, value: bool) {
        if let Ok(mut woken) = self.woken.lock() {
            *woken = value;
        }
        if value {
            self.wake.notify_all();
        }
    }

    fn drop_interrupt(&self, cur: &mut Current) {
        if cur.interrupt.take().is_some() {
            self.interrupt_pending.store(false, Ordering::Release);
            monitor::disarm();
        }
    }

    /// Takes the pending interrupt of the job the executor runs, if there is one (free-threaded
    /// builds).
    fn take_interrupt(&self) -> bool {
        let Ok(mut cur) = self.current.lock() else {
            return false;
        };
        let mine = cur
            .job
            .as_ref()
            .is_some_and(|job| is_job(&cur.interrupt, job));
        if mine {
            self.drop_interrupt(&mut cur);
        }
        mine
    }

    /// Interrupts `job` if this executor still runs it, and ends its sleep: on a GIL build,
    /// raises `erlang.Interrupted` at its next bytecode (the caller saw a safe point, and holds
    /// the GIL, so the executor has not moved since); on a free-threaded build, leaves the
    /// interrupt pending for the executor to raise at its next safe point ([`monitor`]).
    fn interrupt(&self, py: Python<'_>, job: &Arc<JobInner>) {
        let monitored = interp::FREE_THREADED && monitor::ready(py, interrupt_callback);
        let arm = {
            let Ok(mut cur) = self.current.lock() else {
                return;
            };
            // A job handed to the asyncio loop is stopped by its cancel hook alone; the flag
            // is set under this lock ([`Runner::hand_over`]), so no interrupt crosses it.
            if !is_job(&cur.job, job) || job.is_handed_over() {
                return;
            }
            let arm = monitored && cur.interrupt.is_none();
            if monitored {
                if arm {
                    monitor::add_pending();
                }
                cur.interrupt = Some(job.clone());
                self.interrupt_pending.store(true, Ordering::Release);
            } else {
                let exc = py.get_type::<Interrupted>();
                interp::raise_in_thread(py, self.thread_id(), &exc);
            }
            self.set_woken(true);
            arm
        };
        if arm {
            monitor::sync(py);
        }
    }

    /// Interrupts `job` if this executor still runs it, unless it is at a point where an
    /// exception cannot unwind cleanly (`python::at_unsafe_point`): then looks again after
    /// `poll` (doubling up to [`IMPORT_POLL_MAX`]) without holding up python-main's other work.
    /// Free-threaded builds leave that wait to the executor itself ([`Self::interrupt`]).
    fn interrupt_when_safe(self: Arc<Self>, py: Python<'_>, job: Arc<JobInner>, poll: Duration) {
        if !self.is_running(&job) {
            return;
        }
        if !interp::FREE_THREADED && python::at_unsafe_point(py, self.tstate()) {
            let again = Instant::now() + poll;
            let next = (poll * 2).min(IMPORT_POLL_MAX);
            interp::run_on_main_at(
                again,
                Box::new(move |py| self.interrupt_when_safe(py, job, next)),
            );
        } else {
            self.interrupt(py, &job);
        }
    }

    /// Called [`LOST_AFTER`] the job was to be interrupted: if it still runs (its code caught
    /// `erlang.Interrupted` and went on, or it stayed at an unsafe point, or in a long C call),
    /// the executor is given up on: the pool starts a replacement so that it keeps its size,
    /// this thread exits when the job returns, and the job is interrupted once more. Contexts
    /// keep their executor (their thread is theirs).
    fn give_up_if_running(self: Arc<Self>, py: Python<'_>, job: Arc<JobInner>) {
        if !self.is_running(&job)
            || job.is_handed_over()
            || self.is_bound()
            || self.lost.swap(true, Ordering::AcqRel)
        {
            return;
        }
        log::warn!(
            "an executor's job ignored its interrupt for {LOST_AFTER:?}; a new executor \
             replaces it, and its thread exits when the job returns"
        );
        (self.on_lost)(&self);
        // Once more, unless it is at an unsafe point (the first interrupt's polling is still
        // waiting for a safe one then; on a free-threaded build, the executor waits for one).
        if interp::FREE_THREADED || !python::at_unsafe_point(py, self.tstate()) {
            self.interrupt(py, &job);
        }
    }

    /// Asks `python-main` to interrupt whatever this executor runs (the pool is stopping),
    /// and wakes it from a callback wait.
    pub fn interrupt_any(self: &Arc<Self>) {
        let slot = self.clone();
        interp::run_on_main(Box::new(move |py| {
            if let Some(job) = slot.current_job() {
                slot.interrupt_if_running(py, job);
            }
        }));
        let _ = self.private_tx.send(SlotMessage::Wake);
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
                    // Consumed: code that swallows the interrupt and sleeps again sleeps as
                    // asked instead of spinning.
                    *woken = false;
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
            // The same interrupt is also pending (as an async exception, or for the executor to
            // raise at its next safe point): raise it once.
            if interp::FREE_THREADED {
                self.take_interrupt();
            } else {
                interp::clear_pending(py, self.thread_id());
            }
            Err(Interrupted::new_err("the Erlang caller stopped waiting"))
        } else {
            Ok(())
        }
    }
}

impl Runner for Slot {
    fn wake(&self) {
        let _ = self.private_tx.send(SlotMessage::Wake);
    }

    fn interrupt_if_running(self: Arc<Self>, py: Python<'_>, job: Arc<JobInner>) {
        if !self.is_running(&job) {
            return;
        }
        let (slot, stuck) = (self.clone(), job.clone());
        interp::run_on_main_at(
            Instant::now() + LOST_AFTER,
            Box::new(move |py| slot.give_up_if_running(py, stuck)),
        );
        self.interrupt_when_safe(py, job, IMPORT_POLL);
    }

    fn callback_result(&self, id: u64, env: OwnedEnv, term: SavedTerm) -> bool {
        self.send(SlotMessage::Reply { id, env, term })
    }

    fn run_nested(&self, request: Request) -> bool {
        self.send(SlotMessage::Run(request))
    }

    fn hand_over(&self, py: Python<'_>, job: &Arc<JobInner>) {
        let Ok(mut cur) = self.current.lock() else {
            job.mark_handed_over();
            return;
        };
        job.mark_handed_over();
        if !is_job(&cur.job, job) {
            return;
        }
        // An interrupt that became pending before (the caller gave up while the call that
        // made the coroutine ran) would otherwise be raised in `erlang._aio.schedule`, between
        // making the task's coroutine and the loop owning it. The cancel hook stops the job
        // from now on.
        if is_job(&cur.interrupt, job) {
            self.drop_interrupt(&mut cur);
        }
        if !interp::FREE_THREADED {
            interp::clear_pending(py, self.thread_id());
        }
        self.set_woken(false);
    }
}

fn is_job(slot: &Option<Arc<JobInner>>, job: &Arc<JobInner>) -> bool {
    slot.as_ref().is_some_and(|j| Arc::ptr_eq(j, job))
}

fn interrupt_callback(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
    wrap_pyfunction!(interrupt_point, py)
}

/// The `sys.monitoring` callback of free-threaded builds ([`monitor`]), called by every Python
/// thread while an interrupt is pending: in the executor whose job it is for, raises
/// `erlang.Interrupted` once its own stack is at a safe point (`python::unsafe_here`).
#[pyfunction]
#[pyo3(signature = (*_event))]
fn interrupt_point(py: Python<'_>, _event: &Bound<'_, PyTuple>) -> PyResult<()> {
    let slot = CURRENT_SLOT.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|slot| slot.interrupt_pending.load(Ordering::Acquire))
            .cloned()
    });
    let Some(slot) = slot else {
        return Ok(());
    };
    if python::unsafe_here(py) || !slot.take_interrupt() {
        return Ok(());
    }
    Err(Interrupted::new_err("the Erlang caller stopped waiting"))
}

thread_local! {
    static CURRENT_SLOT: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// The slot of the executor running on this thread, if it is one.
pub fn current_slot() -> Option<Arc<Slot>> {
    CURRENT_SLOT.with(|c| c.borrow().clone())
}

/// Marks this thread as the executor of `slot` (`None`: no longer).
pub fn set_current_slot(slot: Option<Arc<Slot>>) {
    CURRENT_SLOT.with(|c| *c.borrow_mut() = slot);
}

/// The job the executor on this thread runs, if any.
pub fn current_job() -> Option<Arc<JobInner>> {
    current_slot().and_then(|slot| slot.current_job())
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

/// How long a waiting executor polls before it parks, at least. Sequential callers send their
/// next request (or callback reply) a few microseconds after the previous message; catching it
/// while still awake saves two futex wake-ups per round trip.
pub const SPIN: Duration = Duration::from_micros(50);

/// How long a waiting executor polls without yielding its core.
const SPIN_PAUSE: Duration = Duration::from_micros(5);

/// The longest an idle executor polls for its next request ([`IdleSpin`]).
const SPIN_MAX: Duration = Duration::from_micros(250);

/// How long an idle executor polls for its next request before it parks: [`SPIN`], or, when
/// its last request came later than that but within [`SPIN_MAX`] of its going idle, twice that
/// gap (at most [`SPIN_MAX`]). A caller that sends big arguments spends 50-150 us making them
/// (a 150-item document's external term format, or a 10k-int list's), more than [`SPIN`], so
/// without this its every request woke a parked thread. The polling yields the core
/// ([`spin_then_recv`]), so a spinning executor never keeps a thread waiting beside it.
pub struct IdleSpin {
    spin: Duration,
    since: Instant,
}

impl Default for IdleSpin {
    fn default() -> IdleSpin {
        IdleSpin {
            spin: SPIN,
            since: Instant::now(),
        }
    }
}

impl IdleSpin {
    /// The executor goes idle now; how long to poll.
    pub fn idle(&mut self) -> Duration {
        self.since = Instant::now();
        self.spin
    }

    /// A message came: the next idle spell polls for twice the gap, when that was short.
    pub fn woke(&mut self) {
        let gap = self.since.elapsed();
        self.spin = if gap <= SPIN_MAX {
            (gap * 2).clamp(SPIN, SPIN_MAX)
        } else {
            SPIN
        };
    }
}

/// Polls `poll` for up to `spin`; `None` when nothing came (the caller then blocks) or the
/// channel closed. Between polls the thread yields its core to any thread that is ready to
/// run on it (on a machine of few cores that is often the scheduler thread whose reply or
/// request this executor waits for), and otherwise goes on at once.
pub fn spin_then_recv<C, T>(
    channel: &C,
    spin: Duration,
    mut poll: impl FnMut(&C) -> Poll<T>,
) -> Option<T> {
    let start = Instant::now();
    loop {
        match poll(channel) {
            Poll::Ready(message) => return Some(message),
            Poll::Closed => return None,
            Poll::Empty => {}
        }
        let spent = start.elapsed();
        if spent >= spin {
            return None;
        }
        if spent < SPIN_PAUSE {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
}
