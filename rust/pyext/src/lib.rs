//! `erlang._native` for plain Python (the pip wheel): the shared module body from core, outside
//! the BEAM. Runs on whatever thread imports it; holds no state of its own.

use pyo3::prelude::*;

/// The extension module maturin puts in the wheel as `erlang._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    erlang_python_core::native::populate(module)?;
    erlang_python_core::callback::populate(module)?;
    module.add("IN_BEAM", false)?;
    Ok(())
}
