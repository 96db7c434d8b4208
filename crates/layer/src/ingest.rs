//! Input tarballs: the format told by magic bytes, decompression into a
//! temporary spool file, and the archive's entries put into the layer tree.
//!
//! The spool exists because a layer's entries are written sorted while an
//! archive's are in any order: the archive is decompressed once to an
//! anonymous temporary file (memory stays bounded whatever its size), its
//! headers are read recording where each file's data lies, and the data is
//! read back from there when the tar is written. Archives are data: nothing
//! is ever extracted onto the host, and names that would climb out of the
//! destination (`..`), go through a symlink, or link outside the archive are
//! refused rather than repaired.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::tree::{Content, Kind, Node, Spool, Tree, is_reserved};
use crate::ustar::{self, RawEntry, ReadError};
use crate::{Error, ImagePath, Owner};

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
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Format::Tar => Box::new(r),
    })
}

/// The spool is a file: skipping an entry's data is a seek.
struct SpoolReader<'f>(BufReader<&'f File>);

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl ustar::Skip for SpoolReader<'_> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::other("entry size overflows"))?;
        self.0.seek_relative(n)
    }
}

#[derive(Debug)]
enum ArchKind {
    Dir,
    File { offset: u64, size: u64 },
    Hardlink(ImagePath),
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One member of an archive, its name normalised.
#[derive(Debug)]
struct ArchEntry {
    /// The name as the archive wrote it, for error messages.
    shown: String,
    kind: ArchKind,
    mode: u32,
    uid: u32,
    gid: u32,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// The `unpack` operation: the archive's entries go below `to` in `tree`.
pub(crate) fn unpack(
    tree: &mut Tree<'_>,
    archive: &Path,
    to: &ImagePath,
    owner: Option<Owner>,
    mode: Option<u32>,
) -> Result<(), Error> {
    let io_err = |source: io::Error| Error::Io {
        path: archive.to_owned(),
        source,
    };
    let bad = |reason: String| Error::BadArchive {
        archive: archive.to_owned(),
        reason,
    };

    let (format, input) =
        sniff(BufReader::new(File::open(archive).map_err(io_err)?)).map_err(io_err)?;
    let format = format.ok_or_else(|| bad(NOT_A_TAR.to_owned()))?;
    let spool = tempfile::tempfile_in(std::env::temp_dir()).map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let len = decompress(format, input, &spool).map_err(|e| match e {
        Copy::Read(e) => bad(format!("corrupt or truncated {} data: {e}", format.name())),
        Copy::Write(source) => Error::Io {
            path: std::env::temp_dir(),
            source,
        },
    })?;
    if format != Format::Tar {
        let mut head = Vec::with_capacity(512);
        (&spool).seek(SeekFrom::Start(0)).map_err(io_err)?;
        (&spool).take(512).read_to_end(&mut head).map_err(io_err)?;
        if !looks_like_tar(&head) {
            return Err(bad(format!(
                "the decompressed {} data is not a tar archive",
                format.name()
            )));
        }
    }
    (&spool).seek(SeekFrom::Start(0)).map_err(io_err)?;

    // Last entry wins, as when tar extracts an archive with duplicates.
    let mut entries: BTreeMap<ImagePath, ArchEntry> = BTreeMap::new();
    let mut reader = ustar::Reader::new(SpoolReader(BufReader::new(&spool)));
    loop {
        let raw = match reader.next_entry() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(ReadError::Io(e)) => return Err(io_err(e)),
            Err(ReadError::Format(reason)) => return Err(bad(reason)),
        };
        if let Some((path, entry)) = convert(raw, archive)? {
            if let ArchKind::File { offset, size } = entry.kind
                && offset.checked_add(size).is_none_or(|end| end > len)
            {
                return Err(bad(format!(
                    "the archive is truncated: the data of {:?} ends past its end",
                    entry.shown
                )));
            }
            entries.insert(path, entry);
        }
    }
    drop(reader);

