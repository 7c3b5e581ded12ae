//! The mocked BEAM's native half (plain Python only; `erlang.testing` drives it).
//!
//! - The active-mock slot: `mock_enter` / `mock_exit` push and pop the active
//!   `erlang.testing.MockBeam`, and [`current`] hands it to whatever needs "the BEAM" (it raises
//!   `erlang.NotInBeamError` outside a mock); the Python-visible `mock_current` is the same
//!   lookup.
//! - [`MockBackend`], core's `callback::Backend` for the pip extension (installed by the module
//!   initialiser): `erlang.call` goes to `MockBeam._erlang_call` of the current mock, which
//!   holds the registered Python callables and the shared state and passes every value through
//!   its `MockHandles`, so that arguments and results follow the conversion rules;
//!   `erlang.async_call` goes to `MockBeam._erlang_async_call`, which runs async functions as
//!   tasks of the caller's event loop.
//! - `mock_names` sets core's process-wide name registry (what `erlang.<name>` resolves) to the
//!   current mock's function names; `mock_erlang_error` builds the `erlang.ErlangError` of a
//!   failed function with core's `callback::erlang_error`, as the NIF does.
//! - [`MockLogSink`], core's `log::LogSink`: records go to `MockBeam._record_log` of the current
//!   mock (`beam.log_records`).
//! - [`MockTraceSink`], core's `trace::TraceSink`: each finished span is built as the span map
//!   the BEAM stores (in the external term format, by core's `span_to_term`) and handed back to
//!   Python as Erlang would hand it, to `MockBeam._record_span` (`beam.spans`); the Erlang parent
//!   is `beam.trace_parent`. `mock_tracing` sets core's tracing flag (`MockBeam.tracing`).
//! - `MockHandles`: the handle table of one mocked BEAM, with the external term format
//!   functions that use it (opaque objects become references of `ext::HANDLE_NODE`).
//! - `format_term`: external term format bytes printed in Erlang syntax.
//!
//! Runs on whichever thread holds the GIL; the slot is a Python list, so it is as thread-safe
//! as list operations (also on free-threaded builds).

use erlang_python_core::callback::{self, Backend};
use erlang_python_core::convert::{Options, DEFAULT_MAX_DEPTH};
use erlang_python_core::etf;
use erlang_python_core::ext::{self, ExtBuilder, HandleTable, NoHandles};
use erlang_python_core::log::LogSink;
use erlang_python_core::meta::ReprObjects;
use erlang_python_core::trace::{self, span_to_term, SpanRecord, TraceSink};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// The active mocks, innermost last.
static ACTIVE: PyOnceLock<Py<PyList>> = PyOnceLock::new();

fn active(py: Python<'_>) -> &Bound<'_, PyList> {
    ACTIVE
        .get_or_init(py, || PyList::empty(py).unbind())
        .bind(py)
}

/// The active mocked BEAM, or `erlang.NotInBeamError` naming `what` (the call that needs it).
pub fn current<'py>(py: Python<'py>, what: &str) -> PyResult<Bound<'py, PyAny>> {
    innermost(py)?.ok_or_else(|| callback::not_in_beam_for(py, what))
}

fn innermost(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    let stack = active(py);
    // Another thread may pop a mock between the two reads (free-threaded builds): read again.
    loop {
        match stack.len() {
            0 => return Ok(None),
            n => {
                if let Ok(beam) = stack.get_item(n - 1) {
                    return Ok(Some(beam));
                }
            }
        }
    }
}

/// `erlang.call` in plain Python: served by the current mocked BEAM.
pub struct MockBackend;

impl Backend for MockBackend {
    fn call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(beam) = innermost(py)? else {
            return Err(callback::not_in_beam_for(
                py,
                &format!("erlang.call('{name}')"),
            ));
        };
        beam.call_method1(intern!(py, "_erlang_call"), (name, args))
    }

    fn start_call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: &Bound<'py, PyTuple>,
        done: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(beam) = innermost(py)? else {
            return Err(callback::not_in_beam_for(
                py,
                &format!("erlang.async_call('{name}')"),
            ));
        };
        beam.call_method1(intern!(py, "_erlang_async_call"), (name, args, done))
    }

    fn send(
        &self,
        py: Python<'_>,
        pid: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let Some(beam) = innermost(py)? else {
            return Err(callback::not_in_beam_for(py, "erlang.send"));
        };
        beam.call_method1(intern!(py, "_erlang_send"), (pid, message))
            .map(drop)
    }

    fn open_mailbox<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let Some(beam) = innermost(py)? else {
            return Err(callback::not_in_beam_for(py, "erlang.open_mailbox"));
        };
        beam.call_method0(intern!(py, "_mailbox_open"))
    }

    fn reachable(&self, py: Python<'_>) -> bool {
        matches!(innermost(py), Ok(Some(_)))
    }
}

/// Core's `log::LogSink` for the pip extension: a record that passes the native threshold
/// goes to `MockBeam._record_log` of the current mock (inspectable as `beam.log_records`);
/// with no mock active it is dropped, as the BEAM drops records when no receiver is set
/// (logging never raises).
pub struct MockLogSink;

impl LogSink for MockLogSink {
    fn emit(
        &self,
        py: Python<'_>,
        level: i32,
        logger: &str,
        message: &str,
        meta: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        match innermost(py)? {
            Some(beam) => beam
                .call_method1(intern!(py, "_record_log"), (level, logger, message, meta))
                .map(drop),
            None => Ok(()),
        }
    }
}

