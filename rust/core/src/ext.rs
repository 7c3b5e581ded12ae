//! Erlang's external term format (ETF, what `term_to_binary/1` produces) as a [`TermReader`] and
//! a [`TermBuilder`] on byte buffers, so the rules of [`crate::convert`] read and write ETF
//! exactly as they read and write live terms inside the BEAM.
//!
//! - [`decode`] turns ETF bytes into a Python object, [`encode`] a Python object into ETF bytes:
//!   the `erlang.binary_to_term` / `erlang.term_to_binary` functions of both worlds, and the
//!   mocked BEAM's view of "what Erlang would see".
//! - [`Handles`] says where opaque Python objects go. Inside the BEAM there is no table
//!   ([`NoHandles`]: such objects cannot be encoded); the mocked BEAM keeps them in a
//!   [`HandleTable`] and encodes each as a reference of the node [`HANDLE_NODE`].
//! - [`format`] prints ETF bytes in Erlang syntax, for test failures and reprs.
//!
//! Reading is bounded: one iterative pass indexes the whole input before anything is built, so
//! truncated, garbage or hostile input is an [`Error::BadEtf`] (never a panic, never a deep
//! recursion), and nesting is then bounded by [`Options::max_depth`] as for live terms.
//! Building writes what `term_to_binary(T, [{minor_version, 2}])` writes (the OTP 26 default:
//! UTF-8 atoms; maps in Erlang's key order), so known terms have known bytes. Maps of more than
//! 32 keys are the exception: erts writes them in its hash order, this builder in key order.
//! Pure functions over bytes plus the GIL for the Python side; any thread holding it.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::convert::{self, Options, TermBuilder, TermReader, View};
use crate::error::{Error, Result};

/// The tags of the external term format (erts `external.h`; OTP's "External Term Format").
pub mod tag {
    /// First byte of every encoded term.
    pub const VERSION: u8 = 131;
    /// `term_to_binary(T, [compressed])`: zlib-compressed term.
    pub const COMPRESSED: u8 = 80;
    /// IEEE 754 double, big-endian.
    pub const NEW_FLOAT_EXT: u8 = 70;
    /// Bitstring whose last byte is partly used.
    pub const BIT_BINARY_EXT: u8 = 77;
    /// Atom cache reference (distribution only).
    pub const ATOM_CACHE_REF: u8 = 82;
    /// Pid with a 32-bit creation.
    pub const NEW_PID_EXT: u8 = 88;
    /// Port with a 32-bit creation.
    pub const NEW_PORT_EXT: u8 = 89;
    /// Reference with a 32-bit creation.
    pub const NEWER_REFERENCE_EXT: u8 = 90;
    /// Integer 0..=255.
    pub const SMALL_INTEGER_EXT: u8 = 97;
    /// Signed 32-bit integer.
    pub const INTEGER_EXT: u8 = 98;
    /// Float as 31 bytes of `%.20e` text (before OTP 17).
    pub const FLOAT_EXT: u8 = 99;
    /// Latin-1 atom, 16-bit length.
    pub const ATOM_EXT: u8 = 100;
    /// Reference with one id word and an 8-bit creation (before R9).
    pub const REFERENCE_EXT: u8 = 101;
    /// Port with an 8-bit creation.
    pub const PORT_EXT: u8 = 102;
    /// Pid with an 8-bit creation.
    pub const PID_EXT: u8 = 103;
    /// Tuple, 8-bit arity.
    pub const SMALL_TUPLE_EXT: u8 = 104;
    /// Tuple, 32-bit arity.
    pub const LARGE_TUPLE_EXT: u8 = 105;
    /// `[]`.
    pub const NIL_EXT: u8 = 106;
    /// List of integers 0..=255, as bytes.
    pub const STRING_EXT: u8 = 107;
    /// List: length, elements, tail.
    pub const LIST_EXT: u8 = 108;
    /// Binary.
    pub const BINARY_EXT: u8 = 109;
    /// Bignum, 8-bit length.
    pub const SMALL_BIG_EXT: u8 = 110;
    /// Bignum, 32-bit length.
    pub const LARGE_BIG_EXT: u8 = 111;
    /// Fun.
    pub const NEW_FUN_EXT: u8 = 112;
    /// `fun M:F/A`.
    pub const EXPORT_EXT: u8 = 113;
    /// Reference with an 8-bit creation.
    pub const NEW_REFERENCE_EXT: u8 = 114;
    /// Latin-1 atom, 8-bit length.
    pub const SMALL_ATOM_EXT: u8 = 115;
    /// Map.
    pub const MAP_EXT: u8 = 116;
    /// Fun (before R8).
    pub const FUN_EXT: u8 = 117;
    /// UTF-8 atom, 16-bit length.
    pub const ATOM_UTF8_EXT: u8 = 118;
    /// UTF-8 atom, 8-bit length.
    pub const SMALL_ATOM_UTF8_EXT: u8 = 119;
    /// Port with a 64-bit id.
    pub const V4_PORT_EXT: u8 = 120;
    /// Node-local encoding (`term_to_binary(T, [local])`).
    pub const LOCAL_EXT: u8 = 121;
}

use tag::*;

/// The node of the references that stand for Python objects in the mocked BEAM.
pub const HANDLE_NODE: &str = "erlang_python_mock@handle";

/// Bignums longer than this many bytes print in hex (decimal conversion is quadratic).
const DECIMAL_LIMIT: usize = 512;

// ---------------------------------------------------------------------------------------------
// Handles

