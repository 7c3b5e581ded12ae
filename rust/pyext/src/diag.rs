//! Rust-side diagnostics in plain Python: the `log` crate's records (from core) go to Python
//! `logging` through pyo3-log, under loggers named after the Rust module
//! (`erlang_python_core.log`...). pyo3-log imports `logging`, so it is set up on the first
//! record rather than at import (`import erlang` stays cheap); records are rare events.

use log::{LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Forwards to a pyo3-log logger made on first use.
struct LazyPythonLogger {
    inner: PyOnceLock<pyo3_log::Logger>,
}

static LOGGER: LazyPythonLogger = LazyPythonLogger {
    inner: PyOnceLock::new(),
};

impl Log for LazyPythonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // A GIL-aware once-cell: a thread waiting for the GIL never blocks one that holds it.
        Python::attach(|py| {
            let logger = self
                .inner
                .get_or_try_init(py, || pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers));
            if let Ok(logger) = logger {
                logger.log(record);
            }
        });
    }

    fn flush(&self) {}
}

/// Makes the `log` crate report to Python `logging` (unless another library installed a
/// logger first).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
}
