//! `erlang._native._asgi_scope`: the ASGI `http` scope of an HTTP server's request, read in
//! one pass from the external term format `py_asgi:stream/6` sends it in.
//!
//! A server's scope has the same eleven keys on every request (`py_http`'s, and those of any
//! server that follows the ASGI spec). Converted as an ordinary argument, its binaries became
//! `str` that `erlang._asgi.build_scope` then encoded back to `bytes`, one by one, on the
//! asyncio loop's thread, which runs every request's app. Here the bytes go straight into the
//! dict the app gets. Only a scope whose every value has the usual type is read here; for
//! anything else (another key, an atom where a binary is usual, a non-ASCII method, malformed
//! bytes) the function answers `None` and the runner decodes the term with the ordinary rules
//! and takes `build_scope`'s general path, which gives the same scope or raises its error.
//! So this is a shortcut with no rules of its own: `tests/python/test_asgi.py` holds it to
//! `build_scope` over generated scopes.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::etf::tag::{
    ATOM_EXT, ATOM_UTF8_EXT, BINARY_EXT, INTEGER_EXT, LIST_EXT, MAP_EXT, NIL_EXT, SMALL_ATOM_EXT,
    SMALL_ATOM_UTF8_EXT, SMALL_INTEGER_EXT, SMALL_TUPLE_EXT,
};
use crate::etf::Cursor;

/// The keys of a server's scope, in the order the built scope has them (`erlang._native.
/// _ASGI_SERVER_KEYS`, which `erlang._asgi` takes its own short path's keys from).
pub const KEYS: [&str; 11] = [
    "type",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "query_string",
    "root_path",
    "headers",
    "server",
    "client",
];

/// The values `build_scope` accepts for `http_version`.
const HTTP_VERSIONS: [&str; 4] = ["1.0", "1.1", "2", "3"];

/// A value of the scope as read, before any Python object is made.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// A binary (text or bytes, as the key wants).
    Binary(&'a [u8]),
    /// A list of `{Name, Value}` binaries: the cursor at its first element, and its length.
    Headers(usize, usize),
    /// `{Host, Port}`.
    Address(&'a str, i32),
    /// `none`, `undefined` or `nil`.
    Absent,
}

/// The ASGI `http` scope of `data`, a map in the external term format with exactly the keys of
/// a server's scope and the usual types (see the module's documentation), with `asgi` (a dict)
/// copied under `"asgi"` and an empty `"state"`; `None` for anything else.
#[pyfunction]
#[pyo3(signature = (data, asgi, /))]
pub fn _asgi_scope<'py>(
    py: Python<'py>,
    data: &[u8],
    asgi: &Bound<'py, PyDict>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(values) = read(data) else {
        return Ok(None);
    };
    let (Some(kind), Some(version), Some(method), Some(scheme), Some(path), Some(root_path)) = (
        text(values[0]),
        text(values[1]),
        text(values[2]),
        text(values[3]),
        text(values[4]),
        text(values[7]),
    ) else {
        return Ok(None);
    };
    let (Some(raw_path), Some(query)) = (bytes(values[5]), bytes(values[6])) else {
        return Ok(None);
    };
    if kind != "http"
        || !HTTP_VERSIONS.contains(&version)
        || !path.starts_with('/')
        // str.upper() of anything but ASCII is Unicode's business: build_scope's.
        || !method.is_ascii()
    {
        return Ok(None);
    }
    let Value::Headers(at, count) = values[8] else {
        return Ok(None);
    };
    let Some(headers) = headers(py, data, at, count)? else {
        return Ok(None);
    };
    let (Some(server), Some(client)) = (address(py, values[9])?, address(py, values[10])?) else {
        return Ok(None);
    };
    let scope = PyDict::new(py);
    scope.set_item(intern!(py, "type"), intern!(py, "http"))?;
    scope.set_item(intern!(py, "http_version"), PyString::new(py, version))?;
    scope.set_item(
        intern!(py, "method"),
        PyString::new(py, &method.to_ascii_uppercase()),
    )?;
    scope.set_item(intern!(py, "scheme"), PyString::new(py, scheme))?;
    scope.set_item(intern!(py, "path"), PyString::new(py, path))?;
    scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, raw_path))?;
    scope.set_item(intern!(py, "query_string"), PyBytes::new(py, query))?;
    scope.set_item(intern!(py, "root_path"), PyString::new(py, root_path))?;
    scope.set_item(intern!(py, "headers"), headers)?;
    scope.set_item(intern!(py, "server"), server)?;
    scope.set_item(intern!(py, "client"), client)?;
    scope.set_item(intern!(py, "asgi"), asgi.copy()?)?;
    scope.set_item(intern!(py, "state"), PyDict::new(py))?;
    Ok(Some(scope))
}

