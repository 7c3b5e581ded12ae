//! `pool_*`: start and stop executor pools and hand them requests. Everything here runs on the
//! caller's normal scheduler and does bounded work: check the arguments, copy the terms into
//! an owned env, enqueue (docs/architecture.md, invariant 1). A request is decoded and checked
//! here, once; executors receive a typed [`Request`].

use rustler::env::SavedTerm;
use rustler::types::map::map_new;
use rustler::{Binary, Encoder, Env, NifResult, OwnedEnv, ResourceArc, Term};

use super::encode::{binary_term, encode_within, Encoded};
use super::{copy_cost, copy_cost_within, etf_clean, etf_suits, small_enough, COPY_BUDGET};
use crate::atoms;
use crate::bridge::PyObjectResource;
use crate::callback::inbox::{submit_to_loop, LoopStart};
use crate::error::Error;
use crate::executor::fair;
use crate::executor::{aio, Body, Context, JobResource, Pool, Request, Target};
use crate::interp;

#[rustler::nif]
fn pool_new(env: Env<'_>, executors: usize) -> NifResult<Term<'_>> {
    if executors == 0 || executors > 1024 {
        return Err(rustler::Error::BadArg);
    }
    if !interp::is_initialized() {
        return Ok(Error::NotInitialized.encode(env));
    }
    Ok(match Pool::start(executors) {
        Ok(pool) => (atoms::ok(), ResourceArc::new(pool)).encode(env),
        Err(err) => err.encode(env),
    })
}

#[rustler::nif]
fn pool_stop(pool: ResourceArc<Pool>) -> rustler::Atom {
    pool.stop();
    atoms::ok()
}

#[rustler::nif]
fn pool_stats(env: Env<'_>, pool: ResourceArc<Pool>) -> NifResult<Term<'_>> {
    let stats = pool.stats();
    map_new(env)
        .map_put(atoms::executors(), stats.executors)?
        .map_put(atoms::queued(), stats.queued)?
        .map_put(atoms::running(), stats.running)?
        .map_put(atoms::bound(), stats.bound)
}

/// The GIL turnstile's counters (process-wide; all 0 on free-threaded builds):
/// `#{line, gate_taken, waited, yielded}` (see `executor::fair`).
#[rustler::nif]
fn pool_fairness_stats(env: Env<'_>) -> NifResult<Term<'_>> {
    let stats = fair::stats();
    map_new(env)
        .map_put(atoms::line(), stats.waiting)?
        .map_put(atoms::gate_taken(), stats.gate_taken)?
        .map_put(atoms::waited(), stats.waited)?
        .map_put(atoms::yielded(), stats.yielded)
}

/// Where a request goes: a pool (any free executor), a context (its executor, in its
/// namespace), or a job (the executor that runs it, which is waiting for a callback this
/// process is serving: the request nests there, in the job's namespace).
enum Destination {
    Pool(ResourceArc<Pool>),
    Context(ResourceArc<Context>),
    Job(ResourceArc<JobResource>),
}

impl<'a> rustler::Decoder<'a> for Destination {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if let Ok(pool) = term.decode() {
            Ok(Destination::Pool(pool))
        } else if let Ok(context) = term.decode() {
            Ok(Destination::Context(context))
        } else {
            Ok(Destination::Job(term.decode()?))
        }
    }
}

/// Saves the caller's `Ref` and the terms `body` needs in a fresh owned env, makes the request
/// and queues it at `destination`; the job resource, or `{error, Reason}`.
fn submit<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    body: impl FnOnce(&dyn Fn(Term<'a>) -> SavedTerm) -> Body,
) -> Term<'a> {
    let owned = OwnedEnv::new();
    let save = |term: Term<'a>| owned.save(term);
    let reference = save(reference);
    let body = body(&save);
    let queued = match destination {
        Destination::Pool(pool) => {
            let request = Request::new(env, owned, reference, body, None);
            let job = request.job.clone();
            pool.submit(request).map(|()| job)
        }
        Destination::Context(context) => {
            let namespace = Some(context.namespace().clone());
            let request = Request::new(env, owned, reference, body, namespace);
            let job = request.job.clone();
            context.submit(request).map(|()| job)
        }
        Destination::Job(outer) => {
            let namespace = outer.inner().namespace().cloned();
            let request = Request::new(env, owned, reference, body, namespace);
            let job = request.job.clone();
            // Always set: a job whose callback the caller serves has started.
            match outer.inner().runner() {
                Some(runner) if runner.run_nested(request) => Ok(job),
                _ => Err(Error::Stopped),
            }
        }
    };
    match queued {
        Ok(job) => job.encode(env),
        Err(err) => err.encode(env),
    }
}

/// The target of `pool_call` and `pool_async`: module and function (checked binaries) saved
/// in the request's env.
fn target<'a>(
    save: &dyn Fn(Term<'a>) -> SavedTerm,
    module: Term<'a>,
    function: Term<'a>,
) -> Target {
    Target {
        module: save(module),
        function: save(function),
    }
}

/// Checks that `module` and `function` are binaries, `arguments` a list and `kwargs` a map or a
/// list (a keyword list; its elements are checked by the conversion, on the executor).
fn check_call(
    module: Term<'_>,
    function: Term<'_>,
    arguments: Term<'_>,
    kwargs: Term<'_>,
) -> NifResult<()> {
    if module.is_binary()
        && function.is_binary()
        && arguments.is_list()
        && (kwargs.is_map() || kwargs.is_list())
    {
        Ok(())
    } else {
        Err(rustler::Error::BadArg)
    }
}

/// Arguments that cost more than this to copy (in `COPY_BUDGET`'s units, about words) go in
/// the external term format when they suit it: from about this size writing the bytes in the
/// NIF (`encode`) and the executor's one-pass decoding cost less than the copy and the
/// term-by-term reading. Measured (fastest and p50 of 2000 calls of a function given the list,
/// quiet 2-core machine, against the copy from 2048): 384 floats 26-34 and 36-59 µs against
/// 34-43 and 61-71, 768 floats 35-45 and 51-60 against 64-81 and 113-132, 400 short strings
/// 35-43 and 46-54 against 42-65 and 76-109, 500 ints 21-23 and 25-28 against 22-37 and 27-45.
/// Reading a map term by term costs more still (an iterator and a call into the VM per key and
/// per value).
const ETF_MIN_COST: isize = 512;

/// The most the caller encodes itself (its `term_to_binary/1` of 32k words: 0.3-0.6 ms on the
/// 2-core build machine). Bigger arguments go to a dirty scheduler.
const ETF_MAX_COST: isize = 32 * 1024;

/// Which kind of scheduler a NIF runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheduler {
    Normal,
    Dirty,
}

#[rustler::nif]
fn pool_call<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
) -> NifResult<Term<'a>> {
    call(
        env,
        Scheduler::Normal,
        destination,
        reference,
        module,
        function,
        arguments,
        kwargs,
    )
}

