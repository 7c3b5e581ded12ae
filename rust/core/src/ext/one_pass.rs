//! Erlang terms to Python objects straight from their external term format (what
//! `term_to_binary/1` writes), in one pass over the bytes: no index, no term handles, no call
//! out per element. Big call arguments reach executors this way (`docs/type-conversion.md`,
//! "What conversion costs"): the caller's `term_to_binary` is C-fast and yields, and this
//! decoder makes the Python objects with nothing between them and the bytes.
//!
//! The rules are [`convert::to_py`]'s, to the letter (the tests hold the two to the same
//! results over generated terms, errors included): the same objects, the same errors, and the
//! same error when a term has more than one fault. Tuples tagged `py_array` are handed to the
//! array rules through an [`ExtReader`] over their bytes. References go through a resolver, so
//! that the NIF can give back the Python object behind an opaque handle. Runs on the thread
//! that holds the GIL.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use super::{ExtReader, NoHandles};
use crate::convert::{self, atom_to_py, bigint_to_py, check_depth, new_list, new_tuple, Options};
use crate::error::{Error, Result};
use crate::etf::{self, tag::*, Cursor};
use crate::types::{Pid, Ref};

/// Finds the Python object an encoded reference (its ETF, with the version byte) stands for,
/// if it is an opaque handle; `None` for any other reference.
pub type ResolveRef<'r> = &'r dyn Fn(Python<'_>, &[u8]) -> Option<Py<PyAny>>;

/// The Python object of the encoded term `data` (with the version byte), by the rules of
/// [`convert::to_py`].
pub fn etf_to_py<'py>(
    py: Python<'py>,
    data: &[u8],
    resolve: ResolveRef<'_>,
    opts: &Options,
) -> Result<Bound<'py, PyAny>> {
    let mut dec = Decoder::new(data, resolve, opts)?;
    let value = dec.term(py, 0)?;
    dec.cur.finish()?;
    Ok(value)
}

/// The elements of the encoded list `data` as a tuple (a call's positional arguments): each
/// element by the rules of [`convert::to_py`], at the depth of a top-level value.
pub fn etf_list_to_tuple<'py>(
    py: Python<'py>,
    data: &[u8],
    resolve: ResolveRef<'_>,
    opts: &Options,
) -> Result<Bound<'py, PyTuple>> {
    let mut dec = Decoder::new(data, resolve, opts)?;
    let start = dec.cur.pos();
    let items = match dec.cur.u8()? {
        NIL_EXT => Vec::new(),
        STRING_EXT => {
            let bytes = dec.cur.take_u16_len()?;
            bytes
                .iter()
                .map(|&b| small_int(py, i64::from(b)))
                .collect::<Result<_>>()?
        }
        LIST_EXT => {
            let len = dec.cur.len32()?;
            let mut items = Vec::with_capacity(len.min(dec.cur.remaining()));
            for i in 0..len {
                let at = dec.cur.pos();
                match dec.term(py, 0) {
                    Ok(item) => items.push(item),
                    Err(err) => return Err(dec.list_error(err, at, len - i)),
                }
            }
            if !dec.tail_is_nil()? {
                return Err(Error::ImproperList);
            }
            items
        }
        _ => {
            return Err(Error::BadEtf {
                at: start,
                what: "arguments are not a list",
            })
        }
    };
    dec.cur.finish()?;
    Ok(PyTuple::new(py, items)?)
}

/// The encoded map `data` (with the version byte) as a dict of names: eval locals, by the
/// rules of [`convert::kwargs_to_py`] for a map, to the letter (the same keys, the same
/// errors, the first fault in the map's order reported).
pub fn etf_kwargs_to_py<'py>(
    py: Python<'py>,
    data: &[u8],
    resolve: ResolveRef<'_>,
    opts: &Options,
) -> Result<Bound<'py, PyDict>> {
    let mut dec = Decoder::new(data, resolve, opts)?;
    let at = dec.cur.pos();
    if dec.cur.u8()? != MAP_EXT {
        return Err(Error::BadEtf {
            at,
            what: "keyword arguments are not a map",
        });
    }
    let arity = dec.cur.len32()?;
    if arity > dec.cur.remaining() {
        return Err(dec.cur.bad("truncated").into());
    }
    let dict = PyDict::new(py);
    for _ in 0..arity {
        let key = dec.kwarg_key(py)?;
        if dict.contains(&key)? {
            return Err(Error::DuplicateMapKey(format!(
                "{:?}",
                key.to_string_lossy()
            )));
        }
        // As `kwargs_to_py`: a value nests as deep as a positional argument.
        dict.set_item(key, dec.term(py, 0)?)?;
    }
    dec.cur.finish()?;
    Ok(dict)
}

