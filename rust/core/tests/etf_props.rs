//! Properties of the byte codec, with no interpreter, over arbitrary terms and bytes:
//!
//! - Terms: a model of Erlang terms (small and big integers up to hundreds of bytes, finite
//!   floats, Latin-1 and UTF-8 atoms, binaries, proper and improper lists, tuples, maps with
//!   distinct keys, pids and references) written by hand per OTP's "External Term Format",
//!   in any of the encodings erts reads, reads back through [`Index`] as the same term. The
//!   [`Writer`] writes what Erlang writes (the hand encoding with Erlang's choices), reads
//!   back as the same term, and is canonical: whatever encoding was read, writing it again
//!   gives the same bytes.
//! - Bytes: garbage, and valid encodings truncated, bit-flipped, extended or cut, fed to every
//!   public decoder, never panic: each decodes or returns the codec's [`Error`], and decoders
//!   that succeed agree with [`Index`]. A strict prefix of an encoding, or an encoding with a
//!   byte after it, is always an error.
//! - Bignums: arbitrary sign and magnitude round trip through the bignum codec; their value and
//!   printed digits agree with Rust's own 128-bit integers where they fit, and read back
//!   exactly where they do not.
//!
//! Cases per property: [`common::CASES`] by default, `PROPTEST_CASES` when set (`make fuzz`).

mod common;

use std::cmp::Ordering;
use std::sync::LazyLock;

use erlang_python_core::etf::{
    self, canonical_identity, decode_atom, decode_bignum, describe_pid, describe_ref,
    encode_bignum, is_pid, is_ref, small_int, tag, trim_magnitude, Cursor, Error, Index, Slot,
    Term, Writer,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index as At};
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------------
// The model

/// An Erlang term, in one normal form per term: [`PartialEq`] is Erlang's exact equality
/// (`=:=`), with floats compared by their bits and maps by their pairs in any order.
#[derive(Debug, Clone)]
enum M {
    /// An integer that fits in 64 bits.
    Int(i64),
    /// Any other integer: sign, little-endian magnitude with no high zero bytes.
    Big(bool, Vec<u8>),
    Float(f64),
    Atom(String),
    Binary(Vec<u8>),
    /// Elements, and the tail of an improper list: never a list (a tail that is a list
    /// continues it) and only after at least one element.
    List(Vec<M>, Option<Box<M>>),
    Tuple(Vec<M>),
    /// Pairs with distinct keys.
    Map(Vec<(M, M)>),
    Pid {
        node: String,
        id: u32,
        serial: u32,
        creation: u32,
    },
    Ref {
        node: String,
        creation: u32,
        ids: Vec<u32>,
    },
}

impl PartialEq for M {
    fn eq(&self, other: &M) -> bool {
        match (self, other) {
            (M::Int(a), M::Int(b)) => a == b,
            (M::Big(n, a), M::Big(o, b)) => n == o && a == b,
            (M::Float(a), M::Float(b)) => a.to_bits() == b.to_bits(),
            (M::Atom(a), M::Atom(b)) => a == b,
            (M::Binary(a), M::Binary(b)) => a == b,
            (M::List(a, s), M::List(b, t)) => a == b && s == t,
            (M::Tuple(a), M::Tuple(b)) => a == b,
            (M::Map(a), M::Map(b)) => a.len() == b.len() && a.iter().all(|pair| b.contains(pair)),
            (
                M::Pid {
                    node,
                    id,
                    serial,
                    creation,
                },
                M::Pid {
                    node: n,
                    id: i,
                    serial: s,
                    creation: c,
                },
            ) => (node, id, serial, creation) == (n, i, s, c),
            (
                M::Ref {
                    node,
                    creation,
                    ids,
                },
                M::Ref {
                    node: n,
                    creation: c,
                    ids: i,
                },
            ) => (node, creation, ids) == (n, c, i),
            _ => false,
        }
    }
}

/// The integer with this sign and little-endian magnitude, in normal form (worked out here,
/// not by the codec under test).
fn integer(negative: bool, magnitude_le: &[u8]) -> M {
    let len = magnitude_le
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    let digits = &magnitude_le[..len];
    if len <= 8 {
        let mut word = [0u8; 8];
        word[..len].copy_from_slice(digits);
        let value = i128::from(u64::from_le_bytes(word));
        if let Ok(small) = i64::try_from(if negative { -value } else { value }) {
            return M::Int(small);
        }
    }
    M::Big(negative, digits.to_vec())
}

/// A list in normal form: a tail that is a list continues it, and `[] ++ T` is `T`.
fn list(mut items: Vec<M>, tail: Option<M>) -> M {
    match tail {
        Some(M::List(more, tail)) => {
            items.extend(more);
            M::List(items, tail)
        }
        Some(tail) if items.is_empty() => tail,
        tail => M::List(items, tail.map(Box::new)),
    }
}

