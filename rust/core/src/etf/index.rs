//! [`Index`]: the one reader of whole terms. One iterative pass indexes every term of the input
//! before anything looks at it, so truncated, garbage or hostile input is an
//! [`Error::Malformed`] (never a panic, never a deep recursion, never an allocation the input
//! cannot back); then [`Index::term`] shows any term as a [`Term`]. Any thread.

use std::borrow::Cow;
use std::collections::HashSet;

use super::bignum::{small_int, trim_magnitude};
use super::cursor::Cursor;
use super::error::{Error, Result};
use super::identity::{PidParts, RefParts};
use super::tag::*;

/// One term of the input: where it starts, and how many terms its subtree holds (itself
/// included). Terms are in pre-order, so a subtree is a contiguous run of the index and of the
/// bytes, and the next sibling of term `i` is term `i + size`.
#[derive(Clone, Copy)]
struct Node {
    offset: usize,
    size: usize,
}

/// Every term of one encoded term, indexed.
pub struct Index<'a> {
    buf: &'a [u8],
    nodes: Vec<Node>,
    /// Where the whole term ends.
    end: usize,
}

/// A term of the input: an indexed term, or one element of a `STRING_EXT` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Term number `n` of the index.
    Node(usize),
    /// An integer 0..=255, element of a string.
    Char(u8),
}

