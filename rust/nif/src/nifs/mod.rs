//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `job`,
//! `callback`.

pub mod callback;
pub mod interp;
pub mod job;
pub mod pool;