/// A map keeping the first pair of each key.
fn map(pairs: Vec<(M, M)>) -> M {
    let mut out: Vec<(M, M)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, v));
        }
    }
    M::Map(out)
}

fn latin1(name: &str) -> Option<Vec<u8>> {
    name.chars().map(|c| u8::try_from(c).ok()).collect()
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn int() -> BoxedStrategy<M> {
    prop_oneof![
        (0i64..=255).prop_map(M::Int),
        any::<i32>().prop_map(|i| M::Int(i.into())),
        any::<i64>().prop_map(M::Int),
        (any::<bool>(), vec(any::<u8>(), 0..=17)).prop_map(|(n, m)| integer(n, &m)),
        (any::<bool>(), vec(any::<u8>(), 0..=600)).prop_map(|(n, m)| integer(n, &m)),
    ]
    .boxed()
}

fn finite_float() -> BoxedStrategy<f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        (-1_000_000i32..1_000_000).prop_map(f64::from),
    ]
    .boxed()
}

/// Any atom: up to 255 characters, Latin-1 or not.
fn any_atom() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z][a-z0-9_@]{0,10}",
        vec(any::<u8>().prop_map(char::from), 0..=255).prop_map(String::from_iter),
        vec(any::<char>(), 0..=12).prop_map(String::from_iter),
        vec(any::<char>(), 0..=255).prop_map(String::from_iter),
    ]
    .boxed()
}

/// The atoms the [`Writer`] can write (it takes `&'static str`: a writer never makes an atom
/// from data): short and long, ASCII, Latin-1, and multi-byte UTF-8 past 255 bytes.
static ATOMS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut atoms = vec![
        "",
        "a",
        "ok",
        "none",
        "true",
        "node@host",
        "héllo",
        "ÿ",
        "日本",
        "🦀",
        "with space",
    ];
    for long in ["x".repeat(255), "é".repeat(255), "日".repeat(255)] {
        atoms.push(Box::leak(long.into_boxed_str()));
    }
    atoms
});

fn static_atom(name: &str) -> &'static str {
    ATOMS
        .iter()
        .find(|atom| **atom == name)
        .copied()
        .unwrap_or_else(|| panic!("{name:?} is not one of the writable atoms"))
}

fn writable_atom() -> BoxedStrategy<String> {
    select(ATOMS.as_slice()).prop_map(str::to_owned).boxed()
}

fn creation() -> BoxedStrategy<u32> {
    prop_oneof![0u32..=3, any::<u32>()].boxed()
}

fn pid() -> BoxedStrategy<M> {
    (any_atom(), any::<u32>(), any::<u32>(), creation())
        .prop_map(|(node, id, serial, creation)| M::Pid {
            node,
            id,
            serial,
            creation,
        })
        .boxed()
}

fn reference() -> BoxedStrategy<M> {
    (any_atom(), creation(), vec(any::<u32>(), 1..=5))
        .prop_map(|(node, creation, ids)| M::Ref {
            node,
            creation,
            ids,
        })
        .boxed()
}

/// Terms whose atoms come from `atom`, with improper lists when `improper`.
fn term(atom: BoxedStrategy<String>, improper: bool) -> BoxedStrategy<M> {
    let leaf = prop_oneof![
        4 => int(),
        2 => finite_float().prop_map(M::Float),
        2 => atom.prop_map(M::Atom),
        2 => vec(any::<u8>(), 0..=40).prop_map(M::Binary),
        1 => pid(),
        1 => reference(),
        // Past the 8-bit arity of SMALL_TUPLE_EXT.
        1 => vec((0i64..=255).prop_map(M::Int), 250..=260).prop_map(M::Tuple),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        let tail = if improper {
            prop::option::weighted(0.3, inner.clone()).boxed()
        } else {
            Just(None).boxed()
        };
        prop_oneof![
            (vec(inner.clone(), 0..8), tail).prop_map(|(items, tail)| list(items, tail)),
            // Lists of small integers: STRING_EXT.
            vec((0i64..=255).prop_map(M::Int), 0..8).prop_map(|items| list(items, None)),
            vec(inner.clone(), 0..8).prop_map(M::Tuple),
            vec((inner.clone(), inner), 0..6).prop_map(map),
        ]
    })
    .boxed()
}

fn any_term() -> BoxedStrategy<M> {
    term(any_atom(), true)
}

fn writable_term() -> BoxedStrategy<M> {
    term(writable_atom(), false)
}

// ---------------------------------------------------------------------------------------------
// Writing by hand, per the spec

/// Which encoding to use where a term has several: always Erlang's own (choice 0) for seed 0,
/// which shrinking reaches first; otherwise pseudo-random (xorshift64, never 0 again).
struct Choices(u64);