    check_parents(&entries, archive)?;
    let links = resolve_hardlinks(&entries, archive)?;
    let spool_index = tree.spools.len();
    tree.spools.push(Spool {
        file: spool,
        archive: archive.to_owned(),
    });

    // A group id for each file that hard links point to.
    let mut groups: BTreeMap<&ImagePath, u64> = BTreeMap::new();
    for target in links.values() {
        if !groups.contains_key(target) {
            groups.insert(target, tree.new_group());
        }
    }
    for (path, e) in &entries {
        // A hard link is the file it names, under another path.
        let (source, group) = match &e.kind {
            ArchKind::Hardlink(_) => {
                let target = links[path];
                (&entries[target], groups.get(target).copied())
            }
            _ => (e, groups.get(path).copied()),
        };
        let kind = match &source.kind {
            ArchKind::Dir => Kind::Dir { opaque: false },
            ArchKind::File { offset, size } => Kind::File {
                content: Content::Spool {
                    spool: spool_index,
                    offset: *offset,
                },
                size: *size,
                group,
            },
            ArchKind::Symlink(t) => Kind::Symlink(t.clone()),
            ArchKind::Char(a, b) => Kind::Char(*a, *b),
            ArchKind::Block(a, b) => Kind::Block(*a, *b),
            ArchKind::Fifo => Kind::Fifo,
            ArchKind::Hardlink(_) => unreachable!("hard links are resolved to files"),
        };
        let is_file = matches!(kind, Kind::File { .. });
        let mut node = Node::new(kind, source.mode, None);
        if let (Some(m), true) = (mode, is_file) {
            node.mode = m & 0o7777;
        }
        let o = owner.unwrap_or(Owner {
            uid: source.uid,
            gid: source.gid,
        });
        node.uid = o.uid;
        node.gid = o.gid;
        node.xattrs = source.xattrs.clone();
        tree.put(to.join(&path.0), node, true);
    }
    Ok(())
}

enum Copy {
    Read(io::Error),
    Write(io::Error),
}

/// Decompresses `input` into the spool; returns the number of bytes.
fn decompress(format: Format, input: impl Read, spool: &File) -> Result<u64, Copy> {
    let mut r = decoder(format, input).map_err(Copy::Read)?;
    let mut w = BufWriter::with_capacity(1 << 16, spool);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(Copy::Write)?;
        total += n as u64;
    }
    w.flush().map_err(Copy::Write)?;
    Ok(total)
}

fn entry_error(archive: &Path, name: &[u8], reason: impl Into<String>) -> Error {
    Error::BadArchiveEntry {
        archive: archive.to_owned(),
        entry: String::from_utf8_lossy(name).into_owned(),
        reason: reason.into(),
    }
}

/// What an entry is, from its typeflag; errors name the entry.
fn parse_kind(raw: &RawEntry, archive: &Path) -> Result<ArchKind, Error> {
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
    Ok(match raw.typeflag {
        // Before ustar, a directory was a regular entry whose name ends in `/`.
        ustar::kind::FILE | ustar::kind::OLD_FILE | ustar::kind::CONTIGUOUS
            if raw.name.ends_with(b"/") && raw.size == 0 =>
        {
            ArchKind::Dir
        }
        ustar::kind::FILE | ustar::kind::OLD_FILE | ustar::kind::CONTIGUOUS => ArchKind::File {
            offset: raw.data_offset,
            size: raw.size,
        },
        ustar::kind::HARDLINK => {
            let target = ImagePath::normalise(&raw.link).map_err(|r| {
                err(format!(
                    "hardlink target {:?}: {r}",
                    String::from_utf8_lossy(&raw.link)
                ))
            })?;
            ArchKind::Hardlink(target)
        }
        ustar::kind::SYMLINK => {
            if raw.link.is_empty() {
                return Err(err("the symlink has an empty target".to_owned()));
            }
            ArchKind::Symlink(raw.link.clone())
        }
        ustar::kind::CHAR => ArchKind::Char(device(raw.device.0)?, device(raw.device.1)?),
        ustar::kind::BLOCK => ArchKind::Block(device(raw.device.0)?, device(raw.device.1)?),
        ustar::kind::DIR => ArchKind::Dir,
        ustar::kind::FIFO => ArchKind::Fifo,
        b'S' => return Err(err("sparse files are not supported".to_owned())),
        t => {
            return Err(err(format!("unsupported entry type {:?}", char::from(t))));
        }
    })
}

