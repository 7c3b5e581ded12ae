//! The conversion rules between Erlang terms and Python objects (`docs/type-conversion.md`).
//!
//! The rules are written once, here, and are generic over where the terms live: a
//! [`TermReader`] shows an Erlang term as a [`View`], a [`TermBuilder`] makes Erlang terms.
//! The NIF implements both on rustler terms (so the hot path builds terms and objects directly,
//! with no intermediate tree); the mocked BEAM implements them on its own representation.
//! Runs on the thread that holds the GIL. Depth is bounded by [`Options::max_depth`], which also
//! turns cyclic Python structures into a clear error.

mod arrays;

pub use arrays::{py_array, PyArrayTerm, ARRAY_TAG};

use std::borrow::Cow;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyIterator, PyList, PySet,
    PyString, PyTuple,
};
use pyo3::Borrowed;

use crate::error::{Error, Result};
use crate::types::{Pid, Ref};

/// The default bound on nesting ([`Options::max_depth`]) in every world: the NIF's initial
/// bound, the mocked BEAM's, and `erlang.term_to_binary`'s.
pub const DEFAULT_MAX_DEPTH: usize = 1000;

/// Limits applied to every conversion.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Deepest nesting of lists, tuples and maps accepted in either direction.
    pub max_depth: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// What an Erlang term is, as the rules need to see it.
pub enum View<'a, T> {
    /// An atom, by name.
    Atom(Cow<'a, str>),
    /// An atom that converts to a `str` (any but `true`, `false`, `nil`, `none` and
    /// `undefined`), given as that `str`: a reader that keeps the `str`s of the atoms it saw
    /// hands them out again rather than the name (the NIF's reader, for the atom keys every
    /// request repeats). [`View::is_atom`] and [`View::into_atom_name`] see both forms.
    AtomStr(Py<PyString>),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// Any other integer: sign and little-endian magnitude.
    BigInt {
        /// True for negative numbers.
        negative: bool,
        /// Magnitude, least significant byte first.
        magnitude_le: Cow<'a, [u8]>,
    },
    /// A float.
    Float(f64),
    /// A binary (whole bytes).
    Binary(&'a [u8]),
    /// The elements of a proper list.
    List(Vec<T>),
    /// The elements of a tuple.
    Tuple(Vec<T>),
    /// The pairs of a map.
    Map(Vec<(T, T)>),
    /// A pid, as external-format bytes.
    Pid(Vec<u8>),
    /// A reference, as external-format bytes.
    Ref(Vec<u8>),
    /// A handle to a Python object that went to Erlang earlier.
    Object(Py<PyAny>),
}

impl<'a, T> View<'a, T> {
    /// Whether this is the atom `name`, in either form.
    pub fn is_atom(&self, py: Python<'_>, name: &str) -> bool {
        match self {
            View::Atom(atom) => atom == name,
            View::AtomStr(text) => text.bind(py).to_str().is_ok_and(|text| text == name),
            _ => false,
        }
    }

    /// The atom's name, in either form; `None` for any other term.
    pub fn into_atom_name(self, py: Python<'_>) -> Option<Cow<'a, str>> {
        match self {
            View::Atom(atom) => Some(atom),
            View::AtomStr(text) => Some(Cow::Owned(text.bind(py).to_string_lossy().into_owned())),
            _ => None,
        }
    }
}

/// Shows Erlang terms to the rules. `view` fails with [`Error::ImproperList`] or
/// [`Error::Unsupported`] for terms with no Python equivalent.
pub trait TermReader<'a> {
    /// The term type of this world.
    type Term: Copy;
    /// Looks at one term (`py` lets the reader hand back Python object handles).
    fn view(&self, py: Python<'_>, term: Self::Term) -> Result<View<'a, Self::Term>>;

    /// An object that lends Python the bytes of a binary term through the buffer protocol,
    /// read-only and without copying them, for as long as Python holds it; `None` (the
    /// default) when this world does not, and the bytes are copied. The array form's data
    /// goes through here.
    fn binary_buffer<'py>(
        &self,
        _py: Python<'py>,
        _term: Self::Term,
    ) -> Result<Option<Bound<'py, PyAny>>> {
        Ok(None)
    }
}

