//! The BEAM's [`TraceSink`]: each finished span becomes a message `{py_span, SpanMap}` to the
//! registered receiver (`py_tracer`), sent from the Python thread that finished it through the
//! bounded [`OUTBOX`] (`crate::outbox`: past `max_in_flight` spans not yet acknowledged,
//! spans are dropped and counted). An executor sends its spans before the reply of the request
//! that made them, so a `py:get_traces/0` after that reply finds them in `py_tracer`'s mailbox
//! at the latest.
//!
//! Also the parents that Erlang gives Python spans (`py:with_trace_parent/2`): a map from the
//! Erlang process to `(trace_id, span_id)`, set by that process (normal scheduler, a short
//! critical section) and read by executor threads for the request they run, through the
//! caller of the current job (`crate::executor`). A monitor removes the entry of a process
//! that dies.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use erlang_python_core::trace::{SpanRecord, TraceSink};
use pyo3::prelude::*;
use rustler::{Env, LocalPid, Monitor, ResourceArc};

use crate::bridge::record;
use crate::executor;
use crate::outbox::Outbox;

/// Spans on their way to `py_tracer`.
pub static OUTBOX: Outbox = Outbox::new("Python spans");

/// The sink the NIF installs in core.
pub struct BeamTraceSink;

impl TraceSink for BeamTraceSink {
    fn emit(&self, py: Python<'_>, span: &SpanRecord<'_>) -> PyResult<()> {
        OUTBOX.send(|env| record::span(py, env, span));
        Ok(())
    }

    fn erlang_parent(&self, _py: Python<'_>) -> PyResult<Option<(u128, u64)>> {
        if COUNT.load(Ordering::Relaxed) == 0 {
            return Ok(None);
        }
        let caller = executor::current_job().map(|job| *job.caller());
        Ok(caller.and_then(|pid| parents().lock().get(&pid).map(|e| e.parent)))
    }
}

/// A trace parent: `(trace_id, span_id)`.
pub type Parent = (u128, u64);

struct ParentEntry {
    parent: Parent,
    monitor: Monitor,
}

/// The processes that set a trace parent; the resource monitors them.
pub struct TraceParents {
    entries: Mutex<HashMap<LocalPid, ParentEntry>>,
}

#[rustler::resource_impl]
impl rustler::Resource for TraceParents {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, pid: LocalPid, _monitor: Monitor) {
        let mut entries = self.lock();
        if entries.remove(&pid).is_some() {
            COUNT.store(entries.len(), Ordering::Relaxed);
        }
    }
}

impl TraceParents {
    fn lock(&self) -> MutexGuard<'_, HashMap<LocalPid, ParentEntry>> {
        // Every critical section leaves the map consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static PARENTS: OnceLock<ResourceArc<TraceParents>> = OnceLock::new();

/// Entries in [`PARENTS`]: spans skip the lookup while there are none.
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn parents() -> &'static ResourceArc<TraceParents> {
    PARENTS.get_or_init(|| {
        ResourceArc::new(TraceParents {
            entries: Mutex::new(HashMap::new()),
        })
    })
}

/// Sets (or with `None` clears) the trace parent of process `pid` and returns the one it
/// replaces. A process that is exiting cannot get one (nothing would remove it).
pub fn swap_parent(env: Env<'_>, pid: LocalPid, parent: Option<Parent>) -> Option<Parent> {
    let resource = parents();
    let mut entries = resource.lock();
    let previous = match (entries.entry(pid), parent) {
        (Entry::Occupied(mut entry), Some(parent)) => {
            Some(std::mem::replace(&mut entry.get_mut().parent, parent))
        }
        (Entry::Occupied(entry), None) => {
            let removed = entry.remove();
            resource.demonitor(Some(env), &removed.monitor);
            Some(removed.parent)
        }
        (Entry::Vacant(entry), Some(parent)) => {
            if let Some(monitor) = resource.monitor(Some(env), &pid) {
                entry.insert(ParentEntry { parent, monitor });
            }
            None
        }
        (Entry::Vacant(_), None) => None,
    };
    COUNT.store(entries.len(), Ordering::Relaxed);
    previous
}

/// Gives the calling process the trace parent of `from`, if it has one (a process that runs
/// a callback function for `from` makes its requests under `from`'s parent).
pub fn inherit_parent(env: Env<'_>, from: LocalPid) {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let parent = parents().lock().get(&from).map(|e| e.parent);
    if parent.is_some() {
        swap_parent(env, env.pid(), parent);
    }
}

/// How many processes have a trace parent set.
pub fn parent_count() -> usize {
    COUNT.load(Ordering::Relaxed)
}
