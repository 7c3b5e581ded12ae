//! The BEAM's [`LogSink`]: each record that passes the native threshold becomes a message
//! `{py_log, Level, LoggerName, Message, Meta, TimestampUs}` to the registered receiver
//! (`py_logger`), sent from the Python thread that logged it through an `OwnedEnv` (Python
//! never runs on a scheduler thread here, so `send_and_clear` is always allowed).
//!
//! Fire-and-forget and bounded by [`OUTBOX`] (`crate::outbox`): past `max_in_flight` records
//! not yet acknowledged by the receiver (`log_ack/1`), records are dropped and counted instead
//! of queuing without bound in the receiver's mailbox.

use std::time::{SystemTime, UNIX_EPOCH};

use erlang_python_core::log::LogSink;
use erlang_python_core::meta::{attrs_to_term, ReprObjects};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::outbox::Outbox;
use crate::term::{options, NifBuilder};

/// Records on their way to `py_logger`.
pub static OUTBOX: Outbox = Outbox::new("Python log records");

/// Microseconds since the Unix epoch (OTP logger's `time` unit).
fn timestamp_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

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
        OUTBOX.send(|env| {
            let ts = timestamp_us();
            let meta_term = meta_to_term(py, env, meta);
            let parts: [Term<'_>; 6] = [
                atoms::py_log().encode(env),
                level.encode(env),
                logger.encode(env),
                message.encode(env),
                meta_term,
                ts.encode(env),
            ];
            make_tuple(env, &parts)
        });
        Ok(())
    }
}

/// The metadata map (core's rules for event attributes: an object with no term is sent as its
/// `repr()`, a key that is not a string is skipped).
fn meta_to_term<'a>(py: Python<'_>, env: Env<'a>, meta: &Bound<'_, PyDict>) -> Term<'a> {
    let mut builder = ReprObjects::new(py, NifBuilder { env });
    attrs_to_term(&mut builder, meta, &options())
        .unwrap_or_else(|_| rustler::types::map::map_new(env))
}
