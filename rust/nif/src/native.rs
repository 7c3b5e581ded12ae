//! `erlang._native` as registered inside the BEAM: the shared body from core plus what only
//! makes sense here (the interruptible `sleep` that replaces `time.sleep`).

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::executor::current_slot;

static ORIGINAL_SLEEP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The module initialiser registered with `PyImport_AppendInittab` as `erlang._native`.
///
/// Free-threading safe (`gil_used = false`: a free-threaded CPython keeps its GIL off when it
/// imports the module). Audited for it (docs/threading.md, "Free-threaded CPython"): every
/// class is frozen, with atomics or locks inside; the process-wide state (log and span
/// outboxes, callback router and registry, trace parents, code cache, pools, slots, jobs,
/// counters, the semaphore) is atomics and Rust locks, and no Rust lock is held while Python
/// code runs, so none can stall CPython's stop-the-world pauses; interrupts never read another
/// thread's frames ([`crate::executor::monitor`]).
#[pymodule(gil_used = false)]
#[pyo3(name = "_native")]
pub fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    erlang_python_core::native::populate(module)?;
    erlang_python_core::callback::populate(module)?;
    erlang_python_core::callback::set_backend(Box::new(crate::callback::BeamBackend));
    erlang_python_core::log::populate(module)?;
    erlang_python_core::log::set_log_sink(Box::new(crate::log::BeamLogSink));
    erlang_python_core::trace::set_trace_sink(Box::new(crate::trace::BeamTraceSink));
    module.add_function(wrap_pyfunction!(sleep, module)?)?;
    module.add("IN_BEAM", true)?;
    Ok(())
}

/// `time.sleep` for the embedded interpreter: on an executor thread it waits with the GIL
/// released and returns early, raising `erlang.Interrupted`, when the Erlang caller times out
/// or dies; elsewhere it is the original `time.sleep`.
#[pyfunction]
fn sleep(py: Python<'_>, secs: &Bound<'_, PyAny>) -> PyResult<()> {
    let Some(slot) = current_slot() else {
        return match ORIGINAL_SLEEP.get(py) {
            Some(original) => original.call1(py, (secs,)).map(drop),
            None => Err(PyValueError::new_err("time.sleep is not available")),
        };
    };
    let seconds: f64 = secs.extract()?;
    if seconds.is_nan() {
        return Err(PyValueError::new_err("Invalid value NaN (not a number)"));
    }
    if seconds < 0.0 {
        return Err(PyValueError::new_err("sleep length must be non-negative"));
    }
    slot.sleep(py, seconds)
}

/// Replaces `time.sleep` with [`sleep`], keeping the original for non-executor threads.
pub fn install_sleep(py: Python<'_>) -> PyResult<()> {
    let time = py.import("time")?;
    let original = time.getattr("sleep")?.unbind();
    let _ = ORIGINAL_SLEEP.set(py, original);
    let native = py.import("erlang._native")?;
    time.setattr("sleep", native.getattr("sleep")?)?;
    Ok(())
}

/// Whether calls that would end the OS process (the Erlang node) are refused
/// (`erlang._protect`; the application variable `allow_process_exit` turns it off).
static REFUSE_PROCESS_EXIT: AtomicBool = AtomicBool::new(true);

/// Sets whether calls that would end the OS process are refused.
pub fn set_refuse_process_exit(refuse: bool) {
    REFUSE_PROCESS_EXIT.store(refuse, Ordering::Relaxed);
}

/// Asked by `erlang._protect` before a call that would end the process: logs it, and answers
/// whether it is refused.
#[pyfunction]
fn refuses_process_exit(what: &str) -> bool {
    let refuse = REFUSE_PROCESS_EXIT.load(Ordering::Relaxed);
    if refuse {
        log::warn!("refused {what}: it would end the Erlang node (allow_process_exit is false)");
    } else {
        log::warn!("{what}: ending the Erlang node (allow_process_exit is true)");
    }
    refuse
}

/// Installs `erlang._protect` (refused process exits, `spawn` for multiprocessing).
pub fn install_protection(py: Python<'_>) -> PyResult<()> {
    let refuses = wrap_pyfunction!(refuses_process_exit, py)?;
    py.import("erlang._protect")?
        .call_method1("install", (refuses,))?;
    Ok(())
}
