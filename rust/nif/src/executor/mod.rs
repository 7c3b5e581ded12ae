//! Executor threads and the jobs they run (docs/architecture.md, "The life of a call").
//!
//! - [`job`]: the job state machine and the typed [`Request`] that carries a job to an
//!   executor;
//! - [`slot`]: one executor thread as others see it (current job, private channel, interrupt,
//!   interruptible sleep);
//! - [`monitor`]: how a free-threaded build's executor stops itself at a safe point
//!   (`sys.monitoring`);
//! - [`pool`]: pools of executor threads, contexts checked out of them, the threads' loop;
//! - [`fair`]: on GIL builds, which executor takes the GIL next and which queued request an
//!   executor takes next;
//! - [`run`]: running one request and replying;
//! - [`python`]: the Python side of a request (namespaces, lookup, compiled code);
//! - [`aio`]: jobs finished on the asyncio loop (`py:async_call`).
//!
//! Dependencies point down this list's reverse: `pool -> run -> aio -> job -> python`,
//! `pool -> fair`, `run -> fair`, `slot -> job`, `slot -> monitor`; nothing here depends on the
//! NIF functions or on the callback machinery.

pub mod aio;
pub mod fair;
pub mod job;
pub mod monitor;
pub mod pool;
pub mod python;
pub mod run;
pub mod slot;

pub use job::{Body, CancelOutcome, JobInner, JobResource, Request, Target};
pub use pool::{Context, Pool};
pub use run::copy_running_reference;
pub use slot::{current_job, current_slot, Slot, SlotMessage};
