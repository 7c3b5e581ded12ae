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
    let mut budget = COPY_BUDGET;
    let mut pending: Vec<Term<'_>> = terms.to_vec();
    while let Some(term) = pending.pop() {
        budget -= 1;
        match term.get_type() {
            TermType::List => {
                // A proper list costs at least two per element (its cell and the element), so
                // a long one is known to be too big from its length alone, which the VM counts
                // much faster than this loop walks it.
                if let Ok(len) = term.list_length() {
                    if (len as isize).saturating_mul(2) > budget {
                        return false;
                    }
                }
                let mut rest = term;
                while let Ok((head, tail)) = rest.list_get_cell() {
                    // A cons cell, and its head: a scalar is charged here (one, as for any
                    // term taken from `pending`) without a trip through `pending`: the
                    // elements of big lists are mostly scalars.
                    budget -= 1;
                    if is_scalar(head) {
                        budget -= 1;
                    } else {
                        pending.push(head);
                    }
                    if budget < 0 {
                        return false;
                    }
                    rest = tail;
                }
                // An improper list's tail; `[]` ends a proper one.
                if !rest.is_empty_list() {
                    pending.push(rest);
                }
            }
            TermType::Tuple => {
                if let Ok(items) = get_tuple(term) {
                    budget -= items.len() as isize;
                    if budget < 0 {
                        return false;
                    }
                    pending.extend(items);
                }
            }
            TermType::Map => {
                if let Some(entries) = rustler::types::map::MapIterator::new(term) {
                    for (key, value) in entries {
                        budget -= 2;
                        if budget < 0 {
                            return false;
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
            return false;
        }
    }
    true
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
