//! `py_nif`: CPython embedded in the BEAM.
//!
//! Loading the library only promotes libpython to global symbol scope; `interp_init/1` starts
//! the interpreter (once per OS process) and `pool_new/1` starts executor threads. See
//! `docs/architecture.md` for the life of a call and `../shared/design.md` for the invariants.

mod atoms;
mod callback;
mod executor;
mod interp;
mod native;
mod nifs;
mod setup;
mod term;

fn load(_env: rustler::Env, _info: rustler::Term) -> bool {
    // A failure here surfaces later, as import errors of C extension modules.
    interp::promote_libpython();
    true
}

rustler::init!("py_nif", load = load);
