//! The conversion rules of core, applied to rustler terms: a [`TermReader`] and a
//! [`TermBuilder`] over an [`Env`], and the resource that carries Python objects through Erlang
//! as opaque handles. Runs on executor threads, with the GIL held, inside an owned env.

use std::borrow::Cow;
use std::ffi::{c_int, c_uint, c_void};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use erlang_python_core::convert::{Options, TermBuilder, TermReader, View, DEFAULT_MAX_DEPTH};
use erlang_python_core::{etf, Error};
use pyo3::prelude::*;
use pyo3::types::PyString;
use rustler::env::SavedTerm;
use rustler::sys::ErlNifTerm as NIF_TERM;
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Atom, Binary, Encoder, Env, OwnedEnv, ResourceArc, Term, TermType};

use crate::{atoms, interp};

/// A Python object held by Erlang (an opaque handle, or the body of `{generator, Handle}`).
/// Dropping it off the GIL is fine: pyo3 defers the decref to the next GIL holder.
pub struct PyObjectResource {
    object: Py<PyAny>,
}

#[rustler::resource_impl]
impl rustler::Resource for PyObjectResource {}

impl PyObjectResource {
    /// The object.
    pub fn object<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.object.bind(py).clone()
    }
}

/// Opaque objects of a reply written in the external term format (`ext::StreamBuilder`): each
/// becomes a [`PyObjectResource`] made in the reply's env, and its reference's bytes go in the
/// stream. A resource's reference is a "magic" reference: encoding it records it in the VM's
/// table of them, and `binary_to_term` in the same node gives back the resource, as long as it
/// lives. So the reply carries the resources too ([`ResourceRefs::kept`]), and the caller holds
/// them until the bytes are decoded (`py_request`).
pub struct ResourceRefs<'a> {
    env: Env<'a>,
    kept: std::cell::RefCell<Vec<Term<'a>>>,
}

impl<'a> ResourceRefs<'a> {
    /// Resources made in `env`.
    pub fn new(env: Env<'a>) -> Self {
        ResourceRefs {
            env,
            kept: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The resources made so far, in the order their objects came.
    pub fn kept(self) -> Vec<Term<'a>> {
        self.kept.into_inner()
    }
}

impl erlang_python_core::ext::ObjectRefs for ResourceRefs<'_> {
    fn object_ref(&self, _py: Python<'_>, object: Py<PyAny>) -> Result<Vec<u8>, Error> {
        let term = ResourceArc::new(PyObjectResource { object }).encode(self.env);
        let bytes = term.to_binary().as_slice().to_vec();
        self.kept.borrow_mut().push(term);
        Ok(bytes)
    }
}

/// The largest map OTP stores flat (MAP_SMALL_MAP_LIMIT).
pub const FLAT_MAP_LIMIT: usize = 32;

static MAX_DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_DEPTH);

/// Sets the nesting bound applied by every later conversion.
pub fn set_max_depth(depth: usize) {
    MAX_DEPTH.store(depth.max(1), Ordering::Relaxed);
}

/// The conversion options in force.
pub fn options() -> Options {
    Options {
        max_depth: MAX_DEPTH.load(Ordering::Relaxed),
    }
}

/// Reads rustler terms for the core rules.
pub struct NifReader<'a> {
    _env: Env<'a>,
}

impl<'a> NifReader<'a> {
    /// A reader for terms of `env`.
    pub fn new(env: Env<'a>) -> Self {
        NifReader { _env: env }
    }
}

/// Binaries shorter than this are copied rather than lent to Python: the copy costs less than
/// the env that would keep them alive.
const LEND_MIN_BYTES: usize = 4096;

/// The bytes of an Erlang binary lent to Python read-only, with no copy (the array form's data,
/// under a numpy array). A process-independent env of its own keeps the binary alive for as long
/// as Python holds this object; copying a refc binary into it shares the bytes, and an inspected
/// binary is no longer appendable, so they never move.
#[pyclass(frozen, module = "erlang._native", name = "ErlangBinary")]
pub struct LentBinary {
    /// Owns the binary `data` points into; dropped (with `saved`) when Python lets go.
    _env: OwnedEnv,
    _saved: SavedTerm,
    data: *const u8,
    len: usize,
}

