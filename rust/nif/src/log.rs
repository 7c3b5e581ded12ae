//! The BEAM's [`LogSink`]: each record that passes the native threshold becomes a message
//! `{py_log, Level, LoggerName, Message, Meta, TimestampUs}` to the registered receiver
//! (`py_logger`), sent from the Python thread that logged it through an `OwnedEnv` (Python
//! never runs on a scheduler thread here, so `send_and_clear` is always allowed).
//!
//! Fire-and-forget and bounded: a counter of records sent but not yet acknowledged by the
//! receiver (`log_ack/1`); past `max_in_flight` records are dropped and counted instead of
//! queuing without bound in the receiver's mailbox.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use erlang_python_core::convert::{self, TermBuilder};
use erlang_python_core::log::LogSink;
use erlang_python_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use crate::atoms;
use crate::term::{options, NifBuilder};

/// The default bound on records in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

static RECEIVER: RwLock<Option<LocalPid>> = RwLock::new(None);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_IN_FLIGHT);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Sets (or clears) the receiver. A new receiver starts with nothing in flight.
pub fn set_receiver(pid: Option<LocalPid>) {
    if let Ok(mut receiver) = RECEIVER.write() {
        *receiver = pid;
    }
    IN_FLIGHT.store(0, Ordering::Relaxed);
}

/// Sets the bound on records in flight.
pub fn set_max_in_flight(max: usize) {
    MAX_IN_FLIGHT.store(max.max(1), Ordering::Relaxed);
}

/// The receiver handled `n` records.
pub fn ack(n: usize) {
    let _ = IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

/// `(dropped, in_flight, max_in_flight)`.
pub fn stats() -> (u64, usize, usize) {
    (
        DROPPED.load(Ordering::Relaxed),
        IN_FLIGHT.load(Ordering::Relaxed),
        MAX_IN_FLIGHT.load(Ordering::Relaxed),
    )
}

/// Reserves a slot for one record, or counts it as dropped.
fn reserve() -> bool {
    let max = MAX_IN_FLIGHT.load(Ordering::Relaxed);
    let reserved = IN_FLIGHT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            (v < max).then_some(v + 1)
        })
        .is_ok();
    if !reserved {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    reserved
}

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
        let Some(receiver) = RECEIVER.read().ok().and_then(|r| *r) else {
            return Ok(());
        };
        if !reserve() {
            return Ok(());
        }
        let ts = timestamp_us();
        let mut env = OwnedEnv::new();
        let sent = env.send_and_clear(&receiver, |env| {
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
        if sent.is_err() {
            ack(1);
        }
        Ok(())
    }
}

/// The metadata map. Values follow the conversion rules, except that an object with no term
/// is sent as its `repr()` (a log event should not keep a Python object alive through an opaque
/// handle); a key that is not a string is skipped, a value that fails is sent as its `repr()`.
fn meta_to_term<'a>(py: Python<'_>, env: Env<'a>, meta: &Bound<'_, PyDict>) -> Term<'a> {
    let opts = options();
    let mut builder = MetaBuilder {
        inner: NifBuilder { env },
        py,
    };
    let mut pairs = Vec::with_capacity(meta.len());
    for (key, value) in meta.iter() {
        let Ok(key) = key.extract::<String>() else {
            continue;
        };
        let value = match convert::from_py(&mut builder, &value, &opts) {
            Ok(term) => term,
            Err(_) => repr_of(&value).encode(env),
        };
        pairs.push((key.encode(env), value));
    }
    builder
        .map(pairs)
        .unwrap_or_else(|_| rustler::types::map::map_new(env))
}

fn repr_of(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| String::from("<unrepresentable>"))
}

/// [`NifBuilder`] with opaque objects replaced by their `repr()`.
struct MetaBuilder<'a, 'py> {
    inner: NifBuilder<'a>,
    py: Python<'py>,
}

impl<'a> TermBuilder for MetaBuilder<'a, '_> {
    type Term = Term<'a>;

    fn atom(&mut self, name: &'static str) -> Term<'a> {
        self.inner.atom(name)
    }
    fn int(&mut self, value: i64) -> Term<'a> {
        self.inner.int(value)
    }
    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<Term<'a>, Error> {
        self.inner.bigint(negative, magnitude_le)
    }
    fn float(&mut self, value: f64) -> Term<'a> {
        self.inner.float(value)
    }
    fn binary(&mut self, bytes: &[u8]) -> Term<'a> {
        self.inner.binary(bytes)
    }
    fn list(&mut self, items: Vec<Term<'a>>) -> Term<'a> {
        self.inner.list(items)
    }
    fn tuple(&mut self, items: Vec<Term<'a>>) -> Term<'a> {
        self.inner.tuple(items)
    }
    fn map(&mut self, pairs: Vec<(Term<'a>, Term<'a>)>) -> Result<Term<'a>, Error> {
        self.inner.map(pairs)
    }
    fn pid(&mut self, etf: &[u8]) -> Result<Term<'a>, Error> {
        self.inner.pid(etf)
    }
    fn reference(&mut self, etf: &[u8]) -> Result<Term<'a>, Error> {
        self.inner.reference(etf)
    }
    fn object(&mut self, object: Py<PyAny>) -> Result<Term<'a>, Error> {
        let text = repr_of(object.bind(self.py));
        Ok(self.inner.binary(text.as_bytes()))
    }
}
