//! The parts of Erlang's external term format (ETF) the conversion rules need.
//!
//! Pids and references are carried through Python as their ETF bytes: that keeps them opaque,
//! hashable and exactly reversible, on any node. Bignums and atoms that a NIF cannot read
//! directly (non-Latin-1 atoms on OTP 25) are decoded from ETF too. Pure functions, any thread.

use crate::error::{Error, Result};

pub use crate::ext::tag::VERSION;
use crate::ext::tag::{
    ATOM_EXT, ATOM_UTF8_EXT, LARGE_BIG_EXT, NEWER_REFERENCE_EXT, NEW_PID_EXT, NEW_REFERENCE_EXT,
    PID_EXT, SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT, SMALL_BIG_EXT,
};

/// A cursor over ETF bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::BadExternalTerm("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads an atom (any of the four atom encodings) as a `String`.
    fn atom(&mut self) -> Result<String> {
        let tag = self.u8()?;
        let (len, utf8) = match tag {
            ATOM_UTF8_EXT => (self.u16()?, true),
            SMALL_ATOM_UTF8_EXT => (usize::from(self.u8()?), true),
            ATOM_EXT => (self.u16()?, false),
            SMALL_ATOM_EXT => (usize::from(self.u8()?), false),
            _ => return Err(Error::BadExternalTerm("expected an atom")),
        };
        let bytes = self.take(len)?;
        if utf8 {
            String::from_utf8(bytes.to_vec()).map_err(|_| Error::BadExternalTerm("atom not UTF-8"))
        } else {
            Ok(bytes.iter().map(|&b| char::from(b)).collect())
        }
    }
}

fn body(etf: &[u8]) -> Result<Reader<'_>> {
    match etf.split_first() {
        Some((&VERSION, rest)) => Ok(Reader { buf: rest }),
        _ => Err(Error::BadExternalTerm("missing version byte")),
    }
}

/// Decodes an encoded atom (as produced by `term_to_binary`) to its name.
pub fn decode_atom(etf: &[u8]) -> Result<String> {
    body(etf)?.atom()
}

/// Decodes an encoded bignum to `(negative, little-endian magnitude)`.
pub fn decode_bignum(etf: &[u8]) -> Result<(bool, &[u8])> {
    let mut r = body(etf)?;
    let n = match r.u8()? {
        SMALL_BIG_EXT => usize::from(r.u8()?),
        LARGE_BIG_EXT => r.u32()? as usize,
        _ => return Err(Error::BadExternalTerm("expected a bignum")),
    };
    let negative = r.u8()? != 0;
    Ok((negative, r.take(n)?))
}

/// Encodes `(negative, little-endian magnitude)` as an ETF bignum.
pub fn encode_bignum(negative: bool, magnitude_le: &[u8]) -> Result<Vec<u8>> {
    let n = u32::try_from(magnitude_le.len()).map_err(|_| Error::BadExternalTerm("too large"))?;
    let mut out = Vec::with_capacity(magnitude_le.len() + 7);
    out.push(VERSION);
    out.push(LARGE_BIG_EXT);
    out.extend_from_slice(&n.to_be_bytes());
    out.push(u8::from(negative));
    out.extend_from_slice(magnitude_le);
    Ok(out)
}

/// `<node.id.serial>`-style text for an encoded pid, e.g. `<0.85.0>@nonode@nohost`.
pub fn describe_pid(etf: &[u8]) -> Result<String> {
    let mut r = body(etf)?;
    let tag = r.u8()?;
    if tag != NEW_PID_EXT && tag != PID_EXT {
        return Err(Error::BadExternalTerm("expected a pid"));
    }
    let node = r.atom()?;
    let id = r.u32()?;
    let serial = r.u32()?;
    Ok(format!("<{id}.{serial}>@{node}"))
}

/// `#Ref<...>`-style text for an encoded reference.
pub fn describe_ref(etf: &[u8]) -> Result<String> {
    let mut r = body(etf)?;
    let tag = r.u8()?;
    if tag != NEWER_REFERENCE_EXT && tag != NEW_REFERENCE_EXT {
        return Err(Error::BadExternalTerm("expected a reference"));
    }
    let len = r.u16()?;
    let node = r.atom()?;
    if tag == NEWER_REFERENCE_EXT {
        r.u32()?;
    } else {
        r.u8()?;
    }
    let mut ids = Vec::with_capacity(len);
    for _ in 0..len {
        ids.push(r.u32()?.to_string());
    }
    ids.reverse();
    Ok(format!("#Ref<{}>@{node}", ids.join(".")))
}

/// True when the bytes encode a pid.
pub fn is_pid(etf: &[u8]) -> bool {
    matches!(etf, [VERSION, NEW_PID_EXT | PID_EXT, ..])
}

/// True when the bytes encode a reference.
pub fn is_ref(etf: &[u8]) -> bool {
    matches!(etf, [VERSION, NEWER_REFERENCE_EXT | NEW_REFERENCE_EXT, ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bignum_round_trip() {
        let etf = encode_bignum(true, &[1, 2, 3]).unwrap();
        assert_eq!(decode_bignum(&etf).unwrap(), (true, &[1u8, 2, 3][..]));
    }

    #[test]
    fn small_big_decodes() {
        // term_to_binary(1 bsl 64) = <<131,110,9,0,0,0,0,0,0,0,0,0,1>>
        let etf = [131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let (neg, mag) = decode_bignum(&etf).unwrap();
        assert!(!neg);
        assert_eq!(mag, &[0, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn atoms_decode_in_all_encodings() {
        // term_to_binary('日本') on OTP 25
        let etf = [131, 119, 6, 230, 151, 165, 230, 156, 172];
        assert_eq!(decode_atom(&etf).unwrap(), "日本");
        assert_eq!(decode_atom(&[131, 115, 1, 0xE9]).unwrap(), "é");
        assert_eq!(decode_atom(&[131, 100, 0, 1, b'a']).unwrap(), "a");
    }

    #[test]
    fn pid_and_ref_describe() {
        // term_to_binary(c:pid(0,85,0)) on nonode@nohost
        let mut pid = vec![131, 88, 119, 13];
        pid.extend_from_slice(b"nonode@nohost");
        pid.extend_from_slice(&[0, 0, 0, 85, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(is_pid(&pid));
        assert_eq!(describe_pid(&pid).unwrap(), "<85.0>@nonode@nohost");
        let mut r = vec![131, 90, 0, 2, 119, 1, b'n', 0, 0, 0, 0];
        r.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        assert!(is_ref(&r));
        assert_eq!(describe_ref(&r).unwrap(), "#Ref<2.1>@n");
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(decode_bignum(&[]).is_err());
        assert!(decode_bignum(&[131, 111, 0, 0, 0, 9, 0, 1]).is_err());
        assert!(describe_pid(&[131, 88]).is_err());
        assert!(decode_atom(&[131, 118, 0, 2, 0xff, 0xfe]).is_err());
    }
}
