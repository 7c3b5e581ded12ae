//! The one term printer: ETF bytes in Erlang syntax (`#{<<"a">> => 1}`, `{ok,[1,2]}`,
//! `'hello world'`), for test failures and reprs. Any thread.

use std::fmt::Write as _;

use super::bignum::{decimal, trim_magnitude};
use super::error::{Error, Result};
use super::index::{Index, Slot, Term};

/// Bignums longer than this many bytes print in hex (decimal conversion is quadratic).
const DECIMAL_LIMIT: usize = 512;

/// Prints ETF bytes in Erlang syntax. Lists print element by element (as `~w` does, even when
/// printable); pids and references print as `erlang.Pid` and `erlang.Ref` show them. Nesting
/// deeper than `max_depth` is [`Error::TooDeep`].
pub fn format(data: &[u8], max_depth: usize) -> Result<String> {
    let index = Index::new(data)?;
    let mut out = String::new();
    print(&index, index.root(), &mut out, 0, max_depth)?;
    Ok(out)
}

fn print(
    index: &Index<'_>,
    slot: Slot,
    out: &mut String,
    depth: usize,
    max_depth: usize,
) -> Result<()> {
    if depth > max_depth {
        return Err(Error::TooDeep(max_depth));
    }
    let seq = |out: &mut String, items: &[Slot], sep: char| -> Result<()> {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            print(index, *item, out, depth + 1, max_depth)?;
        }
        Ok(())
    };
    match index.term(slot)? {
        Term::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Term::Big {
            negative,
            magnitude_le,
        } => print_big(out, negative, trim_magnitude(magnitude_le)),
        Term::Float(f) => print_float(out, f),
        Term::Atom(name) => print_atom(out, &name),
        Term::Binary(bytes) => print_binary(out, bytes, None),
        Term::BitBinary { bytes, bits } => print_binary(out, bytes, Some(bits)),
        Term::List { items, tail } => {
            out.push('[');
            seq(out, &items, ',')?;
            if let Some(tail) = tail {
                out.push('|');
                print(index, tail, out, depth + 1, max_depth)?;
            }
            out.push(']');
        }
        Term::Tuple(items) => {
            out.push('{');
            seq(out, &items, ',')?;
            out.push('}');
        }
        Term::Map(pairs) => {
            out.push_str("#{");
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                print(index, k, out, depth + 1, max_depth)?;
                out.push_str(" => ");
                print(index, v, out, depth + 1, max_depth)?;
            }
            out.push('}');
        }
        Term::Pid(pid) => {
            let _ = write!(out, "{pid}");
        }
        Term::Ref(reference) => {
            let _ = write!(out, "{reference}");
        }
        Term::Port { node, id } => {
            let _ = write!(out, "#Port<{id}>@{node}");
        }
        Term::Export {
            module,
            function,
            arity,
        } => {
            out.push_str("fun ");
            print(index, module, out, depth + 1, max_depth)?;
            out.push(':');
            print(index, function, out, depth + 1, max_depth)?;
            out.push('/');
            print(index, arity, out, depth + 1, max_depth)?;
        }
        Term::Fun => out.push_str("#Fun<>"),
    }
    Ok(())
}

fn print_big(out: &mut String, negative: bool, magnitude_le: &[u8]) {
    if negative && !magnitude_le.is_empty() {
        out.push('-');
    }
    if magnitude_le.is_empty() {
        out.push('0');
    } else if magnitude_le.len() > DECIMAL_LIMIT {
        out.push_str("16#");
        for (i, byte) in magnitude_le.iter().rev().enumerate() {
            if i == 0 {
                let _ = write!(out, "{byte:X}");
            } else {
                let _ = write!(out, "{byte:02X}");
            }
        }
    } else {
        out.push_str(&decimal(magnitude_le));
    }
}

/// A float as Erlang's `~w` (`float_to_list(F, [short])`) prints it: the shortest digits that
/// read back exactly, in plain or scientific notation, whichever is shorter (plain on a tie),
/// and always scientific from 2^53 up: `100.0`, `1.0e3`, `1.0e-5`, `9.007199254740992e15`.
fn print_float(out: &mut String, value: f64) {
    const TWO_POW_53: f64 = 9_007_199_254_740_992.0;
    // `{:e}` gives the shortest round-trip digits: "1.2345e17", "1e-5", "-0e0".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let (first, rest) = digits.split_at(1);
    let scientific = format!(
        "{sign}{first}.{}e{exp}",
        if rest.is_empty() { "0" } else { rest }
    );
    let point = exp + 1; // digits before the decimal point
    let plain = if point <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else if point as usize >= digits.len() {
        let zeros = "0".repeat(point as usize - digits.len());
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    };
    out.push_str(
        if value.abs() >= TWO_POW_53 || scientific.len() < plain.len() {
            &scientific
        } else {
            &plain
        },
    );
}

const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
    "rem", "try", "when", "xor",
];

fn print_atom(out: &mut String, name: &str) {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        && !RESERVED.contains(&name);
    if bare {
        out.push_str(name);
        return;
    }
    out.push('\'');
    for c in name.chars() {
        push_escaped(out, c, '\'');
    }
    out.push('\'');
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

fn print_binary(out: &mut String, bytes: &[u8], bits: Option<u8>) {
    let text = match (bits, std::str::from_utf8(bytes)) {
        (None, Ok(text)) if !text.is_empty() && text.chars().all(printable) => Some(text),
        _ => None,
    };
    out.push_str("<<");
    if let Some(text) = text {
        out.push('"');
        for c in text.chars() {
            push_escaped(out, c, '"');
        }
        out.push('"');
        if !text.is_ascii() {
            out.push_str("/utf8");
        }
    } else {
        let last = bytes.len().saturating_sub(1);
        for (i, byte) in bytes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match bits {
                Some(bits) if i == last && bits < 8 => {
                    let _ = write!(out, "{}:{bits}", byte >> (8 - bits));
                }
                _ => {
                    let _ = write!(out, "{byte}");
                }
            }
        }
    }
    out.push_str(">>");
}

fn printable(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t' | '\r')
}
