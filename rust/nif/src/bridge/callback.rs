//! The terms of `erlang.call` and `erlang.async_call`: the request message built from the
//! Python arguments, and the Erlang function's result read back as a Python value or an
//! `erlang.ErlangError`; those of `erlang.send` and of mailboxes.

use erlang_python_core::callback::erlang_error;
use erlang_python_core::convert::{self, TermReader, View};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rustler::env::SavedTerm;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use super::term::{options, NifBuilder, NifReader};
use crate::atoms;

/// Converts the arguments and saves `{Head..., Name, ArgsList}` in `owned`.
pub fn save_request(
    owned: &OwnedEnv,
    head: impl for<'a> FnOnce(Env<'a>) -> Vec<Term<'a>>,
    name: &str,
    args: &Bound<'_, PyTuple>,
) -> PyResult<SavedTerm> {
    owned.run(|env| {
        let mut builder = NifBuilder::new(env);
        let opts = options();
        let mut items = Vec::with_capacity(args.len());
        for arg in args.iter() {
            items.push(convert::from_py(&mut builder, &arg, &opts).map_err(PyErr::from)?);
        }
        let mut parts = head(env);
        parts.push(name.encode(env));
        parts.push(items.encode(env));
        Ok(owned.save(make_tuple(env, &parts)))
    })
}

/// Converts `erlang.send`'s pid and message and saves, in `owned`, the message alone when the
/// pid is a local process (returned too), else `{Pid, Message}` for the router.
pub fn save_message(
    owned: &OwnedEnv,
    pid: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
) -> PyResult<(Option<LocalPid>, SavedTerm)> {
    owned.run(|env| {
        let mut builder = NifBuilder::new(env);
        let opts = options();
        let to = convert::from_py(&mut builder, pid, &opts).map_err(PyErr::from)?;
        let body = convert::from_py(&mut builder, message, &opts).map_err(PyErr::from)?;
        Ok(match to.decode::<LocalPid>() {
            Ok(local) => (Some(local), owned.save(body)),
            Err(_) => (None, owned.save(make_tuple(env, &[to, body]))),
        })
    })
}

/// Turns `{ok, V} | {error, Class, Reason, Stack} | {not_found, Name}` into a Python value or
/// an `erlang.ErlangError`.
pub fn result_to_py<'py>(
    py: Python<'py>,
    env: &OwnedEnv,
    term: &SavedTerm,
) -> PyResult<Bound<'py, PyAny>> {
    env.run(|env| {
        let reader = NifReader::new(env);
        let bad = || erlang_error(py, "error", "malformed callback reply", "");
        let View::Tuple(items) = reader.view(py, term.load(env)).map_err(PyErr::from)? else {
            return Err(bad());
        };
        let text = |t: Term<'_>| -> String {
            t.decode::<rustler::Binary>()
                .map(|b| String::from_utf8_lossy(b.as_slice()).into_owned())
                .unwrap_or_default()
        };
        match items[..] {
            [tag, value] if tag == atoms::ok().encode(env) => {
                convert::to_py(py, &reader, value, &options()).map_err(PyErr::from)
            }
            [tag, class, reason, stack] if tag == atoms::error().encode(env) => {
                Err(erlang_error(py, &text(class), &text(reason), &text(stack)))
            }
            [tag, callback] if tag == atoms::not_found().encode(env) => {
                Err(erlang_error(py, "not_found", &text(callback), ""))
            }
            _ => Err(bad()),
        }
    })
}

/// A mailbox's message (`erlang.open_mailbox()`), saved in `env`, as a Python value.
pub fn message_to_py<'py>(
    py: Python<'py>,
    env: &OwnedEnv,
    term: &SavedTerm,
) -> PyResult<Bound<'py, PyAny>> {
    env.run(|env| {
        let reader = NifReader::new(env);
        convert::to_py(py, &reader, term.load(env), &options()).map_err(PyErr::from)
    })
}

/// A local pid as an `erlang.Pid`.
pub fn pid_to_py(py: Python<'_>, pid: LocalPid) -> PyResult<Bound<'_, PyAny>> {
    OwnedEnv::new().run(|env| {
        let reader = NifReader::new(env);
        convert::to_py(py, &reader, pid.encode(env), &options()).map_err(PyErr::from)
    })
}
