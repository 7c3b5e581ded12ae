//! The pool of own-GIL sub-interpreters (PEP 684) behind `py:parallel/1` and the `subinterp`
//! pool option (docs/parallelism.md). Built on CPython 3.12 and later with the GIL; on 3.11
//! and on free-threaded builds [`SUPPORTED`] is false and no pool can be started.
//!
//! Each worker is one OS thread that owns one sub-interpreter for its whole life (created
//! there, ended there), plus one interrupter thread holding a second thread state of the same
//! interpreter, used only to raise `erlang.Interrupted` in the worker when its caller gives up.
//! Requests reuse the executors' job state machine (`executor::job`), so timeouts and dead
//! callers behave as for the main pool (docs/architecture.md, invariant 5). Arguments and
//! results cross as external-term-format bytes (`ffi`, the only `unsafe` here).

/// Whether this build can run own-GIL sub-interpreters.
pub const SUPPORTED: bool = cfg!(all(Py_3_12, not(Py_GIL_DISABLED)));

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
mod ffi;
#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
mod pool;

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
pub use pool::{SubPool, Task, TaskWork};

/// On builds without own-GIL sub-interpreters the resource type still exists (the NIF
/// registers it), but no value of it is ever made.
#[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
pub struct SubPool {
    _never: std::convert::Infallible,
}

#[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
#[rustler::resource_impl]
impl rustler::Resource for SubPool {}
