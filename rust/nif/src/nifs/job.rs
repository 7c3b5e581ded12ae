//! `job_cancel/1`: the caller gives up on a job (timeout); see `executor` for the protocol.

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
