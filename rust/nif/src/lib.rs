//! `py_nif`: CPython embedded in the BEAM. This file only declares the modules; the module map
//! and the life of a call are in `docs/architecture.md`.
//!
//! Layers, each depending only on those above it:
//! - leaves: [`atoms`], [`error`], [`interp`] (interpreter start-up and the raw C API: with
//!   `subinterp::ffi`, the only `unsafe`), [`outbox`], [`diag`];
//! - [`bridge`]: the one module that converts between rustler terms and Python objects;
//! - [`executor`]: jobs, executor threads, pools and contexts;
//! - [`callback`], [`log`], [`trace`]: the BEAM backends of core's `erlang.call`, logging and
//!   tracing; [`native`] and [`setup`]: the `erlang._native` module and what runs after init;
//! - [`subinterp`]: the pool of own-GIL sub-interpreters (its `ffi` holds its `unsafe`);
//! - [`nifs`]: the NIF functions, decoding and checking their arguments; [`load`].

mod atoms;
mod bridge;
mod callback;
mod diag;
mod error;
mod executor;
mod interp;
mod load;
mod log;
mod mailbox;
mod native;
mod nifs;
mod outbox;
mod setup;
mod subinterp;
mod trace;

rustler::init!("py_nif", load = load::load);
