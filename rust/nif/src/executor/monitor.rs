//! Interrupts on free-threaded builds: the executor stops itself, from a `sys.monitoring` callback
//! (PEP 669), once its own stack is at a safe point (docs/architecture.md, "Timeouts and dead
//! callers").
//!
//! On a GIL build, `python-main` holds the GIL while it reads the executor's stack and raises
//! the interrupt in it, so the executor cannot move in between. Without a GIL it can: the stack
//! it read may be gone by the time the exception lands, and reading another running thread's
//! frames is itself unsafe there (it may crash the interpreter: "Known limitations" of CPython's
//! free-threading HOWTO). So on those builds `python-main` only marks the job's interrupt as
//! pending and arms this tool; every Python thread then calls back at its next line, jump,
//! function start or resume, and the executor with the pending interrupt looks at its own
//! stack and raises `erlang.Interrupted` there when it is safe. The tool is disarmed as soon as
//! no interrupt is pending: its events cost nothing while off.
//!
//! Arming and disarming change the tool's events, which only `python-main` does, one change at a
//! time; the count of pending interrupts is atomic, so any thread can give one up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

use crate::interp;

/// The tool ids PEP 669 leaves to tools without a reserved one (0-2 and 5 are the debugger's,
/// coverage's, the profiler's and the optimizer's), then the others, last first.
const TOOL_IDS: [u8; 6] = [3, 4, 5, 2, 1, 0];

/// The events that call back: a new line, a jump (loops of one line), the start of a function,
/// the resumption of a generator or coroutine. Every stretch of Python code reaches one soon.
const EVENTS: [&str; 4] = ["LINE", "JUMP", "PY_START", "PY_RESUME"];

/// Interrupts pending in executors (each one armed the tool once).
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Whether the tool's events are on; changed on `python-main` only.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// `sys.monitoring` and the tool id this process holds, taken on the first interrupt (`None`:
/// every id is taken).
static TOOL: PyOnceLock<Option<(Py<PyAny>, u8)>> = PyOnceLock::new();

/// On `python-main`: true once the tool is set up (the first call takes a tool id and registers
/// the function `callback` makes for the events); false when every tool id is taken (the
/// caller then interrupts the way GIL builds do).
pub fn ready(
    py: Python<'_>,
    callback: impl FnOnce(Python<'_>) -> PyResult<Bound<'_, PyCFunction>>,
) -> bool {
    TOOL.get_or_init(py, || match acquire(py, callback) {
        Ok(tool) => tool,
        Err(err) => {
            log::error!("cannot set up interrupts through sys.monitoring: {err}");
            None
        }
    })
    .is_some()
}

/// One more interrupt is pending (counted before it can be dropped); [`sync`] turns the events
/// on.
pub fn add_pending() {
    PENDING.fetch_add(1, Ordering::AcqRel);
}

/// Any thread: a pending interrupt was raised or dropped; the events go off once none is left.
pub fn disarm() {
    if PENDING.fetch_sub(1, Ordering::AcqRel) == 1 {
        interp::run_on_main(Box::new(sync));
    }
}

/// On `python-main`: the events on while an interrupt is pending, off otherwise.
pub fn sync(py: Python<'_>) {
    let Some(Some((monitoring, id))) = TOOL.get(py) else {
        return;
    };
    let want = PENDING.load(Ordering::Acquire) > 0;
    if want == ENABLED.load(Ordering::Acquire) {
        return;
    }
    let events = if want {
        event_set(py, monitoring.bind(py))
    } else {
        Ok(0)
    };
    let set = events.and_then(|events| {
        monitoring
            .bind(py)
            .call_method1("set_events", (*id, events))
            .map(drop)
    });
    match set {
        Ok(()) => ENABLED.store(want, Ordering::Release),
        Err(err) => log::error!("cannot switch the interrupt events of sys.monitoring: {err}"),
    }
}

fn event_set(py: Python<'_>, monitoring: &Bound<'_, PyAny>) -> PyResult<u32> {
    let events = monitoring.getattr(pyo3::intern!(py, "events"))?;
    EVENTS.iter().try_fold(0, |set, name| {
        Ok(set | events.getattr(*name)?.extract::<u32>()?)
    })
}

/// Takes a free tool id and registers `callback` for [`EVENTS`].
fn acquire<'py>(
    py: Python<'py>,
    callback: impl FnOnce(Python<'py>) -> PyResult<Bound<'py, PyCFunction>>,
) -> PyResult<Option<(Py<PyAny>, u8)>> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    let Some(id) = TOOL_IDS.into_iter().find(|id| {
        monitoring
            .call_method1("use_tool_id", (*id, "erlang_python interrupts"))
            .is_ok()
    }) else {
        log::warn!(
            "every sys.monitoring tool id is taken: interrupts read executors' stacks from \
             python-main, which free-threaded CPython does not make safe"
        );
        return Ok(None);
    };
    let callback = callback(py)?;
    let events = monitoring.getattr("events")?;
    for name in EVENTS {
        monitoring.call_method1("register_callback", (id, events.getattr(name)?, &callback))?;
    }
    Ok(Some((monitoring.unbind(), id)))
}
