//! A bounded, fire-and-forget stream of messages from Python threads to one Erlang receiver
//! (`py_logger` for log records, `py_tracer` for spans).
//!
//! Messages are sent from the Python thread that produced them through an `OwnedEnv` (Python
//! never runs on a scheduler thread here, so `send_and_clear` is always allowed). A counter
//! holds the messages sent but not yet acknowledged by the receiver (`*_ack/1`); past
//! `max_in_flight` messages are dropped and counted instead of queuing without bound in the
//! receiver's mailbox. Any thread; a few atomic operations and one read lock per message.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;

use rustler::{Env, LocalPid, OwnedEnv, Term};

/// The default bound on messages in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// One receiver and its in-flight accounting.
pub struct Outbox {
    /// What the messages are, for the diagnostics about drops.
    name: &'static str,
    receiver: RwLock<Option<LocalPid>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    dropped: AtomicU64,
}

/// What an outbox reports: dropped since the library loaded, in flight, and the bound.
pub struct OutboxStats {
    /// Messages dropped because too many were in flight.
    pub dropped: u64,
    /// Messages sent and not yet acknowledged.
    pub in_flight: usize,
    /// The bound on `in_flight`.
    pub max_in_flight: usize,
}

impl Outbox {
    /// An outbox with no receiver, for messages called `name`.
    pub const fn new(name: &'static str) -> Self {
        Outbox {
            name,
            receiver: RwLock::new(None),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(DEFAULT_MAX_IN_FLIGHT),
            dropped: AtomicU64::new(0),
        }
    }

    /// Sets (or clears) the receiver. A new receiver starts with nothing in flight.
    pub fn set_receiver(&self, pid: Option<LocalPid>) {
        if let Ok(mut receiver) = self.receiver.write() {
            *receiver = pid;
        }
        self.in_flight.store(0, Ordering::Relaxed);
    }

    /// Sets the bound on messages in flight (at least 1).
    pub fn set_max_in_flight(&self, max: usize) {
        self.max_in_flight.store(max.max(1), Ordering::Relaxed);
    }

    /// The receiver handled `n` messages.
    pub fn ack(&self, n: usize) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }

    /// The counters.
    pub fn stats(&self) -> OutboxStats {
        OutboxStats {
            dropped: self.dropped.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
        }
    }

    /// Reserves a slot for one message, or counts it as dropped.
    fn reserve(&self) -> bool {
        let max = self.max_in_flight.load(Ordering::Relaxed);
        let reserved = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v < max).then_some(v + 1)
            })
            .is_ok();
        if !reserved {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The first drop and then every power of two: a diagnostic per drop would be a
            // flood of its own.
            if dropped.is_power_of_two() {
                log::warn!(
                    "{}: {dropped} dropped since the library loaded, the receiver is behind \
                     (max_in_flight {max})",
                    self.name
                );
            }
        }
        reserved
    }

    /// Sends the message `build` makes to the receiver, unless there is none (nothing is
    /// built) or too many are in flight (dropped and counted). Must not be called on a
    /// scheduler thread.
    pub fn send(&self, build: impl for<'a> FnOnce(Env<'a>) -> Term<'a>) {
        let Some(receiver) = self.receiver.read().ok().and_then(|r| *r) else {
            return;
        };
        if !self.reserve() {
            return;
        }
        // One env per thread, cleared by every send: allocating one per message costs more
        // than building a small message.
        let sent = ENV.with(|env| match env.try_borrow_mut() {
            Ok(mut env) => env.send_and_clear(&receiver, build).is_ok(),
            // Re-entered from `build` (a `__repr__` that logs): a fresh env.
            Err(_) => OwnedEnv::new().send_and_clear(&receiver, build).is_ok(),
        });
        if !sent {
            self.ack(1);
        }
    }
}

thread_local! {
    static ENV: RefCell<OwnedEnv> = RefCell::new(OwnedEnv::new());
}
