//! Input tarballs: the format told by magic bytes, decompression into a
//! temporary spool file, and the archive's entries put into the layer tree.
//!
//! The spool exists because a layer's entries are written sorted while an
//! archive's are in any order: the archive is decompressed once to an
//! anonymous temporary file (memory stays bounded whatever its size), its
//! headers are read recording where each file's data lies, and the data is
//! read back from there when the tar is written. A plain tar needs no spool:
//! it is read in place, from the handle the planner opened (see `spool`).
//! Archives are data: nothing is ever extracted onto the host.
//!
//! What an archive may hold, and how hostile names are treated:
//!
//! - A leading `/`, `./`, empty and `.` components are dropped: `/etc/passwd`
//!   lands at `DEST/etc/passwd`, as GNU tar, Docker and containerd extract it.
//! - A `..` component anywhere is refused (GNU tar refuses those members too),
//!   and so is a NUL byte, a name component over 255 bytes or a name or link
//!   target over 4095 bytes (Linux's `NAME_MAX` and `PATH_MAX`: no runtime
//!   could extract them; the path is measured where it lands, below `to=`),
//!   and a whiteout name (`.wh.*`).
//! - An entry below a symlink or a non-directory of the same archive is
//!   refused, whichever comes first in the archive: extracting it would write
//!   through the link (`link -> /etc` then `link/passwd`).
//! - A hard link must name a regular file that comes earlier in the same
//!   archive (as tar requires); it shares that file's content and metadata,
//!   even if a later duplicate replaces the file.
//! - Duplicate entries: the last one wins, as when tar extracts them.
//! - Sparse files and unknown entry types are refused; devices, fifos, xattrs
//!   (binary values such as `security.capability` included, up to Linux's
//!   64 KiB) and non-UTF-8 names are carried exactly.
//! - [`Limits`] bound the decompressed size (which is also what the spool
//!   takes in the temporary directory) and the number of entries, against
//!   decompression bombs.
//!
//! Symlinks of the lower layers are not followed either: a layer is a
//! change set, and its explicit parent directories replace such a link when
//! a runtime applies it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::tree::{Content, Kind, Node, Spool, Tree, is_reserved};
use crate::ustar::{self, RawEntry, ReadError};
use crate::{Error, ImagePath, Limits, Owner};

/// Linux's longest file name component, and longest path or symlink target
/// (`PATH_MAX` counts the terminating NUL).
const NAME_MAX: usize = 255;
pub(crate) const PATH_MAX: usize = 4095;
/// Linux's largest xattr value (`XATTR_SIZE_MAX`).
const XATTR_SIZE_MAX: usize = 65536;

/// How an input is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
    Tar,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
            Format::Tar => "tar",
        }
    }

    fn detect(head: &[u8]) -> Option<Format> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Format::Gzip)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Format::Xz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Format::Zstd)
        } else if head.starts_with(b"BZh") {
            Some(Format::Bzip2)
        } else if looks_like_tar(head) {
            Some(Format::Tar)
        } else {
            None
        }
    }
}

pub(crate) const NOT_A_TAR: &str =
    "not a tar archive (neither gzip, xz, zstd, bzip2 nor plain tar)";

/// A ustar or GNU header (magic `ustar` at offset 257), or the zero block of
/// an empty archive.
fn looks_like_tar(head: &[u8]) -> bool {
    (head.len() >= 262 && &head[257..262] == b"ustar")
        || (head.len() >= 512 && head[..512].iter().all(|&b| b == 0))
}

/// Reads the first block of `r` and tells its format; the returned reader
/// yields all of `r`'s bytes again.
pub(crate) fn sniff<R: Read>(mut r: R) -> io::Result<(Option<Format>, impl Read)> {
    let mut head = Vec::with_capacity(512);
    (&mut r).take(512).read_to_end(&mut head)?;
    Ok((Format::detect(&head), io::Cursor::new(head).chain(r)))
}

/// The decompressed bytes of `r`. Concatenated gzip, xz and bzip2 members
/// (as pigz and pbzip2 write) and zstd frames are all read.
pub(crate) fn decoder<'r>(format: Format, r: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match format {
        Format::Gzip => Box::new(GzipMembers::new(r)),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Format::Tar => Box::new(r),
    })
}

/// Concatenated gzip members, then nothing but NUL padding (which gzip
/// itself ignores, and tape-blocked archives have). Other bytes after the
/// last member are an error that says so, rather than the "invalid gzip
/// header" a multi-member decoder reports for them.
struct GzipMembers<R: Read> {
    member: Option<flate2::bufread::GzDecoder<Peek<R>>>,
}

