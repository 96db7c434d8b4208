//! The listing of a layer: one [`Entry`] per tar entry, in the order of the tar
//! (sorted by path bytes), and its stable one-line text form; the union view
//! of a stack of layers ([`LowerView`]), which is where the OCI whiteout rules
//! are applied to listings. (Reading a blob into its listing is
//! `strata_layer::list_blob`.)
//!
//! The text form is what `strata inspect --files` prints and what snapshot
//! tests commit, so it must never depend on the machine. One line per entry,
//! fields separated by one space:
//!
//! ```text
//! PATH TYPE MODE UID:GID [SIZE DIGEST | -> TARGET | => LINKED | MAJ,MIN] [xattr=NAME=VALUE ...]
//!
//! /usr/ dir 0755 0:0
//! /usr/local/bin/java file 0755 0:0 1234 sha256:<64 hex>
//! /usr/bin/sh symlink 0777 0:0 -> busybox
//! /usr/bin/ln hardlink 0755 0:0 => /usr/bin/busybox
//! /dev/null char 0666 0:0 1,3
//! /run/initctl fifo 0600 0:0
//! /bin/ping file 0755 0:0 1024 sha256:<64 hex> xattr=security.capability=\x01\x00\x00\x02...
//! /etc/motd whiteout
//! /var/cache/ opaque
//! ```
//!
//! Paths start with `/` and directories (and opaque markers, which name their
//! directory) end with `/`. MODE is four octal digits (setuid, setgid and
//! sticky included). A whiteout line names the deleted path. In paths, link
//! targets and xattr names, every byte that is not part of printable UTF-8,
//! every whitespace character and the backslash are written `\xNN` (two
//! lowercase hex digits per byte), so a line splits unambiguously at spaces.

use std::collections::BTreeMap;

use crate::{Digest, ImagePath};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    /// `.wh.NAME`: the path (without the prefix) is deleted from lower layers.
    Whiteout,
    /// `DIR/.wh..wh..opq`: lower layers' contents of DIR are hidden.
    Opaque,
}

/// One entry of a layer as the tar holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The logical path: for a whiteout the deleted path, for an opaque marker the directory.
    pub path: ImagePath,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size of a regular file's content; 0 otherwise.
    pub size: u64,
    /// sha256 of a regular file's content.
    pub digest: Option<Digest>,
    /// Symlink target, or the path a hardlink points to (an [`ImagePath`]'s
    /// bytes, without the leading `/`). Serialized escaped, as in the text form.
    #[serde(with = "escaped_opt")]
    pub link: Option<Vec<u8>>,
    /// (major, minor) of a device node.
    pub device: Option<(u32, u32)>,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// The listing of one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub entries: Vec<Entry>,
}

impl EntryKind {
    /// The word of the text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
            EntryKind::Char => "char",
            EntryKind::Block => "block",
            EntryKind::Fifo => "fifo",
            EntryKind::Whiteout => "whiteout",
            EntryKind::Opaque => "opaque",
        }
    }
}

impl Entry {
    /// An entry of `kind` at `path` with every other field zero or empty:
    /// what a whiteout or an opaque marker is, and where a builder starts.
    pub fn bare(path: ImagePath, kind: EntryKind) -> Entry {
        Entry {
            path,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            digest: None,
            link: None,
            device: None,
            xattrs: Vec::new(),
        }
    }

    /// The entry's line of the text form (see the module documentation),
    /// without a newline.
    pub fn line(&self) -> String {
        let mut s = String::from("/");
        s.push_str(&escape(&self.path.0, true));
        if matches!(self.kind, EntryKind::Dir | EntryKind::Opaque) && !self.path.is_root() {
            s.push('/');
        }
        s.push(' ');
        s.push_str(self.kind.as_str());
        if matches!(self.kind, EntryKind::Whiteout | EntryKind::Opaque) {
            return s;
        }
        s.push_str(&format!(" {:04o} {}:{}", self.mode, self.uid, self.gid));
        let link = self.link.as_deref().unwrap_or_default();
        match self.kind {
            EntryKind::File => match &self.digest {
                Some(d) => s.push_str(&format!(" {} {d}", self.size)),
                None => s.push_str(&format!(" {} -", self.size)),
            },
            EntryKind::Symlink => s.push_str(&format!(" -> {}", escape(link, true))),
            EntryKind::Hardlink => s.push_str(&format!(" => /{}", escape(link, true))),
            EntryKind::Char | EntryKind::Block => {
                let (major, minor) = self.device.unwrap_or_default();
                s.push_str(&format!(" {major},{minor}"));
            }
            _ => {}
        }
        // Values too: a changed capability set must show in a review.
        for (name, value) in &self.xattrs {
            s.push_str(" xattr=");
            s.push_str(&escape(name.as_bytes(), true));
            s.push('=');
            s.push_str(&escape(value, true));
        }
        s
    }
}

