//! Pools of executor threads and the contexts checked out of them. A pool owns N threads
//! that pull requests from one shared crossbeam channel; a context (`py:bind`) takes one of
//! them for its own requests and namespace. Submitting and stopping run on schedulers and
//! never wait; the threads' loop ([`serve`]) runs on the executors.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use pyo3::prelude::*;
use rustler::{Env, LocalPid};

use super::fair::{self, Usage};
use super::job::{JobInner, Request};
use super::python::Namespace;
use super::run::{run, Gil, Source};
use super::slot::{self, spin_then_recv, Counters, IdleSpin, Poll, Slot, SlotMessage};
use crate::error::{Error, Result};
use crate::interp;

/// What the pool's channel carries: a doorbell per request put in the [`Backlog`], or the
/// order to stop.
enum Message {
    Run,
    Stop,
}

/// A request waiting for an executor, and since when it waits: `None` while it was pushed onto
/// an empty backlog and nothing came after it (no clock read on the uncontended path; only the
/// front can be `None`).
struct Queued {
    request: Request,
    since: Option<Instant>,
}

/// The requests waiting for an executor. The channel rings once per request; the executor that
/// answers takes the request that should go first ([`fair::pick`]: the lightest caller's
/// lately, or one that waited too long) among the first [`PICK_WINDOW`]. One request waiting
/// (the common case) is simply taken; free-threaded builds take them in order.
#[derive(Default)]
struct Backlog(Mutex<VecDeque<Queued>>);

/// How many of the oldest waiting requests an executor chooses from.
const PICK_WINDOW: usize = 64;

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        // Nothing panics while it is held; a poisoned lock still holds a consistent queue.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, request: Request) {
        let mut backlog = self.lock();
        let since = if backlog.is_empty() {
            None
        } else {
            let now = Instant::now();
            if let Some(front) = backlog.front_mut() {
                front.since.get_or_insert(now);
            }
            Some(now)
        };
        backlog.push_back(Queued { request, since });
    }

    /// Takes `job`'s request back out, if no executor took it yet.
    fn withdraw(&self, job: *const JobInner) -> Option<Request> {
        let mut backlog = self.lock();
        let i = backlog
            .iter()
            .position(|q| std::ptr::eq(Arc::as_ptr(q.request.job.inner()), job))?;
        backlog.remove(i).map(|queued| queued.request)
    }

    fn take(&self) -> Option<Request> {
        let mut backlog = self.lock();
        let i = if backlog.len() > 1 && fair::ENABLED {
            let now = Instant::now();
            let first = backlog.iter().take(PICK_WINDOW).map(|q| {
                let caller = q.request.job.inner().caller();
                (q.since.unwrap_or(now), Usage::of(caller))
            });
            fair::pick(first, now).unwrap_or(0)
        } else {
            0
        };
        backlog.remove(i).map(|queued| queued.request)
    }
}

/// A set of executor threads fed by one queue. The resource `pool_new/1` returns; dropping
/// it stops the pool.
pub struct Pool {
    sender: RwLock<Option<Sender<Message>>>,
    shared: Arc<Shared>,
}

/// What the pool's threads and its replacements need.
struct Shared {
    /// The executors in service (a given-up one leaves, its replacement comes in).
    slots: RwLock<Vec<Arc<Slot>>>,
    /// `slots.len()`, read on every submit without taking the lock.
    size: AtomicUsize,
    counters: Arc<Counters>,
    queue: Receiver<Message>,
    backlog: Arc<Backlog>,
    /// Numbers the threads' names.
    next_thread: AtomicUsize,
}

impl Shared {
    /// Starts one executor thread and puts its slot in service.
    fn spawn(self: &Arc<Self>) -> Result<Arc<Slot>> {
        let weak = Arc::downgrade(self);
        let slot = Arc::new(Slot::new(
            self.counters.clone(),
            Box::new(move |lost| {
                if let Some(shared) = weak.upgrade() {
                    shared.replace(lost);
                }
            }),
        ));
        let (thread_slot, queue, backlog) =
            (slot.clone(), self.queue.clone(), self.backlog.clone());
        let i = self.next_thread.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name(format!("py-executor-{i}"))
            .stack_size(64 << 20)
            .spawn(move || executor_main(&thread_slot, &queue, &backlog))?;
        if let Ok(mut slots) = self.slots.write() {
            slots.push(slot.clone());
            self.size.store(slots.len(), Ordering::Release);
        }
        Ok(slot)
    }

