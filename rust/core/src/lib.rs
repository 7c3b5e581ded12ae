//! `erlang-python-core`: everything that is the same inside and outside the BEAM.
//!
//! Modules, bottom up (each uses only modules above it in this list):
//!
//! - [`etf`]: Erlang's external term format on plain bytes, with no Python: the one reader,
//!   writer, bignum codec, pid/reference codec and term printer, with its own error type.
//! - [`error`]: the crate's error type and its one mapping to Python exceptions.
//! - [`types`]: the `erlang.Pid` and `erlang.Ref` Python classes (their bytes are ETF).
//! - [`convert`]: the conversion rules between Erlang terms and Python objects, generic over a
//!   small reader/builder pair ([`convert::TermReader`], [`convert::TermBuilder`]) so that the
//!   NIF builds rustler terms directly and the mocked BEAM builds its own representation.
//! - [`ext`]: the rules on ETF bytes, a reader/builder pair over [`etf`]
//!   (`erlang.term_to_binary`, `erlang.binary_to_term`, and the mocked BEAM's terms).
//! - [`meta`]: log metadata and span attributes as terms (objects with no term as `repr()`).
//! - [`trace`]: `erlang._native._span`, the tracing flag, the span map and the
//!   [`trace::TraceSink`] trait.
//! - [`log`]: `erlang._native._log`, its native level threshold and the [`log::LogSink`] trait.
//! - [`callback`]: `erlang.call`, `erlang.Function`, `erlang.ErlangError` and the
//!   [`callback::Backend`] trait through which they reach the BEAM (real or mocked).
//! - [`asgi`]: `erlang._native._asgi_scope`, an HTTP server's ASGI scope read straight from
//!   the external term format.
//! - [`native`]: the body of the `erlang._native` Python module.
//!
//! This crate never links the BEAM. Every function that touches Python takes `Python<'py>` or a
//! `Bound<'py, _>`, so it runs on whatever thread holds the GIL (an executor thread inside the
//! BEAM, the caller's thread in plain Python).

pub mod asgi;
pub mod callback;
pub mod convert;
pub mod error;
pub mod etf;
pub mod ext;
pub mod log;
pub mod meta;
pub mod native;
pub mod text;
pub mod trace;
pub mod types;

pub use error::Error;