/// Where opaque Python objects go when they travel as Erlang terms.
pub trait Handles {
    /// Keeps `object` and returns its handle id, or fails when this world has no handles.
    fn store(&self, py: Python<'_>, object: Py<PyAny>) -> Result<u64>;
    /// The object behind handle `id`, if this table holds it.
    fn lookup(&self, py: Python<'_>, id: u64) -> Option<Py<PyAny>>;
}

/// No handle table: the external term format of the real BEAM, where an object with no Erlang
/// equivalent cannot be encoded (a NIF resource does not survive `term_to_binary`).
pub struct NoHandles;

impl Handles for NoHandles {
    fn store(&self, py: Python<'_>, object: Py<PyAny>) -> Result<u64> {
        let ty = object.bind(py).get_type();
        Err(Error::NotEncodable(type_name(&ty)))
    }

    fn lookup(&self, _py: Python<'_>, _id: u64) -> Option<Py<PyAny>> {
        None
    }
}

fn type_name(ty: &Bound<'_, PyType>) -> String {
    ty.qualname()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// The mocked BEAM's handles: each object stays alive in the table (as a handle does while
/// Erlang holds it) until [`HandleTable::clear`]. The lock is held only around map operations,
/// never across Python code, so an object's `__del__` may use the table again.
#[derive(Default)]
pub struct HandleTable {
    objects: Mutex<HashMap<u64, Py<PyAny>>>,
    next: AtomicU64,
}

impl HandleTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn objects(&self) -> MutexGuard<'_, HashMap<u64, Py<PyAny>>> {
        // A panic while the lock was held left the map itself consistent.
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many objects the table keeps alive.
    pub fn len(&self) -> usize {
        self.objects().len()
    }

    /// True when the table holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases every object (the end of the mocked BEAM's life).
    pub fn clear(&self, _py: Python<'_>) {
        let objects = std::mem::take(&mut *self.objects());
        // Dropped here, after the lock is released: `__del__` methods may run.
        drop(objects);
    }
}

impl Handles for HandleTable {
    fn store(&self, _py: Python<'_>, object: Py<PyAny>) -> Result<u64> {
        let id = self.next.fetch_add(1, AtomicOrdering::Relaxed) + 1;
        self.objects().insert(id, object);
        Ok(id)
    }

    fn lookup(&self, py: Python<'_>, id: u64) -> Option<Py<PyAny>> {
        self.objects().get(&id).map(|obj| obj.clone_ref(py))
    }
}

/// The ETF of the reference that stands for handle `id` (ids split over the first two words).
fn handle_ref(id: u64) -> Vec<u8> {
    let mut out = vec![VERSION, NEWER_REFERENCE_EXT, 0, 3];
    put_atom(&mut out, HANDLE_NODE);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(id as u32).to_be_bytes());
    out.extend_from_slice(&((id >> 32) as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Entry points

/// Decodes ETF bytes (as `term_to_binary/1` produces) to a Python object, by the rules of
/// [`convert::to_py`]. Handle references found in `handles` become their objects.
pub fn decode<'py>(
    py: Python<'py>,
    data: &[u8],
    handles: &dyn Handles,
    opts: &Options,
) -> Result<Bound<'py, PyAny>> {
    let reader = ExtReader::new(data, handles, opts.max_depth)?;
    convert::to_py(py, &reader, reader.root(), opts)
}

/// Encodes a Python object as ETF bytes, by the rules of [`convert::from_py`]. Objects with no
/// Erlang equivalent go to `handles`.
pub fn encode(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    handles: &dyn Handles,
    opts: &Options,
) -> Result<Vec<u8>> {
    let mut builder = ExtBuilder::new(py, handles);
    let root = convert::from_py(&mut builder, obj, opts)?;
    builder.finish(root)
}

/// The same pid or reference in the one encoding this crate uses for identities
/// (`NEW_PID_EXT` / `NEWER_REFERENCE_EXT`, UTF-8 node atom), so two encodings of one pid or
/// reference compare equal.
pub fn canonical_identity(etf: &[u8]) -> Result<Vec<u8>> {
    let index = Index::new(etf)?;
    let mut cur = index.cursor(0)?;
    let tag = cur.u8()?;
    match tag {
        PID_EXT | NEW_PID_EXT => read_pid(&mut cur, tag),
        REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
            read_ref(&mut cur, tag).map(|r| r.etf)
        }
        _ => Err(cur.bad_at(1, "expected a pid or a reference")),
    }
}

/// Prints ETF bytes in Erlang syntax: `#{<<"a">> => 1}`, `{ok,[1,2]}`, `'hello world'`.
/// Lists print element by element (as `~w` does, even when printable); pids and references
/// print as `erlang.Pid` and `erlang.Ref` show them.
pub fn format(data: &[u8], max_depth: usize) -> Result<String> {
    let index = Index::new(data)?;
    let mut out = String::new();
    index.print(Slot::Node(0), &mut out, 0, max_depth)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Reading: a cursor, an index of every term, and the reader on top

#[derive(Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bad(&self, what: &'static str) -> Error {
        Error::BadEtf { at: self.pos, what }
    }