/// The normalised path and entry of `raw`; `None` for the archive's root
/// directory (`./`), which a layer never holds.
fn convert(raw: RawEntry, archive: &Path) -> Result<Option<(ImagePath, ArchEntry)>, Error> {
    let err = |reason: String| entry_error(archive, &raw.name, reason);
    let path = ImagePath::normalise(&raw.name).map_err(|r| err(r.to_owned()))?;
    if path.components().any(is_reserved) {
        return Err(err("input archives may not contain whiteouts".to_owned()));
    }
    let kind = parse_kind(&raw, archive)?;
    if path.is_root() {
        return match kind {
            ArchKind::Dir => Ok(None),
            _ => Err(err("the entry names the root directory".to_owned())),
        };
    }
    let id = |n: u64, what: &str| {
        u32::try_from(n).map_err(|_| err(format!("{what} {n} does not fit in 32 bits")))
    };
    let entry = ArchEntry {
        shown: String::from_utf8_lossy(&raw.name).into_owned(),
        kind,
        mode: (raw.mode & 0o7777) as u32,
        uid: id(raw.uid, "uid")?,
        gid: id(raw.gid, "gid")?,
        xattrs: raw.xattrs().map_err(err)?,
    };
    Ok(Some((path, entry)))
}

/// Refuses an entry below a symlink or a non-directory of the same archive:
/// extracting it would write through the link (`link -> /etc` then
/// `link/passwd`) or fail.
fn check_parents(entries: &BTreeMap<ImagePath, ArchEntry>, archive: &Path) -> Result<(), Error> {
    for (path, e) in entries {
        for a in path.ancestors() {
            let Some(parent) = entries.get(&a) else {
                continue;
            };
            let reason = match parent.kind {
                ArchKind::Dir => continue,
                ArchKind::Symlink(_) => {
                    format!("the path goes through the symlink {}", a.display())
                }
                _ => format!(
                    "the path goes through {}, which is not a directory",
                    a.display()
                ),
            };
            return Err(entry_error(archive, e.shown.as_bytes(), reason));
        }
    }
    Ok(())
}

/// For each hard link, the regular file of the same archive it ends at
/// (following links to links).
fn resolve_hardlinks<'e>(
    entries: &'e BTreeMap<ImagePath, ArchEntry>,
    archive: &Path,
) -> Result<BTreeMap<&'e ImagePath, &'e ImagePath>, Error> {
    let mut out = BTreeMap::new();
    for (path, e) in entries {
        let ArchKind::Hardlink(first) = &e.kind else {
            continue;
        };
        let err = |reason: String| entry_error(archive, e.shown.as_bytes(), reason);
        let mut cur = first;
        let mut steps = 0;
        let target = loop {
            let Some((key, t)) = entries.get_key_value(cur) else {
                return Err(err(format!(
                    "the hardlink target {} is not in the archive",
                    cur.display()
                )));
            };
            match &t.kind {
                ArchKind::File { .. } => break key,
                ArchKind::Hardlink(next) if steps < entries.len() => {
                    cur = next;
                    steps += 1;
                }
                ArchKind::Hardlink(_) => return Err(err("the hardlinks form a loop".to_owned())),
                _ => {
                    return Err(err(format!(
                        "the hardlink target {} is not a regular file",
                        cur.display()
                    )));
                }
            }
        };
        out.insert(path, target);
    }
    Ok(out)
}
