//! `semaphore_*`: the counting semaphore behind `py_semaphore` (the `max_concurrent` limit of
//! `py:call`). Each operation is one NIF call, so a process killed at any point cannot leave a
//! slot half taken, and the semaphore monitors its holders and waiters: a holder that dies
//! gives its slots back, a waiter that dies leaves the queue. Normal schedulers; a short
//! critical section, never Python.
//!
//! Fair: callers that find no free slot wait in one FIFO queue, and a slot given back goes
//! straight to the longest waiter (a message `{'$py_semaphore', Id}`), so a caller never loses
//! a slot to one that came later.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustler::{Atom, Encoder, Env, LocalPid, NifResult, ResourceArc, Term};

use crate::atoms;

#[derive(Default)]
struct Counts {
    running: u64,
    max: u64,
    /// Slots held per process (processes stay listed, at 0, until they die: the entry stands
    /// for the monitor).
    holders: HashMap<LocalPid, u64>,
    /// Processes waiting for a slot, longest first, with the id of their wait.
    waiters: VecDeque<(LocalPid, u64)>,
}

/// The ids of waits: unique in the OS process.
static NEXT_WAIT: AtomicU64 = AtomicU64::new(1);

/// The semaphore resource.
pub struct Semaphore {
    counts: Mutex<Counts>,
}

#[rustler::resource_impl]
impl rustler::Resource for Semaphore {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, env: Env<'a>, pid: LocalPid, _monitor: rustler::Monitor) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.waiters.retain(|(waiter, _)| *waiter != pid);
            if let Some(held) = counts.holders.remove(&pid) {
                counts.running = counts.running.saturating_sub(held);
            }
            grant(env, &mut counts);
        }
    }
}

fn lock(sem: &Semaphore) -> NifResult<MutexGuard<'_, Counts>> {
    sem.counts
        .lock()
        .map_err(|_| rustler::Error::Term(Box::new("poisoned")))
}

/// Makes sure the semaphore monitors `pid` (its entry in `holders`); false when `pid` is
/// exiting (nothing would give its slots back).
fn watch(env: Env<'_>, sem: &ResourceArc<Semaphore>, counts: &mut Counts, pid: LocalPid) -> bool {
    match counts.holders.entry(pid) {
        Entry::Occupied(_) => true,
        Entry::Vacant(entry) => {
            if sem.monitor(Some(env), &pid).is_none() {
                return false;
            }
            entry.insert(0);
            true
        }
    }
}

/// Takes a free slot for `pid` (already watched).
fn take(counts: &mut Counts, pid: LocalPid) {
    *counts.holders.entry(pid).or_insert(0) += 1;
    counts.running += 1;
}

/// Hands free slots to the longest waiters, telling each with `{'$py_semaphore', Id}`.
fn grant(env: Env<'_>, counts: &mut Counts) {
    while counts.running < counts.max {
        let Some((pid, id)) = counts.waiters.pop_front() else {
            return;
        };
        take(counts, pid);
        if env.send(&pid, (atoms::py_semaphore(), id)).is_err() {
            // Gone already (its `down` is on its way and would free the slot): free it now.
            if let Some(held) = counts.holders.get_mut(&pid) {
                *held = held.saturating_sub(1);
            }
            counts.running -= 1;
        }
    }
}

#[rustler::nif]
fn semaphore_new(max: u64) -> NifResult<ResourceArc<Semaphore>> {
    if max == 0 {
        return Err(rustler::Error::BadArg);
    }
    Ok(ResourceArc::new(Semaphore {
        counts: Mutex::new(Counts {
            max,
            ..Counts::default()
        }),
    }))
}

/// Takes a slot for the calling process if one is free and nobody waits: `ok`, or `full`.
#[rustler::nif]
fn semaphore_try_acquire(env: Env<'_>, sem: ResourceArc<Semaphore>) -> NifResult<Atom> {
    let pid = env.pid();
    let mut counts = lock(&sem)?;
    if counts.running >= counts.max || !counts.waiters.is_empty() {
        return Ok(atoms::full());
    }
    if !watch(env, &sem, &mut counts, pid) {
        return Ok(atoms::full());
    }
    take(&mut counts, pid);
    Ok(atoms::ok())
}

/// Takes a slot for the calling process (`ok`) or queues it behind the earlier waiters
/// (`{wait, Id}`: `{'$py_semaphore', Id}` arrives when a slot is its own). `full` for a
/// process that is exiting.
#[rustler::nif]
fn semaphore_acquire(env: Env<'_>, sem: ResourceArc<Semaphore>) -> NifResult<Term<'_>> {
    let pid = env.pid();
    let mut counts = lock(&sem)?;
    if !watch(env, &sem, &mut counts, pid) {
        return Ok(atoms::full().encode(env));
    }
    if counts.running < counts.max && counts.waiters.is_empty() {
        take(&mut counts, pid);
        return Ok(atoms::ok().encode(env));
    }
    let id = NEXT_WAIT.fetch_add(1, Ordering::Relaxed);
    counts.waiters.push_back((pid, id));
    Ok((atoms::wait(), id).encode(env))
}

/// Gives up wait `Id` of the calling process: `cancelled`, or `granted` when the slot was
/// already handed over (its message is in the caller's mailbox; the slot is the caller's).
#[rustler::nif]
fn semaphore_cancel(env: Env<'_>, sem: ResourceArc<Semaphore>, id: u64) -> NifResult<Atom> {
    let pid = env.pid();
    let mut counts = lock(&sem)?;
    let before = counts.waiters.len();
    counts.waiters.retain(|waiter| *waiter != (pid, id));
    Ok(if counts.waiters.len() < before {
        atoms::cancelled()
    } else {
        atoms::granted()
    })
}

/// Gives a slot back: one of the caller's if it holds any, else any slot (as erlang_python 1.6
/// allowed); the count never goes below 0. The slot goes to the longest waiter, if any.
#[rustler::nif]
fn semaphore_release(env: Env<'_>, sem: ResourceArc<Semaphore>) -> NifResult<Atom> {
    let pid = env.pid();
    let mut counts = lock(&sem)?;
    if let Some(held) = counts.holders.get_mut(&pid) {
        *held = held.saturating_sub(1);
    }
    counts.running = counts.running.saturating_sub(1);
    grant(env, &mut counts);
    Ok(atoms::ok())
}

#[rustler::nif]
fn semaphore_current(sem: ResourceArc<Semaphore>) -> NifResult<u64> {
    Ok(lock(&sem)?.running)
}

#[rustler::nif]
fn semaphore_max(sem: ResourceArc<Semaphore>) -> NifResult<u64> {
    Ok(lock(&sem)?.max)
}

/// Changes the limit; a higher one hands the new slots to waiters at once.
#[rustler::nif]
fn semaphore_set_max(env: Env<'_>, sem: ResourceArc<Semaphore>, max: u64) -> NifResult<Atom> {
    if max == 0 {
        return Err(rustler::Error::BadArg);
    }
    let mut counts = lock(&sem)?;
    counts.max = max;
    grant(env, &mut counts);
    Ok(atoms::ok())
}

/// The owner is going away (the application stops): every waiter gets its slot at once and no
/// caller waits any more; their requests then find the pool stopped.
#[rustler::nif]
fn semaphore_close(env: Env<'_>, sem: ResourceArc<Semaphore>) -> NifResult<Atom> {
    let mut counts = lock(&sem)?;
    counts.max = u64::MAX;
    grant(env, &mut counts);
    Ok(atoms::ok())
}
