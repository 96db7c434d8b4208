//! Debian package versions (`[epoch:]upstream[-revision]`) and their order,
//! exactly as `dpkg --compare-versions` orders them.
//!
//! The order is dpkg's `verrevcmp`: the upstream version and the revision are
//! each compared as alternating runs of non-digits and digits; in a non-digit
//! run letters sort before every other character, `~` sorts before anything
//! (even the end of the string, so `1.0~rc1 < 1.0`), and digit runs compare
//! as numbers (so leading zeros do not count). Two texts that dpkg considers
//! equal (`1.0` and `0:1.0`, `1.0-0` and `1.0`) are equal here too, which is
//! why [`Version`] implements `Eq` through the order, not through its text.

use std::cmp::Ordering;
use std::fmt;

/// A parsed version. Its text is kept as written, for output (status files,
/// locks) that must show what the index said.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u64,
    /// Byte ranges of `text`.
    upstream: (usize, usize),
    revision: (usize, usize),
}

/// Why a version text is not a Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {text:?}: {reason}")]
pub struct BadVersion {
    pub text: String,
    pub reason: &'static str,
}

impl Version {
    /// Parses a version as dpkg's `parseversion` does, refusing what dpkg
    /// refuses: an empty version, a non-numeric epoch, an empty upstream
    /// part, an upstream part that does not start with a digit, and
    /// characters outside `[A-Za-z0-9.+~-]` (`:` only for the epoch).
    pub fn parse(text: &str) -> Result<Version, BadVersion> {
        let bad = |reason| BadVersion {
            text: text.to_owned(),
            reason,
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(bad("the version is empty"));
        }
        if t.chars().any(char::is_whitespace) {
            return Err(bad("the version contains a space"));
        }
        let (epoch, rest_start) = match t.find(':') {
            Some(i) => {
                let e = &t[..i];
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the epoch is not a number"));
                }
                let epoch = e
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n <= i32::MAX as u64)
                    .ok_or_else(|| bad("the epoch is too large"))?;
                (epoch, i + 1)
            }
            None => (0, 0),
        };
        let rest = &t[rest_start..];
        let (up, rev) = match rest.rfind('-') {
            Some(i) => {
                if i + 1 == rest.len() {
                    return Err(bad("the revision is empty"));
                }
                ((rest_start, rest_start + i), (rest_start + i + 1, t.len()))
            }
            None => ((rest_start, t.len()), (t.len(), t.len())),
        };
        let upstream = &t[up.0..up.1];
        if upstream.is_empty() {
            return Err(bad("the upstream version is empty"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(bad("the upstream version does not start with a digit"));
        }
        let ok = |b: u8, extra: &[u8]| {
            b.is_ascii_alphanumeric() || b".+~".contains(&b) || extra.contains(&b)
        };
        if !upstream.bytes().all(|b| ok(b, b"-:")) {
            return Err(bad(
                "the upstream version has a character outside [A-Za-z0-9.+~-:]",
            ));
        }
        if !t[rev.0..rev.1].bytes().all(|b| ok(b, b"")) {
            return Err(bad("the revision has a character outside [A-Za-z0-9.+~]"));
        }
        Ok(Version {
            text: t.to_owned(),
            epoch,
            upstream: (up.0, up.1),
            revision: (rev.0, rev.1),
        })
    }

    /// The version as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision; empty for a native package.
    pub fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Version {
    type Err = BadVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream().as_bytes(), other.upstream().as_bytes()))
            .then_with(|| verrevcmp(self.revision().as_bytes(), other.revision().as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// A character's weight in a non-digit run: `~` before the end of the
/// string, the end before letters, letters before everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // The non-digit prefix, character by character.
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // The digit run, as a number of any length: leading zeros skipped,
        // then the longer run is larger, else the first differing digit.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parts() {
        let x = v("2:1.0-rc1-3");
        assert_eq!((x.epoch(), x.upstream(), x.revision()), (2, "1.0-rc1", "3"));
        let x = v("1.2.3");
        assert_eq!((x.epoch(), x.upstream(), x.revision()), (0, "1.2.3", ""));
        let x = v("1:2.30-1+deb12u1");
        assert_eq!(x.revision(), "1+deb12u1");
    }

    #[test]
    fn dpkg_order() {
        let lt = [
            ("1.0~rc1", "1.0"),
            ("1.0", "1.0+b1"),
            ("1.0", "1.0.1"),
            ("1.0-1", "1.0-2"),
            ("1.0-9", "1.0-10"),
            ("1:0.1", "2:0.0"),
            ("9.9", "1:0.1"),
            ("1.0~~", "1.0~"),
            ("1.0~", "1.0"),
            ("1.0a", "1.0b"),
            ("1.0a", "1.0+"),
            ("1.0", "1.0a"),
            ("2.30-1", "2.30-1+deb12u1"),
            ("17.0.13+11-2~deb12u1", "17.0.13+11-2"),
        ];
        for (a, b) in lt {
            assert!(v(a) < v(b), "{a} < {b}");
            assert!(v(b) > v(a), "{b} > {a}");
        }
        for (a, b) in [
            ("1.0", "0:1.0"),
            ("1.0-0", "1.0"),
            ("1.01", "1.1"),
            ("00", "0"),
        ] {
            assert_eq!(v(a), v(b), "{a} = {b}");
        }
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            " ",
            "a1.0",
            "1.0-",
            ":1.0",
            "x:1.0",
            "1.0 2",
            "1.0_1",
            "1:",
            "99999999999:1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
