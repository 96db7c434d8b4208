//! The licence a package declares in `/usr/share/doc/NAME/copyright`, as an
//! SPDX licence expression, for the SBOM's `licenseDeclared`.
//!
//! Only machine-readable copyright files (DEP-5, "copyright-format 1.0":
//! a first paragraph with `Format:`) are read. The licence is the
//! `License:` of the `Files: *` paragraph, the one that covers the package
//! as a whole; without one, it is every licence the `Files:` paragraphs
//! name, all of them applying (`AND`), sorted. A free-form copyright file
//! gives `None` (SPDX's NOASSERTION): guessing a licence from prose is
//! what the SBOM must not do.
//!
//! Debian's short names become SPDX ids where the mapping is clear:
//! `GPL-2+` is `GPL-2.0-or-later`, `LGPL-2.1` is `LGPL-2.1-only`, `Expat`
//! is `MIT`, `BSD-3-clause` is `BSD-3-Clause` (ids compare without case),
//! `Apache-2` is `Apache-2.0`; `or`, `and`, `|` and `,` are SPDX's `OR` and
//! `AND`, and `NAME with X exception` is `NAME WITH X-exception-…` when
//! SPDX lists that exception. Anything else is `LicenseRef-NAME` (its
//! characters outside SPDX's idstring set made `-`), so no licence the
//! package names is dropped. The result is checked with the `spdx` crate's
//! strict parser; one it refuses is `None`.
//!
//! The SPDX licence list and its parser come from the maintained `spdx`
//! crate; the DEP-5 reading and the Debian short-name table are hand-written
//! because no crate knows Debian's names (`Expat`, `GPL-2+`,
//! `public-domain`).

use crate::control;

/// A package's declared licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// An SPDX licence expression.
    pub expression: String,
    /// The text of each `LicenseRef-` the expression uses, by id: the
    /// body of the copyright file's paragraph for that short name, or a
    /// sentence saying the file gives none.
    pub refs: std::collections::BTreeMap<String, String>,
}

/// The SPDX licence expression `text` (a `copyright` file) declares, or
/// `None` when it is not machine-readable or names no licence.
pub fn declared_license(text: &str) -> Option<String> {
    declared(text).map(|d| d.expression)
}

/// [`declared_license`] with the texts of the `LicenseRef-`s it uses.
pub fn declared(text: &str) -> Option<Declared> {
    // A copyright file is deb822, but free-form ones are not: those (and
    // broken ones) give nothing rather than an error.
    let paragraphs = control::parse(text).ok()?;
    let header = paragraphs.first()?;
    if header.get("Format").is_none() && header.get("Format-Specification").is_none() {
        return None;
    }
    let first_line = |p: &control::Paragraph| {
        p.get("License")
            .and_then(|l| control::lines(l).next())
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
    };
    let files: Vec<&control::Paragraph> = paragraphs[1..]
        .iter()
        .filter(|p| p.get("Files").is_some())
        .collect();
    let whole = files.iter().find(|p| {
        p.get("Files")
            .is_some_and(|f| f.split_whitespace().any(|g| g == "*"))
    });
    let mut refs = std::collections::BTreeMap::new();
    let expr = match whole.and_then(|p| first_line(p)) {
        Some(l) => to_spdx(&l, &mut refs)?,
        None => {
            let mut all: Vec<String> = files
                .iter()
                .filter_map(|p| first_line(p))
                .filter_map(|l| to_spdx(&l, &mut refs))
                .collect();
            // A header's own `License:` is the whole work's when no Files
            // paragraph gives one.
            if all.is_empty() {
                all.extend(first_line(header).and_then(|l| to_spdx(&l, &mut refs)));
            }
            all.sort();
            all.dedup();
            match all.len() {
                0 => return None,
                1 => all.pop()?,
                _ => all
                    .iter()
                    .map(|e| parenthesize(e))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            }
        }
    };
    spdx::Expression::parse(&expr).ok()?;
    // Only the refs the expression kept, each with its text.
    let refs = refs
        .into_iter()
        .filter(|(id, _)| {
            expr.split([' ', '(', ')'])
                .any(|w| w == id)
        })
        .map(|(id, short)| {
            let body = paragraphs.iter().find_map(|p| {
                let l = p.get("License")?;
                let mut lines = control::lines(l);
                if lines.next()?.trim() != short {
                    return None;
                }
                let body = lines
                    .map(|x| if x.trim() == "." { "" } else { x.trim() })
                    .collect::<Vec<_>>()
                    .join("\n");
                // A Files paragraph names the licence without its text.
                (!body.trim().is_empty()).then_some(body)
            });
            let text = body.unwrap_or_else(|| {
                format!("the licence the package's copyright file calls {short}; the file gives no text for it")
            });
            (id, text)
        })
        .collect();
    Some(Declared {
        expression: expr,
        refs,
    })
}