    fn bad_at(&self, at: usize, what: &'static str) -> Error {
        Error::BadEtf { at, what }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| self.bad("truncated"))?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.bad("truncated"))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn len32(&mut self) -> Result<usize> {
        usize::try_from(self.u32()?).map_err(|_| self.bad("length too large"))
    }

    /// An atom in any of its four encodings. Erlang atoms have at most 255 characters.
    fn atom(&mut self) -> Result<Cow<'a, str>> {
        let at = self.pos;
        let (len, utf8) = match self.u8()? {
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
            Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
        };
        if name.chars().count() > 255 {
            return Err(self.bad_at(at, "atom longer than 255 characters"));
        }
        Ok(name)
    }
}

/// One term of the input: where it starts, and how many terms its subtree holds (itself
/// included). Terms are in pre-order, so a subtree is a contiguous run of the index and of the
/// bytes, and the next sibling of term `i` is term `i + size`.
#[derive(Clone, Copy)]
struct Node {
    offset: usize,
    size: usize,
}

struct Index<'a> {
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

impl<'a> Index<'a> {
    /// Indexes every term of `data` in one pass with an explicit stack: no recursion, and no
    /// term is trusted before its bytes are there.
    fn new(data: &'a [u8]) -> Result<Self> {
        let mut cur = Cursor { buf: data, pos: 0 };
        match cur.u8() {
            Ok(VERSION) => {}
            Ok(_) => return Err(cur.bad_at(0, "missing version byte 131")),
            Err(_) => return Err(cur.bad_at(0, "empty input")),
        }
        let mut nodes = Vec::new();
        // (term, children still to read)
        let mut open: Vec<(usize, u64)> = Vec::new();
        loop {
            let me = nodes.len();
            nodes.push(Node {
                offset: cur.pos,
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
                    let end = cur.pos;
                    if end != data.len() {
                        return Err(cur.bad("trailing bytes after the term"));
                    }
                    return Ok(Index {
                        buf: data,
                        nodes,
                        end,
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

    fn node(&self, n: usize) -> Result<Node> {
        self.nodes.get(n).copied().ok_or(Error::BadEtf {
            at: self.end,
            what: "index out of range",
        })
    }

    /// A cursor on the tag of term `n`.
    fn cursor(&self, n: usize) -> Result<Cursor<'a>> {
        Ok(Cursor {
            buf: self.buf,
            pos: self.node(n)?.offset,
        })
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
        self.buf.get(node.offset..end).ok_or(Error::BadEtf {
            at: node.offset,
            what: "index out of range",
        })
    }

    fn tag(&self, n: usize) -> Result<u8> {
        self.cursor(n)?.u8()
    }

    /// The elements of the list at `slot` and its final tail (`None` when proper). A list tail
    /// that is itself a list continues it, as Erlang decodes it.
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
}

fn is_list_tag(tag: u8) -> bool {
    matches!(tag, NIL_EXT | STRING_EXT | LIST_EXT)
}

/// Consumes the header of one term (all of it for a leaf) and returns how many child terms
/// follow it.
fn skip_header(cur: &mut Cursor<'_>) -> Result<u64> {
    let at = cur.pos;
    let tag = cur.u8()?;
    match tag {
        SMALL_INTEGER_EXT => cur.take(1).map(|_| 0),
        INTEGER_EXT => cur.take(4).map(|_| 0),
        NEW_FLOAT_EXT => cur.take(8).map(|_| 0),
        FLOAT_EXT => cur.take(31).map(|_| 0),
        ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT | ATOM_CACHE_REF => {
            cur.pos = at;
            cur.atom().map(|_| 0)
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
        SMALL_BIG_EXT | LARGE_BIG_EXT => {
            let len = if tag == SMALL_BIG_EXT {
                usize::from(cur.u8()?)
            } else {
                cur.len32()?
            };
            cur.take(len + 1).map(|_| 0)
        }
        PID_EXT | NEW_PID_EXT => read_pid(cur, tag).map(|_| 0),
        REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => read_ref(cur, tag).map(|_| 0),
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

/// Reads a pid after its tag; returns its canonical encoding.
fn read_pid(cur: &mut Cursor<'_>, tag: u8) -> Result<Vec<u8>> {
    let node = cur.atom()?;
    let id = cur.u32()?;
    let serial = cur.u32()?;
    let creation = if tag == PID_EXT {
        u32::from(cur.u8()?)
    } else {
        cur.u32()?
    };
    let mut out = vec![VERSION, NEW_PID_EXT];
    put_atom(&mut out, &node);
    for word in [id, serial, creation] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    Ok(out)
}

/// A reference: its canonical encoding, node and id words.
struct RefParts<'a> {
    etf: Vec<u8>,
    node: Cow<'a, str>,
    ids: Vec<u32>,
}

/// Reads a reference after its tag.
fn read_ref<'a>(cur: &mut Cursor<'a>, tag: u8) -> Result<RefParts<'a>> {
    let at = cur.pos;
    let len = if tag == REFERENCE_EXT { 1 } else { cur.u16()? };
    if !(1..=5).contains(&len) {
        return Err(cur.bad_at(at, "reference with a bad number of id words"));
    }
    let node = cur.atom()?;
    let creation = match tag {
        NEWER_REFERENCE_EXT => cur.u32()?,
        NEW_REFERENCE_EXT => u32::from(cur.u8()?),
        _ => 0,
    };
    let mut ids = Vec::with_capacity(len);
    for _ in 0..len {
        ids.push(cur.u32()?);
    }
    let creation = if tag == REFERENCE_EXT {
        u32::from(cur.u8()?)
    } else {
        creation
    };
    let mut etf = vec![VERSION, NEWER_REFERENCE_EXT];
    etf.extend_from_slice(&(len as u16).to_be_bytes());
    put_atom(&mut etf, &node);
    etf.extend_from_slice(&creation.to_be_bytes());
    for id in &ids {
        etf.extend_from_slice(&id.to_be_bytes());
    }
    Ok(RefParts { etf, node, ids })
}

/// Reads ETF bytes for the conversion rules.
pub struct ExtReader<'a, 'h> {
    index: Index<'a>,
    handles: &'h dyn Handles,
    max_depth: usize,
}

impl<'a, 'h> ExtReader<'a, 'h> {
    /// Indexes `data`; fails on malformed input before any term is looked at. `max_depth`
    /// bounds the comparison of map keys (the rules bound everything else).
    pub fn new(data: &'a [u8], handles: &'h dyn Handles, max_depth: usize) -> Result<Self> {
        Ok(ExtReader {
            index: Index::new(data)?,
            handles,
            max_depth,
        })
    }

    /// The whole term.
    pub fn root(&self) -> Slot {
        Slot::Node(0)
    }

    fn map_pairs(&self, n: usize, arity: usize) -> Result<Vec<(Slot, Slot)>> {
        let cells = self.index.children(n, 2 * arity)?;
        let mut seen = HashSet::with_capacity(arity);
        let mut pairs = Vec::with_capacity(arity);
        for pair in cells.chunks_exact(2) {
            let (k, v) = (pair[0], pair[1]);
            let mut key = Vec::new();
            self.index.canon(k, &mut key, 0, self.max_depth)?;
            if !seen.insert(key) {
                return Err(Error::BadEtf {
                    at: self.index.node(n)?.offset,
                    what: "map with duplicate keys",
                });
            }
            pairs.push((k, v));
        }
        Ok(pairs)
    }
}

impl<'a> TermReader<'a> for ExtReader<'a, '_> {
    type Term = Slot;

    fn view(&self, py: Python<'_>, term: Slot) -> Result<View<'a, Slot>> {
        let n = match term {
            Slot::Char(c) => return Ok(View::Int(i64::from(c))),
            Slot::Node(n) => n,
        };
        let mut cur = self.index.cursor(n)?;
        let at = cur.pos;
        let tag = cur.u8()?;
        Ok(match tag {
            SMALL_INTEGER_EXT => View::Int(i64::from(cur.u8()?)),
            INTEGER_EXT => View::Int(i64::from(i32::from_be_bytes(cur.array()?))),
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (negative, magnitude) = read_big(&mut cur, tag)?;
                match small_int(negative, magnitude) {
                    Some(i) => View::Int(i),
                    None => View::BigInt {
                        negative,
                        magnitude_le: Cow::Borrowed(magnitude),
                    },
                }
            }
            NEW_FLOAT_EXT | FLOAT_EXT => View::Float(read_float(&mut cur, tag)?),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                cur.pos = at;
                View::Atom(cur.atom()?)
            }
            BINARY_EXT => {
                let len = cur.len32()?;
                View::Binary(cur.take(len)?)
            }
            BIT_BINARY_EXT => {
                let len = cur.len32()?;
                if cur.u8()? != 8 {
                    return Err(Error::Unsupported("bitstring"));
                }
                View::Binary(cur.take(len)?)
            }
            NIL_EXT | STRING_EXT | LIST_EXT => match self.index.list(n)? {
                (items, None) => View::List(items),
                (_, Some(_)) => return Err(Error::ImproperList),
            },
            SMALL_TUPLE_EXT => {
                let arity = usize::from(cur.u8()?);
                View::Tuple(self.index.children(n, arity)?)
            }
            LARGE_TUPLE_EXT => {
                let arity = cur.len32()?;
                View::Tuple(self.index.children(n, arity)?)
            }
            MAP_EXT => {
                let arity = cur.len32()?;
                View::Map(self.map_pairs(n, arity)?)
            }
            PID_EXT | NEW_PID_EXT => View::Pid(read_pid(&mut cur, tag)?),
            REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let parts = read_ref(&mut cur, tag)?;
                match handle_id(&parts).and_then(|id| self.handles.lookup(py, id)) {
                    Some(object) => View::Object(object),
                    None => View::Ref(parts.etf),
                }
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => return Err(Error::Unsupported("port")),
            EXPORT_EXT | NEW_FUN_EXT | FUN_EXT => return Err(Error::Unsupported("fun")),
            _ => return Err(cur.bad_at(at, "unknown tag")),
        })
    }
}

fn handle_id(parts: &RefParts<'_>) -> Option<u64> {
    match parts.ids.as_slice() {
        [lo, hi, ..] if parts.node == HANDLE_NODE => Some(u64::from(*lo) | u64::from(*hi) << 32),
        _ => None,
    }
}

/// Sign and little-endian magnitude of a bignum, after its tag. Like erts, any non-zero sign
/// byte means negative.
fn read_big<'a>(cur: &mut Cursor<'a>, tag: u8) -> Result<(bool, &'a [u8])> {
    let len = if tag == SMALL_BIG_EXT {
        usize::from(cur.u8()?)
    } else {
        cur.len32()?
    };
    let negative = cur.u8()? != 0;
    Ok((negative, cur.take(len)?))
}

/// The value of a bignum when it fits in 64 bits.
fn small_int(negative: bool, magnitude_le: &[u8]) -> Option<i64> {
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

fn trim_magnitude(magnitude_le: &[u8]) -> &[u8] {
    let len = magnitude_le
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    &magnitude_le[..len]
}

/// A float after its tag. Erlang has no NaN or infinity: such bit patterns are malformed.
fn read_float(cur: &mut Cursor<'_>, tag: u8) -> Result<f64> {
    let at = cur.pos;
    let value = if tag == NEW_FLOAT_EXT {
        f64::from_be_bytes(cur.array()?)
    } else {
        let text = cur.take(31)?;
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| cur.bad_at(at, "float text is not a number"))?
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(cur.bad_at(at, "float is not finite"))
    }
}

// Canonical keys and printing, on the index.
impl Index<'_> {
    /// Writes a canonical, prefix-free form of a term: two encodings of one Erlang term give
    /// the same bytes (an atom in Latin-1 or UTF-8, a string as STRING_EXT or LIST_EXT, a small
    /// bignum, a map in any key order). Used to find duplicate map keys as erts does.
    fn canon(&self, slot: Slot, out: &mut Vec<u8>, depth: usize, max_depth: usize) -> Result<()> {
        if depth > max_depth {
            return Err(Error::TooDeep(max_depth));
        }
        let n = match slot {
            Slot::Char(c) => {
                out.push(b'i');
                out.extend_from_slice(&i64::from(c).to_be_bytes());
                return Ok(());
            }
            Slot::Node(n) => n,
        };
        let mut cur = self.cursor(n)?;
        let at = cur.pos;
        let tag = cur.u8()?;
        let put_len =
            |out: &mut Vec<u8>, len: usize| out.extend_from_slice(&(len as u64).to_be_bytes());
        match tag {
            SMALL_INTEGER_EXT => {
                out.push(b'i');
                out.extend_from_slice(&i64::from(cur.u8()?).to_be_bytes());
            }
            INTEGER_EXT => {
                out.push(b'i');
                let value = i64::from(i32::from_be_bytes(cur.array()?));
                out.extend_from_slice(&value.to_be_bytes());
            }
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (negative, magnitude) = read_big(&mut cur, tag)?;
                if let Some(i) = small_int(negative, magnitude) {
                    out.push(b'i');
                    out.extend_from_slice(&i.to_be_bytes());
                } else {
                    let digits = trim_magnitude(magnitude);
                    out.push(b'b');
                    out.push(u8::from(negative));
                    put_len(out, digits.len());
                    out.extend_from_slice(digits);
                }
            }
            NEW_FLOAT_EXT | FLOAT_EXT => {
                out.push(b'f');
                out.extend_from_slice(&read_float(&mut cur, tag)?.to_bits().to_be_bytes());
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                cur.pos = at;
                let name = cur.atom()?;
                out.push(b'a');
                put_len(out, name.len());
                out.extend_from_slice(name.as_bytes());
            }
            BINARY_EXT => {
                let len = cur.len32()?;
                out.push(b'B');
                put_len(out, len);
                out.extend_from_slice(cur.take(len)?);
            }
            NIL_EXT | STRING_EXT | LIST_EXT => {
                let (items, tail) = self.list(n)?;
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
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
                let arity = if tag == SMALL_TUPLE_EXT {
                    usize::from(cur.u8()?)
                } else {
                    cur.len32()?
                };
                out.push(b't');
                put_len(out, arity);
                for item in self.children(n, arity)? {
                    self.canon(item, out, depth + 1, max_depth)?;
                }
            }
            MAP_EXT => {
                let arity = cur.len32()?;
                let mut entries = Vec::with_capacity(arity);
                for pair in self.children(n, 2 * arity)?.chunks_exact(2) {
                    let mut entry = Vec::new();
                    self.canon(pair[0], &mut entry, depth + 1, max_depth)?;
                    self.canon(pair[1], &mut entry, depth + 1, max_depth)?;
                    entries.push(entry);
                }
                entries.sort();
                out.push(b'm');
                put_len(out, arity);
                for entry in entries {
                    put_len(out, entry.len());
                    out.extend_from_slice(&entry);
                }
            }
            PID_EXT | NEW_PID_EXT => {
                let etf = read_pid(&mut cur, tag)?;
                out.push(b'p');
                put_len(out, etf.len());
                out.extend_from_slice(&etf);
            }
            REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let etf = read_ref(&mut cur, tag)?.etf;
                out.push(b'r');
                put_len(out, etf.len());
                out.extend_from_slice(&etf);
            }
            _ => {
                let raw = self.raw(n)?;
                out.push(b'x');
                put_len(out, raw.len());
                out.extend_from_slice(raw);
            }
        }
        Ok(())
    }