struct Decoder<'a, 'r> {
    cur: Cursor<'a>,
    data: &'a [u8],
    resolve: ResolveRef<'r>,
    opts: &'r Options,
    /// The `str` objects of recent short map keys (see [`Decoder::map_key`]).
    keys: Vec<Option<(&'a [u8], Py<PyAny>)>>,
}

/// Slots of the map-key cache, and the longest key it holds.
const KEY_SLOTS: usize = 64;
const KEY_MAX_LEN: usize = 32;

/// A Python int (a new reference).
fn small_int(py: Python<'_>, value: i64) -> Result<Bound<'_, PyAny>> {
    // SAFETY: PyLong_FromLongLong returns a new reference or NULL with an exception set.
    Ok(unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(value))? })
}

impl<'a, 'r> Decoder<'a, 'r> {
    fn new(data: &'a [u8], resolve: ResolveRef<'r>, opts: &'r Options) -> Result<Self> {
        Ok(Decoder {
            cur: Cursor::after_version(data)?,
            data,
            resolve,
            opts,
            keys: Vec::new(),
        })
    }

    /// The error of a list whose element starting at byte `at` failed with `err`, `left`
    /// elements before its tail: an improper list is reported as such whatever its elements
    /// hold, as the live reader finds the tail before it looks at any element. Skips the
    /// failed element and the rest to find the tail.
    fn list_error(&mut self, err: Error, at: usize, left: usize) -> Error {
        if matches!(err, Error::BadEtf { .. }) {
            return err;
        }
        self.cur = Cursor::new(self.data, at);
        for _ in 0..left {
            if let Err(bad) = etf::skip_term(&mut self.cur) {
                return bad.into();
            }
        }
        match self.tail_is_nil() {
            Ok(true) => err,
            Ok(false) => Error::ImproperList,
            Err(bad) => bad,
        }
    }

    /// Reads a list's tail: true for `[]`; any other tail is skipped.
    fn tail_is_nil(&mut self) -> Result<bool> {
        let at = self.cur.pos();
        if self.cur.u8()? == NIL_EXT {
            return Ok(true);
        }
        self.skip_from(at)?;
        Ok(false)
    }

