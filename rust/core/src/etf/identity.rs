//! Pids and references: read from any of their encodings, written in the one canonical
//! encoding (`NEW_PID_EXT` / `NEWER_REFERENCE_EXT` with a UTF-8 node atom, what OTP 26 writes)
//! so that two encodings of one pid compare equal, and printed as `<id.serial>@node` and
//! `#Ref<...>@node` (the one printer of both: `erlang.Pid.__repr__` and the term printer use
//! it). Any thread.

use std::borrow::Cow;
use std::fmt;

use super::cursor::Cursor;
use super::error::Result;
use super::put::put_atom;
use super::tag::{
    NEWER_REFERENCE_EXT, NEW_PID_EXT, NEW_REFERENCE_EXT, PID_EXT, REFERENCE_EXT, VERSION,
};

/// The fields of a pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidParts<'a> {
    /// The node's name.
    pub node: Cow<'a, str>,
    /// Process number.
    pub id: u32,
    /// Serial number.
    pub serial: u32,
    /// The node's incarnation.
    pub creation: u32,
}

/// The fields of a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefParts<'a> {
    /// The node's name.
    pub node: Cow<'a, str>,
    /// The node's incarnation.
    pub creation: u32,
    /// The id words, as encoded (the first is the least significant); 1 to 5 of them.
    pub ids: Vec<u32>,
}

impl<'a> Cursor<'a> {
    /// A pid after its tag (`PID_EXT` or `NEW_PID_EXT`).
    pub fn pid(&mut self, tag: u8) -> Result<PidParts<'a>> {
        if tag != PID_EXT && tag != NEW_PID_EXT {
            return Err(self.bad_at(self.pos().saturating_sub(1), "expected a pid"));
        }
        let node = self.atom()?;
        let id = self.u32()?;
        let serial = self.u32()?;
        let creation = if tag == PID_EXT {
            u32::from(self.u8()?)
        } else {
            self.u32()?
        };
        Ok(PidParts {
            node,
            id,
            serial,
            creation,
        })
    }

    /// A reference after its tag (`REFERENCE_EXT`, `NEW_REFERENCE_EXT` or
    /// `NEWER_REFERENCE_EXT`).
    pub fn reference(&mut self, tag: u8) -> Result<RefParts<'a>> {
        let at = self.pos();
        let len = match tag {
            REFERENCE_EXT => 1,
            NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => self.u16()?,
            _ => return Err(self.bad_at(at.saturating_sub(1), "expected a reference")),
        };
        if !(1..=5).contains(&len) {
            return Err(self.bad_at(at, "reference with a bad number of id words"));
        }
        let node = self.atom()?;
        let creation = match tag {
            NEWER_REFERENCE_EXT => self.u32()?,
            NEW_REFERENCE_EXT => u32::from(self.u8()?),
            _ => 0,
        };
        let mut ids = Vec::with_capacity(len);
        for _ in 0..len {
            ids.push(self.u32()?);
        }
        // REFERENCE_EXT puts its 8-bit creation after the id.
        let creation = if tag == REFERENCE_EXT {
            u32::from(self.u8()?)
        } else {
            creation
        };
        Ok(RefParts {
            node,
            creation,
            ids,
        })
    }
}

impl PidParts<'_> {
    /// The canonical encoding (with the version byte).
    pub fn to_etf(&self) -> Vec<u8> {
        let mut out = vec![VERSION, NEW_PID_EXT];
        put_atom(&mut out, &self.node);
        for word in [self.id, self.serial, self.creation] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out
    }
}

impl RefParts<'_> {
    /// The canonical encoding (with the version byte).
    pub fn to_etf(&self) -> Vec<u8> {
        let mut out = vec![VERSION, NEWER_REFERENCE_EXT];
        let len = u16::try_from(self.ids.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        put_atom(&mut out, &self.node);
        out.extend_from_slice(&self.creation.to_be_bytes());
        for id in &self.ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        out
    }
}

/// `<85.0>@nonode@nohost`: id and serial, then the node (Erlang's `<0.85.0>` starts with a
/// node number that means something only on the node printing it).
impl fmt::Display for PidParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}>@{}", self.id, self.serial, self.node)
    }
}

/// `#Ref<2.1>@node`: the id words most significant first, as Erlang prints them.
impl fmt::Display for RefParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#Ref<")?;
        for (i, id) in self.ids.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{id}")?;
        }
        write!(f, ">@{}", self.node)
    }
}

/// The same pid or reference in the one encoding this crate uses for identities, so two
/// encodings of one pid or reference compare equal.
pub fn canonical_identity(etf: &[u8]) -> Result<Vec<u8>> {
    Cursor::read_whole(etf, |cur, tag| match tag {
        PID_EXT | NEW_PID_EXT => cur.pid(tag).map(|p| p.to_etf()),
        REFERENCE_EXT | NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
            cur.reference(tag).map(|r| r.to_etf())
        }
        _ => Err(cur.bad_at(1, "expected a pid or a reference")),
    })
}

/// The text of an encoded pid, e.g. `<85.0>@nonode@nohost`.
pub fn describe_pid(etf: &[u8]) -> Result<String> {
    Cursor::read_whole(etf, |cur, tag| cur.pid(tag)).map(|p| p.to_string())
}

/// The text of an encoded reference, e.g. `#Ref<70887801.3314548737.205124>@nonode@nohost`.
pub fn describe_ref(etf: &[u8]) -> Result<String> {
    Cursor::read_whole(etf, |cur, tag| cur.reference(tag)).map(|r| r.to_string())
}

/// True when the bytes start like an encoded pid (a cheap check of the tag only).
pub fn is_pid(etf: &[u8]) -> bool {
    matches!(etf, [VERSION, NEW_PID_EXT | PID_EXT, ..])
}

/// True when the bytes start like an encoded reference of a current node (a cheap check of the
/// tag only).
pub fn is_ref(etf: &[u8]) -> bool {
    matches!(etf, [VERSION, NEWER_REFERENCE_EXT | NEW_REFERENCE_EXT, ..])
}
