//! [`Writer`]: builds a term bottom-up (children first, as the conversion rules produce them)
//! and writes what `term_to_binary(T, [{minor_version, 2}])` writes (the OTP 26 default: UTF-8
//! atoms; map keys in Erlang's term order), so known terms have known bytes. Maps of more than
//! 32 keys are the exception: erts writes them in its hash order, this writer in key order.
//! Any thread.

use std::cmp::Ordering;

use super::bignum::{put_big, put_int, small_int, trim_magnitude};
use super::error::{Error, Result};
use super::identity::canonical_identity;
use super::put::{len32, put_atom, put_binary, put_float};
use super::tag::{
    LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT, NEWER_REFERENCE_EXT, NEW_PID_EXT, NIL_EXT, SMALL_TUPLE_EXT,
    STRING_EXT, VERSION,
};

/// A term being built. Children are built before their parent, so terms are kept as a small
/// arena and written out top-down by [`Writer::finish`].
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
    /// Canonical ETF of a reference.
    Ref(Vec<u8>),
}

/// Builds terms, each named by the `usize` its constructor returns, then writes one of them
/// with [`Writer::finish`]. Atoms are `&'static str`: a writer never makes an atom from data.
#[derive(Default)]
pub struct Writer {
    terms: Vec<Built>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, term: Built) -> usize {
        self.terms.push(term);
        self.terms.len() - 1
    }

    fn get(&self, term: usize) -> Result<&Built> {
        self.terms.get(term).ok_or(Error::Malformed {
            at: 0,
            what: "term built by another builder",
        })
    }

    /// An atom.
    pub fn atom(&mut self, name: &'static str) -> usize {
        self.push(Built::Atom(name))
    }

    /// An integer.
    pub fn int(&mut self, value: i64) -> usize {
        self.push(Built::Int(value))
    }

    /// An integer from its sign and little-endian magnitude (any length).
    pub fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> usize {
        match small_int(negative, magnitude_le) {
            Some(i) => self.push(Built::Int(i)),
            None => self.push(Built::Big(negative, trim_magnitude(magnitude_le).to_vec())),
        }
    }

    /// A float (`NEW_FLOAT_EXT`; Erlang floats are finite).
    pub fn float(&mut self, value: f64) -> usize {
        self.push(Built::Float(value))
    }

    /// A binary holding a copy of `bytes`.
    pub fn binary(&mut self, bytes: &[u8]) -> usize {
        self.push(Built::Binary(bytes.to_vec()))
    }

    /// A proper list.
    pub fn list(&mut self, items: Vec<usize>) -> usize {
        self.push(Built::List(items))
    }

    /// A tuple.
    pub fn tuple(&mut self, items: Vec<usize>) -> usize {
        self.push(Built::Tuple(items))
    }

    /// A map, its keys put in Erlang's order; fails with [`Error::DuplicateKey`] when two keys
    /// are the same term.
    pub fn map(&mut self, mut pairs: Vec<(usize, usize)>) -> Result<usize> {
        // Sorted, equal keys are neighbours. A failed comparison (never expected: every term
        // here was built by this writer) is reported after the sort.
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

    /// A pid from its external-format bytes (any encoding; written canonically).
    pub fn pid(&mut self, etf: &[u8]) -> Result<usize> {
        let canonical = canonical_identity(etf)?;
        if canonical.get(1) != Some(&NEW_PID_EXT) {
            return Err(Error::Invalid("not a pid"));
        }
        Ok(self.push(Built::Pid(canonical)))
    }

    /// A reference from its external-format bytes (any encoding; written canonically).
    pub fn reference(&mut self, etf: &[u8]) -> Result<usize> {
        let canonical = canonical_identity(etf)?;
        if canonical.get(1) != Some(&NEWER_REFERENCE_EXT) {
            return Err(Error::Invalid("not a reference"));
        }
        Ok(self.push(Built::Ref(canonical)))
    }

    /// The bytes of `term` (with the version byte).
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
            Built::Float(f) => put_float(out, *f),
            Built::Binary(bytes) => put_binary(out, bytes)?,
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
