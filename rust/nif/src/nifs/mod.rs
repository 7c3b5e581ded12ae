//! The NIF functions, grouped as `py_nif.erl` groups its stubs: `interp`, `pool`, `context`,
//! `job`, `callback`, `semaphore`, `log`, `trace`. Each runs on the scheduler named in its
//! module's doc, decodes and checks its arguments, and hands typed values to the modules below.

pub mod callback;
pub mod context;
pub mod interp;
pub mod job;
pub mod log;
pub mod pool;
pub mod semaphore;
pub mod subinterp;
pub mod trace;

use rustler::sys::ErlNifTerm as NIF_TERM;
use rustler::types::tuple::get_tuple;
use rustler::{Binary, Decoder, LocalPid, NifResult, Term, TermType};

use crate::atoms;

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
pub fn copy_cost_within(terms: &[Term<'_>], limit: isize) -> Option<isize> {
    let mut budget = limit;
    let mut pending: Vec<Term<'_>> = terms.to_vec();
    while let Some(term) = pending.pop() {
        budget -= 1;
        if is_immediate(term.as_c_arg()) {
            continue;
        }
        match term.get_type() {
            TermType::List => {
                let env = term.get_env();
                let (mut rest, mut head, mut tail) =
                    (term.as_c_arg(), NIF_TERM::default(), NIF_TERM::default());
                // SAFETY: `rest` is a term of `env` (the list, then each tail); head and tail
                // are written only on success.
                while unsafe {
                    rustler::sys::enif_get_list_cell(env.as_c_arg(), rest, &mut head, &mut tail)
                } != 0
                {
                    // A cons cell, and its head: a scalar is charged here (one, as for any
                    // term taken from `pending`) without a trip through `pending`: the
                    // elements of big lists are mostly scalars, most of them immediates,
                    // known from their tag without a call.
                    budget -= 1;
                    // SAFETY: `head` is a term of `env`, just read from the list.
                    let head_term = unsafe { Term::new(env, head) };
                    if is_immediate(head) || is_scalar(head_term) {
                        budget -= 1;
                    } else {
                        pending.push(head_term);
                    }
                    if budget < 0 {
                        return None;
                    }
                    rest = tail;
                }
                // SAFETY: `rest` is a term of `env`.
                let rest = unsafe { Term::new(env, rest) };
                // An improper list's tail; `[]` ends a proper one.
                if !rest.is_empty_list() {
                    pending.push(rest);
                }
            }
            TermType::Tuple => {
                if let Ok(items) = get_tuple(term) {
                    budget -= items.len() as isize;
                    if budget < 0 {
                        return None;
                    }
                    pending.extend(items);
                }
            }
            TermType::Map => {
                if let Some(entries) = rustler::types::map::MapIterator::new(term) {
                    for (key, value) in entries {
                        budget -= 2;
                        if budget < 0 {
                            return None;
                        }
                        pending.push(key);
                        pending.push(value);
                    }
                }
            }
            // Binaries over 64 bytes are shared, not copied; smaller ones are copied.
            TermType::Binary => {
                let size = term.decode::<Binary>().map(|b| b.len()).unwrap_or(0);
                if size <= 64 {
                    budget -= (size / 8) as isize;
                }
            }
            _ => {}
        }
        if budget < 0 {
            return None;
        }
    }
    Some(limit - budget)
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
    // SAFETY: ErlNifTerm is a `repr(transparent)` wrapper of the word that is the term.
    let word: usize = unsafe { std::mem::transmute::<NIF_TERM, usize>(term) };
    word & 0x3 == 0x3
}

/// Atoms, numbers, pids, ports and references: terms the walk does not look into.
fn is_scalar(term: Term<'_>) -> bool {
    matches!(
        term.get_type(),
        TermType::Atom
            | TermType::Integer
            | TermType::Float
            | TermType::Pid
            | TermType::Port
            | TermType::Ref
    )
}
