//! The conversion rules on external term format bytes (`erlang.term_to_binary` /
//! `binary_to_term`): Python values and the exact bytes Erlang writes for the terms they become
//! (taken from `erl -noshell -eval 'io:format("~w", [term_to_binary(T, [{minor_version, 2}])])'`
//! on OTP 25, where minor_version 2 is what OTP 26+ writes by default), handles, bounds, and
//! malformed input that must fail cleanly, never panic. The byte codec alone is tested in
//! `etf.rs`, with no interpreter.

use erlang_python_core::convert::Options;
use erlang_python_core::etf;
use erlang_python_core::ext::{self, HandleTable, Handles, NoHandles, HANDLE_NODE};
use erlang_python_core::Error;
use pyo3::prelude::*;

fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

fn eval<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyAny> {
    let code = std::ffi::CString::new(code).unwrap();
    py.eval(&code, None, None).unwrap()
}

fn encode(py: Python<'_>, code: &str) -> Result<Vec<u8>, Error> {
    ext::encode(py, &eval(py, code), &NoHandles, &Options::default())
}

fn decode_repr(py: Python<'_>, data: &[u8]) -> Result<String, Error> {
    let obj = ext::decode(py, data, &NoHandles, &Options::default())?;
    Ok(obj.repr()?.to_string())
}

fn format(data: &[u8]) -> String {
    etf::format(data, 1000).unwrap()
}

/// `[131, 111, 0, 0, 1, 0, 0, <255 zeros>, 1]`: `1 bsl 2040`.
fn big_2040() -> Vec<u8> {
    let mut out = vec![131, 111, 0, 0, 1, 0, 0];
    out.extend(std::iter::repeat_n(0, 255));
    out.push(1);
    out
}

