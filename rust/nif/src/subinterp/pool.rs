//! The workers of the sub-interpreter pool, their interrupters, and the replies they send.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, unbounded, Receiver, RecvTimeoutError, Sender};
use erlang_python_core::text::elide;
use pyo3::Python;
use rustler::env::SavedTerm;
use rustler::types::tuple::make_tuple;
use rustler::{Atom, Binary, Encoder, Env, OwnedBinary, OwnedEnv, ResourceArc, Term};

use super::ffi::{self, Failure, Interp, PyError, Work};
use crate::atoms;
use crate::bridge::options;
use crate::bridge::reply::{panic_message, MESSAGE_CAP, TRACEBACK_CAP};
use crate::executor::job::{Request, Runner};
use crate::executor::{JobInner, JobResource};

/// How soon an interrupt that found its worker at an unsafe point (an import, a finalizer, an
/// `__exit__`) looks again.
const UNSAFE_POLL: Duration = Duration::from_millis(5);

/// How long a job may ignore its interrupt (catch `erlang.Interrupted` and go on, or stay in a
/// C call) before a new sub-interpreter replaces its worker, as for the executors.
const LOST_AFTER: Duration = Duration::from_secs(2);

/// The most `exec` source a worker keeps for a replacement to replay (16 MiB).
const HISTORY_CAP: usize = 16 << 20;

/// The stack of a worker thread, as large as an executor's.
const WORKER_STACK: usize = 64 << 20;

/// How long stopping the pool waits for each worker to end its interpreter; a worker still
/// stuck in a C call after that is left to finish on its own.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// What a task asks for: terms saved in the task's env (binaries: no copy of their bytes).
pub enum TaskWork {
    /// `Module.Function(*Args, **Kwargs)`; args and kwargs are ETF binaries.
    Call {
        /// Binary.
        module: SavedTerm,
        /// Binary.
        function: SavedTerm,
        /// ETF binary of a list.
        args: SavedTerm,
        /// ETF binary of a map or keyword list.
        kwargs: SavedTerm,
    },
    /// `eval(Code)`; locals an ETF binary of a map.
    Eval {
        /// Binary.
        code: SavedTerm,
        /// ETF binary of a map.
        locals: SavedTerm,
    },
    /// `exec(Code)`.
    Exec {
        /// Binary.
        code: SavedTerm,
    },
}

/// One request for the pool: the job (shared with the caller), the env owning the terms, the
/// caller's `Ref` and what to do.
pub struct Task {
    /// The job, as for the executors.
    pub job: ResourceArc<JobResource>,
    /// Owns `reference` and the terms of `work`.
    pub env: OwnedEnv,
    /// The `Ref` of the reply.
    pub reference: SavedTerm,
    /// What to do.
    pub work: TaskWork,
}

impl Task {
    /// A task for the calling process; its job monitors the caller.
    pub fn new(caller_env: Env<'_>, env: OwnedEnv, reference: SavedTerm, work: TaskWork) -> Task {
        Task {
            job: JobResource::new(caller_env, None),
            env,
            reference,
            work,
        }
    }
}

/// A worker as the job machinery and its interrupter see it.
struct Worker {
    /// The job running now, set and cleared with the interpreter's GIL held.
    current: Mutex<Option<Arc<JobInner>>>,
    /// CPython's id of the worker thread.
    thread_id: AtomicU64,
    /// Where cancelled running jobs go (to the interrupter).
    interrupts: Mutex<Option<Sender<Arc<JobInner>>>>,
    /// Set when the pool stops: errors of interrupted jobs become `{error, stopped}`.
    stopping: AtomicBool,
    /// The statements `exec` ran here, replayed in a replacement ([`replace`]).
    history: Mutex<History>,
    /// Set once a replacement was asked for (its job ignored an interrupt for [`LOST_AFTER`]).
    lost: AtomicBool,
    /// Set when a replacement took this worker's place: it takes no more tasks, and hands
    /// those left in its own queue to the replacement.
    retired: AtomicBool,
}

/// The `exec` statements a worker ran, in order, up to [`HISTORY_CAP`] bytes; past that, the
/// worker can no longer be replaced (its replacement would miss definitions).
#[derive(Default)]
struct History {
    execs: Vec<Vec<u8>>,
    bytes: usize,
    overflowed: bool,
}