/// A listing line that [`Entry::parse_line`] cannot read: the line and what
/// is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a listing line ({reason}): {line:?}")]
pub struct BadLine {
    pub line: String,
    pub reason: &'static str,
}

impl EntryKind {
    /// The kind a word of the text form names.
    pub fn parse(word: &str) -> Option<EntryKind> {
        Some(match word {
            "file" => EntryKind::File,
            "dir" => EntryKind::Dir,
            "symlink" => EntryKind::Symlink,
            "hardlink" => EntryKind::Hardlink,
            "char" => EntryKind::Char,
            "block" => EntryKind::Block,
            "fifo" => EntryKind::Fifo,
            "whiteout" => EntryKind::Whiteout,
            "opaque" => EntryKind::Opaque,
            _ => return None,
        })
    }
}

impl Entry {
    /// Reads a line of the text form back: the inverse of [`Entry::line`]
    /// (`Entry::parse_line(&e.line())` is `e`, for every entry `line` can
    /// print). A file whose digest is `-` has none.
    pub fn parse_line(line: &str) -> Result<Entry, BadLine> {
        let bad = |reason| BadLine {
            line: line.to_owned(),
            reason,
        };
        let mut tokens = line.split(' ');
        let path_text = tokens.next().unwrap_or_default();
        let kind = EntryKind::parse(tokens.next().ok_or_else(|| bad("no type"))?)
            .ok_or_else(|| bad("unknown type"))?;
        let dir_like = matches!(kind, EntryKind::Dir | EntryKind::Opaque);
        let path_text = match path_text.strip_suffix('/') {
            Some(p) if dir_like && !p.is_empty() => p,
            _ if dir_like && path_text != "/" => {
                return Err(bad("a directory path must end in `/`"));
            }
            _ => path_text,
        };
        let path = ImagePath::from_display(path_text).ok_or_else(|| bad("bad path"))?;
        let mut e = Entry::bare(path, kind);
        if matches!(kind, EntryKind::Whiteout | EntryKind::Opaque) {
            return match tokens.next() {
                None => Ok(e),
                Some(_) => Err(bad("a marker has no fields")),
            };
        }
        let mode = tokens.next().ok_or_else(|| bad("no mode"))?;
        e.mode = u32::from_str_radix(mode, 8)
            .ok()
            .filter(|m| mode.len() == 4 && *m <= 0o7777)
            .ok_or_else(|| bad("bad mode"))?;
        let owner = tokens.next().ok_or_else(|| bad("no owner"))?;
        let (uid, gid) = owner.split_once(':').ok_or_else(|| bad("bad owner"))?;
        e.uid = uid.parse().map_err(|_| bad("bad uid"))?;
        e.gid = gid.parse().map_err(|_| bad("bad gid"))?;
        let rest: Vec<&str> = tokens.collect();
        let (fields, xattrs) = rest.split_at(
            rest.iter()
                .position(|t| t.starts_with("xattr="))
                .unwrap_or(rest.len()),
        );
        match (kind, fields) {
            (EntryKind::File, [size, digest]) => {
                e.size = size.parse().map_err(|_| bad("bad size"))?;
                if *digest != "-" {
                    e.digest = Some(digest.parse().map_err(|_| bad("bad digest"))?);
                }
            }
            (EntryKind::Symlink, ["->", target]) => {
                e.link = Some(unescape(target).ok_or_else(|| bad("bad link target"))?);
            }
            (EntryKind::Hardlink, ["=>", target]) => {
                let target = target
                    .strip_prefix('/')
                    .ok_or_else(|| bad("bad link target"))?;
                e.link = Some(unescape(target).ok_or_else(|| bad("bad link target"))?);
            }
            (EntryKind::Char | EntryKind::Block, [device]) => {
                let (major, minor) = device.split_once(',').ok_or_else(|| bad("bad device"))?;
                e.device = Some((
                    major.parse().map_err(|_| bad("bad device"))?,
                    minor.parse().map_err(|_| bad("bad device"))?,
                ));
            }
            (EntryKind::Dir | EntryKind::Fifo, []) => {}
            _ => return Err(bad("wrong fields for its type")),
        }
        for x in xattrs {
            let x = x
                .strip_prefix("xattr=")
                .ok_or_else(|| bad("fields after the xattrs"))?;
            let (name, value) = x.split_once('=').ok_or_else(|| bad("bad xattr"))?;
            let name = unescape(name)
                .and_then(|n| String::from_utf8(n).ok())
                .ok_or_else(|| bad("bad xattr name"))?;
            e.xattrs
                .push((name, unescape(value).ok_or_else(|| bad("bad xattr value"))?));
        }
        Ok(e)
    }
}

