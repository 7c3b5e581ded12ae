//! What loading `py_nif.so` does (on the scheduler that loads it): route the crate's
//! diagnostics, promote libpython's symbols to global scope, and keep panics on our own
//! threads off the BEAM's stderr. It does not start Python (`interp_init/1` does).

use crate::{diag, interp};

/// The NIF library's load callback.
pub fn load(_env: rustler::Env, _info: rustler::Term) -> bool {
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
