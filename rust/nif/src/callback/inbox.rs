//! The inbox of one event loop (docs/architecture.md, "The event loop"): how the reply to an
//! `erlang.async_call` reaches the coroutine's loop in one thread hop.
//!
//! `erlang._async` gives each running loop a [`LoopInbox`] on first use (`_loop_inbox()`) and
//! watches its wake-up socket with `add_reader`. A call started with [`LoopInbox::call`] sends
//! `{'$py_async_callback', Channel, Name, Args}` to the router, as before; the process running
//! the Erlang function answers with `callback_async_reply/2` on its scheduler, which copies the
//! term into an owned environment, queues it here and, unless a wake-up is already pending,
//! writes one byte to the socket. The loop's thread wakes in its selector, and
//! [`LoopInbox::drain`] converts the replies with the GIL and settles the waiting futures. No
//! Python object is touched off the GIL: the queue holds call numbers, the futures stay in a
//! dict only the GIL's holder reads.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use rustler::env::SavedTerm;
use rustler::OwnedEnv;

use super::{lost_error, AsyncCall};
use crate::bridge::callback::result_to_py;

/// What reached a loop for one call.
enum Item {
    /// The reply, as `callback_async_reply/2` got it.
    Reply(u64, OwnedEnv, SavedTerm),
    /// The Erlang side ended without replying.
    Lost(u64),
}

/// What the schedulers and the loop's thread share.
pub struct LoopQueue {
    state: Mutex<QueueState>,
    /// The write end of the wake-up socket (non-blocking).
    wake: UnixStream,
    next_id: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Item>,
    /// A byte is in the socket that the loop has not drained yet.
    woken: bool,
    closed: bool,
}

impl LoopQueue {
    /// Queues `item` and wakes the loop unless a wake-up is pending; dropped when the loop's
    /// inbox is closed. Any thread, no GIL: bounded work (invariant 1).
    fn push(&self, item: Item) {
        let wake = match self.state.lock() {
            Ok(mut state) if !state.closed => {
                state.items.push_back(item);
                !std::mem::replace(&mut state.woken, true)
            }
            _ => false,
        };
        if wake {
            // A full socket already wakes the loop; a closed one means nobody listens.
            let _ = (&self.wake).write(&[0]);
        }
    }

    /// Queues the reply of call `id`.
    pub fn reply(&self, id: u64, env: OwnedEnv, term: SavedTerm) {
        self.push(Item::Reply(id, env, term));
    }

    /// Tells the loop that call `id` will never be answered.
    pub fn lost(&self, id: u64) {
        self.push(Item::Lost(id));
    }

    fn take(&self) -> VecDeque<Item> {
        match self.state.lock() {
            Ok(mut state) => {
                state.woken = false;
                std::mem::take(&mut state.items)
            }
            Err(_) => VecDeque::new(),
        }
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
            state.items.clear();
        }
    }
}

/// A loop's inbox as Python sees it (`erlang._async` attaches one to each loop).
#[pyclass(frozen, module = "erlang._native", name = "LoopInbox")]
pub struct LoopInbox {
    queue: Arc<LoopQueue>,
    /// The read end of the wake-up socket, until closed.
    read: Mutex<Option<UnixStream>>,
    /// Call number -> the future its reply settles.
    futures: Py<PyDict>,
}

/// `erlang._native._loop_inbox()` inside the BEAM: a new inbox.
pub fn new_inbox(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let (read, write) = UnixStream::pair()
        .and_then(|(read, write)| {
            read.set_nonblocking(true)?;
            write.set_nonblocking(true)?;
            Ok((read, write))
        })
        .map_err(|err| PyRuntimeError::new_err(format!("loop inbox wake-up socket: {err}")))?;
    let inbox = LoopInbox {
        queue: Arc::new(LoopQueue {
            state: Mutex::new(QueueState::default()),
            wake: write,
            next_id: AtomicU64::new(1),
        }),
        read: Mutex::new(Some(read)),
        futures: PyDict::new(py).unbind(),
    };
    Bound::new(py, inbox).map(Bound::into_any)
}

#[pymethods]
impl LoopInbox {
    /// The fd the loop watches (the inbox owns it); `RuntimeError` once closed.
    fn fileno(&self) -> PyResult<i32> {
        self.read
            .lock()
            .ok()
            .and_then(|read| read.as_ref().map(AsRawFd::as_raw_fd))
            .ok_or_else(|| PyRuntimeError::new_err("the loop inbox is closed"))
    }

    /// Starts `erlang.async_call(name, *args)` whose reply settles `future` (an
    /// `asyncio.Future` of this inbox's loop) when [`Self::drain`] runs; returns the handle
    /// whose `cancel()` forgets the call. Raises as `erlang._native._async_start` does.
    fn call<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        future: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("Function name must be a string"))?
            .to_str()?;
        let inbox = slf.get();
        if inbox.read.lock().map(|r| r.is_none()).unwrap_or(true) {
            return Err(PyRuntimeError::new_err("the loop inbox is closed"));
        }
        let id = inbox.queue.next_id.fetch_add(1, Ordering::Relaxed);
        let channel = super::start(py, name, args, super::Target::Loop(inbox.queue.clone(), id))?;
        inbox.futures.bind(py).set_item(id, future)?;
        Bound::new(
            py,
            AsyncCall {
                channel,
                pending: Some((inbox.futures.clone_ref(py), id)),
            },
        )
        .map(Bound::into_any)
    }

    /// Settles the futures whose replies arrived (on the loop's thread, from its reader
    /// callback): the value, or the `erlang.ErlangError` of a failed call. A future already
    /// done (its task was cancelled) is left alone.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        if let Ok(read) = self.read.lock() {
            if let Some(mut read) = read.as_ref() {
                let mut buffer = [0u8; 256];
                loop {
                    match read.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(err) if err.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
        }
        let futures = self.futures.bind(py);
        for item in self.queue.take() {
            let (id, reply) = match item {
                Item::Reply(id, env, term) => (id, Some((env, term))),
                Item::Lost(id) => (id, None),
            };
            let Some(future) = futures.get_item(id)? else {
                continue;
            };
            futures.del_item(id)?;
            if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                continue;
            }
            let outcome = match reply {
                Some((env, term)) => result_to_py(py, &env, &term),
                None => Err(lost_error(py)),
            };
            let settled = match outcome {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
                Err(err) => {
                    future.call_method1(intern!(py, "set_exception"), (err.into_value(py),))
                }
            };
            if let Err(err) = settled {
                err.write_unraisable(py, Some(&future));
            }
        }
        Ok(())
    }

    /// Closes the inbox (its loop is closing): later replies are dropped, the fd is closed,
    /// the futures still waiting are forgotten. Nothing happens the second time.
    fn close(&self, py: Python<'_>) {
        self.queue.close();
        if let Ok(mut read) = self.read.lock() {
            read.take();
        }
        self.futures.bind(py).clear();
    }

    /// The number of calls whose replies this inbox still waits for.
    fn waiting(&self, py: Python<'_>) -> usize {
        self.futures.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<erlang._native.LoopInbox, {} waiting>",
            self.futures.bind(py).len()
        )
    }
}

impl Drop for LoopInbox {
    fn drop(&mut self) {
        self.queue.close();
    }
}
