//! The BEAM's [`LogSink`]: each record that passes the native threshold becomes a message
//! `{py_log, Level, LoggerName, Message, Meta, TimestampUs}` to the registered receiver
//! (`py_logger`), sent from the Python thread that logged it through an `OwnedEnv` (Python
//! never runs on a scheduler thread here, so `send_and_clear` is always allowed).
//!
//! Fire-and-forget and bounded by [`OUTBOX`] (`crate::outbox`): past `max_in_flight` records
//! not yet acknowledged by the receiver (`log_ack/1`), records are dropped and counted instead
//! of queuing without bound in the receiver's mailbox.
//!
//! The NIF's own diagnostics (the `log` crate) take the same way, as
//! `{py_nif_log, Level, Target, Message, {File, Line}, TimestampUs}`, filtered by the same
//! threshold. A record made on a scheduler thread (in a NIF call) cannot be sent from there
//! with an owned env: it goes through a bounded channel to a forwarder thread, `py-nif-log`,
//! started on first use.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use log::{Level, LevelFilter, Metadata, Record};

use erlang_python_core::log::LogSink;
use erlang_python_core::meta::{attrs_to_term, ReprObjects};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::outbox::Outbox;
use crate::term::{options, NifBuilder};

/// Records on their way to `py_logger`. Its drops are not logged: they would go through it.
pub static OUTBOX: Outbox = Outbox::new("log records", false);

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

/// The `log` crate's logger of the NIF.
struct NifLogger;

static NIF_LOGGER: NifLogger = NifLogger;

/// A diagnostic waiting for the forwarder thread.
struct Diagnostic {
    level: i32,
    target: String,
    message: String,
    file: Option<String>,
    line: Option<u32>,
    ts: i64,
}

/// Diagnostics made on scheduler threads, on their way to the forwarder.
const FORWARD_QUEUE: usize = 1024;

static FORWARDER: OnceLock<Option<Sender<Diagnostic>>> = OnceLock::new();

/// Makes the `log` crate's records of this library go to `py_logger` (off until a receiver is
/// set).
pub fn install_diagnostics() {
    if log::set_logger(&NIF_LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Off);
    }
}

/// Sets which diagnostics are made: those at or above the native threshold (Python level
/// numbers), none without a receiver.
pub fn set_diagnostics_level(threshold: i32, has_receiver: bool) {
    let filter = match threshold {
        _ if !has_receiver => LevelFilter::Off,
        ..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        31..=40 => LevelFilter::Error,
        _ => LevelFilter::Off,
    };
    log::set_max_level(filter);
}

/// The Python level number of a `log` level (`trace` is below `debug`).
fn python_level(level: Level) -> i32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

impl log::Log for NifLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let diagnostic = Diagnostic {
            level: python_level(record.level()),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            file: record.file().map(str::to_owned),
            line: record.line(),
            ts: timestamp_us(),
        };
        if rustler::thread::is_scheduler_thread() {
            forward(diagnostic);
        } else {
            send_diagnostic(diagnostic);
        }
    }

    fn flush(&self) {}
}

fn send_diagnostic(d: Diagnostic) {
    OUTBOX.send(|env| {
        let file = match &d.file {
            Some(file) => file.encode(env),
            None => atoms::undefined().encode(env),
        };
        let line = match d.line {
            Some(line) => line.encode(env),
            None => atoms::undefined().encode(env),
        };
        let location = make_tuple(env, &[file, line]);
        let parts: [Term<'_>; 6] = [
            atoms::py_nif_log().encode(env),
            d.level.encode(env),
            d.target.encode(env),
            d.message.encode(env),
            location,
            d.ts.encode(env),
        ];
        make_tuple(env, &parts)
    });
}

/// Hands a diagnostic made on a scheduler thread to the forwarder; never blocks (a full queue
/// drops it, counted with the records dropped).
fn forward(diagnostic: Diagnostic) {
    let forwarder = FORWARDER.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::bounded::<Diagnostic>(FORWARD_QUEUE);
        std::thread::Builder::new()
            .name("py-nif-log".into())
            .spawn(move || rx.iter().for_each(send_diagnostic))
            .ok()
            .map(|_| tx)
    });
    match forwarder {
        Some(tx) if tx.try_send(diagnostic).is_ok() => {}
        _ => OUTBOX.count_drop(),
    }
}
