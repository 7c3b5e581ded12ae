//! Python `logging` records on their way to Erlang: `erlang._native._log` and
//! `_log_threshold`, a native level threshold, and the [`LogSink`] trait through which records
//! leave (the NIF sends them to `py_logger`; without a sink `_log` is a no-op).
//!
//! Any Python thread (executors, `threading.Thread`s, asyncio loops). The threshold is checked
//! first, before any argument is read, so a filtered record costs one atomic load and builds
//! nothing; a record that passes is handed to the sink, which must never block.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Where records that pass the threshold go.
pub trait LogSink: Send + Sync + 'static {
    /// Delivers one record; must not block (drop and count when overloaded).
    fn emit(
        &self,
        py: Python<'_>,
        level: i32,
        logger: &str,
        message: &str,
        meta: &Bound<'_, PyDict>,
    ) -> PyResult<()>;
}

static SINK: OnceLock<Box<dyn LogSink>> = OnceLock::new();

/// Records with a level below this are dropped before anything is built. Python's numbers
/// (`logging.DEBUG` is 10); 0 lets every record through.
static THRESHOLD: AtomicI32 = AtomicI32::new(0);

/// Installs the sink of this process (first call wins).
pub fn set_log_sink(sink: Box<dyn LogSink>) {
    let _ = SINK.set(sink);
}

/// Sets the native threshold (Python level numbers).
pub fn set_threshold(level: i32) {
    let previous = THRESHOLD.swap(level, Ordering::Relaxed);
    if previous != level {
        log::debug!("native threshold of Python log records: {previous} -> {level}");
    }
}

/// The native threshold.
pub fn threshold() -> i32 {
    THRESHOLD.load(Ordering::Relaxed)
}

/// Adds `_log` and `_log_threshold` to `module`.
pub fn populate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(_log, module)?)?;
    module.add_function(wrap_pyfunction!(_log_threshold, module)?)?;
    Ok(())
}

/// Sends one log record to Erlang; fire-and-forget, never blocks. Records below the native
/// threshold, and every record when no receiver is set, are dropped. Raises TypeError for
/// arguments of the wrong type.
#[pyfunction]
#[pyo3(signature = (level, logger, message, meta, /))]
fn _log(
    level: i32,
    logger: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    meta: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if level < threshold() {
        return Ok(());
    }
    let logger = logger.cast::<PyString>()?.to_str()?;
    let message = message.cast::<PyString>()?.to_str()?;
    let meta = meta.cast::<PyDict>()?;
    let Some(sink) = SINK.get() else {
        return Ok(());
    };
    sink.emit(meta.py(), level, logger, message, meta)
}

/// The native threshold: records with a lower level are dropped by `_log`. With `level`, sets
/// it first.
#[pyfunction]
#[pyo3(signature = (level=None, /))]
fn _log_threshold(level: Option<i32>) -> i32 {
    if let Some(level) = level {
        set_threshold(level);
    }
    threshold()
}