/// `pool_call/6` for arguments too big to copy on a normal scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn pool_call_dirty<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
) -> NifResult<Term<'a>> {
    call(
        env,
        Scheduler::Dirty,
        destination,
        reference,
        module,
        function,
        arguments,
        kwargs,
    )
}

#[allow(clippy::too_many_arguments)]
fn call<'a>(
    env: Env<'a>,
    scheduler: Scheduler,
    destination: Destination,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
) -> NifResult<Term<'a>> {
    check_call(module, function, arguments, kwargs)?;
    match route(env, scheduler, arguments, kwargs, CallerEtf::Yes) {
        Route::Submit(arguments) => Ok(submit_call(
            env,
            destination,
            reference,
            (module, function),
            arguments,
            kwargs,
        )),
        Route::Answer(next) => Ok(next.encode(env)),
    }
}

/// How a call's arguments go to the executor.
enum Route<'a> {
    /// In the request: the terms, or the binary of their external term format.
    Submit(Term<'a>),
    /// The caller's next step instead: `dirty` (the NIF's `_dirty` twin), or `etf` (the
    /// caller encodes them with term_to_binary/1 and calls `pool_call_etf`).
    Answer(rustler::Atom),
}

/// Whether the caller can be asked to encode the arguments itself (`etf`): `py_request`
/// does it for `pool_call`, and keeps the arguments alive until the reply, which opaque
/// handles among them need.
#[derive(PartialEq, Eq)]
enum CallerEtf {
    Yes,
    No,
}

