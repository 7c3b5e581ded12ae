//! `subinterp_*`: the pool of own-GIL sub-interpreters (docs/parallelism.md). Starting and
//! stopping run on a dirty I/O scheduler (they wait for threads to create or end
//! interpreters); requests run on the caller's normal scheduler and only save their terms
//! (binaries: their bytes are not copied here) and enqueue (docs/architecture.md,
//! invariant 1). On builds without own-GIL sub-interpreters every function answers
//! `{error, subinterpreters_not_supported}`.

use rustler::types::tuple::get_tuple;
use rustler::{Binary, Encoder, Env, NifResult, ResourceArc, Term, TermType};

use crate::atoms;
use crate::bridge::PyObjectResource;
use crate::interp;
use crate::subinterp::{self, SubPool};

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
use rustler::OwnedEnv;

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
use crate::subinterp::{Task, TaskWork};

fn not_supported(env: Env<'_>) -> Term<'_> {
    (atoms::error(), atoms::subinterpreters_not_supported()).encode(env)
}

/// The entries of a `sys.path` given as binaries: UTF-8 without NUL, else `badarg`.
fn path_entries(sys_path: &[Binary<'_>]) -> NifResult<Vec<String>> {
    sys_path
        .iter()
        .map(|entry| match std::str::from_utf8(entry.as_slice()) {
            Ok(text) if !text.contains('\0') => Ok(text.to_owned()),
            _ => Err(rustler::Error::BadArg),
        })
        .collect()
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
    let path = path_entries(&sys_path)?;
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

/// Gives every worker `SysPath` (binaries) as its `sys.path` before its next task.
#[rustler::nif]
fn subinterp_pool_set_path<'a>(
    pool: ResourceArc<SubPool>,
    sys_path: Vec<Binary<'a>>,
) -> NifResult<rustler::Atom> {
    let path = path_entries(&sys_path)?;
    set_path(&pool, path);
    Ok(atoms::ok())
}

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
fn set_path(pool: &SubPool, path: Vec<String>) {
    pool.set_path(path);
}

#[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
fn set_path(_pool: &SubPool, _path: Vec<String>) {}

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

/// What [`scan`] found in the arguments of a request.
#[cfg_attr(not(all(Py_3_12, not(Py_GIL_DISABLED))), allow(dead_code))]
enum Scan {
    /// No handle, and small enough to encode here.
    Clean,
    /// Too big to walk and encode on a normal scheduler: the `_dirty` twin does it.
    TooBig,
    /// An opaque handle: an object of the main interpreter, which cannot cross.
    Handle,
}

/// Walks `terms` looking for handles (`PyObjectResource`s), within the copy budget of
/// `nifs::small_enough` when `bounded` (binaries count with all their bytes: encoding copies
/// them). Keeps its own stack.
#[cfg_attr(not(all(Py_3_12, not(Py_GIL_DISABLED))), allow(dead_code))]
fn scan(terms: &[Term<'_>], bounded: bool) -> Scan {
    let mut budget = super::COPY_BUDGET;
    let mut pending: Vec<Term<'_>> = terms.to_vec();
    while let Some(term) = pending.pop() {
        budget -= 1;
        match term.get_type() {
            TermType::List => {
                let mut rest = term;
                while let Ok((head, tail)) = rest.list_get_cell() {
                    budget -= 1;
                    pending.push(head);
                    rest = tail;
                }
                if !rest.is_empty_list() {
                    pending.push(rest);
                }
            }
            TermType::Tuple => {
                if let Ok(items) = get_tuple(term) {
                    budget -= items.len() as isize;
                    pending.extend(items);
                }
            }
            TermType::Map => {
                if let Some(entries) = rustler::types::map::MapIterator::new(term) {
                    for (key, value) in entries {
                        budget -= 2;
                        pending.push(key);
                        pending.push(value);
                    }
                }
            }
            TermType::Binary => {
                let size = term.decode::<Binary>().map(|b| b.len()).unwrap_or(0);
                budget -= (size / 8) as isize;
            }
            TermType::Ref if term.decode::<ResourceArc<PyObjectResource>>().is_ok() => {
                return Scan::Handle;
            }
            _ => {}
        }
        if bounded && budget < 0 {
            return Scan::TooBig;
        }
    }
    Scan::Clean
}

/// `Module.Function(*Args, **Kwargs)` in any sub-interpreter. `dirty` when the arguments are
/// too big for a normal scheduler (`subinterp_call_dirty/6` then), `{error, handle}` when they
/// hold a handle.
#[rustler::nif]
fn subinterp_call<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    module: Binary<'a>,
    function: Binary<'a>,
    positional: Term<'a>,
    keywords: Term<'a>,
) -> Term<'a> {
    call(
        env, &pool, reference, module, function, positional, keywords, true,
    )
}

/// [`subinterp_call`] on a dirty CPU scheduler, for big arguments.
#[rustler::nif(schedule = "DirtyCpu")]
fn subinterp_call_dirty<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    module: Binary<'a>,
    function: Binary<'a>,
    positional: Term<'a>,
    keywords: Term<'a>,
) -> Term<'a> {
    call(
        env, &pool, reference, module, function, positional, keywords, false,
    )
}

