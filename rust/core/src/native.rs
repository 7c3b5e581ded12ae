//! The body of the `erlang._native` module, shared by the NIF (inside the BEAM) and the
//! pip-installed extension (standalone): the classes and exceptions that exist in both worlds,
//! and the tracing entry points of [`crate::trace`].

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};

use crate::convert::Options;
use crate::ext::{self, NoHandles};

pyo3::create_exception!(
    erlang,
    Interrupted,
    pyo3::exceptions::PyBaseException,
    "Raised inside Python code that the BEAM stops: the Erlang caller timed out or died. \
     It derives from BaseException so that `except Exception` does not swallow it."
);

/// Adds the shared names to `module` (called from each crate's module initialiser).
pub fn populate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    crate::types::populate(module)?;
    module.add("Interrupted", py.get_type::<Interrupted>())?;
    module.add_function(wrap_pyfunction!(term_to_binary, module)?)?;
    module.add_function(wrap_pyfunction!(binary_to_term, module)?)?;
    module.add_class::<crate::convert::PyArrayTerm>()?;
    module.add_function(wrap_pyfunction!(crate::convert::py_array, module)?)?;
    module.add_function(wrap_pyfunction!(crate::asgi::_asgi_scope, module)?)?;
    module.add("_ASGI_SERVER_KEYS", PyTuple::new(py, crate::asgi::KEYS)?)?;
    // The one default nesting bound, for Python code that needs it (erlang.testing).
    module.add("DEFAULT_MAX_DEPTH", crate::convert::DEFAULT_MAX_DEPTH)?;
    crate::trace::populate(module)?;
    Ok(())
}

/// Encodes a value in Erlang's external term format, as `term_to_binary/1` would encode the
/// term that the value becomes in Erlang (docs/type-conversion.md).
///
/// Raises TypeError for values with no Erlang equivalent, ValueError for nesting deeper than
/// 1000 levels (cycles included) and for dict keys that become the same term, and
/// UnicodeEncodeError for a str with a lone surrogate.
#[pyfunction]
#[pyo3(signature = (value, /))]
fn term_to_binary<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let py = value.py();
    let bytes = ext::encode(py, value, &NoHandles, &Options::default())?;
    Ok(PyBytes::new(py, &bytes))
}

/// Decodes bytes in Erlang's external term format (as `term_to_binary/1` produces them) to
/// the Python value that the term becomes in Python (docs/type-conversion.md).
///
/// Raises ValueError for bytes that are not exactly one well-formed term, or that nest deeper
/// than 1000 levels, and TypeError for terms with no Python equivalent (funs, ports,
/// bitstrings, improper lists).
#[pyfunction]
#[pyo3(signature = (data, /))]
fn binary_to_term<'py>(py: Python<'py>, data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
    Ok(ext::decode(py, &data, &NoHandles, &Options::default())?)
}