/// Picks how `arguments` travel (`beside`, a call's keyword arguments or an eval's code, is
/// always copied as terms, and must be small enough to copy here). Arguments that cost
/// between ETF_MIN_COST and ETF_MAX_COST travel in the external term format: from the first,
/// the executor makes them into Python objects faster from the bytes than term by term; up to
/// the second, writing them takes well under a millisecond of the caller's scheduler. The NIF
/// writes them (`encode`), in the pass that finds what they cost, unless they hold a binary
/// over 64 bytes or a reference: then `etf` when the caller can encode them and the walk's
/// sample of them has none (see `etf_suits`). Smaller arguments are copied as terms; bigger
/// ones go to a dirty scheduler, where they are encoded when no part of them is a big binary
/// or a reference (the same one-pass decoding on the executor), else copied.
fn route<'a>(
    env: Env<'a>,
    scheduler: Scheduler,
    arguments: Term<'a>,
    beside: Term<'a>,
    caller_etf: CallerEtf,
) -> Route<'a> {
    if scheduler == Scheduler::Dirty {
        return Route::Submit(if etf_clean(arguments) {
            arguments.to_binary().release(env).to_term(env)
        } else {
            arguments
        });
    }
    let Some(beside_cost) = copy_cost(&[beside]) else {
        return Route::Answer(atoms::dirty());
    };
    let args_cost = match encode_within(arguments, ETF_MAX_COST) {
        Encoded::Etf(bytes, cost) if cost > ETF_MIN_COST => {
            return match binary_term(env, &bytes) {
                Some(etf) => Route::Submit(etf),
                None => Route::Answer(atoms::dirty()),
            };
        }
        Encoded::Etf(_, cost) => Some(cost),
        Encoded::TooBig => None,
        Encoded::Unsuitable => {
            let cost = copy_cost_within(&[arguments], ETF_MAX_COST);
            if caller_etf == CallerEtf::Yes
                && cost.is_some_and(|cost| cost > ETF_MIN_COST)
                && etf_suits(arguments)
            {
                return Route::Answer(atoms::etf());
            }
            cost
        }
    };
    match args_cost {
        Some(a) if a + beside_cost <= COPY_BUDGET => Route::Submit(arguments),
        _ => Route::Answer(atoms::dirty()),
    }
}

/// `pool_call/6` with the arguments list in the external term format (`term_to_binary/1` of
/// it, which `pool_call` asks for with `etf`): saving the binary in the request shares its
/// bytes, and the executor makes the Python objects straight from them
/// (`bridge::request::call_arguments`). `Kwargs` are terms, small enough to copy here.
#[rustler::nif]
fn pool_call_etf<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Binary<'a>,
    kwargs: Term<'a>,
) -> NifResult<Term<'a>> {
    let arguments = arguments.to_term(env);
    if !(module.is_binary() && function.is_binary() && (kwargs.is_map() || kwargs.is_list()))
        || !small_enough(&[kwargs])
    {
        return Err(rustler::Error::BadArg);
    }
    Ok(submit_call(
        env,
        destination,
        reference,
        (module, function),
        arguments,
        kwargs,
    ))
}

/// Submits a `Module:Function(*Arguments, **Kwargs)` call: `arguments` a list of terms, or
/// the binary of its external term format (`pool_call_etf`).
fn submit_call<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    (module, function): (Term<'a>, Term<'a>),
    arguments: Term<'a>,
    kwargs: Term<'a>,
) -> Term<'a> {
    submit_maybe_to_loop(env, destination, reference, (module, function), |save| {
        Body::Call {
            target: target(save, module, function),
            args: save(arguments),
            kwargs: save(kwargs),
        }
    })
}

/// `py:async_call` and `py:async_stream`: a call whose awaitable result is finished on the
/// asyncio loop (`Stream`: an async iterable is collected there).
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn pool_async<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
    stream: bool,
) -> NifResult<Term<'a>> {
    check_call(module, function, arguments, kwargs)?;
    let call = AsyncCall {
        module,
        function,
        arguments,
        kwargs,
        stream,
    };
    async_call(env, Scheduler::Normal, destination, reference, call)
}

/// `pool_async/7` for arguments too big to copy on a normal scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
#[allow(clippy::too_many_arguments)]
fn pool_async_dirty<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
    stream: bool,
) -> NifResult<Term<'a>> {
    check_call(module, function, arguments, kwargs)?;
    let call = AsyncCall {
        module,
        function,
        arguments,
        kwargs,
        stream,
    };
    async_call(env, Scheduler::Dirty, destination, reference, call)
}

/// The arguments of `pool_async`.
struct AsyncCall<'a> {
    module: Term<'a>,
    function: Term<'a>,
    arguments: Term<'a>,
    kwargs: Term<'a>,
    stream: bool,
}

