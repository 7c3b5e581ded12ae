//! The workers of the sub-interpreter pool, their interrupters, and the replies they send.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, unbounded, Receiver, Sender};
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
}

impl Worker {
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
    done: Receiver<()>,
    thread: JoinHandle<()>,
}

/// The pool: shared queue, one private queue per worker (for `exec`, which runs on every
/// worker), the workers.
pub struct SubPool {
    shared: Mutex<Option<Sender<Task>>>,
    handles: Mutex<Vec<Handle>>,
    size: usize,
    path: Arc<PathState>,
}

#[rustler::resource_impl]
impl rustler::Resource for SubPool {}

impl SubPool {
    /// Starts `size` workers, each creating its sub-interpreter with `sys_path` as `sys.path`.
    /// Waits for them to be ready; fails (stopping those that started) with CPython's message.
    pub fn start(size: usize, sys_path: Vec<String>) -> Result<SubPool, String> {
        let (shared_tx, shared_rx) = unbounded::<Task>();
        let mut handles = Vec::with_capacity(size);
        let path_state = Arc::new(PathState {
            generation: AtomicU64::new(0),
            path: Mutex::new((0, Arc::new(sys_path.clone()))),
        });
        let mut failure = None;
        for index in 0..size {
            let (private_tx, private_rx) = unbounded::<Task>();
            let (ready_tx, ready_rx) = unbounded::<Result<(), String>>();
            let (done_tx, done_rx) = unbounded::<()>();
            let worker = Arc::new(Worker {
                current: Mutex::new(None),
                thread_id: AtomicU64::new(0),
                interrupts: Mutex::new(None),
                stopping: AtomicBool::new(false),
            });
            let shared = shared_rx.clone();
            let path = sys_path.clone();
            let state = worker.clone();
            let wanted = path_state.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("py-subinterp-{index}"))
                // As the executors': deep Python recursion and conversions up to `max_depth`.
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    serve(&state, &path, &wanted, &shared, &private_rx, &ready_tx);
                    let _ = done_tx.send(());
                });
            let thread = match spawned {
                Ok(thread) => thread,
                Err(err) => {
                    failure = Some(format!("cannot start a sub-interpreter thread: {err}"));
                    break;
                }
            };
            let ready = ready_rx
                .recv()
                .unwrap_or_else(|_| Err("the sub-interpreter thread died".to_owned()));
            handles.push(Handle {
                worker,
                private: private_tx,
                done: done_rx,
                thread,
            });
            if let Err(err) = ready {
                failure = Some(err);
                break;
            }
        }
        let pool = SubPool {
            shared: Mutex::new(Some(shared_tx)),
            handles: Mutex::new(handles),
            size,
            path: path_state,
        };
        match failure {
            None => Ok(pool),
            Some(err) => {
                pool.stop();
                Err(err)
            }
        }
    }

    /// The number of workers.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Gives every worker `path` as its `sys.path`, before the next task it runs (tasks
    /// submitted after this returns see it).
    pub fn set_path(&self, path: Vec<String>) {
        let mut current = self
            .path
            .path
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = current.0 + 1;
        *current = (generation, Arc::new(path));
        self.path.generation.store(generation, Ordering::Release);
    }

    /// Queues `task` for any worker: its job, or `Err` when the pool is stopped.
    pub fn submit(&self, task: Task) -> Result<ResourceArc<JobResource>, ()> {
        let job = task.job.clone();
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match shared.as_ref() {
            Some(tx) => tx.send(task).map(|()| job).map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Queues `task` for worker `index`: its job, or `Err` when the pool is stopped or there
    /// is no such worker.
    pub fn submit_to(&self, index: usize, task: Task) -> Result<ResourceArc<JobResource>, ()> {
        let job = task.job.clone();
        if self
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
        {
            return Err(());
        }
        let handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
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
            self.shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let handles =
            std::mem::take(&mut *self.handles.lock().unwrap_or_else(PoisonError::into_inner));
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

/// The worker thread: creates the interpreter, starts its interrupter, serves tasks until
/// both queues close, then ends the interpreter here.
fn serve(
    worker: &Arc<Worker>,
    sys_path: &[String],
    wanted: &PathState,
    shared: &Receiver<Task>,
    private: &Receiver<Task>,
    ready: &Sender<Result<(), String>>,
) {
    let interp = match Interp::create(sys_path) {
        Ok(interp) => interp,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
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
    let interrupter = std::thread::Builder::new()
        .name("py-subinterp-int".to_owned())
        .spawn(move || {
            let Some(guest) = seed.attach() else {
                let _ = guest_tx.send(false);
                return;
            };
            let _ = guest_tx.send(true);
            let thread_id = state.thread_id.load(Ordering::Acquire);
            while let Ok(job) = int_rx.recv() {
                // Raised once the worker is at a safe point, unless it moved on meanwhile.
                while guest.interrupt(thread_id, || state.is_running(&job)) == Some(false) {
                    std::thread::sleep(UNSAFE_POLL);
                }
            }
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
    let mut path_seen = 0;
    loop {
        let task = select! {
            recv(shared) -> task => task,
            recv(private) -> task => task,
        };
        match task {
            // The pool is stopping: what is still queued is answered, not run.
            Ok(task) if worker.stopping.load(Ordering::Acquire) => reply_stopped(task),
            Ok(task) => {
                if let Some((generation, path)) = wanted.newer_than(path_seen) {
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
    for task in shared.try_iter().chain(private.try_iter()) {
        reply_stopped(task);
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
                Ok(Ok(_)) if is_exec => Reply::Done,
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
    let worker: Arc<dyn Runner> = Arc::new(Worker {
        current: Mutex::new(None),
        thread_id: AtomicU64::new(0),
        interrupts: Mutex::new(None),
        stopping: AtomicBool::new(true),
    });
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
