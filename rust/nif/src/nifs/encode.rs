//! A call's arguments in the external term format, written by the caller's NIF in the same
//! pass that charges their cost. Big arguments that suit the format (docs/type-conversion.md,
//! "What conversion costs") used to take two passes on the caller's scheduler: the routing
//! walk ([`super::copy_cost_within`]), then `term_to_binary/1` from Erlang and a second NIF call.
//! [`encode_within`] reads each term once, through the same NIF calls the walk made, charges
//! it as the walk does, and writes its bytes as it goes; the executor decodes them as before.
//!
//! The bytes differ from `term_to_binary/1`'s only where the decoder reads both alike: lists
//! of small integers are `LIST_EXT` (never `STRING_EXT`), map entries come in the order of
//! `enif_map_iterator` (which is the order of the copied term too). Terms this module does
//! not write itself (integers past 64 bits, pids, ports, funs, bitstrings, atoms that are not
//! Latin-1) are spliced in from `enif_term_to_binary`. It gives up, and the arguments take
//! the walk's way, at the first binary of more than 64 bytes or reference: copying shares the
//! first, and an opaque handle must stay alive beside the second (`py_request` keeps it).

use rustler::sys::{
    enif_get_atom, enif_get_double, enif_get_int64, enif_get_list_cell, enif_get_map_size,
    enif_get_tuple, enif_inspect_binary, enif_is_empty_list, enif_make_new_binary,
    enif_map_iterator_create, enif_map_iterator_destroy, enif_map_iterator_get_pair,
    enif_map_iterator_next, enif_release_binary, enif_term_to_binary, enif_term_type, ErlNifBinary,
    ErlNifCharEncoding, ErlNifEnv, ErlNifMapIterator, ErlNifMapIteratorEntry,
    ErlNifTerm as NIF_TERM, ErlNifTermType,
};
use rustler::{Env, Term};

use erlang_python_core::etf::put::{len32, put_atom, put_binary, put_float};
use erlang_python_core::etf::put_int;
use erlang_python_core::etf::tag::{
    INTEGER_EXT, LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT, NIL_EXT, SMALL_INTEGER_EXT, SMALL_TUPLE_EXT,
    VERSION,
};

use super::{is_immediate, is_list_cell, is_small_int, small_int_value};
use crate::bridge::term_word;

/// What [`encode_within`] found.
pub enum Encoded {
    /// The term's external format, and what the walk charges for it.
    Etf(Vec<u8>, isize),
    /// It costs more than the limit.
    TooBig,
    /// It holds a binary of more than 64 bytes or a reference.
    Unsuitable,
}

/// Binaries of more than this many bytes are shared when a term is copied, and make a term
/// [`Encoded::Unsuitable`].
const SHARED_BINARY: usize = 64;

/// `term` in the external term format, charged as [`super::copy_cost_within`] charges it (one per
/// term, two per list cell or tuple element, four per map entry, one per improper tail, a
/// small binary's words; and, which the walk does not, the words of a term spliced in, such
/// as a big integer) and given up as soon as that passes `limit`. Bounded by `limit`
/// whatever `term` holds, with its own stacks (deep nesting never grows the scheduler's).
pub fn encode_within<'a>(term: Term<'a>, limit: isize) -> Encoded {
    let mut enc = Encoder {
        term_env: term.get_env(),
        env: term.get_env().as_c_arg(),
        budget: limit - 1,
        out: Vec::with_capacity(256),
        frames: Vec::with_capacity(16),
        entries: Vec::new(),
        atoms: [AtomSlot::EMPTY; ATOM_SLOTS],
    };
    enc.out.push(VERSION);
    match enc.run(term.as_c_arg()) {
        Ok(()) if enc.budget >= 0 => {}
        Ok(()) | Err(Stop::TooBig) => return Encoded::TooBig,
        Err(Stop::Unsuitable) => return Encoded::Unsuitable,
    }
    Encoded::Etf(enc.out, limit - enc.budget)
}