// SAFETY: `data` points into a binary owned by `_env`, which nothing mutates after
// construction: the bytes are read-only for every thread, and the env is only freed on drop,
// which needs exclusive ownership.
unsafe impl Send for LentBinary {}
// SAFETY: as above: shared access only ever reads `data` and `len`.
unsafe impl Sync for LentBinary {}

#[pymethods]
impl LentBinary {
    /// Read-only buffer protocol over the binary's bytes.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        let len = pyo3::ffi::Py_ssize_t::try_from(this.len)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("binary too large"))?;
        // SAFETY: `view` is the Py_buffer CPython asks us to fill; `data`/`len` describe bytes
        // that live as long as `slf`, which the filled view holds a reference to; `readonly`
        // is 1, so a request for a writable buffer fails with BufferError instead.
        let rc = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                this.data.cast_mut().cast::<c_void>(),
                len,
                1,
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }

    fn __len__(&self) -> usize {
        self.len
    }
}

fn etf_of(term: Term<'_>) -> Vec<u8> {
    term.to_binary().as_slice().to_vec()
}

impl<'a> TermReader<'a> for NifReader<'a> {
    type Term = Term<'a>;

    fn view(&self, py: Python<'_>, term: Term<'a>) -> Result<View<'a, Term<'a>>, Error> {
        // The common kinds inline, the rest out of line: this runs once per element. An
        // integer that fits in 64 bits is the commonest element of big lists: one raw call
        // reads it (it fails at once for any other term), before the type is asked for.
        let mut int: i64 = 0;
        // SAFETY: `term` is a live term of the reader's env; `int` is written only on success.
        if unsafe {
            rustler::sys::enif_get_int64(term.get_env().as_c_arg(), term.as_c_arg(), &mut int)
        } != 0
        {
            return Ok(View::Int(int));
        }
        match term.get_type() {
            TermType::Integer => bigint_view(term),
            TermType::Float => Ok(View::Float(
                term.decode::<f64>()
                    .map_err(|_| Error::Unsupported("float"))?,
            )),
            TermType::Binary => match term.decode::<Binary<'a>>() {
                Ok(bin) => Ok(View::Binary(bin.as_slice())),
                Err(_) => Err(Error::Unsupported("bitstring")),
            },
            TermType::List => list_view(term),
            TermType::Tuple => Ok(View::Tuple(
                get_tuple(term).map_err(|_| Error::Unsupported("tuple"))?,
            )),
            TermType::Map => map_view(term),
            TermType::Atom => atom_view(py, term),
            other => other_view(py, term, other),
        }
    }

    fn binary_buffer<'py>(
        &self,
        py: Python<'py>,
        term: Term<'a>,
    ) -> Result<Option<Bound<'py, PyAny>>, Error> {
        match term.decode::<Binary<'a>>() {
            Ok(bin) if bin.len() >= LEND_MIN_BYTES => {}
            _ => return Ok(None),
        }
        let env = OwnedEnv::new();
        let saved = env.save(term);
        let (data, len) = env.run(|env| match saved.load(env).decode::<Binary<'_>>() {
            Ok(bin) => Ok((bin.as_slice().as_ptr(), bin.len())),
            Err(_) => Err(Error::Unsupported("bitstring")),
        })?;
        let lent = LentBinary {
            _env: env,
            _saved: saved,
            data,
            len,
        };
        Ok(Some(Bound::new(py, lent)?.into_any()))
    }
}

#[inline(never)]
fn bigint_view<'a>(term: Term<'a>) -> Result<View<'a, Term<'a>>, Error> {
    let bytes = etf_of(term);
    let (negative, magnitude) = etf::decode_bignum(&bytes)?;
    Ok(View::BigInt {
        negative,
        magnitude_le: Cow::Owned(magnitude.to_vec()),
    })
}

