//! [`Cursor`]: reads the fields of terms from ETF bytes. Every read is checked against the end
//! of the input, so truncated or garbage bytes are an [`Error::Malformed`], never a panic.
//! Any thread.

use std::borrow::Cow;

use super::error::{Error, Result};
use super::tag::{
    ATOM_CACHE_REF, ATOM_EXT, ATOM_UTF8_EXT, NEW_FLOAT_EXT, SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT,
    VERSION,
};

/// A position in ETF bytes.
#[derive(Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor on byte `pos` of `buf`.
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Cursor { buf, pos }
    }

    /// A cursor after the version byte of an encoded term (`term_to_binary` output).
    pub fn after_version(data: &'a [u8]) -> Result<Self> {
        let mut cur = Cursor::new(data, 0);
        match cur.u8() {
            Ok(VERSION) => Ok(cur),
            Ok(_) => Err(cur.bad_at(0, "missing version byte 131")),
            Err(_) => Err(cur.bad_at(0, "empty input")),
        }
    }

    /// Reads one whole encoded term with `read` (given a cursor after the tag, and the tag):
    /// the version byte first, nothing after.
    pub fn read_whole<T>(
        data: &'a [u8],
        read: impl FnOnce(&mut Cursor<'a>, u8) -> Result<T>,
    ) -> Result<T> {
        let mut cur = Cursor::after_version(data)?;
        let tag = cur.u8()?;
        let value = read(&mut cur, tag)?;
        cur.finish()?;
        Ok(value)
    }

    /// Fails unless every byte was read (`term_to_binary` writes exactly one term).
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes after the term"))
        }
    }

    /// The offset of the next byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// A malformed-input error at the cursor.
    pub fn bad(&self, what: &'static str) -> Error {
        Error::Malformed { at: self.pos, what }
    }

    /// A malformed-input error at byte `at`.
    pub fn bad_at(&self, at: usize, what: &'static str) -> Error {
        Error::Malformed { at, what }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| self.bad("truncated"))?;
        self.pos += n;
        Ok(bytes)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.bad("truncated"))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian 16-bit length.
    pub fn u16(&mut self) -> Result<usize> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    /// A big-endian 32-bit word.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian 32-bit length.
    pub fn len32(&mut self) -> Result<usize> {
        usize::try_from(self.u32()?).map_err(|_| self.bad("length too large"))
    }

    /// An atom in any of its four encodings. Erlang atoms have at most 255 characters.
    pub fn atom(&mut self) -> Result<Cow<'a, str>> {
        let tag = self.u8()?;
        self.atom_after(tag)
    }

    /// An atom whose tag byte `tag` was just read.
    pub fn atom_after(&mut self, tag: u8) -> Result<Cow<'a, str>> {
        let at = self.pos.saturating_sub(1);
        let (len, utf8) = match tag {
            ATOM_UTF8_EXT => (self.u16()?, true),
            SMALL_ATOM_UTF8_EXT => (usize::from(self.u8()?), true),
            ATOM_EXT => (self.u16()?, false),
            SMALL_ATOM_EXT => (usize::from(self.u8()?), false),
            ATOM_CACHE_REF => return Err(self.bad_at(at, "atom cache references need a node")),
            _ => return Err(self.bad_at(at, "expected an atom")),
        };
        let bytes = self.take(len)?;
        let name = if utf8 || bytes.is_ascii() {
            Cow::Borrowed(
                std::str::from_utf8(bytes)
                    .map_err(|_| self.bad_at(at, "atom is not valid UTF-8"))?,
            )
        } else {
            // Latin-1: each byte is the code point.
            Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
        };
        if name.chars().count() > 255 {
            return Err(self.bad_at(at, "atom longer than 255 characters"));
        }
        Ok(name)
    }

    /// A float after its tag (`NEW_FLOAT_EXT`, or the 31 bytes of text of `FLOAT_EXT`). Erlang
    /// has no NaN or infinity: such bit patterns are malformed.
    pub fn float(&mut self, tag: u8) -> Result<f64> {
        let at = self.pos;
        let value = if tag == NEW_FLOAT_EXT {
            f64::from_be_bytes(self.array()?)
        } else {
            let text = self.take(31)?;
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .ok_or_else(|| self.bad_at(at, "float text is not a number"))?
        };
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.bad_at(at, "float is not finite"))
        }
    }
}
