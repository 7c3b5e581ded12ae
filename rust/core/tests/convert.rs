//! The conversion rules, exercised through a plain in-memory term type that implements both
//! the reader and the builder (the NIF and the mock implement the same traits).

use std::borrow::Cow;

use erlang_python_core::convert::{self, Options, TermBuilder, TermReader, View};
use erlang_python_core::{etf, Error};
use pyo3::prelude::*;

#[derive(Debug)]
enum T {
    Atom(String),
    Int(i64),
    Big(bool, Vec<u8>),
    Float(f64),
    Bin(Vec<u8>),
    List(Vec<T>),
    Improper,
    Tuple(Vec<T>),
    Map(Vec<(T, T)>),
    Pid(Vec<u8>),
    Obj(Py<PyAny>),
    Fun,
}

impl PartialEq for T {
    fn eq(&self, other: &T) -> bool {
        use T::*;
        match (self, other) {
            (Atom(a), Atom(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Big(a, x), Big(b, y)) => a == b && x == y,
            (Float(a), Float(b)) => a == b,
            (Bin(a), Bin(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Map(a), Map(b)) => a.len() == b.len() && a.iter().all(|p| b.contains(p)),
            (Pid(a), Pid(b)) => a == b,
            (Obj(a), Obj(b)) => a.as_ptr() == b.as_ptr(),
            _ => false,
        }
    }
}

struct Reader;

impl<'a> TermReader<'a> for Reader {
    type Term = &'a T;

    fn view(&self, py: Python<'_>, term: &'a T) -> Result<View<'a, &'a T>, Error> {
        Ok(match term {
            T::Atom(a) => View::Atom(Cow::Borrowed(a)),
            T::Int(i) => View::Int(*i),
            T::Big(n, m) => View::BigInt {
                negative: *n,
                magnitude_le: Cow::Borrowed(m),
            },
            T::Float(f) => View::Float(*f),
            T::Bin(b) => View::Binary(b),
            T::List(items) => View::List(items.iter().collect()),
            T::Improper => return Err(Error::ImproperList),
            T::Tuple(items) => View::Tuple(items.iter().collect()),
            T::Map(pairs) => View::Map(pairs.iter().map(|(k, v)| (k, v)).collect()),
            T::Pid(b) => View::Pid(b.clone()),
            T::Obj(o) => View::Object(o.clone_ref(py)),
            T::Fun => return Err(Error::Unsupported("fun")),
        })
    }
}

struct Builder;

impl TermBuilder for Builder {
    type Term = T;
    fn atom(&mut self, name: &'static str) -> T {
        T::Atom(name.into())
    }
    fn int(&mut self, value: i64) -> T {
        T::Int(value)
    }
    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<T, Error> {
        Ok(T::Big(negative, magnitude_le.to_vec()))
    }
    fn float(&mut self, value: f64) -> T {
        T::Float(value)
    }
    fn binary(&mut self, bytes: &[u8]) -> T {
        T::Bin(bytes.to_vec())
    }
    fn list(&mut self, items: Vec<T>) -> T {
        T::List(items)
    }
    fn tuple(&mut self, items: Vec<T>) -> T {
        T::Tuple(items)
    }
    fn map(&mut self, pairs: Vec<(T, T)>) -> Result<T, Error> {
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(other, _)| other == k) {
                return Err(Error::DuplicateKey);
            }
        }
        Ok(T::Map(pairs))
    }
    fn pid(&mut self, etf: &[u8]) -> Result<T, Error> {
        Ok(T::Pid(etf.to_vec()))
    }
    fn reference(&mut self, _etf: &[u8]) -> Result<T, Error> {
        Err(Error::Unsupported("reference"))
    }
    fn object(&mut self, object: Py<PyAny>) -> Result<T, Error> {
        Ok(T::Obj(object))
    }
}

fn opts() -> Options {
    Options { max_depth: 50 }
}

fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

fn eval<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyAny> {
    let code = std::ffi::CString::new(code).unwrap();
    py.eval(&code, None, None).unwrap()
}

fn to_erl(py: Python<'_>, code: &str) -> Result<T, Error> {
    convert::from_py(&mut Builder, &eval(py, code), &opts())
}

fn bin(s: &str) -> T {
    T::Bin(s.as_bytes().to_vec())
}

fn atom(s: &str) -> T {
    T::Atom(s.into())
}