impl<R: Read> GzipMembers<R> {
    fn new(r: R) -> Self {
        GzipMembers {
            member: Some(flate2::bufread::GzDecoder::new(Peek::new(r))),
        }
    }
}

impl<R: Read> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member ended: another follows, or only padding.
            let Some(member) = self.member.take() else {
                return Ok(0);
            };
            let mut src = member.into_inner();
            let head = src.ensure(2)?;
            if head.is_empty() {
                return Ok(0);
            }
            if head.starts_with(&[0x1f, 0x8b]) {
                self.member = Some(flate2::bufread::GzDecoder::new(src));
                continue;
            }
            let at = src.consumed;
            loop {
                let rest = src.fill_buf()?;
                if rest.is_empty() {
                    return Ok(0);
                }
                if rest.iter().any(|&b| b != 0) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("trailing garbage after the end of the gzip stream, at byte {at}"),
                    ));
                }
                let n = rest.len();
                src.consume(n);
            }
        }
    }
}

/// A buffered reader that can look a few bytes ahead without consuming
/// them, and counts what was consumed.
struct Peek<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    consumed: u64,
}

impl<R: Read> Peek<R> {
    fn new(inner: R) -> Self {
        Peek {
            inner,
            buf: vec![0u8; 1 << 16].into_boxed_slice(),
            start: 0,
            end: 0,
            consumed: 0,
        }
    }

    /// The buffered bytes, at least `n` of them unless the input ends first.
    fn ensure(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < n {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => break,
                    Ok(k) => self.end += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.start..self.end])
    }
}

impl<R: Read> Read for Peek<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> io::BufRead for Peek<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(k) => {
                        self.end = k;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.consumed += n as u64;
    }
}

/// The spool is a file: skipping an entry's data is a seek. Read with
/// `pread` (the spool may be the input's own handle, shared).
struct SpoolReader(BufReader<crate::beneath::AtReader>);

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl ustar::Skip for SpoolReader {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::other("entry size overflows"))?;
        self.0.seek_relative(n)
    }
}

