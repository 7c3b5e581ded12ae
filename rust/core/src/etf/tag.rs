//! The tags of the external term format (erts `external.h`; OTP's "External Term Format").
//! Constants, any thread.

/// First byte of every encoded term.
pub const VERSION: u8 = 131;
/// `term_to_binary(T, [compressed])`: zlib-compressed term.
pub const COMPRESSED: u8 = 80;
/// IEEE 754 double, big-endian.
pub const NEW_FLOAT_EXT: u8 = 70;
/// Bitstring whose last byte is partly used.
pub const BIT_BINARY_EXT: u8 = 77;
/// Atom cache reference (distribution only).
pub const ATOM_CACHE_REF: u8 = 82;
/// Pid with a 32-bit creation.
pub const NEW_PID_EXT: u8 = 88;
/// Port with a 32-bit creation.
pub const NEW_PORT_EXT: u8 = 89;
/// Reference with a 32-bit creation.
pub const NEWER_REFERENCE_EXT: u8 = 90;
/// Integer 0..=255.
pub const SMALL_INTEGER_EXT: u8 = 97;
/// Signed 32-bit integer.
pub const INTEGER_EXT: u8 = 98;
/// Float as 31 bytes of `%.20e` text (before OTP 17).
pub const FLOAT_EXT: u8 = 99;
/// Latin-1 atom, 16-bit length.
pub const ATOM_EXT: u8 = 100;
/// Reference with one id word and an 8-bit creation (before R9).
pub const REFERENCE_EXT: u8 = 101;
/// Port with an 8-bit creation.
pub const PORT_EXT: u8 = 102;
/// Pid with an 8-bit creation.
pub const PID_EXT: u8 = 103;
/// Tuple, 8-bit arity.
pub const SMALL_TUPLE_EXT: u8 = 104;
/// Tuple, 32-bit arity.
pub const LARGE_TUPLE_EXT: u8 = 105;
/// `[]`.
pub const NIL_EXT: u8 = 106;
/// List of integers 0..=255, as bytes.
pub const STRING_EXT: u8 = 107;
/// List: length, elements, tail.
pub const LIST_EXT: u8 = 108;
/// Binary.
pub const BINARY_EXT: u8 = 109;
/// Bignum, 8-bit length.
pub const SMALL_BIG_EXT: u8 = 110;
/// Bignum, 32-bit length.
pub const LARGE_BIG_EXT: u8 = 111;
/// Fun.
pub const NEW_FUN_EXT: u8 = 112;
/// `fun M:F/A`.
pub const EXPORT_EXT: u8 = 113;
/// Reference with an 8-bit creation.
pub const NEW_REFERENCE_EXT: u8 = 114;
/// Latin-1 atom, 8-bit length.
pub const SMALL_ATOM_EXT: u8 = 115;
/// Map.
pub const MAP_EXT: u8 = 116;
/// Fun (before R8).
pub const FUN_EXT: u8 = 117;
/// UTF-8 atom, 16-bit length.
pub const ATOM_UTF8_EXT: u8 = 118;
/// UTF-8 atom, 8-bit length.
pub const SMALL_ATOM_UTF8_EXT: u8 = 119;
/// Port with a 64-bit id.
pub const V4_PORT_EXT: u8 = 120;
/// Node-local encoding (`term_to_binary(T, [local])`).
pub const LOCAL_EXT: u8 = 121;