/// Wraps a compound expression in parentheses.
fn parenthesize(e: &str) -> String {
    // Already one parenthesized group: its first `(` closes at the end.
    let mut depth = 0usize;
    let mut whole = e.starts_with('(');
    for (i, c) in e.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && i + 1 != e.len() {
                    whole = false;
                }
            }
            _ => {}
        }
    }
    if e.contains(' ') && !whole {
        format!("({e})")
    } else {
        e.to_owned()
    }
}

/// A DEP-5 `License:` first line (`GPL-2+ or Artistic, and BSD-3-clause`)
/// as an SPDX expression. In DEP-5 `and` binds tighter than `or`, and a
/// comma closes what comes before it (`A or B, and C` is `(A OR B) AND C`).
fn to_spdx(line: &str, refs: &mut std::collections::BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    for (n, group) in line.split(',').enumerate() {
        let group = group.trim();
        let (op, text) = match (group.strip_prefix("and "), group.strip_prefix("or ")) {
            (Some(g), _) => ("AND", g),
            (_, Some(g)) => ("OR", g),
            _ => ("AND", group),
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        // `or` of `and`s of terms.
        let mut alternatives: Vec<Vec<String>> = vec![Vec::new()];
        let mut i = 0;
        while i < words.len() {
            match words[i].to_ascii_lowercase().as_str() {
                "or" | "|" => alternatives.push(Vec::new()),
                "and" | "&" => {}
                _ => {
                    let name = words[i];
                    if !name.bytes().any(|b| b.is_ascii_alphanumeric()) {
                        return None;
                    }
                    let mut term = license_id(name);
                    if term.starts_with("LicenseRef-") {
                        refs.insert(term.clone(), name.to_owned());
                    }
                    // `NAME with X exception` (X may be several words).
                    let with = words
                        .get(i + 1)
                        .is_some_and(|w| w.eq_ignore_ascii_case("with"));
                    let end = words
                        .get(i + 2..)
                        .and_then(|r| r.iter().position(|w| w.eq_ignore_ascii_case("exception")))
                        .map(|p| i + 2 + p);
                    if let (true, Some(end)) = (with, end) {
                        term = with_exception(name, &words[i + 2..end].join("-"));
                        if term.starts_with("LicenseRef-") {
                            refs.insert(term.clone(), words[i..=end].join(" "));
                        }
                        i = end;
                    }
                    alternatives.last_mut()?.push(term);
                }
            }
            i += 1;
        }
        let alternatives: Vec<String> = alternatives
            .into_iter()
            .filter(|a| !a.is_empty())
            .map(|a| join(&a, "AND"))
            .collect();
        if alternatives.is_empty() {
            continue;
        }
        let part = join(&alternatives, "OR");
        out = if out.is_empty() {
            part
        } else if n > 0 {
            format!("{} {op} {}", parenthesize(&out), parenthesize(&part))
        } else {
            part
        };
    }
    (!out.is_empty()).then_some(out)
}

/// Terms joined by `op`, each compound one in parentheses.
fn join(terms: &[String], op: &str) -> String {
    if let [one] = terms {
        return one.clone();
    }
    terms
        .iter()
        .map(|t| parenthesize(t))
        .collect::<Vec<_>>()
        .join(&format!(" {op} "))
}

/// `NAME WITH EXCEPTION` when SPDX lists the exception, else one
/// `LicenseRef-`.
fn with_exception(name: &str, what: &str) -> String {
    let base = license_id(name);
    let known = [
        format!("{what}-exception"),
        format!("{what}-exception-2.0"),
        format!("{what}-exception-3.1"),
        what.to_owned(),
    ]
    .into_iter()
    .find_map(|c| exception_ci(&c));
    match known {
        Some(e) if !base.starts_with("LicenseRef-") => format!("{base} WITH {e}"),
        _ => license_ref(&format!("{name}-with-{what}-exception")),
    }
}

/// Debian's names that are not SPDX ids in any case.
const DEBIAN_NAMES: &[(&str, &str)] = &[
    ("Expat", "MIT"),
    ("Apache-2", "Apache-2.0"),
    ("Apache-1", "Apache-1.0"),
    ("Artistic", "Artistic-1.0"),
    ("Artistic-1", "Artistic-1.0"),
    ("Artistic-2", "Artistic-2.0"),
    ("Perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
    ("MPL-1", "MPL-1.0"),
    ("MPL-2", "MPL-2.0"),
    ("CC0", "CC0-1.0"),
    ("Python", "Python-2.0"),
    ("Python-2", "Python-2.0"),
    ("Zope", "ZPL-2.1"),
    ("X11", "X11"),
    ("OpenSSL", "OpenSSL"),
];

/// The SPDX id of one Debian short name, or a `LicenseRef-`.
fn license_id(name: &str) -> String {
    let (base, or_later) = match name.strip_suffix('+') {
        Some(b) => (b, true),
        None => (name, false),
    };
    // GNU licences: `GPL-2` / `GPL-2.0` / `LGPL-2.1+` / `GFDL-1.3`.
    for family in ["GPL", "LGPL", "AGPL", "GFDL"] {
        if let Some(v) = base
            .strip_prefix(family)
            .and_then(|r| r.strip_prefix('-'))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        {
            let v = if v.contains('.') {
                v.to_owned()
            } else {
                format!("{v}.0")
            };
            if let Some(id) = spdx::gnu_license_id(&format!("{family}-{v}"), or_later) {
                return id.name.to_owned();
            }
        }
    }
    if let Some((_, to)) = DEBIAN_NAMES
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(base))
    {
        return if or_later && !to.contains(' ') {
            format!("{to}+")
        } else {
            (*to).to_owned()
        };
    }
    match license_ci(base) {
        Some(id) if or_later => format!("{id}+"),
        Some(id) => id.to_owned(),
        None => license_ref(name),
    }
}

/// An SPDX licence id, compared without case (Debian writes
/// `BSD-3-clause`).
fn license_ci(name: &str) -> Option<&'static str> {
    spdx::license_id(name).map(|l| l.name).or_else(|| {
        spdx::identifiers::LICENSES
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| l.name)
    })
}

