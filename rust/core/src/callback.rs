//! Python calls Erlang: `erlang.call`, `erlang.Function`, `erlang.ErlangError`, and the
//! registry of Erlang function names that drives `erlang.<name>` attribute access.
//!
//! Where the call goes is the [`Backend`]'s business: the NIF sends it to the BEAM
//! (docs/architecture.md, invariant 4), the pip extension to the active mocked BEAM of `erlang.testing`. With no BEAM
//! to reach (no backend, or no active mock) calls raise `erlang.NotInBeamError`
//! ([`not_in_beam_for`]). The name registry is process-wide: the NIF fills it from
//! `py:register_function`, the pip extension with the names of the current mock. Any thread;
//! the backend decides how to wait (always with the GIL released).

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

pyo3::create_exception!(
    erlang,
    ErlangError,
    PyRuntimeError,
    "An Erlang function called from Python failed (exception, exit or throw), or no function \
     is registered under that name. Attributes: `erlang_class` ('error', 'exit', 'throw' or \
     'not_found'), `reason` and `stacktrace` (Erlang terms printed as text)."
);

/// Where `erlang.call` goes.
pub trait Backend: Send + Sync + 'static {
    /// Calls the Erlang function registered as `name` with `args` and returns its result
    /// converted to Python; raises [`ErlangError`] when it fails or is not registered.
    fn call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>>;

    /// Starts the same call without waiting for it (`erlang.async_call`): `done(ok, value)` is
    /// called exactly once, on some thread holding the GIL (possibly before this returns), with
    /// `(True, result)` or `(False, exception)`. Returns a handle whose `cancel()` makes sure
    /// `done` is never called and releases everything the pending call holds.
    fn start_call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: &Bound<'py, PyTuple>,
        done: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>>;

    /// The inbox of a running event loop (`erlang._native._loop_inbox()`, driven by
    /// `erlang._async`): an object with `fileno()`, `drain()`, `close()` and
    /// `call(name, args, future)`, through which the replies of `erlang.async_call` reach the
    /// loop's thread directly. `None` (the default) when the backend has none: `start_call`
    /// serves the calls then.
    fn loop_inbox<'py>(&self, _py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(None)
    }

    /// Sends `message` (converted as a call's argument) to the process `pid`, an
    /// `erlang.Pid`, as Erlang's `Pid ! Message` does: nothing happens when the process is not
    /// alive. Raises what converting a call's argument raises (`ValueError` past `max_depth`).
    fn send(
        &self,
        py: Python<'_>,
        pid: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()>;

    /// A new mailbox inbox (`erlang._native._mailbox_open()`, driven by `erlang._mailbox`):
    /// an object with `take_fd()`, `drain()` and `close()`, whose process is on its way.
    fn open_mailbox<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;

    /// Whether calls can reach a BEAM now: always inside the real one; in plain Python, while
    /// a mocked BEAM is active. Outside, `erlang.<name>` says so instead of only "no attribute".
    fn reachable(&self, _py: Python<'_>) -> bool {
        true
    }
}

static BACKEND: OnceLock<Box<dyn Backend>> = OnceLock::new();
static NAMES: RwLock<Option<HashSet<String>>> = RwLock::new(None);

/// Installs the backend of this process (first call wins).
pub fn set_backend(backend: Box<dyn Backend>) {
    let _ = BACKEND.set(backend);
}

/// Makes `erlang.<name>` resolve.
pub fn register_name(name: &str) {
    if let Ok(mut names) = NAMES.write() {
        names
            .get_or_insert_with(HashSet::new)
            .insert(name.to_owned());
    }
}

/// Makes `erlang.<name>` raise `AttributeError` again.
pub fn unregister_name(name: &str) {
    if let Ok(mut names) = NAMES.write() {
        if let Some(names) = names.as_mut() {
            names.remove(name);
        }
    }
}

/// Makes exactly `names` resolve, in one step (the mocked BEAM that became current).
pub fn set_names<I: IntoIterator<Item = String>>(names: I) {
    if let Ok(mut registry) = NAMES.write() {
        *registry = Some(names.into_iter().collect());
    }
}

/// Forgets every name (the registry's owner stopped).
pub fn clear_names() {
    if let Ok(mut names) = NAMES.write() {
        *names = None;
    }
}

/// True when an Erlang function is registered as `name`.
pub fn is_registered(name: &str) -> bool {
    NAMES
        .read()
        .map(|names| names.as_ref().is_some_and(|n| n.contains(name)))
        .unwrap_or(false)
}

/// Builds the `ErlangError` raised for a failed Erlang function.
pub fn erlang_error(py: Python<'_>, class: &str, reason: &str, stacktrace: &str) -> PyErr {
    let message = if class == "not_found" {
        format!("Function '{reason}' not registered")
    } else {
        format!("{class}: {reason}")
    };
    let err = ErlangError::new_err(message);
    let value = err.value(py);
    let _ = value.setattr("erlang_class", class);
    let _ = value.setattr("reason", reason);
    let _ = value.setattr("stacktrace", stacktrace);
    err
}

fn backend_call<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    match BACKEND.get() {
        Some(backend) => backend.call(py, name, args),
        None => Err(not_in_beam(py)),
    }
}

/// `erlang.NotInBeamError` for `erlang.call`; see [`not_in_beam_for`].
pub fn not_in_beam(py: Python<'_>) -> PyErr {
    not_in_beam_for(py, "erlang.call")
}

