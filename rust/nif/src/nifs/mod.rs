//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `job`,
//! `callback`, `semaphore`.

pub mod callback;
pub mod interp;
pub mod job;
pub mod pool;
pub mod semaphore;
