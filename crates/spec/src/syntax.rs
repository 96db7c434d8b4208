//! KDL syntax errors, in our voice: the `kdl` parser's diagnostics turned
//! into [`SpecDiagnostic`]s, with the cascades trimmed and the common
//! mistakes of a spec (an unquoted path, a bad number) said plainly.
//!
//! The parser recovers from an error by skipping ahead, so one mistake often
//! comes with follow-on complaints about braces and the end of the document.
//! Those are dropped when a more specific error is present: the user fixes
//! that one first, and a real brace problem is still reported on the next run.

use kdl::KdlDiagnostic;
use miette::SourceSpan;

use crate::SpecDiagnostic;

const NO_CLOSING_BRACE: &str = "no closing '}' for child block";
const CLOSING_NOT_FOUND: &str = "closing '}' was not found after nodes";
const EXPECTED_END: &str = "expected end of document";

/// The `kdl` parser's diagnostics for `src`, refined.
pub(crate) fn errors(src: &str, kdl: &[KdlDiagnostic]) -> Vec<SpecDiagnostic> {
    let mut items: Vec<SpecDiagnostic> = kdl.iter().map(|d| refine(src, convert(d))).collect();
    if items.is_empty() {
        items.push(SpecDiagnostic::new(
            "invalid KDL",
            SourceSpan::new(0.into(), 0),
            "here",
        ));
    }
    let structural = |d: &SpecDiagnostic| {
        [NO_CLOSING_BRACE, CLOSING_NOT_FOUND, EXPECTED_END].contains(&d.message.as_str())
    };
    if items.iter().any(|d| !structural(d)) {
        items.retain(|d| !structural(d));
    } else if items.iter().any(|d| d.message == NO_CLOSING_BRACE) {
        // Both say the same thing about the same block.
        items.retain(|d| d.message != CLOSING_NOT_FOUND);
    }
    for d in &mut items {
        reword_structural(src, d);
    }
    items.sort_by_key(|d| d.span.offset());
    // Several parser errors often describe one token.
    items.dedup_by_key(|d| d.span.offset());
    items
}

/// One diagnostic as the parser wrote it, lowercased, without a final period.
fn convert(d: &KdlDiagnostic) -> SpecDiagnostic {
    let message = d
        .message
        .as_deref()
        .unwrap_or("invalid KDL")
        .trim_end_matches('.');
    let mut chars = message.chars();
    let message = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "invalid KDL".to_owned(),
    };
    SpecDiagnostic {
        message,
        span: d.span,
        label: d.label.clone().unwrap_or_else(|| "here".to_owned()),
        help: d.help.clone(),
    }
}

fn end(span: SourceSpan) -> usize {
    span.offset().saturating_add(span.len())
}

/// Characters that end a bare token in KDL.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || ";{}()\"=".contains(c)
}

/// The bare token that starts at byte `start`.
fn token_at(src: &str, start: usize) -> Option<(usize, &str)> {
    let rest = src.get(start..)?;
    let len = rest
        .find(|c: char| c.is_whitespace() || ";{}()\"".contains(c))
        .unwrap_or(rest.len());
    Some((start, rest.get(..len)?))
}

/// The whitespace-separated word that ends at byte `end_at` (extended to its end).
fn word_ending_at(src: &str, end_at: usize) -> Option<(usize, &str)> {
    let before = src.get(..end_at)?;
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let rest = src.get(end_at..)?;
    let more = rest
        .find(|c: char| c.is_whitespace() || ";{}".contains(c))
        .unwrap_or(rest.len());
    Some((start, src.get(start..end_at + more)?))
}

/// Say the common mistakes plainly; leave the rest as the parser put it.
fn refine(src: &str, d: SpecDiagnostic) -> SpecDiagnostic {
    if let Some(path) = unquoted_path(src, d.span) {
        return path;
    }
    let multi_line = src
        .get(d.span.offset()..end(d.span))
        .is_some_and(|t| t.trim_end().contains('\n'));
    let word = if (multi_line && d.message != CLOSING_NOT_FOUND)
        || d.message == "expected property value"
    {
        word_ending_at(src, end(d.span))
    } else if [
        "number",
        "float",
        "integer",
        "octal",
        "hexadecimal",
        "binary",
    ]
    .iter()
    .any(|w| d.message.contains(w))
    {
        token_at(src, d.span.offset())
    } else {
        None
    };
    word.and_then(|(start, word)| bad_number(start, word))
        .unwrap_or(d)
}

/// `cmd /bin/bash`: KDL has no bare strings with `/` in them (a `/` starts a
/// comment), and the parser's own message about it is confusing.
fn unquoted_path(src: &str, span: SourceSpan) -> Option<SpecDiagnostic> {
    let at = span.offset();
    let here = src.get(at..)?.chars().next()?;
    let start = if here == '/' {
        at
    } else if src.get(..at)?.ends_with('/') && !ends_token(here) {
        at - 1
    } else {
        return None;
    };
    // A path is a value: it follows a space or `=`, and `//`, `/*`, `/-` are comments.
    let before_ok = src
        .get(..start)?
        .chars()
        .next_back()
        .is_some_and(|c| c == ' ' || c == '\t' || c == '=');
    let next = src.get(start + 1..)?.chars().next()?;
    if !before_ok || ends_token(next) || "/*-".contains(next) {
        return None;
    }
    let (start, token) = token_at(src, start)?;
    Some(
        SpecDiagnostic::new(
            "paths must be quoted",
            SourceSpan::new(start.into(), token.len()),
            "a bare `/` starts a KDL comment",
        )
        .with_help(format!("quote it: \"{token}\"")),
    )
}

/// A number the parser could not read (`mode=0o789`, `1.`), in `word` at
/// byte `start`. The parser's span for it may cover the whole node or more,
/// so the caller finds the word where it stopped.
fn bad_number(start: usize, word: &str) -> Option<SpecDiagnostic> {
    let (value_start, value) = match word.split_once('=') {
        Some((key, value)) => (start + key.len() + 1, value),
        None => (start, word),
    };
    let digits = value.trim_start_matches(['+', '-']);
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(
        SpecDiagnostic::new(
            format!("invalid number `{value}`"),
            SourceSpan::new(value_start.into(), value.len()),
            "not a number",
        )
        .with_help(
            "numbers are decimal (42), octal with digits 0 to 7 (0o644), hex (0x1f), binary (0b101) or floats (1.5)",
        ),
    )
}

/// The brace and end-of-document errors that remain, said plainly.
fn reword_structural(src: &str, d: &mut SpecDiagnostic) {
    if d.message == NO_CLOSING_BRACE {
        d.message = "unclosed block".to_owned();
        d.label = "this `{` has no `}`".to_owned();
        d.help = Some("close every block with `}`".to_owned());
    } else if d.message == EXPECTED_END
        && src
            .get(d.span.offset()..)
            .is_some_and(|t| t.starts_with('}'))
    {
        d.message = "unexpected `}`".to_owned();
        d.label = "no block to close".to_owned();
        d.help = Some("remove it, or check the `{` before it".to_owned());
    }
}
