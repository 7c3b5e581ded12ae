//! The one module that converts between rustler terms and pyo3 objects: core's conversion
//! rules applied to rustler terms ([`term`]), and every message or argument that crosses
//! between Erlang and Python built or read with them: request arguments ([`request`]), job
//! replies and Python errors ([`reply`]), callback requests and replies ([`callback`]), log
//! records and spans ([`record`]). Outside this module no function takes both a `Term` (or
//! `Env`) and a `Bound`.
//!
//! Runs on whatever thread holds the GIL (executors, `python-main`, the asyncio loop thread,
//! `py-async-done`), always inside an owned env.

pub mod callback;
pub mod record;
pub mod reply;
pub mod request;
mod term;

pub use reply::Outcome;
#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
pub use term::options;
pub use term::{set_max_depth, term_word, PyObjectResource};