impl Choices {
    fn pick(&mut self, n: usize) -> usize {
        if self.0 == 0 || n <= 1 {
            return 0;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `term` in the encodings `seed` picks, with the version byte.
fn encode(term: &M, seed: u64) -> Vec<u8> {
    let mut out = vec![tag::VERSION];
    put(&mut out, term, &mut Choices(seed));
    out
}

/// A pid or a reference in one of its own encodings (what `erlang.Pid` holds), with the
/// version byte.
fn identity(term: &M, seed: u64) -> Vec<u8> {
    let mut out = vec![tag::VERSION];
    put_bare(&mut out, term, &mut Choices(seed));
    out
}

fn put(out: &mut Vec<u8>, term: &M, c: &mut Choices) {
    // Any term T may also be written as LIST_EXT with no elements and T as its tail, which
    // erts decodes as T: `binary_to_term(<<131,108,0,0,0,0,97,5>>)` is 5 (OTP 25).
    if c.pick(16) == 15 {
        out.extend_from_slice(&[tag::LIST_EXT, 0, 0, 0, 0]);
    }
    put_bare(out, term, c);
}

/// `term` in one of the encodings of its own tag.
fn put_bare(out: &mut Vec<u8>, term: &M, c: &mut Choices) {
    match term {
        M::Int(i) => put_int(out, *i, c),
        M::Big(negative, magnitude) => put_big(out, *negative, magnitude, c),
        M::Float(f) => put_float(out, *f, c),
        M::Atom(name) => put_atom(out, name, c),
        M::Binary(bytes) => {
            if c.pick(4) == 3 {
                // A bitstring whose last byte is whole is a binary.
                out.push(tag::BIT_BINARY_EXT);
                out.extend_from_slice(&len32(bytes.len()));
                out.push(8);
            } else {
                out.push(tag::BINARY_EXT);
                out.extend_from_slice(&len32(bytes.len()));
            }
            out.extend_from_slice(bytes);
        }
        M::List(items, tail) => put_list(out, items, tail.as_deref(), c),
        M::Tuple(items) => {
            match u8::try_from(items.len()) {
                Ok(arity) if c.pick(4) != 3 => {
                    out.extend_from_slice(&[tag::SMALL_TUPLE_EXT, arity])
                }
                _ => {
                    out.push(tag::LARGE_TUPLE_EXT);
                    out.extend_from_slice(&len32(items.len()));
                }
            }
            for item in items {
                put(out, item, c);
            }
        }
        M::Map(pairs) => {
            // Erlang writes small maps in key order; any order reads as the same map.
            let mut pairs: Vec<&(M, M)> = pairs.iter().collect();
            pairs.sort_by(|a, b| order(&a.0, &b.0));
            let by = c.pick(pairs.len());
            pairs.rotate_left(by);
            out.push(tag::MAP_EXT);
            out.extend_from_slice(&len32(pairs.len()));
            for (k, v) in pairs {
                put(out, k, c);
                put(out, v, c);
            }
        }
        M::Pid {
            node,
            id,
            serial,
            creation,
        } => match u8::try_from(*creation) {
            Ok(small) if c.pick(3) == 2 => {
                out.push(tag::PID_EXT);
                put_atom(out, node, c);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&serial.to_be_bytes());
                out.push(small);
            }
            _ => {
                out.push(tag::NEW_PID_EXT);
                put_atom(out, node, c);
                for word in [id, serial, creation] {
                    out.extend_from_slice(&word.to_be_bytes());
                }
            }
        },
        M::Ref {
            node,
            creation,
            ids,
        } => {
            let len = (ids.len() as u16).to_be_bytes();
            match (u8::try_from(*creation), c.pick(3)) {
                (Ok(small), 1) => {
                    out.push(tag::NEW_REFERENCE_EXT);
                    out.extend_from_slice(&len);
                    put_atom(out, node, c);
                    out.push(small);
                    ids.iter()
                        .for_each(|id| out.extend_from_slice(&id.to_be_bytes()));
                }
                (Ok(small), 2) if ids.len() == 1 => {
                    out.push(tag::REFERENCE_EXT);
                    put_atom(out, node, c);
                    out.extend_from_slice(&ids[0].to_be_bytes());
                    out.push(small);
                }
                _ => {
                    out.push(tag::NEWER_REFERENCE_EXT);
                    out.extend_from_slice(&len);
                    put_atom(out, node, c);
                    out.extend_from_slice(&creation.to_be_bytes());
                    ids.iter()
                        .for_each(|id| out.extend_from_slice(&id.to_be_bytes()));
                }
            }
        }
    }
}

fn len32(len: usize) -> [u8; 4] {
    u32::try_from(len)
        .expect("test terms are small")
        .to_be_bytes()
}

fn put_int(out: &mut Vec<u8>, value: i64, c: &mut Choices) {
    // 0: what Erlang writes; 1: INTEGER_EXT where it fits; otherwise a bignum.
    let variant = c.pick(4);
    if variant == 0 && u8::try_from(value).is_ok() {
        out.extend_from_slice(&[tag::SMALL_INTEGER_EXT, value as u8]);
    } else if variant <= 1 && i32::try_from(value).is_ok() {
        out.push(tag::INTEGER_EXT);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        // A bignum that fits in 64 bits (even in 32, or 0 with a minus sign) is an integer.
        let magnitude = value.unsigned_abs().to_le_bytes();
        let len = magnitude.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let negative = value < 0 || (value == 0 && c.pick(2) == 1);
        put_big(out, negative, &magnitude[..len], c);
    }
}

fn put_big(out: &mut Vec<u8>, negative: bool, magnitude: &[u8], c: &mut Choices) {
    // High zero bytes, and any non-zero sign byte, read as the same integer.
    let mut digits = magnitude.to_vec();
    digits.resize(digits.len() + c.pick(4), 0);
    match u8::try_from(digits.len()) {
        Ok(len) if c.pick(4) != 3 => out.extend_from_slice(&[tag::SMALL_BIG_EXT, len]),
        _ => {
            out.push(tag::LARGE_BIG_EXT);
            out.extend_from_slice(&len32(digits.len()));
        }
    }
    out.push(if negative { 1 + c.pick(255) as u8 } else { 0 });
    out.extend_from_slice(&digits);
}

fn put_float(out: &mut Vec<u8>, value: f64, c: &mut Choices) {
    if c.pick(4) == 3 {
        // FLOAT_EXT: 31 bytes of `%.20e` text, as OTP before 17 wrote it.
        let text = format!("{value:.20e}");
        let (mantissa, exp) = text.split_once('e').expect("{:e} has an exponent");
        let exp: i32 = exp.parse().expect("an exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        let mut text = format!("{mantissa}e{sign}{:02}", exp.unsigned_abs()).into_bytes();
        text.resize(31, 0);
        out.push(tag::FLOAT_EXT);
        out.extend_from_slice(&text);
    } else {
        out.push(tag::NEW_FLOAT_EXT);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn put_atom(out: &mut Vec<u8>, name: &str, c: &mut Choices) {
    let (tags, text) = match latin1(name) {
        Some(latin1) if c.pick(3) == 2 => ((tag::SMALL_ATOM_EXT, tag::ATOM_EXT), latin1),
        _ => (
            (tag::SMALL_ATOM_UTF8_EXT, tag::ATOM_UTF8_EXT),
            name.as_bytes().to_vec(),
        ),
    };
    match u8::try_from(text.len()) {
        Ok(len) if c.pick(4) != 3 => out.extend_from_slice(&[tags.0, len]),
        _ => {
            out.push(tags.1);
            out.extend_from_slice(&(text.len() as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&text);
}

fn put_list(out: &mut Vec<u8>, items: &[M], tail: Option<&M>, c: &mut Choices) {
    if items.is_empty() {
        // `[]`, or a string with no characters.
        if c.pick(4) == 3 {
            out.extend_from_slice(&[tag::STRING_EXT, 0, 0]);
        } else {
            out.push(tag::NIL_EXT);
        }
        return;
    }
    let chars: Option<Vec<u8>> = match tail {
        None if items.len() <= usize::from(u16::MAX) => items
            .iter()
            .map(|item| match item {
                M::Int(i) => u8::try_from(*i).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    if let Some(chars) = chars {
        if c.pick(4) != 3 {
            out.push(tag::STRING_EXT);
            out.extend_from_slice(&(chars.len() as u16).to_be_bytes());
            out.extend_from_slice(&chars);
            return;
        }
    }
    // LIST_EXT with the first `k` elements; the rest of the list is its tail.
    let k = if c.pick(3) == 2 {
        1 + c.pick(items.len())
    } else {
        items.len()
    };
    out.push(tag::LIST_EXT);
    out.extend_from_slice(&len32(k));
    for item in &items[..k] {
        put(out, item, c);
    }
    match (k < items.len(), tail) {
        (true, _) => put_list(out, &items[k..], tail, c),
        (false, Some(tail)) => put(out, tail, c),
        (false, None) => put_list(out, &[], None, c),
    }
}

/// The order the [`Writer`] puts map keys in: Erlang's exact term order (integers before
/// floats), pids and references by their canonical encodings.
fn order(a: &M, b: &M) -> Ordering {
    fn rank(term: &M) -> u8 {
        match term {
            M::Int(_) | M::Big(..) => 0,
            M::Float(_) => 1,
            M::Atom(_) => 2,
            M::Ref { .. } => 3,
            M::Pid { .. } => 4,
            M::Tuple(_) => 5,
            M::Map(_) => 6,
            M::List(..) => 7,
            M::Binary(_) => 8,
        }
    }
    fn seq(a: &[M], b: &[M]) -> Ordering {
        a.iter()
            .zip(b)
            .map(|(x, y)| order(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
    fn sorted(pairs: &[(M, M)]) -> Vec<&(M, M)> {
        let mut pairs: Vec<&(M, M)> = pairs.iter().collect();
        pairs.sort_by(|p, q| order(&p.0, &q.0));
        pairs
    }
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (M::Int(x), M::Int(y)) => x.cmp(y),
        // A bignum is beyond every 64-bit integer.
        (M::Int(_), M::Big(negative, _)) => {
            if *negative {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (M::Big(negative, _), M::Int(_)) => {
            if *negative {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (M::Big(n, x), M::Big(o, y)) => {
            let magnitude = x
                .len()
                .cmp(&y.len())
                .then_with(|| x.iter().rev().cmp(y.iter().rev()));
            match (n, o) {
                (false, false) => magnitude,
                (true, true) => magnitude.reverse(),
                _ => o.cmp(n),
            }
        }
        (M::Float(x), M::Float(y)) => x.total_cmp(y),
        (M::Atom(x), M::Atom(y)) => x.cmp(y),
        (M::Binary(x), M::Binary(y)) => x.cmp(y),
        (M::Pid { .. }, M::Pid { .. }) | (M::Ref { .. }, M::Ref { .. }) => {
            encode(a, 0).cmp(&encode(b, 0))
        }
        (M::Tuple(x), M::Tuple(y)) => x.len().cmp(&y.len()).then_with(|| seq(x, y)),
        (M::List(x, s), M::List(y, t)) => {
            seq(x, y)
                .then(x.len().cmp(&y.len()))
                .then_with(|| match (s, t) {
                    (Some(s), Some(t)) => order(s, t),
                    _ => s.is_some().cmp(&t.is_some()),
                })
        }
        (M::Map(x), M::Map(y)) => {
            let (x, y) = (sorted(x), sorted(y));
            x.len()
                .cmp(&y.len())
                .then_with(|| {
                    x.iter()
                        .zip(&y)
                        .map(|(p, q)| order(&p.0, &q.0))
                        .find(|o| o.is_ne())
                        .unwrap_or(Ordering::Equal)
                })
                .then_with(|| {
                    x.iter()
                        .zip(&y)
                        .map(|(p, q)| order(&p.1, &q.1))
                        .find(|o| o.is_ne())
                        .unwrap_or(Ordering::Equal)
                })
        }
        _ => Ordering::Equal,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing with the Writer, reading with the Index

/// `term` written by a [`Writer`]; pids and references go in as the encodings `seed` picks.
fn write(term: &M, seed: u64) -> etf::Result<Vec<u8>> {
    fn build(w: &mut Writer, term: &M, seed: u64) -> etf::Result<usize> {
        Ok(match term {
            M::Int(i) => w.int(*i),
            M::Big(negative, magnitude) => w.bigint(*negative, magnitude),
            M::Float(f) => w.float(*f),
            M::Atom(name) => w.atom(static_atom(name)),
            M::Binary(bytes) => w.binary(bytes),
            M::List(items, None) => {
                let items = items
                    .iter()
                    .map(|item| build(w, item, seed))
                    .collect::<etf::Result<_>>()?;
                w.list(items)
            }
            M::List(_, Some(_)) => {
                return Err(Error::Invalid("the writer writes proper lists only"))
            }
            M::Tuple(items) => {
                let items = items
                    .iter()
                    .map(|item| build(w, item, seed))
                    .collect::<etf::Result<_>>()?;
                w.tuple(items)
            }
            M::Map(pairs) => {
                let pairs = pairs
                    .iter()
                    .map(|(k, v)| Ok((build(w, k, seed)?, build(w, v, seed)?)))
                    .collect::<etf::Result<_>>()?;
                w.map(pairs)?
            }
            M::Pid { .. } => w.pid(&identity(term, seed))?,
            M::Ref { .. } => w.reference(&identity(term, seed))?,
        })
    }
    let mut w = Writer::new();
    let root = build(&mut w, term, seed)?;
    w.finish(root)
}

/// The term at `slot`, as the model. Terms outside the model (ports, funs, bitstrings) fail
/// the test.
fn read(index: &Index<'_>, slot: Slot) -> Result<M, TestCaseError> {
    let fail = |err: Error| TestCaseError::fail(format!("{err}"));
    let all = |slots: Vec<Slot>| {
        slots
            .into_iter()
            .map(|s| read(index, s))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match index.term(slot).map_err(fail)? {
        Term::Int(i) => M::Int(i),
        Term::Big {
            negative,
            magnitude_le,
        } => integer(negative, magnitude_le),
        Term::Float(f) => M::Float(f),
        Term::Atom(name) => M::Atom(name.into_owned()),
        Term::Binary(bytes) | Term::BitBinary { bytes, bits: 8 } => M::Binary(bytes.to_vec()),
        Term::List { items, tail } => M::List(
            all(items)?,
            tail.map(|t| read(index, t)).transpose()?.map(Box::new),
        ),
        Term::Tuple(items) => M::Tuple(all(items)?),
        Term::Map(pairs) => {
            index.check_unique_keys(slot, &pairs, 100).map_err(fail)?;
            M::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| Ok((read(index, k)?, read(index, v)?)))
                    .collect::<Result<_, TestCaseError>>()?,
            )
        }
        Term::Pid(pid) => M::Pid {
            node: pid.node.into_owned(),
            id: pid.id,
            serial: pid.serial,
            creation: pid.creation,
        },
        Term::Ref(reference) => M::Ref {
            node: reference.node.into_owned(),
            creation: reference.creation,
            ids: reference.ids,
        },
        other => return Err(TestCaseError::fail(format!("not a model term: {other:?}"))),
    })
}

fn read_bytes(bytes: &[u8]) -> Result<M, TestCaseError> {
    let index = Index::new(bytes).map_err(|err| TestCaseError::fail(format!("{err}")))?;
    read(&index, index.root())
}

// ---------------------------------------------------------------------------------------------
// Every decoder, on any bytes

/// Fails unless `result` is a success or an error `allowed` accepts, whose offset (if any) is
/// inside the input.
fn check<T>(
    what: &str,
    bytes: &[u8],
    result: &etf::Result<T>,
    allowed: fn(&Error) -> bool,
) -> Result<(), TestCaseError> {
    if let Err(err) = result {
        prop_assert!(allowed(err), "{what}: unexpected error {err:?}");
        if let Error::Malformed { at, .. } = err {
            prop_assert!(*at <= bytes.len(), "{what}: {err:?} is past the input");
        }
    }
    Ok(())
}

fn malformed(err: &Error) -> bool {
    matches!(err, Error::Malformed { .. })
}

fn malformed_or_too_deep(err: &Error) -> bool {
    matches!(err, Error::Malformed { .. } | Error::TooDeep(_))
}

/// Every term of an index read, map keys compared, as the conversion rules do.
fn walk(index: &Index<'_>, slot: Slot, depth: usize) -> etf::Result<()> {
    if depth > 100 {
        return Err(Error::TooDeep(100));
    }
    let children = match index.term(slot)? {
        Term::List { mut items, tail } => {
            items.extend(tail);
            items
        }
        Term::Tuple(items) => items,
        Term::Map(pairs) => {
            index.check_unique_keys(slot, &pairs, 100)?;
            pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
        }
        Term::Export {
            module,
            function,
            arity,
        } => vec![module, function, arity],
        _ => vec![],
    };
    children
        .into_iter()
        .try_for_each(|child| walk(index, child, depth + 1))
}

/// Feeds `bytes` to every public decoder: none panics, each succeeds or fails with the codec's
/// error, and those that succeed agree with the [`Index`].
fn decode_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    let index = Index::new(bytes);
    check("Index::new", bytes, &index, malformed)?;
    let root = match &index {
        Ok(index) => {
            check(
                "walk",
                bytes,
                &walk(index, index.root(), 0),
                malformed_or_too_deep,
            )?;
            Some(index.term(index.root()))
        }
        Err(_) => None,
    };
    let root = root.and_then(Result::ok);
    check(
        "format",
        bytes,
        &etf::format(bytes, 100),
        malformed_or_too_deep,
    )?;

    let atom = decode_atom(bytes);
    check("decode_atom", bytes, &atom, malformed)?;
    if let Ok(name) = atom {
        prop_assert_eq!(root.clone(), Some(Term::Atom(name.into())));
    }
    let big = decode_bignum(bytes);
    check("decode_bignum", bytes, &big, malformed)?;
    if let Ok((negative, magnitude_le)) = big {
        prop_assert_eq!(
            root.clone(),
            Some(Term::Big {
                negative,
                magnitude_le
            })
        );
    }
    let identity = canonical_identity(bytes);
    check("canonical_identity", bytes, &identity, malformed)?;
    if let Ok(canonical) = &identity {
        let from_index = match &root {
            Some(Term::Pid(pid)) => Some(pid.to_etf()),
            Some(Term::Ref(reference)) => Some(reference.to_etf()),
            _ => None,
        };
        prop_assert_eq!(from_index.as_ref(), Some(canonical));
        prop_assert_eq!(canonical_identity(canonical), Ok(canonical.clone()));
    }
    let pid = describe_pid(bytes);
    check("describe_pid", bytes, &pid, malformed)?;
    if let Ok(text) = &pid {
        prop_assert!(is_pid(bytes));
        prop_assert!(matches!(&root, Some(Term::Pid(p)) if p.to_string() == *text));
    }
    let reference = describe_ref(bytes);
    check("describe_ref", bytes, &reference, malformed)?;
    if let Ok(text) = &reference {
        prop_assert!(is_ref(bytes) || bytes.get(1) == Some(&tag::REFERENCE_EXT));
        prop_assert!(matches!(&root, Some(Term::Ref(r)) if r.to_string() == *text));
    }
    let invalid = |err: &Error| matches!(err, Error::Malformed { .. } | Error::Invalid(_));
    check("Writer::pid", bytes, &Writer::new().pid(bytes), invalid)?;
    check(
        "Writer::reference",
        bytes,
        &Writer::new().reference(bytes),
        invalid,
    )?;

    // The cursor's field readers, from every position of short input, from 128 positions
    // spread over long input.
    let step = (bytes.len() / 128).max(1);
    for pos in (0..=bytes.len()).step_by(step) {
        let at = || Cursor::new(bytes, pos);
        check("Cursor::u8", bytes, &at().u8(), malformed)?;
        check("Cursor::u16", bytes, &at().u16(), malformed)?;
        check("Cursor::len32", bytes, &at().len32(), malformed)?;
        check("Cursor::take", bytes, &at().take(3), malformed)?;
        check("Cursor::atom", bytes, &at().atom(), malformed)?;
        check("Cursor::finish", bytes, &at().finish(), malformed)?;
        for tag in [
            tag::NEW_FLOAT_EXT,
            tag::FLOAT_EXT,
            tag::SMALL_BIG_EXT,
            tag::LARGE_BIG_EXT,
            tag::PID_EXT,
            tag::NEW_PID_EXT,
            tag::REFERENCE_EXT,
            tag::NEW_REFERENCE_EXT,
            tag::NEWER_REFERENCE_EXT,
            tag::ATOM_EXT,
            tag::SMALL_ATOM_UTF8_EXT,
            tag::NIL_EXT,
        ] {
            check("Cursor::float", bytes, &at().float(tag), malformed)?;
            check("Cursor::bignum", bytes, &at().bignum(tag), malformed)?;
            check("Cursor::pid", bytes, &at().pid(tag), malformed)?;
            check("Cursor::reference", bytes, &at().reference(tag), malformed)?;
            check(
                "Cursor::atom_after",
                bytes,
                &at().atom_after(tag),
                malformed,
            )?;
        }
    }
    Ok(())
}

/// Every tag, and the small numbers lengths and counts are made of.
const TAGS: [u8; 40] = [
    70, 77, 80, 82, 88, 89, 90, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110,
    111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 131, 0, 1, 2, 3, 8, 255, 254,
];

fn garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(prop_oneof![select(TAGS.as_slice()), any::<u8>()], 0..64).prop_map(|tail| {
            let mut bytes = vec![tag::VERSION];
            bytes.extend(tail);
            bytes
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(At),
    FlipBit(At, u8),
    Insert(At, u8),
    Delete(At),
    Set(At, u8),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        any::<At>().prop_map(Mutation::Truncate),
        (any::<At>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (
            any::<At>(),
            prop_oneof![select(TAGS.as_slice()), any::<u8>()]
        )
            .prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<At>().prop_map(Mutation::Delete),
        (
            any::<At>(),
            prop_oneof![select(TAGS.as_slice()), any::<u8>()]
        )
            .prop_map(|(at, byte)| Mutation::Set(at, byte)),
    ]
    .boxed()
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Mutation::FlipBit(at, bit) => {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
        Mutation::Delete(at) => {
            bytes.remove(at.index(bytes.len()));
        }
        Mutation::Set(at, byte) => {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bignums

/// The little-endian magnitude of printed digits, decimal or `16#` hex (printing's inverse).
fn parse_magnitude(digits: &str) -> Vec<u8> {
    let (radix, digits) = match digits.strip_prefix("16#") {
        Some(hex) => (16, hex),
        None => (10, digits),
    };
    let mut magnitude: Vec<u8> = Vec::new();
    for c in digits.chars() {
        let mut carry = c.to_digit(radix).expect("a digit");
        for byte in magnitude.iter_mut() {
            let v = u32::from(*byte) * radix + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.push(carry as u8);
            carry >>= 8;
        }
    }
    magnitude
}

fn magnitude_u128(magnitude_le: &[u8]) -> u128 {
    let mut word = [0u8; 16];
    word[..magnitude_le.len()].copy_from_slice(magnitude_le);
    u128::from_le_bytes(word)
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(common::config())]

    /// Any encoding erts reads, of any term, reads back as that term and prints.
    #[test]
    fn any_encoding_reads_back_as_its_term(term in any_term(), seed in any::<u64>()) {
        let bytes = encode(&term, seed);
        prop_assert_eq!(read_bytes(&bytes)?, term);
        prop_assert!(etf::format(&bytes, 100).is_ok());
    }

    /// The writer writes what Erlang writes, reads back as the term written, and is canonical:
    /// writing what was read, from any of its encodings, gives the same bytes.
    #[test]
    fn the_writer_is_canonical(term in writable_term(), seed in any::<u64>()) {
        let written = write(&term, seed).map_err(|err| TestCaseError::fail(format!("{err}")))?;
        prop_assert_eq!(&written, &encode(&term, 0));
        let back = read_bytes(&written)?;
        prop_assert_eq!(&back, &term);
        prop_assert_eq!(write(&back, 0), Ok(written.clone()));
        let other = read_bytes(&encode(&term, seed))?;
        prop_assert_eq!(write(&other, seed), Ok(written));
    }

    /// Garbage never panics a decoder.
    #[test]
    fn garbage_never_panics(bytes in garbage()) {
        decode_everything(&bytes)?;
    }

    /// Valid encodings cut, flipped, extended or shortened never panic a decoder.
    #[test]
    fn mutated_encodings_never_panic(
        term in any_term(),
        seed in any::<u64>(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut bytes = encode(&term, seed);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        decode_everything(&bytes)?;
    }

    /// A strict prefix of an encoding is not a term, nor is an encoding with a byte after it.
    #[test]
    fn prefixes_and_trailing_bytes_are_errors(
        term in any_term(),
        seed in any::<u64>(),
        cuts in vec(any::<At>(), 1..8),
        extra in any::<u8>(),
    ) {
        let bytes = encode(&term, seed);
        for cut in cuts {
            let prefix = &bytes[..cut.index(bytes.len())];
            prop_assert!(
                matches!(Index::new(prefix), Err(Error::Malformed { .. })),
                "{:?}",
                prefix
            );
        }
        let mut longer = bytes;
        longer.push(extra);
        let trailing = Index::new(&longer).map(|_| ());
        prop_assert!(
            matches!(
                trailing,
                Err(Error::Malformed { what: "trailing bytes after the term", .. })
            ),
            "{:?}",
            trailing
        );
    }

    /// Any sign and magnitude round trip through the bignum codec, as stored; small_int and
    /// trim_magnitude agree with 128-bit arithmetic.
    #[test]
    fn bignums_round_trip(negative in any::<bool>(), magnitude in vec(any::<u8>(), 0..=600)) {
        let bytes = encode_bignum(negative, &magnitude)
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        let small = magnitude.len() <= 255;
        prop_assert_eq!(bytes[1], if small { tag::SMALL_BIG_EXT } else { tag::LARGE_BIG_EXT });
        prop_assert_eq!(decode_bignum(&bytes), Ok((negative, magnitude.as_slice())));
        let trimmed = trim_magnitude(&magnitude);
        prop_assert!(trimmed.last() != Some(&0) && magnitude.starts_with(trimmed));
        prop_assert!(magnitude[trimmed.len()..].iter().all(|&b| b == 0));
        let expected = (trimmed.len() <= 16)
            .then(|| i128::try_from(magnitude_u128(trimmed)).ok())
            .flatten()
            .and_then(|v| i64::try_from(if negative { -v } else { v }).ok());
        prop_assert_eq!(small_int(negative, &magnitude), expected);
    }

    /// Integers up to 128 bits print as Rust prints them, whatever their encoding.
    #[test]
    fn integers_print_as_rust_does(
        negative in any::<bool>(),
        magnitude in vec(any::<u8>(), 0..=16),
        padding in 0usize..3,
        small in any::<i64>(),
    ) {
        let value = magnitude_u128(&magnitude);
        let text = if negative && value != 0 { format!("-{value}") } else { value.to_string() };
        let mut padded = magnitude.clone();
        padded.resize(magnitude.len() + padding, 0);
        let bytes = encode_bignum(negative, &padded)
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        prop_assert_eq!(etf::format(&bytes, 0), Ok(text.clone()));
        let mut w = Writer::new();
        let term = w.bigint(negative, &magnitude);
        prop_assert_eq!(etf::format(&w.finish(term).unwrap_or_default(), 0), Ok(text));
        let term = w.int(small);
        prop_assert_eq!(etf::format(&w.finish(term).unwrap_or_default(), 0), Ok(small.to_string()));
    }

    /// Longer bignums print digits (hex past 512 bytes) that read back as their magnitude.
    #[test]
    fn long_bignums_print_their_magnitude(
        negative in any::<bool>(),
        magnitude in vec(any::<u8>(), 17..=600),
    ) {
        let bytes = encode_bignum(negative, &magnitude)
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        let text = etf::format(&bytes, 0).map_err(|err| TestCaseError::fail(format!("{err}")))?;
        let trimmed = trim_magnitude(&magnitude);
        let digits = match text.strip_prefix('-') {
            Some(digits) => {
                prop_assert!(negative && !trimmed.is_empty());
                digits
            }
            None => {
                prop_assert!(!negative || trimmed.is_empty());
                &text
            }
        };
        prop_assert_eq!(digits.starts_with("16#"), trimmed.len() > 512);
        prop_assert!(!digits.trim_start_matches("16#").starts_with('0') || trimmed.is_empty());
        prop_assert_eq!(parse_magnitude(digits), trimmed);
    }
}