/// Makes Erlang terms for the rules.
pub trait TermBuilder {
    /// The term type of this world.
    type Term;
    /// One of the fixed atoms the rules produce (`true`, `none`, `nan`, `generator`, ...).
    fn atom(&mut self, name: &'static str) -> Self::Term;
    /// A small integer.
    fn int(&mut self, value: i64) -> Self::Term;
    /// A big integer from its sign and little-endian magnitude.
    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<Self::Term>;
    /// A float (always finite here).
    fn float(&mut self, value: f64) -> Self::Term;
    /// A binary holding a copy of `bytes`.
    fn binary(&mut self, bytes: &[u8]) -> Self::Term;
    /// A proper list.
    fn list(&mut self, items: Vec<Self::Term>) -> Self::Term;
    /// A tuple.
    fn tuple(&mut self, items: Vec<Self::Term>) -> Self::Term;
    /// A map; fails with [`Error::DuplicateKey`] when two keys are equal.
    fn map(&mut self, pairs: Vec<(Self::Term, Self::Term)>) -> Result<Self::Term>;
    /// A proper list of the floats `values`, with `nan`, `infinity` and `neg_infinity` for
    /// those values: what [`TermBuilder::list`] of their terms gives. Builders may make it
    /// faster (the rows of numpy arrays come through here).
    fn float_list(&mut self, values: &[f64]) -> Self::Term
    where
        Self: Sized,
    {
        let items = values.iter().map(|&v| float_term(self, v)).collect();
        self.list(items)
    }
    /// A proper list of the integers `values`: what [`TermBuilder::list`] of their terms gives.
    fn int_list(&mut self, values: &[i64]) -> Self::Term
    where
        Self: Sized,
    {
        let items = values.iter().map(|&v| self.int(v)).collect();
        self.list(items)
    }
    /// Told the size of a map before its pairs are converted; an error ends the conversion
    /// there, for a builder that would rather not build such a map (the NIF's reply builder,
    /// which leaves big maps to the external term format). The default takes any map.
    fn begin_map(&mut self, _len: usize) -> Result<()> {
        Ok(())
    }
    /// Told that the elements (or key-value pairs) of a list, tuple or map come next, made
    /// one after the other, and then the container itself: a builder that writes bytes keeps
    /// room for the container's header there. The default does nothing.
    fn open(&mut self) {}
    /// The term this builder made earlier for the dict key `key` (an exact `str`), if it
    /// remembers one ([`TermBuilder::remember_key`]): documents repeat the same keys, and a
    /// builder whose terms can be shared makes each key's binary once. The default remembers
    /// nothing.
    fn known_key(&mut self, _key: &Bound<'_, PyString>) -> Option<Self::Term> {
        None
    }
    /// Told that `term` is the term of the dict key `key` (an exact `str`); a builder that
    /// remembers it must hold `key` meanwhile, so that no other object takes its address.
    fn remember_key(&mut self, _key: &Bound<'_, PyString>, _term: &Self::Term) {}
    /// A pid from its external-format bytes.
    fn pid(&mut self, etf: &[u8]) -> Result<Self::Term>;
    /// A reference from its external-format bytes.
    fn reference(&mut self, etf: &[u8]) -> Result<Self::Term>;
    /// An opaque handle that keeps `object` alive until Erlang drops it.
    fn object(&mut self, object: Py<PyAny>) -> Result<Self::Term>;
}

pub(crate) fn check_depth(depth: usize, opts: &Options) -> Result<()> {
    if depth > opts.max_depth {
        Err(Error::TooDeep(opts.max_depth))
    } else {
        Ok(())
    }
}

/// Converts an Erlang term to a Python object.
pub fn to_py<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    term: R::Term,
    opts: &Options,
) -> Result<Bound<'py, PyAny>> {
    to_py_at(py, reader, term, opts, 0)
}

fn to_py_at<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    term: R::Term,
    opts: &Options,
    depth: usize,
) -> Result<Bound<'py, PyAny>> {
    match reader.view(py, term)? {
        View::Int(i) => {
            // SAFETY: PyLong_FromLongLong returns a new reference, or NULL with an exception
            // set (out of memory), which `from_owned_ptr_or_err` turns into an error.
            Ok(unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(i))? })
        }
        View::Float(f) => {
            // SAFETY: as above, for PyFloat_FromDouble.
            Ok(unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFloat_FromDouble(f))? })
        }
        view => to_py_view(py, reader, view, opts, depth),
    }
}