/// The elements of a proper list, in one pass over its cells with raw calls (no length count
/// first, no wrapper or `Result` per cell); an improper list's tail is found at the end.
#[inline(never)]
fn list_view<'a>(term: Term<'a>) -> Result<View<'a, Term<'a>>, Error> {
    let env = term.get_env();
    let raw_env = env.as_c_arg();
    let mut items = Vec::new();
    let mut rest = term.as_c_arg();
    let (mut head, mut tail) = (NIF_TERM::default(), NIF_TERM::default());
    // SAFETY: `rest` is a term of `env` (the list, then each tail); head and tail are written
    // only on success.
    while unsafe { rustler::sys::enif_get_list_cell(raw_env, rest, &mut head, &mut tail) } != 0 {
        // SAFETY: `head` is a term of `env`, just read from the list.
        items.push(unsafe { Term::new(env, head) });
        rest = tail;
    }
    // SAFETY: `rest` is a term of `env`.
    if unsafe { rustler::sys::enif_is_empty_list(raw_env, rest) } == 0 {
        return Err(Error::ImproperList);
    }
    Ok(View::List(items))
}

#[inline(never)]
fn map_view<'a>(term: Term<'a>) -> Result<View<'a, Term<'a>>, Error> {
    let iter = rustler::types::map::MapIterator::new(term).ok_or(Error::Unsupported("map"))?;
    let mut pairs = Vec::with_capacity(term.map_size().unwrap_or(0));
    pairs.extend(iter);
    Ok(View::Map(pairs))
}

#[inline(never)]
fn other_view<'a>(
    py: Python<'_>,
    term: Term<'a>,
    kind: TermType,
) -> Result<View<'a, Term<'a>>, Error> {
    Ok(match kind {
        TermType::Pid => View::Pid(etf_of(term)),
        TermType::Ref => match term.decode::<ResourceArc<PyObjectResource>>() {
            Ok(handle) => View::Object(handle.object.clone_ref(py)),
            Err(_) => View::Ref(etf_of(term)),
        },
        TermType::Fun => return Err(Error::Unsupported("fun")),
        TermType::Port => return Err(Error::Unsupported("port")),
        _ => return Err(Error::Unsupported("term")),
    })
}

/// Slots of the atom cache: the `str`s of the atoms converted last, by atom.
const ATOM_SLOTS: usize = 256;

/// One slot of the atom cache: an atom's term word and its `str`.
type AtomSlot = Mutex<Option<(NIF_TERM, Py<PyString>)>>;

/// The `str` of the atoms converted last, so that the atoms a caller sends again and again (the
/// keys of an ASGI scope, ~11 per request) are not read and made into a `str` each time.
/// Direct-mapped by atom: a term word names one atom for the VM's life (atoms are never
/// collected), whatever the env. The `str`s belong to the main interpreter and are handed out
/// there only ([`interp::in_main_interpreter`]). A slot taken by another thread (free-threaded
/// builds) is passed by: the atom is converted as if it were not cached. The `str`s are not
/// interned: interning would make every atom ever converted immortal (CPython 3.12+), and the
/// cache holds at most [`ATOM_SLOTS`] of them.
static ATOM_STRS: [AtomSlot; ATOM_SLOTS] = [const { Mutex::new(None) }; ATOM_SLOTS];

#[inline(never)]
fn atom_view<'a>(py: Python<'_>, term: Term<'a>) -> Result<View<'a, Term<'a>>, Error> {
    let atom = Atom::from_term(term).map_err(|_| Error::Unsupported("atom"))?;
    for (known, name) in [
        (atoms::true_(), "true"),
        (atoms::false_(), "false"),
        (atoms::none(), "none"),
        (atoms::nil(), "nil"),
        (atoms::undefined(), "undefined"),
    ] {
        if atom == known {
            return Ok(View::Atom(Cow::Borrowed(name)));
        }
    }
    if !interp::in_main_interpreter(py) {
        return Ok(View::Atom(Cow::Owned(atom_name(term)?)));
    }
    let word = term.as_c_arg();
    let slot = &ATOM_STRS[atom_slot(word)];
    if let Ok(cached) = slot.try_lock() {
        if let Some((known, text)) = cached.as_ref() {
            if *known == word {
                return Ok(View::AtomStr(text.clone_ref(py)));
            }
        }
    }
    let text = PyString::new(py, &atom_name(term)?).unbind();
    let evicted = match slot.try_lock() {
        Ok(mut cached) => cached.replace((word, text.clone_ref(py))),
        Err(_) => None,
    };
    // Freed after the slot is let go (with the thread attached: at once).
    drop(evicted);
    Ok(View::AtomStr(text))
}

