//! `callback_*`: the Erlang half of `erlang.call` (see `crate::callback`). Normal schedulers;
//! each copies one term into an owned env and pushes it to a channel. A result too big to copy
//! within a normal scheduler's budget gets `dirty`, and the caller uses the `_dirty` twin.

use erlang_python_core::callback as names;
use rustler::{Atom, Binary, LocalPid, NifResult, OwnedEnv, ResourceArc, Term};

use super::{small_enough, OptionalPid};
use crate::atoms;
use crate::callback::{pending_async, set_router, AsyncChannel, ReplyChannel};
use crate::executor::JobResource;
use crate::mailbox::Inbox;

fn owned_copy(term: Term<'_>) -> (OwnedEnv, rustler::env::SavedTerm) {
    let env = OwnedEnv::new();
    let saved = env.save(term);
    (env, saved)
}

/// Answers callback `Id` of `Job` (sent to the caller as `{Ref, {'$py_callback', Id, ...}}`);
/// `dirty` when the result is too big to copy here (the caller then calls the `_dirty` twin).
#[rustler::nif]
fn callback_reply(job: ResourceArc<JobResource>, id: u64, result: Term<'_>) -> NifResult<Atom> {
    if !small_enough(&[result]) {
        return Ok(atoms::dirty());
    }
    reply(&job, id, result)
}

/// `callback_reply/3` on a dirty CPU scheduler, for big results.
#[rustler::nif(schedule = "DirtyCpu")]
fn callback_reply_dirty(
    job: ResourceArc<JobResource>,
    id: u64,
    result: Term<'_>,
) -> NifResult<Atom> {
    reply(&job, id, result)
}

fn reply(job: &JobResource, id: u64, result: Term<'_>) -> NifResult<Atom> {
    let Some(runner) = job.inner().runner() else {
        return Err(rustler::Error::BadArg);
    };
    let (env, term) = owned_copy(result);
    // An executor that has exited (pool stopped) no longer needs the answer.
    let _ = runner.callback_result(id, env, term);
    Ok(atoms::ok())
}

/// Answers a callback made from a non-executor thread (`dirty`: see `callback_reply/3`).
#[rustler::nif]
fn callback_thread_reply(channel: ResourceArc<ReplyChannel>, result: Term<'_>) -> Atom {
    if !small_enough(&[result]) {
        return atoms::dirty();
    }
    let (env, term) = owned_copy(result);
    ok_or_error(channel.deliver(env, term))
}

/// `callback_thread_reply/2` on a dirty CPU scheduler, for big results.
#[rustler::nif(schedule = "DirtyCpu")]
fn callback_thread_reply_dirty(channel: ResourceArc<ReplyChannel>, result: Term<'_>) -> Atom {
    let (env, term) = owned_copy(result);
    ok_or_error(channel.deliver(env, term))
}

/// Answers an `erlang.async_call`; `error` when it was cancelled or already answered
/// (`dirty`: see `callback_reply/3`).
#[rustler::nif]
fn callback_async_reply(channel: ResourceArc<AsyncChannel>, result: Term<'_>) -> Atom {
    if !small_enough(&[result]) {
        return atoms::dirty();
    }
    let (env, term) = owned_copy(result);
    ok_or_error(channel.deliver(env, term))
}

/// `callback_async_reply/2` on a dirty CPU scheduler, for big results.
#[rustler::nif(schedule = "DirtyCpu")]
fn callback_async_reply_dirty(channel: ResourceArc<AsyncChannel>, result: Term<'_>) -> Atom {
    let (env, term) = owned_copy(result);
    ok_or_error(channel.deliver(env, term))
}

fn ok_or_error(delivered: bool) -> Atom {
    if delivered {
        atoms::ok()
    } else {
        atoms::error()
    }
}

/// The number of `erlang.async_call`s waiting for their Erlang function.
#[rustler::nif]
fn callback_async_pending() -> usize {
    pending_async()
}

fn name_of(name: Binary<'_>) -> NifResult<&str> {
    std::str::from_utf8(name.as_slice()).map_err(|_| rustler::Error::BadArg)
}

/// Makes `erlang.<Name>` resolve in Python.
#[rustler::nif]
fn callback_register(name: Binary<'_>) -> NifResult<Atom> {
    names::register_name(name_of(name)?);
    Ok(atoms::ok())
}

/// Makes `erlang.<Name>` raise `AttributeError` again.
#[rustler::nif]
fn callback_unregister(name: Binary<'_>) -> NifResult<Atom> {
    names::unregister_name(name_of(name)?);
    Ok(atoms::ok())
}

/// Sets the router for non-executor threads (`undefined` clears it and forgets every name).
#[rustler::nif]
fn callback_set_router(router: OptionalPid) -> Atom {
    let clear = router.0.is_none();
    set_router(router.0);
    // After the router: a thread that sees its name gone finds no router either.
    if clear {
        names::clear_names();
    }
    atoms::ok()
}

/// Hands a message of a mailbox's process to its inbox: `ok`, `closed` (the process then
/// ends), or `dirty` when the message is too big to copy here (the process then calls the
/// `_dirty` twin).
#[rustler::nif]
fn mailbox_deliver(inbox: ResourceArc<Inbox>, message: Term<'_>) -> Atom {
    if !small_enough(&[message]) {
        return atoms::dirty();
    }
    deliver(&inbox, message)
}

/// `mailbox_deliver/2` on a dirty CPU scheduler, for big messages.
#[rustler::nif(schedule = "DirtyCpu")]
fn mailbox_deliver_dirty(inbox: ResourceArc<Inbox>, message: Term<'_>) -> Atom {
    deliver(&inbox, message)
}

fn deliver(inbox: &Inbox, message: Term<'_>) -> Atom {
    let (env, term) = owned_copy(message);
    if inbox.deliver(env, term) {
        atoms::ok()
    } else {
        atoms::closed()
    }
}

/// Gives a mailbox its process (spawned by the router): `ok`, or `closed` when Python closed
/// the mailbox meanwhile (the router then tells the process to end).
#[rustler::nif]
fn mailbox_attach(inbox: ResourceArc<Inbox>, pid: LocalPid) -> Atom {
    if inbox.attach(pid) {
        atoms::ok()
    } else {
        atoms::closed()
    }
}

/// Tells a mailbox that its process ended, with `Reason` as text.
#[rustler::nif]
fn mailbox_down(inbox: ResourceArc<Inbox>, reason: Binary<'_>) -> Atom {
    inbox.down(String::from_utf8_lossy(reason.as_slice()).into_owned());
    atoms::ok()
}
