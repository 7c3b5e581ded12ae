//! `context_*`: executors checked out of a pool for one process (`py:bind/0,1`). Normal
//! schedulers; each call is a few atomic operations.

use rustler::{Encoder, Env, NifResult, ResourceArc, Term};

use crate::atoms;
use crate::executor::{Context, Pool};

/// Checks an executor out of `pool` for the calling process, which the context monitors.
#[rustler::nif]
fn context_bind(env: Env<'_>, pool: ResourceArc<Pool>) -> NifResult<Term<'_>> {
    Ok(match pool.bind() {
        Ok(context) => {
            let resource = ResourceArc::new(context);
            let _ = resource.monitor(Some(env), &env.pid());
            (atoms::ok(), resource).encode(env)
        }
        Err(err) => err.encode(env),
    })
}

/// Gives the context's executor back to its pool (idempotent).
#[rustler::nif]
fn context_unbind(context: ResourceArc<Context>) -> rustler::Atom {
    context.release();
    atoms::ok()
}

/// Whether the context still has its executor.
#[rustler::nif]
fn context_is_bound(context: ResourceArc<Context>) -> bool {
    context.is_bound()
}