/// The cache slot of the atom with term word `word`.
fn atom_slot(word: NIF_TERM) -> usize {
    // An atom's term word is its index in the atom table above 6 tag bits (ERTS's
    // `make_atom`): consecutive atoms take consecutive slots. Another layout would only spread
    // the atoms differently.
    (term_word(word) >> 6) % ATOM_SLOTS
}

/// The word that is the term (for the cost walk's tag checks and the atom cache's slots).
pub fn term_word(term: NIF_TERM) -> usize {
    // SAFETY: ErlNifTerm is a `repr(transparent)` wrapper of the word that is the term.
    unsafe { std::mem::transmute::<NIF_TERM, usize>(term) }
}

/// The name of an atom.
fn atom_name(term: Term<'_>) -> Result<String, Error> {
    // enif_get_atom reads Latin-1 only on OTP 25; the external format has every atom as UTF-8.
    match term.atom_to_string() {
        Ok(name) if name.is_ascii() => Ok(name),
        _ => Ok(etf::decode_atom(&etf_of(term))?),
    }
}

/// Builds rustler terms for the core rules.
pub struct NifBuilder<'a> {
    /// The env the terms are made in.
    pub env: Env<'a>,
    /// How many more keys of hash maps (maps of more than 32 keys) this builder takes before it
    /// refuses a map; `None`: no bound.
    hash_keys_left: Option<usize>,
    refused: bool,
    /// The binaries made for recent dict keys, by `str` object (held, so that no other object
    /// takes its address while it is here): [`TermBuilder::known_key`].
    keys: Vec<Option<(Py<PyString>, NIF_TERM)>>,
}

/// Slots of [`NifBuilder`]'s dict-key cache: `1 << KEY_SLOT_BITS`.
const KEY_SLOT_BITS: u32 = 6;
const KEY_SLOTS: usize = 1 << KEY_SLOT_BITS;

fn key_slot(key: &Bound<'_, PyString>) -> usize {
    // Objects are 16-byte aligned: the low bits carry nothing. The rest is mixed (Fibonacci
    // hashing) rather than taken modulo the slots: CPython's allocator places objects of one
    // size class at a fixed stride, so the address bits just above the alignment take only a
    // few values among a document's keys, which then evict each other at every dict.
    let word = (key.as_ptr() as usize >> 4) as u64;
    (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - KEY_SLOT_BITS)) as usize
}

impl<'a> NifBuilder<'a> {
    /// A builder of terms in `env` that takes any map.
    pub fn new(env: Env<'a>) -> Self {
        NifBuilder {
            env,
            hash_keys_left: None,
            refused: false,
            keys: Vec::new(),
        }
    }

    /// A builder of terms in `env` that refuses the map that would take the keys of its hash
    /// maps past `budget`: the conversion then fails and [`NifBuilder::refused_map`] is true.
    ///
    /// Why: a process-independent env (where executors build replies) can only make a hash
    /// map one insert at a time (see [`TermBuilder::map`] here), and every insert leaves a
    /// copy of the map's path behind, in heap fragments of its own. The message carries them
    /// all, and the receiving process walks the whole chain of fragments on a normal scheduler
    /// when it takes the message (OTP 25's `erts_save_message_in_proc`): 16-25 ms for a
    /// 100k-key map. Replies past the budget go as external-term-format bytes instead
    /// (`bridge::reply`).
    pub fn with_hash_key_budget(env: Env<'a>, budget: usize) -> Self {
        NifBuilder {
            env,
            hash_keys_left: Some(budget),
            refused: false,
            keys: Vec::new(),
        }
    }

