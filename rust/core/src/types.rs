//! `erlang.Pid` and `erlang.Ref`: Erlang identities carried through Python unchanged.
//!
//! Both hold the term's external-format bytes in the one canonical encoding of
//! [`etf::canonical_identity`], so they compare, hash and round-trip exactly (the same pid
//! comes back to Erlang) and serve as dict keys. They pickle (and so copy) as those bytes,
//! rebuilt by `erlang._native._pid_from_bytes` / `_ref_from_bytes`. Frozen classes: no
//! interior mutability, safe on any thread with or without the GIL.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::error::Result;
use crate::etf::{self, Cursor};

/// The module whose functions rebuild pickled pids and references.
const NATIVE: &str = "erlang._native";

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

    /// The pid that `etf` encodes; fails unless the bytes are exactly one encoded pid.
    pub fn parse(etf: &[u8]) -> etf::Result<Self> {
        let pid = Cursor::read_whole(etf, |cur, tag| cur.pid(tag))?;
        Ok(Pid {
            etf: pid.to_etf().into(),
        })
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

    /// Pickles (and copies) as `erlang._native._pid_from_bytes(self.to_bytes())`.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let rebuild = py.import(NATIVE)?.getattr(intern!(py, "_pid_from_bytes"))?;
        Ok((rebuild, (self.to_bytes(py),)))
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

    /// The reference that `etf` encodes; fails unless the bytes are exactly one encoded
    /// reference.
    pub fn parse(etf: &[u8]) -> etf::Result<Self> {
        let reference = Cursor::read_whole(etf, |cur, tag| cur.reference(tag))?;
        Ok(Ref {
            etf: reference.to_etf().into(),
        })
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

    /// Pickles (and copies) as `erlang._native._ref_from_bytes(self.to_bytes())`.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let rebuild = py.import(NATIVE)?.getattr(intern!(py, "_ref_from_bytes"))?;
        Ok((rebuild, (self.to_bytes(py),)))
    }
}

/// Rebuilds a pickled `erlang.Pid` from its external-format bytes; raises ValueError for
/// bytes that are not exactly one pid.
#[pyfunction]
#[pyo3(name = "_pid_from_bytes", signature = (data, /))]
fn pid_from_bytes(data: PyBackedBytes) -> Result<Pid> {
    Ok(Pid::parse(&data)?)
}

/// Rebuilds a pickled `erlang.Ref` from its external-format bytes; raises ValueError for
/// bytes that are not exactly one reference.
#[pyfunction]
#[pyo3(name = "_ref_from_bytes", signature = (data, /))]
fn ref_from_bytes(data: PyBackedBytes) -> Result<Ref> {
    Ok(Ref::parse(&data)?)
}

/// Adds the classes and their pickle rebuilders to `erlang._native`.
pub fn populate(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Pid>()?;
    module.add_class::<Ref>()?;
    module.add_function(wrap_pyfunction!(pid_from_bytes, module)?)?;
    module.add_function(wrap_pyfunction!(ref_from_bytes, module)?)?;
    Ok(())
}
