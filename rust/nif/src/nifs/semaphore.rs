//! `semaphore_*`: the counting semaphore behind `py_semaphore` (the `max_concurrent` limit of
//! `py:call`). Each operation is one NIF call, so a process killed at any point cannot leave a
//! slot half taken, and the semaphore monitors its holders: a holder that dies gives its slots
//! back. Normal schedulers; a short critical section, never Python.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Mutex;

use rustler::{Atom, Env, LocalPid, NifResult, ResourceArc};

use crate::atoms;

#[derive(Default)]
struct Counts {
    running: u64,
    max: u64,
    /// Slots held per process (processes stay listed, at 0, until they die).
    holders: HashMap<LocalPid, u64>,
}

/// The semaphore resource.
pub struct Semaphore {
    counts: Mutex<Counts>,
}

#[rustler::resource_impl]
impl rustler::Resource for Semaphore {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, pid: LocalPid, _monitor: rustler::Monitor) {
        if let Ok(mut counts) = self.counts.lock() {
            if let Some(held) = counts.holders.remove(&pid) {
                counts.running = counts.running.saturating_sub(held);
            }
        }
    }
}

fn lock(sem: &Semaphore) -> NifResult<std::sync::MutexGuard<'_, Counts>> {
    sem.counts
        .lock()
        .map_err(|_| rustler::Error::Term(Box::new("poisoned")))
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

/// Takes a slot for the calling process: `ok`, or `full`.
#[rustler::nif]
fn semaphore_try_acquire(env: Env<'_>, sem: ResourceArc<Semaphore>) -> NifResult<Atom> {
    let pid = env.pid();
    let mut counts = lock(&sem)?;
    if counts.running >= counts.max {
        return Ok(atoms::full());
    }
    let held = match counts.holders.entry(pid) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => {
            if sem.monitor(Some(env), &pid).is_none() {
                // The caller is exiting: nothing would give the slot back.
                return Ok(atoms::full());
            }
            entry.insert(0)
        }
    };
    *held += 1;
    counts.running += 1;
    Ok(atoms::ok())
}

/// Gives a slot back: one of the caller's if it holds any, else any slot (as erlang_python 1.6
/// allowed); the count never goes below 0.
#[rustler::nif]
fn semaphore_release(env: Env<'_>, sem: ResourceArc<Semaphore>) -> NifResult<Atom> {
    let pid = env.pid();
    let mut counts = lock(&sem)?;
    if let Some(held) = counts.holders.get_mut(&pid) {
        *held = held.saturating_sub(1);
    }
    counts.running = counts.running.saturating_sub(1);
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

#[rustler::nif]
fn semaphore_set_max(sem: ResourceArc<Semaphore>, max: u64) -> NifResult<Atom> {
    if max == 0 {
        return Err(rustler::Error::BadArg);
    }
    lock(&sem)?.max = max;
    Ok(atoms::ok())
}