#[derive(Debug)]
enum ArchKind {
    Dir,
    /// A regular file, or a hard link to one: `inode` indexes the archive's
    /// file contents.
    File {
        inode: usize,
    },
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// The content of one regular file entry of the archive; hard links to it
/// share it.
#[derive(Debug)]
struct Inode {
    offset: u64,
    size: u64,
}

/// Owner, permission bits and xattrs of an entry (a hard link's are those of
/// the file it links to).
#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// One member of an archive, its name normalised.
#[derive(Debug)]
struct ArchEntry {
    /// The name as the archive wrote it, for error messages.
    shown: String,
    kind: ArchKind,
    meta: Meta,
}

/// What the header says an entry is, before hard links are resolved.
enum Parsed {
    Kind(ArchKind),
    /// A regular file whose data lies at `offset`.
    File {
        offset: u64,
        size: u64,
    },
    Hardlink(ImagePath),
}

/// The `unpack` operation: the archive's entries go below `to` in `tree`.
pub(crate) fn unpack(
    tree: &mut Tree<'_>,
    opened: &crate::HostInput,
    to: &ImagePath,
    owner: Option<Owner>,
    mode: Option<u32>,
) -> Result<(), Error> {
    let limits = tree.limits;
    let archive = opened.path();
    let bad = |reason: String| Error::BadArchive {
        archive: archive.to_owned(),
        reason,
    };
    let tmp = std::env::temp_dir();
    let spool_err = |source: io::Error| Error::Spool {
        archive: archive.to_owned(),
        dir: tmp.clone(),
        source,
    };

    // The handle the planner opened and hashed, not the path again.
    let reader = opened.reader().ok_or_else(|| Error::Host {
        path: archive.to_owned(),
        reason: "is a directory, not a tarball".to_owned(),
    })?;
    let (format, input) = sniff(BufReader::new(reader)).map_err(|source| Error::Io {
        path: archive.to_owned(),
        source,
    })?;
    let format = format.ok_or_else(|| bad(NOT_A_TAR.to_owned()))?;
    let too_large = || Error::Limit {
        archive: archive.to_owned(),
        reason: format!(
            "the archive expands to more than {} (max-input-size)",
            human_size(limits.max_input_size)
        ),
    };
    let (spool, len, stamp) = match (format, opened.shared_file()) {
        // A plain tar is read where it is (see `spool`).
        (Format::Tar, Some(file)) => {
            // Checked against the key's digest, and again once the layer is
            // written (see `inplace`).
            let stamp = crate::inplace::check(
                &file,
                archive,
                opened.content_digest(),
                opened.hashed_stamp(),
            )?;
            let len = stamp.size();
            if len > limits.max_input_size {
                return Err(too_large());
            }
            (file, len, Some(stamp))
        }
        _ => {
            let expected = opened.file().map_or(0, crate::spool::expected_size);
            let spool = tempfile::tempfile_in(&tmp).map_err(spool_err)?;
            let mut r = decoder(format, input)
                .map_err(|e| bad(format!("corrupt or truncated {} data: {e}", format.name())))?;
            let len = crate::spool::fill(&mut r, &spool, limits.max_input_size, expected).map_err(
                |e| match e {
                    Copy::Read(e) => {
                        bad(format!("corrupt or truncated {} data: {e}", format.name()))
                    }
                    Copy::Write(e) => spool_err(e),
                    Copy::TooLarge => too_large(),
                    Copy::NoSpace { need, free } => Error::SpoolFull {
                        archive: archive.to_owned(),
                        dir: tmp.clone(),
                        need,
                        free,
                    },
                },
            )?;
            if format != Format::Tar {
                let mut head = Vec::with_capacity(512);
                (&spool).seek(SeekFrom::Start(0)).map_err(spool_err)?;
                (&spool)
                    .take(512)
                    .read_to_end(&mut head)
                    .map_err(spool_err)?;
                if !looks_like_tar(&head) {
                    return Err(bad(format!(
                        "the decompressed {} data is not a tar archive",
                        format.name()
                    )));
                }
            }
            (std::sync::Arc::new(spool), len, None)
        }
    };

    let (entries, inodes) = read_entries(&spool, len, archive, limits)?;
    check_parents(&entries, archive)?;
    let spool_index = tree.spools.len();
    tree.spools.push(Spool {
        file: spool,
        archive: archive.to_owned(),
        stamp,
    });

    // Files that several paths share become one hard link group.
    let mut paths_of = vec![0usize; inodes.len()];
    for e in entries.values() {
        if let ArchKind::File { inode } = e.kind {
            paths_of[inode] += 1;
        }
    }
    let mut groups: BTreeMap<usize, u64> = BTreeMap::new();
    for (path, e) in entries {
        let kind = match e.kind {
            ArchKind::Dir => Kind::Dir { opaque: false },
            ArchKind::File { inode } => {
                let group = if paths_of[inode] > 1 {
                    Some(*groups.entry(inode).or_insert_with(|| tree.new_group()))
                } else {
                    None
                };
                Kind::File {
                    content: Content::Spool {
                        spool: spool_index,
                        offset: inodes[inode].offset,
                    },
                    size: inodes[inode].size,
                    group,
                }
            }
            ArchKind::Symlink(t) => Kind::Symlink(t),
            ArchKind::Char(a, b) => Kind::Char(a, b),
            ArchKind::Block(a, b) => Kind::Block(a, b),
            ArchKind::Fifo => Kind::Fifo,
        };
        let is_file = matches!(kind, Kind::File { .. });
        let mut node = Node::new(kind, e.meta.mode, None);
        if let (Some(m), true) = (mode, is_file) {
            node.mode = m & 0o7777;
        }
        let o = owner.unwrap_or(Owner {
            uid: e.meta.uid,
            gid: e.meta.gid,
        });
        node.uid = o.uid;
        node.gid = o.gid;
        node.xattrs = e.meta.xattrs;
        let dest = to.join(&path.0);
        // The name alone was checked when read; below `to=` it is longer,
        // and the image path is what a runtime must create.
        if dest.0.len() > PATH_MAX {
            return Err(Error::BadArchiveEntry {
                archive: archive.to_owned(),
                entry: e.shown,
                reason: format!(
                    "unpacked below {} its path is {} bytes long, more than Linux's limit of {PATH_MAX}",
                    to.display(),
                    dest.0.len()
                ),
            });
        }
        tree.put(dest, node, true);
    }
    Ok(())
}

/// Every entry of the spooled archive (`len` bytes) by normalised path, the
/// last of duplicates winning, and the file contents they point to.
fn read_entries(
    spool: &std::sync::Arc<File>,
    len: u64,
    archive: &Path,
    limits: Limits,
) -> Result<(BTreeMap<ImagePath, ArchEntry>, Vec<Inode>), Error> {
    let bad = |reason: String| Error::BadArchive {
        archive: archive.to_owned(),
        reason,
    };
    let mut entries: BTreeMap<ImagePath, ArchEntry> = BTreeMap::new();
    let mut inodes: Vec<Inode> = Vec::new();
    let mut count = 0u64;
    let mut reader = ustar::Reader::new(SpoolReader(BufReader::new(
        crate::beneath::AtReader::new(spool.clone()),
    )));
    loop {
        let raw = match reader.next_entry() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(ReadError::Io(source)) => {
                return Err(Error::Io {
                    path: archive.to_owned(),
                    source,
                });
            }
            Err(ReadError::Format(reason)) => return Err(bad(reason)),
        };
        count += 1;
        if count > limits.max_entries {
            return Err(Error::Limit {
                archive: archive.to_owned(),
                reason: format!(
                    "the archive has more than {} entries (max-entries)",
                    limits.max_entries
                ),
            });
        }
        let Some((path, shown, parsed, meta)) = convert(&raw, archive)? else {
            continue;
        };
        let err = |reason: String| entry_error(archive, &raw.name, reason);
        let (kind, meta) = match parsed {
            Parsed::Kind(kind) => (kind, meta),
            Parsed::File { offset, size } => {
                if offset.checked_add(size).is_none_or(|end| end > len) {
                    return Err(bad(format!(
                        "the archive is truncated: the data of {shown:?} ends past its end"
                    )));
                }
                inodes.push(Inode { offset, size });
                (
                    ArchKind::File {
                        inode: inodes.len() - 1,
                    },
                    meta,
                )
            }
            // A hard link is the file it names, as that file is now: a later
            // entry replacing the file does not change the link.
            Parsed::Hardlink(target) => match entries.get(&target) {
                Some(ArchEntry {
                    kind: ArchKind::File { inode },
                    meta,
                    ..
                }) => (ArchKind::File { inode: *inode }, meta.clone()),
                Some(_) => {
                    return Err(err(format!(
                        "the hardlink target {} is not a regular file",
                        target.display()
                    )));
                }
                None => {
                    return Err(err(format!(
                        "the hardlink target {} is not an earlier entry of the archive",
                        target.display()
                    )));
                }
            },
        };
        entries.insert(path, ArchEntry { shown, kind, meta });
    }
    Ok((entries, inodes))
}