    fn print(&self, slot: Slot, out: &mut String, depth: usize, max_depth: usize) -> Result<()> {
        if depth > max_depth {
            return Err(Error::TooDeep(max_depth));
        }
        let n = match slot {
            Slot::Char(c) => {
                let _ = write!(out, "{c}");
                return Ok(());
            }
            Slot::Node(n) => n,
        };
        let mut cur = self.cursor(n)?;
        let at = cur.pos;
        let tag = cur.u8()?;
        match tag {
            SMALL_INTEGER_EXT => {
                let _ = write!(out, "{}", cur.u8()?);
            }
            INTEGER_EXT => {
                let _ = write!(out, "{}", i32::from_be_bytes(cur.array()?));
            }
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (negative, magnitude) = read_big(&mut cur, tag)?;
                print_big(out, negative, trim_magnitude(magnitude));
            }
            NEW_FLOAT_EXT | FLOAT_EXT => print_float(out, read_float(&mut cur, tag)?),
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                cur.pos = at;
                print_atom(out, &cur.atom()?);
            }
            BINARY_EXT => {
                let len = cur.len32()?;
                print_binary(out, cur.take(len)?, None);
            }
            BIT_BINARY_EXT => {
                let len = cur.len32()?;
                let bits = cur.u8()?;
                print_binary(out, cur.take(len)?, Some(bits));
            }
            NIL_EXT | STRING_EXT | LIST_EXT => {
                let (items, tail) = self.list(n)?;
                out.push('[');
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.print(item, out, depth + 1, max_depth)?;
                }
                if let Some(tail) = tail {
                    out.push('|');
                    self.print(tail, out, depth + 1, max_depth)?;
                }
                out.push(']');
            }
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
                let arity = if tag == SMALL_TUPLE_EXT {
                    usize::from(cur.u8()?)
                } else {
                    cur.len32()?
                };
                out.push('{');
                for (i, item) in self.children(n, arity)?.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.print(item, out, depth + 1, max_depth)?;
                }
                out.push('}');
            }
            MAP_EXT => {
                let arity = cur.len32()?;
                out.push_str("#{");
                for (i, pair) in self.children(n, 2 * arity)?.chunks_exact(2).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.print(pair[0], out, depth + 1, max_depth)?;
                    out.push_str(" => ");
                    self.print(pair[1], out, depth + 1, max_depth)?;
                }
                out.push('}');
            }
            PID_EXT | NEW_PID_EXT => {
                let node = cur.atom()?;
                let id = cur.u32()?;
                let serial = cur.u32()?;
                let _ = write!(out, "<{id}.{serial}>@{node}");
            }
            REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let parts = read_ref(&mut cur, tag)?;
                let ids: Vec<String> = parts.ids.iter().rev().map(u32::to_string).collect();
                let _ = write!(out, "#Ref<{}>@{}", ids.join("."), parts.node);
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
                let node = cur.atom()?;
                let id = if tag == V4_PORT_EXT {
                    u64::from_be_bytes(cur.array()?)
                } else {
                    u64::from(cur.u32()?)
                };
                let _ = write!(out, "#Port<{id}>@{node}");
            }
            EXPORT_EXT => {
                let parts = self.children(n, 3)?;
                out.push_str("fun ");
                self.print(parts[0], out, depth + 1, max_depth)?;
                out.push(':');
                self.print(parts[1], out, depth + 1, max_depth)?;
                out.push('/');
                self.print(parts[2], out, depth + 1, max_depth)?;
            }
            _ => out.push_str("#Fun<>"),
        }
        Ok(())
    }
}