/// [`to_py_at`] for everything but ints and floats.
#[inline(never)]
fn to_py_view<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    view: View<'a, R::Term>,
    opts: &Options,
    depth: usize,
) -> Result<Bound<'py, PyAny>> {
    Ok(match view {
        View::Atom(name) => atom_to_py(py, &name),
        View::AtomStr(text) => text.into_bound(py).into_any(),
        View::Int(i) => i.into_pyobject(py).map_err(PyErr::from)?.into_any(),
        View::BigInt {
            negative,
            magnitude_le,
        } => bigint_to_py(py, negative, &magnitude_le)?,
        View::Float(f) => PyFloat::new(py, f).into_any(),
        View::Binary(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => PyString::new(py, text).into_any(),
            Err(_) => PyBytes::new(py, bytes).into_any(),
        },
        View::List(items) => {
            check_depth(depth + 1, opts)?;
            let list = new_list(py, items.len())?;
            for (i, t) in items.into_iter().enumerate() {
                let obj = to_py_at(py, reader, t, opts, depth + 1)?;
                // SAFETY: `list` is new, of length `items.len()`, and seen by nobody else yet;
                // slot `i` is in range and still empty, and SET_ITEM takes over the reference
                // `into_ptr` gives up. On an early return the list is freed with its slots
                // still NULL, which list_dealloc skips.
                unsafe {
                    ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, obj.into_ptr())
                };
            }
            list.into_any()
        }
        View::Tuple(items) => {
            check_depth(depth + 1, opts)?;
            if let [tag, dtype, shape, data] = items[..] {
                if reader.view(py, tag)?.is_atom(py, arrays::ARRAY_TAG) {
                    return arrays::array_from_term(py, reader, dtype, shape, data);
                }
            }
            let tuple = new_tuple(py, items.len())?;
            for (i, t) in items.into_iter().enumerate() {
                let obj = to_py_at(py, reader, t, opts, depth + 1)?;
                // SAFETY: as for lists: a new tuple nobody else has seen, slot `i` in range and
                // empty; tupledealloc skips the slots an early return leaves NULL.
                unsafe {
                    ffi::PyTuple_SET_ITEM(tuple.as_ptr(), i as ffi::Py_ssize_t, obj.into_ptr())
                };
            }
            tuple.into_any()
        }
        View::Map(pairs) => {
            check_depth(depth + 1, opts)?;
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                let key = to_py_at(py, reader, k, opts, depth + 1)?;
                insert_entry(&dict, &key, to_py_at(py, reader, v, opts, depth + 1))?;
            }
            dict.into_any()
        }
        View::Pid(etf) => Bound::new(py, Pid::from_etf(&etf))?.into_any(),
        View::Ref(etf) => Bound::new(py, Ref::from_etf(&etf))?.into_any(),
        View::Object(obj) => obj.into_bound(py),
    })
}

/// Puts `key` and its converted `value` in `dict`, a map's entry, with one lookup: insert,
/// then a dict that did not grow had the key already. Which error a map with both a
/// duplicate key and a bad value reports stays the duplicate (found before the value is
/// converted): the bad value's error path looks the key up.
pub(crate) fn insert_entry<'py>(
    dict: &Bound<'py, PyDict>,
    key: &Bound<'py, PyAny>,
    value: Result<Bound<'py, PyAny>>,
) -> Result<()> {
    let value = match value {
        Ok(value) => value,
        Err(err) => {
            return Err(if dict.contains(key)? {
                duplicate_key(key)
            } else {
                err
            })
        }
    };
    let before = dict.len();
    dict.set_item(key, value)?;
    if dict.len() == before {
        return Err(duplicate_key(key));
    }
    Ok(())
}

pub(crate) fn duplicate_key(key: &Bound<'_, PyAny>) -> Error {
    let shown = key.repr().map(|r| r.to_string_lossy().into_owned());
    Error::DuplicateMapKey(shown.unwrap_or_default())
}

/// A new list of `len` empty (NULL) slots, to be filled with `PyList_SET_ITEM`.
pub(crate) fn new_list(py: Python<'_>, len: usize) -> Result<Bound<'_, PyList>> {
    let len = ffi::Py_ssize_t::try_from(len).map_err(|_| Error::Unsupported("list too long"))?;
    // SAFETY: PyList_New returns a new reference or NULL with an exception set, which
    // `from_owned_ptr_or_err` turns into an error; the object is a list.
    let list = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len))? };
    // SAFETY: PyList_New made a list.
    Ok(unsafe { list.cast_into_unchecked() })
}

/// A new tuple of `len` empty (NULL) slots, to be filled with `PyTuple_SET_ITEM`.
pub(crate) fn new_tuple(py: Python<'_>, len: usize) -> Result<Bound<'_, PyTuple>> {
    let len = ffi::Py_ssize_t::try_from(len).map_err(|_| Error::Unsupported("tuple too long"))?;
    // SAFETY: as in `new_list`, for PyTuple_New.
    let tuple = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(len))? };
    // SAFETY: PyTuple_New made a tuple.
    Ok(unsafe { tuple.cast_into_unchecked() })
}

pub(crate) fn atom_to_py<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyAny> {
    match name {
        "true" => PyBool::new(py, true).to_owned().into_any(),
        "false" => PyBool::new(py, false).to_owned().into_any(),
        "nil" | "none" | "undefined" => py.None().into_bound(py),
        other => PyString::new(py, other).into_any(),
    }
}

pub(crate) fn bigint_to_py<'py>(
    py: Python<'py>,
    negative: bool,
    magnitude_le: &[u8],
) -> Result<Bound<'py, PyAny>> {
    let bytes = PyBytes::new(py, magnitude_le);
    let int_type = py.get_type::<PyInt>();
    let value = int_type.call_method1("from_bytes", (bytes, "little"))?;
    Ok(if negative { value.neg()? } else { value })
}

/// Converts Erlang keyword arguments to a Python `dict`: a map whose keys are atoms, binaries
/// or strings, or a list of `{Name, Value}` pairs whose names are atoms (an Elixir keyword
/// list, an Erlang proplist of pairs), in order, each name at most once. Eval locals, always a
/// map, go through here too.
pub fn kwargs_to_py<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    term: R::Term,
    opts: &Options,
) -> Result<Bound<'py, PyDict>> {
    match reader.view(py, term)? {
        View::Map(pairs) => kwargs_map_to_py(py, reader, pairs, opts),
        View::List(items) => kwargs_list_to_py(py, reader, items, opts),
        _ => Err(Error::Unsupported(
            "keyword argument container (expected a map or a list of pairs)",
        )),
    }
}

