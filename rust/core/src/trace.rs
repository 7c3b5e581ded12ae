//! Finished spans on their way to Erlang: `erlang._native._span`, `_trace_enabled` and
//! `_trace_parent`, the process-wide enabled flag, and the [`TraceSink`] trait through which
//! spans leave (the NIF sends them to `py_tracer`; the mocked BEAM records them).
//!
//! `erlang.Span` (python/erlang/_tracing.py) keeps a span's events on the Python object and
//! hands the whole finished span to `_span` in one call, so a span costs one native call
//! (and one Erlang message) however many events it has. While tracing is off, `Span` checks
//! `_trace_enabled` (one atomic load) and does nothing else.
//!
//! Any Python thread (executors, `threading.Thread`s, asyncio loops); the sink must never
//! block.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::convert::{Options, TermBuilder};
use crate::error::Result;
use crate::meta::{attrs_to_term, ReprObjects};

/// Where finished spans go, and where the parent that Erlang gave a request is found.
pub trait TraceSink: Send + Sync + 'static {
    /// Delivers one finished span; must not block (drop and count when overloaded).
    fn emit(&self, py: Python<'_>, span: &SpanRecord<'_>) -> PyResult<()>;

    /// The `(trace_id, span_id)` that Erlang set as the parent of spans started by the
    /// request running on this thread (`py:with_trace_parent/2`), if any.
    fn erlang_parent(&self, py: Python<'_>) -> PyResult<Option<(u128, u64)>>;
}

static SINK: OnceLock<Box<dyn TraceSink>> = OnceLock::new();

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Installs the sink of this process (first call wins).
pub fn set_trace_sink(sink: Box<dyn TraceSink>) {
    let _ = SINK.set(sink);
}

/// Turns tracing on or off for every thread.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether spans are recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How a span ended: `ok`, or `error` when an exception escaped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    /// The block finished normally.
    Ok,
    /// An exception escaped the block.
    Error,
}

impl SpanStatus {
    /// The status named `name` (`"ok"` or `"error"`).
    pub fn from_name(name: &str) -> Option<SpanStatus> {
        match name {
            "ok" => Some(SpanStatus::Ok),
            "error" => Some(SpanStatus::Error),
            _ => None,
        }
    }

    /// The atom Erlang sees.
    pub fn atom(self) -> &'static str {
        match self {
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }
}

/// One event of a span.
pub struct SpanEvent<'py> {
    /// Its name.
    pub name: String,
    /// Its attributes (string keys).
    pub attrs: Bound<'py, PyDict>,
    /// When it happened, CLOCK_MONOTONIC µs.
    pub time_us: i64,
}

/// A finished span, as `_span` received it.
pub struct SpanRecord<'py> {
    /// Its name.
    pub name: String,
    /// The trace it belongs to (shared by the whole tree).
    pub trace_id: u128,
    /// Its own id.
    pub span_id: u64,
    /// The enclosing span, or `None` for a root.
    pub parent_id: Option<u64>,
    /// CLOCK_MONOTONIC µs at entry.
    pub start_us: i64,
    /// CLOCK_MONOTONIC µs at exit.
    pub end_us: i64,
    /// How it ended.
    pub status: SpanStatus,
    /// The attributes given at start.
    pub attrs: Bound<'py, PyDict>,
    /// The attributes set at exit (the exception of an `error` span).
    pub end_attrs: Bound<'py, PyDict>,
    /// Its events, newest first.
    pub events: Vec<SpanEvent<'py>>,
}

impl SpanRecord<'_> {
    /// `end - start`.
    pub fn duration_us(&self) -> i64 {
        self.end_us.saturating_sub(self.start_us)
    }
}

/// A non-negative integer as a term.
fn uint<B: TermBuilder>(builder: &mut B, value: u128) -> Result<B::Term> {
    match i64::try_from(value) {
        Ok(small) => Ok(builder.int(small)),
        Err(_) => builder.bigint(false, &value.to_le_bytes()),
    }
}

