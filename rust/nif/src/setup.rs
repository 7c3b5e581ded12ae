//! What runs once, on the `python-main` thread, right after the interpreter starts: `sys.path`,
//! the main thread, the `erlang` package, the interruptible `time.sleep`, the protection of
//! the node from process-ending calls.

use pyo3::prelude::*;
use pyo3::types::PyList;

/// Prepares the fresh interpreter for the BEAM.
pub fn after_init(py: Python<'_>, sys_path: &[String]) -> PyResult<()> {
    let path = py.import("sys")?.getattr("path")?;
    let path = path.cast::<PyList>()?;
    for dir in sys_path.iter().rev() {
        path.insert(0, dir)?;
    }
    // threading.main_thread() is the thread that first imports threading: make it this one.
    py.import("threading")?;
    // Imports the pure-Python package, whose `_native` is the built-in registered before init.
    let erlang = py.import("erlang")?;
    crate::native::install_sleep(py)?;
    crate::native::install_protection(py)?;
    py.import("__main__")?.setattr("erlang", erlang)?;
    Ok(())
}
