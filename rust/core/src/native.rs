//! The body of the `erlang._native` module, shared by the NIF (inside the BEAM) and the
//! pip-installed extension (standalone): the classes and exceptions that exist in both worlds.

use pyo3::prelude::*;

use crate::types::{Pid, Ref};

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
    module.add_class::<Pid>()?;
    module.add_class::<Ref>()?;
    module.add("Interrupted", py.get_type::<Interrupted>())?;
    Ok(())
}
