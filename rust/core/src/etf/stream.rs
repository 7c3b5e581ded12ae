//! [`Stream`]: writes a term's external format straight into one buffer as the conversion
//! rules produce it, children first (no tree of nodes, no allocation per term), for replies
//! that the caller decodes with `binary_to_term/2`. Any thread.
//!
//! The rules build a container's elements one after the other and then the container, so the
//! elements' bytes lie side by side at the end of the buffer when the container is made: its
//! header goes in front of them. [`Stream::open`], called before the first element, keeps
//! room for that header, so that nothing has to move; a container made without it (or whose
//! room went to an earlier one) gets its header inserted, which moves its elements' bytes.
//! Elements that are not side by side at the end make the stream [`Stream::finish`] with an
//! error: the caller then builds the term another way.
//!
//! What it writes differs from [`super::Writer`]'s bytes (tuples are always
//! `LARGE_TUPLE_EXT`, lists always `LIST_EXT`, map keys in the order given), not the term
//! `binary_to_term/2` makes of them.

use super::bignum::{put_big, put_int};
use super::error::{Error, Result};
use super::identity::canonical_identity;
use super::put::{len32, put_atom, put_binary, put_float};
use super::tag::{
    LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT, NEWER_REFERENCE_EXT, NEW_PID_EXT, NIL_EXT, VERSION,
};

/// The bytes a container's header takes here: its tag and a 32-bit count.
const HEADER: usize = 5;

/// Where a term's bytes lie in the stream's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    start: usize,
    end: usize,
}

/// Writes terms into one buffer; see the module's doc.
pub struct Stream {
    out: Vec<u8>,
    /// Offsets of the rooms kept by [`Stream::open`] and not yet taken.
    rooms: Vec<usize>,
    /// Set when elements were not side by side: [`Stream::finish`] fails.
    scattered: bool,
}

