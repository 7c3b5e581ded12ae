//! The crate's one error type, turned into `{error, Reason}` for Erlang in exactly one place
//! (its [`Encoder`]). Any thread.

use rustler::{Encoder, Env, Term};

use crate::atoms;

/// Why a NIF could not do what it was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The pool (or the executor a request must run on) is stopped.
    #[error("the pool is stopped")]
    Stopped,
    /// Every executor is checked out by a context.
    #[error("every executor is bound to a context")]
    NoWorkers,
    /// The context was released.
    #[error("the context is no longer bound")]
    NotBound,
    /// `interp_init/1` has not succeeded yet.
    #[error("the interpreter is not initialised")]
    NotInitialized,
    /// The OS refused a thread.
    #[error("cannot start a thread: {0}")]
    Thread(String),
    /// The interpreter could not start (the first `interp_init/1` failed).
    #[error("{0}")]
    Start(String),
}

impl Encoder for Error {
    /// `{error, Reason}`: an atom for the conditions callers match on, a binary for the rest.
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let reason = match self {
            Error::Stopped => atoms::stopped().encode(env),
            Error::NoWorkers => atoms::no_workers_available().encode(env),
            Error::NotBound => atoms::not_bound().encode(env),
            Error::NotInitialized => atoms::not_initialized().encode(env),
            Error::Thread(_) | Error::Start(_) => self.to_string().encode(env),
        };
        (atoms::error(), reason).encode(env)
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Thread(err.to_string())
    }
}
