//! Values attached to events that leave Python without waiting (log record metadata, span
//! attributes): converted by the normal rules, except that a value with no Erlang term travels
//! as its `repr()`. An opaque handle would keep the Python object alive for as long as Erlang
//! keeps the event (a trace store holds thousands), and an event must never fail because of
//! one odd value.
//!
//! Runs on whichever thread holds the GIL (executors, `threading.Thread`s, asyncio loops).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::convert::{self, Options, TermBuilder};
use crate::error::Result;

/// A [`TermBuilder`] that turns objects with no Erlang term into their `repr()` (a binary)
/// instead of handles; everything else goes to `inner`.
pub struct ReprObjects<'py, B> {
    /// The builder of the world the terms go to.
    pub inner: B,
    py: Python<'py>,
}

impl<'py, B: TermBuilder> ReprObjects<'py, B> {
    /// Wraps `inner`.
    pub fn new(py: Python<'py>, inner: B) -> Self {
        ReprObjects { inner, py }
    }
}

/// `repr(value)`, or a fixed text when `__repr__` itself fails.
pub fn repr_of(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from("<unrepresentable>"))
}

impl<B: TermBuilder> TermBuilder for ReprObjects<'_, B> {
    type Term = B::Term;

    fn atom(&mut self, name: &'static str) -> B::Term {
        self.inner.atom(name)
    }
    fn int(&mut self, value: i64) -> B::Term {
        self.inner.int(value)
    }
    fn bigint(&mut self, negative: bool, magnitude_le: &[u8]) -> Result<B::Term> {
        self.inner.bigint(negative, magnitude_le)
    }
    fn float(&mut self, value: f64) -> B::Term {
        self.inner.float(value)
    }
    fn binary(&mut self, bytes: &[u8]) -> B::Term {
        self.inner.binary(bytes)
    }
    fn list(&mut self, items: Vec<B::Term>) -> B::Term {
        self.inner.list(items)
    }
    fn tuple(&mut self, items: Vec<B::Term>) -> B::Term {
        self.inner.tuple(items)
    }
    fn map(&mut self, pairs: Vec<(B::Term, B::Term)>) -> Result<B::Term> {
        self.inner.map(pairs)
    }
    fn begin_map(&mut self, len: usize) -> Result<()> {
        self.inner.begin_map(len)
    }
    fn float_list(&mut self, values: &[f64]) -> B::Term {
        self.inner.float_list(values)
    }
    fn int_list(&mut self, values: &[i64]) -> B::Term {
        self.inner.int_list(values)
    }
    fn known_key(&mut self, key: &Bound<'_, PyString>) -> Option<B::Term> {
        self.inner.known_key(key)
    }
    fn remember_key(&mut self, key: &Bound<'_, PyString>, term: &B::Term) {
        self.inner.remember_key(key, term)
    }
    fn pid(&mut self, etf: &[u8]) -> Result<B::Term> {
        self.inner.pid(etf)
    }
    fn reference(&mut self, etf: &[u8]) -> Result<B::Term> {
        self.inner.reference(etf)
    }
    fn object(&mut self, object: Py<PyAny>) -> Result<B::Term> {
        let text = repr_of(object.bind(self.py));
        Ok(self.inner.binary(text.as_bytes()))
    }
}

/// A dict with string keys as a map with binary keys. A key that is not a string (or not
/// UTF-8) is skipped; a value that fails to convert (too deep, a lone surrogate, ...) is sent
/// as its `repr()`. Fails only if the builder cannot make the map.
pub fn attrs_to_term<B: TermBuilder>(
    builder: &mut ReprObjects<'_, B>,
    attrs: &Bound<'_, PyDict>,
    opts: &Options,
) -> Result<B::Term> {
    let mut pairs = Vec::with_capacity(attrs.len());
    for (key, value) in attrs.iter() {
        let Some(key) = key.cast::<PyString>().ok().and_then(|k| k.to_str().ok()) else {
            continue;
        };
        let key = builder.binary(key.as_bytes());
        let value = match convert::from_py(builder, &value, opts) {
            Ok(term) => term,
            Err(_) => builder.binary(repr_of(&value).as_bytes()),
        };
        pairs.push((key, value));
    }
    builder.map(pairs)
}