fn print_big(out: &mut String, negative: bool, magnitude_le: &[u8]) {
    if negative && !magnitude_le.is_empty() {
        out.push('-');
    }
    if magnitude_le.is_empty() {
        out.push('0');
    } else if magnitude_le.len() > DECIMAL_LIMIT {
        out.push_str("16#");
        for (i, byte) in magnitude_le.iter().rev().enumerate() {
            if i == 0 {
                let _ = write!(out, "{byte:X}");
            } else {
                let _ = write!(out, "{byte:02X}");
            }
        }
    } else {
        out.push_str(&decimal(magnitude_le));
    }
}

/// Decimal digits of a little-endian magnitude (repeated division by 10^9 on 32-bit limbs).
fn decimal(magnitude_le: &[u8]) -> String {
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

/// A float as Erlang's `~w` (`float_to_list(F, [short])`) prints it: the shortest digits that
/// read back exactly, in plain or scientific notation, whichever is shorter (plain on a tie),
/// and always scientific from 2^53 up: `100.0`, `1.0e3`, `1.0e-5`, `9.007199254740992e15`.
fn print_float(out: &mut String, value: f64) {
    const TWO_POW_53: f64 = 9_007_199_254_740_992.0;
    // `{:e}` gives the shortest round-trip digits: "1.2345e17", "1e-5", "-0e0".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let (first, rest) = digits.split_at(1);
    let scientific = format!(
        "{sign}{first}.{}e{exp}",
        if rest.is_empty() { "0" } else { rest }
    );
    let point = exp + 1; // digits before the decimal point
    let plain = if point <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else if point as usize >= digits.len() {
        let zeros = "0".repeat(point as usize - digits.len());
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    };
    out.push_str(
        if value.abs() >= TWO_POW_53 || scientific.len() < plain.len() {
            &scientific
        } else {
            &plain
        },
    );
}

const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
    "rem", "try", "when", "xor",
];