impl Default for Stream {
    fn default() -> Self {
        Self::new()
    }
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Stream {
            out: vec![VERSION],
            rooms: Vec::new(),
            scattered: false,
        }
    }

    fn from(&self, start: usize) -> Span {
        Span {
            start,
            end: self.out.len(),
        }
    }

    /// Marks the stream as failed (a term it cannot write): [`Stream::finish`] fails. A span
    /// to stand for the term meanwhile.
    pub fn scatter(&mut self) -> Span {
        self.scattered = true;
        self.from(self.out.len())
    }

    /// Keeps room for the header of the container whose elements come next.
    pub fn open(&mut self) {
        self.rooms.push(self.out.len());
        self.out.extend_from_slice(&[0; HEADER]);
    }

    /// An atom.
    pub fn atom(&mut self, name: &str) -> Span {
        let start = self.out.len();
        put_atom(&mut self.out, name);
        self.from(start)
    }

    /// An integer of 64 bits.
    pub fn int(&mut self, value: i64) -> Span {
        let start = self.out.len();
        put_int(&mut self.out, value);
        self.from(start)
    }

    /// An integer from its sign and little-endian magnitude (no trailing zeros, and too big
    /// for 64 bits).
    pub fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<Span> {
        let start = self.out.len();
        put_big(&mut self.out, negative, magnitude_le)?;
        Ok(self.from(start))
    }

    /// A finite float.
    pub fn float(&mut self, value: f64) -> Span {
        let start = self.out.len();
        put_float(&mut self.out, value);
        self.from(start)
    }

    /// A binary holding a copy of `bytes`.
    pub fn binary(&mut self, bytes: &[u8]) -> Result<Span> {
        let start = self.out.len();
        put_binary(&mut self.out, bytes)?;
        Ok(self.from(start))
    }

    /// A pid from its external-format bytes (any encoding).
    pub fn pid(&mut self, etf: &[u8]) -> Result<Span> {
        self.identity(etf, NEW_PID_EXT, "not a pid")
    }

    /// A reference from its external-format bytes (any encoding).
    pub fn reference(&mut self, etf: &[u8]) -> Result<Span> {
        self.identity(etf, NEWER_REFERENCE_EXT, "not a reference")
    }

    fn identity(&mut self, etf: &[u8], tag: u8, what: &'static str) -> Result<Span> {
        let canonical = canonical_identity(etf)?;
        if canonical.get(1) != Some(&tag) {
            return Err(Error::Invalid(what));
        }
        let start = self.out.len();
        self.out.extend_from_slice(&canonical[1..]);
        Ok(self.from(start))
    }

    /// A list of the floats `values` (all finite).
    pub fn float_list(&mut self, values: &[f64]) -> Result<Span> {
        let start = self.out.len();
        self.list_header(values.len())?;
        self.out.reserve(values.len() * 9 + 1);
        for &v in values {
            put_float(&mut self.out, v);
        }
        self.out.push(NIL_EXT);
        Ok(self.from(start))
    }

    /// A list of the integers `values`.
    pub fn int_list(&mut self, values: &[i64]) -> Result<Span> {
        let start = self.out.len();
        self.list_header(values.len())?;
        for &v in values {
            put_int(&mut self.out, v);
        }
        self.out.push(NIL_EXT);
        Ok(self.from(start))
    }

    fn list_header(&mut self, len: usize) -> Result<()> {
        if len > 0 {
            let count = len32(len)?;
            self.out.push(LIST_EXT);
            self.out.extend_from_slice(&count);
        }
        Ok(())
    }

    /// A proper list of `items`.
    pub fn list(&mut self, items: &[Span]) -> Result<Span> {
        let content = self.content(items.iter().copied());
        if items.is_empty() {
            // `[]` is NIL_EXT alone: give back the room, if this list had one.
            let start = match self.take_room(content) {
                Some(room) => {
                    self.out.truncate(room);
                    room
                }
                None => content,
            };
            self.out.push(NIL_EXT);
            return Ok(self.from(start));
        }
        let start = self.header(content, LIST_EXT, items.len())?;
        self.out.push(NIL_EXT);
        Ok(self.from(start))
    }

    /// A tuple of `items`.
    pub fn tuple(&mut self, items: &[Span]) -> Result<Span> {
        let content = self.content(items.iter().copied());
        let start = self.header(content, LARGE_TUPLE_EXT, items.len())?;
        Ok(self.from(start))
    }

    /// A map of `pairs`; fails with [`Error::DuplicateKey`] when two keys are the same term
    /// (the same bytes: every term is written one way only here).
    pub fn map(&mut self, pairs: &[(Span, Span)]) -> Result<Span> {
        let content = self.content(pairs.iter().flat_map(|&(k, v)| [k, v]));
        if !self.scattered {
            let mut keys: Vec<&[u8]> = pairs
                .iter()
                .map(|&(k, _)| &self.out[k.start..k.end])
                .collect();
            keys.sort_unstable();
            if keys.windows(2).any(|pair| pair[0] == pair[1]) {
                return Err(Error::DuplicateKey);
            }
        }
        let start = self.header(content, MAP_EXT, pairs.len())?;
        Ok(self.from(start))
    }

    /// Where the bytes of `items` begin, when they lie side by side at the end of the buffer
    /// (the end itself for no items); otherwise the stream is marked scattered.
    fn content(&mut self, mut items: impl Iterator<Item = Span>) -> usize {
        let Some(first) = items.next() else {
            return self.out.len();
        };
        let mut end = first.end;
        for item in items {
            if item.start != end {
                self.scattered = true;
            }
            end = item.end;
        }
        if end != self.out.len() {
            self.scattered = true;
        }
        first.start
    }

    /// The room kept right before `content`, taken.
    fn take_room(&mut self, content: usize) -> Option<usize> {
        match self.rooms.last() {
            Some(&room) if room + HEADER == content => {
                self.rooms.pop();
                Some(room)
            }
            _ => None,
        }
    }

    /// Writes a header of `tag` and `count` in front of the bytes from `content` on, in the
    /// room kept for it or by moving them; the offset of the header.
    fn header(&mut self, content: usize, tag: u8, count: usize) -> Result<usize> {
        let count = len32(count)?;
        let header = [tag, count[0], count[1], count[2], count[3]];
        if self.scattered {
            return Ok(content);
        }
        match self.take_room(content) {
            Some(room) => {
                self.out[room..content].copy_from_slice(&header);
                Ok(room)
            }
            None => {
                self.out.splice(content..content, header);
                Ok(content)
            }
        }
    }

    /// The bytes of `root` (with the version byte), which must be the last term made and take
    /// the whole buffer; fails when elements were not side by side.
    pub fn finish(self, root: Span) -> Result<Vec<u8>> {
        if self.scattered || !self.rooms.is_empty() || root.start != 1 || root.end != self.out.len()
        {
            return Err(Error::Invalid("terms not written in order"));
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::format;

    fn text(stream: Stream, root: Span) -> String {
        format(&stream.finish(root).unwrap(), 100).unwrap()
    }

    #[test]
    fn containers_with_rooms() {
        let mut s = Stream::new();
        s.open();
        let a = s.int(1);
        s.open();
        let empty = s.list(&[]).unwrap();
        s.open();
        let k = s.binary(b"k").unwrap();
        let v = s.float(1.5);
        let map = s.map(&[(k, v)]).unwrap();
        s.open();
        let tuple = s.tuple(&[]).unwrap();
        let root = s.list(&[a, empty, map, tuple]).unwrap();
        assert_eq!(text(s, root), "[1,[],#{<<\"k\">> => 1.5},{}]");
    }

    #[test]
    fn containers_without_rooms_move_their_elements() {
        let mut s = Stream::new();
        s.open();
        // The first element of the outer list takes its room; the outer list then moves.
        let a = s.atom("x");
        let inner = s.tuple(&[a]).unwrap();
        let b = s.int(300);
        let empty = s.list(&[]).unwrap();
        let ints = s.int_list(&[1, -1, 1 << 40]).unwrap();
        let floats = s.float_list(&[]).unwrap();
        let root = s.list(&[inner, b, empty, ints, floats]).unwrap();
        assert_eq!(text(s, root), "[{x},300,[],[1,-1,1099511627776],[]]");
    }

    #[test]
    fn elements_out_of_order_fail() {
        let mut s = Stream::new();
        let a = s.int(1);
        let b = s.int(2);
        let root = s.list(&[b, a]).unwrap();
        assert!(s.finish(root).is_err());

        let mut s = Stream::new();
        let a = s.int(1);
        let _unused = s.int(2);
        let root = s.list(&[a]).unwrap();
        assert!(s.finish(root).is_err());

        // A room never taken.
        let mut s = Stream::new();
        s.open();
        let root = s.int(1);
        assert!(s.finish(root).is_err());
    }

    #[test]
    fn equal_keys_are_refused() {
        let mut s = Stream::new();
        let k1 = s.binary(b"a").unwrap();
        let v1 = s.int(1);
        let k2 = s.binary(b"a").unwrap();
        let v2 = s.int(2);
        assert!(matches!(
            s.map(&[(k1, v1), (k2, v2)]),
            Err(Error::DuplicateKey)
        ));
    }
}
