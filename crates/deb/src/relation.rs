//! Relationship fields of binary packages: `Depends`, `Pre-Depends`,
//! `Conflicts`, `Breaks`, `Provides`, as Debian policy §7.1 writes them:
//! comma-separated groups of `|`-separated alternatives, each a package
//! name with an optional `:arch` qualifier and an optional version relation
//! in parentheses (`<<`, `<=`, `=`, `>=`, `>>`, and the obsolete `<` and
//! `>`, which mean `<=` and `>=` as dpkg reads them).
//!
//! Architecture lists (`[amd64]`) and build profiles (`<!nocheck>`) only
//! belong to source packages' build relations; a binary index that holds
//! them is refused rather than half-understood.

use std::fmt;

use crate::version::Version;

/// A version relation's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `have` satisfies `have OP want`.
    pub fn holds(self, have: &Version, want: &Version) -> bool {
        let o = have.cmp(want);
        match self {
            Op::Lt => o.is_lt(),
            Op::Le => o.is_le(),
            Op::Eq => o.is_eq(),
            Op::Ge => o.is_ge(),
            Op::Gt => o.is_gt(),
        }
    }
}

/// One alternative: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    /// `any`, `native` or an architecture name.
    pub arch: Option<String>,
    pub version: Option<(Op, Version)>,
}

impl Relation {
    /// Whether a package (or a provided name) of this version satisfies the
    /// version part; an unversioned provide satisfies only an unversioned
    /// relation (policy §7.5).
    pub fn version_matches(&self, have: Option<&Version>) -> bool {
        match (&self.version, have) {
            (None, _) => true,
            (Some((op, want)), Some(h)) => op.holds(h, want),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// A group of alternatives, one of which must hold.
pub type Alternatives = Vec<Relation>;

/// Why a relationship field could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relation {text:?}: {reason}")]
pub struct BadRelation {
    pub text: String,
    pub reason: String,
}

/// Parses a `Depends`-like field into its groups of alternatives.
pub fn parse_field(text: &str) -> Result<Vec<Alternatives>, BadRelation> {
    let mut out = Vec::new();
    for group in text.split(',') {
        if group.trim().is_empty() {
            // dpkg tolerates a trailing comma and so do we; an empty group
            // in the middle (`a,,b`) is the same harmless mistake.
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            alts.push(parse_one(alt)?);
        }
        out.push(alts);
    }
    Ok(out)
}

/// Parses a `Provides` field: a flat list, no alternatives, only `=`.
pub fn parse_provides(text: &str) -> Result<Vec<Relation>, BadRelation> {
    let mut out = Vec::new();
    for group in parse_field(text)? {
        if group.len() != 1 {
            return Err(BadRelation {
                text: text.to_owned(),
                reason: "Provides has no alternatives".into(),
            });
        }
        let r = group.into_iter().next().expect("one alternative");
        if r.version.as_ref().is_some_and(|(op, _)| *op != Op::Eq) {
            return Err(BadRelation {
                text: text.to_owned(),
                reason: format!("a provided version must be `=`: {r}"),
            });
        }
        out.push(r);
    }
    Ok(out)
}

fn parse_one(text: &str) -> Result<Relation, BadRelation> {
    let bad = |reason: &str| BadRelation {
        text: text.trim().to_owned(),
        reason: reason.to_owned(),
    };
    let t = text.trim();
    if t.contains('[') {
        return Err(bad(
            "architecture lists and build profiles belong to source packages",
        ));
    }
    let (head, version) = match t.find('(') {
        Some(i) => {
            let rest = t[i + 1..].trim_end();
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| bad("a `(` without its `)`"))?;
            (
                t[..i].trim_end(),
                Some(parse_version_relation(inner).map_err(|r| bad(&r))?),
            )
        }
        None => (t, None),
    };
    if head.contains(['<', '>', ')']) {
        return Err(bad(
            "architecture lists and build profiles belong to source packages",
        ));
    }
    let (name, arch) = match head.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (head, None),
    };
    if !valid_name(name) {
        return Err(bad(
            "a package name is lowercase letters, digits and `+-.`, starting with a letter or digit",
        ));
    }
    if let Some(a) = arch
        && (a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(bad("a bad architecture qualifier"));
    }
    Ok(Relation {
        name: name.to_owned(),
        arch: arch.map(str::to_owned),
        version,
    })
}

fn parse_version_relation(inner: &str) -> Result<(Op, Version), String> {
    let s = inner.trim();
    let (op, rest) = if let Some(r) = s.strip_prefix("<<") {
        (Op::Lt, r)
    } else if let Some(r) = s.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = s.strip_prefix(">>") {
        (Op::Gt, r)
    } else if let Some(r) = s.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = s.strip_prefix('=') {
        (Op::Eq, r)
    } else if let Some(r) = s.strip_prefix('<') {
        (Op::Le, r)
    } else if let Some(r) = s.strip_prefix('>') {
        (Op::Ge, r)
    } else {
        return Err(format!("no relation operator in ({inner})"));
    };
    let v = Version::parse(rest.trim()).map_err(|e| e.to_string())?;
    Ok((op, v))
}

/// Policy §5.6.1: at least two characters of `[a-z0-9+.-]`, starting with
/// a letter or digit. One-character names exist in the wild (`r`), so one is
/// allowed.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends() {
        let g = parse_field("libc6 (>= 2.34), default-jre-headless | java17-runtime-headless:any, python3:any (<< 3.12~),").unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0][0].name, "libc6");
        assert_eq!(g[0][0].version.as_ref().unwrap().0, Op::Ge);
        assert_eq!(g[1].len(), 2);
        assert_eq!(g[1][1].arch.as_deref(), Some("any"));
        assert_eq!(g[2][0].to_string(), "python3:any (<< 3.12~)");
        let v = Version::parse("3.11.2-1").unwrap();
        assert!(g[2][0].version_matches(Some(&v)));
        assert!(!g[2][0].version_matches(None));
    }

    #[test]
    fn obsolete_operators_and_spacing() {
        let g = parse_field("a(<1.0),b (>  2)").unwrap();
        assert_eq!(g[0][0].version.as_ref().unwrap().0, Op::Le);
        assert_eq!(g[1][0].version.as_ref().unwrap().0, Op::Ge);
    }

    #[test]
    fn provides() {
        let p = parse_provides("java-runtime-headless (= 17), awk").unwrap();
        assert_eq!(p[0].version.as_ref().unwrap().1.as_str(), "17");
        assert!(parse_provides("a | b").is_err());
        assert!(parse_provides("a (>= 1)").is_err());
    }

    #[test]
    fn refused() {
        for bad in [
            "a (>= 1.0",
            "A",
            "a (~ 1)",
            "a [amd64]",
            "a <!nocheck>",
            "a:",
            "(= 1)",
            "a (>= )",
        ] {
            assert!(parse_field(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
