//! Rust-side diagnostics of the NIF: the `log` crate's records (from this crate and from core)
//! become `{py_nif_log, Level, Target, Message}` messages to the registered receiver
//! (`py_logger`, which hands them to OTP `logger`).
//!
//! A record may be logged on any thread, a scheduler thread included, where an `OwnedEnv`
//! cannot send; so records go through a bounded channel to the `py-diagnostics` thread (started
//! on first use), which sends them. Without a receiver, or past [`QUEUE`] records waiting, they
//! are dropped. Diagnostics are rare events (start-up, failures), never per call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use crossbeam_channel::{Receiver, Sender};
use log::{Level, LevelFilter, Log, Metadata, Record};
use rustler::{Encoder, LocalPid, OwnedEnv};

use crate::atoms;

/// Records waiting for the sender thread at most.
const QUEUE: usize = 1024;

static RECEIVER: RwLock<Option<LocalPid>> = RwLock::new(None);
static QUEUED: OnceLock<Sender<(Level, String, String)>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

struct BeamLogger;

static LOGGER: BeamLogger = BeamLogger;

impl Log for BeamLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) || receiver().is_none() {
            return;
        }
        let item = (
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        );
        if queue().try_send(item).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Makes the `log` crate report to the BEAM (once per OS process; a logger another library
/// installed first is kept). Nothing is sent before [`set_receiver`].
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Sets (or clears) the receiver and the most verbose level that is sent.
pub fn set_receiver(pid: Option<LocalPid>, level: LevelFilter) {
    if let Ok(mut receiver) = RECEIVER.write() {
        *receiver = pid;
    }
    log::set_max_level(level);
}

/// Records dropped because the queue was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn receiver() -> Option<LocalPid> {
    RECEIVER.read().ok().and_then(|r| *r)
}

fn queue() -> &'static Sender<(Level, String, String)> {
    QUEUED.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        // Without the thread the queue fills up and records are dropped (and counted).
        let _ = std::thread::Builder::new()
            .name("py-diagnostics".into())
            .spawn(move || send_all(&rx));
        tx
    })
}

fn send_all(rx: &Receiver<(Level, String, String)>) {
    let mut env = OwnedEnv::new();
    for (level, target, message) in rx {
        let Some(pid) = receiver() else {
            continue;
        };
        let level = match level {
            Level::Error => atoms::error(),
            Level::Warn => atoms::warning(),
            Level::Info => atoms::info(),
            Level::Debug | Level::Trace => atoms::debug(),
        };
        let _ = env.send_and_clear(&pid, |env| {
            (
                atoms::py_nif_log(),
                level,
                target.as_str(),
                message.as_str(),
            )
                .encode(env)
        });
    }
}
