//! `log_*`: the Erlang half of Python logging (see `crate::log`). Normal schedulers; each is a
//! few atomic operations.

use rustler::{Encoder, Env, NifResult, Term};

use super::OptionalPid;
use crate::atoms;
use crate::log;

/// Sets the receiver of `{py_log, ...}` messages (`undefined` clears it) and the threshold.
#[rustler::nif]
fn log_set_receiver(receiver: OptionalPid, level: i32) -> rustler::Atom {
    log::OUTBOX.set_receiver(receiver.0);
    erlang_python_core::log::set_threshold(level);
    atoms::ok()
}

/// Sets the receiver of `{py_nif_log, Level, Target, Message}` diagnostics (`undefined`
/// clears it) and the most verbose level sent (`debug`, `info`, `warning`, `error`, or `none`).
#[rustler::nif]
fn log_set_diagnostics(receiver: OptionalPid, level: rustler::Atom) -> NifResult<rustler::Atom> {
    let filter = if level == atoms::debug() {
        ::log::LevelFilter::Debug
    } else if level == atoms::info() {
        ::log::LevelFilter::Info
    } else if level == atoms::warning() {
        ::log::LevelFilter::Warn
    } else if level == atoms::error() {
        ::log::LevelFilter::Error
    } else if level == atoms::none() {
        ::log::LevelFilter::Off
    } else {
        return Err(rustler::Error::BadArg);
    };
    crate::diag::set_receiver(receiver.0, filter);
    Ok(atoms::ok())
}

/// Sets the native threshold (Python level numbers: records below it are dropped).
#[rustler::nif]
fn log_set_threshold(level: i32) -> rustler::Atom {
    erlang_python_core::log::set_threshold(level);
    atoms::ok()
}

/// Sets the bound on records sent but not yet acknowledged.
#[rustler::nif]
fn log_set_max_in_flight(max: usize) -> NifResult<rustler::Atom> {
    if max == 0 {
        return Err(rustler::Error::BadArg);
    }
    log::OUTBOX.set_max_in_flight(max);
    Ok(atoms::ok())
}

/// The receiver handled `N` records.
#[rustler::nif]
fn log_ack(n: usize) -> rustler::Atom {
    log::OUTBOX.ack(n);
    atoms::ok()
}

/// `#{dropped, in_flight, max_in_flight, threshold}`.
#[rustler::nif]
fn log_stats(env: Env<'_>) -> NifResult<Term<'_>> {
    let stats = log::OUTBOX.stats();
    let keys = [
        atoms::dropped().encode(env),
        atoms::in_flight().encode(env),
        atoms::max_in_flight().encode(env),
        atoms::threshold().encode(env),
        atoms::diagnostics_dropped().encode(env),
    ];
    let values = [
        stats.dropped.encode(env),
        stats.in_flight.encode(env),
        stats.max_in_flight.encode(env),
        erlang_python_core::log::threshold().encode(env),
        crate::diag::dropped().encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values).map_err(|_| rustler::Error::BadArg)
}