/// A new binary of `env` holding `bytes`; `None` when it cannot be allocated.
pub fn binary_term<'a>(env: Env<'a>, bytes: &[u8]) -> Option<Term<'a>> {
    let mut term = NIF_TERM::default();
    // SAFETY: `env` is the calling NIF's env; on success the returned buffer has room for
    // `bytes.len()` bytes and belongs to the new binary `term`.
    unsafe {
        let buf = enif_make_new_binary(env.as_c_arg(), bytes.len(), &mut term);
        if buf.is_null() {
            return None;
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
        Some(Term::new(env, term))
    }
}

/// Why the encoder stopped early.
enum Stop {
    TooBig,
    Unsuitable,
}

/// A container whose elements are being written.
enum Frame {
    /// A list: the rest of it, where its length field is and how many cells came so far.
    List {
        rest: NIF_TERM,
        length_at: usize,
        cells: usize,
    },
    /// A tuple's elements (alive as long as the tuple), the next one's index.
    Tuple {
        items: *const NIF_TERM,
        next: usize,
        arity: usize,
    },
    /// A map's keys and values, read out into `Encoder::entries` from `start` to `end`; the
    /// next one to write.
    Map {
        start: usize,
        next: usize,
        end: usize,
    },
}

/// Slots of the cache of atoms already written.
const ATOM_SLOTS: usize = 16;

/// Where an atom's bytes already are in the output.
#[derive(Clone, Copy)]
struct AtomSlot {
    word: usize,
    start: u32,
    len: u32,
}

impl AtomSlot {
    const EMPTY: AtomSlot = AtomSlot {
        word: 0,
        start: 0,
        len: 0,
    };
}

struct Encoder<'a> {
    term_env: Env<'a>,
    env: *mut ErlNifEnv,
    budget: isize,
    out: Vec<u8>,
    frames: Vec<Frame>,
    /// The keys and values of the maps in `frames`, key before value.
    entries: Vec<NIF_TERM>,
    /// Recent atoms (map keys, `true`, `nil`...): copied from where they were first written.
    atoms: [AtomSlot; ATOM_SLOTS],
}