impl Listing {
    /// The text form: one [`Entry::line`] per entry, each ending in `\n`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(&e.line());
            s.push('\n');
        }
        s
    }
}

/// `bytes` as text: invalid UTF-8, control and whitespace characters and the
/// backslash become `\xNN` per byte. A plain space is kept unless `space`.
pub fn escape(bytes: &[u8], space: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    let hex = |out: &mut String, b: &[u8]| {
        for x in b {
            out.push_str(&format!("\\x{x:02x}"));
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let plain_space = c == ' ' && !space;
            if c == '\\' || c.is_control() || (c.is_whitespace() && !plain_space) {
                hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes());
            } else {
                out.push(c);
            }
        }
        hex(&mut out, chunk.invalid());
    }
    out
}

/// The inverse of [`escape`]; `None` for a backslash not followed by `x` and
/// two hex digits.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\\' {
            let digits = tail.strip_prefix(b"x")?.get(..2)?;
            out.push(u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?);
            rest = &tail[3..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Some(out)
}

/// Serde for `Option<Vec<u8>>` as an escaped string, readable in JSON.
mod escaped_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&super::escape(b, false)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::unescape(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("bad escape in {s:?}"))),
            None => Ok(None),
        }
    }
}

/// The union view of a stack of layers: which paths exist, and as what,
/// after each layer's whiteouts and opaque directories hid what was below.
/// Applied bottom-up, it answers what a `delete` may delete, and what mode,
/// owner and xattrs an existing directory has, which a layer that writes
/// below it keeps (as Docker's COPY does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LowerView {
    paths: BTreeMap<ImagePath, EntryKind>,
    /// The metadata of directories a layer listed (a parent no layer listed
    /// has none: it is 0755 0:0, as an unpacker creates it).
    dirs: BTreeMap<ImagePath, DirMeta>,
}

/// What a layer says of a directory besides its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMeta {
    /// Permission bits, `0o7777` mask.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl LowerView {
    pub fn new() -> Self {
        LowerView::default()
    }

    /// Stacks `layer` on the view, as OCI applies a changeset: its whiteouts
    /// and opaque markers hide lower paths first (never paths of the same
    /// layer, whatever their order in the tar), then its entries are added;
    /// a non-directory replaces a directory with everything below it.
    /// Parents of every entry count as directories, listed or not.
    pub fn apply(&mut self, layer: &Listing) {
        for e in &layer.entries {
            match e.kind {
                EntryKind::Whiteout => {
                    self.paths.remove(&e.path);
                    self.dirs.remove(&e.path);
                    self.remove_below(&e.path);
                }
                EntryKind::Opaque => self.remove_below(&e.path),
                _ => {}
            }
        }
        for e in &layer.entries {
            if matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque) || e.path.is_root() {
                continue;
            }
            // Most ancestors are directories already (a tar lists parents
            // first): look them up by their bytes, and allocate only for
            // one that is new or was not a directory.
            for (i, _) in e.path.0.iter().enumerate().filter(|&(_, &b)| b == b'/') {
                let a: &[u8] = &e.path.0[..i];
                if self.paths.get(a) != Some(&EntryKind::Dir) {
                    let a = ImagePath(a.to_vec());
                    self.remove_below(&a);
                    self.dirs.remove(&a);
                    self.paths.insert(a, EntryKind::Dir);
                }
            }
            if e.kind == EntryKind::Dir {
                let mut xattrs = e.xattrs.clone();
                xattrs.sort();
                self.dirs.insert(
                    e.path.clone(),
                    DirMeta {
                        mode: e.mode & 0o7777,
                        uid: e.uid,
                        gid: e.gid,
                        xattrs,
                    },
                );
                self.paths.insert(e.path.clone(), e.kind);
            } else if self.paths.insert(e.path.clone(), e.kind) == Some(EntryKind::Dir) {
                // Only a directory has paths below it (every path's
                // ancestors are directories here).
                self.remove_below(&e.path);
                self.dirs.remove(&e.path);
            }
        }
    }

    fn remove_below(&mut self, path: &ImagePath) {
        if path.is_root() {
            self.paths.clear();
            self.dirs.clear();
            return;
        }
        let mut lo = path.0.clone();
        lo.push(b'/');
        let mut hi = path.0.clone();
        hi.push(b'0'); // `0` follows `/`: the range holds exactly the paths below
        let doomed: Vec<ImagePath> = self
            .paths
            .range(ImagePath(lo)..ImagePath(hi))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.paths.remove(&p);
            self.dirs.remove(&p);
        }
    }

    /// The mode, owner and xattrs the stack gives the directory `p`, if a
    /// layer listed it.
    pub fn dir_meta(&self, p: &ImagePath) -> Option<&DirMeta> {
        self.dirs.get(p).filter(|_| self.is_dir(p))
    }

    /// Whether the stack shows `p` (the root always exists).
    pub fn contains(&self, p: &ImagePath) -> bool {
        p.is_root() || self.paths.contains_key(p)
    }

    /// Whether the stack shows `p` as a directory.
    pub fn is_dir(&self, p: &ImagePath) -> bool {
        p.is_root() || self.paths.get(p) == Some(&EntryKind::Dir)
    }

    /// What the stack shows at `p`, if anything (`None` for the root).
    pub fn kind(&self, p: &ImagePath) -> Option<EntryKind> {
        self.paths.get(p).copied()
    }

    /// Every path the stack shows, in byte order (the root excepted).
    pub fn paths(&self) -> impl Iterator<Item = &ImagePath> {
        self.paths.keys()
    }
}

