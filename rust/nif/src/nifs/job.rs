//! `job_*`: the caller gives up on a job (timeout), or hands its callbacks to another process;
//! see `executor::job` for the protocol. Normal schedulers, a few atomic operations.

use rustler::ResourceArc;

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
