//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `job`,
//! `callback`, `semaphore`, `log`, `trace`.

pub mod callback;
pub mod interp;
pub mod job;
pub mod log;
pub mod pool;
pub mod semaphore;
pub mod trace;