/// The first bytes of an encoded [`LowerView`]. Bump with any change of
/// the encoding or of what a view holds.
const VIEW_MAGIC: &[u8; 14] = b"strata-view-1\n";

impl LowerView {
    /// The view as bytes, for a memo of a stack's fold (a build above an
    /// unchanged stack then reads a few hundred KB instead of parsing every
    /// lower listing): per path in byte order, its length (u32 LE), bytes,
    /// kind name, and for a listed directory its mode, uid, gid and xattrs.
    pub fn encode(&self) -> Vec<u8> {
        fn put(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        let mut out = Vec::with_capacity(VIEW_MAGIC.len() + self.paths.len() * 48);
        out.extend_from_slice(VIEW_MAGIC);
        out.extend_from_slice(&(self.paths.len() as u64).to_le_bytes());
        for (path, kind) in &self.paths {
            put(&mut out, &path.0);
            put(&mut out, kind.as_str().as_bytes());
            match self.dirs.get(path).filter(|_| *kind == EntryKind::Dir) {
                None => out.push(0),
                Some(m) => {
                    out.push(1);
                    for n in [m.mode, m.uid, m.gid, m.xattrs.len() as u32] {
                        out.extend_from_slice(&n.to_le_bytes());
                    }
                    for (name, value) in &m.xattrs {
                        put(&mut out, name.as_bytes());
                        put(&mut out, value);
                    }
                }
            }
        }
        out
    }

    /// The view [`encode`](LowerView::encode) wrote, or `None` for bytes
    /// that are not one (a memo of another version, cut short, or garbage).
    pub fn decode(bytes: &[u8]) -> Option<LowerView> {
        struct Reader<'a>(&'a [u8]);
        impl<'a> Reader<'a> {
            fn take(&mut self, n: usize) -> Option<&'a [u8]> {
                let (head, rest) = self.0.split_at_checked(n)?;
                self.0 = rest;
                Some(head)
            }
            fn u32(&mut self) -> Option<u32> {
                Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
            }
            fn bytes(&mut self) -> Option<&'a [u8]> {
                let n = self.u32()? as usize;
                self.take(n)
            }
        }
        let mut r = Reader(bytes.strip_prefix(VIEW_MAGIC.as_slice())?);
        let count = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
        // Each path takes at least 9 bytes: a count larger than the bytes
        // left is a lie, and must not size an allocation.
        if count > (r.0.len() / 9) as u64 {
            return None;
        }
        let mut paths = Vec::with_capacity(count as usize);
        let mut dirs = Vec::new();
        for _ in 0..count {
            let path = ImagePath(r.bytes()?.to_vec());
            let kind = EntryKind::parse(std::str::from_utf8(r.bytes()?).ok()?)?;
            if paths
                .last()
                .is_some_and(|(last, _): &(ImagePath, EntryKind)| *last >= path)
            {
                return None;
            }
            match r.take(1)?[0] {
                0 => {}
                1 if kind == EntryKind::Dir => {
                    let (mode, uid, gid, n) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
                    let mut xattrs = Vec::new();
                    for _ in 0..n {
                        let name = std::str::from_utf8(r.bytes()?).ok()?.to_owned();
                        xattrs.push((name, r.bytes()?.to_vec()));
                    }
                    dirs.push((
                        path.clone(),
                        DirMeta {
                            mode,
                            uid,
                            gid,
                            xattrs,
                        },
                    ));
                }
                _ => return None,
            }
            paths.push((path, kind));
        }
        if !r.0.is_empty() {
            return None;
        }
        // Sorted input: the maps are built in one pass.
        Some(LowerView {
            paths: paths.into_iter().collect(),
            dirs: dirs.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &[u8], kind: EntryKind) -> Entry {
        Entry {
            mode: 0o4755,
            uid: 1000,
            gid: 50,
            ..Entry::bare(ImagePath(path.to_vec()), kind)
        }
    }

    #[test]
    fn every_kind_of_line_parses_back_to_its_entry() {
        let mut file = entry(b"usr/bin/a b\\\xff", EntryKind::File);
        file.size = 12;
        file.digest = Some(Digest::of(b"hello world\n"));
        file.xattrs = vec![("security.capability".to_owned(), vec![1, 0, 0, 2, b' '])];
        let mut nodigest = entry(b"f", EntryKind::File);
        nodigest.size = 3;
        let mut symlink = entry(b"bin/sh", EntryKind::Symlink);
        symlink.link = Some(b"../x y".to_vec());
        let mut hardlink = entry(b"bin/ln", EntryKind::Hardlink);
        hardlink.link = Some(b"usr/bin/busybox".to_vec());
        let mut dev = entry(b"dev/null", EntryKind::Char);
        dev.device = Some((1, 3));
        let marker = |p: &[u8], k| Entry::bare(ImagePath(p.to_vec()), k);
        let all = [
            entry(b"", EntryKind::Dir),
            entry(b"usr", EntryKind::Dir),
            file,
            nodigest,
            symlink,
            hardlink,
            dev,
            entry(b"run/fifo", EntryKind::Fifo),
            marker(b"etc/motd", EntryKind::Whiteout),
            marker(b"var/cache", EntryKind::Opaque),
        ];
        for e in all {
            let line = e.line();
            assert_eq!(Entry::parse_line(&line), Ok(e), "{line}");
        }
    }

    #[test]
    fn malformed_lines_are_refused_with_a_reason() {
        for line in [
            "",
            "/x",
            "/x sock 0644 0:0",
            "/x dir 0755 0:0",
            "/x/ file 0644 0:0 1 -",
            "/x file 644 0:0 1 -",
            "/x file 0644 0 1 -",
            "/x file 0644 0:0 1",
            "/x file 0644 0:0 1 sha256:00",
            "/x symlink 0777 0:0 y",
            "/x whiteout 0644",
            "/x file 0644 0:0 1 - xattr=a",
            "/x\\q file 0644 0:0 1 -",
        ] {
            assert!(Entry::parse_line(line).is_err(), "{line:?} parsed");
        }
    }

    #[test]
    fn a_view_round_trips_through_its_bytes_and_bad_bytes_are_no_view() {
        let mut dir = entry(b"etc", EntryKind::Dir);
        dir.xattrs = vec![
            ("user.b".to_owned(), vec![2]),
            ("user.a".to_owned(), vec![0, 1]),
        ];
        let mut lower = LowerView::new();
        lower.apply(&Listing {
            entries: vec![
                dir,
                entry(b"etc/motd", EntryKind::File),
                entry(b"usr/bin/sh", EntryKind::Symlink),
                entry(b"var/cache/x", EntryKind::File),
            ],
        });
        lower.apply(&Listing {
            entries: vec![
                Entry::bare(ImagePath(b"etc/motd".to_vec()), EntryKind::Whiteout),
                Entry::bare(ImagePath(b"var/cache".to_vec()), EntryKind::Opaque),
                entry(b"var/cache/y", EntryKind::Fifo),
            ],
        });
        let bytes = lower.encode();
        let back = LowerView::decode(&bytes).expect("its own bytes decode");
        assert_eq!(back, lower);
        assert_eq!(
            back.dir_meta(&ImagePath(b"etc".to_vec()))
                .map(|m| m.xattrs.clone()),
            Some(vec![
                ("user.a".to_owned(), vec![0, 1]),
                ("user.b".to_owned(), vec![2])
            ])
        );
        assert!(!back.contains(&ImagePath(b"etc/motd".to_vec())));
        assert_eq!(
            LowerView::decode(&LowerView::new().encode()),
            Some(LowerView::new())
        );
        // Cut anywhere, or with a byte changed where it matters, it is no view (and no panic).
        for n in 0..bytes.len() {
            assert_eq!(LowerView::decode(&bytes[..n]), None, "cut at {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(LowerView::decode(&longer), None);
        let mut huge = bytes.clone();
        huge[14..22].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(LowerView::decode(&huge), None);
    }
}