/// `n` bytes as a user reads a limit: `64 GiB`, `1.5 MiB`, `100 bytes`.
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s} {}", UNITS[unit])
}

use crate::spool::Copy;

fn entry_error(archive: &Path, name: &[u8], reason: impl Into<String>) -> Error {
    Error::BadArchiveEntry {
        archive: archive.to_owned(),
        entry: shown(name),
        reason: reason.into(),
    }
}

/// An entry's name for a message: lossy UTF-8, and a name of more than 200
/// bytes cut to its first 100, with its length, so that one line stays one
/// line a person can read.
fn shown(name: &[u8]) -> String {
    if name.len() <= 200 {
        return String::from_utf8_lossy(name).into_owned();
    }
    format!(
        "{}... ({} bytes)",
        String::from_utf8_lossy(&name[..100]),
        name.len()
    )
}

/// What an entry is, from its typeflag; errors name the entry.
fn parse_kind(raw: &RawEntry, archive: &Path) -> Result<Parsed, Error> {
    let err = |reason: String| entry_error(archive, &raw.name, reason);
    let device = |n: u64| {
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= 0o7777777)
            .ok_or_else(|| err(format!("device number {n} is too large")))
    };
    if raw.pax.iter().any(|(k, _)| k.starts_with(b"GNU.sparse.")) {
        return Err(err("sparse files are not supported".to_owned()));
    }
    if raw.link.contains(&0) {
        return Err(err("the link target contains a NUL byte".to_owned()));
    }
    if raw.link.len() > PATH_MAX {
        return Err(err(format!(
            "the link target is {} bytes long, more than Linux's limit of {PATH_MAX}",
            raw.link.len()
        )));
    }
    Ok(match raw.typeflag {
        // Before ustar, a directory was a regular entry whose name ends in `/`.
        ustar::kind::FILE | ustar::kind::OLD_FILE | ustar::kind::CONTIGUOUS
            if raw.name.ends_with(b"/") && raw.size == 0 =>
        {
            Parsed::Kind(ArchKind::Dir)
        }
        ustar::kind::FILE | ustar::kind::OLD_FILE | ustar::kind::CONTIGUOUS => Parsed::File {
            offset: raw.data_offset,
            size: raw.size,
        },
        ustar::kind::HARDLINK => {
            if raw.link.is_empty() {
                return Err(err("the hardlink has an empty target".to_owned()));
            }
            let target = ImagePath::normalise(&raw.link).map_err(|r| {
                err(format!(
                    "hardlink target {:?}: {r}",
                    String::from_utf8_lossy(&raw.link)
                ))
            })?;
            Parsed::Hardlink(target)
        }
        ustar::kind::SYMLINK => {
            if raw.link.is_empty() {
                return Err(err("the symlink has an empty target".to_owned()));
            }
            Parsed::Kind(ArchKind::Symlink(raw.link.clone()))
        }
        ustar::kind::CHAR => {
            Parsed::Kind(ArchKind::Char(device(raw.device.0)?, device(raw.device.1)?))
        }
        ustar::kind::BLOCK => Parsed::Kind(ArchKind::Block(
            device(raw.device.0)?,
            device(raw.device.1)?,
        )),
        ustar::kind::DIR => Parsed::Kind(ArchKind::Dir),
        ustar::kind::FIFO => Parsed::Kind(ArchKind::Fifo),
        b'S' => return Err(err("sparse files are not supported".to_owned())),
        t => {
            return Err(err(format!("unsupported entry type {:?}", char::from(t))));
        }
    })
}

