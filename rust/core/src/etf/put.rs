//! Write primitives shared by the bignum, identity and term writers ([`super::Writer`] and
//! [`super::Stream`], and the NIF's encoder of call arguments): length fields, atoms, floats
//! and binaries (integers: [`super::put_int`]). Any thread.

use super::error::{Error, Result};
use super::tag::{ATOM_UTF8_EXT, BINARY_EXT, NEW_FLOAT_EXT, SMALL_ATOM_UTF8_EXT};

/// A 32-bit big-endian length field; fails past `u32::MAX`.
pub fn len32(len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::Invalid("too large for the external term format"))
}

/// An atom as OTP 26 writes it (UTF-8). Atoms have at most 255 characters, so at most 1020
/// bytes.
pub fn put_atom(out: &mut Vec<u8>, name: &str) {
    match u8::try_from(name.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, len]),
        Err(_) => {
            out.push(ATOM_UTF8_EXT);
            out.extend_from_slice(&(name.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(name.as_bytes());
}

/// A float (`NEW_FLOAT_EXT`; Erlang floats are finite).
#[inline]
pub fn put_float(out: &mut Vec<u8>, value: f64) {
    out.push(NEW_FLOAT_EXT);
    out.extend_from_slice(&value.to_be_bytes());
}

/// A binary holding a copy of `bytes`; fails past 4 GiB.
#[inline]
pub fn put_binary(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = len32(bytes.len())?;
    out.push(BINARY_EXT);
    out.extend_from_slice(&len);
    out.extend_from_slice(bytes);
    Ok(())
}