    /// True when the conversion failed because this builder refused a map.
    pub fn refused_map(&self) -> bool {
        self.refused
    }
}

/// A term made by a [`NifBuilder`]: the bare term word, with the lifetime of the builder's env
/// (8 bytes, where rustler's `Term` carries the env beside it: 24). The builder's vectors of
/// elements hold these and go to `enif_make_*` as they are, with no copy to raw words first.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct RawTerm<'a> {
    word: NIF_TERM,
    /// Ties the word to the env it was made in (`Env` is invariant in `'a`).
    _env: PhantomData<Env<'a>>,
}

impl<'a> RawTerm<'a> {
    /// Wraps `word`, which must be a term of the env `'a` names (every caller below makes it
    /// in the builder's env, or reads it from a `Term<'a>`).
    #[inline(always)]
    fn new(word: NIF_TERM) -> Self {
        RawTerm {
            word,
            _env: PhantomData,
        }
    }

    /// The word of `term`, a term the builder of env `'a` made by a rustler call. Not a
    /// public `From`: only a builder's own terms may be wrapped, so that [`NifBuilder::term`]
    /// gives back a term of its env.
    fn of(term: Term<'a>) -> Self {
        RawTerm::new(term.as_c_arg())
    }
}

/// The words of `terms`, in place.
fn words<'t>(terms: &'t [RawTerm<'_>]) -> &'t [NIF_TERM] {
    // SAFETY: `RawTerm` is `repr(transparent)` over `NIF_TERM` (its other field is a
    // zero-sized marker), so a slice of one has the layout of a slice of the other.
    unsafe { std::slice::from_raw_parts(terms.as_ptr().cast::<NIF_TERM>(), terms.len()) }
}

impl<'a> TermBuilder for NifBuilder<'a> {
    type Term = RawTerm<'a>;

    fn atom(&mut self, name: &'static str) -> RawTerm<'a> {
        let atom = match name {
            "true" => atoms::true_(),
            "false" => atoms::false_(),
            "none" => atoms::none(),
            "nan" => atoms::nan(),
            "infinity" => atoms::infinity(),
            "neg_infinity" => atoms::neg_infinity(),
            "generator" => atoms::generator(),
            "ok" => atoms::ok(),
            "error" => atoms::error(),
            // The keys of span maps (erlang_python_core::trace).
            "name" => atoms::name(),
            "trace_id" => atoms::trace_id(),
            "span_id" => atoms::span_id(),
            "parent_id" => atoms::parent_id(),
            "attributes" => atoms::attributes(),
            "start_time" => atoms::start_time(),
            "end_time" => atoms::end_time(),
            "duration_us" => atoms::duration_us(),
            "status" => atoms::status(),
            "end_attrs" => atoms::end_attrs(),
            "events" => atoms::events(),
            "attrs" => atoms::attrs(),
            "time" => atoms::time(),
            // The array form (erlang_python_core::convert::arrays::ARRAY_DTYPES).
            "py_array" => atoms::py_array(),
            "float64" => atoms::float64(),
            "float32" => atoms::float32(),
            "int64" => atoms::int64(),
            "int32" => atoms::int32(),
            "int16" => atoms::int16(),
            "int8" => atoms::int8(),
            "uint64" => atoms::uint64(),
            "uint32" => atoms::uint32(),
            "uint16" => atoms::uint16(),
            "uint8" => atoms::uint8(),
            "bool" => atoms::bool_(),
            _ => atoms::undefined(),
        };
        // An atom's word is the same in every env.
        RawTerm::new(atom.as_c_arg())
    }

    #[inline]
    fn int(&mut self, value: i64) -> RawTerm<'a> {
        // SAFETY: `self.env` is the builder's live env.
        RawTerm::new(unsafe { rustler::sys::enif_make_int64(self.env.as_c_arg(), value) })
    }

    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<RawTerm<'a>, Error> {
        let bytes = etf::encode_bignum(negative, magnitude_le)?;
        self.env
            .binary_to_term(&bytes)
            .map(|(term, _)| RawTerm::of(term))
            .ok_or(Error::BadExternalTerm("integer too large for Erlang"))
    }

    #[inline]
    fn float(&mut self, value: f64) -> RawTerm<'a> {
        // SAFETY: `self.env` is the builder's live env; the rules only pass finite doubles
        // here (`convert::float_term` turns the others into atoms).
        RawTerm::new(unsafe { rustler::sys::enif_make_double(self.env.as_c_arg(), value) })
    }

    #[inline]
    fn binary(&mut self, bytes: &[u8]) -> RawTerm<'a> {
        let mut word = NIF_TERM::default();
        // SAFETY: `self.env` is the builder's live env; on success enif_make_new_binary
        // returns a buffer of `bytes.len()` bytes owned by the new binary `word`, which the
        // copy fills before anything else sees the term.
        unsafe {
            let data =
                rustler::sys::enif_make_new_binary(self.env.as_c_arg(), bytes.len(), &mut word);
            if data.is_null() {
                // As rustler's NewBinary does.
                std::alloc::handle_alloc_error(
                    std::alloc::Layout::array::<u8>(bytes.len())
                        .unwrap_or(std::alloc::Layout::new::<u8>()),
                );
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        }
        RawTerm::new(word)
    }

    fn list(&mut self, items: Vec<RawTerm<'a>>) -> RawTerm<'a> {
        self.raw_list(words(&items))
    }

    fn tuple(&mut self, items: Vec<RawTerm<'a>>) -> RawTerm<'a> {
        let raw = words(&items);
        // SAFETY: `raw` holds `raw.len()` terms of `self.env`, and the tuple is made in it.
        RawTerm::new(unsafe {
            rustler::sys::enif_make_tuple_from_array(
                self.env.as_c_arg(),
                raw.as_ptr(),
                raw.len() as c_uint,
            )
        })
    }

    fn map(&mut self, pairs: Vec<(RawTerm<'a>, RawTerm<'a>)>) -> Result<RawTerm<'a>, Error> {
        // enif_make_map_from_arrays crashes OTP 25 for hash maps (more than 32 keys) built in
        // a process-independent env, which is where executors build replies: start with a
        // flat map and add the rest one by one, checking the size to catch duplicate keys.
        let env = self.env.as_c_arg();
        let split = pairs.len().min(FLAT_MAP_LIMIT);
        let mut keys = [NIF_TERM::default(); FLAT_MAP_LIMIT];
        let mut values = [NIF_TERM::default(); FLAT_MAP_LIMIT];
        for (i, (key, value)) in pairs[..split].iter().enumerate() {
            keys[i] = key.word;
            values[i] = value.word;
        }
        let mut map = NIF_TERM::default();
        // SAFETY: `keys` and `values` hold `split` terms of `self.env` each; `map` is written
        // only on success, and the map is made in `self.env`.
        let ok = unsafe {
            rustler::sys::enif_make_map_from_arrays(
                env,
                keys.as_ptr(),
                values.as_ptr(),
                split,
                &mut map,
            )
        };
        if ok == 0 {
            return Err(Error::DuplicateKey);
        }
        for (i, (key, value)) in pairs[split..].iter().enumerate() {
            let (mut bigger, mut size) = (NIF_TERM::default(), 0usize);
            // SAFETY: `map`, `key` and `value` are terms of `self.env`; `bigger` and `size`
            // are written only on success.
            let ok = unsafe {
                rustler::sys::enif_make_map_put(env, map, key.word, value.word, &mut bigger) != 0
                    && rustler::sys::enif_get_map_size(env, bigger, &mut size) != 0
            };
            // A duplicate key replaces its value and leaves the size as it was.
            if !ok || size != split + i + 1 {
                return Err(Error::DuplicateKey);
            }
            map = bigger;
        }
        Ok(RawTerm::new(map))
    }

    fn float_list(&mut self, values: &[f64]) -> RawTerm<'a> {
        // One pass straight to raw terms: the rows of float64 arrays (a 1M-element array is
        // a million of these), with no term wrapper nor Result per element.
        let env = self.env.as_c_arg();
        let raw: Vec<NIF_TERM> = values
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    // SAFETY: `env` is this builder's live env; a finite double is a valid
                    // Erlang float.
                    unsafe { rustler::sys::enif_make_double(env, v) }
                } else if v.is_nan() {
                    atoms::nan().as_c_arg()
                } else if v > 0.0 {
                    atoms::infinity().as_c_arg()
                } else {
                    atoms::neg_infinity().as_c_arg()
                }
            })
            .collect();
        self.raw_list(&raw)
    }

    fn int_list(&mut self, values: &[i64]) -> RawTerm<'a> {
        let env = self.env.as_c_arg();
        let raw: Vec<NIF_TERM> = values
            .iter()
            // SAFETY: `env` is this builder's live env.
            .map(|&v| unsafe { rustler::sys::enif_make_int64(env, v) })
            .collect();
        self.raw_list(&raw)
    }

    fn begin_map(&mut self, len: usize) -> Result<(), Error> {
        if len <= FLAT_MAP_LIMIT {
            return Ok(());
        }
        match &mut self.hash_keys_left {
            Some(left) if len > *left => {
                self.refused = true;
                Err(Error::Unsupported("map too big to build on this thread"))
            }
            Some(left) => {
                *left -= len;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn known_key(&mut self, key: &Bound<'_, PyString>) -> Option<RawTerm<'a>> {
        match self.keys.get(key_slot(key)) {
            // `term` was made in `self.env` by this builder.
            Some(Some((seen, term))) if seen.as_ptr() == key.as_ptr() => Some(RawTerm::new(*term)),
            _ => None,
        }
    }

    fn remember_key(&mut self, key: &Bound<'_, PyString>, term: &RawTerm<'a>) {
        if self.keys.is_empty() {
            self.keys.resize_with(KEY_SLOTS, || None);
        }
        self.keys[key_slot(key)] = Some((key.clone().unbind(), term.word));
    }

    fn pid(&mut self, etf_bytes: &[u8]) -> Result<RawTerm<'a>, Error> {
        self.external(etf_bytes, etf::is_pid(etf_bytes), "not a pid")
    }

    fn reference(&mut self, etf_bytes: &[u8]) -> Result<RawTerm<'a>, Error> {
        self.external(etf_bytes, etf::is_ref(etf_bytes), "not a reference")
    }

    fn object(&mut self, object: Py<PyAny>) -> Result<RawTerm<'a>, Error> {
        Ok(RawTerm::of(
            ResourceArc::new(PyObjectResource { object }).encode(self.env),
        ))
    }
}

