//! Properties of the conversion rules on external term format bytes (`ext::encode` /
//! `ext::decode`, what `erlang.term_to_binary` / `binary_to_term` run), over arbitrary Python
//! values:
//!
//! - Round trips: None, bools, integers of any size, finite floats (signed zeros included),
//!   `str` (any code point but surrogates), `bytes`, lists, tuples and dicts with `str` or
//!   `int` keys, encoded then decoded, come back in the documented normal form
//!   (`docs/type-conversion.md`; the same as `expected()` in `tests/python/test_ext.py`): bytes
//!   that are valid UTF-8 come back as `str`, everything else as it went. Encoding what came
//!   back gives the same bytes.
//! - Bounds: a value nested deeper than `max_depth` is a `TooDeep` error both ways, never a
//!   panic; one at the bound converts.
//! - Bytes: garbage and mutated encodings decode or fail, never panic, and whatever decodes is
//!   a fixed point: encoding and decoding it again gives the same value.
//!
//! - The one-pass decoder of call arguments (`ext::etf_to_py`, `etf_list_to_tuple`) gives
//!   what the rules give on the same bytes (`ext::decode`): the same values, and for terms
//!   with faults (funs, ports, bitstrings, improper lists, colliding map keys, bad values,
//!   malformed arrays, too deep) the same error, however the faults combine.
//!
//! - The one-pass writer of replies (`ext::StreamBuilder`) writes the term the rules' writer
//!   (`ext::encode`) writes: its bytes decode to the same value, which encodes to the writer's
//!   bytes, and where the writer fails (colliding dict keys) it fails the same way; in nested
//!   values and in dicts of up to 60 keys (hash maps past 32).
//!
//! Cases per property: [`common::CASES`] by default, `PROPTEST_CASES` when set (`make fuzz`).

mod common;

use erlang_python_core::convert::{self, Options, TermReader, View};
use erlang_python_core::ext::{self, NoHandles};
use erlang_python_core::types::{Pid, Ref};
use erlang_python_core::Error;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index as At};
use proptest::test_runner::TestCaseError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A Python value, or what a decoded object is. [`PartialEq`] compares floats by their bits
/// (so `-0.0` is not `0.0`) and dicts by their pairs in any order.
#[derive(Debug, Clone)]
enum V {
    None,
    Bool(bool),
    /// Decimal digits, as `str(int)` writes them.
    Int(String),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<V>),
    Tuple(Vec<V>),
    /// Distinct keys.
    Dict(Vec<(V, V)>),
    /// What an `erlang.Pid` holds: its canonical external term format.
    Pid(Vec<u8>),
    /// What an `erlang.Ref` holds.
    Ref(Vec<u8>),
}

impl PartialEq for V {
    fn eq(&self, other: &V) -> bool {
        match (self, other) {
            (V::None, V::None) => true,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Int(a), V::Int(b)) | (V::Str(a), V::Str(b)) => a == b,
            (V::Float(a), V::Float(b)) => a.to_bits() == b.to_bits(),
            (V::Bytes(a), V::Bytes(b)) | (V::Pid(a), V::Pid(b)) | (V::Ref(a), V::Ref(b)) => a == b,
            (V::List(a), V::List(b)) | (V::Tuple(a), V::Tuple(b)) => a == b,
            (V::Dict(a), V::Dict(b)) => a.len() == b.len() && a.iter().all(|pair| b.contains(pair)),
            _ => false,
        }
    }
}