impl Encoder<'_> {
    fn run(&mut self, root: NIF_TERM) -> Result<(), Stop> {
        self.term(root)?;
        while let Some(top) = self.frames.len().checked_sub(1) {
            if self.budget < 0 {
                return Err(Stop::TooBig);
            }
            match self.frames[top] {
                Frame::List {
                    rest,
                    length_at,
                    cells,
                } => self.list(top, rest, length_at, cells)?,
                Frame::Tuple { items, next, arity } => self.tuple_items(top, items, next, arity)?,
                Frame::Map { start, next, end } => self.map_entries(top, start, next, end)?,
            }
        }
        Ok(())
    }

    /// Writes the cells of the list of frame `top` from `rest` on, until one holds a
    /// container (its frame goes on top, this one is brought up to date) or the list ends.
    fn list(
        &mut self,
        top: usize,
        mut rest: NIF_TERM,
        length_at: usize,
        mut cells: usize,
    ) -> Result<(), Stop> {
        let (mut head, mut tail) = (NIF_TERM::default(), NIF_TERM::default());
        // SAFETY: `rest` is a term of `self.env` (the list, then each tail).
        while unsafe { enif_get_list_cell(self.env, rest, &mut head, &mut tail) } != 0 {
            rest = tail;
            cells += 1;
            self.budget -= 2;
            // Lists of numbers: one element after the other, with no call per element.
            if let Some(value) = small_int_value(self.term_env, head) {
                self.int(value);
            } else if self.term(head)? {
                self.frames[top] = Frame::List {
                    rest,
                    length_at,
                    cells,
                };
                return Ok(());
            }
            if self.budget < 0 {
                return Err(Stop::TooBig);
            }
        }
        self.frames.pop();
        self.end_list(rest, length_at, cells)
    }

    /// [`Encoder::list`] for the elements of a tuple.
    fn tuple_items(
        &mut self,
        top: usize,
        items: *const NIF_TERM,
        mut next: usize,
        arity: usize,
    ) -> Result<(), Stop> {
        while next < arity {
            // SAFETY: `items` holds `arity` elements (enif_get_tuple), alive as long as the
            // tuple, a term of `self.env`; `next < arity`.
            let item = unsafe { *items.add(next) };
            next += 1;
            self.budget -= 2;
            if self.term(item)? {
                self.frames[top] = Frame::Tuple { items, next, arity };
                return Ok(());
            }
            if self.budget < 0 {
                return Err(Stop::TooBig);
            }
        }
        self.frames.pop();
        Ok(())
    }

    /// [`Encoder::list`] for the keys and values of a map (charged when they were read).
    fn map_entries(
        &mut self,
        top: usize,
        start: usize,
        mut next: usize,
        end: usize,
    ) -> Result<(), Stop> {
        while next < end {
            let item = self.entries[next];
            next += 1;
            if self.term(item)? {
                self.frames[top] = Frame::Map { start, next, end };
                return Ok(());
            }
        }
        self.frames.pop();
        self.entries.truncate(start);
        Ok(())
    }

    /// Writes `term`, or its container's header and pushes its frame (true; its elements
    /// follow from [`Encoder::run`]).
    fn term(&mut self, term: NIF_TERM) -> Result<bool, Stop> {
        if is_immediate(term) {
            return self.immediate(term).map(|()| false);
        }
        if is_list_cell(term) {
            self.out.push(LIST_EXT);
            let length_at = self.out.len();
            self.out.extend_from_slice(&[0; 4]);
            self.frames.push(Frame::List {
                rest: term,
                length_at,
                cells: 0,
            });
            return Ok(true);
        }
        if self.binary(term)? {
            return Ok(false);
        }
        // SAFETY: `term` is a term of `self.env`.
        match unsafe { enif_term_type(self.env, term) } {
            ErlNifTermType::ERL_NIF_TERM_TYPE_MAP => self.map(term),
            ErlNifTermType::ERL_NIF_TERM_TYPE_TUPLE => self.tuple(term),
            ErlNifTermType::ERL_NIF_TERM_TYPE_FLOAT => {
                let mut value = 0.0;
                // SAFETY: `term` is a float of `self.env`.
                unsafe { enif_get_double(self.env, term, &mut value) };
                put_float(&mut self.out, value);
                Ok(false)
            }
            ErlNifTermType::ERL_NIF_TERM_TYPE_INTEGER => self.integer(term).map(|()| false),
            ErlNifTermType::ERL_NIF_TERM_TYPE_REFERENCE => Err(Stop::Unsuitable),
            _ => self.splice(term).map(|()| false),
        }
    }

    /// A small integer, an atom, `[]`, or a local pid or port. Its tag bits say which to try
    /// first (a hint only: each is read through the NIF API).
    fn immediate(&mut self, term: NIF_TERM) -> Result<(), Stop> {
        if !is_small_int(term) {
            return self.atom(term);
        }
        if let Some(value) = small_int_value(self.term_env, term) {
            self.int(value);
            return Ok(());
        }
        let mut value = 0i64;
        // SAFETY: `term` is a term of `self.env`; `value` is written only on success.
        if unsafe { enif_get_int64(self.env, term, &mut value) } != 0 {
            self.int(value);
            return Ok(());
        }
        self.atom(term)
    }

    /// An integer: `put_int` written out here for the sizes of most data (it is not inlined
    /// across the crates, and lists of numbers would pay a call per element).
    #[inline]
    fn int(&mut self, value: i64) {
        if let Ok(byte) = u8::try_from(value) {
            self.out.extend_from_slice(&[SMALL_INTEGER_EXT, byte]);
        } else if let Ok(word) = i32::try_from(value) {
            let [b0, b1, b2, b3] = word.to_be_bytes();
            self.out.extend_from_slice(&[INTEGER_EXT, b0, b1, b2, b3]);
        } else {
            put_int(&mut self.out, value);
        }
    }

    /// An atom, `[]`, or a local pid or port.
    fn atom(&mut self, term: NIF_TERM) -> Result<(), Stop> {
        // SAFETY: as above.
        if unsafe { enif_is_empty_list(self.env, term) } != 0 {
            self.out.push(NIL_EXT);
            return Ok(());
        }
        self.named(term)
    }

    /// An atom from where it was last written, or by name; anything else is spliced.
    fn named(&mut self, term: NIF_TERM) -> Result<(), Stop> {
        let word = term_word(term);
        let slot = (word >> 6) % ATOM_SLOTS;
        let AtomSlot {
            word: seen,
            start,
            len,
        } = self.atoms[slot];
        if seen == word && len > 0 {
            let start = start as usize;
            self.out.extend_from_within(start..start + len as usize);
            return Ok(());
        }
        // Atoms have at most 255 characters.
        let mut name = [0u8; 256];
        // SAFETY: `term` is a term of `self.env`; `name` has room for 256 bytes, and
        // enif_get_atom writes at most that many (the name and a NUL) on success.
        let size = unsafe {
            enif_get_atom(
                self.env,
                term,
                name.as_mut_ptr().cast(),
                name.len() as _,
                ErlNifCharEncoding::ERL_NIF_LATIN1,
            )
        };
        if size <= 0 {
            // Not an atom (a local pid or port), or not Latin-1.
            return self.splice(term);
        }
        let start = self.out.len();
        let latin1 = &name[..size as usize - 1];
        let text: String = latin1.iter().map(|&b| char::from(b)).collect();
        put_atom(&mut self.out, &text);
        if let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(self.out.len() - start))
        {
            self.atoms[slot] = AtomSlot { word, start, len };
        }
        Ok(())
    }

    /// A binary, charged its words when it is copied; false when `term` is not a binary.
    fn binary(&mut self, term: NIF_TERM) -> Result<bool, Stop> {
        let mut bin = std::mem::MaybeUninit::<ErlNifBinary>::uninit();
        // SAFETY: `term` is a term of `self.env`; `bin` is written only on success.
        if unsafe { enif_inspect_binary(self.env, term, bin.as_mut_ptr()) } == 0 {
            return Ok(false);
        }
        // SAFETY: enif_inspect_binary succeeded, so it filled `bin`.
        let bin = unsafe { bin.assume_init_ref() };
        if bin.size > SHARED_BINARY {
            return Err(Stop::Unsuitable);
        }
        self.budget -= (bin.size / 8) as isize;
        // SAFETY: `bin.data` holds `bin.size` bytes as long as the term lives.
        let bytes = unsafe { std::slice::from_raw_parts(bin.data, bin.size) };
        // Cannot fail: at most 64 bytes.
        put_binary(&mut self.out, bytes).map_err(|_| Stop::Unsuitable)?;
        Ok(true)
    }

    /// An integer: 64 bits are written here, bigger ones spliced.
    fn integer(&mut self, term: NIF_TERM) -> Result<(), Stop> {
        let mut value = 0i64;
        // SAFETY: `term` is a term of `self.env`; `value` is written only on success.
        if unsafe { enif_get_int64(self.env, term, &mut value) } != 0 {
            self.int(value);
            Ok(())
        } else {
            self.splice(term)
        }
    }

    fn tuple(&mut self, term: NIF_TERM) -> Result<bool, Stop> {
        let mut arity = 0;
        let mut items: *const NIF_TERM = std::ptr::null();
        // SAFETY: `term` is a tuple of `self.env`; arity and items are written on success.
        if unsafe { enif_get_tuple(self.env, term, &mut arity, &mut items) } == 0 {
            return self.splice(term).map(|()| false);
        }
        let arity = arity as usize;
        match u8::try_from(arity) {
            Ok(small) => self.out.extend_from_slice(&[SMALL_TUPLE_EXT, small]),
            Err(_) => {
                self.out.push(LARGE_TUPLE_EXT);
                self.out.extend_from_slice(&(arity as u32).to_be_bytes());
            }
        }
        self.frames.push(Frame::Tuple {
            items,
            next: 0,
            arity,
        });
        Ok(true)
    }

    /// A map: its entries are read out at once (charged as they come, so a big map stops
    /// the reading at the limit), and written from `run`.
    fn map(&mut self, term: NIF_TERM) -> Result<bool, Stop> {
        let mut size = 0;
        // SAFETY: `term` is a map of `self.env`; `size` is written on success.
        if unsafe { enif_get_map_size(self.env, term, &mut size) } == 0 {
            return self.splice(term).map(|()| false);
        }
        let mut iter = std::mem::MaybeUninit::<ErlNifMapIterator>::uninit();
        // SAFETY: `term` is a map of `self.env`; the iterator is written on success and
        // destroyed below.
        if unsafe {
            enif_map_iterator_create(
                self.env,
                term,
                iter.as_mut_ptr(),
                ErlNifMapIteratorEntry::ERL_NIF_MAP_ITERATOR_HEAD,
            )
        } == 0
        {
            return self.splice(term).map(|()| false);
        }
        let iter = iter.as_mut_ptr();
        let start = self.entries.len();
        let (mut key, mut value) = (NIF_TERM::default(), NIF_TERM::default());
        // SAFETY: `iter` was created above over a map of `self.env`; key and value are
        // written only on success.
        while unsafe { enif_map_iterator_get_pair(self.env, iter, &mut key, &mut value) } != 0 {
            self.budget -= 4;
            if self.budget < 0 {
                break;
            }
            self.entries.push(key);
            self.entries.push(value);
            // SAFETY: as above.
            unsafe { enif_map_iterator_next(self.env, iter) };
        }
        // SAFETY: created above, destroyed once.
        unsafe { enif_map_iterator_destroy(self.env, iter) };
        if self.budget < 0 {
            return Err(Stop::TooBig);
        }
        self.out.push(MAP_EXT);
        self.out.extend_from_slice(&(size as u32).to_be_bytes());
        self.frames.push(Frame::Map {
            start,
            next: start,
            end: self.entries.len(),
        });
        Ok(true)
    }

    /// Ends a list: its improper tail if any, then its length.
    fn end_list(&mut self, tail: NIF_TERM, length_at: usize, cells: usize) -> Result<(), Stop> {
        let Ok(length) = len32(cells) else {
            return Err(Stop::TooBig);
        };
        self.out[length_at..length_at + 4].copy_from_slice(&length);
        // SAFETY: `tail` is a term of `self.env`.
        if unsafe { enif_is_empty_list(self.env, tail) } != 0 {
            self.out.push(NIL_EXT);
            return Ok(());
        }
        self.budget -= 1;
        self.term(tail).map(|_| ())
    }

    /// The bytes `enif_term_to_binary` gives for `term`, without their version byte.
    fn splice(&mut self, term: NIF_TERM) -> Result<(), Stop> {
        let mut bin = std::mem::MaybeUninit::<ErlNifBinary>::uninit();
        // SAFETY: `term` is a term of `self.env`; on success `bin` is an allocated binary,
        // released below.
        if unsafe { enif_term_to_binary(self.env, term, bin.as_mut_ptr()) } == 0 {
            return Err(Stop::Unsuitable);
        }
        // SAFETY: enif_term_to_binary succeeded, so it filled `bin`.
        let bin = unsafe { bin.assume_init_mut() };
        // SAFETY: `bin.data` holds `bin.size` bytes until the binary is released below.
        let bytes = unsafe { std::slice::from_raw_parts(bin.data, bin.size) };
        self.out
            .extend_from_slice(bytes.get(1..).unwrap_or_default());
        // Its words: a big integer's may be many (the walk charges it as one term).
        self.budget -= (bytes.len() / 8) as isize;
        // SAFETY: allocated by enif_term_to_binary, released once.
        unsafe { enif_release_binary(bin) };
        Ok(())
    }
}