    fn term<'py>(&mut self, py: Python<'py>, depth: usize) -> Result<Bound<'py, PyAny>> {
        let at = self.cur.pos();
        let tag = self.cur.u8()?;
        match tag {
            SMALL_INTEGER_EXT => small_int(py, i64::from(self.cur.u8()?)),
            INTEGER_EXT => small_int(py, i64::from(self.cur.u32()? as i32)),
            NEW_FLOAT_EXT | FLOAT_EXT => {
                let value = self.cur.float(tag)?;
                // SAFETY: PyFloat_FromDouble returns a new reference or NULL with an exception.
                Ok(unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFloat_FromDouble(value))? })
            }
            BINARY_EXT => {
                let len = self.cur.len32()?;
                Ok(binary_to_py(py, self.cur.take(len)?))
            }
            LIST_EXT => self.list(py, depth),
            NIL_EXT => {
                check_depth(depth + 1, self.opts)?;
                Ok(new_list(py, 0)?.into_any())
            }
            STRING_EXT => {
                let bytes = self.cur.take_u16_len()?;
                check_depth(depth + 1, self.opts)?;
                let list = new_list(py, bytes.len())?;
                for (i, &b) in bytes.iter().enumerate() {
                    let item = small_int(py, i64::from(b))?;
                    // SAFETY: `list` is new, of this length, seen by nobody else; slot `i` is
                    // in range and empty; SET_ITEM takes the reference `into_ptr` gives up.
                    unsafe {
                        ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr())
                    };
                }
                Ok(list.into_any())
            }
            SMALL_TUPLE_EXT => {
                let arity = usize::from(self.cur.u8()?);
                self.tuple(py, at, arity, depth)
            }
            LARGE_TUPLE_EXT => {
                let arity = self.cur.len32()?;
                self.tuple(py, at, arity, depth)
            }
            MAP_EXT => {
                let arity = self.cur.len32()?;
                self.map(py, arity, depth)
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT | ATOM_CACHE_REF => {
                let name = self.cur.atom_after(tag)?;
                Ok(atom_to_py(py, &name))
            }
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (negative, magnitude) = self.cur.bignum(tag)?;
                match etf::small_int(negative, magnitude) {
                    Some(value) => small_int(py, value),
                    None => bigint_to_py(py, negative, etf::trim_magnitude(magnitude)),
                }
            }
            BIT_BINARY_EXT => {
                let len = self.cur.len32()?;
                let bits = self.cur.u8()?;
                let bytes = self.cur.take(len)?;
                if bits == 8 {
                    Ok(binary_to_py(py, bytes))
                } else {
                    Err(Error::Unsupported("bitstring"))
                }
            }
            PID_EXT | NEW_PID_EXT => {
                let pid = self.cur.pid(tag)?;
                Ok(Bound::new(py, Pid::from_etf(&pid.to_etf()))?.into_any())
            }
            REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let etf = self.cur.reference(tag)?.to_etf();
                match (self.resolve)(py, &etf) {
                    Some(object) => Ok(object.into_bound(py)),
                    None => Ok(Bound::new(py, Ref::from_etf(&etf))?.into_any()),
                }
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
                self.skip_from(at)?;
                Err(Error::Unsupported("port"))
            }
            NEW_FUN_EXT | EXPORT_EXT | FUN_EXT => {
                self.skip_from(at)?;
                Err(Error::Unsupported("fun"))
            }
            _ => Err(Error::BadEtf {
                at,
                what: "unexpected tag",
            }),
        }
    }

    /// Skips the term that starts at `at` (the cursor is past its tag).
    fn skip_from(&mut self, at: usize) -> Result<()> {
        self.cur = Cursor::new(self.data, at);
        Ok(etf::skip_term(&mut self.cur)?)
    }

    fn list<'py>(&mut self, py: Python<'py>, depth: usize) -> Result<Bound<'py, PyAny>> {
        let len = self.cur.len32()?;
        // Each element takes at least one byte: a length the input cannot back is malformed,
        // and must not size an allocation.
        if len > self.cur.remaining() {
            return Err(self.cur.bad("truncated").into());
        }
        if let Err(err) = check_depth(depth + 1, self.opts) {
            let at = self.cur.pos();
            return Err(self.list_error(err, at, len));
        }
        let list = new_list(py, len)?;
        for i in 0..len {
            let at = self.cur.pos();
            let item = match self.next_small_int() {
                Some(value) => small_int(py, value),
                None => self.term(py, depth + 1),
            };
            match item {
                Ok(item) => {
                    // SAFETY: as for strings above: a new list, slot `i` in range and empty.
                    // On an early return the list is freed with its empty slots still NULL,
                    // which list_dealloc skips.
                    unsafe {
                        ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr())
                    };
                }
                Err(err) => return Err(self.list_error(err, at, len - i)),
            }
        }
        if self.tail_is_nil()? {
            Ok(list.into_any())
        } else {
            Err(Error::ImproperList)
        }
    }

    fn tuple<'py>(
        &mut self,
        py: Python<'py>,
        at: usize,
        arity: usize,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>> {
        if arity > self.cur.remaining() {
            return Err(self.cur.bad("truncated").into());
        }
        check_depth(depth + 1, self.opts)?;
        if arity == 4 && self.next_is_array_tag() {
            return self.array(py, at);
        }
        let tuple = new_tuple(py, arity)?;
        for i in 0..arity {
            let item = self.term(py, depth + 1)?;
            // SAFETY: a new tuple nobody else has seen, slot `i` in range and empty;
            // tupledealloc skips the slots an early return leaves NULL.
            unsafe { ffi::PyTuple_SET_ITEM(tuple.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) };
        }
        Ok(tuple.into_any())
    }

    /// The next term when it is an integer of one or four bytes (most elements of lists of
    /// numbers), read past; else `None`, and the cursor stays. [`Decoder::term`] reads the
    /// same integers; this is its first two cases without the dispatch of every other tag.
    fn next_small_int(&mut self) -> Option<i64> {
        let at = self.cur.pos();
        match *self.data.get(at..)? {
            [SMALL_INTEGER_EXT, b, ..] => {
                self.cur = Cursor::new(self.data, at + 2);
                Some(i64::from(b))
            }
            [INTEGER_EXT, b0, b1, b2, b3, ..] => {
                self.cur = Cursor::new(self.data, at + 5);
                Some(i64::from(i32::from_be_bytes([b0, b1, b2, b3])))
            }
            _ => None,
        }
    }

    /// True when the next term is the atom that tags the array form.
    fn next_is_array_tag(&self) -> bool {
        let mut peek = self.cur.clone();
        match peek.u8() {
            Ok(tag) => peek
                .atom_after(tag)
                .is_ok_and(|name| name == convert::ARRAY_TAG),
            Err(_) => false,
        }
    }

    /// `{py_array, Dtype, Shape, Data}` starting at `at`: the array rules, read from the
    /// tuple's own bytes.
    fn array<'py>(&mut self, py: Python<'py>, at: usize) -> Result<Bound<'py, PyAny>> {
        self.skip_from(at)?;
        let mut bytes = Vec::with_capacity(self.cur.pos() - at + 1);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.data[at..self.cur.pos()]);
        let reader = ExtReader::new(&bytes, &NoHandles, self.opts.max_depth)?;
        convert::to_py(py, &reader, reader.root(), self.opts)
    }

    /// A keyword argument's name, as `convert::kwargs_to_py` reads it from a term: an atom's
    /// name, a UTF-8 binary, or a list of character codes; anything else is
    /// [`Error::BadKwargKey`], except what the term reader refuses outright (a bitstring, a
    /// fun, a port, an improper list), which is that error.
    fn kwarg_key<'py>(&mut self, py: Python<'py>) -> Result<Bound<'py, PyString>> {
        let tag = self.cur.u8()?;
        match tag {
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT | ATOM_CACHE_REF => {
                let name = self.cur.atom_after(tag)?;
                Ok(PyString::new(py, &name))
            }
            BINARY_EXT => {
                let len = self.cur.len32()?;
                let bytes = self.cur.take(len)?;
                utf8_key(py, bytes)
            }
            BIT_BINARY_EXT => {
                let len = self.cur.len32()?;
                let bits = self.cur.u8()?;
                let bytes = self.cur.take(len)?;
                if bits == 8 {
                    utf8_key(py, bytes)
                } else {
                    Err(Error::Unsupported("bitstring"))
                }
            }
            NIL_EXT => Ok(PyString::new(py, "")),
            STRING_EXT => {
                let bytes = self.cur.take_u16_len()?;
                let text: String = bytes.iter().map(|&b| char::from(b)).collect();
                Ok(PyString::new(py, &text))
            }
            LIST_EXT => self.charlist_key(py),
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => Err(Error::Unsupported("port")),
            NEW_FUN_EXT | EXPORT_EXT | FUN_EXT => Err(Error::Unsupported("fun")),
            _ => Err(Error::BadKwargKey),
        }
    }

    /// A keyword argument's name given as a list (after its `LIST_EXT` tag): the term reader
    /// finds an improper list first, then looks at the elements in order.
    fn charlist_key<'py>(&mut self, py: Python<'py>) -> Result<Bound<'py, PyString>> {
        let len = self.cur.len32()?;
        if len > self.cur.remaining() {
            return Err(self.cur.bad("truncated").into());
        }
        let start = self.cur.pos();
        for _ in 0..len {
            etf::skip_term(&mut self.cur)?;
        }
        if !self.tail_is_nil()? {
            return Err(Error::ImproperList);
        }
        let end = self.cur.pos();
        self.cur = Cursor::new(self.data, start);
        let mut text = String::with_capacity(len);
        for _ in 0..len {
            match self.key_char()? {
                Some(ch) => text.push(ch),
                None => return Err(Error::BadKwargKey),
            }
        }
        self.cur = Cursor::new(self.data, end);
        Ok(PyString::new(py, &text))
    }

    /// An element of a name given as a list: its character, `None` when it is not one, or the
    /// term reader's error for a term it refuses outright.
    fn key_char(&mut self) -> Result<Option<char>> {
        let at = self.cur.pos();
        let tag = self.cur.u8()?;
        let code = match tag {
            SMALL_INTEGER_EXT => i64::from(self.cur.u8()?),
            INTEGER_EXT => i64::from(self.cur.u32()? as i32),
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (negative, magnitude) = self.cur.bignum(tag)?;
                match etf::small_int(negative, magnitude) {
                    Some(value) => value,
                    None => return Ok(None),
                }
            }
            BIT_BINARY_EXT => {
                let len = self.cur.len32()?;
                let bits = self.cur.u8()?;
                self.cur.take(len)?;
                // A whole number of bytes is a binary: not a character.
                return if bits == 8 {
                    Ok(None)
                } else {
                    Err(Error::Unsupported("bitstring"))
                };
            }
            LIST_EXT => {
                // A list element is looked at as a list: improper is an error of its own.
                let len = self.cur.len32()?;
                for _ in 0..len {
                    etf::skip_term(&mut self.cur)?;
                }
                return if self.tail_is_nil()? {
                    Ok(None)
                } else {
                    Err(Error::ImproperList)
                };
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => return Err(Error::Unsupported("port")),
            NEW_FUN_EXT | EXPORT_EXT | FUN_EXT => return Err(Error::Unsupported("fun")),
            _ => {
                self.skip_from(at)?;
                return Ok(None);
            }
        };
        Ok(u32::try_from(code).ok().and_then(char::from_u32))
    }

    /// A map key. Documents repeat the same short keys in map after map: a short binary key
    /// that is UTF-8 comes from a small cache of `str` objects, so that each distinct key is
    /// decoded, allocated and hashed once (`str` caches its hash) and dicts compare the keys
    /// by identity. The values are the same `str` either way.
    fn map_key<'py>(&mut self, py: Python<'py>, depth: usize) -> Result<Bound<'py, PyAny>> {
        let mut peek = self.cur.clone();
        if peek.u8()? != BINARY_EXT {
            return self.term(py, depth);
        }
        let len = peek.len32()?;
        if len > KEY_MAX_LEN {
            return self.term(py, depth);
        }
        let bytes = peek.take(len)?;
        if self.keys.is_empty() {
            self.keys.resize_with(KEY_SLOTS, || None);
        }
        // FNV-1a: keys are short.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let slot = &mut self.keys[(hash as usize) % KEY_SLOTS];
        // A hit is UTF-8: the slot's bytes were checked when the key was made.
        if let Some((seen, key)) = slot {
            if *seen == bytes {
                self.cur = peek;
                return Ok(key.bind(py).clone());
            }
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return self.term(py, depth);
        };
        self.cur = peek;
        let key = PyString::new(py, text).into_any();
        *slot = Some((bytes, key.clone().unbind()));
        Ok(key)
    }

    fn map<'py>(
        &mut self,
        py: Python<'py>,
        arity: usize,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>> {
        if arity > self.cur.remaining() {
            return Err(self.cur.bad("truncated").into());
        }
        check_depth(depth + 1, self.opts)?;
        let dict = PyDict::new(py);
        for _ in 0..arity {
            let key = self.map_key(py, depth + 1)?;
            // As `to_py`: a duplicate key found before a bad value is the error reported.
            convert::insert_entry(&dict, &key, self.term(py, depth + 1))?;
        }
        Ok(dict.into_any())
    }
}

/// A keyword argument's name given as a binary: its text when it is UTF-8.
fn utf8_key<'py>(py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyString>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(PyString::new(py, text)),
        Err(_) => Err(Error::BadKwargKey),
    }
}

/// A binary's object: `str` when it is UTF-8, else `bytes`.
fn binary_to_py<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyAny> {
    match std::str::from_utf8(bytes) {
        Ok(text) => PyString::new(py, text).into_any(),
        Err(_) => PyBytes::new(py, bytes).into_any(),
    }
}

impl<'a> Cursor<'a> {
    /// The bytes of a `STRING_EXT` (after its tag): a 16-bit length, then the bytes.
    fn take_u16_len(&mut self) -> crate::etf::Result<&'a [u8]> {
        let len = self.u16()?;
        self.take(len)
    }
}