#[allow(clippy::too_many_arguments)]
fn call<'a>(
    env: Env<'a>,
    pool: &SubPool,
    reference: Term<'a>,
    module: Binary<'a>,
    function: Binary<'a>,
    positional: Term<'a>,
    keywords: Term<'a>,
    bounded: bool,
) -> Term<'a> {
    let _ = (
        pool, reference, module, function, positional, keywords, bounded,
    );
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    {
        match scan(&[positional, keywords], bounded) {
            Scan::TooBig => atoms::dirty().encode(env),
            Scan::Handle => (atoms::error(), atoms::handle()).encode(env),
            Scan::Clean => {
                let owned = OwnedEnv::new();
                let work = TaskWork::Call {
                    module: owned.save(module.to_term(env)),
                    function: owned.save(function.to_term(env)),
                    args: owned.save(etf(env, positional)),
                    kwargs: owned.save(etf(env, keywords)),
                };
                let saved = owned.save(reference);
                let task = Task::new(env, owned, saved, work);
                queue(env, pool.submit(task))
            }
        }
    }
    #[cfg(not(all(Py_3_12, not(Py_GIL_DISABLED))))]
    not_supported(env)
}

/// `term_to_binary(Term)`, as a binary term of `env`.
#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
fn etf<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    term.to_binary().release(env).to_term(env)
}

/// `eval(Code)` after merging `Locals` (a map) into `__main__`; `dirty` and `{error, handle}`
/// as for [`subinterp_call`].
#[rustler::nif]
fn subinterp_eval<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    code: Binary<'a>,
    locals: Term<'a>,
) -> Term<'a> {
    eval(env, &pool, reference, code, locals, true)
}

/// [`subinterp_eval`] on a dirty CPU scheduler, for big locals.
#[rustler::nif(schedule = "DirtyCpu")]
fn subinterp_eval_dirty<'a>(
    env: Env<'a>,
    pool: ResourceArc<SubPool>,
    reference: Term<'a>,
    code: Binary<'a>,
    locals: Term<'a>,
) -> Term<'a> {
    eval(env, &pool, reference, code, locals, false)
}

fn eval<'a>(
    env: Env<'a>,
    pool: &SubPool,
    reference: Term<'a>,
    code: Binary<'a>,
    locals: Term<'a>,
    bounded: bool,
) -> Term<'a> {
    let _ = (pool, reference, code, locals, bounded);
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    {
        match scan(&[locals], bounded) {
            Scan::TooBig => atoms::dirty().encode(env),
            Scan::Handle => (atoms::error(), atoms::handle()).encode(env),
            Scan::Clean => {
                let owned = OwnedEnv::new();
                let work = TaskWork::Eval {
                    code: owned.save(code.to_term(env)),
                    locals: owned.save(etf(env, locals)),
                };
                let saved = owned.save(reference);
                let task = Task::new(env, owned, saved, work);
                queue(env, pool.submit(task))
            }
        }
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
