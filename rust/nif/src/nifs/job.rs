//! `job_*`: the caller gives up on a job (timeout), or hands its callbacks to another process;
//! see `executor::job` for the protocol. Normal schedulers, a few atomic operations. And
//! `job_decode_reply`, on a dirty CPU scheduler: a reply that came in the external term format.

use rustler::{Binary, Env, Error, NifResult, ResourceArc, Term};

use crate::atoms;
use crate::executor::{CancelOutcome, JobResource};

#[rustler::nif]
fn job_cancel(job: ResourceArc<JobResource>) -> rustler::Atom {
    match job.cancel() {
        CancelOutcome::Cancelled => atoms::cancelled(),
        CancelOutcome::Replied => atoms::replied(),
    }
}

/// Sends the job's later callback requests to `Pid` (the process running its callback
/// functions) instead of the caller.
#[rustler::nif]
fn job_route_callbacks(job: ResourceArc<JobResource>, pid: rustler::LocalPid) -> rustler::Atom {
    job.inner().route_callbacks(pid);
    atoms::ok()
}

/// The term of a reply that came as external-term-format bytes (`{ok_etf, Bytes}`,
/// `{done_etf, Bytes}`; docs/type-conversion.md, "What conversion costs"), decoded in the
/// caller's own env. It runs on a dirty CPU scheduler: `binary_to_term/1` builds a map of more
/// than 32 keys in one step, which held a normal scheduler 10-20 ms for 100k keys on OTP 25,
/// and `enif_binary_to_term` is not safe for such maps off a scheduler thread (an executor's).
/// Only atoms that already exist are accepted (`binary_to_term(Bytes, [safe])`); anything but
/// one whole term is `badarg`.
#[rustler::nif(schedule = "DirtyCpu")]
fn job_decode_reply<'a>(env: Env<'a>, bytes: Binary<'a>) -> NifResult<Term<'a>> {
    match env.binary_to_term(bytes.as_slice()) {
        Some((term, read)) if read == bytes.len() => Ok(term),
        _ => Err(Error::BadArg),
    }
}
