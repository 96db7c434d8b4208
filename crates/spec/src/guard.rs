//! Checks on a spec's bytes before the KDL parser sees them: that they are
//! UTF-8 text, and that blocks are not nested deeper than any spec needs.
//!
//! Why before: the `kdl` parser descends one stack frame chain per nested
//! `{`, so a file of 2,000 opening braces overflowed the stack and aborted
//! strata (exit 134) instead of reporting an error; and a binary file given
//! as a spec was an I/O error without a position (exit 1). Both are now
//! diagnostics with a line and column, like any other mistake in a spec.

use std::path::Path;

use miette::SourceSpan;

use crate::{Diagnostics, ReadError, SpecDiagnostic};

/// How deep `{` blocks may nest. A spec uses three levels (`image`,
/// `layer`, operations) and the parser needs a few frames per level; this
/// is far above the first and far below what exhausts a thread's stack.
pub const MAX_DEPTH: usize = 64;

/// The text of the spec file `path`: its bytes if they are UTF-8, else a
/// diagnostic at the first byte that is not (the rest shown lossily).
pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bad = e.as_bytes()[at];
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // The lossy text holds the valid prefix unchanged: `at` is a
            // character boundary in it, and the replacement character is 3 bytes.
            let d = SpecDiagnostic::new(
                format!("the spec is not UTF-8 text: byte 0x{bad:02x} cannot start a character"),
                SourceSpan::new(at.into(), '\u{fffd}'.len_utf8()),
                "not text",
            )
            .with_help("a spec is a KDL text file in UTF-8; is this the file you meant?");
            Err(ReadError::Invalid(Box::new(Diagnostics::single(
                &path.display().to_string(),
                &text,
                d,
            ))))
        }
    }
}

/// A diagnostic at the `{` that opens a block nested deeper than
/// [`MAX_DEPTH`], if one does. Braces inside strings and comments do not
/// count; the scan is linear and allocates nothing.
pub(crate) fn too_deep(text: &str) -> Option<SpecDiagnostic> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_string(b, i, 0),
            b'#' => {
                // A raw string: `#"..."#`, `##"..."##`.
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    i = skip_string(b, i + hashes, hashes);
                } else {
                    i += hashes;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest in KDL.
                let mut level = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        level += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        level -= 1;
                        i += 2;
                        if level == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(
                        SpecDiagnostic::new(
                            format!("blocks are nested more than {MAX_DEPTH} deep"),
                            SourceSpan::new(i.into(), 1),
                            "too deep",
                        )
                        .with_help(
                            "a spec nests `image`, `layer` and its operations: three levels",
                        ),
                    );
                }
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The index after the string whose opening quote is at `i`: a quoted
/// string with backslash escapes (`hashes` 0), or a raw string closed by a
/// quote and `hashes` hashes. Multi-line strings (`"""`) close the same way.
fn skip_string(b: &[u8], i: usize, hashes: usize) -> usize {
    let triple = b[i..].starts_with(b"\"\"\"");
    let open = if triple { 3 } else { 1 };
    let mut j = i + open;
    while j < b.len() {
        if hashes == 0 && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == b'"' {
            let quotes = if triple { 3 } else { 1 };
            let closes = b[j..].starts_with(&b"\"\"\""[..quotes])
                && b[j + quotes..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == b'#')
                    .count()
                    == hashes;
            if closes {
                return j + quotes + hashes;
            }
        }
        j += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_blocks_not_braces_in_strings_or_comments() {
        let ok = format!(
            "image a {{ layer l {{ file \"/x\" \"{}\" }} }}\n// {}\n/* {} /* {} */ */\nx #\"{}\"#\n",
            "{".repeat(500),
            "{".repeat(500),
            "{".repeat(500),
            "{".repeat(500),
            "{\"".repeat(500)
        );
        assert!(too_deep(&ok).is_none());
        let deep = "a {".repeat(2000);
        let d = too_deep(&deep).expect("too deep");
        assert_eq!(d.span.offset(), 2 + 3 * MAX_DEPTH);
        assert!(too_deep(&"a { }".repeat(10_000)).is_none());
    }
}