fn kwargs_map_to_py<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    pairs: Vec<(R::Term, R::Term)>,
    opts: &Options,
) -> Result<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in pairs {
        let key = match reader.view(py, k)? {
            View::Atom(name) => PyString::new(py, &name),
            View::AtomStr(text) => text.into_bound(py),
            View::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => PyString::new(py, text),
                Err(_) => return Err(Error::BadKwargKey),
            },
            View::List(chars) => {
                let mut text = String::with_capacity(chars.len());
                for c in chars {
                    match reader.view(py, c)? {
                        View::Int(code) => {
                            match u32::try_from(code).ok().and_then(char::from_u32) {
                                Some(ch) => text.push(ch),
                                None => return Err(Error::BadKwargKey),
                            }
                        }
                        _ => return Err(Error::BadKwargKey),
                    }
                }
                PyString::new(py, &text)
            }
            _ => return Err(Error::BadKwargKey),
        };
        if dict.contains(&key)? {
            return Err(Error::DuplicateMapKey(format!(
                "{:?}",
                key.to_string_lossy()
            )));
        }
        // A keyword argument (or eval local) nests as deep as a positional argument: the map
        // around them is not a level of the value.
        dict.set_item(key, to_py_at(py, reader, v, opts, 0)?)?;
    }
    Ok(dict)
}

/// A keyword list: names are atoms only (a binary or a charlist first element is more likely
/// a list of values passed by mistake than a name), and a repeated name is an error, as
/// Python's own "got multiple values for keyword argument" (Elixir's `Keyword.get` would take
/// the first, Python's `dict(...)` the last: neither is what the caller meant).
fn kwargs_list_to_py<'py, 'a, R: TermReader<'a>>(
    py: Python<'py>,
    reader: &R,
    items: Vec<R::Term>,
    opts: &Options,
) -> Result<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for item in items {
        let View::Tuple(pair) = reader.view(py, item)? else {
            return Err(Error::BadKwargList);
        };
        let [name, value] = pair[..] else {
            return Err(Error::BadKwargList);
        };
        let Some(name) = reader.view(py, name)?.into_atom_name(py) else {
            return Err(Error::BadKwargList);
        };
        let key = PyString::new(py, &name);
        if dict.contains(&key)? {
            return Err(Error::DuplicateKwarg(name.into_owned()));
        }
        dict.set_item(key, to_py_at(py, reader, value, opts, 0)?)?;
    }
    Ok(dict)
}

/// Converts a Python object to an Erlang term; a generator or iterator becomes
/// `{generator, Handle}` (the rule for top-level results of calls and evals).
pub fn result_from_py<B: TermBuilder>(
    builder: &mut B,
    obj: &Bound<'_, PyAny>,
    opts: &Options,
) -> Result<B::Term> {
    if !is_plain_value(obj) && obj.cast::<PyIterator>().is_ok() {
        let tag = builder.atom("generator");
        let handle = builder.object(obj.clone().unbind())?;
        return Ok(builder.tuple(vec![tag, handle]));
    }
    from_py(builder, obj, opts)
}

