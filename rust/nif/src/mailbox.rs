//! The BEAM side of `erlang.open_mailbox()`: an Erlang process whose messages a coroutine
//! awaits (docs/asyncio.md, "Mailboxes").
//!
//! `_mailbox_open()` makes an [`Inbox`] (a resource) and asks the router (`py_callback`) for a
//! process: the router spawns `py_mailbox` with the inbox, monitors it, and attaches its pid
//! (`mailbox_attach/2`). The process hands every message it receives to `mailbox_deliver/2`,
//! which only copies the term into an owned environment, queues it, and signals an eventfd the
//! coroutine's event loop watches (one file descriptor a mailbox, owned by the inbox): the
//! loop's thread then converts the messages with the GIL (`MailboxInbox.drain`), so a message
//! crosses one thread. When the process ends
//! the router reports its exit reason (`mailbox_down/2`); `close()` sends the process
//! `{'$py_mailbox_close', Inbox}`, on which it ends normally.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rustler::env::SavedTerm;
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, LocalPid, OwnedEnv, ResourceArc};

use crate::atoms;
use crate::bridge::callback::{message_to_py, pid_to_py};

/// What the process and the loop share.
pub struct Inbox {
    state: Mutex<InboxState>,
    /// The wake-up eventfd (non-blocking), closed when the last holder of the inbox (the
    /// process or the Python object) lets go: the loop stops watching it before that.
    wake: OwnedFd,
}

#[derive(Default)]
struct InboxState {
    messages: VecDeque<(OwnedEnv, SavedTerm)>,
    pid: Option<LocalPid>,
    /// The process's exit reason, once it ended.
    down: Option<String>,
    closed: bool,
    /// The eventfd was signalled and the loop has not drained it yet.
    woken: bool,
}

#[rustler::resource_impl]
impl rustler::Resource for Inbox {}

impl Inbox {
    /// Runs `change` on the state and wakes the loop unless it is already woken.
    fn update(&self, change: impl FnOnce(&mut InboxState) -> bool) -> bool {
        let (changed, wake) = match self.state.lock() {
            Ok(mut state) => {
                let changed = change(&mut state);
                let wake = changed && !state.woken;
                if wake {
                    state.woken = true;
                }
                (changed, wake)
            }
            Err(_) => (false, false),
        };
        if wake {
            let one: u64 = 1;
            // SAFETY: writes the 8 bytes of `one` to the eventfd this inbox owns; a failure
            // (the counter full) still leaves the loop woken.
            let _ = unsafe {
                libc::write(
                    self.wake.as_raw_fd(),
                    std::ptr::addr_of!(one).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
        changed
    }

    /// Resets the eventfd; before the state is read, so that a message queued after it wakes
    /// the loop again.
    fn unwake(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into `count` from the eventfd this inbox owns; it is
        // non-blocking, and EAGAIN (not signalled) is fine.
        let _ = unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                std::ptr::addr_of_mut!(count).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Queues a message; false when the mailbox is closed (the process then ends).
    pub fn deliver(&self, env: OwnedEnv, term: SavedTerm) -> bool {
        self.update(|state| {
            if state.closed {
                return false;
            }
            state.messages.push_back((env, term));
            true
        })
    }

    /// The process's pid, from the router that spawned it; false when the mailbox was
    /// closed before (the router then tells the process to end).
    pub fn attach(&self, pid: LocalPid) -> bool {
        self.update(|state| {
            state.pid = Some(pid);
            !state.closed
        })
    }

    /// The process ended with `reason`.
    pub fn down(&self, reason: String) {
        self.update(|state| {
            state.down = Some(reason);
            true
        });
    }
}

/// A non-blocking socket pair `(read, write)`: a byte written to `write` wakes the event loop
/// watching `read`. `what` names its owner in the error.
pub(crate) fn wake_pair(what: &str) -> PyResult<(UnixStream, UnixStream)> {
    UnixStream::pair()
        .and_then(|(read, write)| {
            read.set_nonblocking(true)?;
            write.set_nonblocking(true)?;
            Ok((read, write))
        })
        .map_err(|err| PyRuntimeError::new_err(format!("{what} wake-up socket: {err}")))
}

/// A new non-blocking eventfd.
fn eventfd() -> PyResult<OwnedFd> {
    // SAFETY: eventfd(2) with no pointers; a negative result is an error.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(PyRuntimeError::new_err(format!(
            "mailbox wake-up eventfd: {err}"
        )));
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `erlang._native._mailbox_open()`: a new inbox, its process on the way (asked of
/// `router`); None when the router is gone.
pub fn open<'py>(py: Python<'py>, router: &LocalPid) -> PyResult<Option<Bound<'py, PyAny>>> {
    let inbox = ResourceArc::new(Inbox {
        state: Mutex::new(InboxState::default()),
        wake: eventfd()?,
    });
    let mut env = OwnedEnv::new();
    let sent = env.send_and_clear(router, |env| {
        make_tuple(
            env,
            &[atoms::py_mailbox_open().encode(env), inbox.encode(env)],
        )
    });
    if sent.is_err() {
        return Ok(None);
    }
    Bound::new(py, MailboxInbox { inbox }).map(|inbox| Some(inbox.into_any()))
}

/// What `MailboxInbox.drain` gives Python: the messages, the pid, the exit reason.
type Drained<'py> = (
    Bound<'py, PyList>,
    Option<Bound<'py, PyAny>>,
    Option<String>,
);