/// What a term is, with its fields read.
#[derive(Debug, Clone, PartialEq)]
pub enum Term<'a> {
    /// `SMALL_INTEGER_EXT`, `INTEGER_EXT`, or an element of a string.
    Int(i64),
    /// A bignum, as stored: it may fit in 64 bits ([`super::small_int`]) and its magnitude may
    /// end in zero bytes ([`super::trim_magnitude`]).
    Big {
        /// Any non-zero sign byte.
        negative: bool,
        /// Magnitude, least significant byte first.
        magnitude_le: &'a [u8],
    },
    /// A float (never NaN or infinite).
    Float(f64),
    /// An atom, by name.
    Atom(Cow<'a, str>),
    /// A binary.
    Binary(&'a [u8]),
    /// A bitstring (`BIT_BINARY_EXT`): `bits` (1..=8) bits of the last byte are used.
    BitBinary {
        /// The bytes, the last one partly used.
        bytes: &'a [u8],
        /// Used bits of the last byte.
        bits: u8,
    },
    /// A list: its elements, and its final tail when that is not `[]`. A tail that is itself a
    /// list continues the list, as Erlang decodes it.
    List {
        /// The elements.
        items: Vec<Slot>,
        /// The tail of an improper list.
        tail: Option<Slot>,
    },
    /// A tuple.
    Tuple(Vec<Slot>),
    /// A map's key/value pairs, in encoding order.
    Map(Vec<(Slot, Slot)>),
    /// A pid.
    Pid(PidParts<'a>),
    /// A reference.
    Ref(RefParts<'a>),
    /// A port.
    Port {
        /// The node's name.
        node: Cow<'a, str>,
        /// The port number.
        id: u64,
    },
    /// `fun M:F/A`.
    Export {
        /// The module term.
        module: Slot,
        /// The function term.
        function: Slot,
        /// The arity term.
        arity: Slot,
    },
    /// A closure (`NEW_FUN_EXT`, `FUN_EXT`).
    Fun,
}

impl<'a> Index<'a> {
    /// Indexes every term of `data` (version byte first, nothing after the term) in one pass
    /// with an explicit stack: no recursion, and no term is trusted before its bytes are there.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        let mut cur = Cursor::after_version(data)?;
        let mut nodes = Vec::new();
        // (term, children still to read)
        let mut open: Vec<(usize, u64)> = Vec::new();
        loop {
            let me = nodes.len();
            nodes.push(Node {
                offset: cur.pos(),
                size: 1,
            });
            let children = skip_header(&mut cur)?;
            if children > 0 {
                // Every term takes at least one byte: refuse counts the input cannot hold
                // before anything is reserved for them.
                if children > cur.remaining() as u64 {
                    return Err(cur.bad("truncated (more elements than bytes)"));
                }
                open.push((me, children));
                continue;
            }
            // A complete term: close every container it completes.
            loop {
                let Some((parent, left)) = open.last_mut() else {
                    cur.finish()?;
                    return Ok(Index {
                        buf: data,
                        nodes,
                        end: cur.pos(),
                    });
                };
                *left -= 1;
                if *left > 0 {
                    break;
                }
                let parent = *parent;
                open.pop();
                let size = nodes.len() - parent;
                if let Some(node) = nodes.get_mut(parent) {
                    node.size = size;
                }
            }
        }
    }

    /// The whole term.
    pub fn root(&self) -> Slot {
        Slot::Node(0)
    }

    /// Where the term at `slot` starts (for error messages; a string element reports the end).
    pub fn offset(&self, slot: Slot) -> usize {
        match slot {
            Slot::Node(n) => self.nodes.get(n).map_or(self.end, |node| node.offset),
            Slot::Char(_) => self.end,
        }
    }

    fn node(&self, n: usize) -> Result<Node> {
        self.nodes.get(n).copied().ok_or(Error::Malformed {
            at: self.end,
            what: "index out of range",
        })
    }

    /// A cursor on the tag of term `n`.
    fn cursor(&self, n: usize) -> Result<Cursor<'a>> {
        Ok(Cursor::new(self.buf, self.node(n)?.offset))
    }

    /// The `count` children of term `n`, in order.
    fn children(&self, n: usize, count: usize) -> Result<Vec<Slot>> {
        let mut out = Vec::with_capacity(count.min(self.nodes.len()));
        let mut child = n + 1;
        for _ in 0..count {
            out.push(Slot::Node(child));
            child += self.node(child)?.size;
        }
        Ok(out)
    }

    /// The bytes of the subtree of term `n`.
    fn raw(&self, n: usize) -> Result<&'a [u8]> {
        let node = self.node(n)?;
        let end = match self.nodes.get(n + node.size) {
            Some(next) => next.offset,
            None => self.end,
        };
        self.buf.get(node.offset..end).ok_or(Error::Malformed {
            at: node.offset,
            what: "index out of range",
        })
    }

    fn tag(&self, n: usize) -> Result<u8> {
        self.cursor(n)?.u8()
    }

    /// The term at `slot`, its fields read.
    pub fn term(&self, slot: Slot) -> Result<Term<'a>> {
        let n = match self.resolve(slot)? {
            Slot::Char(c) => return Ok(Term::Int(i64::from(c))),
            Slot::Node(n) => n,
        };
        let mut cur = self.cursor(n)?;
        let at = cur.pos();
        let tag = cur.u8()?;
        Ok(match tag {
            SMALL_INTEGER_EXT => Term::Int(i64::from(cur.u8()?)),
            INTEGER_EXT => Term::Int(i64::from(i32::from_be_bytes(cur.array()?))),
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (negative, magnitude_le) = cur.bignum(tag)?;
                Term::Big {
                    negative,
                    magnitude_le,
                }
            }
            NEW_FLOAT_EXT | FLOAT_EXT => Term::Float(cur.float(tag)?),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                Term::Atom(cur.atom_after(tag)?)
            }
            BINARY_EXT => {
                let len = cur.len32()?;
                Term::Binary(cur.take(len)?)
            }
            BIT_BINARY_EXT => {
                let len = cur.len32()?;
                let bits = cur.u8()?;
                Term::BitBinary {
                    bytes: cur.take(len)?,
                    bits,
                }
            }
            NIL_EXT | STRING_EXT | LIST_EXT => {
                let (items, tail) = self.list(n)?;
                Term::List { items, tail }
            }
            SMALL_TUPLE_EXT => Term::Tuple(self.children(n, usize::from(cur.u8()?))?),
            LARGE_TUPLE_EXT => Term::Tuple(self.children(n, cur.len32()?)?),
            MAP_EXT => {
                let arity = cur.len32()?;
                let cells = self.children(n, 2 * arity)?;
                Term::Map(cells.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
            }
            PID_EXT | NEW_PID_EXT => Term::Pid(cur.pid(tag)?),
            REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                Term::Ref(cur.reference(tag)?)
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
                let node = cur.atom()?;
                let id = if tag == V4_PORT_EXT {
                    u64::from_be_bytes(cur.array()?)
                } else {
                    u64::from(cur.u32()?)
                };
                Term::Port { node, id }
            }
            EXPORT_EXT => match self.children(n, 3)?[..] {
                [module, function, arity] => Term::Export {
                    module,
                    function,
                    arity,
                },
                _ => return Err(cur.bad_at(at, "index out of range")),
            },
            NEW_FUN_EXT | FUN_EXT => Term::Fun,
            _ => return Err(cur.bad_at(at, "unknown tag")),
        })
    }

    /// The term `slot` stands for: a `LIST_EXT` with no elements is its tail, as erts decodes
    /// it (`binary_to_term(<<131,108,0,0,0,0,97,5>>)` is 5 on OTP 25). Erlang never writes one,
    /// but the format allows it.
    fn resolve(&self, mut slot: Slot) -> Result<Slot> {
        while let Slot::Node(n) = slot {
            let mut cur = self.cursor(n)?;
            if cur.u8()? != LIST_EXT || cur.u32()? != 0 {
                break;
            }
            // The tail is the one child, right after its list.
            slot = Slot::Node(n + 1);
        }
        Ok(slot)
    }

    /// The elements of the list at term `n` and its final tail (`None` when proper). A list
    /// tail that is itself a list continues it, as Erlang decodes it.
    fn list(&self, n: usize) -> Result<(Vec<Slot>, Option<Slot>)> {
        let mut items = Vec::new();
        let mut at = n;
        loop {
            let mut cur = self.cursor(at)?;
            match cur.u8()? {
                NIL_EXT => return Ok((items, None)),
                STRING_EXT => {
                    let len = cur.u16()?;
                    items.extend(cur.take(len)?.iter().map(|&c| Slot::Char(c)));
                    return Ok((items, None));
                }
                LIST_EXT => {
                    let len = cur.len32()?;
                    let mut cells = self.children(at, len + 1)?;
                    let tail = cells.pop();
                    items.extend(cells);
                    match tail {
                        Some(Slot::Node(t)) if is_list_tag(self.tag(t)?) => at = t,
                        Some(tail) => return Ok((items, Some(tail))),
                        None => return Ok((items, None)),
                    }
                }
                _ => return Ok((items, Some(Slot::Node(at)))),
            }
        }
    }

    /// Fails when two keys of the map at `map` (its `pairs`, from [`Index::term`]) are the
    /// same term, whatever their encodings: erts refuses such input (`badarg`). Keys nesting
    /// deeper than `max_depth` are [`Error::TooDeep`].
    pub fn check_unique_keys(
        &self,
        map: Slot,
        pairs: &[(Slot, Slot)],
        max_depth: usize,
    ) -> Result<()> {
        let mut seen = HashSet::with_capacity(pairs.len());
        for &(key, _) in pairs {
            let mut canonical = Vec::new();
            self.canon(key, &mut canonical, 0, max_depth)?;
            if !seen.insert(canonical) {
                return Err(Error::Malformed {
                    at: self.offset(map),
                    what: "map with duplicate keys",
                });
            }
        }
        Ok(())
    }

    /// Writes a canonical, prefix-free form of a term: two encodings of one Erlang term give
    /// the same bytes (an atom in Latin-1 or UTF-8, a string as `STRING_EXT` or `LIST_EXT`, a
    /// small bignum, a map in any key order).
    fn canon(&self, slot: Slot, out: &mut Vec<u8>, depth: usize, max_depth: usize) -> Result<()> {
        if depth > max_depth {
            return Err(Error::TooDeep(max_depth));
        }
        let put_len =
            |out: &mut Vec<u8>, len: usize| out.extend_from_slice(&(len as u64).to_be_bytes());
        let put_int = |out: &mut Vec<u8>, value: i64| {
            out.push(b'i');
            out.extend_from_slice(&value.to_be_bytes());
        };
        let slot = self.resolve(slot)?;
        match self.term(slot)? {
            Term::Int(i) => put_int(out, i),
            Term::Big {
                negative,
                magnitude_le,
            } => match small_int(negative, magnitude_le) {
                Some(i) => put_int(out, i),
                None => {
                    let digits = trim_magnitude(magnitude_le);
                    out.push(b'b');
                    out.push(u8::from(negative));
                    put_len(out, digits.len());
                    out.extend_from_slice(digits);
                }
            },
            Term::Float(f) => {
                out.push(b'f');
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Term::Atom(name) => {
                out.push(b'a');
                put_len(out, name.len());
                out.extend_from_slice(name.as_bytes());
            }
            Term::Binary(bytes) => {
                out.push(b'B');
                put_len(out, bytes.len());
                out.extend_from_slice(bytes);
            }
            Term::List { items, tail } => {
                out.push(b'l');
                for item in items {
                    self.canon(item, out, depth + 1, max_depth)?;
                }
                match tail {
                    None => out.push(b'.'),
                    Some(tail) => {
                        out.push(b'|');
                        self.canon(tail, out, depth + 1, max_depth)?;
                    }
                }
            }
            Term::Tuple(items) => {
                out.push(b't');
                put_len(out, items.len());
                for item in items {
                    self.canon(item, out, depth + 1, max_depth)?;
                }
            }
            Term::Map(pairs) => {
                let mut entries = Vec::with_capacity(pairs.len());
                for (k, v) in &pairs {
                    let mut entry = Vec::new();
                    self.canon(*k, &mut entry, depth + 1, max_depth)?;
                    self.canon(*v, &mut entry, depth + 1, max_depth)?;
                    entries.push(entry);
                }
                entries.sort();
                out.push(b'm');
                put_len(out, entries.len());
                for entry in entries {
                    put_len(out, entry.len());
                    out.extend_from_slice(&entry);
                }
            }
            Term::Pid(pid) => {
                let etf = pid.to_etf();
                out.push(b'p');
                put_len(out, etf.len());
                out.extend_from_slice(&etf);
            }
            Term::Ref(reference) => {
                let etf = reference.to_etf();
                out.push(b'r');
                put_len(out, etf.len());
                out.extend_from_slice(&etf);
            }
            Term::BitBinary { .. } | Term::Port { .. } | Term::Export { .. } | Term::Fun => {
                let raw = match slot {
                    Slot::Node(n) => self.raw(n)?,
                    Slot::Char(_) => &[],
                };
                out.push(b'x');
                put_len(out, raw.len());
                out.extend_from_slice(raw);
            }
        }
        Ok(())
    }
}

