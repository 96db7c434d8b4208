//! `exclude=` patterns of a `copy`/`add` of a directory: what a
//! `.dockerignore` does, with Docker's own semantics, so that a pattern
//! means in a spec what it means to `docker build`.
//!
//! A pattern is matched against an entry's path relative to the copied
//! directory (`/`-separated, no leading `/`). Each is turned into a regular
//! expression exactly as Docker's `patternmatcher` turns it (Go's
//! `filepath.Match` syntax plus `**`): `*` is any run of characters but
//! `/`, `?` one character but `/`, `[...]` a class, `\x` the character
//! `x`, `**` any number of directories (`**/` also none), and a `**` at the
//! end anything. The pattern is cleaned first as Go's `filepath.Clean`
//! cleans it, without its leading `/`. An entry is excluded when the last
//! pattern that matches it, or one of its parent directories, is not a
//! `!` pattern; a `!` pattern re-includes what an earlier one excluded.
//! The `regex` crate matches, as Go's `regexp` does for Docker.

use regex::bytes::Regex;

/// The compiled patterns of one `exclude=`.
#[derive(Debug, Clone)]
pub struct Excludes {
    patterns: Vec<Pattern>,
    /// The patterns as written, for the cache key.
    text: Vec<String>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// A `!` pattern: re-includes.
    include: bool,
    re: Regex,
}

impl Excludes {
    /// The patterns `patterns`, in order; an error names a pattern that is
    /// not one (an unclosed `[`, a trailing `\`).
    pub fn new(patterns: &[String]) -> Result<Excludes, String> {
        let mut out = Vec::new();
        for p in patterns {
            let raw = p.trim();
            let (include, body) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                return Err(format!("{p:?} is an empty pattern"));
            }
            let re = Regex::new(&to_regex(&cleaned)?)
                .map_err(|e| format!("{p:?} is not a pattern: {e}"))?;
            out.push(Pattern { include, re });
        }
        Ok(Excludes {
            patterns: out,
            text: patterns.to_vec(),
        })
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.text
    }

    /// Whether the entry at `rel` (relative to the copied directory) is
    /// excluded: Docker's `MatchesOrParentMatches`.
    pub fn excluded(&self, rel: &[u8]) -> bool {
        let parents: Vec<&[u8]> = rel
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| &rel[..i])
            .collect();
        let mut matched = false;
        for p in &self.patterns {
            // An exclusion cannot change an excluded entry, nor a
            // re-inclusion an included one.
            if p.include != matched {
                continue;
            }
            if p.re.is_match(rel) || parents.iter().any(|d| p.re.is_match(d)) {
                matched = !p.include;
            }
        }
        matched
    }

    /// Whether a `!` pattern might re-include something below an excluded
    /// directory, so the walk must still go into it.
    pub fn has_reincludes(&self) -> bool {
        self.patterns.iter().any(|p| p.include)
    }
}

/// Go's `filepath.Clean`, without a leading `/` (Docker drops it): `.` and
/// empty components go, `..` takes the component before it.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Docker's conversion of a pattern to an anchored regular expression.
fn to_regex(p: &str) -> Result<String, String> {
    let mut re = String::from("(?s)^");
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is `**`.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => match chars.next() {
                Some(n) => re.push_str(&regex::escape(&n.to_string())),
                None => return Err(format!("{p:?} ends in a lone `\\`")),
            },
            '[' => {
                // A class, passed through as Docker passes it to Go's
                // `regexp` (`^` negates, a backslash escapes); what Rust's regex
                // reads as class set operations is escaped.
                re.push('[');
                let mut closed = false;
                while let Some(n) = chars.next() {
                    match n {
                        ']' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            re.push('\\');
                            match chars.next() {
                                Some(e) => re.push(e),
                                None => return Err(format!("{p:?} ends in a lone `\\`")),
                            }
                        }
                        '[' | '&' | '~' => {
                            re.push('\\');
                            re.push(n);
                        }
                        n => re.push(n),
                    }
                }
                if !closed {
                    return Err(format!("{p:?} has a `[` without its `]`"));
                }
                re.push(']');
            }
            '.' | '$' | '^' | '+' | '(' | ')' | '{' | '}' | '|' | ']' => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re.push('$');
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Excludes {
        Excludes::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn dockerignore_semantics() {
        let e = ex(&[
            "*.md",
            "!README.md",
            "**/*.tmp",
            "build",
            "/docs/*/draft",
            "a?c",
        ]);
        assert!(e.excluded(b"notes.md"));
        assert!(!e.excluded(b"README.md"), "re-included");
        assert!(!e.excluded(b"sub/notes.md"), "* does not cross /");
        assert!(
            e.excluded(b"x.tmp") && e.excluded(b"a/b/c.tmp"),
            "** is any depth, none too"
        );
        assert!(
            e.excluded(b"build") && e.excluded(b"build/out/bin"),
            "a directory and its contents"
        );
        assert!(e.excluded(b"docs/v1/draft") && !e.excluded(b"docs/draft"));
        assert!(e.excluded(b"abc") && !e.excluded(b"a/c") && !e.excluded(b"abbc"));
        assert!(!e.excluded(b"src/main.rs"));
    }

    #[test]
    fn the_last_match_wins_and_dots_are_literal() {
        let e = ex(&["logs", "!logs/keep.log", "*.o"]);
        assert!(e.excluded(b"logs/a.log"));
        assert!(!e.excluded(b"logs/keep.log"));
        assert!(!e.excluded(b"ao"), "a dot is a dot");
        let e = ex(&["**"]);
        assert!(e.excluded(b"anything/at/all"));
        let e = ex(&["[^a]*", "./x/../y"]);
        assert!(e.excluded(b"b") && !e.excluded(b"a"));
        assert!(e.excluded(b"y"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["[abc", "x\\", "", "!", "/"] {
            assert!(Excludes::new(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }
}