/// A mailbox's inbox as Python sees it (`erlang._mailbox` drives it from the loop's thread).
#[pyclass(frozen, module = "erlang._native", name = "MailboxInbox")]
pub struct MailboxInbox {
    inbox: ResourceArc<Inbox>,
}

#[pymethods]
impl MailboxInbox {
    /// The wake-up eventfd to watch: readable when `drain` has something. The inbox owns it
    /// (it stays open at least as long as this object): stop watching it, never close it.
    fn fileno(&self) -> i32 {
        self.inbox.wake.as_raw_fd()
    }

    /// What arrived since the last drain: `(messages, pid, down)`, `messages` a list of
    /// `(True, value)` or `(False, exception)` (a message that cannot be converted), `pid` the
    /// process's `erlang.Pid` once attached, `down` its exit reason once it ended.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Drained<'py>> {
        self.inbox.unwake();
        let (messages, pid, down) = match self.inbox.state.lock() {
            Ok(mut state) => {
                state.woken = false;
                (
                    std::mem::take(&mut state.messages),
                    state.pid,
                    state.down.clone(),
                )
            }
            Err(_) => return Err(PyRuntimeError::new_err("mailbox state poisoned")),
        };
        let list = PyList::empty(py);
        for (env, term) in messages {
            match message_to_py(py, &env, &term) {
                Ok(value) => list.append((true, value))?,
                Err(err) => list.append((false, err.into_value(py)))?,
            }
        }
        let pid = pid.map(|pid| pid_to_py(py, pid)).transpose()?;
        Ok((list, pid, down))
    }

    /// Closes the mailbox: later messages are dropped and the process ends normally. True
    /// the first time.
    fn close(&self) -> bool {
        let pid = match self.inbox.state.lock() {
            Ok(mut state) if !state.closed => {
                state.closed = true;
                state.messages.clear();
                state.pid
            }
            _ => return false,
        };
        if let Some(pid) = pid {
            let mut env = OwnedEnv::new();
            let inbox = self.inbox.clone();
            let _ = env.send_and_clear(&pid, |env| {
                make_tuple(
                    env,
                    &[atoms::py_mailbox_close().encode(env), inbox.encode(env)],
                )
            });
        }
        true
    }

    fn __repr__(&self) -> &'static str {
        "<erlang._native.MailboxInbox>"
    }
}
