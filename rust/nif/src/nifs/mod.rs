//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `context`,
//! `job`, `callback`, `semaphore`, `log`, `trace`. Each runs on the scheduler named in its
//! module's doc, decodes and checks its arguments, and hands typed values to the modules below.

pub mod callback;
pub mod context;
mod encode;
pub mod interp;
pub mod job;
pub mod log;
pub mod pool;
pub mod semaphore;
pub mod subinterp;
pub mod trace;

use rustler::sys::ErlNifTerm as NIF_TERM;
use rustler::types::tuple::get_tuple;
use rustler::{Binary, Decoder, Env, LocalPid, NifResult, Term, TermType};

use crate::atoms;
use crate::bridge::term_word;

/// A process or `undefined` (which clears a receiver).
pub struct OptionalPid(pub Option<LocalPid>);

impl<'a> Decoder<'a> for OptionalPid {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if atoms::undefined() == term {
            Ok(OptionalPid(None))
        } else {
            Ok(OptionalPid(Some(term.decode()?)))
        }
    }
}

/// The most a NIF on a normal scheduler copies into an owned env, in (roughly) machine words:
/// about 30 µs of copying, and as long again to find out (docs/architecture.md, invariant 1).
pub(crate) const COPY_BUDGET: isize = 16 * 1024;

