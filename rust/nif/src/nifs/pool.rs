//! `pool_*`: start and stop executor pools and hand them jobs. Everything here runs on the
//! caller's normal scheduler and does bounded work: copy the terms, enqueue (invariant 1).

use rustler::types::map::map_new;
use rustler::{Encoder, Env, LocalPid, NifResult, ResourceArc, Term};

use crate::atoms;
use crate::executor::{new_request, Context, JobResource, Kind, Pool, SlotMessage, SubmitError};
use crate::interp;

/// The resource `pool_new/1` returns; dropping it stops the pool.
pub struct PoolResource {
    pool: Pool,
}

#[rustler::resource_impl]
impl rustler::Resource for PoolResource {}

#[rustler::nif]
fn pool_new(env: Env<'_>, executors: usize) -> NifResult<Term<'_>> {
    if executors == 0 || executors > 1024 {
        return Err(rustler::Error::BadArg);
    }
    if !interp::is_initialized() {
        return Ok((atoms::error(), atoms::not_initialized()).encode(env));
    }
    match Pool::start(executors) {
        Ok(pool) => Ok((atoms::ok(), ResourceArc::new(PoolResource { pool })).encode(env)),
        Err(e) => Ok((atoms::error(), e.to_string()).encode(env)),
    }
}

#[rustler::nif]
fn pool_stop(pool: ResourceArc<PoolResource>) -> rustler::Atom {
    pool.pool.stop();
    atoms::ok()
}

#[rustler::nif]
fn pool_stats(env: Env<'_>, pool: ResourceArc<PoolResource>) -> NifResult<Term<'_>> {
    let stats = pool.pool.stats();
    map_new(env)
        .map_put(atoms::executors(), stats.executors)?
        .map_put(atoms::queued(), stats.queued)?
        .map_put(atoms::running(), stats.running)?
        .map_put(atoms::bound(), stats.bound)
}

/// Queues a request on `target`: a pool (any free executor), a context (its executor, in its
/// namespace), or a job (the executor that runs it, which is waiting for a callback this
/// process is serving: the request nests there, in the job's namespace).
fn submit<'a>(
    env: Env<'a>,
    target: Term<'a>,
    kind: Kind,
    parts: &[Term<'a>],
) -> NifResult<Term<'a>> {
    let error = |reason: rustler::Atom| (atoms::error(), reason).encode(env);
    if let Ok(pool) = target.decode::<ResourceArc<PoolResource>>() {
        let (job, request) = new_request(env, kind, parts, None);
        return Ok(match pool.pool.submit(request) {
            Ok(()) => job.encode(env),
            Err(SubmitError::Stopped) => error(atoms::stopped()),
            Err(SubmitError::NoWorkers) => error(atoms::no_workers_available()),
        });
    }
    if let Ok(context) = target.decode::<ResourceArc<ContextResource>>() {
        let mut job = None;
        let sent = context.context.submit_with(|namespace| {
            let (j, request) = new_request(env, kind, parts, namespace);
            job = Some(j);
            request
        });
        return Ok(match job {
            Some(job) if sent => job.encode(env),
            Some(_) => error(atoms::stopped()),
            None => error(atoms::not_bound()),
        });
    }
    let outer = target.decode::<ResourceArc<JobResource>>()?;
    let Some(slot) = outer.inner().slot().cloned() else {
        return Err(rustler::Error::BadArg);
    };
    let (job, request) = new_request(env, kind, parts, outer.inner().namespace().cloned());
    Ok(if slot.send(SlotMessage::Run(request)) {
        job.encode(env)
    } else {
        error(atoms::stopped())
    })
}

/// A context resource (`py:bind/0,1`): an executor checked out of a pool. Released when the
/// process that made it dies, when `context_unbind/1` is called, or when it is collected.
pub struct ContextResource {
    context: Context,
}

#[rustler::resource_impl]
impl rustler::Resource for ContextResource {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: rustler::Monitor) {
        self.context.release();
    }
}

/// Checks an executor out of `pool` for the calling process.
#[rustler::nif]
fn context_bind(env: Env<'_>, pool: ResourceArc<PoolResource>) -> NifResult<Term<'_>> {
    Ok(match pool.pool.bind() {
        Ok(context) => {
            let resource = ResourceArc::new(ContextResource { context });
            let _ = resource.monitor(Some(env), &env.pid());
            (atoms::ok(), resource).encode(env)
        }
        Err(SubmitError::Stopped) => (atoms::error(), atoms::stopped()).encode(env),
        Err(SubmitError::NoWorkers) => (atoms::error(), atoms::no_workers_available()).encode(env),
    })
}

/// Gives the context's executor back to its pool (idempotent).
#[rustler::nif]
fn context_unbind(context: ResourceArc<ContextResource>) -> rustler::Atom {
    context.context.release();
    atoms::ok()
}

/// Whether the context still has its executor.
#[rustler::nif]
fn context_is_bound(context: ResourceArc<ContextResource>) -> bool {
    context.context.is_bound()
}

/// The shape `pool_call` and `pool_async` accept: binaries, a list, a map.
fn check_call(
    module: Term<'_>,
    function: Term<'_>,
    arguments: Term<'_>,
    kwargs: Term<'_>,
) -> NifResult<()> {
    if module.is_binary() && function.is_binary() && arguments.is_list() && kwargs.is_map() {
        Ok(())
    } else {
        Err(rustler::Error::BadArg)
    }
}

#[rustler::nif]
fn pool_call<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
) -> NifResult<Term<'a>> {
    check_call(module, function, arguments, kwargs)?;
    submit(
        env,
        target,
        Kind::Call,
        &[reference, module, function, arguments, kwargs],
    )
}

/// `py:async_call` and `py:async_stream`: a call whose awaitable result is finished on the
/// asyncio loop (`Stream`: an async iterable is collected there).
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn pool_async<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
    stream: bool,
) -> NifResult<Term<'a>> {
    check_call(module, function, arguments, kwargs)?;
    let stream = if stream {
        atoms::true_().encode(env)
    } else {
        atoms::false_().encode(env)
    };
    submit(
        env,
        target,
        Kind::Async,
        &[reference, module, function, arguments, kwargs, stream],
    )
}

#[rustler::nif]
fn pool_eval<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    code: Term<'a>,
    locals: Term<'a>,
) -> NifResult<Term<'a>> {
    if !code.is_binary() || !locals.is_map() {
        return Err(rustler::Error::BadArg);
    }
    submit(env, target, Kind::Eval, &[reference, code, locals])
}

#[rustler::nif]
fn pool_exec<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    code: Term<'a>,
) -> NifResult<Term<'a>> {
    if !code.is_binary() {
        return Err(rustler::Error::BadArg);
    }
    submit(env, target, Kind::Exec, &[reference, code])
}

#[rustler::nif]
fn pool_next<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    handle: Term<'a>,
    max: Term<'a>,
) -> NifResult<Term<'a>> {
    if !max.decode::<usize>().is_ok_and(|m| m > 0) {
        return Err(rustler::Error::BadArg);
    }
    submit(env, target, Kind::Next, &[reference, handle, max])
}