/// The normalised path of `raw`, its name as shown in errors, what it is and
/// its metadata; `None` for the archive's root directory (`./`), which a
/// layer never holds.
fn convert(
    raw: &RawEntry,
    archive: &Path,
) -> Result<Option<(ImagePath, String, Parsed, Meta)>, Error> {
    let err = |reason: String| entry_error(archive, &raw.name, reason);
    let path = ImagePath::normalise(&raw.name).map_err(|r| err(r.to_owned()))?;
    if path.components().any(is_reserved) {
        return Err(err("input archives may not contain whiteouts".to_owned()));
    }
    if path.0.len() > PATH_MAX {
        return Err(err(format!(
            "the name is {} bytes long, more than Linux's limit of {PATH_MAX}",
            path.0.len()
        )));
    }
    if let Some(c) = path.components().find(|c| c.len() > NAME_MAX) {
        return Err(err(format!(
            "a name component is {} bytes long, more than Linux's limit of {NAME_MAX}",
            c.len()
        )));
    }
    let parsed = parse_kind(raw, archive)?;
    if path.is_root() {
        return match parsed {
            Parsed::Kind(ArchKind::Dir) => Ok(None),
            _ => Err(err("the entry names the root directory".to_owned())),
        };
    }
    let id = |n: u64, what: &str| {
        u32::try_from(n).map_err(|_| err(format!("{what} {n} does not fit in 32 bits")))
    };
    let xattrs = raw.xattrs().map_err(err)?;
    if let Some((name, value)) = xattrs.iter().find(|(_, v)| v.len() > XATTR_SIZE_MAX) {
        return Err(err(format!(
            "the value of xattr {name} is {} bytes long, more than Linux's limit of {XATTR_SIZE_MAX}",
            value.len()
        )));
    }
    let meta = Meta {
        mode: (raw.mode & 0o7777) as u32,
        uid: id(raw.uid, "uid")?,
        gid: id(raw.gid, "gid")?,
        xattrs,
    };
    Ok(Some((path, shown(&raw.name), parsed, meta)))
}

/// Refuses an entry below a symlink or a non-directory of the same archive:
/// extracting it would write through the link (`link -> /etc` then
/// `link/passwd`) or fail. Whatever the order of the archive, and in
/// O(n log n): each non-directory looks for anything sorted below it.
fn check_parents(entries: &BTreeMap<ImagePath, ArchEntry>, archive: &Path) -> Result<(), Error> {
    for (path, e) in entries {
        if matches!(e.kind, ArchKind::Dir) {
            continue;
        }
        // `path/` up to `path0` (`0` follows `/`) holds exactly the paths
        // below `path` in byte order.
        let mut lo = path.0.clone();
        lo.push(b'/');
        let mut hi = path.0.clone();
        hi.push(b'0');
        let Some((_, below)) = entries.range(ImagePath(lo)..ImagePath(hi)).next() else {
            continue;
        };
        let reason = match e.kind {
            ArchKind::Symlink(_) => format!("the path goes through the symlink {}", path.display()),
            _ => format!(
                "the path goes through {}, which is not a directory",
                path.display()
            ),
        };
        return Err(Error::BadArchiveEntry {
            archive: archive.to_owned(),
            entry: below.shown.clone(),
            reason,
        });
    }
    Ok(())
}
