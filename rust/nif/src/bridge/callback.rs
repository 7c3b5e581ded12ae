//! The terms of `erlang.call` and `erlang.async_call`: the request message built from the
//! Python arguments, and the Erlang function's result read back as a Python value or an
//! `erlang.ErlangError`; those of `erlang.send` and of mailboxes.

use erlang_python_core::callback::erlang_error;
use erlang_python_core::convert::{self, TermBuilder, TermReader, View};
use erlang_python_core::ext::StreamBuilder;
use erlang_python_core::Error as ConvertError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rustler::env::SavedTerm;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use super::reply::{HASH_KEY_BUDGET, LOOK_BUDGET};
use super::term::{options, NifBuilder, NifReader, ResourceRefs, FLAT_MAP_LIMIT};
use crate::atoms;

/// Converts the arguments and saves `{Head..., Name, Args}` in `owned`: `Args` is the list of
/// the converted arguments, or, when they hold a map of more than 32 keys, `{etf, Bytes,
/// Handles}`: the list in the external term format, written in one pass, which
/// `py_callback:execute/2` decodes before it calls the function (`Handles`: the resources of
/// opaque handles among them, kept alive until then, as for replies: `bridge::reply`).
///
/// Why: the executor could only build such maps one insert at a time in `owned` (a
/// process-independent env), each insert leaving a copy of the map's path in a heap fragment
/// of its own, which the receiving process walks on a normal scheduler; writing the bytes and
/// decoding them costs less (docs/type-conversion.md, "Big maps in results"). Like replies,
/// the arguments are built as terms unless a short look (`convert::shows_big_dict`) sees a big
/// dict, and go as bytes when the build meets one.
pub fn save_request(
    owned: &OwnedEnv,
    head: impl for<'a> Fn(Env<'a>) -> Vec<Term<'a>>,
    name: &str,
    args: &Bound<'_, PyTuple>,
) -> PyResult<SavedTerm> {
    let items: Vec<Bound<'_, PyAny>> = args.iter().collect();
    if !convert::shows_big_dict(&items, FLAT_MAP_LIMIT, LOOK_BUDGET) {
        match owned.run(|env| request_term(env, Some(0), &head, name, args).map(|t| owned.save(t)))
        {
            Err(Refused::BigMap) => {}
            other => return other.map_err(PyErr::from),
        }
    }
    let streamed = owned
        .run(|env| etf_args(env, &items).map(|term| owned.save(request(env, &head, name, term))));
    match streamed {
        Ok(saved) => Ok(saved),
        Err(
            err @ (ConvertError::Python(_) | ConvertError::TooDeep(_) | ConvertError::DuplicateKey),
        ) => Err(err.into()),
        // A term the stream cannot write (a binary of 4 GiB or more): built in a scratch env
        // and copied, so that the garbage of the map inserts stays out of the message.
        Err(_) => OwnedEnv::new().run(|env| {
            request_term(env, None, &head, name, args)
                .map(|term| owned.save(term))
                .map_err(PyErr::from)
        }),
    }
}

