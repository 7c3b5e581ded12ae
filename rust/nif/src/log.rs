//! The BEAM's [`LogSink`]: each record that passes the native threshold becomes a message
//! `{py_log, Level, LoggerName, Message, Meta, TimestampUs}` to the registered receiver
//! (`py_logger`), sent from the Python thread that logged it through an `OwnedEnv` (Python
//! never runs on a scheduler thread here, so `send_and_clear` is always allowed).
//!
//! Fire-and-forget and bounded by [`OUTBOX`] (`crate::outbox`): past `max_in_flight` records
//! not yet acknowledged by the receiver (`log_ack/1`), records are dropped and counted instead
//! of queuing without bound in the receiver's mailbox.

use erlang_python_core::log::LogSink;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::bridge::record;
use crate::outbox::Outbox;

/// Records on their way to `py_logger`.
pub static OUTBOX: Outbox = Outbox::new("Python log records");

/// The sink the NIF installs in core.
pub struct BeamLogSink;

impl LogSink for BeamLogSink {
    fn emit(
        &self,
        py: Python<'_>,
        level: i32,
        logger: &str,
        message: &str,
        meta: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        OUTBOX.send(|env| record::log_record(py, env, level, logger, message, meta));
        Ok(())
    }
}
