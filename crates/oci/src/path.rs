//! Paths inside an image: absolute, normalised, bytes.

/// A path inside the image: absolute, normalised (no `.`, `..` or empty
/// components), stored without the leading `/`; the root is the empty path.
/// Bytes, because names in input tarballs need not be UTF-8.
///
/// Ordered by its bytes, which is the order of a layer's tar. Serialized as
/// its [`display`](ImagePath::display) form, which round-trips exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImagePath(pub Vec<u8>);

impl ImagePath {
    /// The root directory `/`.
    pub fn root() -> ImagePath {
        ImagePath(Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// An absolute path as a spec writes it: `/usr/local/` gives `usr/local`.
    /// Empty and `.` components are dropped; `None` for a relative path, a
    /// `..` component or a NUL byte.
    pub fn parse_abs(s: &str) -> Option<ImagePath> {
        let rest = s.strip_prefix('/')?;
        ImagePath::normalise(rest.as_bytes()).ok()
    }

    /// A path relative to some directory (an archive member name, say):
    /// leading `/` and `./`, empty and `.` components are dropped.
    /// Err names why it is refused: a `..` component or a NUL byte.
    pub fn normalise(bytes: &[u8]) -> Result<ImagePath, &'static str> {
        if bytes.contains(&0) {
            return Err("the name contains a NUL byte");
        }
        let mut out = Vec::with_capacity(bytes.len());
        for c in bytes.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err("the name contains a `..` component"),
                c => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(c);
                }
            }
        }
        Ok(ImagePath(out))
    }

    /// The path as a user reads it: `/usr/local`, `/` for the root. Bytes that
    /// are not printable UTF-8 and the backslash are escaped as `\xNN`, so the text is
    /// unambiguous and [`ImagePath::from_display`] reverses it exactly.
    pub fn display(&self) -> String {
        let mut s = String::with_capacity(self.0.len() + 1);
        s.push('/');
        s.push_str(&crate::listing::escape(&self.0, false));
        s
    }

    /// The inverse of [`ImagePath::display`]; `None` if `s` is not such a text
    /// or does not name a normalised path.
    pub fn from_display(s: &str) -> Option<ImagePath> {
        let bytes = crate::listing::unescape(s.strip_prefix('/')?)?;
        let p = ImagePath::normalise(&bytes).ok()?;
        (p.0 == bytes).then_some(p)
    }

    /// This path with the components of `rel` appended. Empty and `.`
    /// components are dropped and `..` removes the last component (never
    /// above the root), so the result is always a normalised path; callers
    /// that must not climb reject `..` before joining.
    pub fn join(&self, rel: &[u8]) -> ImagePath {
        let mut out = self.clone();
        for c in rel.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => out = out.parent().unwrap_or_else(ImagePath::root),
                c => {
                    if !out.0.is_empty() {
                        out.0.push(b'/');
                    }
                    out.0.extend_from_slice(c);
                }
            }
        }
        out
    }

    /// The directory holding this path; `None` for the root.
    pub fn parent(&self) -> Option<ImagePath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => ImagePath(self.0[..i].to_vec()),
            None => ImagePath::root(),
        })
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        })
    }

    /// The components, from the top.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The proper ancestors of this path below the root, from the top:
    /// `a/b/c` gives `a`, `a/b`.
    pub fn ancestors(&self) -> Vec<ImagePath> {
        self.0
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| ImagePath(self.0[..i].to_vec()))
            .collect()
    }

    /// Whether `self` is `other` or lies below it (component-wise: `a/bc` is
    /// not below `a/b`).
    pub fn starts_with(&self, other: &ImagePath) -> bool {
        other.is_root()
            || (self.0.starts_with(&other.0)
                && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/'))
    }
}

/// A path's bytes, so maps keyed by paths can be searched without
/// allocating one (the derived order is the bytes' order).
impl std::borrow::Borrow<[u8]> for ImagePath {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for ImagePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ImagePath::display(self))
    }
}

impl serde::Serialize for ImagePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ImagePath::display(self))
    }
}

impl<'de> serde::Deserialize<'de> for ImagePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ImagePath::from_display(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an image path: {s:?}")))
    }
}
