//! Erlang's external term format (ETF, what `term_to_binary/1` produces) for the conversion
//! rules: a [`TermReader`] and a [`TermBuilder`] on byte buffers, built on the byte codec
//! [`crate::etf`], so the rules of [`crate::convert`] read and write ETF exactly as they read
//! and write live terms inside the BEAM.
//!
//! - [`decode`] turns ETF bytes into a Python object, [`encode`] a Python object into ETF bytes:
//!   the `erlang.binary_to_term` / `erlang.term_to_binary` functions of both worlds, and the
//!   mocked BEAM's view of "what Erlang would see".
//! - [`Handles`] says where opaque Python objects go. Inside the BEAM there is no table
//!   ([`NoHandles`]: such objects cannot be encoded by `erlang.term_to_binary`); the mocked
//!   BEAM keeps them in a [`HandleTable`] and encodes each as a reference of the node
//!   [`HANDLE_NODE`]. [`ObjectRefs`] is what the one-pass writer of replies asks: any table,
//!   or inside the BEAM the reply's NIF resources.
//!
//! - [`etf_to_py`] and [`etf_list_to_tuple`] (module `one_pass`) make Python objects from ETF
//!   bytes in one pass, with no index: big call arguments reach executors this way.
//!
//! Reading indexes the whole input first ([`etf::Index`]), so malformed input is an
//! [`Error::BadEtf`] before any object is made; nesting is then bounded by
//! [`Options::max_depth`] as for live terms. Writing is [`etf::Writer`]'s. Runs on any thread
//! holding the GIL.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyType;

mod one_pass;

pub use one_pass::{etf_kwargs_to_py, etf_list_to_tuple, etf_to_py, ResolveRef};

use crate::convert::{self, Options, TermBuilder, TermReader, View};
use crate::error::{Error, Result};
use crate::etf::{self, Index, RefParts, Slot, Span, Stream, Term, Writer};

/// The node of the references that stand for Python objects in the mocked BEAM.
pub const HANDLE_NODE: &str = "erlang_python_mock@handle";

// ---------------------------------------------------------------------------------------------
// Handles

/// Where opaque Python objects go when they travel as Erlang terms.
pub trait Handles {
    /// Keeps `object` and returns its handle id, or fails when this world has no handles.
    fn store(&self, py: Python<'_>, object: Py<PyAny>) -> Result<u64>;
    /// The object behind handle `id`, if this table holds it.
    fn lookup(&self, py: Python<'_>, id: u64) -> Option<Py<PyAny>>;
}

/// Where a one-pass writer ([`StreamBuilder`]) gets the external-format bytes of the reference
/// that stands for an opaque Python object. Every [`Handles`] table is one (the reference of
/// the handle it stores the object as); inside the BEAM, the reply writer makes the object a
/// NIF resource, whose reference a `binary_to_term` in the same node turns back into the
/// resource while it lives (`bridge::reply`).
pub trait ObjectRefs {
    /// Keeps `object` and returns the ETF bytes (with the version byte) of its reference, or
    /// fails when this world cannot encode it.
    fn object_ref(&self, py: Python<'_>, object: Py<PyAny>) -> Result<Vec<u8>>;
}

impl<H: Handles + ?Sized> ObjectRefs for H {
    fn object_ref(&self, py: Python<'_>, object: Py<PyAny>) -> Result<Vec<u8>> {
        Ok(handle_ref(self.store(py, object)?))
    }
}

/// No handle table: the external term format of the real BEAM as `erlang.term_to_binary` writes
/// it, where an object with no Erlang equivalent cannot be encoded (a NIF resource's reference
/// gives back the resource only in the same node, and only while something else holds it).
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
    RefParts {
        node: Cow::Borrowed(HANDLE_NODE),
        creation: 0,
        ids: vec![id as u32, (id >> 32) as u32, 0],
    }
    .to_etf()
}

/// The handle id a reference stands for, if it is one.
fn handle_id(parts: &RefParts<'_>) -> Option<u64> {
    match parts.ids.as_slice() {
        [lo, hi, ..] if parts.node == HANDLE_NODE => Some(u64::from(*lo) | u64::from(*hi) << 32),
        _ => None,
    }
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

// ---------------------------------------------------------------------------------------------
// Reading

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
        self.index.root()
    }
}

impl<'a> TermReader<'a> for ExtReader<'a, '_> {
    type Term = Slot;