fn async_call<'a>(
    env: Env<'a>,
    scheduler: Scheduler,
    destination: Destination,
    reference: Term<'a>,
    call: AsyncCall<'a>,
) -> NifResult<Term<'a>> {
    let AsyncCall {
        module,
        function,
        arguments,
        kwargs,
        stream,
    } = call;
    let arguments = match route(env, scheduler, arguments, kwargs, CallerEtf::No) {
        Route::Submit(arguments) => arguments,
        Route::Answer(next) => return Ok(next.encode(env)),
    };
    let body = |save: &dyn Fn(Term<'a>) -> SavedTerm| Body::Async {
        target: target(save, module, function),
        args: save(arguments),
        kwargs: save(kwargs),
        stream,
    };
    if stream {
        return Ok(submit(env, destination, reference, body));
    }
    Ok(submit_maybe_to_loop(
        env,
        destination,
        reference,
        (module, function),
        body,
    ))
}

/// Submits a call (`Call` or `Async`): an `async def` of the main namespace or an imported
/// module goes straight to the loop, which starts its coroutine, with no executor
/// (docs/architecture.md, "Coroutines run by Erlang"); anything else may block, so an
/// executor calls it.
fn submit_maybe_to_loop<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    (module, function): (Term<'a>, Term<'a>),
    body: impl FnOnce(&dyn Fn(Term<'a>) -> SavedTerm) -> Body,
) -> Term<'a> {
    let pool = match destination {
        Destination::Pool(pool) if known_async_def(module, function) => pool,
        destination => return submit(env, destination, reference, body),
    };
    let owned = OwnedEnv::new();
    let save = |term: Term<'a>| owned.save(term);
    let reference = save(reference);
    let body = body(&save);
    let request = Request::new(env, owned, reference, body, None);
    let job = request.job.clone();
    let queued = match submit_to_loop(Box::new(LoopStart { request, pool })) {
        Ok(()) => Ok(()),
        Err(start) => {
            let LoopStart { request, pool } = *start;
            pool.submit(request)
        }
    };
    match queued {
        Ok(()) => job.encode(env),
        Err(err) => err.encode(env),
    }
}

/// Whether `module.function` (binaries, checked) is known to be an `async def`.
fn known_async_def(module: Term<'_>, function: Term<'_>) -> bool {
    match (
        module.decode::<Binary<'_>>(),
        function.decode::<Binary<'_>>(),
    ) {
        (Ok(module), Ok(function)) => aio::is_known_async_def(&module, &function),
        _ => false,
    }
}

#[rustler::nif]
fn pool_eval<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    code: Term<'a>,
    locals: Term<'a>,
) -> NifResult<Term<'a>> {
    eval(env, Scheduler::Normal, destination, reference, code, locals)
}

/// `pool_eval/4` for locals too big to copy on a normal scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn pool_eval_dirty<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    code: Term<'a>,
    locals: Term<'a>,
) -> NifResult<Term<'a>> {
    eval(env, Scheduler::Dirty, destination, reference, code, locals)
}

fn eval<'a>(
    env: Env<'a>,
    scheduler: Scheduler,
    destination: Destination,
    reference: Term<'a>,
    code: Term<'a>,
    locals: Term<'a>,
) -> NifResult<Term<'a>> {
    if !code.is_binary() || !locals.is_map() {
        return Err(rustler::Error::BadArg);
    }
    // Big locals as big call arguments: written in the external term format here, decoded
    // into the dict of names by the executor (`bridge::request::locals`).
    let locals = match route(env, scheduler, locals, code, CallerEtf::No) {
        Route::Submit(locals) => locals,
        Route::Answer(next) => return Ok(next.encode(env)),
    };
    Ok(submit(env, destination, reference, |save| Body::Eval {
        code: save(code),
        locals: save(locals),
    }))
}

#[rustler::nif]
fn pool_exec<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    code: Term<'a>,
) -> NifResult<Term<'a>> {
    if !code.is_binary() {
        return Err(rustler::Error::BadArg);
    }
    Ok(submit(env, destination, reference, |save| Body::Exec {
        code: save(code),
    }))
}

#[rustler::nif]
fn pool_next<'a>(
    env: Env<'a>,
    destination: Destination,
    reference: Term<'a>,
    handle: Term<'a>,
    max: usize,
) -> NifResult<Term<'a>> {
    if max == 0 {
        return Err(rustler::Error::BadArg);
    }
    Ok(submit(env, destination, reference, |_| Body::Next {
        handle: handle.decode::<ResourceArc<PyObjectResource>>().ok(),
        max,
    }))
}
