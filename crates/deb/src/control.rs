//! deb822 control data: paragraphs of `Field: value` lines, as Packages
//! indexes, Release files, `.deb` control files and dpkg's status file
//! write them.
//!
//! A paragraph ends at a blank line (one holding only spaces or tabs); a
//! line that starts with a space or tab continues the field above it; a line
//! starting with `#` is a comment (deb822 allows them). Field names are
//! matched case-insensitively, as dpkg and apt match them, and a paragraph
//! with the same field twice is refused (dpkg refuses it too), so that two
//! readers can never disagree about which value counts.

use std::fmt::Write as _;

/// Why control data could not be read. `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: &'static str },
    #[error("line {line}: field {field:?} appears twice in one paragraph")]
    Duplicate { line: usize, field: String },
}

/// One paragraph: its fields in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
    /// The line of the paragraph's first field, for error messages.
    pub line: usize,
}

impl Paragraph {
    /// The value of a field: the first line trimmed, continuation lines
    /// joined with `\n` (each keeps its leading space, as written).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Sets a field, replacing a value it had (in place) or appending it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .fields
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(f) => f.1 = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Inserts a field at a position (after the first `after` fields).
    pub fn insert(&mut self, after: usize, name: &str, value: &str) {
        let at = after.min(self.fields.len());
        self.fields.insert(at, (name.to_owned(), value.to_owned()));
    }

    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The paragraph as deb822 text, ending with a newline (no blank line).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (n, v) in &self.fields {
            let mut lines = v.split('\n');
            let first = lines.next().unwrap_or("");
            if first.is_empty() {
                let _ = writeln!(out, "{n}:");
            } else {
                let _ = writeln!(out, "{n}: {first}");
            }
            for l in lines {
                // A continuation line must start with a space; an empty one
                // is written as ` .`, deb822's blank continuation.
                if l.trim().is_empty() {
                    out.push_str(" .\n");
                } else if l.starts_with([' ', '\t']) {
                    out.push_str(l);
                    out.push('\n');
                } else {
                    out.push(' ');
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Parses every paragraph of `text`.
pub fn parse(text: &str) -> Result<Vec<Paragraph>, ControlError> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        if l.starts_with([' ', '\t']) {
            let Some(last) = cur.fields.last_mut() else {
                return Err(ControlError::Syntax {
                    line,
                    reason: "a continuation line comes before any field",
                });
            };
            last.1.push('\n');
            last.1.push_str(l);
            continue;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(ControlError::Syntax {
                line,
                reason: "a line is neither `Field: value` nor a continuation",
            });
        };
        if name.is_empty() || name.starts_with('-') || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ControlError::Syntax {
                line,
                reason: "a field name is empty or has a space or non-ASCII character",
            });
        }
        if cur.get(name).is_some() {
            return Err(ControlError::Duplicate {
                line,
                field: name.to_owned(),
            });
        }
        if cur.fields.is_empty() {
            cur.line = line;
        }
        cur.fields.push((name.to_owned(), value.trim().to_owned()));
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// The lines of a multi-line field (the continuation lines, trimmed, empty
/// ones dropped); for `SHA256` in a Release file or `Conffiles`.
pub fn lines(value: &str) -> impl Iterator<Item = &str> {
    value.split('\n').map(str::trim).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_continuations() {
        let text = "Package: a\nVersion: 1.0\nDescription: short\n long line\n .\n more\n\n\n# comment\npackage: b\r\nversion: 2\n";
        let ps = parse(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(
            ps[0].get("Description"),
            Some("short\n long line\n .\n more")
        );
        assert_eq!(ps[1].get("Package"), Some("b"));
        assert_eq!(ps[1].get("Version"), Some("2"));
        assert_eq!(ps[1].line, 10);
        let again = parse(&ps[0].to_text()).unwrap();
        assert_eq!(
            again[0],
            Paragraph {
                line: 1,
                ..ps[0].clone()
            }
        );
    }

    #[test]
    fn refused() {
        assert_eq!(
            parse(" x\n"),
            Err(ControlError::Syntax {
                line: 1,
                reason: "a continuation line comes before any field"
            })
        );
        assert!(matches!(
            parse("A: 1\nnocolon\n"),
            Err(ControlError::Syntax { line: 2, .. })
        ));
        assert!(matches!(
            parse("A: 1\na: 2\n"),
            Err(ControlError::Duplicate { line: 2, .. })
        ));
        assert!(matches!(parse(": x\n"), Err(ControlError::Syntax { .. })));
    }

    #[test]
    fn multi_line_field() {
        let ps = parse("SHA256:\n abc 12 main/x\n def 3 main/y\n").unwrap();
        let l: Vec<_> = lines(ps[0].get("sha256").unwrap()).collect();
        assert_eq!(l, ["abc 12 main/x", "def 3 main/y"]);
    }
}