/// Python value, then the bytes Erlang writes for the term it becomes.
fn known() -> Vec<(&'static str, Vec<u8>)> {
    let mut tuple256 = vec![131, 105, 0, 0, 1, 0];
    for _ in 0..256 {
        tuple256.extend_from_slice(&[97, 0]);
    }
    vec![
        ("None", vec![131, 119, 4, 110, 111, 110, 101]),
        ("True", vec![131, 119, 4, 116, 114, 117, 101]),
        ("0", vec![131, 97, 0]),
        ("255", vec![131, 97, 255]),
        ("256", vec![131, 98, 0, 0, 1, 0]),
        ("-1", vec![131, 98, 255, 255, 255, 255]),
        ("-300", vec![131, 98, 255, 255, 254, 212]),
        ("2147483647", vec![131, 98, 127, 255, 255, 255]),
        ("2147483648", vec![131, 110, 4, 0, 0, 0, 0, 128]),
        ("-2147483648", vec![131, 98, 128, 0, 0, 0]),
        ("-2147483649", vec![131, 110, 4, 1, 1, 0, 0, 128]),
        (
            "2**63 - 1",
            vec![131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127],
        ),
        ("-2**63", vec![131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128]),
        ("2**64", vec![131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("-2**64", vec![131, 110, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("2**2040", big_2040()),
        ("1.5", vec![131, 70, 63, 248, 0, 0, 0, 0, 0, 0]),
        ("-0.25", vec![131, 70, 191, 208, 0, 0, 0, 0, 0, 0]),
        ("float('nan')", vec![131, 119, 3, 110, 97, 110]),
        ("'a'", vec![131, 109, 0, 0, 0, 1, 97]),
        ("''", vec![131, 109, 0, 0, 0, 0]),
        ("b'\\xff'", vec![131, 109, 0, 0, 0, 1, 255]),
        (
            "'héllo'",
            vec![131, 109, 0, 0, 0, 6, 104, 195, 169, 108, 108, 111],
        ),
        ("[]", vec![131, 106]),
        ("[97, 98, 99]", vec![131, 107, 0, 3, 97, 98, 99]),
        (
            "[1000, 2]",
            vec![131, 108, 0, 0, 0, 2, 98, 0, 0, 3, 232, 97, 2, 106],
        ),
        (
            "[1, 'x', ()]",
            vec![
                131, 108, 0, 0, 0, 3, 97, 1, 109, 0, 0, 0, 1, 120, 104, 0, 106,
            ],
        ),
        ("()", vec![131, 104, 0]),
        (
            "(True, 1)",
            vec![131, 104, 2, 119, 4, 116, 114, 117, 101, 97, 1],
        ),
        ("(0,) * 256", tuple256),
        (
            "{'a': 1}",
            vec![131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 1, 97, 97, 1],
        ),
        ("{}", vec![131, 116, 0, 0, 0, 0]),
        // #{<<"b">> => 1, <<"a">> => 2, 3 => none, 1.5 => none, {1} => none, [1] => none,
        //   true => none}: keys in Erlang's order whatever the dict order.
        (
            "{'b': 1, 'a': 2, 3: None, 1.5: None, (1,): None, frozenset([1]): None, True: None}",
            vec![
                131, 116, 0, 0, 0, 7, 97, 3, 119, 4, 110, 111, 110, 101, 70, 63, 248, 0, 0, 0, 0,
                0, 0, 119, 4, 110, 111, 110, 101, 119, 4, 116, 114, 117, 101, 119, 4, 110, 111,
                110, 101, 104, 1, 97, 1, 119, 4, 110, 111, 110, 101, 107, 0, 1, 1, 119, 4, 110,
                111, 110, 101, 109, 0, 0, 0, 1, 97, 97, 2, 109, 0, 0, 0, 1, 98, 97, 1,
            ],
        ),
        // [{<<"k">>, [#{<<"v">> => [1.0, none]}]}]
        (
            "[('k', [{'v': [1.0, None]}])]",
            vec![
                131, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, 107, 108, 0, 0, 0, 1, 116, 0, 0, 0,
                1, 109, 0, 0, 0, 1, 118, 108, 0, 0, 0, 2, 70, 63, 240, 0, 0, 0, 0, 0, 0, 119, 4,
                110, 111, 110, 101, 106, 106, 106,
            ],
        ),
    ]
}

#[test]
fn python_values_encode_as_erlang_does() {
    with_py(|py| {
        for (code, bytes) in known() {
            assert_eq!(encode(py, code).unwrap(), bytes, "{code}");
        }
    });
}

#[test]
fn known_bytes_decode_to_the_python_values() {
    with_py(|py| {
        for (code, bytes) in known() {
            let got = decode_repr(py, &bytes);
            match code {
                // The atom `nan` is a str in Python (docs/type-conversion.md, round trips).
                "float('nan')" => assert_eq!(got.unwrap(), "'nan'"),
                // [1] as a key: see unhashable_keys_are_python_errors.
                c if c.contains("frozenset") => assert!(got.is_err()),
                _ => {
                    let expected: String = eval(py, &format!("repr({code})")).extract().unwrap();
                    assert_eq!(got.unwrap(), expected, "{code}");
                }
            }
        }
    });
}

#[test]
fn a_list_ext_with_no_elements_is_its_tail() {
    // erts reads <<131,108,0,0,0,0,97,5>> as 5 (OTP 25): Erlang never writes such a list, but
    // the format allows it.
    with_py(|py| {
        assert_eq!(
            decode_repr(py, &[131, 108, 0, 0, 0, 0, 97, 5]).unwrap(),
            "5"
        );
        assert_eq!(
            decode_repr(py, &[131, 104, 1, 108, 0, 0, 0, 0, 119, 1, 97]).unwrap(),
            "('a',)"
        );
    });
}

#[test]
fn unhashable_keys_are_python_errors() {
    with_py(|py| {
        // #{[1] => none}: a list key has no hashable Python equivalent.
        let bytes = [
            131, 116, 0, 0, 0, 1, 107, 0, 1, 1, 119, 4, 110, 111, 110, 101,
        ];
        assert!(matches!(decode_repr(py, &bytes), Err(Error::Python(_))));
    });
}

#[test]
fn every_atom_encoding_decodes() {
    with_py(|py| {
        // OTP 25's default (ATOM_EXT), Latin-1 'é', UTF-8 '日本', and a 100-character atom.
        assert_eq!(
            decode_repr(py, &[131, 100, 0, 3, 97, 98, 99]).unwrap(),
            "'abc'"
        );
        assert_eq!(decode_repr(py, &[131, 100, 0, 1, 233]).unwrap(), "'é'");
        assert_eq!(decode_repr(py, &[131, 115, 1, 233]).unwrap(), "'é'");
        assert_eq!(
            decode_repr(py, &[131, 119, 6, 230, 151, 165, 230, 156, 172]).unwrap(),
            "'日本'"
        );
        assert_eq!(
            decode_repr(py, &[131, 118, 0, 3, 97, 98, 99]).unwrap(),
            "'abc'"
        );
        assert_eq!(
            decode_repr(py, &[131, 100, 0, 4, 116, 114, 117, 101]).unwrap(),
            "True"
        );
        assert_eq!(
            decode_repr(py, &[131, 115, 3, 110, 105, 108]).unwrap(),
            "None"
        );
        let mut long = vec![131, 119, 200];
        for _ in 0..100 {
            long.extend_from_slice("é".as_bytes());
        }
        assert_eq!(
            decode_repr(py, &long).unwrap(),
            format!("'{}'", "é".repeat(100))
        );
    });
}

#[test]
fn old_encodings_decode() {
    with_py(|py| {
        // term_to_binary(1.5, [{minor_version, 0}]): FLOAT_EXT text.
        let mut float = vec![131, 99];
        float.extend_from_slice(b"1.50000000000000000000e+00");
        float.extend_from_slice(&[0; 5]);
        assert_eq!(decode_repr(py, &float).unwrap(), "1.5");
        // A bignum that fits in 64 bits, a list whose tail is a list, a bitstring of whole bytes.
        assert_eq!(decode_repr(py, &[131, 110, 2, 1, 44, 1]).unwrap(), "-300");
        assert_eq!(
            decode_repr(py, &[131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 2, 3]).unwrap(),
            "[1, 2, 3]"
        );
        assert_eq!(
            decode_repr(py, &[131, 77, 0, 0, 0, 1, 8, 97]).unwrap(),
            "'a'"
        );
    });
}

fn pid25() -> Vec<u8> {
    // term_to_binary(c:pid(0,85,0)) on OTP 25: the node is an ATOM_EXT.
    let mut pid = vec![131, 88, 100, 0, 13];
    pid.extend_from_slice(b"nonode@nohost");
    pid.extend_from_slice(&[0, 0, 0, 85, 0, 0, 0, 0, 0, 0, 0, 0]);
    pid
}

fn pid26() -> Vec<u8> {
    // The same pid with minor_version 2: a SMALL_ATOM_UTF8_EXT node.
    let mut pid = vec![131, 88, 119, 13];
    pid.extend_from_slice(b"nonode@nohost");
    pid.extend_from_slice(&[0, 0, 0, 85, 0, 0, 0, 0, 0, 0, 0, 0]);
    pid
}

fn ref26() -> Vec<u8> {
    let mut r = vec![131, 90, 0, 3, 119, 13];
    r.extend_from_slice(b"nonode@nohost");
    r.extend_from_slice(&[0, 0, 0, 0, 0, 3, 33, 68, 197, 144, 0, 1, 4, 57, 169, 121]);
    r
}

#[test]
fn pids_and_refs_are_identities_in_one_encoding() {
    with_py(|py| {
        let a = ext::decode(py, &pid25(), &NoHandles, &Options::default()).unwrap();
        let b = ext::decode(py, &pid26(), &NoHandles, &Options::default()).unwrap();
        assert_eq!(
            a.repr().unwrap().to_string(),
            "erlang.Pid(<85.0>@nonode@nohost)"
        );
        assert!(a.eq(&b).unwrap());
        assert_eq!(a.hash().unwrap(), b.hash().unwrap());
        let bytes = ext::encode(py, &a, &NoHandles, &Options::default()).unwrap();
        assert_eq!(bytes, pid26());

        let r = ext::decode(py, &ref26(), &NoHandles, &Options::default()).unwrap();
        assert_eq!(
            r.repr().unwrap().to_string(),
            "erlang.Ref(#Ref<70887801.3314548737.205124>@nonode@nohost)"
        );
        assert_eq!(
            ext::encode(py, &r, &NoHandles, &Options::default()).unwrap(),
            ref26()
        );
    });
}

#[test]
fn terms_with_no_python_equivalent_are_type_errors() {
    with_py(|py| {
        let port = {
            let mut p = vec![131, 89, 119, 13];
            p.extend_from_slice(b"nonode@nohost");
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
            p
        };
        let export = [
            131, 113, 119, 5, 108, 105, 115, 116, 115, 119, 3, 109, 97, 112, 97, 2,
        ];
        let closure = [131, 112, 0, 0, 0, 7, 1, 2, 3];
        let bits = [131, 77, 0, 0, 0, 1, 3, 32];
        let improper = [131, 108, 0, 0, 0, 1, 97, 1, 97, 2];
        let cases: [(&[u8], &str); 5] = [
            (&port, "port"),
            (&export, "fun"),
            (&closure, "fun"),
            (&bits, "bitstring"),
            (&improper, "improper"),
        ];
        for (bytes, what) in cases {
            let err = decode_repr(py, bytes).unwrap_err();
            assert!(err.to_string().contains(what), "{what}: {err}");
            let py_err = PyErr::from(err);
            assert!(py_err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
        }
        // Inside a container too.
        let mut nested = vec![131, 104, 2, 97, 1];
        nested.extend_from_slice(&export[1..]);
        assert!(matches!(
            decode_repr(py, &nested),
            Err(Error::Unsupported("fun"))
        ));
    });
}

#[test]
fn map_keys_follow_the_rules() {
    with_py(|py| {
        // #{a => 1, <<"a">> => 2}: distinct in Erlang, one key in Python: an error, not a lost
        // entry (docs/type-conversion.md).
        let bytes = [
            131, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 109, 0, 0, 0, 1, 97, 97, 2,
        ];
        let err = decode_repr(py, &bytes).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateMapKey(key) if key == "'a'"),
            "{err}"
        );
        assert!(PyErr::from(err).is_instance_of::<pyo3::exceptions::PyValueError>(py));
        // #{1 => x, 1.0 => y}: 1 == 1.0 in Python.
        let numbers = [
            131, 116, 0, 0, 0, 2, 97, 1, 119, 1, 120, 70, 63, 240, 0, 0, 0, 0, 0, 0, 119, 1, 121,
        ];
        assert!(matches!(
            decode_repr(py, &numbers),
            Err(Error::DuplicateMapKey(_))
        ));
        // The same key twice is malformed (erts: badarg), whatever its encodings.
        let dup = [131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2];
        let dup_encodings = [
            131, 116, 0, 0, 0, 2, 100, 0, 1, 97, 97, 1, 119, 1, 97, 97, 2,
        ];
        let dup_strings = [
            131, 116, 0, 0, 0, 2, 107, 0, 1, 5, 97, 1, 108, 0, 0, 0, 1, 97, 5, 106, 97, 2,
        ];
        for bytes in [&dup[..], &dup_encodings[..], &dup_strings[..]] {
            let err = decode_repr(py, bytes).unwrap_err();
            assert!(matches!(err, Error::BadEtf { what, .. } if what.contains("duplicate")));
            assert!(PyErr::from(err).is_instance_of::<pyo3::exceptions::PyValueError>(py));
        }
        // Two Python keys that become the same term.
        assert!(matches!(
            encode(py, "{'a': 1, b'a': 2}"),
            Err(Error::DuplicateKey)
        ));
        assert!(matches!(
            encode(py, "{(1, 'x'): 1, (1, b'x'): 2}"),
            Err(Error::DuplicateKey)
        ));
    });
}

#[test]
fn objects_need_a_handle_table() {
    with_py(|py| {
        let err = encode(py, "[object()]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot encode 'object' in the external term format: it has no Erlang equivalent \
             (docs/type-conversion.md)"
        );
        assert!(PyErr::from(err).is_instance_of::<pyo3::exceptions::PyTypeError>(py));

        let table = HandleTable::new();
        let obj = eval(py, "object()");
        let value = eval(py, "lambda o: {'k': [o, (o,)]}")
            .call1((&obj,))
            .unwrap();
        let bytes = ext::encode(py, &value, &table, &Options::default()).unwrap();
        assert_eq!(table.len(), 2);
        assert!(format(&bytes).contains(&format!("@{HANDLE_NODE}")));
        let back = ext::decode(py, &bytes, &table, &Options::default()).unwrap();
        let first = back.get_item("k").unwrap().get_item(0).unwrap();
        assert!(first.is(&obj));
        // Without the table a handle is just a reference; after clear() too.
        let plain = ext::decode(py, &bytes, &NoHandles, &Options::default()).unwrap();
        let first = plain.get_item("k").unwrap().get_item(0).unwrap();
        assert!(first.repr().unwrap().to_string().starts_with("erlang.Ref("));
        table.clear(py);
        assert!(table.is_empty());
        assert!(table.lookup(py, 1).is_none());
    });
}

#[test]
fn values_round_trip() {
    with_py(|py| {
        for code in [
            "[1, -1, 2**100, -(2**100), 0.5, 'x', 'é', b'\\x00\\xff', (), (1, (2, [3]))]",
            "{'a': {'b': {'c': []}}, 1: 2, (1, 2): [None, True, False]}",
            "list(range(300))",
            "'x' * 70000",
            "[0] * 70000",
            "tuple(range(1000))",
            "{i: str(i) for i in range(100)}",
        ] {
            let value = eval(py, code);
            let bytes = ext::encode(py, &value, &NoHandles, &Options::default()).unwrap();
            let back = ext::decode(py, &bytes, &NoHandles, &Options::default()).unwrap();
            assert!(back.eq(&value).unwrap(), "{code}");
        }
    });
}

#[test]
fn nesting_is_bounded_both_ways() {
    // A bound of 100: at 1000, debug builds of the recursive rules overflow the 2 MB stack of
    // a test thread (release builds and Python's 8 MB threads do not).
    let opts = Options { max_depth: 100 };
    with_py(|py| {
        // 100,000 nested one-element lists: indexed iteratively, refused by the depth bound.
        let depth = 100_000;
        let mut bytes = vec![131];
        for _ in 0..depth {
            bytes.extend_from_slice(&[108, 0, 0, 0, 1]);
        }
        bytes.extend(std::iter::repeat_n(106, depth + 1));
        assert!(matches!(
            ext::decode(py, &bytes, &NoHandles, &opts),
            Err(Error::TooDeep(100))
        ));
        // ... also as a map key, where duplicates are looked for.
        let mut key = vec![131, 116, 0, 0, 0, 1];
        key.extend_from_slice(&bytes[1..]);
        key.extend_from_slice(&[97, 1]);
        assert!(matches!(
            ext::decode(py, &key, &NoHandles, &opts),
            Err(Error::TooDeep(100))
        ));
        let cyclic = eval(py, "(lambda l: (l.append(l), l)[1])([])");
        assert!(matches!(
            ext::encode(py, &cyclic, &NoHandles, &opts),
            Err(Error::TooDeep(100))
        ));
        // Exactly at the bound is fine.
        let nested = eval(
            py,
            "(lambda: [l := [], [l := [l] for _ in range(99)], l][2])()",
        );
        let bytes = ext::encode(py, &nested, &NoHandles, &opts).unwrap();
        assert!(ext::decode(py, &bytes, &NoHandles, &opts)
            .unwrap()
            .eq(&nested)
            .unwrap());
    });
}

fn all_known_bytes() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = known().into_iter().map(|(_, b)| b).collect();
    all.extend([pid25(), pid26(), ref26()]);
    all.push(vec![
        131, 113, 119, 5, 108, 105, 115, 116, 115, 119, 3, 109, 97, 112, 97, 2,
    ]);
    all
}

#[test]
fn truncated_input_is_an_error() {
    with_py(|py| {
        for bytes in all_known_bytes() {
            for cut in 0..bytes.len() {
                let err = decode_repr(py, &bytes[..cut]).unwrap_err();
                assert!(
                    matches!(err, Error::BadEtf { .. }),
                    "{:?}: {err}",
                    &bytes[..cut]
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(matches!(
                decode_repr(py, &longer),
                Err(Error::BadEtf {
                    what: "trailing bytes after the term",
                    ..
                })
            ));
        }
    });
}

/// xorshift64*: deterministic garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn garbage_and_bit_flips_never_panic() {
    with_py(|py| {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let known = all_known_bytes();
        for round in 0..30_000 {
            let bytes: Vec<u8> = if round % 3 == 2 {
                // Tags and small numbers: reaches deeper into the decoder than noise does.
                const ALPHABET: [u8; 24] = [
                    0, 1, 2, 3, 255, 70, 77, 88, 90, 97, 98, 100, 104, 105, 106, 107, 108, 109,
                    110, 111, 113, 116, 118, 119,
                ];
                let len = 1 + (rng.next() % 40) as usize;
                let mut b = vec![131];
                b.extend((1..len).map(|_| ALPHABET[(rng.next() as usize) % ALPHABET.len()]));
                b
            } else if round % 3 == 0 {
                let len = (rng.next() % 40) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if let Some(first) = b.first_mut() {
                    *first = 131;
                }
                b
            } else {
                let mut b = known[(rng.next() as usize) % known.len()].clone();
                for _ in 0..=(rng.next() % 3) {
                    let i = (rng.next() as usize) % b.len();
                    b[i] ^= 1 << (rng.next() % 8);
                }
                b
            };
            let _ = decode_repr(py, &bytes);
        }
    });
}

#[test]
fn python_values_print_in_erlang_syntax() {
    with_py(|py| {
        let show = |code: &str| format(&encode(py, code).unwrap());
        assert_eq!(show("{'a': 1}"), "#{<<\"a\">> => 1}");
        assert_eq!(show("(True, None, [1, 2], ())"), "{true,none,[1,2],{}}");
        assert_eq!(show("'é'"), "<<\"é\"/utf8>>");
        assert_eq!(show("float('inf')"), "infinity");
        assert_eq!(show("-(2**70)"), "-1180591620717411303424");
        for code in ["2**2040", "-(3**1000)", "10**1233 - 1"] {
            let decimal: String = eval(py, &format!("str({code})")).extract().unwrap();
            assert_eq!(show(code), decimal, "{code}");
        }
    });
}