/// What comes back from Erlang: bytes that are UTF-8 arrive as `str` (`expected()` of
/// `tests/python/test_ext.py`).
fn expected(value: &V) -> V {
    match value {
        V::Bytes(bytes) => match String::from_utf8(bytes.clone()) {
            Ok(text) => V::Str(text),
            Err(_) => value.clone(),
        },
        V::List(items) => V::List(items.iter().map(expected).collect()),
        V::Tuple(items) => V::Tuple(items.iter().map(expected).collect()),
        V::Dict(pairs) => V::Dict(
            pairs
                .iter()
                .map(|(k, v)| (expected(k), expected(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn text() -> BoxedStrategy<String> {
    // Rust's `char` is a Unicode scalar value: any code point but the surrogates.
    prop_oneof![
        "[a-z]{0,6}",
        vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
    .boxed()
}

fn int() -> BoxedStrategy<String> {
    prop_oneof![
        (0i64..=255).prop_map(|i| i.to_string()),
        any::<i32>().prop_map(|i| i.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        // Around 2^63 and 2^64, where integers stop fitting in 64 bits.
        (i128::from(i64::MIN) * 2..=i128::from(u64::MAX) * 2).prop_map(|i| i.to_string()),
        // Up to about 2^2300: past the 255 bytes of SMALL_BIG_EXT.
        "-?[1-9][0-9]{0,700}",
    ]
    .boxed()
}

fn finite_float() -> BoxedStrategy<f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    (POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO).boxed()
}

fn key() -> BoxedStrategy<V> {
    prop_oneof![text().prop_map(V::Str), int().prop_map(V::Int)].boxed()
}

/// A dict keeping the first pair of each key (keys are `str` or `int`, equal only to their
/// own kind).
fn dict(pairs: Vec<(V, V)>) -> V {
    let mut out: Vec<(V, V)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, v));
        }
    }
    V::Dict(out)
}

fn value() -> BoxedStrategy<V> {
    let leaf = prop_oneof![
        1 => Just(V::None),
        1 => any::<bool>().prop_map(V::Bool),
        3 => int().prop_map(V::Int),
        2 => finite_float().prop_map(V::Float),
        2 => text().prop_map(V::Str),
        1 => vec(any::<u8>(), 0..16).prop_map(V::Bytes),
        // Bytes that are valid UTF-8: these come back as str.
        1 => text().prop_map(|t| V::Bytes(t.into_bytes())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(V::List),
            vec(inner.clone(), 0..6).prop_map(V::Tuple),
            vec((key(), inner), 0..6).prop_map(dict),
        ]
    })
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Python

fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

fn fail(err: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// The Python object for `value`.
fn build<'py>(py: Python<'py>, value: &V) -> PyResult<Bound<'py, PyAny>> {
    let all = |items: &[V]| {
        items
            .iter()
            .map(|v| build(py, v))
            .collect::<PyResult<Vec<_>>>()
    };
    Ok(match value {
        V::None => py.None().into_bound(py),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::Int(digits) => py.get_type::<PyInt>().call1((digits.as_str(),))?,
        V::Float(f) => PyFloat::new(py, *f).into_any(),
        V::Str(text) => PyString::new(py, text).into_any(),
        V::Bytes(bytes) => PyBytes::new(py, bytes).into_any(),
        V::List(items) => PyList::new(py, all(items)?)?.into_any(),
        V::Tuple(items) => PyTuple::new(py, all(items)?)?.into_any(),
        V::Dict(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(build(py, k)?, build(py, v)?)?;
            }
            dict.into_any()
        }
        V::Pid(etf) => Bound::new(py, Pid::from_etf(etf))?.into_any(),
        V::Ref(etf) => Bound::new(py, Ref::from_etf(etf))?.into_any(),
    })
}

/// What a decoded object is; an object of any other type fails the test.
fn inspect(obj: &Bound<'_, PyAny>) -> Result<V, TestCaseError> {
    let all =
        |items: Vec<Bound<'_, PyAny>>| items.iter().map(inspect).collect::<Result<Vec<_>, _>>();
    Ok(if obj.is_none() {
        V::None
    } else if let Ok(b) = obj.cast_exact::<PyBool>() {
        V::Bool(b.is_true())
    } else if obj.is_exact_instance_of::<PyInt>() {
        V::Int(obj.str().map_err(fail)?.to_string())
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        V::Float(f.value())
    } else if let Ok(s) = obj.cast_exact::<PyString>() {
        V::Str(s.to_str().map_err(fail)?.to_owned())
    } else if let Ok(b) = obj.cast_exact::<PyBytes>() {
        V::Bytes(b.as_bytes().to_vec())
    } else if let Ok(l) = obj.cast_exact::<PyList>() {
        V::List(all(l.iter().collect())?)
    } else if let Ok(t) = obj.cast_exact::<PyTuple>() {
        V::Tuple(all(t.iter().collect())?)
    } else if let Ok(d) = obj.cast_exact::<PyDict>() {
        V::Dict(
            d.iter()
                .map(|(k, v)| Ok((inspect(&k)?, inspect(&v)?)))
                .collect::<Result<_, TestCaseError>>()?,
        )
    } else if let Ok(p) = obj.cast::<Pid>() {
        V::Pid(p.get().etf().to_vec())
    } else if let Ok(r) = obj.cast::<Ref>() {
        V::Ref(r.get().etf().to_vec())
    } else {
        return Err(fail(format!("decoded to an unexpected object: {obj}")));
    })
}

fn encode(py: Python<'_>, obj: &Bound<'_, PyAny>, opts: &Options) -> Result<Vec<u8>, Error> {
    ext::encode(py, obj, &NoHandles, opts)
}

fn stream(py: Python<'_>, obj: &Bound<'_, PyAny>, opts: &Options) -> Result<Vec<u8>, Error> {
    let mut builder = ext::StreamBuilder::new(py, &NoHandles);
    let root = convert::from_py(&mut builder, obj, opts)?;
    builder.finish(root)
}

/// The stream's bytes for `value` are the writer's term (or the writer's error).
fn stream_agrees(value: &V) -> Result<(), TestCaseError> {
    let opts = Options::default();
    with_py(|py| {
        let obj = build(py, value).map_err(fail)?;
        match (encode(py, &obj, &opts), stream(py, &obj, &opts)) {
            (Ok(written), Ok(streamed)) => {
                let back = decode(py, &streamed, &opts).map_err(fail)?;
                let expected = decode(py, &written, &opts).map_err(fail)?;
                prop_assert_eq!(inspect(&back)?, inspect(&expected)?);
                prop_assert_eq!(encode(py, &back, &opts).map_err(fail)?, written);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => {
                return Err(fail(format!("writer: {a:?}, stream: {b:?}")));
            }
        }
        Ok(())
    })
}

fn decode<'py>(py: Python<'py>, bytes: &[u8], opts: &Options) -> Result<Bound<'py, PyAny>, Error> {
    ext::decode(py, bytes, &NoHandles, opts)
}

