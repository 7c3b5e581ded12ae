//! `erlang._native` for plain Python (the pip wheel): the shared module body from core, outside
//! the BEAM, plus the native half of the mocked BEAM ([`mock`]), which is core's callback
//! backend here. Runs on whatever thread imports or calls it. The Rust diagnostics of core go
//! to Python `logging` ([`diag`]).

mod diag;
pub mod mock;

use pyo3::prelude::*;

/// The extension module maturin puts in the wheel as `erlang._native`. Free-threading safe
/// (`gil_used = false`), as the NIF's copy is: the shared body is core's, and the mock's state
/// is a handle table behind a lock never held across Python code and a Python list of mocks.
#[pymodule(gil_used = false)]
#[pyo3(name = "_native")]
fn native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    erlang_python_core::native::populate(module)?;
    erlang_python_core::callback::populate(module)?;
    erlang_python_core::log::populate(module)?;
    mock::register(module)?;
    erlang_python_core::callback::set_backend(Box::new(mock::MockBackend));
    erlang_python_core::log::set_log_sink(Box::new(mock::MockLogSink));
    diag::install();
    erlang_python_core::trace::set_trace_sink(Box::new(mock::MockTraceSink));
    module.add("IN_BEAM", false)?;
    Ok(())
}
