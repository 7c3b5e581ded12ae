//! The crate's one error type, turned into a Python exception in exactly one place. The byte
//! codec's errors ([`crate::etf::Error`]) become this type in one place too.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::PyErr;

use crate::etf;

/// Why a conversion between an Erlang term and a Python object failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value nests deeper than the configured bound (this also catches cycles).
    #[error("value nests deeper than {0} levels (cyclic, or raise max_depth)")]
    TooDeep(usize),
    /// An Erlang list whose last tail is not `[]`.
    #[error("cannot convert an improper Erlang list to Python")]
    ImproperList,
    /// An Erlang term with no Python equivalent.
    #[error("cannot convert an Erlang {0} to Python")]
    Unsupported(&'static str),
    /// Two Python dict keys became the same Erlang term.
    #[error("two dict keys convert to the same Erlang term")]
    DuplicateKey,
    /// Two keys of an Erlang map became the same Python dict key (`a` and `<<"a">>`, or `1`,
    /// `1.0` and `true`): one entry would be lost.
    #[error(
        "two keys of an Erlang map become the same Python dict key ({0}); an entry would be lost"
    )]
    DuplicateMapKey(String),
    /// A keyword-argument key that is not an atom, binary or string.
    #[error("keyword argument names must be atoms, binaries or strings")]
    BadKwargKey,
    /// An element of a keyword-argument list that is not a `{Name, Value}` pair with an atom
    /// name (Elixir's keyword lists, Erlang's proplists of pairs).
    #[error("a keyword argument list holds {{Name, Value}} pairs whose Name is an atom")]
    BadKwargList,
    /// A name given twice in a keyword-argument list (Python's "got multiple values for
    /// keyword argument").
    #[error("keyword argument '{0}' is given more than once")]
    DuplicateKwarg(String),
    /// A `{py_array, Dtype, Shape, Data}` term that does not describe an array.
    #[error("malformed py_array: {0}")]
    BadArray(String),
    /// A pid, reference or integer that cannot become a term: its bytes hold another kind of
    /// term (a reference given as a pid), or it is too large for the external term format.
    #[error("malformed external term: {0}")]
    BadExternalTerm(&'static str),
    /// Bytes given to `binary_to_term` are not one well-formed term in the external format.
    #[error("invalid external term format at byte {at}: {what}")]
    BadEtf {
        /// Offset of the offending byte.
        at: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// A Python object with no Erlang equivalent, where no handle can stand for it (the
    /// external term format outside the mocked BEAM).
    #[error(
        "cannot encode '{0}' in the external term format: it has no Erlang equivalent \
         (docs/type-conversion.md)"
    )]
    NotEncodable(String),
    /// A Python exception raised while converting (for example by `str.encode`).
    #[error(transparent)]
    Python(#[from] PyErr),
}

impl Error {
    /// The builtin exception class this error becomes (`ValueError` or `TypeError`); `None`
    /// for [`Error::Python`], which is already an exception. Code that cannot make pyo3
    /// exceptions (an own-GIL sub-interpreter) reports the same class by this name.
    pub fn exception_name(&self) -> Option<&'static str> {
        match self {
            Error::Python(_) => None,
            Error::TooDeep(_)
            | Error::DuplicateKey
            | Error::DuplicateMapKey(_)
            | Error::BadArray(_)
            | Error::BadEtf { .. } => Some("ValueError"),
            Error::ImproperList
            | Error::Unsupported(_)
            | Error::BadKwargKey
            | Error::BadKwargList
            | Error::DuplicateKwarg(_)
            | Error::BadExternalTerm(_)
            | Error::NotEncodable(_) => Some("TypeError"),
        }
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err.exception_name() {
            None => match err {
                Error::Python(e) => e,
                other => PyTypeError::new_err(other.to_string()),
            },
            Some("ValueError") => PyValueError::new_err(err.to_string()),
            Some(_) => PyTypeError::new_err(err.to_string()),
        }
    }
}

impl From<etf::Error> for Error {
    fn from(err: etf::Error) -> Error {
        match err {
            etf::Error::Malformed { at, what } => Error::BadEtf { at, what },
            etf::Error::TooDeep(max_depth) => Error::TooDeep(max_depth),
            etf::Error::DuplicateKey => Error::DuplicateKey,
            etf::Error::Invalid(what) => Error::BadExternalTerm(what),
        }
    }
}

/// A codec error raised in Python goes through [`Error`], so the mapping above stays the only
/// one.
impl From<etf::Error> for PyErr {
    fn from(err: etf::Error) -> PyErr {
        Error::from(err).into()
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