/// `leaf` inside `kinds.len()` containers: a list, a tuple, a dict value, or a list among
/// siblings, outermost first.
fn nested(kinds: &[u8], leaf: V) -> V {
    kinds.iter().rev().fold(leaf, |inner, kind| match kind % 4 {
        0 => V::List(vec![inner]),
        1 => V::Tuple(vec![inner]),
        2 => V::Dict(vec![(V::Str("k".to_owned()), inner)]),
        _ => V::List(vec![V::Int("1".to_owned()), inner, V::None]),
    })
}

/// The tags conversion reads, and the small numbers lengths and counts are made of: garbage
/// made of these reaches deeper than noise.
const TAGS: [u8; 27] = [
    70, 77, 88, 90, 97, 98, 100, 104, 105, 106, 107, 108, 109, 110, 111, 114, 115, 116, 118, 119,
    0, 1, 2, 3, 4, 8, 255,
];

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(At),
    FlipBit(At, u8),
    Insert(At, u8),
    Delete(At),
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
    }
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        any::<At>().prop_map(Mutation::Truncate),
        (any::<At>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<At>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<At>().prop_map(Mutation::Delete),
    ]
    .boxed()
}

/// Decodes `bytes`, which must not panic; whatever decodes must encode, and decode again to
/// the same value.
fn decode_is_a_fixed_point(bytes: &[u8]) -> Result<(), TestCaseError> {
    let opts = Options { max_depth: 64 };
    with_py(|py| {
        let Ok(obj) = decode(py, bytes, &opts) else {
            return Ok(());
        };
        let first = inspect(&obj)?;
        let again = encode(py, &obj, &opts).map_err(fail)?;
        let second = inspect(&decode(py, &again, &opts).map_err(fail)?)?;
        prop_assert_eq!(second, first);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(common::config())]

    /// Python values come back from ETF in the documented normal form, and encoding what came
    /// back gives the same bytes.
    #[test]
    fn values_round_trip_in_normal_form(value in value()) {
        let opts = Options::default();
        with_py(|py| {
            let obj = build(py, &value).map_err(fail)?;
            let bytes = encode(py, &obj, &opts).map_err(fail)?;
            let back = decode(py, &bytes, &opts).map_err(fail)?;
            prop_assert_eq!(inspect(&back)?, expected(&value));
            prop_assert_eq!(encode(py, &back, &opts).map_err(fail)?, bytes);
            Ok(())
        })?;
    }

    /// The one-pass reply writer writes what the rules' writer writes.
    #[test]
    fn stream_writes_the_writers_term(value in value()) {
        stream_agrees(&value)?;
    }

    /// The same for dicts of up to 60 keys, some of which collide (`str` and `bytes` of the
    /// same text, both binaries in Erlang).
    #[test]
    fn stream_writes_big_and_colliding_dicts(
        pairs in vec((text(), any::<bool>(), value()), 0..60),
    ) {
        let pairs = pairs
            .into_iter()
            .map(|(k, raw, v)| (if raw { V::Bytes(k.into_bytes()) } else { V::Str(k) }, v))
            .collect();
        stream_agrees(&V::List(vec![dict(pairs), V::Tuple(vec![])]))?;
    }

    /// Nesting deeper than `max_depth` is a TooDeep error both ways, never a panic; nesting
    /// up to the bound converts.
    #[test]
    fn nesting_beyond_max_depth_is_an_error(
        max_depth in 0usize..=48,
        kinds in vec(any::<u8>(), 0..=96),
        leaf in prop_oneof![Just(V::None), int().prop_map(V::Int), text().prop_map(V::Str)],
    ) {
        let depth = kinds.len();
        let value = nested(&kinds, leaf);
        let bounded = Options { max_depth };
        let deep = Options { max_depth: 96 };
        with_py(|py| {
            let obj = build(py, &value).map_err(fail)?;
            let encoded = encode(py, &obj, &bounded);
            let bytes = encode(py, &obj, &deep).map_err(fail)?;
            let decoded = decode(py, &bytes, &bounded);
            if depth <= max_depth {
                prop_assert_eq!(encoded.map_err(fail)?, bytes);
                prop_assert_eq!(inspect(&decoded.map_err(fail)?)?, value);
            } else {
                prop_assert!(matches!(encoded, Err(Error::TooDeep(d)) if d == max_depth));
                prop_assert!(matches!(decoded, Err(Error::TooDeep(d)) if d == max_depth));
            }
            Ok(())
        })?;
    }

    /// Garbage decodes or fails, never panics; what decodes is a fixed point.
    #[test]
    fn garbage_decodes_or_fails(tail in vec(prop_oneof![select(TAGS.as_slice()), any::<u8>()], 0..48)) {
        let mut bytes = vec![131];
        bytes.extend(tail);
        decode_is_a_fixed_point(&bytes)?;
    }

    /// Encodings of Python values, cut, flipped, extended or shortened, decode or fail, never
    /// panic; what decodes is a fixed point.
    #[test]
    fn mutated_encodings_decode_or_fail(value in value(), mutations in vec(mutation(), 1..3)) {
        let mut bytes = with_py(|py| {
            let obj = build(py, &value).map_err(fail)?;
            encode(py, &obj, &Options::default()).map_err(fail)
        })?;
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        decode_is_a_fixed_point(&bytes)?;
    }

    /// The one-pass decoder agrees with the rules on the encodings of Python values, as a
    /// value and as a list of call arguments.
    #[test]
    fn fast_decoder_agrees_with_the_rules(values in vec(value(), 0..4)) {
        let opts = Options::default();
        with_py(|py| {
            for value in &values {
                let obj = build(py, value).map_err(fail)?;
                let bytes = encode(py, &obj, &opts).map_err(fail)?;
                let rules = inspect(&decode(py, &bytes, &opts).map_err(fail)?)?;
                let fast = ext::etf_to_py(py, &bytes, &no_handles, &opts).map_err(fail)?;
                prop_assert_eq!(inspect(&fast)?, rules);
            }
            let list = build(py, &V::List(values.clone())).map_err(fail)?;
            let bytes = encode(py, &list, &opts).map_err(fail)?;
            let V::List(rules) = inspect(&decode(py, &bytes, &opts).map_err(fail)?)? else {
                return Err(fail("not a list"));
            };
            let args = ext::etf_list_to_tuple(py, &bytes, &no_handles, &opts).map_err(fail)?;
            prop_assert_eq!(inspect(args.as_any())?, V::Tuple(rules));
            Ok(())
        })?;
    }

    /// Terms with faults fail with the error the rules give, whichever faults they hold and
    /// wherever they are: a list of values and faulty terms, proper or not, at a depth bound.
    #[test]
    fn fast_decoder_fails_as_the_rules_do(
        items in vec(prop_oneof![
            2 => value().prop_map(Item::Value),
            1 => (0usize..FAULTS.len()).prop_map(Item::Fault),
        ], 0..6),
        improper in any::<bool>(),
        max_depth in prop_oneof![Just(1000usize), 0usize..6],
    ) {
        let opts = Options { max_depth };
        // A LIST_EXT of no elements with a tail is its tail: binary_to_term/1 reads it so, but
        // term_to_binary/1 never writes it.
        let improper = improper && !items.is_empty();
        with_py(|py| {
            let mut bytes = vec![131, 108];
            bytes.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in &items {
                match item {
                    Item::Value(value) => {
                        let obj = build(py, value).map_err(fail)?;
                        let deep = Options { max_depth: 1000 };
                        bytes.extend_from_slice(&encode(py, &obj, &deep).map_err(fail)?[1..]);
                    }
                    Item::Fault(i) => bytes.extend_from_slice(FAULTS[*i]),
                }
            }
            bytes.extend_from_slice(if improper { &[97, 7] } else { &[106] });
            same_outcome(
                decode(py, &bytes, &opts),
                ext::etf_to_py(py, &bytes, &no_handles, &opts),
            )?;
            // As call arguments: the list is not a level, each element is a top-level value.
            let args = ext::etf_list_to_tuple(py, &bytes, &no_handles, &opts);
            match (rules_arguments(py, &bytes, &opts), args) {
                (Ok(rules), Ok(args)) => prop_assert_eq!(inspect(args.as_any())?, rules),
                (Err(rules), Err(args)) => prop_assert_eq!(args.to_string(), rules),
                (rules, args) => {
                    return Err(fail(format!(
                        "rules {rules:?}, one-pass decoder {:?}",
                        args.map(|o| o.to_string())
                    )))
                }
            }
            Ok(())
        })?;
    }

    /// Eval locals (a map of names) decode as the rules read them from terms
    /// (`convert::kwargs_to_py`): the same names and values, and the same error for the first
    /// faulty name or value, whatever the names are (atoms, binaries, lists of character codes,
    /// and everything that is not a name).
    #[test]
    fn fast_decoder_reads_locals_as_the_rules_do(
        entries in vec((0usize..NAMES.len(), prop_oneof![
            3 => value().prop_map(Item::Value),
            1 => (0usize..FAULTS.len()).prop_map(Item::Fault),
        ]), 0..6),
    ) {
        let opts = Options::default();
        // An Erlang map holds each key once.
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<_> = entries.into_iter().filter(|(name, _)| seen.insert(*name)).collect();
        with_py(|py| {
            let mut bytes = vec![131, 116];
            bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for (name, item) in &entries {
                bytes.extend_from_slice(NAMES[*name]);
                match item {
                    Item::Value(value) => {
                        let obj = build(py, value).map_err(fail)?;
                        bytes.extend_from_slice(&encode(py, &obj, &opts).map_err(fail)?[1..]);
                    }
                    Item::Fault(i) => bytes.extend_from_slice(FAULTS[*i]),
                }
            }
            let reader = ext::ExtReader::new(&bytes, &NoHandles, opts.max_depth).map_err(fail)?;
            same_outcome(
                convert::kwargs_to_py(py, &reader, reader.root(), &opts).map(Bound::into_any),
                ext::etf_kwargs_to_py(py, &bytes, &no_handles, &opts).map(Bound::into_any),
            )
        })?;
    }

    /// Maps that share short keys (the one-pass decoder's key cache: more keys than slots,
    /// keys that are not UTF-8, keys past the cached length) and lists of integers of every
    /// encoding (its integer shortcut in lists) give what the rules give.
    #[test]
    fn fast_decoder_agrees_on_shared_keys_and_int_lists(
        maps in vec(vec((0usize..shared_keys().len(), int()), 0..8), 0..12),
        ints in vec(int(), 0..48),
    ) {
        let keys = shared_keys();
        let maps = maps
            .into_iter()
            .map(|pairs| dict(pairs.into_iter().map(|(k, v)| (keys[k].clone(), V::Int(v))).collect()))
            .collect();
        let ints = ints.into_iter().map(V::Int).collect();
        let value = V::List(vec![V::List(maps), V::List(ints)]);
        let opts = Options::default();
        with_py(|py| {
            let obj = build(py, &value).map_err(fail)?;
            let bytes = encode(py, &obj, &opts).map_err(fail)?;
            let rules = decode(py, &bytes, &opts).map_err(fail)?;
            let fast = ext::etf_to_py(py, &bytes, &no_handles, &opts).map_err(fail)?;
            prop_assert_eq!(inspect(&fast)?, inspect(&rules)?);
            let args = ext::etf_list_to_tuple(py, &bytes, &no_handles, &opts).map_err(fail)?;
            let V::List(items) = inspect(&rules)? else {
                return Err(fail("not a list"));
            };
            prop_assert_eq!(inspect(args.as_any())?, V::Tuple(items));
            Ok(())
        })?;
    }

    /// Garbage and mutated encodings make the one-pass decoder fail or agree with the rules,
    /// never panic.
    #[test]
    fn fast_decoder_survives_garbage(value in value(), mutations in vec(mutation(), 1..3)) {
        let opts = Options { max_depth: 64 };
        with_py(|py| {
            let obj = build(py, &value).map_err(fail)?;
            let mut bytes = encode(py, &obj, &Options::default()).map_err(fail)?;
            for m in &mutations {
                mutate(&mut bytes, m);
            }
            let fast = ext::etf_to_py(py, &bytes, &no_handles, &opts);
            let _ = ext::etf_list_to_tuple(py, &bytes, &no_handles, &opts);
            if let (Ok(fast), Ok(rules)) = (fast, decode(py, &bytes, &opts)) {
                prop_assert_eq!(inspect(&fast)?, inspect(&rules)?);
            }
            Ok(())
        })?;
    }
}

/// Map keys for [`fast_decoder_agrees_on_shared_keys_and_int_lists`]: 100 short binaries
/// (more than the decoder's 64 cache slots, so some share a slot), the same with a byte that
/// is not UTF-8, a truncated UTF-8 sequence, a two-byte character, the empty binary and one
/// longer than the cache keeps.
fn shared_keys() -> Vec<V> {
    let mut keys: Vec<V> = (0..100)
        .map(|i| V::Bytes(format!("k{i}").into_bytes()))
        .collect();
    keys.extend((0..100).map(|i| V::Bytes([format!("k{i}").as_bytes(), &[0xff]].concat())));
    keys.push(V::Bytes(vec![b'n', 0xc3]));
    keys.push(V::Bytes("é".as_bytes().to_vec()));
    keys.push(V::Bytes(Vec::new()));
    keys.push(V::Bytes(vec![b'x'; 40]));
    keys
}

/// An element of a generated list: a value, or one of [`FAULTS`].
#[derive(Debug, Clone)]
enum Item {
    Value(V),
    Fault(usize),
}

/// Encoded terms (no version byte) that do not convert, or convert only in part: a fun, a
/// port, a bitstring, an improper list, keys that collide in Python (alone, and before a bad
/// value), a bad value, a malformed array, a pid and a reference (which do convert), a big
/// integer, and a charlist.
const FAULTS: [&[u8]; 13] = [
    // fun erlang:self/0
    &[
        113, 119, 6, b'e', b'r', b'l', b'a', b'n', b'g', 119, 4, b's', b'e', b'l', b'f', 97, 0,
    ],
    // a port of node 'n@h'
    &[89, 119, 3, b'n', b'@', b'h', 0, 0, 0, 1, 0, 0, 0, 0],
    // <<1:3>>
    &[77, 0, 0, 0, 1, 3, 0x20],
    // [1 | 2]
    &[108, 0, 0, 0, 1, 97, 1, 97, 2],
    // #{a => 1, <<"a">> => 2}
    &[
        116, 0, 0, 0, 2, 119, 1, b'a', 97, 1, 109, 0, 0, 0, 1, b'a', 97, 2,
    ],
    // #{a => 1, <<"a">> => fun erlang:self/0}
    &[
        116, 0, 0, 0, 2, 119, 1, b'a', 97, 1, 109, 0, 0, 0, 1, b'a', 113, 119, 6, b'e', b'r', b'l',
        b'a', b'n', b'g', 119, 4, b's', b'e', b'l', b'f', 97, 0,
    ],
    // #{1 => [1 | 2]}
    &[116, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 1, 97, 2],
    // {py_array, nope, [1], <<>>}
    &[
        104, 4, 119, 8, b'p', b'y', b'_', b'a', b'r', b'r', b'a', b'y', 119, 4, b'n', b'o', b'p',
        b'e', 107, 0, 1, 1, 109, 0, 0, 0, 0,
    ],
    // a pid of node 'n@h'
    &[
        88, 119, 3, b'n', b'@', b'h', 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1,
    ],
    // a reference of node 'n@h'
    &[
        90, 0, 2, 119, 3, b'n', b'@', b'h', 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 9,
    ],
    // 2^64
    &[110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    // "ab"
    &[107, 0, 2, b'a', b'b'],
    // [[[[]]]]: depth
    &[
        108, 0, 0, 0, 1, 108, 0, 0, 0, 1, 108, 0, 0, 0, 1, 106, 106, 106, 106,
    ],
];

/// Names of eval locals, encoded: what makes a name (an atom, a UTF-8 binary, a list of
/// character codes in every encoding, `[]`) and what does not, down to the elements of a list.
const NAMES: [&[u8]; 22] = [
    &[119, 1, b'a'],
    &[119, 1, b'b'],
    &[100, 0, 1, b'c'],
    &[109, 0, 0, 0, 1, b'a'],
    &[109, 0, 0, 0, 2, 0xe6, 0x97],
    &[77, 0, 0, 0, 1, 8, b'd'],
    &[106],
    &[107, 0, 2, b'a', b'b'],
    &[108, 0, 0, 0, 2, 97, b'a', 98, 0, 0, 0x65, 0xe5, 106],
    &[108, 0, 0, 0, 1, 98, 0xff, 0xff, 0xff, 0xff, 106],
    &[108, 0, 0, 0, 1, 98, 0, 0x11, 0, 0, 106],
    &[108, 0, 0, 0, 1, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 106],
    &[108, 0, 0, 0, 2, 97, b'a', 119, 1, b'a', 106],
    &[
        108, 0, 0, 0, 2, 97, b'a', 108, 0, 0, 0, 1, 97, 1, 97, 2, 106,
    ],
    &[108, 0, 0, 0, 2, 97, b'a', 108, 0, 0, 0, 1, 97, 1, 106, 106],
    &[108, 0, 0, 0, 2, 97, b'a', 77, 0, 0, 0, 1, 3, 0x20, 106],
    &[108, 0, 0, 0, 1, 97, b'a', 97, 2],
    &[97, 1],
    &[104, 1, 97, 1],
    &[70, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
    &[77, 0, 0, 0, 1, 3, 0x20],
    &[
        113, 119, 6, b'e', b'r', b'l', b'a', b'n', b'g', 119, 4, b's', b'e', b'l', b'f', 97, 0,
    ],
];

/// The same value from the rules and the one-pass decoder, or the same error.
fn same_outcome(
    rules: Result<Bound<'_, PyAny>, Error>,
    fast: Result<Bound<'_, PyAny>, Error>,
) -> Result<(), TestCaseError> {
    match (rules, fast) {
        (Ok(rules), Ok(fast)) => prop_assert_eq!(inspect(&fast)?, inspect(&rules)?),
        (Err(rules), Err(fast)) => prop_assert_eq!(fast.to_string(), rules.to_string()),
        (rules, fast) => {
            return Err(fail(format!(
                "rules {:?}, one-pass decoder {:?}",
                rules.map(|o| o.to_string()),
                fast.map(|o| o.to_string())
            )))
        }
    }
    Ok(())
}

/// What the rules make of call arguments given as the encoded list `bytes`, as the NIF reads
/// live terms (`bridge::request::call_arguments`): the list's elements, each a top-level value.
fn rules_arguments(py: Python<'_>, bytes: &[u8], opts: &Options) -> Result<V, String> {
    let reader =
        ext::ExtReader::new(bytes, &NoHandles, opts.max_depth).map_err(|e| e.to_string())?;
    let View::List(items) = reader.view(py, reader.root()).map_err(|e| e.to_string())? else {
        return Err("not a list".to_owned());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = convert::to_py(py, &reader, item, opts).map_err(|e| e.to_string())?;
        out.push(inspect(&obj).map_err(|e| e.to_string())?);
    }
    Ok(V::Tuple(out))
}

/// No opaque handles (as `NoHandles`).
fn no_handles(_py: Python<'_>, _etf: &[u8]) -> Option<Py<PyAny>> {
    None
}
