//! How a job ended, and the `{Ref, Reply}` message that tells its caller: `{ok, Value}`,
//! `{ok, Items} | {done, Items}` for stream batches (`{ok_etf | done_etf, Bytes}` or
//! `{ok_etf | done_etf, Bytes, Handles}` when they hold maps of more than 32 keys: [`converted`]),
//! `ok`, `{error, {Type, Msg}, Traceback}` (docs/errors.md), `{error, {internal, Msg}}` or
//! `{error, stopped}`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use erlang_python_core::callback::ErlangError;
use erlang_python_core::convert::{self, TermBuilder};
use erlang_python_core::ext::StreamBuilder;
use erlang_python_core::native::Interrupted;
use erlang_python_core::text::elide;
use erlang_python_core::Error as ConvertError;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyString, PyType};
use rustler::env::SavedTerm;
use rustler::types::tuple::make_tuple;
use rustler::{Atom, Encoder, Env, LocalPid, OwnedEnv, Term};

use super::term::{options, NifBuilder, ResourceRefs, FLAT_MAP_LIMIT};
use crate::atoms;

/// How a job ended, before its result is turned into a term.
pub enum Outcome<'py> {
    /// A call's or an eval's result: `{ok, Value}`.
    Value(Bound<'py, PyAny>),
    /// Items taken from an iterator, and whether it is exhausted.
    Items(Vec<Bound<'py, PyAny>>, bool),
    /// Finished with nothing to return (`exec`, or a job cancelled before it ran): `ok`.
    Done,
    /// The Python code raised.
    Raised(PyErr),
    /// The job panicked (a bug of ours); the executor goes on.
    Panicked(String),
    /// The pool stopped before or while the job ran.
    Stopped,
}

/// Sends `{Ref, Reply}` for `outcome` to `caller` from `env` (which owns `reference`, the
/// caller's `Ref`); false when the caller is gone.
pub fn send(
    py: Python<'_>,
    env: &mut OwnedEnv,
    caller: &LocalPid,
    reference: &SavedTerm,
    outcome: Outcome<'_>,
) -> bool {
    env.send_and_clear(caller, |env| {
        let body = catch_unwind(AssertUnwindSafe(|| body(py, env, outcome)))
            .unwrap_or_else(|panic| internal_error(env, &panic_message(&panic)));
        make_tuple(env, &[reference.load(env), body])
    })
    .is_ok()
}

fn body<'a>(py: Python<'_>, env: Env<'a>, outcome: Outcome<'_>) -> Term<'a> {
    let b = NifBuilder::new(env);
    match outcome {
        Outcome::Value(value) => converted(py, env, Reply::Value(&value)),
        Outcome::Items(items, done) => converted(py, env, Reply::Items(&items, done)),
        Outcome::Done => atoms::ok().encode(env),
        Outcome::Raised(err) => python_error(py, env, err),
        Outcome::Panicked(msg) => internal_error(env, &msg),
        Outcome::Stopped => b.pair(atoms::error(), atoms::stopped()),
    }
}

/// The keys of hash maps (maps of more than 32 keys) a message of `erlang.send`
/// (`bridge::callback::save_message`) may hold and still be built as terms in the message's
/// env (see [`NifBuilder::with_hash_key_budget`] for why there is a bound).
pub const HASH_KEY_BUDGET: usize = 4096;

/// The most elements [`Reply::shows_big_map`] looks at: well under a microsecond. A hash map
/// it does not see is found by the direct build, which then gives up for the external format
/// (the value is converted twice).
pub const LOOK_BUDGET: usize = 256;

/// What converts to the reply's value.
#[derive(Clone, Copy)]
enum Reply<'r, 'py> {
    /// A call's or an eval's result: `{ok, Value}`.
    Value(&'r Bound<'py, PyAny>),
    /// A stream's batch: `{ok, Items}`, or `{done, Items}` when `done`.
    Items(&'r [Bound<'py, PyAny>], bool),
}

