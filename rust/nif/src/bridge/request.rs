//! A request's saved terms as Python values, read on the executor (the request's shape was
//! checked on the caller's scheduler, see `crate::nifs::pool`). Runs on the executor, with the
//! GIL held.

use erlang_python_core::convert::{self, TermReader, View};
use erlang_python_core::ext;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustler::env::SavedTerm;
use rustler::{Binary, Env, OwnedEnv, ResourceArc};

use super::term::{options, NifReader, PyObjectResource};

/// `Args` (a list) and `Kwargs` (a map) as a call's positional and keyword arguments.
pub fn call_arguments<'py>(
    py: Python<'py>,
    env: &OwnedEnv,
    args: &SavedTerm,
    kwargs: &SavedTerm,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    env.run(|env| {
        let opts = options();
        let reader = NifReader::new(env);
        let args = args.load(env);
        // A binary: the list in the external term format (`pool_call_etf`).
        if let Ok(etf) = args.decode::<Binary<'_>>() {
            let resolve = |py: Python<'_>, bytes: &[u8]| handle_of(py, env, bytes);
            let args =
                ext::etf_list_to_tuple(py, etf.as_slice(), &resolve, &opts).map_err(PyErr::from)?;
            let kwargs =
                convert::kwargs_to_py(py, &reader, kwargs.load(env), &opts).map_err(PyErr::from)?;
            return Ok((args, kwargs));
        }
        let View::List(items) = reader.view(py, args).map_err(PyErr::from)? else {
            return Err(PyTypeError::new_err("arguments must be a list"));
        };
        let args = items
            .into_iter()
            .map(|t| convert::to_py(py, &reader, t, &opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PyErr::from)?;
        let kwargs =
            convert::kwargs_to_py(py, &reader, kwargs.load(env), &opts).map_err(PyErr::from)?;
        Ok((PyTuple::new(py, args)?, kwargs))
    })
}

/// The Python object behind the opaque handle whose reference `etf` encodes (the caller
/// holds the handle until the reply, see `py_request`), or `None` for any other reference.
fn handle_of(py: Python<'_>, env: Env<'_>, etf: &[u8]) -> Option<Py<PyAny>> {
    let (term, _) = env.binary_to_term(etf)?;
    let handle = term.decode::<ResourceArc<PyObjectResource>>().ok()?;
    Some(handle.object(py).unbind())
}

/// `Locals` (a map) as a dict of names.
pub fn locals<'py>(
    py: Python<'py>,
    env: &OwnedEnv,
    locals: &SavedTerm,
) -> PyResult<Bound<'py, PyDict>> {
    env.run(|env| {
        let locals = locals.load(env);
        // A binary: the map in the external term format (`pool_eval`'s big locals).
        if let Ok(etf) = locals.decode::<Binary<'_>>() {
            let resolve = |py: Python<'_>, bytes: &[u8]| handle_of(py, env, bytes);
            return ext::etf_kwargs_to_py(py, etf.as_slice(), &resolve, &options())
                .map_err(PyErr::from);
        }
        let reader = NifReader::new(env);
        convert::kwargs_to_py(py, &reader, locals, &options()).map_err(PyErr::from)
    })
}

/// Runs `f` on the bytes of the saved binary `code`.
pub fn with_code<T>(
    env: &OwnedEnv,
    code: &SavedTerm,
    f: impl FnOnce(&[u8]) -> PyResult<T>,
) -> PyResult<T> {
    env.run(|env| f(binary(env, code, "code must be a binary")?.as_slice()))
}

/// Runs `f` on the bytes of the saved binaries `module` and `function` (a call's target).
pub fn with_names<T>(
    env: &OwnedEnv,
    module: &SavedTerm,
    function: &SavedTerm,
    f: impl FnOnce(&[u8], &[u8]) -> PyResult<T>,
) -> PyResult<T> {
    env.run(|env| {
        let what = "module and function must be binaries";
        let (module, function) = (binary(env, module, what)?, binary(env, function, what)?);
        f(module.as_slice(), function.as_slice())
    })
}

/// The saved term `term` as a binary (checked when the request was made; `what` says why it
/// could still fail).
fn binary<'a>(env: Env<'a>, term: &SavedTerm, what: &'static str) -> PyResult<Binary<'a>> {
    term.load(env)
        .decode::<Binary>()
        .map_err(|_| PyTypeError::new_err(what))
}