fn print_atom(out: &mut String, name: &str) {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        && !RESERVED.contains(&name);
    if bare {
        out.push_str(name);
        return;
    }
    out.push('\'');
    for c in name.chars() {
        push_escaped(out, c, '\'');
    }
    out.push('\'');
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

fn print_binary(out: &mut String, bytes: &[u8], bits: Option<u8>) {
    let text = match (bits, std::str::from_utf8(bytes)) {
        (None, Ok(text)) if !text.is_empty() && text.chars().all(printable) => Some(text),
        _ => None,
    };
    out.push_str("<<");
    if let Some(text) = text {
        out.push('"');
        for c in text.chars() {
            push_escaped(out, c, '"');
        }
        out.push('"');
        if !text.is_ascii() {
            out.push_str("/utf8");
        }
    } else {
        let last = bytes.len().saturating_sub(1);
        for (i, byte) in bytes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match bits {
                Some(bits) if i == last && bits < 8 => {
                    let _ = write!(out, "{}:{bits}", byte >> (8 - bits));
                }
                _ => {
                    let _ = write!(out, "{byte}");
                }
            }
        }
    }
    out.push_str(">>");
}

fn printable(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t' | '\r')
}

// ---------------------------------------------------------------------------------------------
// Building

/// A term being built. Children are built before their parent, so terms are kept as a small
/// arena and written out top-down by [`ExtBuilder::finish`].
enum Built {
    Atom(&'static str),
    Int(i64),
    /// Does not fit in 64 bits; magnitude little-endian, without trailing zeros.
    Big(bool, Vec<u8>),
    Float(f64),
    Binary(Vec<u8>),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    /// Pairs in Erlang's key order.
    Map(Vec<(usize, usize)>),
    /// Canonical ETF of a pid.
    Pid(Vec<u8>),
    /// Canonical ETF of a reference (handles included).
    Ref(Vec<u8>),
}

/// Builds ETF for the conversion rules: `builder.finish(term)` gives the bytes.
pub struct ExtBuilder<'py, 'h> {
    py: Python<'py>,
    terms: Vec<Built>,
    handles: &'h dyn Handles,
}

impl<'py, 'h> ExtBuilder<'py, 'h> {
    /// A builder whose objects with no Erlang equivalent go to `handles`.
    pub fn new(py: Python<'py>, handles: &'h dyn Handles) -> Self {
        ExtBuilder {
            py,
            terms: Vec::new(),
            handles,
        }
    }

