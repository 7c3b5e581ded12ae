//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `context`,
//! `job`, `callback`, `semaphore`, `log`, `trace`. Each runs on the scheduler named in its
//! module's doc, decodes and checks its arguments, and hands typed values to the modules below.

pub mod callback;
pub mod context;
pub mod interp;
pub mod job;
pub mod log;
pub mod pool;
pub mod semaphore;
pub mod trace;

use rustler::{Decoder, LocalPid, NifResult, Term};

use crate::atoms;

/// A process or `undefined` (which clears a receiver).
pub struct OptionalPid(pub Option<LocalPid>);

impl<'a> Decoder<'a> for OptionalPid {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if atoms::undefined() == term {
            Ok(OptionalPid(None))
        } else {
            Ok(OptionalPid(Some(term.decode()?)))
        }
    }
}