impl<'a> NifBuilder<'a> {
    /// The rustler term of `raw`, a term this builder made (only builders make `RawTerm`s).
    pub fn term(&self, raw: RawTerm<'a>) -> Term<'a> {
        // SAFETY: a `RawTerm<'a>` is a term of the env `'a` names, which is `self.env`'s.
        unsafe { Term::new(self.env, raw.word) }
    }

    /// The list of `raw`, terms of this builder's env.
    fn raw_list(&self, raw: &[NIF_TERM]) -> RawTerm<'a> {
        // SAFETY: `raw` holds `raw.len()` terms of `self.env`, and the list is made in it.
        RawTerm::new(unsafe {
            rustler::sys::enif_make_list_from_array(
                self.env.as_c_arg(),
                raw.as_ptr(),
                raw.len() as c_uint,
            )
        })
    }

    fn external(&self, bytes: &[u8], ok: bool, what: &'static str) -> Result<RawTerm<'a>, Error> {
        if !ok {
            return Err(Error::BadExternalTerm(what));
        }
        self.env
            .binary_to_term(bytes)
            .map(|(term, _)| RawTerm::of(term))
            .ok_or(Error::BadExternalTerm(what))
    }

    /// `{A, B}`.
    pub fn pair(&self, a: impl Encoder, b: impl Encoder) -> Term<'a> {
        make_tuple(self.env, &[a.encode(self.env), b.encode(self.env)])
    }
}