/// The span map Erlang stores (docs/logging.md#tracing): `name`, `trace_id`, `span_id`,
/// `parent_id` (`undefined` for a root), `attributes`, `start_time`, `end_time`,
/// `duration_us`, `status`, `end_attrs`, and `events` (`#{name, attrs, time}`, newest first).
/// Attribute values with no Erlang term are sent as their `repr()`.
pub fn span_to_term<B: TermBuilder>(
    builder: &mut ReprObjects<'_, B>,
    span: &SpanRecord<'_>,
    opts: &Options,
) -> Result<B::Term> {
    let mut events = Vec::with_capacity(span.events.len());
    for event in &span.events {
        let pairs = vec![
            (builder.atom("name"), builder.binary(event.name.as_bytes())),
            (
                builder.atom("attrs"),
                attrs_to_term(builder, &event.attrs, opts)?,
            ),
            (builder.atom("time"), builder.int(event.time_us)),
        ];
        events.push(builder.map(pairs)?);
    }
    let parent = match span.parent_id {
        Some(id) => uint(builder, id.into())?,
        None => builder.atom("undefined"),
    };
    let pairs = vec![
        (builder.atom("name"), builder.binary(span.name.as_bytes())),
        (builder.atom("trace_id"), uint(builder, span.trace_id)?),
        (builder.atom("span_id"), uint(builder, span.span_id.into())?),
        (builder.atom("parent_id"), parent),
        (
            builder.atom("attributes"),
            attrs_to_term(builder, &span.attrs, opts)?,
        ),
        (builder.atom("start_time"), builder.int(span.start_us)),
        (builder.atom("end_time"), builder.int(span.end_us)),
        (builder.atom("duration_us"), builder.int(span.duration_us())),
        (builder.atom("status"), builder.atom(span.status.atom())),
        (
            builder.atom("end_attrs"),
            attrs_to_term(builder, &span.end_attrs, opts)?,
        ),
        (builder.atom("events"), builder.list(events)),
    ];
    builder.map(pairs)
}

/// Adds `_span`, `_trace_enabled` and `_trace_parent` to `module`.
pub fn populate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(_span, module)?)?;
    module.add_function(wrap_pyfunction!(_trace_enabled, module)?)?;
    module.add_function(wrap_pyfunction!(_trace_parent, module)?)?;
    Ok(())
}

/// Whether tracing is on (one atomic load).
#[pyfunction]
fn _trace_enabled() -> bool {
    enabled()
}

/// `(trace_id, span_id)` of the parent that Erlang gave the request running on this thread,
/// or None.
#[pyfunction]
fn _trace_parent(py: Python<'_>) -> PyResult<Option<(u128, u64)>> {
    match SINK.get() {
        Some(sink) => sink.erlang_parent(py),
        None => Ok(None),
    }
}

/// A str as Rust text; a lone surrogate becomes U+FFFD instead of failing the span.
fn text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.cast::<PyString>()?.to_string_lossy().into_owned())
}

fn event_from<'py>(item: &Bound<'py, PyAny>) -> PyResult<SpanEvent<'py>> {
    let tuple = item.cast::<PyTuple>()?;
    if tuple.len() != 3 {
        return Err(PyValueError::new_err(
            "an event is a (name, attrs, time_us) tuple",
        ));
    }
    Ok(SpanEvent {
        name: text(&tuple.get_item(0)?)?,
        attrs: tuple.get_item(1)?.cast_into::<PyDict>()?,
        time_us: tuple.get_item(2)?.extract()?,
    })
}

/// A 128-bit trace id: `OverflowError` for a negative int on every Python version (3.13's
/// conversion of a negative int to an unsigned 128-bit one raises `ValueError` instead).
fn trace_id_from(value: &Bound<'_, PyAny>) -> PyResult<u128> {
    if value.is_instance_of::<pyo3::types::PyInt>() && value.lt(0)? {
        return Err(pyo3::exceptions::PyOverflowError::new_err(
            "trace_id must be in [0, 2**128)",
        ));
    }
    value.extract()
}

/// Sends one finished span to Erlang; fire-and-forget, never blocks. Dropped when tracing is
/// off. Raises TypeError or OverflowError for arguments of the wrong type or range (ids are
/// unsigned: 128 bits for the trace, 64 for spans) and ValueError for a status other than
/// `'ok'` and `'error'`, or an event that is not a `(name, attrs, time_us)` tuple.
#[pyfunction]
#[pyo3(signature = (name, trace_id, span_id, parent_id, start_us, end_us, status, attrs,
                    end_attrs, events, /))]
#[allow(clippy::too_many_arguments)]
fn _span(
    py: Python<'_>,
    name: &Bound<'_, PyAny>,
    trace_id: &Bound<'_, PyAny>,
    span_id: u64,
    parent_id: Option<u64>,
    start_us: i64,
    end_us: i64,
    status: &str,
    attrs: &Bound<'_, PyDict>,
    end_attrs: &Bound<'_, PyDict>,
    events: &Bound<'_, PyList>,
) -> PyResult<()> {
    if !enabled() {
        return Ok(());
    }
    let status = SpanStatus::from_name(status)
        .ok_or_else(|| PyValueError::new_err("status must be 'ok' or 'error'"))?;
    let span = SpanRecord {
        name: text(name)?,
        trace_id: trace_id_from(trace_id)?,
        span_id,
        parent_id,
        start_us,
        end_us,
        status,
        attrs: attrs.clone(),
        end_attrs: end_attrs.clone(),
        events: events
            .iter()
            .map(|item| event_from(&item))
            .collect::<PyResult<_>>()?,
    };
    match SINK.get() {
        Some(sink) => sink.emit(py, &span),
        None => Ok(()),
    }
}