fn exception_ci(name: &str) -> Option<&'static str> {
    spdx::exception_id(name).map(|e| e.name).or_else(|| {
        spdx::identifiers::EXCEPTIONS
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .map(|e| e.name)
    })
}

/// `LicenseRef-NAME`, with characters outside SPDX's idstring
/// (letters, digits, `.`, `-`) made `-`.
fn license_ref(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep5(files: &str) -> String {
        format!(
            "Format: https://example.invalid/copyright-format/1.0/\nUpstream-Name: x\n\n{files}"
        )
    }

    #[test]
    fn the_files_star_paragraph_decides() {
        let t = dep5(
            "Files: *\nCopyright: 2000 A\nLicense: GPL-2+\n\nFiles: debian/*\nCopyright: B\nLicense: Expat\n\nLicense: GPL-2+\n This program is free software;\n .\n more\n",
        );
        assert_eq!(declared_license(&t).as_deref(), Some("GPL-2.0-or-later"));
    }

    #[test]
    fn without_files_star_every_licence_named_applies() {
        let t = dep5(
            "Files: src/*\nCopyright: A\nLicense: BSD-3-clause\n\nFiles: lib/*\nCopyright: B\nLicense: LGPL-2.1\n\nFiles: doc/*\nCopyright: C\nLicense: BSD-3-clause\n",
        );
        assert_eq!(
            declared_license(&t).as_deref(),
            Some("BSD-3-Clause AND LGPL-2.1-only")
        );
    }

    #[test]
    fn debian_names_and_operators_become_spdx() {
        for (debian, spdx) in [
            ("GPL-2", "GPL-2.0-only"),
            ("GPL-3+", "GPL-3.0-or-later"),
            ("LGPL-2.1+", "LGPL-2.1-or-later"),
            ("Expat", "MIT"),
            ("Apache-2.0", "Apache-2.0"),
            ("GPL-2+ or Artistic", "GPL-2.0-or-later OR Artistic-1.0"),
            ("GPL-2+ | BSD-2-clause", "GPL-2.0-or-later OR BSD-2-Clause"),
            (
                "GPL-2+ with Classpath exception",
                "GPL-2.0-or-later WITH Classpath-exception-2.0",
            ),
            (
                "GPL-2+ or Artistic, and BSD-3-clause",
                "(GPL-2.0-or-later OR Artistic-1.0) AND BSD-3-Clause",
            ),
            ("public-domain", "LicenseRef-public-domain"),
            ("MyOwn_licence", "LicenseRef-MyOwn-licence"),
            ("Perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
        ] {
            let t = dep5(&format!("Files: *\nCopyright: X\nLicense: {debian}\n"));
            assert_eq!(declared_license(&t).as_deref(), Some(spdx), "{debian}");
        }
    }

    #[test]
    fn licence_refs_carry_their_text() {
        let t = dep5(
            "Files: *\nCopyright: A\nLicense: public-domain\n\nFiles: x/*\nCopyright: B\nLicense: Expat\n\nLicense: public-domain\n No rights reserved.\n .\n Really.\n",
        );
        let d = declared(&t).unwrap();
        assert_eq!(d.expression, "LicenseRef-public-domain");
        assert_eq!(
            d.refs.get("LicenseRef-public-domain").map(String::as_str),
            Some("No rights reserved.\n\nReally.")
        );
        let t = dep5("Files: *\nCopyright: A\nLicense: Odd-1\n");
        let d = declared(&t).unwrap();
        assert!(d.refs["LicenseRef-Odd-1"].contains("Odd-1"), "{d:?}");
    }

    #[test]
    fn free_form_and_junk_give_nothing() {
        for t in [
            "This package was debianized by someone.\n\nCopyright: GPL\n",
            "",
            "Format: x\n\nFiles: *\nCopyright: A\n",
            "Format: x\n\nFiles: *\nLicense: (((\n",
            "\u{0}\u{1}garbage",
        ] {
            assert_eq!(declared_license(t), None, "{t:?}");
        }
    }
}
