//! `py_nif`: CPython embedded in the BEAM.
//!
//! Loading the library only promotes libpython to global symbol scope; `interp_init/1` starts
//! the interpreter (once per OS process) and `pool_new/1` starts executor threads. See
//! `docs/architecture.md` for the life of a call and `../shared/design.md` for the invariants.

mod aio;
mod atoms;
mod callback;
mod diag;
mod executor;
mod interp;
mod log;
mod native;
mod nifs;
mod outbox;
mod setup;
mod term;
mod trace;

fn load(_env: rustler::Env, _info: rustler::Term) -> bool {
    // A failure here surfaces later, as import errors of C extension modules.
    diag::install();
    interp::promote_libpython();
    quiet_panics_on_our_threads();
    true
}

/// A panic on an executor becomes `{error, {internal, Msg}}` for the caller; printing it on
/// the BEAM's stderr as well would be noise (a NIF does not print). Other threads of the OS
/// process (other NIFs' included) keep the previous hook.
fn quiet_panics_on_our_threads() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let ours = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("py-executor-") || n == "python-main");
        if !ours {
            previous(info);
        }
    }));
}

rustler::init!("py_nif", load = load);