/// Whether a short look at `values` finds a dict of more than `max_keys` keys (a map the rules
/// would make that big): each value itself, and the elements of each value that is a list or
/// a tuple (a dict's values), at most `budget` of those. One level down only, and no more than
/// a type check and a size per element, so the look costs well under a microsecond whatever the
/// value; `false` says nothing of what lies deeper or further (nor of what an object the look
/// does not open, such as a numpy array, converts to). No Python code runs.
///
/// For the NIF's replies, which go in the external term format when they hold a map of more
/// than 32 keys: with the look, a list of records whose big one comes after small ones (or a
/// dict with a big dict among its values) is written once in that format, instead of being
/// built as terms up to that dict first.
pub fn shows_big_dict(values: &[Bound<'_, PyAny>], max_keys: usize, budget: usize) -> bool {
    let mut left = budget;
    for value in values {
        // SAFETY: `value` is a live object held by the caller.
        if unsafe { is_big_dict(value.as_ptr(), max_keys) } {
            return true;
        }
        let mut look = |item: *mut ffi::PyObject| -> Option<bool> {
            if left == 0 {
                return Some(false);
            }
            left -= 1;
            // SAFETY: `item` is a live object borrowed from `value`, which nothing changes
            // meanwhile (no Python code runs here; a dict is read inside its critical section).
            unsafe { is_big_dict(item, max_keys) }.then_some(true)
        };
        let ptr = value.as_ptr();
        let found = if let Ok(dict) = value.cast::<PyDict>() {
            pyo3::sync::critical_section::with_critical_section(dict.as_any(), || {
                let (mut pos, mut key, mut item) = (0, std::ptr::null_mut(), std::ptr::null_mut());
                // SAFETY: `ptr` is a live dict; `pos` is only advanced by PyDict_Next, which
                // writes `key` and `item` (borrowed references) only on success.
                while unsafe { ffi::PyDict_Next(ptr, &mut pos, &mut key, &mut item) } != 0 {
                    if let Some(found) = look(item) {
                        return Some(found);
                    }
                }
                None
            })
        } else if value.is_instance_of::<PyList>() {
            let mut i = 0;
            let mut found = None;
            // SAFETY: `ptr` is a live list; its size is read again at each step, as
            // `list_elements` does, and `i` stays below it.
            while found.is_none() && i < unsafe { ffi::PyList_GET_SIZE(ptr) } {
                // SAFETY: as above.
                found = look(unsafe { ffi::PyList_GET_ITEM(ptr, i) });
                i += 1;
            }
            found
        } else if let Ok(tuple) = value.cast::<PyTuple>() {
            let mut found = None;
            for i in 0..tuple.len() {
                // SAFETY: `i` is below the tuple's length; the tuple (held by the caller)
                // keeps the slot's object alive.
                found = look(unsafe { ffi::PyTuple_GET_ITEM(ptr, i as ffi::Py_ssize_t) });
                if found.is_some() {
                    break;
                }
            }
            found
        } else {
            None
        };
        match found {
            Some(true) => return true,
            Some(false) => return false,
            None => {}
        }
    }
    false
}

/// Whether `ptr` is a dict (or a subclass, which the rules convert alike) of more than
/// `max_keys` keys.
///
/// # Safety
/// `ptr` must be a live object.
#[inline(always)]
unsafe fn is_big_dict(ptr: *mut ffi::PyObject, max_keys: usize) -> bool {
    // SAFETY: `ptr` is live (the caller's promise); the check reads its type, and PyDict_Size
    // is given a dict.
    unsafe { ffi::PyDict_Check(ptr) != 0 && ffi::PyDict_Size(ptr) as usize > max_keys }
}

/// Strings, numbers and containers: values that are never treated as iterators (nor as
/// coroutines), checked without any Python call.
pub fn is_plain_value(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyInt>()
        || obj.is_instance_of::<PyFloat>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PyBytes>()
}

/// Converts a Python object to an Erlang term.
pub fn from_py<B: TermBuilder>(
    builder: &mut B,
    obj: &Bound<'_, PyAny>,
    opts: &Options,
) -> Result<B::Term> {
    from_py_at(builder, obj, opts, 0)
}

fn from_py_at<B: TermBuilder>(
    builder: &mut B,
    obj: &Bound<'_, PyAny>,
    opts: &Options,
    depth: usize,
) -> Result<B::Term> {
    match exact_scalar(builder, obj) {
        Some(term) => term,
        None => from_py_other(builder, obj, opts, depth),
    }
}

/// The term of an exact `int` that fits in 64 bits, an exact `float`, an exact `str`, `True`,
/// `False` or `None`, with no exception machinery, no reference taken and no call out of line:
/// the commonest elements of big lists and values of dicts. `None` for anything else,
/// subclasses included (bool is an int subclass): [`from_py_other`] gives those the same terms
/// as always.
#[inline(always)]
fn exact_scalar<B: TermBuilder>(
    builder: &mut B,
    obj: &Bound<'_, PyAny>,
) -> Option<Result<B::Term>> {
    // SAFETY: `obj` is a live object.
    unsafe { exact_scalar_ptr(builder, obj.py(), obj.as_ptr()) }
}

/// [`exact_scalar`] on a raw object pointer.
///
/// # Safety
/// `ptr` must be a live object for the duration of the call (a borrowed reference will do:
/// no Python code runs here).
#[inline(always)]
unsafe fn exact_scalar_ptr<B: TermBuilder>(
    builder: &mut B,
    py: Python<'_>,
    ptr: *mut ffi::PyObject,
) -> Option<Result<B::Term>> {
    // SAFETY: `ptr` is a live object (the caller's promise); the CheckExact macros only read
    // its type, and PyLong_AsLongLongAndOverflow and PyFloat_AS_DOUBLE are given objects of
    // exactly their types.
    unsafe {
        if ffi::PyLong_CheckExact(ptr) != 0 {
            match small_int_value(ptr) {
                Some(value) => Some(Ok(builder.int(value))),
                // Too big for 64 bits (no error: `from_py_other` makes the bignum), or the
                // read raised.
                None => PyErr::take(py).map(|err| Err(err.into())),
            }
        } else if ffi::PyFloat_CheckExact(ptr) != 0 {
            Some(Ok(float_term(builder, ffi::PyFloat_AS_DOUBLE(ptr))))
        } else if ffi::PyUnicode_CheckExact(ptr) != 0 {
            Some(exact_str(builder, py, ptr))
        } else if ptr == ffi::Py_True() {
            Some(Ok(builder.atom("true")))
        } else if ptr == ffi::Py_False() {
            Some(Ok(builder.atom("false")))
        } else if ptr == ffi::Py_None() {
            Some(Ok(builder.atom("none")))
        } else {
            None
        }
    }
}

/// The value of the exact `int` `ptr` when it fits in 64 bits and reading it raised nothing;
/// `None` otherwise (the error, if any, left set for the caller).
///
/// # Safety
/// `ptr` must be a live exact `int` for the duration of the call.
#[inline(always)]
unsafe fn small_int_value(ptr: *mut ffi::PyObject) -> Option<i64> {
    let mut overflow: std::ffi::c_int = 0;
    // SAFETY: the caller's promise: `ptr` is a live exact int.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow) };
    // SAFETY: PyErr_Occurred only reads the thread's error indicator (the thread is attached:
    // the caller holds a live object).
    (overflow == 0 && (value != -1 || unsafe { ffi::PyErr_Occurred() }.is_null())).then_some(value)
}

/// The binary of an exact `str`, out of line (the int and float paths stay small).
///
/// # Safety
/// `ptr` must be a live exact `str` for the duration of the call.
#[inline(never)]
unsafe fn exact_str<B: TermBuilder>(
    builder: &mut B,
    py: Python<'_>,
    ptr: *mut ffi::PyObject,
) -> Result<B::Term> {
    // SAFETY: the caller's promise: `ptr` is a live exact str, borrowed for this call.
    let text = unsafe { Borrowed::from_ptr(py, ptr).cast_unchecked::<PyString>() };
    Ok(builder.binary(str_bytes(&text)?))
}

#[inline(never)]
fn from_py_other<B: TermBuilder>(
    builder: &mut B,
    obj: &Bound<'_, PyAny>,
    opts: &Options,
    depth: usize,
) -> Result<B::Term> {
    // The exact containers first, one type compare each: the inner nodes of documents.
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        return dict_term(builder, d, opts, depth);
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        let items = list_elements(builder, l, opts, depth)?;
        return Ok(builder.list(items));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(builder.binary(s.to_str()?.as_bytes()));
    }
    if obj.is_none() {
        return Ok(builder.atom("none"));
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(builder.atom(if b.is_true() { "true" } else { "false" }));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return int_from_py(builder, i);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float_term(builder, f.value()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_term(builder, d, opts, depth);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let items = list_elements(builder, l, opts, depth)?;
        return Ok(builder.list(items));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        let items = tuple_elements(builder, t, opts, depth)?;
        return Ok(builder.tuple(items));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(builder.binary(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(builder.binary(&b.to_vec()));
    }
    if let Ok(p) = obj.cast::<Pid>() {
        return builder.pid(p.get().etf());
    }
    if let Ok(r) = obj.cast::<Ref>() {
        return builder.reference(r.get().etf());
    }
    if let Ok(array) = obj.cast::<arrays::PyArrayTerm>() {
        return arrays::array_term(builder, array, opts, depth);
    }
    if let Ok(s) = obj.cast::<PySet>() {
        let items = elements(builder, s.iter(), s.len(), opts, depth)?;
        return Ok(builder.list(items));
    }
    if let Ok(s) = obj.cast::<PyFrozenSet>() {
        let items = elements(builder, s.iter(), s.len(), opts, depth)?;
        return Ok(builder.list(items));
    }
    if is_numpy_value(obj) {
        // Arrays of numbers and bools are read from their buffers; for other arrays
        // ndarray.tolist() gives nested lists of Python objects, and a numpy scalar's tolist()
        // the matching Python number: either way, convert the plain result.
        if let Some(term) = arrays::array_to_term(builder, obj, opts, depth)? {
            return Ok(term);
        }
        let plain = obj.call_method0("tolist")?;
        check_depth(depth + 1, opts)?;
        return from_py_at(builder, &plain, opts, depth + 1);
    }
    builder.object(obj.clone().unbind())
}

/// Converts the elements of a list one level down, reading its slots in place: an exact `int`
/// or `float` element is converted from the borrowed slot (nothing can run Python code
/// meanwhile); any other element is held (a new reference) while it converts, because its
/// conversion may run Python code (a numpy `tolist`, an `int` subclass's methods) that changes
/// the list. The length is read again at each step for the same reason, as the list's own
/// iterator does.
fn list_elements<B: TermBuilder>(
    builder: &mut B,
    list: &Bound<'_, PyList>,
    opts: &Options,
    depth: usize,
) -> Result<Vec<B::Term>> {
    check_depth(depth + 1, opts)?;
    let py = list.py();
    let ptr = list.as_ptr();
    let mut terms = Vec::with_capacity(list.len());
    builder.open();
    let mut i: ffi::Py_ssize_t = 0;
    // SAFETY: `ptr` is a live list (borrowed from `list`); GET_SIZE reads its length.
    while i < unsafe { ffi::PyList_GET_SIZE(ptr) } {
        // SAFETY: `i` is below the list's current length, so the slot holds a live object,
        // borrowed from the list for as long as no Python code runs.
        let item = unsafe { ffi::PyList_GET_ITEM(ptr, i) };
        // SAFETY: as above.
        unsafe { push_element(builder, py, item, opts, depth + 1, &mut terms)? };
        i += 1;
    }
    Ok(terms)
}

/// The map of a dict, read with borrowed references (`PyDict_Next`): an exact `str` key is
/// converted in place (or found in the builder's key cache), and an exact `int`/`float`/`str`
/// value too, with no reference taken, as none of that runs Python code. Any other key or value
/// is held (a new reference) while it converts, because its conversion may run Python code
/// that changes the dict; a change of the dict's size or keys meanwhile is a `RuntimeError`, as
/// for Python's own iteration (`PyDict_Next` itself stays within the current table).
fn dict_term<B: TermBuilder>(
    builder: &mut B,
    dict: &Bound<'_, PyDict>,
    opts: &Options,
    depth: usize,
) -> Result<B::Term> {
    check_depth(depth + 1, opts)?;
    let len = dict.len();
    builder.begin_map(len)?;
    builder.open();
    let py = dict.py();
    let ptr = dict.as_ptr();
    // On a free-threaded build the dict is locked while it is read (as pyo3's own iterator
    // does); with the GIL this is just the closure.
    let pairs = pyo3::sync::critical_section::with_critical_section(
        dict.as_any(),
        || -> Result<Vec<_>> {
            let mut pairs = Vec::with_capacity(len);
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut value: *mut ffi::PyObject = std::ptr::null_mut();
            loop {
                if dict.len() != len {
                    return Err(dict_changed("dictionary changed size during iteration"));
                }
                // SAFETY: `ptr` is a live dict (held by `dict`); `pos` is only ever advanced by
                // this call, which checks it against the dict's current table; `key` and `value`
                // are written only on success, as borrowed references.
                if unsafe { ffi::PyDict_Next(ptr, &mut pos, &mut key, &mut value) } == 0 {
                    break;
                }
                if pairs.len() == len {
                    return Err(dict_changed("dictionary keys changed during iteration"));
                }
                // SAFETY: `key` is a live object borrowed from the dict; the check reads its type.
                let key_term = if unsafe { ffi::PyUnicode_CheckExact(key) } != 0 {
                    // SAFETY: `key` is a live exact str, borrowed from the dict, which nothing
                    // changes until the value's conversion below (the key is not used after it
                    // starts).
                    let text = unsafe { Borrowed::from_ptr(py, key).cast_unchecked::<PyString>() };
                    match builder.known_key(&text) {
                        Some(term) => term,
                        None => {
                            let term = builder.binary(str_bytes(&text)?);
                            builder.remember_key(&text, &term);
                            term
                        }
                    }
                } else {
                    // SAFETY: `key` and `value` are live, borrowed from the dict; these take
                    // references of our own before any Python code can run.
                    let (key, value) = unsafe {
                        (
                            Bound::from_borrowed_ptr(py, key),
                            Bound::from_borrowed_ptr(py, value),
                        )
                    };
                    let key_term = from_py_at(builder, &key, opts, depth + 1)?;
                    pairs.push((key_term, from_py_at(builder, &value, opts, depth + 1)?));
                    continue;
                };
                // SAFETY: `value` is live, borrowed from the dict.
                let value_term = unsafe { from_borrowed(builder, py, value, opts, depth + 1) }?;
                pairs.push((key_term, value_term));
            }
            Ok(pairs)
        },
    )?;
    builder.map(pairs)
}

#[cold]
fn dict_changed(what: &str) -> Error {
    PyErr::new::<pyo3::exceptions::PyRuntimeError, _>(what.to_owned()).into()
}

/// The UTF-8 bytes of a `str` (CPython caches them in the object); a `UnicodeEncodeError` for
/// a lone surrogate.
#[inline]
fn str_bytes<'a>(text: &'a Bound<'_, PyString>) -> Result<&'a [u8]> {
    Ok(text.to_str()?.as_bytes())
}

/// Converts `item`, an element at `depth`, onto the end of `terms`. An exact `int` that fits in
/// 64 bits and an exact `float` are pushed from here, straight from the builder's call (the
/// hot loop of big lists: no `Option`/`Result` around the term, whose copies cost more than
/// the conversion); anything else goes out of line to [`push_other`].
///
/// # Safety
/// `item` must be a live object, borrowed for as long as no Python code runs.
#[inline(always)]
unsafe fn push_element<B: TermBuilder>(
    builder: &mut B,
    py: Python<'_>,
    item: *mut ffi::PyObject,
    opts: &Options,
    depth: usize,
    terms: &mut Vec<B::Term>,
) -> Result<()> {
    // SAFETY: `item` is live (the caller's promise); the CheckExact macros only read its type,
    // and PyLong_AsLongLongAndOverflow and PyFloat_AS_DOUBLE are given objects of exactly
    // their types.
    unsafe {
        if ffi::PyLong_CheckExact(item) != 0 {
            if let Some(value) = small_int_value(item) {
                terms.push(builder.int(value));
                return Ok(());
            }
        } else if ffi::PyFloat_CheckExact(item) != 0 {
            terms.push(float_term(builder, ffi::PyFloat_AS_DOUBLE(item)));
            return Ok(());
        }
        push_other(builder, py, item, opts, depth, terms)
    }
}

/// [`push_element`]'s other cases: the rules of [`from_py_at`] (a big `int` and a failed read
/// of one included), with an exact `str` read in place and any other object held while it
/// converts.
///
/// # Safety
/// As for [`push_element`].
#[inline(never)]
unsafe fn push_other<B: TermBuilder>(
    builder: &mut B,
    py: Python<'_>,
    item: *mut ffi::PyObject,
    opts: &Options,
    depth: usize,
    terms: &mut Vec<B::Term>,
) -> Result<()> {
    // SAFETY: `item` is live (the caller's promise).
    let term = unsafe { from_borrowed(builder, py, item, opts, depth) }?;
    terms.push(term);
    Ok(())
}

/// [`from_py_at`] on a borrowed object pointer: an exact scalar converted in place
/// ([`exact_scalar_ptr`]), any other object held (a reference of our own) while it converts,
/// as that may run Python code.
///
/// # Safety
/// `ptr` must be a live object, borrowed for as long as no Python code runs.
#[inline(always)]
unsafe fn from_borrowed<B: TermBuilder>(
    builder: &mut B,
    py: Python<'_>,
    ptr: *mut ffi::PyObject,
    opts: &Options,
    depth: usize,
) -> Result<B::Term> {
    // SAFETY: `ptr` is live (the caller's promise); `exact_scalar_ptr` runs no Python code.
    match unsafe { exact_scalar_ptr(builder, py, ptr) } {
        Some(term) => term,
        None => {
            // SAFETY: as above; this takes a reference of our own before Python code can run.
            let obj = unsafe { Bound::from_borrowed_ptr(py, ptr) };
            from_py_other(builder, &obj, opts, depth)
        }
    }
}

/// Converts the elements of a tuple one level down, reading its slots in place (a tuple's
/// slots never change; the tuple itself is held by the caller for the whole loop).
fn tuple_elements<B: TermBuilder>(
    builder: &mut B,
    tuple: &Bound<'_, PyTuple>,
    opts: &Options,
    depth: usize,
) -> Result<Vec<B::Term>> {
    check_depth(depth + 1, opts)?;
    let py = tuple.py();
    let ptr = tuple.as_ptr();
    let len = tuple.len();
    let mut terms = Vec::with_capacity(len);
    builder.open();
    for i in 0..len {
        // SAFETY: `i` is below the tuple's length; the slot holds a live object that the
        // tuple (held by our caller) keeps alive.
        let item = unsafe { ffi::PyTuple_GET_ITEM(ptr, i as ffi::Py_ssize_t) };
        // SAFETY: as above.
        unsafe { push_element(builder, py, item, opts, depth + 1, &mut terms)? };
    }
    Ok(terms)
}

/// Converts the elements of a set one level down (`len` is a capacity hint).
fn elements<'py, B: TermBuilder>(
    builder: &mut B,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    opts: &Options,
    depth: usize,
) -> Result<Vec<B::Term>> {
    check_depth(depth + 1, opts)?;
    let mut terms = Vec::with_capacity(len);
    builder.open();
    for item in items {
        terms.push(match exact_scalar(builder, &item) {
            Some(term) => term?,
            None => from_py_other(builder, &item, opts, depth + 1)?,
        });
    }
    Ok(terms)
}

fn is_numpy_value(obj: &Bound<'_, PyAny>) -> bool {
    let ty = obj.get_type();
    match ty.module() {
        Ok(module) => {
            module.to_str().is_ok_and(|m| m == "numpy") && obj.hasattr("tolist").unwrap_or(false)
        }
        Err(_) => false,
    }
}

fn int_from_py<B: TermBuilder>(builder: &mut B, i: &Bound<'_, PyInt>) -> Result<B::Term> {
    if let Ok(small) = i.extract::<i64>() {
        return Ok(builder.int(small));
    }
    let negative = i.lt(0)?;
    let magnitude = if negative {
        i.neg()?
    } else {
        i.clone().into_any()
    };
    let bits: usize = magnitude.call_method0("bit_length")?.extract()?;
    let bytes = magnitude.call_method1("to_bytes", (bits.div_ceil(8), "little"))?;
    let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
    builder.bigint(negative, bytes.as_bytes())
}

/// A float's term: `nan`, `infinity` and `neg_infinity` have no Erlang float.
pub(crate) fn float_term<B: TermBuilder>(builder: &mut B, f: f64) -> B::Term {
    if f.is_nan() {
        builder.atom("nan")
    } else if f.is_infinite() {
        builder.atom(if f > 0.0 { "infinity" } else { "neg_infinity" })
    } else {
        builder.float(f)
    }
}
