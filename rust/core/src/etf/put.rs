//! Write primitives shared by the bignum, identity and term writers: length fields and
//! atoms. Any thread.

use super::error::{Error, Result};
use super::tag::{ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT};

/// A 32-bit big-endian length field; fails past `u32::MAX`.
pub(super) fn len32(len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::Invalid("too large for the external term format"))
}

/// An atom as OTP 26 writes it (UTF-8). Atoms have at most 255 characters, so at most 1020
/// bytes.
pub(super) fn put_atom(out: &mut Vec<u8>, name: &str) {
    match u8::try_from(name.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, len]),
        Err(_) => {
            out.push(ATOM_UTF8_EXT);
            out.extend_from_slice(&(name.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(name.as_bytes());
}