    fn view(&self, py: Python<'_>, term: Slot) -> Result<View<'a, Slot>> {
        Ok(match self.index.term(term)? {
            Term::Int(i) => View::Int(i),
            Term::Big {
                negative,
                magnitude_le,
            } => match etf::small_int(negative, magnitude_le) {
                Some(i) => View::Int(i),
                None => View::BigInt {
                    negative,
                    magnitude_le: Cow::Borrowed(magnitude_le),
                },
            },
            Term::Float(f) => View::Float(f),
            Term::Atom(name) => View::Atom(name),
            Term::Binary(bytes) | Term::BitBinary { bytes, bits: 8 } => View::Binary(bytes),
            Term::BitBinary { .. } => return Err(Error::Unsupported("bitstring")),
            Term::List { items, tail: None } => View::List(items),
            Term::List { tail: Some(_), .. } => return Err(Error::ImproperList),
            Term::Tuple(items) => View::Tuple(items),
            Term::Map(pairs) => {
                self.index.check_unique_keys(term, &pairs, self.max_depth)?;
                View::Map(pairs)
            }
            Term::Pid(pid) => View::Pid(pid.to_etf()),
            Term::Ref(parts) => {
                match handle_id(&parts).and_then(|id| self.handles.lookup(py, id)) {
                    Some(object) => View::Object(object),
                    None => View::Ref(parts.to_etf()),
                }
            }
            Term::Port { .. } => return Err(Error::Unsupported("port")),
            Term::Export { .. } | Term::Fun => return Err(Error::Unsupported("fun")),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Building

/// Builds ETF for the conversion rules: `builder.finish(term)` gives the bytes.
pub struct ExtBuilder<'py, 'h> {
    py: Python<'py>,
    writer: Writer,
    handles: &'h dyn Handles,
}

impl<'py, 'h> ExtBuilder<'py, 'h> {
    /// A builder whose objects with no Erlang equivalent go to `handles`.
    pub fn new(py: Python<'py>, handles: &'h dyn Handles) -> Self {
        ExtBuilder {
            py,
            writer: Writer::new(),
            handles,
        }
    }

    /// The ETF bytes of `term` (with the version byte).
    pub fn finish(&self, term: usize) -> Result<Vec<u8>> {
        Ok(self.writer.finish(term)?)
    }
}

impl TermBuilder for ExtBuilder<'_, '_> {
    type Term = usize;

    fn atom(&mut self, name: &'static str) -> usize {
        self.writer.atom(name)
    }

    fn int(&mut self, value: i64) -> usize {
        self.writer.int(value)
    }

    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<usize> {
        Ok(self.writer.bigint(negative, magnitude_le))
    }

    fn float(&mut self, value: f64) -> usize {
        self.writer.float(value)
    }

    fn binary(&mut self, bytes: &[u8]) -> usize {
        self.writer.binary(bytes)
    }

    fn list(&mut self, items: Vec<usize>) -> usize {
        self.writer.list(items)
    }

    fn tuple(&mut self, items: Vec<usize>) -> usize {
        self.writer.tuple(items)
    }

    fn map(&mut self, pairs: Vec<(usize, usize)>) -> Result<usize> {
        Ok(self.writer.map(pairs)?)
    }

    fn pid(&mut self, etf: &[u8]) -> Result<usize> {
        Ok(self.writer.pid(etf)?)
    }

    fn reference(&mut self, etf: &[u8]) -> Result<usize> {
        Ok(self.writer.reference(etf)?)
    }

    fn object(&mut self, object: Py<PyAny>) -> Result<usize> {
        let id = self.handles.store(self.py, object)?;
        Ok(self.writer.reference(&handle_ref(id))?)
    }
}

/// Builds ETF for the conversion rules straight into one buffer ([`etf::Stream`]): the same
/// term as [`ExtBuilder`]'s, made faster, for replies that the caller decodes. Objects with no
/// Erlang equivalent become the references `handles` gives them.
pub struct StreamBuilder<'py, 'h> {
    py: Python<'py>,
    stream: Stream,
    handles: &'h dyn ObjectRefs,
}

impl<'py, 'h> StreamBuilder<'py, 'h> {
    /// A builder whose objects with no Erlang equivalent become the references `handles`
    /// gives them.
    pub fn new(py: Python<'py>, handles: &'h dyn ObjectRefs) -> Self {
        StreamBuilder {
            py,
            stream: Stream::new(),
            handles,
        }
    }

    /// The ETF bytes of `root`, the last term built (with the version byte).
    pub fn finish(self, root: Span) -> Result<Vec<u8>> {
        Ok(self.stream.finish(root)?)
    }
}

impl TermBuilder for StreamBuilder<'_, '_> {
    type Term = Span;

    fn atom(&mut self, name: &'static str) -> Span {
        self.stream.atom(name)
    }

    fn int(&mut self, value: i64) -> Span {
        self.stream.int(value)
    }

    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<Span> {
        match etf::small_int(negative, magnitude_le) {
            Some(i) => Ok(self.stream.int(i)),
            None => Ok(self
                .stream
                .bigint(negative, etf::trim_magnitude(magnitude_le))?),
        }
    }

    fn float(&mut self, value: f64) -> Span {
        self.stream.float(value)
    }

    fn binary(&mut self, bytes: &[u8]) -> Span {
        // A binary of 4 GiB or more has no ETF: the stream fails at finish, and the reply is
        // built as terms instead.
        self.stream
            .binary(bytes)
            .unwrap_or_else(|_| self.stream.scatter())
    }

    fn list(&mut self, items: Vec<Span>) -> Span {
        self.stream
            .list(&items)
            .unwrap_or_else(|_| self.stream.scatter())
    }

    fn tuple(&mut self, items: Vec<Span>) -> Span {
        self.stream
            .tuple(&items)
            .unwrap_or_else(|_| self.stream.scatter())
    }

    fn map(&mut self, pairs: Vec<(Span, Span)>) -> Result<Span> {
        Ok(self.stream.map(&pairs)?)
    }

    fn float_list(&mut self, values: &[f64]) -> Span {
        if values.iter().all(|v| v.is_finite()) {
            if let Ok(span) = self.stream.float_list(values) {
                return span;
            }
        }
        let items = values
            .iter()
            .map(|&v| convert::float_term(self, v))
            .collect::<Vec<_>>();
        self.list(items)
    }

    fn int_list(&mut self, values: &[i64]) -> Span {
        self.stream
            .int_list(values)
            .unwrap_or_else(|_| self.stream.scatter())
    }

    fn open(&mut self) {
        self.stream.open();
    }

    fn pid(&mut self, etf: &[u8]) -> Result<Span> {
        Ok(self.stream.pid(etf)?)
    }

    fn reference(&mut self, etf: &[u8]) -> Result<Span> {
        Ok(self.stream.reference(etf)?)
    }

    fn object(&mut self, object: Py<PyAny>) -> Result<Span> {
        let etf = self.handles.object_ref(self.py, object)?;
        Ok(self.stream.reference(&etf)?)
    }
}
