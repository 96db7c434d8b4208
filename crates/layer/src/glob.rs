//! Glob patterns of `delete`, matched against image paths component by
//! component, on bytes (names need not be UTF-8).
//!
//! In one component: `*` matches any run of bytes, `?` one byte, `[abc]`,
//! `[a-z]`, `[!a]` (or `[^a]`) one byte of a class, `\x` the byte `x`. A
//! whole component `**` matches any number of components, except at the end
//! of a pattern, where it matches one or more: `var/cache/**` is what is
//! inside `var/cache`, not the directory itself. Nothing ever matches across
//! a `/` but `**`.

/// Whether a path is a pattern rather than a plain path.
pub(crate) fn is_glob(path: &[u8]) -> bool {
    path.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Whether `path` (a normalised image path, without the leading `/`)
/// matches `pattern` (the same form).
pub(crate) fn matches(pattern: &[u8], path: &[u8]) -> bool {
    let pat: Vec<&[u8]> = split(pattern);
    let names: Vec<&[u8]> = split(path);
    components(&pat, &names)
}

fn split(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect()
}

fn components(pat: &[&[u8]], names: &[&[u8]]) -> bool {
    match pat.split_first() {
        None => names.is_empty(),
        Some((&b"**", [])) => !names.is_empty(),
        Some((&b"**", rest)) => (0..=names.len()).any(|k| components(rest, &names[k..])),
        Some((p, rest)) => match names.split_first() {
            Some((n, names)) => name(p, n) && components(rest, names),
            None => false,
        },
    }
}

/// One component against one name.
fn name(p: &[u8], n: &[u8]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some((b'*', rest)) => (0..=n.len()).any(|k| name(rest, &n[k..])),
        Some((b'?', rest)) => !n.is_empty() && name(rest, &n[1..]),
        Some((b'[', rest)) => match class(rest) {
            Some((set, after)) => n
                .split_first()
                .is_some_and(|(&c, n)| set(c) && name(after, n)),
            // An unclosed `[` is itself.
            None => n.first() == Some(&b'[') && name(rest, &n[1..]),
        },
        Some((b'\\', [c, rest @ ..])) => n.first() == Some(c) && name(rest, &n[1..]),
        Some((c, rest)) => n.first() == Some(c) && name(rest, &n[1..]),
    }
}

/// A class after its `[`: a predicate and what follows the closing `]`.
fn class(p: &[u8]) -> Option<(impl Fn(u8) -> bool + '_, &[u8])> {
    let (negate, body) = match p.first() {
        Some(b'!' | b'^') => (true, &p[1..]),
        _ => (false, p),
    };
    // A `]` first in the class is a member, not its end.
    let end = body.iter().skip(1).position(|&b| b == b']')? + 1;
    let (items, after) = (&body[..end], &body[end + 1..]);
    let set = move |c: u8| {
        let mut i = 0;
        let mut hit = false;
        while i < items.len() {
            if i + 2 < items.len() && items[i + 1] == b'-' {
                hit |= (items[i]..=items[i + 2]).contains(&c);
                i += 3;
            } else {
                hit |= items[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((set, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_classes() {
        assert!(matches(b"tmp/*.log", b"tmp/a.log"));
        assert!(!matches(b"tmp/*.log", b"tmp/d/a.log"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"x[0-9]", b"x7"));
        assert!(!matches(b"x[!0-9]", b"x7"));
        assert!(matches(b"x[]]", b"x]"));
        assert!(matches(b"x[", b"x["));
        assert!(matches(b"a\\*", b"a*"));
        assert!(!matches(b"a\\*", b"ab"));
    }

    #[test]
    fn double_star() {
        assert!(matches(b"var/cache/apt/**", b"var/cache/apt/x"));
        assert!(matches(b"var/cache/apt/**", b"var/cache/apt/x/y"));
        assert!(!matches(b"var/cache/apt/**", b"var/cache/apt"));
        assert!(matches(b"**/*.pyc", b"a.pyc"));
        assert!(matches(b"**/*.pyc", b"usr/lib/a.pyc"));
        assert!(matches(b"usr/**/doc", b"usr/doc"));
        assert!(matches(b"usr/**/doc", b"usr/share/x/doc"));
        assert!(!matches(b"usr/**/doc", b"usr/share/x/doc/y"));
    }

    #[test]
    fn glob_detection() {
        assert!(is_glob(b"a/*"));
        assert!(is_glob(b"a/[x]"));
        assert!(!is_glob(b"a/b"));
    }
}