/// `{etf, Bytes, Handles}` for the arguments `items` (see [`save_request`]).
fn etf_args<'a>(env: Env<'a>, items: &[Bound<'_, PyAny>]) -> Result<Term<'a>, ConvertError> {
    let Some(first) = items.first() else {
        return Ok(Vec::<Term<'a>>::new().encode(env));
    };
    let handles = ResourceRefs::new(env);
    let mut stream = StreamBuilder::new(first.py(), &handles);
    stream.open();
    let terms = items
        .iter()
        .map(|item| convert::from_py(&mut stream, item, &options()))
        .collect::<Result<Vec<_>, _>>()?;
    let root = stream.list(terms);
    let bytes = stream.finish(root)?;
    let mut b = NifBuilder::new(env);
    let bin = b.binary(&bytes);
    Ok(make_tuple(
        env,
        &[
            atoms::etf().encode(env),
            b.term(bin),
            handles.kept().encode(env),
        ],
    ))
}

/// Why building in the message's own env stopped.
enum Refused {
    /// The builder refused a map (only with a budget).
    BigMap,
    /// The conversion failed.
    Error(PyErr),
}

impl From<Refused> for PyErr {
    fn from(refused: Refused) -> PyErr {
        match refused {
            Refused::Error(err) => err,
            // Only a builder with a budget refuses a map, and the second attempt has none.
            Refused::BigMap => {
                pyo3::exceptions::PyRuntimeError::new_err("map refused without a budget")
            }
        }
    }
}

/// The term of one conversion in `env`, or why there is none.
fn converted<'a>(
    builder: &mut NifBuilder<'a>,
    value: &Bound<'_, PyAny>,
) -> Result<Term<'a>, Refused> {
    match convert::from_py(builder, value, &options()) {
        Ok(raw) => Ok(builder.term(raw)),
        Err(_) if builder.refused_map() => Err(Refused::BigMap),
        Err(err) => Err(Refused::Error(err.into())),
    }
}

fn builder(env: Env<'_>, budget: Option<usize>) -> NifBuilder<'_> {
    match budget {
        Some(budget) => NifBuilder::with_hash_key_budget(env, budget),
        None => NifBuilder::new(env),
    }
}

fn request_term<'a>(
    env: Env<'a>,
    budget: Option<usize>,
    head: &impl for<'b> Fn(Env<'b>) -> Vec<Term<'b>>,
    name: &str,
    args: &Bound<'_, PyTuple>,
) -> Result<Term<'a>, Refused> {
    let mut builder = builder(env, budget);
    let mut items = Vec::with_capacity(args.len());
    for arg in args.iter() {
        items.push(converted(&mut builder, &arg)?);
    }
    Ok(request(env, head, name, items.encode(env)))
}

/// `{Head..., Name, Args}`.
fn request<'a>(
    env: Env<'a>,
    head: &impl for<'b> Fn(Env<'b>) -> Vec<Term<'b>>,
    name: &str,
    args: Term<'a>,
) -> Term<'a> {
    let mut parts = head(env);
    parts.push(name.encode(env));
    parts.push(args);
    make_tuple(env, &parts)
}

/// Converts `erlang.send`'s pid and message and saves, in `owned`, the message alone when the
/// pid is a local process (returned too), else `{Pid, Message}` for the router. Values whose
/// maps of more than 32 keys hold more than [`HASH_KEY_BUDGET`] keys are built in a scratch env
/// and copied into `owned`, so that what building them leaves behind stays out of the message
/// (such maps are made one insert at a time, each leaving a copy of the map's path in a heap
/// fragment of its own, which the receiving process walks on a normal scheduler: 13 ms for a
/// 100k-key dict). Unlike callback requests they cannot go as bytes: the receiver is any
/// process, which cannot be asked to decode them, and `enif_binary_to_term` builds such maps as
/// `enif_make_map_from_arrays` does, which is not safe off a scheduler thread.
pub fn save_message(
    owned: &OwnedEnv,
    pid: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
) -> PyResult<(Option<LocalPid>, SavedTerm)> {
    let attempt = |budget: Option<usize>| {
        move |env: Env<'_>| -> Result<(Option<LocalPid>, SavedTerm), Refused> {
            let mut builder = builder(env, budget);
            let to = converted(&mut builder, pid)?;
            let body = converted(&mut builder, message)?;
            Ok(match to.decode::<LocalPid>() {
                Ok(local) => (Some(local), owned.save(body)),
                Err(_) => (None, owned.save(make_tuple(env, &[to, body]))),
            })
        }
    };
    match owned.run(attempt(Some(HASH_KEY_BUDGET))) {
        Err(Refused::BigMap) => OwnedEnv::new().run(attempt(None)).map_err(PyErr::from),
        other => other.map_err(PyErr::from),
    }
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