impl<'py> Reply<'_, 'py> {
    /// The value's term, by the rules of `convert` (a generator at the top of a result is
    /// `{generator, Handle}`).
    fn convert<B: TermBuilder>(self, b: &mut B) -> Result<B::Term, ConvertError> {
        let opts = options();
        match self {
            Reply::Value(value) => convert::result_from_py(b, value, &opts),
            Reply::Items(items, _) => {
                b.open();
                let terms = items
                    .iter()
                    .map(|item| convert::from_py(b, item, &opts))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(b.list(terms))
            }
        }
    }

    /// Whether a short look at the value ([`convert::shows_big_dict`]: the value and its
    /// elements, at most [`LOOK_BUDGET`] of them) finds a dict the rules make a hash map of.
    fn shows_big_map(self) -> bool {
        let values = match self {
            Reply::Value(value) => std::slice::from_ref(value),
            Reply::Items(items, _) => items,
        };
        convert::shows_big_dict(values, FLAT_MAP_LIMIT, LOOK_BUDGET)
    }

    /// `ok`, or `done` for the last batch.
    fn tag(self) -> Atom {
        match self {
            Reply::Items(_, true) => atoms::done(),
            _ => atoms::ok(),
        }
    }

    /// `ok_etf`, or `done_etf` for the last batch.
    fn etf_tag(self) -> Atom {
        match self {
            Reply::Items(_, true) => atoms::done_etf(),
            _ => atoms::ok_etf(),
        }
    }
}

/// `{ok, Value}` (`{ok | done, Items}` for a batch), built as terms in `env`, unless the value
/// holds a hash map (a map of more than 32 keys): then `{ok_etf, Bytes}` (`{ok_etf | done_etf,
/// Bytes}`), the value in the external term format, written in one pass ([`streamed`]), which
/// the caller decodes (`py_request`: with `binary_to_term/2` when small, otherwise on a dirty
/// scheduler with `py_nif:job_decode_reply/1`). A value holding opaque handles comes as
/// `{ok_etf, Bytes, Handles}`: the bytes hold the handles' references, and `Handles` (the
/// resources themselves) keeps them alive until the caller has decoded the bytes
/// ([`ResourceRefs`]). Either way the caller gets the same term.
///
/// Why hash maps go as bytes: a process-independent env (where executors build replies) can
/// only make them one insert at a time (see [`NifBuilder::with_hash_key_budget`]), which costs
/// more than writing the bytes and decoding them (a 1000-key dict's way back: 131-193 us
/// against 268-412 at best). For other values the direct build costs about what the bytes do
/// (a 150-item document) or less (a list of 10,000 ints), so they stay terms.
///
/// Which way is found by building the terms and giving up at the first hash map (the value is
/// then converted again); a short look first ([`Reply::shows_big_map`]) sends a value whose
/// hash map it sees straight to the bytes.
fn converted<'a>(py: Python<'_>, env: Env<'a>, reply: Reply<'_, '_>) -> Term<'a> {
    // A hash map seen at once saves building the value as terms up to that map first.
    if !reply.shows_big_map() {
        let mut b = NifBuilder::with_hash_key_budget(env, 0);
        match reply.convert(&mut b) {
            Ok(term) => return b.pair(reply.tag(), b.term(term)),
            Err(err) if !b.refused_map() => return python_error(py, env, PyErr::from(err)),
            Err(_) => {}
        }
    }
    external(py, env, reply)
}

/// [`converted`] for a value holding a hash map: `{ok_etf, Bytes}` or `{ok_etf, Bytes,
/// Handles}`. Out of line, so that the direct build above (into which the rules' loops are
/// inlined) stays as small as it was.
#[inline(never)]
fn external<'a>(py: Python<'_>, env: Env<'a>, reply: Reply<'_, '_>) -> Term<'a> {
    let mut b = NifBuilder::new(env);
    let err = match streamed(py, env, reply) {
        Ok((bytes, handles)) => {
            let bin = b.binary(&bytes);
            let bin = b.term(bin);
            return if handles.is_empty() {
                b.pair(reply.etf_tag(), bin)
            } else {
                make_tuple(
                    env,
                    &[reply.etf_tag().encode(env), bin, handles.encode(env)],
                )
            };
        }
        // The rules' own errors, as the direct build gives them.
        Err(
            err @ (ConvertError::Python(_) | ConvertError::TooDeep(_) | ConvertError::DuplicateKey),
        ) => err,
        // A term the stream cannot write (a binary of 4 GiB or more): built as terms in a
        // scratch env and copied, so that the garbage of the map inserts stays behind.
        Err(_) => {
            let scratch = OwnedEnv::new();
            match scratch.run(|scratch_env| {
                let mut sb = NifBuilder::new(scratch_env);
                reply.convert(&mut sb).map(|term| sb.term(term).in_env(env))
            }) {
                Ok(term) => return b.pair(reply.tag(), term),
                Err(err) => err,
            }
        }
    };
    python_error(py, env, PyErr::from(err))
}