fn is_list_tag(tag: u8) -> bool {
    matches!(tag, NIL_EXT | STRING_EXT | LIST_EXT)
}

/// Consumes one whole term, iteratively (no recursion however deep the term nests).
pub fn skip_term(cur: &mut Cursor<'_>) -> Result<()> {
    let mut pending: u64 = 1;
    while pending > 0 {
        pending = pending - 1 + skip_header(cur)?;
    }
    Ok(())
}

/// Consumes the header of one term (all of it for a leaf) and returns how many child terms
/// follow it.
fn skip_header(cur: &mut Cursor<'_>) -> Result<u64> {
    let at = cur.pos();
    let tag = cur.u8()?;
    match tag {
        SMALL_INTEGER_EXT => cur.take(1).map(|_| 0),
        INTEGER_EXT => cur.take(4).map(|_| 0),
        NEW_FLOAT_EXT => cur.take(8).map(|_| 0),
        FLOAT_EXT => cur.take(31).map(|_| 0),
        ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT | ATOM_CACHE_REF => {
            cur.atom_after(tag).map(|_| 0)
        }
        SMALL_TUPLE_EXT => cur.u8().map(u64::from),
        LARGE_TUPLE_EXT => cur.u32().map(u64::from),
        MAP_EXT => cur.u32().map(|n| 2 * u64::from(n)),
        NIL_EXT => Ok(0),
        STRING_EXT => {
            let len = cur.u16()?;
            cur.take(len).map(|_| 0)
        }
        LIST_EXT => cur.u32().map(|n| u64::from(n) + 1),
        BINARY_EXT => {
            let len = cur.len32()?;
            cur.take(len).map(|_| 0)
        }
        BIT_BINARY_EXT => {
            let len = cur.len32()?;
            let bits = cur.u8()?;
            if !(1..=8).contains(&bits) || (len == 0 && bits != 8) {
                return Err(cur.bad_at(at, "bitstring with a bad bit count"));
            }
            cur.take(len).map(|_| 0)
        }
        SMALL_BIG_EXT | LARGE_BIG_EXT => cur.bignum(tag).map(|_| 0),
        PID_EXT | NEW_PID_EXT => cur.pid(tag).map(|_| 0),
        REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => cur.reference(tag).map(|_| 0),
        PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
            cur.atom()?;
            let rest = match tag {
                PORT_EXT => 5,
                NEW_PORT_EXT => 8,
                _ => 12,
            };
            cur.take(rest).map(|_| 0)
        }
        // Module, function, arity.
        EXPORT_EXT => Ok(3),
        NEW_FUN_EXT => {
            // Size counts itself and everything after the tag.
            let size = cur.len32()?;
            let rest = size
                .checked_sub(4)
                .ok_or_else(|| cur.bad_at(at, "fun with a bad size"))?;
            cur.take(rest).map(|_| 0)
        }
        // NumFree, then pid, module, index, uniq and the free variables.
        FUN_EXT => cur.u32().map(|free| 4 + u64::from(free)),
        COMPRESSED => Err(cur.bad_at(
            at,
            "compressed terms are not supported (encode without the `compressed` option)",
        )),
        LOCAL_EXT => Err(cur.bad_at(
            at,
            "node-local terms are not supported (encode without the `local` option)",
        )),
        _ => Err(cur.bad_at(at, "unknown tag")),
    }
}
