//! `subinterp_*`: the pool of own-GIL sub-interpreters (docs/parallelism.md). Starting and
//! stopping run on a dirty I/O scheduler (they wait for threads to create or end
//! interpreters); requests run on the caller's normal scheduler and only save their terms
//! (binaries: their bytes are not copied here) and enqueue (docs/architecture.md,
//! invariant 1). On builds without own-GIL sub-interpreters every function answers
//! `{error, subinterpreters_not_supported}`.

use rustler::{Binary, Encoder, Env, NifResult, ResourceArc, Term};

use crate::atoms;
use crate::interp;
use crate::subinterp::{self, SubPool};

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
use rustler::OwnedEnv;

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
use crate::subinterp::{Task, TaskWork};

fn not_supported(env: Env<'_>) -> Term<'_> {
    (atoms::error(), atoms::subinterpreters_not_supported()).encode(env)
}

/// Starts `Size` workers whose `sys.path` is `SysPath` (binaries).
#[rustler::nif(schedule = "DirtyIo")]
fn subinterp_pool_start<'a>(
    env: Env<'a>,
    size: usize,
    sys_path: Vec<Binary<'a>>,
) -> NifResult<Term<'a>> {
    if size == 0 || size > 1024 {
        return Err(rustler::Error::BadArg);
    }
    let mut path = Vec::with_capacity(sys_path.len());
    for entry in &sys_path {
        match std::str::from_utf8(entry.as_slice()) {
            Ok(text) if !text.contains('\0') => path.push(text.to_owned()),
            _ => return Err(rustler::Error::BadArg),
        }
    }
    if !subinterp::SUPPORTED {
        return Ok(not_supported(env));
    }
    if !interp::is_initialized() {
        return Ok(crate::error::Error::NotInitialized.encode(env));
    }
    Ok(start(env, size, path))
}

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
fn start(env: Env<'_>, size: usize, path: Vec<String>) -> Term<'_> {
    match SubPool::start(size, path) {
        Ok(pool) => (atoms::ok(), ResourceArc::new(pool)).encode(env),
        Err(msg) => (atoms::error(), (atoms::subinterp_start_failed(), msg)).encode(env),
    }
}

#[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
fn start(env: Env<'_>, _size: usize, _path: Vec<String>) -> Term<'_> {
    not_supported(env)
}

/// Stops the pool (queued requests get `{error, stopped}`, running ones are interrupted).
#[rustler::nif(schedule = "DirtyIo")]
fn subinterp_pool_stop(pool: ResourceArc<SubPool>) -> rustler::Atom {
    stop(&pool);
    atoms::ok()
}

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
fn stop(pool: &SubPool) {
    pool.stop();
}

#[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
fn stop(_pool: &SubPool) {}

/// The number of workers.
#[rustler::nif]
fn subinterp_pool_size(pool: ResourceArc<SubPool>) -> usize {
    size(&pool)
}

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
fn size(pool: &SubPool) -> usize {
    pool.size()
}

#[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
fn size(_pool: &SubPool) -> usize {
    0
}

/// `Module.Function(*Args, **Kwargs)`, `Args` and `Kwargs` given as `term_to_binary/1` of a
/// list and of a map or keyword list.
#[rustler::nif]
fn subinterp_call<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    module: Binary<'a>,
    function: Binary<'a>,
    positional: Binary<'a>,
    keywords: Binary<'a>,
) -> Term<'a> {
    let _ = (&pool, reference, module, function, positional, keywords);
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    {
        let owned = OwnedEnv::new();
        let work = TaskWork::Call {
            module: owned.save(module.to_term(env)),
            function: owned.save(function.to_term(env)),
            args: owned.save(positional.to_term(env)),
            kwargs: owned.save(keywords.to_term(env)),
        };
        let saved = owned.save(reference);
        let task = Task::new(env, owned, saved, work);
        queue(env, pool.submit(task))
    }
    #[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
    not_supported(env)
}

/// `eval(Code)` after merging `Locals` (`term_to_binary/1` of a map) into `__main__`.
#[rustler::nif]
fn subinterp_eval<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    code: Binary<'a>,
    locals: Binary<'a>,
) -> Term<'a> {
    let _ = (&pool, reference, code, locals);
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    {
        let owned = OwnedEnv::new();
        let work = TaskWork::Eval {
            code: owned.save(code.to_term(env)),
            locals: owned.save(locals.to_term(env)),
        };
        let saved = owned.save(reference);
        let task = Task::new(env, owned, saved, work);
        queue(env, pool.submit(task))
    }
    #[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
    not_supported(env)
}

/// `exec(Code)` on worker `Index` (0-based; `py` runs it on every worker).
#[rustler::nif]
fn subinterp_exec<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    code: Binary<'a>,
    index: usize,
) -> Term<'a> {
    let _ = (&pool, reference, code, index);
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    {
        let owned = OwnedEnv::new();
        let work = TaskWork::Exec {
            code: owned.save(code.to_term(env)),
        };
        let saved = owned.save(reference);
        let task = Task::new(env, owned, saved, work);
        queue(env, pool.submit_to(index, task))
    }
    #[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
    not_supported(env)
}

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
fn queue(env: Env<'_>, queued: Result<ResourceArc<crate::executor::JobResource>, ()>) -> Term<'_> {
    match queued {
        Ok(job) => job.encode(env),
        Err(()) => (atoms::error(), atoms::stopped()).encode(env),
    }
}
