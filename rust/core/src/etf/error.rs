//! The codec's own error type: it knows nothing of Python, and the crate turns it into its
//! [`crate::Error`] in one place (`From<etf::Error>` in `error.rs`). Plain data, any thread.

/// Why bytes could not be read as, or a term could not be written in, the external term
/// format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not one well-formed term.
    #[error("invalid external term format at byte {at}: {what}")]
    Malformed {
        /// Offset of the offending byte.
        at: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// The term nests deeper than the bound given to the function.
    #[error("term nests deeper than {0} levels")]
    TooDeep(usize),
    /// Two keys of a map being written are the same term.
    #[error("two map keys are the same term")]
    DuplicateKey,
    /// A value the format cannot hold, or not the kind of term the caller said it was (the
    /// bytes given as a pid hold a reference).
    #[error("cannot write the external term: {0}")]
    Invalid(&'static str),
}

/// Result alias of the codec.
pub type Result<T> = std::result::Result<T, Error>;
