//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `job`.

pub mod interp;
pub mod job;
pub mod pool;