#[test]
fn python_scalars_become_terms() {
    with_py(|py| {
        assert_eq!(to_erl(py, "None").unwrap(), atom("none"));
        assert_eq!(to_erl(py, "True").unwrap(), atom("true"));
        assert_eq!(to_erl(py, "False").unwrap(), atom("false"));
        assert_eq!(to_erl(py, "42").unwrap(), T::Int(42));
        assert_eq!(to_erl(py, "-2**63").unwrap(), T::Int(i64::MIN));
        assert_eq!(
            to_erl(py, "2**64").unwrap(),
            T::Big(false, vec![0, 0, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(
            to_erl(py, "-2**64").unwrap(),
            T::Big(true, vec![0, 0, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(to_erl(py, "1.5").unwrap(), T::Float(1.5));
        assert_eq!(to_erl(py, "float('nan')").unwrap(), atom("nan"));
        assert_eq!(to_erl(py, "float('inf')").unwrap(), atom("infinity"));
        assert_eq!(to_erl(py, "float('-inf')").unwrap(), atom("neg_infinity"));
        assert_eq!(to_erl(py, "'héllo'").unwrap(), bin("héllo"));
        assert_eq!(to_erl(py, "b'\\xff'").unwrap(), T::Bin(vec![255]));
        assert_eq!(to_erl(py, "bytearray(b'ab')").unwrap(), bin("ab"));
    });
}

#[test]
fn python_containers_become_terms() {
    with_py(|py| {
        assert_eq!(
            to_erl(py, "[1, (2,), ()]").unwrap(),
            T::List(vec![T::Int(1), T::Tuple(vec![T::Int(2)]), T::Tuple(vec![])])
        );
        assert_eq!(
            to_erl(py, "{'a': 1}").unwrap(),
            T::Map(vec![(bin("a"), T::Int(1))])
        );
        assert_eq!(to_erl(py, "{3}").unwrap(), T::List(vec![T::Int(3)]));
        assert_eq!(to_erl(py, "frozenset()").unwrap(), T::List(vec![]));
    });
}

#[test]
fn bad_python_values_are_errors_not_crashes() {
    with_py(|py| {
        assert!(matches!(
            to_erl(py, "{'a': 1, b'a': 2}"),
            Err(Error::DuplicateKey)
        ));
        let cyclic = eval(py, "(lambda l: (l.append(l), l)[1])([])");
        let err = convert::from_py(&mut Builder, &cyclic, &opts()).unwrap_err();
        assert!(matches!(err, Error::TooDeep(50)));
        let surrogate = to_erl(py, "'\\ud800'").unwrap_err();
        assert!(matches!(surrogate, Error::Python(_)));
    });
}

#[test]
fn unknown_objects_become_handles_and_top_level_iterators_generators() {
    with_py(|py| {
        let obj = eval(py, "object()");
        let term = convert::from_py(&mut Builder, &obj, &opts()).unwrap();
        assert!(matches!(&term, T::Obj(o) if o.as_ptr() == obj.as_ptr()));
        let gen = eval(py, "(i for i in range(2))");
        let term = convert::result_from_py(&mut Builder, &gen, &opts()).unwrap();
        assert!(matches!(&term, T::Tuple(items) if items[0] == atom("generator")));
        // Inside a container the iterator is a plain handle, and a list is never a generator.
        let term = convert::result_from_py(&mut Builder, &eval(py, "[iter([])]"), &opts()).unwrap();
        assert!(matches!(&term, T::List(items) if matches!(items[0], T::Obj(_))));
    });
}

fn to_py_repr(py: Python<'_>, term: &T) -> Result<String, Error> {
    let obj = convert::to_py(py, &Reader, term, &opts())?;
    Ok(obj.repr()?.to_string())
}

#[test]
fn terms_become_python_values() {
    with_py(|py| {
        assert_eq!(to_py_repr(py, &atom("true")).unwrap(), "True");
        assert_eq!(to_py_repr(py, &atom("undefined")).unwrap(), "None");
        assert_eq!(to_py_repr(py, &atom("日本")).unwrap(), "'日本'");
        assert_eq!(to_py_repr(py, &bin("é")).unwrap(), "'é'");
        assert_eq!(to_py_repr(py, &T::Bin(vec![0xff])).unwrap(), "b'\\xff'");
        assert_eq!(
            to_py_repr(py, &T::Big(true, vec![0, 0, 0, 0, 0, 0, 0, 0, 1])).unwrap(),
            "-18446744073709551616"
        );
        assert_eq!(
            to_py_repr(py, &T::Map(vec![(atom("k"), T::List(vec![T::Int(1)]))])).unwrap(),
            "{'k': [1]}"
        );
        assert_eq!(to_py_repr(py, &T::Tuple(vec![])).unwrap(), "()");
    });
}

#[test]
fn bad_terms_are_errors() {
    with_py(|py| {
        assert!(matches!(
            to_py_repr(py, &T::Improper),
            Err(Error::ImproperList)
        ));
        assert!(matches!(
            to_py_repr(py, &T::Fun),
            Err(Error::Unsupported("fun"))
        ));
        let mut deep = T::List(vec![]);
        for _ in 0..60 {
            deep = T::List(vec![deep]);
        }
        assert!(matches!(to_py_repr(py, &deep), Err(Error::TooDeep(50))));
        let err: PyErr = Error::ImproperList.into();
        assert!(err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
    });
}

#[test]
fn kwargs_accept_atom_binary_and_string_keys_only() {
    with_py(|py| {
        let map = T::Map(vec![
            (atom("a"), T::Int(1)),
            (bin("b"), T::Int(2)),
            (T::List(vec![T::Int(99)]), T::Int(3)),
        ]);
        let kwargs = convert::kwargs_to_py(py, &Reader, &map, &opts()).unwrap();
        assert_eq!(
            kwargs.repr().unwrap().to_string(),
            "{'a': 1, 'b': 2, 'c': 3}"
        );
        let bad = T::Map(vec![(T::Int(1), T::Int(1))]);
        assert!(matches!(
            convert::kwargs_to_py(py, &Reader, &bad, &opts()),
            Err(Error::BadKwargKey)
        ));
    });
}

#[test]
fn kwargs_accept_keyword_lists_of_atom_named_pairs() {
    with_py(|py| {
        let pair = |k: &str, v: T| T::Tuple(vec![atom(k), v]);
        let list = T::List(vec![pair("b", T::Int(1)), pair("a", bin("x"))]);
        let kwargs = convert::kwargs_to_py(py, &Reader, &list, &opts()).unwrap();
        // In the list's order.
        assert_eq!(kwargs.repr().unwrap().to_string(), "{'b': 1, 'a': 'x'}");
        let empty = convert::kwargs_to_py(py, &Reader, &T::List(vec![]), &opts()).unwrap();
        assert!(empty.is_empty());
        for bad in [
            T::List(vec![bin("a")]),
            T::List(vec![T::Tuple(vec![bin("a"), T::Int(1)])]),
            T::List(vec![T::Tuple(vec![T::List(vec![T::Int(97)]), T::Int(1)])]),
            T::List(vec![T::Tuple(vec![atom("a"), T::Int(1), T::Int(2)])]),
            T::List(vec![T::Tuple(vec![atom("a")])]),
        ] {
            let err = convert::kwargs_to_py(py, &Reader, &bad, &opts()).unwrap_err();
            assert!(matches!(err, Error::BadKwargList), "{bad:?}: {err:?}");
            let err: PyErr = err.into();
            assert!(err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
        }
        let twice = T::List(vec![pair("a", T::Int(1)), pair("a", T::Int(2))]);
        let err = convert::kwargs_to_py(py, &Reader, &twice, &opts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "keyword argument 'a' is given more than once"
        );
        assert!(PyErr::from(err).is_instance_of::<pyo3::exceptions::PyTypeError>(py));
        assert!(matches!(
            convert::kwargs_to_py(py, &Reader, &T::Improper, &opts()),
            Err(Error::ImproperList)
        ));
        assert!(matches!(
            convert::kwargs_to_py(py, &Reader, &T::Int(1), &opts()),
            Err(Error::Unsupported(_))
        ));
    });
}

#[test]
fn pids_and_python_objects_round_trip() {
    with_py(|py| {
        let mut pid = vec![131, 88, 119, 1, b'n'];
        pid.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(etf::is_pid(&pid));
        let obj = convert::to_py(py, &Reader, &T::Pid(pid.clone()), &opts()).unwrap();
        assert_eq!(obj.repr().unwrap().to_string(), "erlang.Pid(<7.0>@n)");
        assert_eq!(
            convert::from_py(&mut Builder, &obj, &opts()).unwrap(),
            T::Pid(pid)
        );
        let handle = eval(py, "object()").unbind();
        let back = convert::to_py(py, &Reader, &T::Obj(handle.clone_ref(py)), &opts()).unwrap();
        assert_eq!(back.as_ptr(), handle.as_ptr());
    });
}

/// [`Reader`], but atoms that become `str` come as [`View::AtomStr`], as from a reader that
/// keeps the `str`s of the atoms it saw (the NIF's).
struct StrAtomReader;

impl<'a> TermReader<'a> for StrAtomReader {
    type Term = &'a T;

    fn view(&self, py: Python<'_>, term: &'a T) -> Result<View<'a, &'a T>, Error> {
        match term {
            T::Atom(a) if !["true", "false", "nil", "none", "undefined"].contains(&a.as_str()) => {
                Ok(View::AtomStr(pyo3::types::PyString::new(py, a).unbind()))
            }
            _ => Reader.view(py, term),
        }
    }
}

#[test]
fn atoms_given_as_str_convert_as_atoms_given_by_name() {
    with_py(|py| {
        let pair = |k: &str, v: T| T::Tuple(vec![atom(k), v]);
        let values = [
            atom("k"),
            atom(""),
            atom("日本"),
            atom("true"),
            atom("undefined"),
            atom("nan"),
            T::Map(vec![(atom("k"), atom("v")), (atom("none"), T::Int(1))]),
            T::List(vec![atom("py_array"), atom("float64")]),
            T::Tuple(vec![atom("a"), atom("b"), atom("c"), atom("d")]),
            // The array form: the tag and the dtype are read by name.
            T::Tuple(vec![
                atom("py_array"),
                atom("int8"),
                T::List(vec![T::Int(2)]),
                T::Bin(vec![1, 2]),
            ]),
            T::Tuple(vec![
                atom("py_array"),
                atom("no_such_dtype"),
                T::List(vec![T::Int(1)]),
                T::Bin(vec![1]),
            ]),
            T::Map(vec![(atom("k"), T::Int(1)), (bin("k"), T::Int(2))]),
        ];
        let show = |result: Result<Bound<'_, PyAny>, Error>| match result {
            Ok(obj) => format!(
                "{}: {}",
                obj.get_type().name().unwrap(),
                obj.repr().unwrap()
            ),
            Err(err) => format!("error: {err}"),
        };
        for value in &values {
            let by_name = show(convert::to_py(py, &Reader, value, &opts()));
            let as_str = show(convert::to_py(py, &StrAtomReader, value, &opts()));
            assert_eq!(by_name, as_str, "{value:?}");
        }
        let kwargs = [
            T::Map(vec![(atom("a"), T::Int(1)), (atom("é"), T::Int(2))]),
            T::List(vec![pair("b", T::Int(1)), pair("a", atom("x"))]),
            T::List(vec![pair("a", T::Int(1)), pair("a", T::Int(2))]),
            T::Map(vec![(atom("a"), T::Int(1)), (bin("a"), T::Int(2))]),
        ];
        for value in &kwargs {
            let by_name =
                show(convert::kwargs_to_py(py, &Reader, value, &opts()).map(|d| d.into_any()));
            let as_str = show(
                convert::kwargs_to_py(py, &StrAtomReader, value, &opts()).map(|d| d.into_any()),
            );
            assert_eq!(by_name, as_str, "{value:?}");
        }
        let view: View<'_, &T> = View::AtomStr(pyo3::types::PyString::new(py, "é").unbind());
        assert!(view.is_atom(py, "é") && !view.is_atom(py, "e"));
        assert_eq!(view.into_atom_name(py).as_deref(), Some("é"));
        assert_eq!(View::<&T>::Int(1).into_atom_name(py), None);
    });
}

#[test]
fn a_short_look_finds_big_dicts() {
    with_py(|py| {
        let shows =
            |code: &str, budget: usize| convert::shows_big_dict(&[eval(py, code)], 32, budget);
        let big = "{i: i for i in range(33)}";
        // The value itself, and one level down in lists, tuples and dict values (subclasses
        // included).
        assert!(shows(big, 0));
        assert!(!shows("{i: i for i in range(32)}", 1000));
        assert!(shows(&format!("[{{'a': 1}}] * 100 + [{big}]"), 1000));
        assert!(shows(&format!("({{'a': 1}}, {big})"), 1000));
        assert!(shows(&format!("{{'a': 1, 'b': {big}}}"), 1000));
        assert!(shows(
            &format!("__import__('collections').OrderedDict(x={big})"),
            1000
        ));
        // Not deeper, nor inside anything else, nor past the budget.
        assert!(!shows(&format!("[[{big}]]"), 1000));
        assert!(!shows(&format!("[{{'a': {big}}}]"), 1000));
        assert!(!shows("[set(), 'x' * 40, object(), [], (), {}, 1]", 1000));
        assert!(!shows(&format!("[0] * 600 + [{big}]"), 512));
        assert!(shows(&format!("[0] * 600 + [{big}]"), 601));
        // Several values (a stream batch's items) share one budget.
        let items = [eval(py, "[1, 2]"), eval(py, big)];
        assert!(convert::shows_big_dict(&items, 32, 2));
        assert!(!convert::shows_big_dict(&items, 32, 1));
        let items = [eval(py, "[1, 2]"), eval(py, &format!("[{big}]"))];
        assert!(!convert::shows_big_dict(&items, 32, 2));
        assert!(convert::shows_big_dict(&items, 32, 3));
        assert!(!convert::shows_big_dict(&items[..1], 32, 1000));
    });
}