/// `erlang.NotInBeamError` for `what` (the call that needs the BEAM), built by
/// `erlang._errors.not_in_beam` so that the message is written once, in Python, where the
/// exception class lives. A `RuntimeError` when the pure-Python package is not importable.
pub fn not_in_beam_for(py: Python<'_>, what: &str) -> PyErr {
    let made = py
        .import("erlang._errors")
        .and_then(|errors| errors.call_method1("not_in_beam", (what,)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => PyRuntimeError::new_err(format!(
            "{what} needs the BEAM, and the erlang package is not importable: {err}"
        )),
    }
}

/// `erlang.call(name, /, *args)`: calls the Erlang function registered as `name`. The signature
/// is exactly what it accepts (the stub `_native.pyi` says the same): a missing name or a
/// keyword argument is Python's own `TypeError`.
#[pyfunction]
#[pyo3(signature = (name, /, *args))]
fn call<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let name = name
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("Function name must be a string"))?
        .to_str()?;
    backend_call(py, name, args)
}

/// `erlang._native._async_start(name, args, done)`: starts a call of the Erlang function
/// registered as `name` without waiting (see [`Backend::start_call`]); the building block of
/// `erlang.async_call`. Raises `TypeError` for a name that is not a str or an argument with no
/// Erlang term, `erlang.NotInBeamError` outside the BEAM.
#[pyfunction]
#[pyo3(signature = (name, args, done, /))]
fn _async_start<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    done: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let name = name
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("Function name must be a string"))?
        .to_str()?;
    if !done.is_callable() {
        return Err(PyTypeError::new_err("done must be callable"));
    }
    match BACKEND.get() {
        Some(backend) => backend.start_call(py, name, args, done),
        None => Err(not_in_beam_for(py, "erlang.async_call")),
    }
}

/// `erlang.send(pid, message)`: sends `message` to the Erlang process `pid` (an
/// `erlang.Pid`), as `Pid ! Message` does: silently dropped when the process is not alive.
/// Raises `TypeError` when `pid` is not an `erlang.Pid`, what converting a call's argument
/// raises for `message` (`ValueError` past `max_depth`), `erlang.NotInBeamError` outside the
/// BEAM with no mocked BEAM active.
#[pyfunction]
#[pyo3(signature = (pid, message, /))]
fn send(py: Python<'_>, pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<()> {
    if !pid.is_instance_of::<crate::types::Pid>() {
        return Err(PyTypeError::new_err(format!(
            "erlang.send: pid must be an erlang.Pid, not {}",
            pid.get_type().name()?
        )));
    }
    match BACKEND.get() {
        Some(backend) if backend.reachable(py) => backend.send(py, pid, message),
        _ => Err(not_in_beam_for(py, "erlang.send")),
    }
}

/// `erlang._native._mailbox_open()`: the inbox of a new mailbox (see `erlang._mailbox`);
/// `erlang.NotInBeamError` outside the BEAM with no mocked BEAM active.
#[pyfunction]
fn _mailbox_open(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    match BACKEND.get() {
        Some(backend) if backend.reachable(py) => backend.open_mailbox(py),
        _ => Err(not_in_beam_for(py, "erlang.open_mailbox")),
    }
}

/// `erlang._native._loop_inbox()`: a new inbox for the running loop's `erlang.async_call`
/// replies (see [`Backend::loop_inbox`]); None when the backend has none or no BEAM is
/// reachable.
#[pyfunction]
fn _loop_inbox(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    match BACKEND.get() {
        Some(backend) if backend.reachable(py) => backend.loop_inbox(py),
        _ => Ok(None),
    }
}

/// `erlang._beam_reachable()`: whether a BEAM (the real one, or an active mocked one) serves
/// calls now.
#[pyfunction]
#[pyo3(name = "_beam_reachable")]
fn py_beam_reachable(py: Python<'_>) -> bool {
    BACKEND.get().is_some_and(|backend| backend.reachable(py))
}

/// `erlang._is_registered(name)`: whether `erlang.<name>` resolves.
#[pyfunction]
#[pyo3(name = "_is_registered")]
fn py_is_registered(name: &str) -> bool {
    is_registered(name)
}

/// A registered Erlang function, as `erlang.<name>` returns it.
#[pyclass(frozen, module = "erlang", name = "Function")]
pub struct Function {
    name: String,
}

#[pymethods]
impl Function {
    #[new]
    fn new(name: String) -> Self {
        Function { name }
    }

    /// The registered name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Positional arguments only, as the stub says.
    #[pyo3(signature = (*args))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        backend_call(py, &self.name, args)
    }

    fn __repr__(&self) -> String {
        format!("<erlang function '{}'>", self.name)
    }
}

/// Adds the callback names to `module`.
pub fn populate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<Function>()?;
    module.add("ErlangError", py.get_type::<ErlangError>())?;
    module.add_function(wrap_pyfunction!(call, module)?)?;
    module.add_function(wrap_pyfunction!(py_is_registered, module)?)?;
    module.add_function(wrap_pyfunction!(py_beam_reachable, module)?)?;
    module.add_function(wrap_pyfunction!(_async_start, module)?)?;
    module.add_function(wrap_pyfunction!(send, module)?)?;
    module.add_function(wrap_pyfunction!(_mailbox_open, module)?)?;
    module.add_function(wrap_pyfunction!(_loop_inbox, module)?)?;
    Ok(())
}
