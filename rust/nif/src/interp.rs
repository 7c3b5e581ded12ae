//! Interpreter start-up and the raw C-API calls pyo3 does not wrap: with `subinterp::ffi` (the
//! own-GIL sub-interpreters), the only module of the NIF with `unsafe` (docs/architecture.md,
//! invariant 10).
//!
//! The interpreter is initialised once per OS process on a dedicated thread, `python-main`,
//! which becomes Python's main thread, then releases the GIL and runs the work other threads
//! queue for it ([`run_on_main`]: interrupts, cancel hooks) for the rest of the process's life.
//! It is never finalised: `application:stop`/`start` cycles reuse it (invariant 6).
//!
//! A leaf: it knows nothing of executors or of the `erlang` package. What to register before
//! init and what to run after it are passed in ([`Startup`]).

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::error::{Error, Result};

/// True when the NIF is built for a free-threaded CPython (no GIL: executors run Python in
/// parallel, `py:execution_mode()` is `free_threaded`).
pub const FREE_THREADED: bool = matches!(env!("EP_GIL_DISABLED").as_bytes(), b"1");

/// A module initialiser as `PyImport_AppendInittab` takes it.
pub type InitFunc = unsafe extern "C" fn() -> *mut ffi::PyObject;

/// Work for the `python-main` thread; it runs with the GIL held.
pub type MainWork = Box<dyn FnOnce(Python<'_>) + Send>;

/// How to start the interpreter: what `interp_init/1` passes in from Erlang, plus what the
/// NIF registers before init and runs right after it.
pub struct Startup {
    /// The interpreter `sys.executable` should name (a venv's `bin/python`).
    pub executable: Option<String>,
    /// Built-in modules to register before init: `(dotted name, initialiser)`.
    pub builtins: Vec<(&'static CStr, InitFunc)>,
    /// Runs once on `python-main`, with the GIL, right after init.
    pub after_init: Box<dyn FnOnce(Python<'_>) -> PyResult<()> + Send>,
}

/// The outcome of the one initialisation, shared by every later caller.
static INIT: OnceLock<Result<()>> = OnceLock::new();
/// Whether [`promote_libpython`] succeeded (reported when the interpreter starts: at load
/// time no one receives diagnostics yet).
static PROMOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Where work for `python-main` goes once the interpreter runs.
static MAIN_QUEUE: OnceLock<Sender<Queued>> = OnceLock::new();

/// Work queued for `python-main`, now or not before an instant.
struct Queued {
    at: Option<Instant>,
    work: MainWork,
}

/// Re-opens the libpython this NIF links with global symbol scope, so that C extension modules
/// (math, _json, numpy), which are not linked against libpython, resolve its symbols. The BEAM
/// loads NIFs with local scope. Returns false when the library could not be found.
pub fn promote_libpython() -> bool {
    let Ok(path) = CString::new(env!("EP_LIBPYTHON")) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string; RTLD_NOLOAD only bumps the reference
    // count of a library that is already mapped (ours, through DT_NEEDED) and never runs
    // initialisers a second time. The handle is intentionally leaked: libpython must stay
    // loaded for the life of the process.
    let handle = unsafe {
        libc::dlopen(
            path.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD,
        )
    };
    let promoted = !handle.is_null();
    PROMOTED.store(promoted, std::sync::atomic::Ordering::Relaxed);
    promoted
}

/// True once the interpreter has been initialised successfully.
pub fn is_initialized() -> bool {
    matches!(INIT.get(), Some(Ok(())))
}

/// Initialises the interpreter (first call) or returns the first call's outcome; later calls
/// ignore their `startup`.
pub fn initialize(startup: Startup) -> Result<()> {
    INIT.get_or_init(|| {
        let outcome = start_python_main(startup);
        match &outcome {
            Ok(executable) => log::info!(
                "Python {} started in this OS process (sys.executable {executable:?})",
                version()
            ),
            Err(reason) => log::error!("Python could not start: {reason}"),
        }
        if !keep_child_exit_statuses() {
            log::warn!(
                "SIGCHLD could not be given its default action: Python cannot read the exit \
                 status of its child processes"
            );
        }
        if !PROMOTED.load(std::sync::atomic::Ordering::Relaxed) {
            log::warn!(
                "libpython could not be re-opened with global symbols; C extension modules \
                 may fail to import"
            );
        }
        outcome.map(drop)
    })
    .clone()
}

/// Queues `work` for the `python-main` thread, which runs it with the GIL (the one thread
/// that may wait for the GIL on behalf of a scheduler); false before initialisation.
pub fn run_on_main(work: MainWork) -> bool {
    queue(Queued { at: None, work })
}

/// Like [`run_on_main`], not before `at` (work that found the interpreter at a point where it
/// must not act yet tries again later, without holding up the rest of the queue).
pub fn run_on_main_at(at: Instant, work: MainWork) -> bool {
    queue(Queued { at: Some(at), work })
}

fn queue(item: Queued) -> bool {
    MAIN_QUEUE.get().is_some_and(|tx| tx.send(item).is_ok())
}

/// Starts `python-main` and waits until the interpreter is up; the executable it runs as.
fn start_python_main(startup: Startup) -> Result<String> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let (work_tx, work_rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("python-main".into())
        .spawn(move || python_main(startup, ready_tx, work_rx))
        .map_err(|e| Error::Start(format!("cannot start the python-main thread: {e}")))?;
    let outcome = ready_rx.recv().unwrap_or_else(|_| {
        Err(Error::Start(
            "the python-main thread exited during start-up".into(),
        ))
    });
    if outcome.is_ok() {
        let _ = MAIN_QUEUE.set(work_tx);
    }
    outcome
}

fn python_main(startup: Startup, ready: Sender<Result<String>>, queue: Receiver<Queued>) {
    let executable = match init_interpreter(&startup) {
        Ok(executable) => executable,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let setup = Python::attach(startup.after_init)
        .map(|()| executable)
        .map_err(|e| Error::Start(format!("interpreter set-up failed: {e}")));
    let ok = setup.is_ok();
    // SAFETY: this thread holds the GIL since Py_InitializeFromConfig; saving the thread
    // state releases it for the executors. The state stays attached to this thread, which
    // re-takes the GIL through pyo3 (PyGILState_Ensure) to run queued work.
    let _state = unsafe { ffi::PyEval_SaveThread() };
    let _ = ready.send(setup);
    if ok {
        serve_main(&queue);
    }
}

/// Runs queued work in order, and delayed work once its time has come, until the process
/// exits (the queue's sender lives in a static).
fn serve_main(queue: &Receiver<Queued>) {
    // Few entries at a time (deferred interrupts): a sorted Vec is enough.
    let mut later: Vec<(Instant, MainWork)> = Vec::new();
    loop {
        let next = match later.first() {
            Some((at, _)) => queue.recv_deadline(*at),
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(Queued { at: None, work }) => Python::attach(work),
            Ok(Queued { at: Some(at), work }) => {
                let index = later.partition_point(|(t, _)| *t <= at);
                later.insert(index, (at, work));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let due = later.partition_point(|(t, _)| *t <= now);
        for (_, work) in later.drain(..due) {
            Python::attach(work);
        }
    }
}

fn status_error(status: &ffi::PyStatus, what: &str) -> Option<Error> {
    // SAFETY: PyStatus_Exception only reads the struct.
    if unsafe { ffi::PyStatus_Exception(ffi::PyStatus { ..*status }) } == 0 {
        return None;
    }
    let detail = if status.err_msg.is_null() {
        "unknown error".to_owned()
    } else {
        // SAFETY: a non-null err_msg is a static NUL-terminated string owned by CPython.
        unsafe { CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    Some(Error::Start(format!("{what}: {detail}")))
}

/// Registers the built-ins and initialises the interpreter; the executable it runs as.
fn init_interpreter(startup: &Startup) -> Result<String> {
    let executable = startup
        .executable
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("EP_DEFAULT_EXECUTABLE").to_owned());
    let shown = executable.clone();
    let executable = CString::new(executable)
        .map_err(|_| Error::Start("executable path contains NUL".into()))?;
    // SAFETY: called once, before the interpreter exists, from the thread that initialises
    // it; each name is a static C string and each init function a module initialiser
    // (docs/architecture.md, invariant 7: registered before init so the NIF's copy wins over any
    // pip-installed one).
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Err(Error::Start(
                "a Python interpreter is already running in this OS process".into(),
            ));
        }
        for (name, init) in &startup.builtins {
            ffi::PyImport_AppendInittab(name.as_ptr(), Some(*init));
        }
    }
    let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
    // SAFETY: PyConfig_InitPythonConfig fully initialises the struct it is given; we then
    // only set documented fields, hand it to Py_InitializeFromConfig once and clear it.
    unsafe {
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let cfg = config.assume_init_mut();
        // The BEAM owns the process's signals.
        cfg.install_signal_handlers = 0;
        let status = ffi::PyConfig_SetBytesString(cfg, &mut cfg.executable, executable.as_ptr());
        if let Some(err) = status_error(&status, "cannot set the executable") {
            ffi::PyConfig_Clear(cfg);
            return Err(err);
        }
        let status = ffi::Py_InitializeFromConfig(cfg);
        ffi::PyConfig_Clear(cfg);
        if let Some(err) = status_error(&status, "Py_InitializeFromConfig failed") {
            return Err(err);
        }
    }
    Ok(shown)
}

/// The calling thread's Python thread state, as an address (for [`thread_frame`]); the GIL
/// must be held.
pub fn current_thread_state(py: Python<'_>) -> usize {
    let _ = py;
    // SAFETY: the GIL is held (we have `py`), so the thread has a current thread state.
    unsafe { ffi::PyThreadState_Get() as usize }
}

/// Whether the calling thread runs in the main interpreter (not in an own-GIL sub-interpreter):
/// Python objects belong to one interpreter, and caches of objects shared between threads
/// (the term reader's atom cache) hand them out only there.
pub fn in_main_interpreter(py: Python<'_>) -> bool {
    let _ = py;
    // SAFETY: the thread is attached (we have `py`), so it has a current interpreter;
    // PyInterpreterState_Main only reads a runtime field set at init.
    unsafe { ffi::PyInterpreterState_Get() == ffi::PyInterpreterState_Main() }
}

/// The innermost Python frame of the thread state at `tstate` (from [`current_thread_state`]),
/// or `None` when that thread runs no Python code. Only this thread's frames are made into
/// objects: `sys._current_frames()` would make frame objects for the threads of every
/// interpreter, own-GIL sub-interpreters included, with this interpreter's allocator.
///
/// The caller guarantees that the thread state is alive (its executor clears the address,
/// holding the GIL, before it ends) and belongs to this interpreter; GIL builds only, where
/// holding the GIL keeps that thread still.
pub fn thread_frame(py: Python<'_>, tstate: usize) -> Option<Bound<'_, PyAny>> {
    if tstate == 0 {
        return None;
    }
    // SAFETY: see the doc: a live thread state of this interpreter, read with its GIL held;
    // PyThreadState_GetFrame returns a new reference or NULL (no frame, no exception set).
    unsafe {
        let frame = ffi::PyThreadState_GetFrame(tstate as *mut ffi::PyThreadState);
        Bound::from_owned_ptr_or_opt(py, frame.cast::<ffi::PyObject>())
    }
}

/// Makes `exc` pending in the Python thread `thread_id` (raised at its next bytecode).
pub fn raise_in_thread(py: Python<'_>, thread_id: u64, exc: &Bound<'_, pyo3::types::PyType>) {
    let _ = py;
    // CPython takes the thread id as `unsigned long`; pyo3-ffi declares `c_long`: same bits.
    let id = thread_id as std::ffi::c_long;
    // SAFETY: the GIL is held (we have `py`); the exception type is a live type object that
    // CPython increfs when it stores it.
    unsafe {
        ffi::PyThreadState_SetAsyncExc(id, exc.as_ptr());
    }
}

/// Clears any exception left pending for `thread_id` by [`raise_in_thread`].
pub fn clear_pending(py: Python<'_>, thread_id: u64) {
    let _ = py;
    // CPython takes the thread id as `unsigned long`; pyo3-ffi declares `c_long`: same bits.
    let id = thread_id as std::ffi::c_long;
    // SAFETY: the GIL is held; a NULL exception clears the pending one.
    unsafe {
        ffi::PyThreadState_SetAsyncExc(id, std::ptr::null_mut());
    }
}

/// A copy of the calling thread's current `contextvars` context (`contextvars.copy_context()`).
pub fn copy_current_context(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held (we have `py`); PyContext_CopyCurrent returns a new reference or
    // NULL with an exception set, which `from_owned_ptr_or_err` takes over.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }
}

/// Makes `context` (a `contextvars.Context`) the calling thread's current one, as
/// `Context.run` does on entry; fails (`RuntimeError`) when it is entered already.
pub fn enter_context(context: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = context.py();
    // SAFETY: the GIL is held; `context` is a live object, and PyContext_Enter checks that it
    // is a `contextvars.Context` (a TypeError otherwise).
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(py))
    }
}

/// Restores the context that was current before [`enter_context`] entered `context`; fails
/// (`RuntimeError`) when `context` is not the thread's current one.
pub fn exit_context(context: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = context.py();
    // SAFETY: the GIL is held; `context` is a live object, and PyContext_Exit checks that it
    // is the current context of this thread.
    if unsafe { ffi::PyContext_Exit(context.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(py))
    }
}

/// The full `Py_GetVersion()` string; safe before and after initialisation, without the GIL.
pub fn version() -> String {
    // SAFETY: Py_GetVersion returns a pointer to a static NUL-terminated buffer.
    unsafe { CStr::from_ptr(ffi::Py_GetVersion()) }
        .to_string_lossy()
        .into_owned()
}

/// Tunes glibc's malloc for large Python objects, for the whole OS process. The BEAM calls
/// The BEAM sets `SIGCHLD` to `SIG_IGN`, and with that disposition the kernel reaps every child
/// of the OS process as it exits: `waitpid` fails with `ECHILD`, so `subprocess` reports exit
/// status 0 and asyncio 255 for every child, whatever it returned. Its default action
/// (`SIG_DFL`, also ignored, but children wait to be reaped) gives Python its children's exit
/// statuses back. The BEAM reaps nothing itself: its ports run under its own forker process,
/// `erl_child_setup` (docs/architecture.md, "Child processes"). Only a `SIG_IGN` is replaced (a
/// handler someone installed stays). True when `SIGCHLD` is not ignored any more.
fn keep_child_exit_statuses() -> bool {
    // SAFETY: sigaction reads and writes the process's SIGCHLD disposition through the two
    // pointers, which point to zero-initialised `sigaction` structs (a valid value: no handler,
    // empty mask, no flags) that live across the calls; no Rust state is involved.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut current) != 0 {
            return false;
        }
        if current.sa_sigaction != libc::SIG_IGN {
            return true;
        }
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGCHLD, &default, std::ptr::null_mut()) == 0
    }
}

/// `mallopt` at start, which freezes glibc's adaptive thresholds at their defaults: every object
/// over 128 KB Python allocates (a 1 MB `str`, a numpy buffer) is then mmap'ed and unmapped,
/// and its pages fault in again each time: measured 400 us per 1 MB allocation on an executor
/// thread, against 25 us for the same code in a plain Python process. Raising the mmap
/// threshold to `bytes` (capped at 32 MB, glibc's maximum) and keeping `bytes` of top padding
/// lets such objects reuse arena memory. Returns false when glibc refused.
pub fn tune_malloc(bytes: usize) -> bool {
    let threshold = bytes.min(32 << 20);
    let (Ok(threshold), Ok(pad)) = (
        std::ffi::c_int::try_from(threshold),
        std::ffi::c_int::try_from(bytes),
    ) else {
        return false;
    };
    // SAFETY: mallopt only updates allocator parameters, under glibc's own locking; both
    // values are in the ranges glibc documents for these options.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1
            && libc::mallopt(libc::M_TOP_PAD, pad) == 1
    }
}
