//! `interp_init/1` (dirty IO: starts Python once) and `interp_info/0` (no GIL needed).

use erlang_python_core::convert::DEFAULT_MAX_DEPTH;
use rustler::types::map::map_new;
use rustler::{Atom, Encoder, Env, NifResult, Term};

use crate::atoms;
use crate::bridge::set_max_depth;
use crate::interp::{self, Startup};
use crate::{native, setup};

fn opt<'a>(opts: Term<'a>, key: Atom) -> Option<Term<'a>> {
    opts.map_get(key).ok()
}

#[rustler::nif(schedule = "DirtyIo")]
fn interp_init<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    if !opts.is_map() {
        return Err(rustler::Error::BadArg);
    }
    let executable = match opt(opts, atoms::executable()) {
        Some(t) if t.is_binary() => {
            Some(String::from_utf8_lossy(t.decode::<rustler::Binary>()?.as_slice()).into_owned())
        }
        Some(t) if t == atoms::undefined().encode(env) => None,
        None => None,
        Some(_) => return Err(rustler::Error::BadArg),
    };
    let sys_path = match opt(opts, atoms::sys_path()) {
        Some(t) => t
            .decode::<Vec<rustler::Binary>>()?
            .iter()
            .map(|b| String::from_utf8_lossy(b.as_slice()).into_owned())
            .collect(),
        None => Vec::new(),
    };
    if let Some(t) = opt(opts, atoms::malloc_pad()) {
        let bytes: usize = t.decode()?;
        if bytes > 0 && !interp::tune_malloc(bytes) {
            return Err(rustler::Error::BadArg);
        }
    }
    // Every start sets the bound: an unset `max_depth` means the default again, not what an
    // earlier start in the same VM set.
    let depth = match opt(opts, atoms::max_depth()) {
        Some(t) => t.decode::<usize>()?,
        None => DEFAULT_MAX_DEPTH,
    };
    if depth == 0 {
        return Err(rustler::Error::BadArg);
    }
    set_max_depth(depth);
    let startup = Startup {
        executable,
        builtins: vec![(c"erlang._native", native::_native::__pyo3_init)],
        after_init: Box::new(move |py| setup::after_init(py, &sys_path)),
    };
    Ok(match interp::initialize(startup) {
        Ok(()) => atoms::ok().encode(env),
        Err(err) => err.encode(env),
    })
}

#[rustler::nif]
fn interp_info(env: Env<'_>) -> NifResult<Term<'_>> {
    let mode = if interp::FREE_THREADED {
        atoms::free_threaded()
    } else {
        atoms::multi_executor()
    };
    // What the library was built for (scripts/build_nif.sh): the interpreter it starts when none
    // is configured, and its version, which any configured one must have.
    let built_for = map_new(env)
        .map_put(atoms::version(), env!("EP_PY_VERSION"))?
        .map_put(atoms::executable(), env!("EP_DEFAULT_EXECUTABLE"))?;
    map_new(env)
        .map_put(atoms::execution_mode(), mode)?
        .map_put(atoms::subinterp_supported(), crate::subinterp::SUPPORTED)?
        .map_put(atoms::python_version(), interp::version())?
        .map_put(atoms::initialized(), interp::is_initialized())?
        .map_put(atoms::built_for(), built_for)
}

/// Whether Python calls that would end the OS process (the node) are let through (`true`) or
/// refused with `erlang.ProcessExitRefusedError` (`false`, the default).
#[rustler::nif]
fn interp_allow_process_exit(allow: bool) -> Atom {
    native::set_refuse_process_exit(!allow);
    atoms::ok()
}
