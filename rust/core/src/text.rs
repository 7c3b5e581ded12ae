//! Bounding the texts that cross between Erlang and Python (error messages, tracebacks):
//! pure string work, no Python, any thread.

/// `text` cut to at most `cap` bytes (for a `cap` of at least 64) by replacing its middle
/// with a marker saying how much was left out. The head (where a Python traceback starts
/// with the innermost cause of a chain) and the tail (the final exception) stay. Cuts fall on
/// UTF-8 character boundaries.
pub fn elide(text: String, cap: usize) -> String {
    if text.len() <= cap {
        return text;
    }
    // Room for the marker, "\n... [N bytes elided] ...\n" with N up to 20 digits.
    let keep = cap.saturating_sub(48);
    let head_end = floor_boundary(&text, keep / 2);
    let tail_start = ceil_boundary(&text, text.len() - (keep - keep / 2));
    let elided = tail_start - head_end;
    format!(
        "{}\n... [{elided} bytes elided] ...\n{}",
        &text[..head_end],
        &text[tail_start..]
    )
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::elide;

    #[test]
    fn short_text_is_kept() {
        assert_eq!(elide("abc".to_owned(), 100), "abc");
        let exact = "y".repeat(100);
        assert_eq!(elide(exact.clone(), 100), exact);
    }

    #[test]
    fn long_text_keeps_head_and_tail_within_cap() {
        let text = format!("HEAD{}TAIL", "x".repeat(10_000));
        let out = elide(text, 1000);
        assert!(out.len() <= 1000, "{}", out.len());
        assert!(out.starts_with("HEAD") && out.ends_with("TAIL"));
        assert!(out.contains("[9056 bytes elided]"), "{out}");
    }

    #[test]
    fn cuts_fall_on_char_boundaries() {
        let text = "é".repeat(5000);
        for cap in [64, 100, 101, 102, 103, 1000] {
            let out = elide(text.clone(), cap);
            assert!(out.len() <= cap, "{cap}: {}", out.len());
            assert!(out.starts_with('é') && out.ends_with('é'));
        }
    }
}