/// A binary value that is UTF-8 text.
fn text(value: Value<'_>) -> Option<&str> {
    match value {
        Value::Binary(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// A binary value's bytes.
fn bytes(value: Value<'_>) -> Option<&[u8]> {
    match value {
        Value::Binary(bytes) => Some(bytes),
        _ => None,
    }
}

/// The eleven values of `data` in the order of [`KEYS`], or `None` when it is not such a map
/// (or not well-formed). Headers are checked here and made into Python objects later.
fn read(data: &[u8]) -> Option<[Value<'_>; 11]> {
    let mut cur = Cursor::after_version(data).ok()?;
    if cur.u8().ok()? != MAP_EXT || cur.u32().ok()? != 11 {
        return None;
    }
    let mut values: [Option<Value<'_>>; 11] = [None; 11];
    for _ in 0..11 {
        let index = key(&mut cur)?;
        let value = match index {
            8 => header_list(&mut cur)?,
            9 | 10 => address_value(&mut cur)?,
            _ => Value::Binary(binary(&mut cur)?),
        };
        let slot = &mut values[index];
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
    }
    cur.finish().ok()?;
    // Eleven distinct keys of eleven: all are there.
    Some(values.map(|value| value.unwrap_or(Value::Absent)))
}

/// The index in [`KEYS`] of the next key, an atom or a binary. The keys are ASCII, whose bytes
/// are the same in each atom encoding (Latin-1 or UTF-8) and in a binary: the name's bytes are
/// compared as they are, and anything else is no key of a server's scope.
fn key(cur: &mut Cursor<'_>) -> Option<usize> {
    let len = match cur.u8().ok()? {
        ATOM_EXT | ATOM_UTF8_EXT => cur.u16().ok()?,
        SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => usize::from(cur.u8().ok()?),
        BINARY_EXT => cur.len32().ok()?,
        _ => return None,
    };
    let name = cur.take(len).ok()?;
    KEYS.iter().position(|k| k.as_bytes() == name)
}

/// The bytes of the next term, a binary.
fn binary<'a>(cur: &mut Cursor<'a>) -> Option<&'a [u8]> {
    if cur.u8().ok()? != BINARY_EXT {
        return None;
    }
    let len = cur.len32().ok()?;
    cur.take(len).ok()
}

/// The next term, a proper list of `{Name, Value}` binaries, checked and skipped.
fn header_list(cur: &mut Cursor<'_>) -> Option<Value<'static>> {
    match cur.u8().ok()? {
        NIL_EXT => Some(Value::Headers(cur.pos(), 0)),
        LIST_EXT => {
            let count = cur.len32().ok()?;
            let at = cur.pos();
            for _ in 0..count {
                header(cur)?;
            }
            (cur.u8().ok()? == NIL_EXT).then_some(Value::Headers(at, count))
        }
        _ => None,
    }
}

/// The next term, a `{Name, Value}` of binaries.
fn header<'a>(cur: &mut Cursor<'a>) -> Option<(&'a [u8], &'a [u8])> {
    if cur.u8().ok()? != SMALL_TUPLE_EXT || cur.u8().ok()? != 2 {
        return None;
    }
    Some((binary(cur)?, binary(cur)?))
}

/// The next term, `{Host, Port}` with a UTF-8 host and an integer port, or an atom that
/// becomes `None`.
fn address_value<'a>(cur: &mut Cursor<'a>) -> Option<Value<'a>> {
    let tag = cur.u8().ok()?;
    match tag {
        SMALL_TUPLE_EXT => {
            if cur.u8().ok()? != 2 {
                return None;
            }
            let host = std::str::from_utf8(binary(cur)?).ok()?;
            let port = match cur.u8().ok()? {
                SMALL_INTEGER_EXT => i32::from(cur.u8().ok()?),
                INTEGER_EXT => i32::from_be_bytes(cur.array().ok()?),
                _ => return None,
            };
            Some(Value::Address(host, port))
        }
        ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => {
            let name = cur.atom_after(tag).ok()?;
            matches!(&*name, "none" | "undefined" | "nil").then_some(Value::Absent)
        }
        _ => None,
    }
}