    fn push(&mut self, term: Built) -> usize {
        self.terms.push(term);
        self.terms.len() - 1
    }

    fn get(&self, term: usize) -> Result<&Built> {
        self.terms.get(term).ok_or(Error::BadEtf {
            at: 0,
            what: "term built by another builder",
        })
    }

    /// The ETF bytes of `term` (with the version byte).
    pub fn finish(&self, term: usize) -> Result<Vec<u8>> {
        let mut out = vec![VERSION];
        self.write(term, &mut out)?;
        Ok(out)
    }

    fn write(&self, term: usize, out: &mut Vec<u8>) -> Result<()> {
        match self.get(term)? {
            Built::Atom(name) => put_atom(out, name),
            Built::Int(i) => put_int(out, *i),
            Built::Big(negative, magnitude) => put_big(out, *negative, magnitude)?,
            Built::Float(f) => {
                out.push(NEW_FLOAT_EXT);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Built::Binary(bytes) => {
                out.push(BINARY_EXT);
                out.extend_from_slice(&len32(bytes.len())?);
                out.extend_from_slice(bytes);
            }
            Built::List(items) => self.write_list(items, out)?,
            Built::Tuple(items) => {
                match u8::try_from(items.len()) {
                    Ok(arity) => out.extend_from_slice(&[SMALL_TUPLE_EXT, arity]),
                    Err(_) => {
                        out.push(LARGE_TUPLE_EXT);
                        out.extend_from_slice(&len32(items.len())?);
                    }
                }
                for &item in items {
                    self.write(item, out)?;
                }
            }
            Built::Map(pairs) => {
                out.push(MAP_EXT);
                out.extend_from_slice(&len32(pairs.len())?);
                for &(k, v) in pairs {
                    self.write(k, out)?;
                    self.write(v, out)?;
                }
            }
            Built::Pid(etf) | Built::Ref(etf) => out.extend_from_slice(etf.get(1..).unwrap_or(&[])),
        }
        Ok(())
    }

    /// A list of small integers is a `STRING_EXT`, as `term_to_binary` writes it.
    fn write_list(&self, items: &[usize], out: &mut Vec<u8>) -> Result<()> {
        if items.is_empty() {
            out.push(NIL_EXT);
            return Ok(());
        }
        if items.len() <= usize::from(u16::MAX) {
            let chars: Option<Vec<u8>> = items
                .iter()
                .map(|&i| match self.terms.get(i) {
                    Some(Built::Int(v)) => u8::try_from(*v).ok(),
                    _ => None,
                })
                .collect();
            if let Some(chars) = chars {
                out.push(STRING_EXT);
                out.extend_from_slice(&(chars.len() as u16).to_be_bytes());
                out.extend_from_slice(&chars);
                return Ok(());
            }
        }
        out.push(LIST_EXT);
        out.extend_from_slice(&len32(items.len())?);
        for &item in items {
            self.write(item, out)?;
        }
        out.push(NIL_EXT);
        Ok(())
    }

    /// Erlang's term order, exact as for map keys (integers before floats):
    /// number < atom < reference < pid < tuple < map < list < binary. Pids and references of
    /// different nodes compare by their encodings, which is close but not erts' order.
    fn compare(&self, a: usize, b: usize) -> Result<Ordering> {
        let (x, y) = (self.get(a)?, self.get(b)?);
        let rank = |t: &Built| match t {
            Built::Int(_) | Built::Big(..) => 0,
            Built::Float(_) => 1,
            Built::Atom(_) => 2,
            Built::Ref(_) => 3,
            Built::Pid(_) => 4,
            Built::Tuple(_) => 5,
            Built::Map(_) => 6,
            Built::List(_) => 7,
            Built::Binary(_) => 8,
        };
        let order = rank(x).cmp(&rank(y));
        if order != Ordering::Equal {
            return Ok(order);
        }
        Ok(match (x, y) {
            (Built::Int(p), Built::Int(q)) => p.cmp(q),
            (Built::Int(_), Built::Big(neg, _)) => {
                if *neg {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Built::Big(neg, _), Built::Int(_)) => {
                if *neg {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Built::Big(pn, pm), Built::Big(qn, qm)) => {
                let magnitude = pm
                    .len()
                    .cmp(&qm.len())
                    .then_with(|| pm.iter().rev().cmp(qm.iter().rev()));
                match (pn, qn) {
                    (false, false) => magnitude,
                    (true, true) => magnitude.reverse(),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                }
            }
            (Built::Float(p), Built::Float(q)) => p.total_cmp(q),
            (Built::Atom(p), Built::Atom(q)) => p.cmp(q),
            (Built::Binary(p), Built::Binary(q)) => p.cmp(q),
            (Built::Pid(p), Built::Pid(q)) | (Built::Ref(p), Built::Ref(q)) => p.cmp(q),
            (Built::Tuple(p), Built::Tuple(q)) => {
                let order = p.len().cmp(&q.len());
                if order != Ordering::Equal {
                    return Ok(order);
                }
                self.compare_seq(p, q)?
            }
            (Built::List(p), Built::List(q)) => {
                let order = self.compare_seq(p, q)?;
                order.then(p.len().cmp(&q.len()))
            }
            (Built::Map(p), Built::Map(q)) => {
                let order = p.len().cmp(&q.len());
                if order != Ordering::Equal {
                    return Ok(order);
                }
                let keys: (Vec<usize>, Vec<usize>) = (
                    p.iter().map(|&(k, _)| k).collect(),
                    q.iter().map(|&(k, _)| k).collect(),
                );
                let order = self.compare_seq(&keys.0, &keys.1)?;
                if order != Ordering::Equal {
                    return Ok(order);
                }
                let values: (Vec<usize>, Vec<usize>) = (
                    p.iter().map(|&(_, v)| v).collect(),
                    q.iter().map(|&(_, v)| v).collect(),
                );
                self.compare_seq(&values.0, &values.1)?
            }
            _ => Ordering::Equal,
        })
    }

    /// Element-wise order of the common prefix.
    fn compare_seq(&self, p: &[usize], q: &[usize]) -> Result<Ordering> {
        for (&a, &b) in p.iter().zip(q) {
            let order = self.compare(a, b)?;
            if order != Ordering::Equal {
                return Ok(order);
            }
        }
        Ok(Ordering::Equal)
    }
}

impl TermBuilder for ExtBuilder<'_, '_> {
    type Term = usize;

    fn atom(&mut self, name: &'static str) -> usize {
        self.push(Built::Atom(name))
    }

    fn int(&mut self, value: i64) -> usize {
        self.push(Built::Int(value))
    }

    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<usize> {
        Ok(match small_int(negative, magnitude_le) {
            Some(i) => self.push(Built::Int(i)),
            None => self.push(Built::Big(negative, trim_magnitude(magnitude_le).to_vec())),
        })
    }

    fn float(&mut self, value: f64) -> usize {
        self.push(Built::Float(value))
    }

    fn binary(&mut self, bytes: &[u8]) -> usize {
        self.push(Built::Binary(bytes.to_vec()))
    }

    fn list(&mut self, items: Vec<usize>) -> usize {
        self.push(Built::List(items))
    }

    fn tuple(&mut self, items: Vec<usize>) -> usize {
        self.push(Built::Tuple(items))
    }

    fn map(&mut self, mut pairs: Vec<(usize, usize)>) -> Result<usize> {
        // Sorted, equal keys are neighbours. A failed comparison (never expected: every term
        // here was built by this builder) is reported after the sort.
        let mut failure = None;
        pairs.sort_by(|&(a, _), &(b, _)| {
            self.compare(a, b).unwrap_or_else(|err| {
                failure.get_or_insert(err);
                Ordering::Equal
            })
        });
        if let Some(err) = failure {
            return Err(err);
        }
        for pair in pairs.windows(2) {
            if self.compare(pair[0].0, pair[1].0)? == Ordering::Equal {
                return Err(Error::DuplicateKey);
            }
        }
        Ok(self.push(Built::Map(pairs)))
    }

    fn pid(&mut self, etf: &[u8]) -> Result<usize> {
        let canonical = canonical_identity(etf)?;
        if canonical.get(1) != Some(&NEW_PID_EXT) {
            return Err(Error::BadExternalTerm("not a pid"));
        }
        Ok(self.push(Built::Pid(canonical)))
    }

    fn reference(&mut self, etf: &[u8]) -> Result<usize> {
        let canonical = canonical_identity(etf)?;
        if canonical.get(1) != Some(&NEWER_REFERENCE_EXT) {
            return Err(Error::BadExternalTerm("not a reference"));
        }
        Ok(self.push(Built::Ref(canonical)))
    }

    fn object(&mut self, object: Py<PyAny>) -> Result<usize> {
        let id = self.handles.store(self.py, object)?;
        Ok(self.push(Built::Ref(handle_ref(id))))
    }
}

fn len32(len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::BadExternalTerm("too large for the external term format"))
}

/// An atom as OTP 26 writes it (UTF-8). Atoms here have at most 255 characters, so at most
/// 1020 bytes.
fn put_atom(out: &mut Vec<u8>, name: &str) {
    match u8::try_from(name.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, len]),
        Err(_) => {
            out.push(ATOM_UTF8_EXT);
            out.extend_from_slice(&(name.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(name.as_bytes());
}

fn put_int(out: &mut Vec<u8>, value: i64) {
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

fn put_big(out: &mut Vec<u8>, negative: bool, magnitude_le: &[u8]) -> Result<()> {
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
