//! The byte codec on its own, with no interpreter: exact bytes of known terms (taken from
//! `erl -noshell -eval 'io:format("~w", [term_to_binary(T, [{minor_version, 2}])])'` on
//! OTP 25, where minor_version 2 is what OTP 26+ writes by default), bignums and identities
//! both ways, Erlang-syntax printing, and malformed input that must fail cleanly, never panic.

use erlang_python_core::etf::{
    self, canonical_identity, decode_atom, decode_bignum, describe_pid, describe_ref,
    encode_bignum, is_pid, is_ref, Error, Index, Slot, Term, Writer,
};

fn format(data: &[u8]) -> String {
    etf::format(data, 1000).unwrap()
}

fn malformed<T: std::fmt::Debug>(result: etf::Result<T>) -> &'static str {
    match result {
        Err(Error::Malformed { what, .. }) => what,
        other => panic!("expected a malformed-input error, got {other:?}"),
    }
}

/// `1 bsl 2040`: a `LARGE_BIG_EXT`.
fn big_2040() -> Vec<u8> {
    let mut out = vec![131, 111, 0, 0, 1, 0, 0];
    out.extend(std::iter::repeat_n(0, 255));
    out.push(1);
    out
}

/// The little-endian magnitude of `10^n`.
fn power_of_ten(n: usize) -> Vec<u8> {
    let mut digits = vec![1u8];
    for _ in 0..n {
        let mut carry = 0u16;
        for d in digits.iter_mut() {
            let v = u16::from(*d) * 10 + carry;
            *d = v as u8;
            carry = v >> 8;
        }
        if carry > 0 {
            digits.push(carry as u8);
        }
    }
    digits
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

fn ref25() -> Vec<u8> {
    // OTP 25 writes the node as ATOM_EXT; NEW_REFERENCE_EXT has an 8-bit creation.
    let mut r = vec![131, 114, 0, 3, 100, 0, 13];
    r.extend_from_slice(b"nonode@nohost");
    r.extend_from_slice(&[0, 0, 3, 33, 68, 197, 144, 0, 1, 4, 57, 169, 121]);
    r
}

/// Bytes Erlang writes, and a writer that builds the same term.
type Build = fn(&mut Writer) -> usize;

fn k(bytes: Vec<u8>, build: Build) -> (Vec<u8>, Build) {
    (bytes, build)
}

fn known() -> Vec<(Vec<u8>, Build)> {
    let mut tuple256 = vec![131, 105, 0, 0, 1, 0];
    for _ in 0..256 {
        tuple256.extend_from_slice(&[97, 0]);
    }
    vec![
        k(vec![131, 119, 4, 110, 111, 110, 101], |w| w.atom("none")),
        k(vec![131, 97, 0], |w| w.int(0)),
        k(vec![131, 97, 255], |w| w.int(255)),
        k(vec![131, 98, 0, 0, 1, 0], |w| w.int(256)),
        k(vec![131, 98, 255, 255, 255, 255], |w| w.int(-1)),
        k(vec![131, 98, 127, 255, 255, 255], |w| {
            w.int(i32::MAX.into())
        }),
        k(vec![131, 98, 128, 0, 0, 0], |w| w.int(i32::MIN.into())),
        k(vec![131, 110, 4, 0, 0, 0, 0, 128], |w| w.int(1 << 31)),
        k(vec![131, 110, 4, 1, 1, 0, 0, 128], |w| {
            w.int(-(1 << 31) - 1)
        }),
        k(
            vec![131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127],
            |w| w.int(i64::MAX),
        ),
        k(vec![131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128], |w| {
            w.int(i64::MIN)
        }),
        k(vec![131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], |w| {
            w.bigint(false, &[0, 0, 0, 0, 0, 0, 0, 0, 1])
        }),
        k(vec![131, 110, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1], |w| {
            w.bigint(true, &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
        }),
        k(big_2040(), |w| {
            let mut magnitude = vec![0; 255];
            magnitude.push(1);
            w.bigint(false, &magnitude)
        }),
        k(vec![131, 70, 63, 248, 0, 0, 0, 0, 0, 0], |w| w.float(1.5)),
        k(vec![131, 70, 191, 208, 0, 0, 0, 0, 0, 0], |w| {
            w.float(-0.25)
        }),
        k(vec![131, 109, 0, 0, 0, 1, 97], |w| w.binary(b"a")),
        k(vec![131, 109, 0, 0, 0, 0], |w| w.binary(b"")),
        k(vec![131, 106], |w| w.list(vec![])),
        k(vec![131, 107, 0, 3, 97, 98, 99], |w| {
            let items = vec![w.int(97), w.int(98), w.int(99)];
            w.list(items)
        }),
        k(
            vec![131, 108, 0, 0, 0, 2, 98, 0, 0, 3, 232, 97, 2, 106],
            |w| {
                let items = vec![w.int(1000), w.int(2)];
                w.list(items)
            },
        ),
        k(vec![131, 104, 0], |w| w.tuple(vec![])),
        k(tuple256, |w| {
            let items = (0..256).map(|_| w.int(0)).collect();
            w.tuple(items)
        }),
        k(vec![131, 116, 0, 0, 0, 0], |w| w.map(vec![]).unwrap()),
        // #{<<"b">> => 1, <<"a">> => 2, 3 => none, 1.5 => none, {1} => none, [1] => none,
        //   true => none}: keys in Erlang's order whatever the order given.
        k(
            vec![
                131, 116, 0, 0, 0, 7, 97, 3, 119, 4, 110, 111, 110, 101, 70, 63, 248, 0, 0, 0, 0,
                0, 0, 119, 4, 110, 111, 110, 101, 119, 4, 116, 114, 117, 101, 119, 4, 110, 111,
                110, 101, 104, 1, 97, 1, 119, 4, 110, 111, 110, 101, 107, 0, 1, 1, 119, 4, 110,
                111, 110, 101, 109, 0, 0, 0, 1, 97, 97, 2, 109, 0, 0, 0, 1, 98, 97, 1,
            ],
            |w| {
                let mut pairs = Vec::new();
                let (k, v) = (w.binary(b"b"), w.int(1));
                pairs.push((k, v));
                let (k, v) = (w.binary(b"a"), w.int(2));
                pairs.push((k, v));
                for key in 0..5 {
                    let k = match key {
                        0 => w.int(3),
                        1 => w.float(1.5),
                        2 => {
                            let one = w.int(1);
                            w.tuple(vec![one])
                        }
                        3 => {
                            let one = w.int(1);
                            w.list(vec![one])
                        }
                        _ => w.atom("true"),
                    };
                    let v = w.atom("none");
                    pairs.push((k, v));
                }
                w.map(pairs).unwrap()
            },
        ),
        k(pid26(), |w| w.pid(&pid25()).unwrap()),
        k(ref26(), |w| w.reference(&ref25()).unwrap()),
    ]
}

fn all_known_bytes() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = known().into_iter().map(|(bytes, _)| bytes).collect();
    all.extend([pid25(), ref25()]);
    // fun lists:map/2
    all.push(vec![
        131, 113, 119, 5, 108, 105, 115, 116, 115, 119, 3, 109, 97, 112, 97, 2,
    ]);
    all
}

#[test]
fn the_writer_writes_what_erlang_writes() {
    for (bytes, build) in known() {
        let mut w = Writer::new();
        let term = build(&mut w);
        assert_eq!(w.finish(term).unwrap(), bytes, "{}", format(&bytes));
    }
}

#[test]
fn the_writer_refuses_duplicate_keys_and_wrong_identities() {
    let mut w = Writer::new();
    let pairs = vec![(w.int(1), w.int(1)), (w.bigint(false, &[1, 0]), w.int(2))];
    assert_eq!(w.map(pairs), Err(Error::DuplicateKey));
    let pairs = {
        let a = w.binary(b"x");
        let b = w.binary(b"x");
        let one = w.int(1);
        let (t1, t2) = (w.tuple(vec![one, a]), w.tuple(vec![one, b]));
        vec![(t1, one), (t2, one)]
    };
    assert_eq!(w.map(pairs), Err(Error::DuplicateKey));
    assert_eq!(w.pid(&ref26()), Err(Error::Invalid("not a pid")));
    assert_eq!(
        w.reference(&pid26()),
        Err(Error::Invalid("not a reference"))
    );
    assert!(matches!(w.pid(&[131, 88]), Err(Error::Malformed { .. })));
    assert!(w.finish(10_000).is_err());
}

#[test]
fn bignums_both_ways() {
    // term_to_binary(1 bsl 64): SMALL_BIG_EXT.
    let small = [131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        decode_bignum(&small).unwrap(),
        (false, &[0u8, 0, 0, 0, 0, 0, 0, 0, 1][..])
    );
    assert_eq!(
        encode_bignum(false, &[0, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
        small
    );
    // -(1 bsl 64), and 1 bsl 2040: 256 bytes of magnitude make a LARGE_BIG_EXT.
    let (negative, magnitude) =
        decode_bignum(&[131, 110, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    assert!(negative);
    assert_eq!(encode_bignum(true, magnitude).unwrap()[3], 1);
    let big = big_2040();
    let (negative, magnitude) = decode_bignum(&big).unwrap();
    assert!(!negative);
    assert_eq!(magnitude.len(), 256);
    assert_eq!(encode_bignum(negative, magnitude).unwrap(), big_2040());
    // A LARGE_BIG_EXT of a short magnitude, and any non-zero sign byte, decode too.
    assert_eq!(
        decode_bignum(&[131, 111, 0, 0, 0, 3, 7, 1, 2, 3]).unwrap(),
        (true, &[1u8, 2, 3][..])
    );
    for len in [0, 1, 8, 9, 255, 256, 1000] {
        let magnitude: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        for negative in [false, true] {
            let bytes = encode_bignum(negative, &magnitude).unwrap();
            assert_eq!(bytes[1], if len <= 255 { 110 } else { 111 });
            assert_eq!(decode_bignum(&bytes).unwrap(), (negative, &magnitude[..]));
        }
    }
    assert_eq!(
        etf::small_int(true, &[0, 0, 0, 0, 0, 0, 0, 128]),
        Some(i64::MIN)
    );
    assert_eq!(etf::small_int(false, &[0, 0, 0, 0, 0, 0, 0, 128]), None);
    assert_eq!(
        etf::small_int(false, &[5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Some(5)
    );
    assert_eq!(etf::trim_magnitude(&[1, 2, 0, 0]), &[1, 2]);
}

#[test]
fn malformed_bignums_are_errors() {
    assert_eq!(malformed(decode_bignum(&[])), "empty input");
    assert_eq!(
        malformed(decode_bignum(&[130, 110, 0, 0])),
        "missing version byte 131"
    );
    assert_eq!(
        malformed(decode_bignum(&[131, 111, 0, 0, 0, 9, 0, 1])),
        "truncated"
    );
    assert_eq!(malformed(decode_bignum(&[131, 110, 1])), "truncated");
    assert_eq!(malformed(decode_bignum(&[131, 97, 1])), "expected a bignum");
    assert_eq!(
        malformed(decode_bignum(&[131, 110, 1, 0, 1, 0])),
        "trailing bytes after the term"
    );
}

#[test]
fn atoms_decode_in_all_encodings() {
    // ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT (term_to_binary('日本') on OTP 25), then Latin-1
    // ATOM_EXT and SMALL_ATOM_EXT ('é' is one byte).
    assert_eq!(
        decode_atom(&[131, 118, 0, 3, b'a', b'b', b'c']).unwrap(),
        "abc"
    );
    let etf = [131, 119, 6, 230, 151, 165, 230, 156, 172];
    assert_eq!(decode_atom(&etf).unwrap(), "日本");
    assert_eq!(decode_atom(&[131, 100, 0, 1, b'a']).unwrap(), "a");
    assert_eq!(decode_atom(&[131, 100, 0, 1, 0xE9]).unwrap(), "é");
    assert_eq!(decode_atom(&[131, 115, 1, 0xE9]).unwrap(), "é");
    // 255 characters is the longest atom, in either encoding.
    let mut long = vec![131, 118, 0, 254];
    long.extend("é".repeat(127).as_bytes());
    assert_eq!(decode_atom(&long).unwrap().chars().count(), 127);
    let mut longest = vec![131, 100, 0, 255];
    longest.extend([0xE9; 255]);
    assert_eq!(decode_atom(&longest).unwrap(), "é".repeat(255));
}

#[test]
fn malformed_atoms_are_errors() {
    assert_eq!(
        malformed(decode_atom(&[131, 118, 0, 2, 0xff, 0xfe])),
        "atom is not valid UTF-8"
    );
    let mut too_long = vec![131, 100, 1, 0];
    too_long.extend([b'a'; 256]);
    assert_eq!(
        malformed(decode_atom(&too_long)),
        "atom longer than 255 characters"
    );
    assert_eq!(malformed(decode_atom(&[131, 97, 1])), "expected an atom");
    assert_eq!(
        malformed(decode_atom(&[131, 82, 0])),
        "atom cache references need a node"
    );
    assert_eq!(malformed(decode_atom(&[131, 119, 3, b'a'])), "truncated");
    assert_eq!(malformed(decode_atom(&[131, 100, 0])), "truncated");
}

#[test]
fn pids_of_both_tags() {
    // NEW_PID_EXT, with an ATOM_EXT node (OTP 25) and a SMALL_ATOM_UTF8_EXT node (OTP 26).
    for pid in [pid25(), pid26()] {
        assert!(is_pid(&pid));
        assert!(!is_ref(&pid));
        assert_eq!(describe_pid(&pid).unwrap(), "<85.0>@nonode@nohost");
        assert_eq!(format(&pid), "<85.0>@nonode@nohost");
        assert_eq!(canonical_identity(&pid).unwrap(), pid26());
    }
    // PID_EXT: an 8-bit creation.
    let mut old = vec![131, 103, 115, 1, b'n'];
    old.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 1, 2]);
    let mut new = vec![131, 88, 119, 1, b'n'];
    new.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2]);
    assert!(is_pid(&old));
    assert_eq!(canonical_identity(&old).unwrap(), new);
    assert_eq!(describe_pid(&old).unwrap(), "<7.1>@n");
    assert_eq!(format(&old), "<7.1>@n");
    // Not a pid.
    assert_eq!(malformed(describe_pid(&ref26())), "expected a pid");
    assert_eq!(malformed(describe_pid(&[131, 88])), "truncated");
    assert_eq!(
        malformed(canonical_identity(&[131, 97, 1])),
        "expected a pid or a reference"
    );
}

#[test]
fn references_of_every_tag() {
    // NEWER_REFERENCE_EXT (OTP 26) and NEW_REFERENCE_EXT (OTP 25: 8-bit creation).
    for r in [ref25(), ref26()] {
        assert!(is_ref(&r));
        assert!(!is_pid(&r));
        let text = "#Ref<70887801.3314548737.205124>@nonode@nohost";
        assert_eq!(describe_ref(&r).unwrap(), text);
        assert_eq!(format(&r), text);
        assert_eq!(canonical_identity(&r).unwrap(), ref26());
    }
    // Two id words, most significant printed first.
    let mut two = vec![131, 90, 0, 2, 119, 1, b'n', 0, 0, 0, 0];
    two.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    assert_eq!(describe_ref(&two).unwrap(), "#Ref<2.1>@n");
    // REFERENCE_EXT (before R9): one id word, then an 8-bit creation.
    let old = [131, 101, 115, 1, b'n', 0, 0, 0, 9, 1];
    let new = [131, 90, 0, 1, 119, 1, b'n', 0, 0, 0, 1, 0, 0, 0, 9];
    assert_eq!(canonical_identity(&old).unwrap(), new);
    assert_eq!(describe_ref(&old).unwrap(), "#Ref<9>@n");
    assert_eq!(format(&old), "#Ref<9>@n");
    // One to five id words.
    for words in [0u8, 6] {
        let r = [131, 90, 0, words, 119, 1, b'n', 0, 0, 0, 0];
        assert_eq!(
            malformed(describe_ref(&r)),
            "reference with a bad number of id words"
        );
    }
    assert_eq!(malformed(describe_ref(&pid26())), "expected a reference");
}

#[test]
fn identities_fail_cleanly_when_cut_or_extended() {
    for bytes in [pid25(), pid26(), ref25(), ref26()] {
        for cut in 0..bytes.len() {
            assert!(canonical_identity(&bytes[..cut]).is_err());
            assert!(describe_pid(&bytes[..cut]).is_err());
            assert!(describe_ref(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            malformed(canonical_identity(&longer)),
            "trailing bytes after the term"
        );
    }
}

#[test]
fn truncated_input_is_an_error() {
    for bytes in all_known_bytes() {
        for cut in 0..bytes.len() {
            assert!(
                matches!(Index::new(&bytes[..cut]), Err(Error::Malformed { .. })),
                "{:?}",
                &bytes[..cut]
            );
            assert!(etf::format(&bytes[..cut], 1000).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            malformed(Index::new(&longer).map(|_| ())),
            "trailing bytes after the term"
        );
    }
}

/// Every term of an index, read (what the conversion rules do to a whole input).
fn read_all(index: &Index<'_>, slot: Slot, depth: usize) -> etf::Result<()> {
    if depth > 100 {
        return Ok(());
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
        .try_for_each(|child| read_all(index, child, depth + 1))
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
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let known = all_known_bytes();
    for round in 0..30_000 {
        let bytes: Vec<u8> = if round % 3 == 2 {
            // Tags and small numbers: reaches deeper into the decoder than noise does.
            const ALPHABET: [u8; 28] = [
                0, 1, 2, 3, 255, 70, 77, 88, 90, 97, 98, 100, 101, 103, 104, 105, 106, 107, 108,
                109, 110, 111, 113, 114, 115, 116, 118, 119,
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
        if let Ok(index) = Index::new(&bytes) {
            let _ = read_all(&index, index.root(), 0);
        }
        let _ = etf::format(&bytes, 1000);
        let _ = canonical_identity(&bytes);
        let _ = describe_pid(&bytes);
        let _ = describe_ref(&bytes);
        let _ = decode_bignum(&bytes);
        let _ = decode_atom(&bytes);
    }
}

#[test]
fn huge_counts_fail_before_allocating() {
    for bytes in [
        &[131, 108, 255, 255, 255, 255, 106][..],
        &[131, 105, 255, 255, 255, 255][..],
        &[131, 116, 255, 255, 255, 255][..],
        &[131, 109, 255, 255, 255, 255, 0][..],
        &[131, 111, 255, 255, 255, 255, 0][..],
        &[131, 112, 255, 255, 255, 255][..],
        &[131, 107, 255, 255][..],
    ] {
        assert!(matches!(Index::new(bytes), Err(Error::Malformed { .. })));
    }
}

#[test]
fn unsupported_encodings_say_so() {
    let what = |bytes: &[u8]| malformed(Index::new(bytes).map(|_| ()));
    assert!(
        what(&[131, 80, 0, 0, 0, 3, 120, 156, 0]).contains("compressed terms are not supported")
    );
    assert!(what(&[131, 121, 1]).contains("node-local"));
    assert!(what(&[130, 97, 1]).contains("version"));
    assert_eq!(what(&[]), "empty input");
    assert_eq!(what(&[131, 82, 0]), "atom cache references need a node");
    assert_eq!(what(&[131, 200]), "unknown tag");
    assert_eq!(
        what(&[131, 77, 0, 0, 0, 1, 9, 0]),
        "bitstring with a bad bit count"
    );
    // NaN is not an Erlang float: indexed (the bytes are all there), refused when read.
    let nan = [131, 70, 127, 248, 0, 0, 0, 0, 0, 0];
    let index = Index::new(&nan).unwrap();
    assert_eq!(malformed(index.term(index.root())), "float is not finite");
    assert!(etf::format(&nan, 1000).is_err());
}

#[test]
fn terms_read_as_erlang_decodes_them() {
    // term_to_binary(1.5, [{minor_version, 0}]): FLOAT_EXT text.
    let mut float = vec![131, 99];
    float.extend_from_slice(b"1.50000000000000000000e+00");
    float.extend_from_slice(&[0; 5]);
    let index = Index::new(&float).unwrap();
    assert_eq!(index.term(index.root()).unwrap(), Term::Float(1.5));
    // A list whose tail is a list continues it; a string's elements are integers.
    let list = [131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 2, 3];
    let index = Index::new(&list).unwrap();
    let Term::List { items, tail: None } = index.term(index.root()).unwrap() else {
        panic!("a proper list");
    };
    let values: Vec<Term<'_>> = items.into_iter().map(|s| index.term(s).unwrap()).collect();
    assert_eq!(values, [Term::Int(1), Term::Int(2), Term::Int(3)]);
    // [1|2]
    let improper = [131, 108, 0, 0, 0, 1, 97, 1, 97, 2];
    let index = Index::new(&improper).unwrap();
    assert!(matches!(
        index.term(index.root()).unwrap(),
        Term::List { tail: Some(_), .. }
    ));
    // LIST_EXT with no elements is its tail (erts reads <<131,108,0,0,0,0,97,5>> as 5):
    // alone, nested, as an element, and as the tail of a list ([1|2]).
    for (bytes, term) in [
        (&[131, 108, 0, 0, 0, 0, 97, 5][..], "5"),
        (&[131, 108, 0, 0, 0, 0, 108, 0, 0, 0, 0, 97, 5], "5"),
        (&[131, 104, 1, 108, 0, 0, 0, 0, 119, 1, 97], "{a}"),
        (
            &[131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 0, 97, 2],
            "[1|2]",
        ),
        (&[131, 108, 0, 0, 0, 0, 107, 0, 2, 1, 2], "[1,2]"),
    ] {
        assert_eq!(format(bytes), term);
    }
    let index = Index::new(&[131, 108, 0, 0, 0, 0, 97, 5]).unwrap();
    assert_eq!(index.term(index.root()).unwrap(), Term::Int(5));
    // A bitstring of whole bytes, and of 3 bits.
    let index = Index::new(&[131, 77, 0, 0, 0, 1, 8, 97]).unwrap();
    assert_eq!(
        index.term(index.root()).unwrap(),
        Term::BitBinary {
            bytes: b"a",
            bits: 8
        }
    );
}

#[test]
fn duplicate_map_keys_are_malformed_whatever_their_encodings() {
    let cases: [&[u8]; 5] = [
        // #{1 => 1, 1 => 2}
        &[131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2],
        // a as ATOM_EXT and as SMALL_ATOM_UTF8_EXT
        &[
            131, 116, 0, 0, 0, 2, 100, 0, 1, 97, 97, 1, 119, 1, 97, 97, 2,
        ],
        // [5] as STRING_EXT and as LIST_EXT
        &[
            131, 116, 0, 0, 0, 2, 107, 0, 1, 5, 97, 1, 108, 0, 0, 0, 1, 97, 5, 106, 97, 2,
        ],
        // 5, and 5 as the tail of a LIST_EXT with no elements
        &[
            131, 116, 0, 0, 0, 2, 97, 5, 97, 1, 108, 0, 0, 0, 0, 97, 5, 97, 2,
        ],
        // <<5:3>> (compared by its bytes), bare and so wrapped
        &[
            131, 116, 0, 0, 0, 2, 77, 0, 0, 0, 1, 3, 160, 97, 1, 108, 0, 0, 0, 0, 77, 0, 0, 0, 1,
            3, 160, 97, 2,
        ],
    ];
    for bytes in cases {
        let index = Index::new(bytes).unwrap();
        let Term::Map(pairs) = index.term(index.root()).unwrap() else {
            panic!("a map");
        };
        assert_eq!(
            index.check_unique_keys(index.root(), &pairs, 100),
            Err(Error::Malformed {
                at: 1,
                what: "map with duplicate keys"
            })
        );
    }
    // #{a => 1, <<"a">> => 2}: different terms.
    let bytes = [
        131, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 109, 0, 0, 0, 1, 97, 97, 2,
    ];
    let index = Index::new(&bytes).unwrap();
    let Term::Map(pairs) = index.term(index.root()).unwrap() else {
        panic!("a map");
    };
    assert_eq!(index.check_unique_keys(index.root(), &pairs, 100), Ok(()));
}

#[test]
fn nesting_is_bounded() {
    // 100,000 nested one-element lists: indexed iteratively, refused by the depth bound.
    let depth = 100_000;
    let mut bytes = vec![131];
    for _ in 0..depth {
        bytes.extend_from_slice(&[108, 0, 0, 0, 1]);
    }
    bytes.extend(std::iter::repeat_n(106, depth + 1));
    assert!(Index::new(&bytes).is_ok());
    assert_eq!(etf::format(&bytes, 100), Err(Error::TooDeep(100)));
    // ... also as a map key, where duplicates are looked for.
    let mut key = vec![131, 116, 0, 0, 0, 1];
    key.extend_from_slice(&bytes[1..]);
    key.extend_from_slice(&[97, 1]);
    let index = Index::new(&key).unwrap();
    let Term::Map(pairs) = index.term(index.root()).unwrap() else {
        panic!("a map");
    };
    assert_eq!(
        index.check_unique_keys(index.root(), &pairs, 100),
        Err(Error::TooDeep(100))
    );
}

fn written(build: impl FnOnce(&mut Writer) -> usize) -> String {
    let mut w = Writer::new();
    let term = build(&mut w);
    format(&w.finish(term).unwrap())
}

fn floats(values: &[f64]) -> String {
    written(|w| {
        let items = values.iter().map(|&f| w.float(f)).collect();
        w.list(items)
    })
}

#[test]
fn terms_print_in_erlang_syntax() {
    assert_eq!(
        written(|w| {
            let (k, v) = (w.binary(b"a"), w.int(1));
            w.map(vec![(k, v)]).unwrap()
        }),
        "#{<<\"a\">> => 1}"
    );
    assert_eq!(
        written(|w| {
            let items = vec![w.atom("true"), w.atom("none")];
            let (one, two) = (w.int(1), w.int(2));
            let list = w.list(vec![one, two]);
            let empty = w.tuple(vec![]);
            w.tuple([items, vec![list, empty]].concat())
        }),
        "{true,none,[1,2],{}}"
    );
    // A printable list still prints element by element, as ~w does.
    assert_eq!(format(&[131, 107, 0, 2, 104, 105]), "[104,105]");
    assert_eq!(written(|w| w.binary("é".as_bytes())), "<<\"é\"/utf8>>");
    assert_eq!(
        written(|w| w.binary(b"a\"b\\c\n")),
        "<<\"a\\\"b\\\\c\\n\">>"
    );
    assert_eq!(written(|w| w.binary(b"\x00\x01")), "<<0,1>>");
    assert_eq!(written(|w| w.binary(b"")), "<<>>");
    assert_eq!(written(|w| w.int(-300)), "-300");
    assert_eq!(
        written(|w| w.bigint(false, &[0, 0, 0, 0, 0, 0, 0, 0, 1])),
        "18446744073709551616"
    );
    assert_eq!(
        written(|w| w.bigint(true, &[0, 0, 0, 0, 0, 0, 0, 0, 64])),
        "-1180591620717411303424"
    );
    // Decimal up to 512 bytes of magnitude (10^1233 has 512), Erlang's hex syntax beyond.
    assert_eq!(
        written(|w| w.bigint(false, &power_of_ten(600))),
        format!("1{}", "0".repeat(600))
    );
    assert_eq!(power_of_ten(1233).len(), 512);
    assert_eq!(
        written(|w| w.bigint(true, &power_of_ten(1233))),
        format!("-1{}", "0".repeat(1233))
    );
    let mut two_pow_4096 = vec![0; 512];
    two_pow_4096.push(1);
    assert_eq!(
        written(|w| w.bigint(true, &two_pow_4096)),
        format!("-16#1{}", "0".repeat(1024))
    );
    // float_to_list(F, [short]) on OTP 25.
    assert_eq!(
        floats(&[
            1.5,
            1e20,
            1e21,
            1e-05,
            0.0001,
            100.0,
            1.2345678901234568e17,
            1e15,
            1e16
        ]),
        "[1.5,1.0e20,1.0e21,1.0e-5,0.0001,100.0,1.2345678901234568e17,1.0e15,1.0e16]"
    );
    assert_eq!(
        floats(&[
            1000.0,
            0.1,
            -0.0,
            9007199254740992.0,
            123.456,
            5e-324,
            12345678901.0
        ]),
        "[1.0e3,0.1,-0.0,9.007199254740992e15,123.456,5.0e-324,12345678901.0]"
    );
    assert_eq!(
        floats(&[
            0.00005,
            1.234e-4,
            0.0025,
            1.7976931348623157e308,
            123456.0,
            1.5e7
        ]),
        "[5.0e-5,1.234e-4,0.0025,1.7976931348623157e308,123456.0,1.5e7]"
    );
    // Atoms, quoted when Erlang quotes them.
    let atom = |name: &str| {
        let mut b = vec![131, 119, name.len() as u8];
        b.extend_from_slice(name.as_bytes());
        format(&b)
    };
    assert_eq!(atom("ok"), "ok");
    assert_eq!(atom("a@b_1"), "a@b_1");
    assert_eq!(atom("hello world"), "'hello world'");
    assert_eq!(atom("Caps"), "'Caps'");
    assert_eq!(atom("after"), "'after'");
    assert_eq!(atom(""), "''");
    assert_eq!(atom("it's"), "'it\\'s'");
    assert_eq!(atom("日本"), "'日本'");
    // Terms Python cannot make.
    assert_eq!(format(&[131, 108, 0, 0, 0, 1, 97, 1, 97, 2]), "[1|2]");
    assert_eq!(format(&[131, 77, 0, 0, 0, 1, 3, 32]), "<<1:3>>");
    assert_eq!(
        format(&[131, 113, 119, 5, 108, 105, 115, 116, 115, 119, 3, 109, 97, 112, 97, 2]),
        "fun lists:map/2"
    );
    let mut port = vec![131, 89, 119, 13];
    port.extend_from_slice(b"nonode@nohost");
    port.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 0]);
    assert_eq!(format(&port), "#Port<5>@nonode@nohost");
    assert_eq!(format(&[131, 112, 0, 0, 0, 7, 1, 2, 3]), "#Fun<>");
}
