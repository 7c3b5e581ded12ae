//! Interpreter start-up and the raw C-API calls pyo3 does not wrap: the only module of the NIF
//! with `unsafe` (design.md, invariant 10).
//!
//! The interpreter is initialised once per OS process on a dedicated thread, `python-main`,
//! which becomes Python's main thread, then releases the GIL and serves interrupt requests for
//! the rest of the process's life. It is never finalised: `application:stop`/`start` cycles
//! reuse it (invariant 6).

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::executor;

/// What `interp_init/1` passes in from Erlang.
pub struct InitOptions {
    /// The interpreter `sys.executable` should name (a venv's `bin/python`).
    pub executable: Option<String>,
    /// Directories put in front of `sys.path` (the app's `priv/python`).
    pub sys_path: Vec<String>,
}

/// The outcome of the one initialisation, shared by every later caller.
static INIT: OnceLock<Result<(), String>> = OnceLock::new();
/// Whether [`promote_libpython`] succeeded (reported when the interpreter starts: at load
/// time no one receives diagnostics yet).
static PROMOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Where interrupt requests go once the interpreter runs.
static INTERRUPTS: OnceLock<Sender<executor::Interrupt>> = OnceLock::new();

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

/// Initialises the interpreter (first call) or returns the first call's outcome.
pub fn initialize(opts: InitOptions) -> Result<(), String> {
    INIT.get_or_init(|| {
        let executable = opts.executable.clone().unwrap_or_default();
        let outcome = start_python_main(opts);
        match &outcome {
            Ok(()) => log::info!(
                "Python {} started in this OS process (sys.executable {executable:?})",
                version()
            ),
            Err(reason) => log::error!("Python could not start: {reason}"),
        }
        if !PROMOTED.load(std::sync::atomic::Ordering::Relaxed) {
            log::warn!(
                "libpython could not be re-opened with global symbols; C extension modules \
                 may fail to import"
            );
        }
        outcome
    })
    .clone()
}

/// Queues an interrupt for the `python-main` thread; false before initialisation.
pub fn send_interrupt(request: executor::Interrupt) -> bool {
    INTERRUPTS.get().is_some_and(|tx| tx.send(request).is_ok())
}

fn start_python_main(opts: InitOptions) -> Result<(), String> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let (int_tx, int_rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("python-main".into())
        .spawn(move || python_main(opts, ready_tx, int_rx))
        .map_err(|e| format!("cannot start the python-main thread: {e}"))?;
    let outcome = ready_rx
        .recv()
        .unwrap_or_else(|_| Err("the python-main thread exited during start-up".into()));
    if outcome.is_ok() {
        let _ = INTERRUPTS.set(int_tx);
    }
    outcome
}

fn python_main(
    opts: InitOptions,
    ready: Sender<Result<(), String>>,
    interrupts: Receiver<executor::Interrupt>,
) {
    if let Err(e) = init_interpreter(&opts) {
        let _ = ready.send(Err(e));
        return;
    }
    let setup = Python::attach(|py| crate::setup::after_init(py, &opts.sys_path))
        .map_err(|e| format!("interpreter set-up failed: {e}"));
    let ok = setup.is_ok();
    // SAFETY: this thread holds the GIL since Py_InitializeFromConfig; saving the thread
    // state releases it for the executors. The state stays attached to this thread, which
    // re-takes the GIL through pyo3 (PyGILState_Ensure) to deliver interrupts.
    let _state = unsafe { ffi::PyEval_SaveThread() };
    let _ = ready.send(setup);
    if ok {
        for request in interrupts {
            executor::deliver_interrupt(request);
        }
    }
}

fn status_error(status: &ffi::PyStatus, what: &str) -> Option<String> {
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
    Some(format!("{what}: {detail}"))
}

fn init_interpreter(opts: &InitOptions) -> Result<(), String> {
    let executable = opts
        .executable
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("EP_DEFAULT_EXECUTABLE").to_owned());
    let executable = CString::new(executable).map_err(|_| "executable path contains NUL")?;
    // SAFETY: called once, before the interpreter exists, from the thread that initialises
    // it; the name is a static C string and the init function is pyo3's generated module
    // initialiser for `erlang._native` (design.md invariant 7: registered before init so the
    // NIF's copy wins over any pip-installed one).
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Err("a Python interpreter is already running in this OS process".into());
        }
        ffi::PyImport_AppendInittab(
            c"erlang._native".as_ptr(),
            Some(crate::native::_native::__pyo3_init),
        );
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
    Ok(())
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

/// The full `Py_GetVersion()` string; safe before and after initialisation, without the GIL.
pub fn version() -> String {
    // SAFETY: Py_GetVersion returns a pointer to a static NUL-terminated buffer.
    unsafe { CStr::from_ptr(ffi::Py_GetVersion()) }
        .to_string_lossy()
        .into_owned()
}

/// Tunes glibc's malloc for large Python objects, for the whole OS process. The BEAM calls
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
