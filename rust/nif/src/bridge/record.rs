//! Log records and spans as the terms `py_logger` and `py_tracer` receive (core's rules for
//! event attributes: an object with no term is sent as its `repr()`).

use std::time::{SystemTime, UNIX_EPOCH};

use erlang_python_core::meta::{attrs_to_term, ReprObjects};
use erlang_python_core::trace::{span_to_term, SpanRecord};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, Term};

use super::term::{options, NifBuilder};
use crate::atoms;

/// Microseconds since the Unix epoch (OTP logger's `time` unit).
fn timestamp_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `{py_log, Level, LoggerName, Message, Meta, TimestampUs}`; a metadata key that is not a
/// string is skipped.
pub fn log_record<'a>(
    py: Python<'_>,
    env: Env<'a>,
    level: i32,
    logger: &str,
    message: &str,
    meta: &Bound<'_, PyDict>,
) -> Term<'a> {
    let ts = timestamp_us();
    let mut builder = ReprObjects::new(py, NifBuilder::new(env));
    let meta_term = attrs_to_term(&mut builder, meta, &options())
        .map(|raw| builder.inner.term(raw))
        .unwrap_or_else(|_| rustler::types::map::map_new(env));
    let parts: [Term<'_>; 6] = [
        atoms::py_log().encode(env),
        level.encode(env),
        logger.encode(env),
        message.encode(env),
        meta_term,
        ts.encode(env),
    ];
    make_tuple(env, &parts)
}

/// `{py_span, SpanMap}`. Building fails only on a term the BEAM cannot hold; `py_tracer`
/// acknowledges and skips what is not a map.
pub fn span<'a>(py: Python<'_>, env: Env<'a>, span: &SpanRecord<'_>) -> Term<'a> {
    let mut builder = ReprObjects::new(py, NifBuilder::new(env));
    let map = span_to_term(&mut builder, span, &options())
        .map(|raw| builder.inner.term(raw))
        .unwrap_or_else(|_| atoms::undefined().encode(env));
    (atoms::py_span(), map).encode(env)
}