/// True when copying `terms` stays within [`COPY_BUDGET`]. The walk stops as soon as the
/// budget is spent, and keeps its own stack (a deeply nested term must not overflow the
/// scheduler's). Bigger terms are copied by the `_dirty` twin of the NIF, on a dirty scheduler.
pub fn small_enough(terms: &[Term<'_>]) -> bool {
    copy_cost(terms).is_some()
}

/// What copying `terms` costs in [`COPY_BUDGET`]'s units, or `None` past the budget (the walk
/// of [`small_enough`]).
pub fn copy_cost(terms: &[Term<'_>]) -> Option<isize> {
    copy_cost_within(terms, COPY_BUDGET)
}

/// [`copy_cost`] against `limit`: `None` as soon as the cost passes it, so the walk is bounded
/// by `limit` whatever the terms hold (a list of a million elements included: its cells are
/// walked only up to the limit, never counted to the end).
///
/// The walk runs on the caller's normal scheduler for every big call (its share of a 10k-word
/// document's way in was as large as `term_to_binary/1`'s), so the elements of lists, tuples
/// and maps are charged as they are read: immediates from their tag bits, binaries (most of a
/// document's keys and strings) with one `enif_inspect_binary`, and only containers and the
/// other boxed terms go through `pending` and `enif_term_type`. The charges are the same
/// either way: one per term, one more per list cell, tuple element and map entry (two), and
/// a binary's words when it is copied (64 bytes or less).
pub fn copy_cost_within(terms: &[Term<'_>], limit: isize) -> Option<isize> {
    let Some(first) = terms.first() else {
        return Some(0);
    };
    let env = first.get_env();
    let mut walk = CostWalk {
        env: env.as_c_arg(),
        budget: limit,
        pending: Vec::with_capacity(64),
    };
    for term in terms {
        walk.budget -= 1;
        walk.term(term.as_c_arg());
    }
    while let Some(term) = walk.pending.pop() {
        if walk.budget < 0 {
            return None;
        }
        // SAFETY: every term in `pending` was read from `terms`, all terms of `env`.
        let term = unsafe { Term::new(env, term) };
        match term.get_type() {
            TermType::List => walk.list(term.as_c_arg()),
            TermType::Tuple => walk.tuple(term.as_c_arg()),
            TermType::Map => walk.map(term.as_c_arg()),
            TermType::Binary => {
                walk.binary(term.as_c_arg());
            }
            _ => {}
        }
    }
    (walk.budget >= 0).then_some(limit - walk.budget)
}

/// The state of [`copy_cost_within`]: what is left of the budget, and the containers (and
/// other boxed terms) charged but not looked into yet.
struct CostWalk {
    env: *mut rustler::sys::ErlNifEnv,
    budget: isize,
    pending: Vec<NIF_TERM>,
}

impl CostWalk {
    /// Looks at a term its caller has just read and charged (one), at once when that needs
    /// no `enif_term_type`: an immediate is done, a binary is charged its copied words,
    /// anything else waits in `pending`.
    fn term(&mut self, term: NIF_TERM) {
        if is_immediate(term) {
            return;
        }
        if !is_list_cell(term) && self.binary(term) {
            return;
        }
        self.pending.push(term);
    }

    /// Charges a binary's copied words; false when `term` is not a binary.
    fn binary(&mut self, term: NIF_TERM) -> bool {
        let mut bin = std::mem::MaybeUninit::<rustler::sys::ErlNifBinary>::uninit();
        // SAFETY: `term` is a term of `self.env`; `bin` is written only on success.
        if unsafe { rustler::sys::enif_inspect_binary(self.env, term, bin.as_mut_ptr()) } == 0 {
            return false;
        }
        // SAFETY: enif_inspect_binary succeeded, so it filled `bin`.
        let size = unsafe { bin.assume_init_ref() }.size;
        // Binaries over 64 bytes are shared, not copied; smaller ones are copied.
        if size <= 64 {
            self.budget -= (size / 8) as isize;
        }
        true
    }

    /// A list's cells (one each) and their heads, up to the budget; an improper tail waits.
    fn list(&mut self, mut rest: NIF_TERM) {
        let (mut head, mut tail) = (NIF_TERM::default(), NIF_TERM::default());
        // SAFETY: `rest` is a term of `self.env` (the list, then each tail); head and tail
        // are written only on success.
        while unsafe { rustler::sys::enif_get_list_cell(self.env, rest, &mut head, &mut tail) } != 0
        {
            self.budget -= 2;
            self.term(head);
            if self.budget < 0 {
                return;
            }
            rest = tail;
        }
        // An improper list's tail; `[]` ends a proper one.
        // SAFETY: `rest` is a term of `self.env`.
        if unsafe { rustler::sys::enif_is_empty_list(self.env, rest) } == 0 {
            self.budget -= 1;
            self.term(rest);
        }
    }

    /// A tuple's elements: two each.
    fn tuple(&mut self, term: NIF_TERM) {
        let mut arity = 0;
        let mut items: *const NIF_TERM = std::ptr::null();
        // SAFETY: `term` is a term of `self.env`; arity and items are written on success.
        if unsafe { rustler::sys::enif_get_tuple(self.env, term, &mut arity, &mut items) } == 0 {
            return;
        }
        // SAFETY: enif_get_tuple gave `arity` elements at `items`, alive as long as the term.
        let items = unsafe { std::slice::from_raw_parts(items, arity as usize) };
        for &item in items {
            self.budget -= 2;
            if self.budget < 0 {
                return;
            }
            self.term(item);
        }
    }

    /// A map's entries: two each, and one for each key and each value.
    fn map(&mut self, term: NIF_TERM) {
        let mut iter = std::mem::MaybeUninit::<rustler::sys::ErlNifMapIterator>::uninit();
        // SAFETY: `term` is a map of `self.env` (enif_term_type said so); the iterator is
        // written on success and destroyed below.
        let created = unsafe {
            rustler::sys::enif_map_iterator_create(
                self.env,
                term,
                iter.as_mut_ptr(),
                rustler::sys::ErlNifMapIteratorEntry::ERL_NIF_MAP_ITERATOR_HEAD,
            )
        };
        if created == 0 {
            return;
        }
        let iter = iter.as_mut_ptr();
        let (mut key, mut value) = (NIF_TERM::default(), NIF_TERM::default());
        // SAFETY: `iter` was created above over a map of `self.env`; key and value are
        // written only on success.
        while unsafe {
            rustler::sys::enif_map_iterator_get_pair(self.env, iter, &mut key, &mut value)
        } != 0
        {
            self.budget -= 4;
            if self.budget < 0 {
                break;
            }
            self.term(key);
            self.term(value);
            // SAFETY: as above.
            unsafe { rustler::sys::enif_map_iterator_next(self.env, iter) };
        }
        // SAFETY: created above, destroyed once.
        unsafe { rustler::sys::enif_map_iterator_destroy(self.env, iter) };
    }
}

/// How much of a term [`etf_suits`] looks at.
const ETF_SAMPLE: isize = 256;

/// True when a term may travel as the external term format (decoded by the executor, see
/// `erlang_python_core::ext::etf_list_to_tuple`) rather than be copied term by term. Both give
/// the same Python values; which is cheaper depends on what the term holds: the external
/// format is a copy of the bytes of every binary, where a copied term shares those over 64
/// bytes, and a reference costs a lookup (and a handle must be kept alive by the caller). So a
/// term whose first [`ETF_SAMPLE`] or so terms hold such a binary or a reference is copied;
/// anything else (lists of numbers, documents of small maps, short strings) takes the external
/// format. Bounded: a sample, with its own stack.
pub fn etf_suits(term: Term<'_>) -> bool {
    etf_walk(term, Some(ETF_SAMPLE))
}

/// True when no part of a term is a binary over 64 bytes or a reference: the whole term is
/// walked (on a dirty scheduler), so such arguments are encoded there with nothing for the
/// caller to keep alive.
pub fn etf_clean(term: Term<'_>) -> bool {
    etf_walk(term, None)
}

/// [`etf_suits`] over at most `sample` terms (true past it), or over all of them.
fn etf_walk(term: Term<'_>, sample: Option<isize>) -> bool {
    let mut budget = sample.unwrap_or(isize::MAX);
    let take = sample.map_or(usize::MAX, |s| s as usize);
    let mut pending = vec![term];
    while let Some(term) = pending.pop() {
        budget -= 1;
        if budget < 0 {
            return true;
        }
        match term.get_type() {
            TermType::List => {
                let mut rest = term;
                while let Ok((head, tail)) = rest.list_get_cell() {
                    budget -= 1;
                    if budget < 0 {
                        return true;
                    }
                    // Elements are looked at as they come: a long list alone would spend
                    // the sample on its cells.
                    match head.get_type() {
                        TermType::Binary if big_binary(head) => return false,
                        TermType::Ref => return false,
                        TermType::List | TermType::Tuple | TermType::Map => pending.push(head),
                        _ => {}
                    }
                    rest = tail;
                }
                if !rest.is_empty_list() {
                    pending.push(rest);
                }
            }
            TermType::Tuple => {
                if let Ok(items) = get_tuple(term) {
                    pending.extend(items.into_iter().take(take));
                }
            }
            TermType::Map => {
                if let Some(entries) = rustler::types::map::MapIterator::new(term) {
                    for (key, value) in entries.take(take) {
                        pending.push(key);
                        pending.push(value);
                    }
                }
            }
            TermType::Binary if big_binary(term) => return false,
            TermType::Ref => return false,
            _ => {}
        }
    }
    true
}

/// A binary over 64 bytes: shared (not copied) when a term is copied.
fn big_binary(term: Term<'_>) -> bool {
    term.decode::<Binary>().map(|b| b.len()).unwrap_or(0) > 64
}

/// True for an immediate term (a small integer, an atom, a local pid or port, `[]`): one whose
/// two low bits are `TAG_PRIMARY_IMMED1` (erts `erl_term.h`, unchanged since R7; lists,
/// boxed terms and headers have other tags). A shortcut of the cost walk only, which looks at
/// any other term with `enif_term_type`: were the tags ever to change, the walk would misjudge
/// a cost (which path big arguments take), never a value.
fn is_immediate(term: NIF_TERM) -> bool {
    term_word(term) & 0x3 == 0x3
}

/// True for a small integer (immediate tag `_TAG_IMMED1_SMALL`, erts `erl_term.h`): a hint of
/// the argument encoder (`encode`), which reads the integer with [`small_int_value`] or the
/// NIF API.
fn is_small_int(term: NIF_TERM) -> bool {
    term_word(term) & 0xf == 0xf
}

/// The value of a small integer read from its term word (the value above the 4 tag bits of
/// `_TAG_IMMED1_SMALL`, erts `erl_term.h`), when this VM makes small integers that way:
/// [`small_ints_tagged`] checks it once against `enif_make_int64`; else `None` and the
/// caller reads the integer through the NIF API.
fn small_int_value(env: Env<'_>, term: NIF_TERM) -> Option<i64> {
    let word = term_word(term);
    (word & 0xf == 0xf && small_ints_tagged(env)).then_some((word as i64) >> 4)
}

/// Whether small integers are their value above the 4 bits of tag `0xf`: checked once, on
/// values from both ends of the range of small integers and between.
fn small_ints_tagged(env: Env<'_>) -> bool {
    static TAGGED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TAGGED.get_or_init(|| {
        let min = -(1i64 << 59);
        [0, 1, -1, 255, 256, -256, 1 << 31, min, -min - 1]
            .into_iter()
            .all(|value| {
                // SAFETY: `env` is the calling NIF's env.
                let term = unsafe { rustler::sys::enif_make_int64(env.as_c_arg(), value) };
                term_word(term) == (((value << 4) | 0xf) as usize)
            })
    })
}

/// True for a list cell (primary tag `TAG_PRIMARY_LIST`, erts `erl_term.h`): a hint of the
/// cost walk, which then reads the cell through the NIF API.
fn is_list_cell(term: NIF_TERM) -> bool {
    term_word(term) & 0x3 == 0x1
}
