//! `erlang.Pid` and `erlang.Ref`: Erlang identities carried through Python unchanged.
//!
//! Both hold the term's external-format bytes, so they compare, hash and round-trip exactly
//! (the same pid comes back to Erlang), and pickle-free code can use them as dict keys. Frozen
//! classes: no interior mutability, safe on any thread with or without the GIL.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::etf;

/// An Erlang process identifier.
#[pyclass(frozen, eq, hash, skip_from_py_object, module = "erlang", name = "Pid")]
#[derive(PartialEq, Eq, Hash)]
pub struct Pid {
    etf: Box<[u8]>,
}

impl Pid {
    /// Wraps the external-format bytes of a pid, in the one encoding used for identities
    /// ([`etf::canonical_identity`]): the same pid read from the BEAM (OTP 25 writes Latin-1
    /// node atoms) and from `binary_to_term` (any encoding) compares equal.
    pub fn from_etf(etf: &[u8]) -> Self {
        let etf = etf::canonical_identity(etf).unwrap_or_else(|_| etf.to_vec());
        Pid { etf: etf.into() }
    }

    /// The external-format bytes of the pid.
    pub fn etf(&self) -> &[u8] {
        &self.etf
    }
}

#[pymethods]
impl Pid {
    fn __repr__(&self) -> String {
        match etf::describe_pid(&self.etf) {
            Ok(text) => format!("erlang.Pid({text})"),
            Err(_) => "erlang.Pid(?)".to_owned(),
        }
    }

    /// The pid in Erlang's external term format (`term_to_binary/1`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.etf)
    }
}

/// An Erlang reference.
#[pyclass(frozen, eq, hash, skip_from_py_object, module = "erlang", name = "Ref")]
#[derive(PartialEq, Eq, Hash)]
pub struct Ref {
    etf: Box<[u8]>,
}

impl Ref {
    /// Wraps the external-format bytes of a reference, in the one encoding used for
    /// identities ([`etf::canonical_identity`]), as [`Pid::from_etf`] does.
    pub fn from_etf(etf: &[u8]) -> Self {
        let etf = etf::canonical_identity(etf).unwrap_or_else(|_| etf.to_vec());
        Ref { etf: etf.into() }
    }

    /// The external-format bytes of the reference.
    pub fn etf(&self) -> &[u8] {
        &self.etf
    }
}

#[pymethods]
impl Ref {
    fn __repr__(&self) -> String {
        match etf::describe_ref(&self.etf) {
            Ok(text) => format!("erlang.Ref({text})"),
            Err(_) => "erlang.Ref(?)".to_owned(),
        }
    }

    /// The reference in Erlang's external term format (`term_to_binary/1`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.etf)
    }
}