impl History {
    fn record(&mut self, code: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.bytes + code.len() > HISTORY_CAP {
            self.overflowed = true;
            self.execs = Vec::new();
            log::warn!(
                "a sub-interpreter ran more than {HISTORY_CAP} bytes of exec statements: it \
                 can no longer be replaced if a job of it ignores its interrupt"
            );
            return;
        }
        self.bytes += code.len();
        self.execs.push(code.to_vec());
    }
}

impl Worker {
    fn new(stopping: bool) -> Worker {
        Worker {
            current: Mutex::new(None),
            thread_id: AtomicU64::new(0),
            interrupts: Mutex::new(None),
            stopping: AtomicBool::new(stopping),
            history: Mutex::new(History::default()),
            lost: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    fn is_running(&self, job: &Arc<JobInner>) -> bool {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().is_some_and(|c| Arc::ptr_eq(c, job))
    }

    fn set_current(&self, job: Option<Arc<JobInner>>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = job;
    }

    fn request_interrupt(&self, job: Arc<JobInner>) {
        let interrupts = self
            .interrupts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = interrupts.as_ref() {
            let _ = tx.send(job);
        }
    }
}

impl Runner for Worker {
    fn wake(&self) {}

    fn interrupt_if_running(self: Arc<Self>, _py: Python<'_>, job: Arc<JobInner>) {
        // Not reached (`interrupt_without_main` handles every interrupt); if it were, on
        // `python-main`: only hand the job over.
        self.request_interrupt(job);
    }

    fn callback_result(&self, _id: u64, _env: OwnedEnv, _term: SavedTerm) -> bool {
        false
    }

    fn run_nested(&self, _request: Request) -> bool {
        false
    }

    fn interrupt_without_main(&self, job: &Arc<JobInner>) -> bool {
        // The interrupter takes the sub-interpreter's GIL; the canceller (a scheduler) only
        // hands the job over.
        self.request_interrupt(job.clone());
        true
    }
}

/// The `sys.path` every worker must have, and its generation (0: the one the workers were
/// created with). Workers compare generations before each task, so a task submitted after a
/// change ([`SubPool::set_path`]) returns runs with the new `sys.path`.
struct PathState {
    generation: AtomicU64,
    path: Mutex<(u64, Arc<Vec<String>>)>,
}

impl PathState {
    /// The current `(generation, path)` if it is newer than `seen`.
    fn newer_than(&self, seen: u64) -> Option<(u64, Arc<Vec<String>>)> {
        if self.generation.load(Ordering::Acquire) == seen {
            return None;
        }
        let current = self.path.lock().unwrap_or_else(PoisonError::into_inner);
        Some((current.0, current.1.clone()))
    }
}

struct Handle {
    worker: Arc<Worker>,
    private: Sender<Task>,
    /// The receiving end of `private` (its worker's), for a replacement to take over.
    private_rx: Receiver<Task>,
    done: Receiver<()>,
    thread: JoinHandle<()>,
}

/// What the workers share with the pool: a worker whose job is stuck asks for its own
/// replacement through it (they hold it weakly: the pool owns it).
struct Shared {
    /// The queue every worker takes tasks from.
    queue: Receiver<Task>,
    path: PathState,
    handles: Mutex<Vec<Handle>>,
    /// Set when the pool stops: no more replacements.
    stopped: AtomicBool,
}

/// The pool: shared queue, one private queue per worker (for `exec`, which runs on every
/// worker), the workers.
pub struct SubPool {
    queue: Mutex<Option<Sender<Task>>>,
    shared: Arc<Shared>,
    size: usize,
}

#[rustler::resource_impl]
impl rustler::Resource for SubPool {}

impl SubPool {
    /// Starts `size` workers, each creating its sub-interpreter with `sys_path` as `sys.path`.
    /// Waits for them to be ready; fails (stopping those that started) with CPython's message.
    pub fn start(size: usize, sys_path: Vec<String>) -> Result<SubPool, String> {
        let (queue_tx, queue_rx) = unbounded::<Task>();
        let shared = Arc::new(Shared {
            queue: queue_rx,
            path: PathState {
                generation: AtomicU64::new(0),
                path: Mutex::new((0, Arc::new(sys_path))),
            },
            handles: Mutex::new(Vec::with_capacity(size)),
            stopped: AtomicBool::new(false),
        });
        let pool = SubPool {
            queue: Mutex::new(Some(queue_tx)),
            shared: shared.clone(),
            size,
        };
        for index in 0..size {
            match spawn_worker(&shared, index, Vec::new()) {
                Ok(handle) => shared
                    .handles
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(handle),
                Err(err) => {
                    pool.stop();
                    return Err(err);
                }
            }
        }
        Ok(pool)
    }

    /// The number of workers.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Gives every worker `path` as its `sys.path`, before the next task it runs (tasks
    /// submitted after this returns see it).
    pub fn set_path(&self, path: Vec<String>) {
        let state = &self.shared.path;
        let mut current = state.path.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = current.0 + 1;
        *current = (generation, Arc::new(path));
        state.generation.store(generation, Ordering::Release);
    }

    /// Queues `task` for any worker: its job, or `Err` when the pool is stopped.
    pub fn submit(&self, task: Task) -> Result<ResourceArc<JobResource>, ()> {
        let job = task.job.clone();
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        match queue.as_ref() {
            Some(tx) => tx.send(task).map(|()| job).map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Queues `task` for worker `index`: its job, or `Err` when the pool is stopped or there
    /// is no such worker.
    pub fn submit_to(&self, index: usize, task: Task) -> Result<ResourceArc<JobResource>, ()> {
        let job = task.job.clone();
        if self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
        {
            return Err(());
        }
        let handles = self
            .shared
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match handles.get(index) {
            Some(handle) => handle.private.send(task).map(|()| job).map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Stops the pool: queued requests get `{error, stopped}`, running ones are interrupted
    /// (and answered `{error, stopped}`), each worker ends its interpreter on its own thread.
    /// Waits up to [`STOP_WAIT`] per worker. Idempotent. Call on a dirty scheduler.
    pub fn stop(&self) {
        self.shut_down(true);
    }

    /// [`Self::stop`], waiting for the workers only when `wait`.
    fn shut_down(&self, wait: bool) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let handles = {
            let mut handles = self
                .shared
                .handles
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Under the lock a replacement checks it under.
            self.shared.stopped.store(true, Ordering::Release);
            std::mem::take(&mut *handles)
        };
        for handle in &handles {
            handle.worker.stopping.store(true, Ordering::Release);
            let running = handle
                .worker
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(job) = running {
                handle.worker.request_interrupt(job);
            }
        }
        if !wait {
            // The workers end on their own once their queues are closed (dropped below).
            return;
        }
        let deadline = Instant::now() + STOP_WAIT;
        for handle in handles {
            let Handle {
                private,
                done,
                thread,
                ..
            } = handle;
            drop(private);
            let left = deadline.saturating_duration_since(Instant::now());
            if done.recv_timeout(left).is_ok() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for SubPool {
    fn drop(&mut self) {
        // The last reference went away without a stop (its owner died): this may run on a
        // scheduler, which must not wait for Python (docs/architecture.md, invariant 1).
        self.shut_down(false);
    }
}

/// Starts worker `index` of the pool on a thread of its own, with the pool's current
/// `sys.path`, replaying `history` (the `exec` statements of the worker it replaces); waits
/// until it is ready.
fn spawn_worker(
    shared: &Arc<Shared>,
    index: usize,
    history: Vec<Vec<u8>>,
) -> Result<Handle, String> {
    let (private_tx, private_rx) = unbounded::<Task>();
    let (ready_tx, ready_rx) = unbounded::<Result<(), String>>();
    let (done_tx, done_rx) = unbounded::<()>();
    let worker = Arc::new(Worker::new(false));
    let state = worker.clone();
    let pool = Arc::downgrade(shared);
    let queue = shared.queue.clone();
    let private = private_rx.clone();
    let thread = std::thread::Builder::new()
        .name(format!("py-subinterp-{index}"))
        // As the executors': deep Python recursion and conversions up to `max_depth`.
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let place = Place { pool, index };
            serve(&state, &place, history, &queue, &private, &ready_tx);
            let _ = done_tx.send(());
        })
        .map_err(|err| format!("cannot start a sub-interpreter thread: {err}"))?;
    let handle = Handle {
        worker,
        private: private_tx,
        private_rx,
        done: done_rx,
        thread,
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(err)) => Err(err),
        Err(_) => Err("the sub-interpreter thread died".to_owned()),
    }
}

/// Where a worker is: its pool (weakly: the pool owns the workers) and its index there.
struct Place {
    pool: Weak<Shared>,
    index: usize,
}

/// A job of `old` (worker `index`) ignored its interrupt for [`LOST_AFTER`]: a new worker
/// replaces it, with `old`'s `exec` history replayed, so that the pool keeps its size. `old`
/// takes no more tasks, hands over those of its own queue, and its thread ends when the job
/// returns. Runs on `old`'s interrupter thread.
fn replace(place: &Place, old: &Arc<Worker>) {
    let Some(shared) = place.pool.upgrade() else {
        return;
    };
    if shared.stopped.load(Ordering::Acquire) {
        return;
    }
    let history = {
        let history = old.history.lock().unwrap_or_else(PoisonError::into_inner);
        if history.overflowed {
            log::error!(
                "a sub-interpreter's job ignored its interrupt for {LOST_AFTER:?}, and it ran \
                 too many exec statements to be replaced: the pool has one sub-interpreter less \
                 until the job returns"
            );
            return;
        }
        history.execs.clone()
    };
    let handle = match spawn_worker(&shared, place.index, history) {
        Ok(handle) => handle,
        Err(err) => {
            log::error!("cannot replace a stuck sub-interpreter: {err}");
            return;
        }
    };
    let mut handles = shared
        .handles
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let current = handles.get(place.index).map(|h| &h.worker);
    if shared.stopped.load(Ordering::Acquire) || !current.is_some_and(|w| Arc::ptr_eq(w, old)) {
        // The pool stopped meanwhile: the new worker ends once its queues close (now).
        handle.worker.stopping.store(true, Ordering::Release);
        return;
    }
    log::warn!(
        "a sub-interpreter's job ignored its interrupt for {LOST_AFTER:?}; a new \
         sub-interpreter replaces it, and its thread ends when the job returns"
    );
    old.retired.store(true, Ordering::Release);
    let previous = std::mem::replace(&mut handles[place.index], handle);
    // `exec` statements queued for the old worker run on the new one, after its replay.
    for task in previous.private_rx.try_iter() {
        let _ = handles[place.index].private.send(task);
    }
}

/// Hands the tasks left in a retired worker's own queue to the worker that replaced it
/// (answered `{error, stopped}` if the pool stopped meanwhile).
fn hand_over_private(place: &Place, private: &Receiver<Task>) {
    let shared = place.pool.upgrade();
    for task in private.try_iter() {
        let successor = shared.as_ref().and_then(|shared| {
            let handles = shared
                .handles
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            handles.get(place.index).map(|h| h.private.clone())
        });
        match successor {
            Some(tx) => {
                if let Err(err) = tx.send(task) {
                    reply_stopped(err.into_inner());
                }
            }
            None => reply_stopped(task),
        }
    }
}

/// The worker thread: creates the interpreter (replaying `history`), starts its interrupter,
/// serves tasks until both queues close or it is retired, then ends the interpreter here.
fn serve(
    worker: &Arc<Worker>,
    place: &Place,
    history: Vec<Vec<u8>>,
    shared: &Receiver<Task>,
    private: &Receiver<Task>,
    ready: &Sender<Result<(), String>>,
) {
    let (mut path_seen, sys_path) = match place.pool.upgrade() {
        Some(pool) => {
            let current = pool
                .path
                .path
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (current.0, current.1.clone())
        }
        None => {
            let _ = ready.send(Err("the pool stopped".to_owned()));
            return;
        }
    };
    let interp = match Interp::create(&sys_path) {
        Ok(interp) => interp,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let max_depth = options().max_depth;
    for code in history {
        if let Err(err) = interp.attached(|py| {
            py.run(&Work::Exec { code: &code }, max_depth)
                .map_err(|_| py.take_error().message)
        }) {
            log::warn!("replaying an exec statement in a new sub-interpreter failed: {err}");
        }
        worker
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(&code);
    }
    worker
        .thread_id
        .store(ffi::thread_ident(), Ordering::Release);
    let seed = interp.guest_seed();
    let (int_tx, int_rx) = unbounded::<Arc<JobInner>>();
    let (guest_tx, guest_rx) = unbounded::<bool>();
    *worker
        .interrupts
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(int_tx);
    let state = worker.clone();
    let lost_place = Place {
        pool: place.pool.clone(),
        index: place.index,
    };
    let interrupter = std::thread::Builder::new()
        .name("py-subinterp-int".to_owned())
        .spawn(move || {
            let Some(guest) = seed.attach() else {
                let _ = guest_tx.send(false);
                return;
            };
            let _ = guest_tx.send(true);
            let thread_id = state.thread_id.load(Ordering::Acquire);
            interrupt_jobs(&guest, thread_id, &state, &int_rx, &lost_place);
            guest.release();
        });
    let interrupter = match interrupter {
        Ok(thread) if guest_rx.recv() == Ok(true) => thread,
        Ok(thread) => {
            let _ = thread.join();
            interp.end();
            let _ = ready.send(Err(
                "cannot make a thread state for the interrupter".to_owned()
            ));
            return;
        }
        Err(err) => {
            interp.end();
            let _ = ready.send(Err(format!("cannot start the interrupter thread: {err}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while !worker.retired.load(Ordering::Acquire) {
        let task = select! {
            recv(shared) -> task => task,
            recv(private) -> task => task,
        };
        match task {
            // The pool is stopping: what is still queued is answered, not run.
            Ok(task) if worker.stopping.load(Ordering::Acquire) => reply_stopped(task),
            Ok(task) => {
                if let Some((generation, path)) = place
                    .pool
                    .upgrade()
                    .and_then(|pool| pool.path.newer_than(path_seen))
                {
                    if let Err(err) = interp.attached(|py| py.set_sys_path(&path)) {
                        log::warn!("a sub-interpreter kept its sys.path: {err}");
                    }
                    path_seen = generation;
                }
                run(&interp, worker, task);
            }
            Err(_) => break,
        }
    }
    if worker.retired.load(Ordering::Acquire) {
        // The shared queue is the other workers' now.
        hand_over_private(place, private);
    } else {
        for task in shared.try_iter().chain(private.try_iter()) {
            reply_stopped(task);
        }
    }
    // The interrupter ends when its channel closes, and releases its thread state.
    drop(
        worker
            .interrupts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );
    let _ = interrupter.join();
    interp.end();
}

/// The interrupter's loop: raises `erlang.Interrupted` in the worker for each job it is
/// asked to stop, once the worker is at a safe point, unless the worker moved on meanwhile;
/// a job still running [`LOST_AFTER`] after it was to be stopped gets its worker replaced
/// ([`replace`]).
fn interrupt_jobs(
    guest: &ffi::Guest,
    thread_id: u64,
    worker: &Arc<Worker>,
    requests: &Receiver<Arc<JobInner>>,
    place: &Place,
) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match requests.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let asked = Instant::now();
        loop {
            match guest.interrupt(thread_id, || worker.is_running(&job)) {
                Some(false) => {
                    if asked.elapsed() >= LOST_AFTER && !worker.lost.swap(true, Ordering::AcqRel) {
                        replace(place, worker);
                    }
                    std::thread::sleep(UNSAFE_POLL);
                }
                Some(true) => break,
                None => break,
            }
        }
        let left = LOST_AFTER.saturating_sub(asked.elapsed());
        match requests.recv_timeout(left) {
            Ok(job) => next = Some(job),
            Err(RecvTimeoutError::Timeout) => {
                if worker.is_running(&job) && !worker.lost.swap(true, Ordering::AcqRel) {
                    replace(place, worker);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// How a task ended.
enum Reply {
    Value(Vec<u8>),
    Done,
    Error(PyError),
    Panicked(String),
    Stopped,
}

fn run(interp: &Interp, worker: &Arc<Worker>, task: Task) {
    let Task {
        job,
        mut env,
        reference,
        work,
    } = task;
    let inner = job.inner().clone();
    if !inner.start(worker.clone() as Arc<dyn Runner>) {
        // Cancelled while queued: the caller already returned, nothing is sent.
        return;
    }
    let max_depth = options().max_depth;
    let is_exec = matches!(work, TaskWork::Exec { .. });
    let reply = env.run(|env| {
        let bytes = |term: &SavedTerm| -> Vec<u8> {
            term.load(env)
                .decode::<Binary<'_>>()
                .map(|b| b.as_slice().to_vec())
                .unwrap_or_default()
        };
        // The terms were checked to be binaries by the NIF that made the task; the bytes are
        // copied once here, off the scheduler.
        let owned = match &work {
            TaskWork::Call {
                module,
                function,
                args,
                kwargs,
            } => [bytes(module), bytes(function), bytes(args), bytes(kwargs)],
            TaskWork::Eval { code, locals } => [bytes(code), bytes(locals), Vec::new(), Vec::new()],
            TaskWork::Exec { code } => [bytes(code), Vec::new(), Vec::new(), Vec::new()],
        };
        let work = match &work {
            TaskWork::Call { .. } => Work::Call {
                module: &owned[0],
                function: &owned[1],
                args: &owned[2],
                kwargs: &owned[3],
            },
            TaskWork::Eval { .. } => Work::Eval {
                code: &owned[0],
                locals: &owned[1],
            },
            TaskWork::Exec { .. } => Work::Exec { code: &owned[0] },
        };
        interp.attached(|py| {
            worker.set_current(Some(inner.clone()));
            let result = catch_unwind(AssertUnwindSafe(|| py.run(&work, max_depth)));
            worker.set_current(None);
            py.clear_interrupt();
            match result {
                Ok(Ok(_)) if is_exec => {
                    worker
                        .history
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .record(&owned[0]);
                    Reply::Done
                }
                Ok(Ok(bytes)) => Reply::Value(bytes),
                Ok(Err(Failure::Raised)) => {
                    let err = py.take_error();
                    if worker.stopping.load(Ordering::Acquire) && err.name == "Interrupted" {
                        Reply::Stopped
                    } else {
                        Reply::Error(err)
                    }
                }
                Ok(Err(Failure::Convert(err))) => {
                    let name = err.exception_name().unwrap_or("TypeError");
                    Reply::Error(plain_error(name, err.to_string()))
                }
                Ok(Err(Failure::NotHere(msg))) => Reply::Error(plain_error("TypeError", msg)),
                Err(panic) => Reply::Panicked(panic_message(&panic)),
            }
        })
    });
    if inner.commit_reply() {
        send(&mut env, &inner, &reference, reply);
    }
}

fn plain_error(name: &str, message: String) -> PyError {
    PyError {
        traceback: format!("{name}: {message}\n"),
        name: name.to_owned(),
        builtin: true,
        stop_iteration: false,
        message,
    }
}

fn reply_stopped(task: Task) {
    let Task {
        job,
        mut env,
        reference,
        ..
    } = task;
    let inner = job.inner().clone();
    let worker: Arc<dyn Runner> = Arc::new(Worker::new(true));
    if inner.start(worker) && inner.commit_reply() {
        send(&mut env, &inner, &reference, Reply::Stopped);
    }
}

fn send(env: &mut OwnedEnv, job: &JobInner, reference: &SavedTerm, reply: Reply) {
    let caller = *job.caller();
    let _ = env.send_and_clear(&caller, |env| {
        let body = match reply {
            // `{ok_etf, Bytes}': the caller decodes (`py_request'). `enif_binary_to_term' on
            // this thread, which is no scheduler, crashes OTP 25 on maps of more than 32 keys.
            Reply::Value(bytes) => {
                let mut bin = OwnedBinary::new(bytes.len());
                bin.as_mut_slice().copy_from_slice(&bytes);
                make_tuple(
                    env,
                    &[atoms::ok_etf().encode(env), bin.release(env).encode(env)],
                )
            }
            Reply::Done => atoms::ok().encode(env),
            Reply::Error(err) => error_term(env, err),
            Reply::Panicked(msg) => internal(env, &msg),
            Reply::Stopped => make_tuple(
                env,
                &[atoms::error().encode(env), atoms::stopped().encode(env)],
            ),
        };
        make_tuple(env, &[reference.load(env), body])
    });
}

fn internal<'a>(env: Env<'a>, msg: &str) -> Term<'a> {
    let reason = make_tuple(env, &[atoms::internal().encode(env), msg.encode(env)]);
    make_tuple(env, &[atoms::error().encode(env), reason])
}

/// `{error, {Type, Msg}, Traceback}`, as the executors send it (docs/errors.md): the type is
/// an atom for builtin classes and names that already exist as atoms, else a binary
/// (docs/architecture.md, invariant 9).
fn error_term<'a>(env: Env<'a>, err: PyError) -> Term<'a> {
    let traceback = elide(err.traceback, TRACEBACK_CAP);
    let reason = if err.stop_iteration {
        make_tuple(
            env,
            &[
                atoms::stop_iteration().encode(env),
                atoms::none().encode(env),
            ],
        )
    } else {
        let ty = if err.builtin {
            Atom::from_str(env, &err.name).map(|a| a.encode(env)).ok()
        } else {
            Atom::existing_from_str(env, &err.name)
                .map(|a| a.encode(env))
                .ok()
        }
        .unwrap_or_else(|| err.name.encode(env));
        let message = elide(err.message, MESSAGE_CAP);
        make_tuple(env, &[ty, message.encode(env)])
    };
    make_tuple(
        env,
        &[atoms::error().encode(env), reason, traceback.encode(env)],
    )
}
