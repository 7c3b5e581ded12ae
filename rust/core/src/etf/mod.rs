//! Erlang's external term format (ETF, what `term_to_binary/1` writes) on plain bytes, with no
//! Python: the bottom of this crate, which every other module that reads or writes ETF uses.
//!
//! - [`Cursor`] reads the fields of one term; [`Index`] indexes every term of an input in one
//!   iterative pass and shows each as a [`Term`]: the one reader.
//! - [`Writer`] builds a term bottom-up and writes the bytes `term_to_binary` writes.
//! - [`decode_bignum`] / [`encode_bignum`] (with [`Cursor::bignum`]): the one bignum codec.
//! - [`PidParts`] / [`RefParts`] (with [`Cursor::pid`], [`Cursor::reference`]): pids and
//!   references, their one canonical encoding ([`canonical_identity`]) and their text
//!   ([`describe_pid`], [`describe_ref`]).
//! - [`format`]: the one term printer (Erlang syntax).
//!
//! Errors are this module's own [`Error`], which the crate turns into its `Error` in one
//! place. Input is never trusted: malformed bytes are an error, never a panic, a deep
//! recursion or an allocation the input cannot back. Pure functions over bytes: any thread,
//! no GIL.

mod bignum;
mod cursor;
mod error;
mod identity;
mod index;
mod printer;
pub mod put;
mod stream;
pub mod tag;
mod writer;

pub use bignum::{decode_bignum, encode_bignum, put_int, small_int, trim_magnitude};
pub use cursor::Cursor;
pub use error::{Error, Result};
pub use identity::{
    canonical_identity, describe_pid, describe_ref, is_pid, is_ref, PidParts, RefParts,
};
pub use index::{skip_term, Index, Slot, Term};
pub use printer::format;
pub use stream::{Span, Stream};
pub use tag::VERSION;
pub use writer::Writer;

/// Decodes an encoded atom (`term_to_binary('日本')`, any of the four atom encodings) to its
/// name.
pub fn decode_atom(etf: &[u8]) -> Result<String> {
    Cursor::read_whole(etf, |cur, tag| cur.atom_after(tag)).map(|name| name.into_owned())
}