    /// Takes `lost` out of service and starts a replacement, unless the pool is stopping.
    fn replace(self: &Arc<Self>, lost: &Arc<Slot>) {
        if self.counters.stopped.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut slots) = self.slots.write() {
            slots.retain(|slot| !Arc::ptr_eq(slot, lost));
            self.size.store(slots.len(), Ordering::Release);
        }
        if let Err(err) = self.spawn() {
            log::error!("cannot start an executor to replace a lost one: {err}");
        }
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().map(|s| s.clone()).unwrap_or_default()
    }
}

#[rustler::resource_impl]
impl rustler::Resource for Pool {}

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

impl Pool {
    /// Starts `n` executor threads.
    pub fn start(n: usize) -> Result<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            slots: RwLock::new(Vec::with_capacity(n)),
            size: AtomicUsize::new(0),
            counters: Arc::new(Counters::default()),
            queue: rx,
            backlog: Arc::default(),
            next_thread: AtomicUsize::new(0),
        });
        let pool = Pool {
            sender: RwLock::new(Some(tx)),
            shared,
        };
        for _ in 0..n {
            // On failure the pool is dropped, which stops the threads already started.
            pool.shared.spawn()?;
        }
        log::debug!("started {n} executor threads");
        Ok(pool)
    }

    /// Queues a request for any executor not checked out by a context.
    pub fn submit(&self, request: Request) -> Result<()> {
        self.queue(request).map_err(|(err, _)| err)
    }

    /// [`Self::submit`], giving the request back when it cannot be queued.
    pub fn submit_returning(&self, request: Request) -> std::result::Result<(), Box<Request>> {
        self.queue(request).map_err(|(_, request)| request)
    }

    fn queue(&self, request: Request) -> std::result::Result<(), (Error, Box<Request>)> {
        let Ok(guard) = self.sender.read() else {
            return Err((Error::Stopped, Box::new(request)));
        };
        let Some(sender) = guard.as_ref() else {
            return Err((Error::Stopped, Box::new(request)));
        };
        let counters = &self.shared.counters;
        if counters.bound.load(Ordering::Acquire) >= self.size() {
            return Err((Error::NoWorkers, Box::new(request)));
        }
        counters.queued.fetch_add(1, Ordering::Relaxed);
        let job = Arc::as_ptr(request.job.inner());
        self.shared.backlog.push(request);
        if sender.send(Message::Run).is_err() {
            // Not while the pool holds its own receiver (`Shared::queue`); should it happen, the
            // request comes back unless an executor already took it (then it runs).
            if let Some(request) = self.shared.backlog.withdraw(job) {
                counters.queued.fetch_sub(1, Ordering::Relaxed);
                return Err((Error::Stopped, Box::new(request)));
            }
        }
        Ok(())
    }

    /// True once the pool is stopping.
    pub fn is_stopped(&self) -> bool {
        self.shared.counters.stopped.load(Ordering::Acquire)
    }

    /// Checks out an executor for a context with a private namespace, preferring an idle one.
    pub fn bind(&self) -> Result<Context> {
        if self.shared.counters.stopped.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        let slots = self.shared.slots();
        let idle = slots.iter().filter(|s| !s.is_busy());
        let busy = slots.iter().filter(|s| s.is_busy());
        idle.chain(busy)
            .find(|slot| slot.try_bind())
            .map(|slot| Context {
                slot: slot.clone(),
                namespace: Arc::new(Namespace::new()),
                released: AtomicBool::new(false),
            })
            .ok_or(Error::NoWorkers)
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
        let counters = &self.shared.counters;
        counters.stopped.store(true, Ordering::Release);
        let slots = self.shared.slots();
        log::debug!(
            "stopping {} executor threads ({} jobs running)",
            slots.len(),
            counters.running.load(Ordering::Relaxed)
        );
        for _ in &slots {
            let _ = sender.send(Message::Stop);
        }
        for slot in &slots {
            slot.interrupt_any();
        }
    }

    /// The executors in service.
    fn size(&self) -> usize {
        self.shared.size.load(Ordering::Acquire)
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let counters = &self.shared.counters;
        PoolStats {
            executors: self.size(),
            queued: counters.queued.load(Ordering::Relaxed),
            running: counters.running.load(Ordering::Relaxed),
            bound: counters.bound.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An executor checked out by `py:bind`, with its own namespace; a resource that monitors the
/// process that made it. Released (the executor goes back to the pool) by
/// [`Context::release`], when the resource is dropped, or when that process dies.
pub struct Context {
    slot: Arc<Slot>,
    namespace: Arc<Namespace>,
    released: AtomicBool,
}

#[rustler::resource_impl]
impl rustler::Resource for Context {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: rustler::Monitor) {
        self.release();
    }
}

impl Context {
    /// The namespace requests of this context run in.
    pub fn namespace(&self) -> &Arc<Namespace> {
        &self.namespace
    }

    /// Queues a request on the context's executor.
    pub fn submit(&self, request: Request) -> Result<()> {
        if self.released.load(Ordering::Acquire) {
            return Err(Error::NotBound);
        }
        if self.slot.send(SlotMessage::Run(request)) {
            Ok(())
        } else {
            Err(Error::Stopped)
        }
    }

    /// True until released.
    pub fn is_bound(&self) -> bool {
        !self.released.load(Ordering::Acquire)
    }

    /// Gives the executor back to the pool (idempotent).
    pub fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.slot.unbind();
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.release();
    }
}