/// The scope's headers, `[(name, value)]` with names in ASCII lowercase, from the `count`
/// pairs at `at` (checked by [`read`]).
fn headers<'py>(
    py: Python<'py>,
    data: &[u8],
    at: usize,
    count: usize,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let mut cur = Cursor::new(data, at);
    let list = PyList::empty(py);
    for _ in 0..count {
        let Some((name, value)) = header(&mut cur) else {
            return Ok(None);
        };
        let name = if name.iter().any(u8::is_ascii_uppercase) {
            PyBytes::new(py, &name.to_ascii_lowercase())
        } else {
            PyBytes::new(py, name)
        };
        list.append(PyTuple::new(py, [name, PyBytes::new(py, value)])?)?;
    }
    Ok(Some(list))
}

/// `(host, port)`, or Python's `None` for an absent address; `None` when the value is not
/// an address.
fn address<'py>(py: Python<'py>, value: Value<'_>) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(match value {
        Value::Address(host, port) => Some(
            (PyString::new(py, host), port)
                .into_pyobject(py)?
                .into_any(),
        ),
        Value::Absent => Some(py.None().into_bound(py)),
        _ => None,
    })
}

/// The property tests' shared configuration (cases, fixed seed, no failure files).
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod proptest_common;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `term_to_binary(#{type => <<"http">>, ...})` written by hand: eleven atom keys.
    fn encoded(values: &[(&str, Vec<u8>)]) -> Vec<u8> {
        encoded_with(SMALL_ATOM_UTF8_EXT, values)
    }

    /// [`encoded`] with the keys as `key_tag` gives them: an atom encoding or a binary.
    fn encoded_with(key_tag: u8, values: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![131, MAP_EXT];
        out.extend_from_slice(&u32::try_from(values.len()).unwrap().to_be_bytes());
        for (key, value) in values {
            out.push(key_tag);
            match key_tag {
                ATOM_EXT | ATOM_UTF8_EXT => {
                    out.extend_from_slice(&u16::try_from(key.len()).unwrap().to_be_bytes());
                }
                BINARY_EXT => {
                    out.extend_from_slice(&u32::try_from(key.len()).unwrap().to_be_bytes());
                }
                _ => out.push(u8::try_from(key.len()).unwrap()),
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    fn bin(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![BINARY_EXT];
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
        out.extend_from_slice(bytes);
        out
    }

    fn pair(a: Vec<u8>, b: Vec<u8>) -> Vec<u8> {
        let mut out = vec![SMALL_TUPLE_EXT, 2];
        out.extend(a);
        out.extend(b);
        out
    }

    fn server_scope() -> Vec<(&'static str, Vec<u8>)> {
        let mut headers = vec![LIST_EXT, 0, 0, 0, 1];
        headers.extend(pair(bin(b"Host"), bin(b"x")));
        headers.push(NIL_EXT);
        vec![
            ("type", bin(b"http")),
            ("http_version", bin(b"1.1")),
            ("method", bin(b"get")),
            ("scheme", bin(b"http")),
            ("path", bin(b"/a b")),
            ("raw_path", bin(b"/a%20b")),
            ("query_string", bin(b"q=\xff")),
            ("root_path", bin(b"")),
            ("headers", headers),
            (
                "server",
                pair(bin(b"127.0.0.1"), vec![INTEGER_EXT, 0, 0, 0x1f, 0x40]),
            ),
            (
                "client",
                vec![SMALL_ATOM_UTF8_EXT, 4, b'n', b'o', b'n', b'e'],
            ),
        ]
    }

    #[test]
    fn reads_a_server_scope() {
        let data = encoded(&server_scope());
        let values = read(&data).expect("a server scope");
        assert!(matches!(values[2], Value::Binary(b"get")));
        assert!(matches!(values[8], Value::Headers(_, 1)));
        assert!(matches!(values[9], Value::Address("127.0.0.1", 8000)));
        assert!(matches!(values[10], Value::Absent));
    }

    #[test]
    fn reads_keys_in_each_encoding() {
        for tag in [
            ATOM_EXT,
            ATOM_UTF8_EXT,
            SMALL_ATOM_EXT,
            SMALL_ATOM_UTF8_EXT,
            BINARY_EXT,
        ] {
            assert!(
                read(&encoded_with(tag, &server_scope())).is_some(),
                "key tag {tag}"
            );
        }
        // A key that is a prefix or an extension of a server's is none of them.
        let mut other = server_scope();
        other[0].0 = "typ";
        assert!(read(&encoded(&other)).is_none());
        other[0].0 = "types";
        assert!(read(&encoded(&other)).is_none());
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        let mut twelve = server_scope();
        twelve.push(("state", vec![MAP_EXT, 0, 0, 0, 0]));
        assert!(read(&encoded(&twelve)).is_none());
        let mut repeated = server_scope();
        repeated[10] = ("server", repeated[9].1.clone());
        assert!(read(&encoded(&repeated)).is_none());
        let mut atom_method = server_scope();
        atom_method[2].1 = vec![SMALL_ATOM_UTF8_EXT, 3, b'G', b'E', b'T'];
        assert!(read(&encoded(&atom_method)).is_none());
        let mut improper = server_scope();
        let tail = improper[8].1.len() - 1;
        improper[8].1[tail] = SMALL_INTEGER_EXT;
        improper[8].1.push(1);
        assert!(read(&encoded(&improper)).is_none());
        let whole = encoded(&server_scope());
        for cut in 0..whole.len() {
            assert!(read(&whole[..cut]).is_none(), "truncated at {cut}");
        }
        let mut trailing = whole.clone();
        trailing.push(NIL_EXT);
        assert!(read(&trailing).is_none());
    }

    proptest! {
        #![proptest_config(super::proptest_common::config())]

        /// Garbage is refused, never a panic.
        #[test]
        fn garbage_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut data = vec![131, MAP_EXT, 0, 0, 0, 11];
            data.extend(bytes);
            let _ = read(&data);
        }

        /// A server scope with one byte changed is read or refused, never a panic; what is read
        /// has headers that can be read again where `read` left them.
        #[test]
        fn damaged_scopes_are_read_or_refused(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut data = encoded(&server_scope());
            let i = at.index(data.len());
            data[i] = byte;
            if let Some(values) = read(&data) {
                if let Value::Headers(start, count) = values[8] {
                    let mut cur = Cursor::new(&data, start);
                    for _ in 0..count {
                        prop_assert!(header(&mut cur).is_some());
                    }
                } else {
                    prop_assert!(false, "headers not read as headers");
                }
            }
        }
    }
}