/// Core's `trace::TraceSink` for the pip extension: a finished span becomes the span map the
/// BEAM would store, converted back to Python as Erlang would send it (atom keys as str,
/// `undefined` as None, attribute values with no term as their `repr()`), and goes to
/// `MockBeam._record_span` of the current mock (`beam.spans`); with no mock active it is
/// dropped.
pub struct MockTraceSink;

impl TraceSink for MockTraceSink {
    fn emit(&self, py: Python<'_>, span: &SpanRecord<'_>) -> PyResult<()> {
        let Some(beam) = innermost(py)? else {
            return Ok(());
        };
        let opts = Options::default();
        let mut builder = ReprObjects::new(py, ExtBuilder::new(py, &NoHandles));
        let term = span_to_term(&mut builder, span, &opts)?;
        let etf = builder.inner.finish(term)?;
        let map = ext::decode(py, &etf, &NoHandles, &opts)?;
        beam.call_method1(intern!(py, "_record_span"), (map,))
            .map(drop)
    }

    fn erlang_parent(&self, py: Python<'_>) -> PyResult<Option<(u128, u64)>> {
        match innermost(py)? {
            Some(beam) => beam.getattr(intern!(py, "trace_parent"))?.extract(),
            None => Ok(None),
        }
    }
}

/// Turns tracing on or off (what `py:enable_tracing/0` and `py:disable_tracing/0` do).
#[pyfunction]
#[pyo3(signature = (enabled, /))]
fn mock_tracing(enabled: bool) {
    trace::set_enabled(enabled);
}

/// Makes `beam` the active mocked BEAM (until `mock_exit(beam)`).
#[pyfunction]
#[pyo3(signature = (beam, /))]
fn mock_enter(beam: &Bound<'_, PyAny>) -> PyResult<()> {
    active(beam.py()).append(beam)
}

/// Deactivates `beam` (the innermost activation of it, wherever it is in the stack).
#[pyfunction]
#[pyo3(signature = (beam, /))]
fn mock_exit(beam: &Bound<'_, PyAny>) -> PyResult<()> {
    let stack = active(beam.py());
    for i in (0..stack.len()).rev() {
        if stack.get_item(i)?.is(beam) {
            return stack.del_item(i);
        }
    }
    Ok(())
}

/// The active mocked BEAM; raises `erlang.NotInBeamError` when there is none.
#[pyfunction]
#[pyo3(signature = (what, /))]
fn mock_current<'py>(py: Python<'py>, what: &str) -> PyResult<Bound<'py, PyAny>> {
    current(py, what)
}

/// The handle table of one mocked BEAM, and the external term format functions that use it.
#[pyclass(frozen, module = "erlang._native")]
struct MockHandles {
    table: HandleTable,
    opts: Options,
}

#[pymethods]
impl MockHandles {
    #[new]
    #[pyo3(signature = (max_depth = DEFAULT_MAX_DEPTH))]
    fn new(max_depth: usize) -> Self {
        MockHandles {
            table: HandleTable::new(),
            opts: Options {
                max_depth: max_depth.max(1),
            },
        }
    }

    /// `erlang.term_to_binary`, where objects with no Erlang equivalent become handles.
    #[pyo3(signature = (value, /))]
    fn term_to_binary<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let py = value.py();
        let bytes = ext::encode(py, value, &self.table, &self.opts)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// `erlang.binary_to_term`, where this table's handles become their objects again.
    #[pyo3(signature = (data, /))]
    fn binary_to_term<'py>(
        &self,
        py: Python<'py>,
        data: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(ext::decode(py, &data, &self.table, &self.opts)?)
    }

    /// Releases every object (Erlang dropped all its handles).
    fn clear(&self, py: Python<'_>) {
        self.table.clear(py);
    }

    fn __len__(&self) -> usize {
        self.table.len()
    }
}

/// Makes exactly `names` resolve as `erlang.<name>` (the current mock's functions).
#[pyfunction]
#[pyo3(signature = (names, /))]
fn mock_names(names: Vec<String>) {
    callback::set_names(names);
}

/// The `erlang.ErlangError` that Python code sees when an Erlang function fails (class
/// `'error'`, `'exit'` or `'throw'`) or is not registered (`'not_found'`, `reason` the name).
#[pyfunction]
#[pyo3(signature = (erlang_class, reason, stacktrace, /))]
fn mock_erlang_error<'py>(
    py: Python<'py>,
    erlang_class: &str,
    reason: &str,
    stacktrace: &str,
) -> Bound<'py, PyAny> {
    callback::erlang_error(py, erlang_class, reason, stacktrace)
        .into_value(py)
        .into_bound(py)
        .into_any()
}

/// External term format bytes in Erlang syntax, e.g. `#{<<"a">> => {1,none}}`.
#[pyfunction]
#[pyo3(signature = (data, /, max_depth = DEFAULT_MAX_DEPTH))]
fn format_term(data: PyBackedBytes, max_depth: usize) -> PyResult<String> {
    Ok(etf::format(&data, max_depth)?)
}

/// Adds the mock's names to `erlang._native`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<MockHandles>()?;
    module.add_function(wrap_pyfunction!(mock_enter, module)?)?;
    module.add_function(wrap_pyfunction!(mock_exit, module)?)?;
    module.add_function(wrap_pyfunction!(mock_current, module)?)?;
    module.add_function(wrap_pyfunction!(mock_names, module)?)?;
    module.add_function(wrap_pyfunction!(mock_tracing, module)?)?;
    module.add_function(wrap_pyfunction!(mock_erlang_error, module)?)?;
    module.add_function(wrap_pyfunction!(format_term, module)?)?;
    Ok(())
}
