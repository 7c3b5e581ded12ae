//! `trace_*`: the Erlang half of tracing (see `crate::trace`). Normal schedulers; each is a few
//! atomic operations or one short critical section.

use rustler::{Atom, Encoder, Env, NifResult, Term};

use super::OptionalPid;
use crate::atoms;
use crate::trace;

/// Sets the receiver of `{py_span, SpanMap}` messages (`undefined` clears it).
#[rustler::nif]
fn trace_set_receiver(receiver: OptionalPid) -> Atom {
    trace::OUTBOX.set_receiver(receiver.0);
    atoms::ok()
}

/// Turns span recording on (`true`) or off (`false`) for every Python thread.
#[rustler::nif]
fn trace_enable(enabled: bool) -> Atom {
    erlang_python_core::trace::set_enabled(enabled);
    log::info!("Python tracing {}", if enabled { "on" } else { "off" });
    atoms::ok()
}

/// Sets the bound on spans sent but not yet acknowledged.
#[rustler::nif]
fn trace_set_max_in_flight(max: usize) -> NifResult<Atom> {
    if max == 0 {
        return Err(rustler::Error::BadArg);
    }
    trace::OUTBOX.set_max_in_flight(max);
    Ok(atoms::ok())
}

/// The receiver handled `N` spans.
#[rustler::nif]
fn trace_ack(n: usize) -> Atom {
    trace::OUTBOX.ack(n);
    atoms::ok()
}

/// `#{enabled, dropped, in_flight, max_in_flight, parents}`.
#[rustler::nif]
fn trace_stats(env: Env<'_>) -> NifResult<Term<'_>> {
    let stats = trace::OUTBOX.stats();
    let keys = [
        atoms::enabled().encode(env),
        atoms::dropped().encode(env),
        atoms::in_flight().encode(env),
        atoms::max_in_flight().encode(env),
        atoms::parents().encode(env),
    ];
    let values = [
        erlang_python_core::trace::enabled().encode(env),
        stats.dropped.encode(env),
        stats.in_flight.encode(env),
        stats.max_in_flight.encode(env),
        trace::parent_count().encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values).map_err(|_| rustler::Error::BadArg)
}

/// Sets the trace parent `{TraceId, SpanId}` of the calling process's requests (`undefined`
/// clears it); returns the previous one, or `undefined`.
#[rustler::nif]
fn trace_parent_swap<'a>(env: Env<'a>, parent: Term<'a>) -> NifResult<Term<'a>> {
    swap(env, env.pid(), parent)
}

/// `trace_parent_swap/1` for the requests of process `Pid` (a harness serving another
/// process's callbacks sets that process's parent).
#[rustler::nif(name = "trace_parent_swap")]
fn trace_parent_swap_of<'a>(
    env: Env<'a>,
    pid: rustler::LocalPid,
    parent: Term<'a>,
) -> NifResult<Term<'a>> {
    swap(env, pid, parent)
}

fn swap<'a>(env: Env<'a>, pid: rustler::LocalPid, parent: Term<'a>) -> NifResult<Term<'a>> {
    let parent = if atoms::undefined() == parent {
        None
    } else {
        Some(parent.decode::<(u128, u64)>()?)
    };
    Ok(match trace::swap_parent(env, pid, parent) {
        Some(previous) => previous.encode(env),
        None => atoms::undefined().encode(env),
    })
}

/// Gives the calling process the trace parent of `From`, if it has one (the process running a
/// callback function inherits its caller's).
#[rustler::nif]
fn trace_parent_inherit(env: Env<'_>, from: rustler::LocalPid) -> Atom {
    trace::inherit_parent(env, from);
    atoms::ok()
}