/// The reply's value in the external term format, written in one pass ([`StreamBuilder`]),
/// and the resources of its opaque handles, made in `env` ([`ResourceRefs`]).
fn streamed<'a>(
    py: Python<'_>,
    env: Env<'a>,
    reply: Reply<'_, '_>,
) -> Result<(Vec<u8>, Vec<Term<'a>>), ConvertError> {
    let handles = ResourceRefs::new(env);
    let mut stream = StreamBuilder::new(py, &handles);
    let root = reply.convert(&mut stream)?;
    let bytes = stream.finish(root)?;
    Ok((bytes, handles.kept()))
}

/// The text of a panic's payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

fn internal_error<'a>(env: Env<'a>, msg: &str) -> Term<'a> {
    let builder = NifBuilder::new(env);
    builder.pair(atoms::error(), builder.pair(atoms::internal(), msg))
}

/// `{error, {Type, Msg}, Traceback}` for a Python exception (see docs/errors.md).
fn python_error<'a>(py: Python<'_>, env: Env<'a>, err: PyErr) -> Term<'a> {
    let builder = NifBuilder::new(env);
    let traceback = elide(format_traceback(py, &err), TRACEBACK_CAP);
    let reason = if err.is_instance_of::<PyStopIteration>(py) {
        builder.pair(atoms::stop_iteration(), atoms::none())
    } else {
        let ty = err.get_type(py);
        // Lossy: a class name may hold lone surrogates, which UTF-8 cannot encode.
        let name = ty
            .name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "Exception".to_owned());
        let message = err
            .value(py)
            .str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "<str() of the exception failed>".to_owned());
        let message = elide(message, MESSAGE_CAP);
        make_tuple(env, &[type_term(py, env, &ty, &name), message.encode(env)])
    };
    make_tuple(
        env,
        &[atoms::error().encode(env), reason, traceback.encode(env)],
    )
}

/// The most bytes of an exception's message that reach Erlang (docs/errors.md, "Size caps").
pub const MESSAGE_CAP: usize = 16 * 1024;
/// The most bytes of a formatted traceback that reach Erlang (docs/errors.md, "Size caps").
pub const TRACEBACK_CAP: usize = 64 * 1024;

static BUILTINS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception's type as an atom when its name is one of a fixed set (the real builtin
/// exception classes and this package's own), or when the atom already exists; otherwise a
/// binary. Any class can claim `__module__ = "builtins"`, so being builtin is checked by
/// identity: no atom is minted from a name Python code chose (docs/architecture.md, invariant 9).
fn type_term<'a>(py: Python<'_>, env: Env<'a>, ty: &Bound<'_, PyType>, name: &str) -> Term<'a> {
    let builtin = ty.is(py.get_type::<ErlangError>())
        || ty.is(py.get_type::<Interrupted>())
        || BUILTINS
            .get_or_try_init(py, || Ok::<_, PyErr>(py.import("builtins")?.unbind()))
            .ok()
            .and_then(|b| b.bind(py).getattr(PyString::intern(py, name)).ok())
            .is_some_and(|found| found.is(ty));
    if builtin {
        if let Ok(atom) = Atom::from_str(env, name) {
            return atom.encode(env);
        }
    } else if let Ok(atom) = Atom::existing_from_str(env, name) {
        return atom.encode(env);
    }
    name.encode(env)
}

static FORMAT_EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = FORMAT_EXCEPTION
        .import(py, "traceback", "format_exception")
        // The three-argument form: before 3.12 the exception value does not always carry its
        // `__traceback__` (pyo3 keeps the traceback beside it), so pass it explicitly.
        .and_then(|f| f.call1((err.get_type(py), err.value(py), err.traceback(py))))
        .and_then(|lines| {
            let lines = lines.cast::<PyList>().map_err(PyErr::from)?;
            let mut text = String::new();
            for line in lines.iter() {
                text.push_str(&line.cast::<PyString>()?.to_string_lossy());
            }
            Ok(text)
        });
    formatted.unwrap_or_else(|_| err.to_string())
}
