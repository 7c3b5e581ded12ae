//! The one bignum codec: `SMALL_BIG_EXT` / `LARGE_BIG_EXT` read and written as a sign and a
//! little-endian magnitude (the form Python's `int.from_bytes(b, "little")` takes), and
//! printed in decimal; and [`put_int`], any 64-bit integer in its smallest encoding. Any
//! thread.

use std::fmt::Write as _;

use super::cursor::Cursor;
use super::error::Result;
use super::put::len32;
use super::tag::{INTEGER_EXT, LARGE_BIG_EXT, SMALL_BIG_EXT, SMALL_INTEGER_EXT, VERSION};

impl<'a> Cursor<'a> {
    /// Sign and little-endian magnitude of a bignum, after its tag. Like erts, any non-zero
    /// sign byte means negative. The magnitude is as stored (it may fit in 64 bits, and may
    /// end in zero bytes).
    pub fn bignum(&mut self, tag: u8) -> Result<(bool, &'a [u8])> {
        let len = match tag {
            SMALL_BIG_EXT => usize::from(self.u8()?),
            LARGE_BIG_EXT => self.len32()?,
            _ => return Err(self.bad_at(self.pos().saturating_sub(1), "expected a bignum")),
        };
        let negative = self.u8()? != 0;
        Ok((negative, self.take(len)?))
    }
}

/// Decodes an encoded bignum (`term_to_binary(1 bsl 64)`) to `(negative, little-endian
/// magnitude)`.
pub fn decode_bignum(etf: &[u8]) -> Result<(bool, &[u8])> {
    Cursor::read_whole(etf, |cur, tag| cur.bignum(tag))
}

/// Encodes `(negative, little-endian magnitude)` as a bignum term (with the version byte), as
/// `term_to_binary` writes it: `SMALL_BIG_EXT` up to 255 bytes of magnitude.
pub fn encode_bignum(negative: bool, magnitude_le: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(magnitude_le.len() + 7);
    out.push(VERSION);
    put_big(&mut out, negative, magnitude_le)?;
    Ok(out)
}

/// Writes a bignum term (no version byte).
pub(super) fn put_big(out: &mut Vec<u8>, negative: bool, magnitude_le: &[u8]) -> Result<()> {
    match u8::try_from(magnitude_le.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_BIG_EXT, len]),
        Err(_) => {
            out.push(LARGE_BIG_EXT);
            out.extend_from_slice(&len32(magnitude_le.len())?);
        }
    }
    out.push(u8::from(negative));
    out.extend_from_slice(magnitude_le);
    Ok(())
}

/// The value of a bignum when it fits in 64 bits.
pub fn small_int(negative: bool, magnitude_le: &[u8]) -> Option<i64> {
    let digits = trim_magnitude(magnitude_le);
    if digits.len() > 8 {
        return None;
    }
    let mut word = [0u8; 8];
    word[..digits.len()].copy_from_slice(digits);
    let value = u64::from_le_bytes(word);
    if negative {
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// A little-endian magnitude without its most significant zero bytes.
pub fn trim_magnitude(magnitude_le: &[u8]) -> &[u8] {
    let len = magnitude_le
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    &magnitude_le[..len]
}

/// Decimal digits of a little-endian magnitude (repeated division by 10^9 on 32-bit limbs;
/// quadratic, so callers bound the length).
pub(super) fn decimal(magnitude_le: &[u8]) -> String {
    let mut limbs: Vec<u32> = magnitude_le
        .chunks(4)
        .map(|c| {
            let mut word = [0u8; 4];
            word[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(word)
        })
        .collect();
    let mut chunks = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut text = String::new();
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if i == 0 {
            let _ = write!(text, "{chunk}");
        } else {
            let _ = write!(text, "{chunk:09}");
        }
    }
    text
}

/// An integer in its smallest encoding.
#[inline]
pub fn put_int(out: &mut Vec<u8>, value: i64) {
    if let Ok(small) = u8::try_from(value) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, small]);
    } else if let Ok(word) = i32::try_from(value) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&word.to_be_bytes());
    } else {
        let magnitude = value.unsigned_abs().to_le_bytes();
        // Cannot fail: at most 8 bytes.
        let _ = put_big(out, value < 0, trim_magnitude(&magnitude));
    }
}