fn executor_main(slot: &Arc<Slot>, rx: &Receiver<Message>, backlog: &Backlog) {
    Python::attach(|py| {
        let ident = py
            .import("threading")
            .and_then(|t| t.call_method0("get_ident"))
            .and_then(|id| id.extract::<u64>());
        if let Ok(id) = ident {
            slot.set_thread_id(id);
        }
        slot.set_tstate(interp::current_thread_state(py));
        slot::set_current_slot(Some(slot.clone()));
        py.detach(|| serve(slot, rx, backlog));
        // With the GIL again: `python-main` reads the thread state only with the GIL held, so
        // it never sees it after the thread state ends with `attach`.
        slot.set_tstate(0);
        slot::set_current_slot(None);
    });
}

enum Either {
    Shared(Message),
    Private(SlotMessage),
}

/// The executor's main loop: requests from the shared queue, and private messages that
/// arrive outside a callback wait (late replies and wake-ups are dropped, nested requests
/// whose callback already ended still run).
fn serve(slot: &Arc<Slot>, rx: &Receiver<Message>, backlog: &Backlog) {
    let mut idle = IdleSpin::default();
    loop {
        let spin = idle.idle();
        if slot.is_bound() {
            // Checked out by a context: its requests only, until it is released (Wake).
            let next = slot.next_private(spin);
            idle.woke();
            match next {
                Some(SlotMessage::Run(request)) => {
                    run(slot, request, Source::Private, Gil::Released)
                }
                Some(_) => {}
                None => return,
            }
            continue;
        }
        let next = spin_then_recv(rx, spin, |rx| {
            if let Some(private) = slot.try_private() {
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
                recv(slot.private_receiver()) -> m => m.ok().map(Either::Private),
            }
        });
        idle.woke();
        match next {
            Some(Either::Shared(Message::Run)) => {
                if let Some(request) = backlog.take() {
                    run(slot, request, Source::Queue, Gil::Released);
                }
            }
            Some(Either::Private(SlotMessage::Run(request))) => {
                run(slot, request, Source::Private, Gil::Released)
            }
            Some(Either::Private(_)) => {}
            Some(Either::Shared(Message::Stop)) | None => return,
        }
        if slot.is_lost() {
            // Its replacement serves the queue now.
            log::info!("a lost executor's job returned; its thread exits");
            return;
        }
    }
}
