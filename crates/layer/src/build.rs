//! [`build`]: a layer job through the tree to the tar stream, its hashes, the
//! compressor and the caller's writer.
//!
//! The stream is `tar -> sha256 (diff_id) -> compressor -> sha256 (blob) ->
//! out`, each stage bounded in memory. File contents are read once, while
//! they are written, and hashed on the way for the listing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use crate::digest::HashingWriter;
use crate::pgzip::ParGzWriter;
use crate::tree::{Content, Item, Kind, Node, Spool, Tree, What, is_reserved};
use crate::ustar::{self, Header};
use crate::{Compression, Digest, Error, ImagePath, JobOp, LayerJob, host, ingest};
use crate::{Entry, EntryKind, LayerDescriptor, Listing, LowerView};

/// Called with the number of uncompressed tar bytes written since the last
/// call (about every MiB, and after each entry).
pub type Progress<'a> = &'a dyn Fn(u64);

/// What [`build`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// The blob written to `out`: its digest and size, the diff_id of the
    /// tar inside it, and its media type.
    pub desc: LayerDescriptor,
    pub listing: Listing,
}

/// Builds the layer described by `job` and writes its blob to `out`.
///
/// `lower` is the union view of the layers below this one; only `Delete`
/// reads it (to refuse deleting what does not exist, and to choose between a
/// whiteout and an opaque directory). Other operations never depend on it, so
/// a layer without deletions is the same whatever lies below.
///
/// Operations apply in order and later ones win. Parent directories of every
/// entry are emitted (0755, 0:0, unless an operation described them); every
/// entry has mtime `job.epoch`; entries are sorted by their tar name.
///
/// On error, `out` holds a partial blob that the caller must discard.
pub fn build(
    job: &LayerJob,
    lower: &LowerView,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<BuildOutput, Error> {
    check_compression(job.compression)?;
    let mut tree = Tree::new(lower);
    tree.limits = job.limits;
    for (op, job_op) in job.ops.iter().enumerate() {
        // Parents an operation with `owner=` creates are that owner's, as
        // BuildKit's `COPY --chown` makes them.
        tree.parent_owner = match job_op {
            JobOp::Unpack { owner, .. }
            | JobOp::Copy { owner, .. }
            | JobOp::File { owner, .. }
            | JobOp::Mkdir { owner, .. }
            | JobOp::Symlink { owner, .. }
            | JobOp::Workdir { owner, .. } => *owner,
            JobOp::Delete { .. } | JobOp::Attr { .. } => None,
        };
        apply(&mut tree, op, job_op)?;
    }
    write_tree(tree, job.epoch, job.compression, out, progress)
}

/// Small host files are read ahead, this many bytes at most at a time...
const PREFETCH_BYTES: u64 = 8 << 20;
/// ...and this many files at most.
const PREFETCH_FILES: usize = 1024;
/// Files up to this size are read ahead (larger ones are streamed).
const PREFETCH_MAX_FILE: u64 = 1 << 20;

/// A host file read ahead: its bytes and their sha256.
struct Prefetched {
    bytes: Vec<u8>,
    digest: Digest,
}

/// The source and size of an item worth reading ahead: a small host file
/// whose content is written here (not a hard link to an earlier entry).
fn prefetchable<'i, 't>(item: &'i Item<'t>) -> Option<(&'i Content<'t>, u64)> {
    match &item.what {
        What::Node(Node {
            kind:
                Kind::File {
                    content:
                        content @ (Content::Host(_) | Content::Input { .. } | Content::Opened { .. }),
                    size,
                    group: None,
                },
            ..
        }) if *size <= PREFETCH_MAX_FILE => Some((content, *size)),
        _ => None,
    }
}

/// A host file's content opened for reading, its path for messages, and for
/// a spec's input the handle and time to check it against once read.
struct OpenedHost<'c> {
    reader: Box<dyn Read + 'c>,
    path: &'c Path,
    since: Option<(Arc<File>, SystemTime)>,
}

impl OpenedHost<'_> {
    /// After its bytes are read: a spec's input whose inode changed since
    /// the planner opened it for the cache key (its ctime is later, see
    /// [`crate::HostInput::opened_at`]) is refused, for the key may describe
    /// other bytes than these. Its size was checked already; this catches a
    /// rewrite of equal size.
    fn check_unchanged(&self) -> Result<(), Error> {
        let Some((file, since)) = &self.since else {
            return Ok(());
        };
        let meta = file.metadata().map_err(|source| Error::Io {
            path: self.path.to_owned(),
            source,
        })?;
        let ctime = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        if ctime > *since {
            return Err(Error::Io {
                path: self.path.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file changed while composing (after it was read for the cache key): compose again once it is left alone",
                ),
            });
        }
        Ok(())
    }
}

/// Opens a host file's content for reading: an input below a spec's
/// directory without following any symlink, a spec's input file from the
/// handle the planner hashed.
fn open_host<'c>(content: &'c Content<'_>) -> Result<OpenedHost<'c>, Error> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    Ok(match content {
        // A file of a tree read without following symlinks (a `from-dir`
        // directory, a run's upper directory, a squash spool): opened the
        // same way, so a symlink swapped in since it was listed fails.
        Content::Host(path) => OpenedHost {
            reader: Box::new(crate::beneath::open_file(path).map_err(io_err(path))?),
            path,
            since: None,
        },
        Content::Input { path, since } => {
            let file = Arc::new(crate::beneath::open_file(path).map_err(io_err(path))?);
            OpenedHost {
                reader: Box::new(crate::beneath::AtReader::new(file.clone())),
                path,
                since: Some((file, *since)),
            }
        }
        Content::Opened { file, path, since } => OpenedHost {
            reader: Box::new(crate::beneath::AtReader::new(file.clone())),
            path,
            since: Some((file.clone(), *since)),
        },
        Content::Inline(_) | Content::Spool { .. } => unreachable!("not a host file"),
    })
}

/// Reads a whole small file and hashes it, checking it still has the size it
/// had when it was listed (the tar header will promise that size).
fn prefetch(content: &Content<'_>, size: u64) -> Result<Prefetched, Error> {
    let mut opened = open_host(content)?;
    let (reader, path) = (&mut opened.reader, opened.path);
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = vec![0; usize::try_from(size).unwrap_or(0) + 1];
    // Not `fs::read`, which stats the file again for a size we know.
    let n = crate::host::read_listed(reader, &mut bytes).map_err(io_err)?;
    match (n as u64).cmp(&size) {
        std::cmp::Ordering::Less => return Err(changed(path, size, "fewer")),
        std::cmp::Ordering::Greater => return Err(changed(path, size, "more")),
        std::cmp::Ordering::Equal => {}
    }
    opened.check_unchanged()?;
    bytes.truncate(n);
    let digest = Digest::of(&bytes);
    Ok(Prefetched { bytes, digest })
}

/// Reads and hashes the small host files of a window, in parallel on the pool.
fn read_window(window: &[Item<'_>]) -> Vec<Option<Result<Prefetched, Error>>> {
    use rayon::prelude::*;
    window
        .par_iter()
        .map(|item| prefetchable(item).map(|(content, size)| prefetch(content, size)))
        .collect()
}

/// The next window of entries to write: up to [`PREFETCH_FILES`] entries
/// whose small host files total at most [`PREFETCH_BYTES`], or one larger
/// file on its own.
fn next_window<'t>(items: &mut std::iter::Peekable<std::vec::IntoIter<Item<'t>>>) -> Vec<Item<'t>> {
    let mut budget = PREFETCH_BYTES;
    let mut window = Vec::new();
    while let Some(item) = items.next_if(|i| {
        window.len() < PREFETCH_FILES && prefetchable(i).is_none_or(|(_, size)| size <= budget)
    }) {
        if let Some((_, size)) = prefetchable(&item) {
            budget -= size;
        }
        window.push(item);
    }
    if window.is_empty() {
        // A file larger than the budget: streamed on its own.
        window.extend(items.next());
    }
    window
}

/// The tar stream of `tree`, compressed into `out`.
///
/// Why read ahead: on 50,000 small files, opening, reading and hashing each
/// file one after the other on the writing thread took longer than
/// everything else the build does. A window's files are read and hashed in
/// parallel on the pool while this thread writes the window before it, in
/// order (reading and writing in turn left a core idle while the writer
/// hashed the tar stream; overlapping them took 5-10% off a cold build of
/// small files, measured). At most two windows are in memory.
pub(crate) fn write_tree(
    tree: Tree<'_>,
    epoch: u64,
    compression: Compression,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<BuildOutput, Error> {
    let (items, spools) = tree.into_items();

    let out = BufWriter::with_capacity(1 << 16, out);
    let blob = match compression {
        Compression::None => BlobOut::Tar(out, 0),
        _ => BlobOut::Hashed(HashingWriter::new(out)),
    };
    let encoder = Encoder::new(compression, blob).map_err(Error::Write)?;
    let mut tar = TarOut {
        w: BufWriter::with_capacity(1 << 16, HashingWriter::new(encoder)),
        pending: 0,
        progress,
    };
    let mut entries = Vec::with_capacity(items.len());
    // The first path of each hardlink group (in tar order) carries the content.
    let mut carriers: BTreeMap<u64, ImagePath> = BTreeMap::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut items = items.into_iter().peekable();
    let mut window = next_window(&mut items);
    let mut read = read_window(&window);
    while !window.is_empty() {
        let ahead = next_window(&mut items);
        let mut read_ahead = Vec::new();
        rayon::in_place_scope(|s| -> Result<(), Error> {
            s.spawn(|_| read_ahead = read_window(&ahead));
            for (item, pre) in window.drain(..).zip(read.drain(..)) {
                let pre = pre.transpose()?;
                let entry =
                    write_item(&mut tar, item, epoch, &spools, &mut carriers, &mut buf, pre)?;
                entries.push(entry);
            }
            Ok(())
        })?;
        (window, read) = (ahead, read_ahead);
    }
    tar.write(&[0u8; 2 * ustar::BLOCK as usize])?;
    tar.report();
    // Every byte read from a plain tar in place was the checked one only if
    // the file did not change meanwhile.
    for spool in &spools {
        if let Some(stamp) = &spool.stamp {
            crate::inplace::unchanged(&spool.file, &spool.archive, stamp)?;
        }
    }

    let diff = tar
        .w
        .into_inner()
        .map_err(|e| Error::Write(e.into_error()))?;
    let (diff_id, _, encoder) = diff.finish();
    let blob = encoder.finish().map_err(Error::Write)?;
    let (blob, size, mut out) = blob.finish();
    let blob = blob.unwrap_or(diff_id);
    out.flush().map_err(Error::Write)?;
    Ok(BuildOutput {
        desc: LayerDescriptor {
            diff_id,
            blob,
            size,
            media_type: compression.media_type(),
        },
        listing: Listing { entries },
    })
}

fn check_compression(c: Compression) -> Result<(), Error> {
    match c {
        Compression::Gzip { level } if level > 9 => Err(Error::BadCompression(format!(
            "gzip level {level} is out of range 0-9"
        ))),
        Compression::Zstd { level } if !zstd::compression_level_range().contains(&level) => {
            let r = zstd::compression_level_range();
            Err(Error::BadCompression(format!(
                "zstd level {level} is out of range {}-{}",
                r.start(),
                r.end()
            )))
        }
        _ => Ok(()),
    }
}

fn apply<'a>(tree: &mut Tree<'a>, op: usize, job_op: &'a JobOp) -> Result<(), Error> {
    match job_op {
        JobOp::Unpack {
            archive,
            to,
            owner,
            mode,
        } => {
            check_names(op, to)?;
            ingest::unpack(tree, archive, to, *owner, *mode)
        }
        JobOp::Copy {
            src,
            to,
            into_dir,
            mode,
            owner,
        } => {
            check_names(op, to)?;
            host::copy(tree, op, src, to, *into_dir, *mode, *owner)
        }
        JobOp::File {
            path,
            content,
            mode,
            owner,
        } => {
            check_leaf(op, path)?;
            let kind = Kind::File {
                content: Content::Inline(content),
                size: content.len() as u64,
                group: None,
            };
            tree.put(
                path.clone(),
                Node::new(kind, mode.unwrap_or(0o644), *owner),
                true,
            );
            Ok(())
        }
        JobOp::Mkdir { path, mode, owner } => {
            check_names(op, path)?;
            let node = Node::new(Kind::Dir { opaque: false }, mode.unwrap_or(0o755), *owner);
            tree.put(path.clone(), node, true);
            Ok(())
        }
        JobOp::Symlink {
            path,
            target,
            owner,
        } => {
            check_leaf(op, path)?;
            let reason = if target.is_empty() {
                "the symlink target is empty"
            } else if target.contains(&0) {
                "the symlink target contains a NUL byte"
            } else {
                let node = Node::new(Kind::Symlink(target.clone()), 0o777, *owner);
                tree.put(path.clone(), node, true);
                return Ok(());
            };
            Err(Error::BadPath {
                op,
                path: path.display(),
                reason: reason.to_owned(),
            })
        }
        JobOp::Delete { path } => tree.delete(op, path),
        JobOp::Attr {
            path,
            mode,
            uid,
            gid,
            recursive,
        } => {
            tree.attr(path, *mode, *uid, *gid, *recursive);
            Ok(())
        }
        JobOp::Workdir { path, owner } => {
            check_names(op, path)?;
            // Not a description of the directory: one the layers below
            // have keeps their mode and owner (`replace_meta` false).
            let node = Node::new(Kind::Dir { opaque: false }, 0o755, *owner);
            tree.put(path.clone(), node, false);
            Ok(())
        }
    }
}

/// Refuses a path with a component reserved for whiteouts.
fn check_names(op: usize, path: &ImagePath) -> Result<(), Error> {
    if path.components().any(is_reserved) {
        return Err(Error::BadPath {
            op,
            path: path.display(),
            reason: host::RESERVED.to_owned(),
        });
    }
    Ok(())
}

/// Refuses a path that cannot hold a non-directory.
fn check_leaf(op: usize, path: &ImagePath) -> Result<(), Error> {
    if path.is_root() {
        return Err(Error::BadPath {
            op,
            path: path.display(),
            reason: "only a directory can be at the root".to_owned(),
        });
    }
    check_names(op, path)
}

/// The tar stream on its way to the diff_id hash, counting for progress.
struct TarOut<'p, W: Write> {
    w: BufWriter<W>,
    pending: u64,
    progress: Progress<'p>,
}

impl<W: Write> TarOut<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.w.write_all(bytes).map_err(Error::Write)?;
        self.pending += bytes.len() as u64;
        if self.pending >= 1 << 20 {
            self.report();
        }
        Ok(())
    }

    fn header(&mut self, h: &Header<'_>) -> Result<(), Error> {
        let n = ustar::write_header(&mut self.w, h).map_err(Error::Write)?;
        self.pending += n;
        Ok(())
    }

    fn pad(&mut self, len: u64) -> Result<(), Error> {
        let n = ustar::pad(&mut self.w, len).map_err(Error::Write)?;
        self.pending += n;
        Ok(())
    }

    fn report(&mut self) {
        if self.pending > 0 {
            (self.progress)(self.pending);
            self.pending = 0;
        }
    }
}

/// Writes one tar entry (and its content) and returns its listing entry.
fn write_item<W: Write>(
    tar: &mut TarOut<'_, W>,
    item: Item<'_>,
    epoch: u64,
    spools: &[Spool],
    carriers: &mut BTreeMap<u64, ImagePath>,
    buf: &mut [u8],
    pre: Option<Prefetched>,
) -> Result<Entry, Error> {
    let mut header = Header {
        name: &item.name,
        typeflag: ustar::kind::FILE,
        mode: 0,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: epoch,
        link: b"",
        device: None,
        xattrs: &[],
    };
    let mut entry = Entry::bare(item.path.clone(), EntryKind::Whiteout);
    let node = match item.what {
        What::Whiteout => {
            tar.header(&header)?;
            return Ok(entry);
        }
        What::Opaque => {
            tar.header(&header)?;
            entry.kind = EntryKind::Opaque;
            return Ok(entry);
        }
        What::Node(node) => node,
    };
    header.mode = node.mode;
    header.uid = node.uid;
    header.gid = node.gid;
    header.xattrs = &node.xattrs;
    entry.mode = node.mode;
    entry.uid = node.uid;
    entry.gid = node.gid;
    entry.xattrs = node.xattrs.clone();
    match &node.kind {
        Kind::Dir { .. } => {
            header.typeflag = ustar::kind::DIR;
            entry.kind = EntryKind::Dir;
        }
        Kind::Symlink(target) => {
            header.typeflag = ustar::kind::SYMLINK;
            header.link = target;
            entry.kind = EntryKind::Symlink;
            entry.link = Some(target.clone());
        }
        Kind::Char(major, minor) | Kind::Block(major, minor) => {
            let char = matches!(node.kind, Kind::Char(..));
            header.typeflag = if char {
                ustar::kind::CHAR
            } else {
                ustar::kind::BLOCK
            };
            header.device = Some((*major, *minor));
            entry.kind = if char {
                EntryKind::Char
            } else {
                EntryKind::Block
            };
            entry.device = Some((*major, *minor));
        }
        Kind::Fifo => {
            header.typeflag = ustar::kind::FIFO;
            entry.kind = EntryKind::Fifo;
        }
        Kind::File {
            content,
            size,
            group,
        } => {
            if let Some(carrier) = group.and_then(|g| carriers.get(&g)).cloned() {
                header.typeflag = ustar::kind::HARDLINK;
                header.link = &carrier.0;
                tar.header(&header)?;
                entry.kind = EntryKind::Hardlink;
                entry.link = Some(carrier.0);
                return Ok(entry);
            }
            if let Some(g) = group {
                carriers.insert(*g, item.path.clone());
            }
            header.size = *size;
            tar.header(&header)?;
            let digest = match pre {
                Some(p) => {
                    tar.write(&p.bytes)?;
                    p.digest
                }
                None => write_content(tar, content, *size, spools, buf)?,
            };
            tar.pad(*size)?;
            entry.kind = EntryKind::File;
            entry.size = *size;
            entry.digest = Some(digest);
            return Ok(entry);
        }
    }
    tar.header(&header)?;
    Ok(entry)
}

/// Streams exactly `size` bytes of `content` into the tar and returns their
/// sha256. A source that yields fewer bytes, or more (a host file that changed
/// since it was listed), is an error: the header already promised `size`.
fn write_content<W: Write>(
    tar: &mut TarOut<'_, W>,
    content: &Content<'_>,
    size: u64,
    spools: &[Spool],
    buf: &mut [u8],
) -> Result<Digest, Error> {
    match content {
        Content::Inline(bytes) => {
            tar.write(bytes)?;
            Ok(Digest::of(bytes))
        }
        Content::Host(_) | Content::Input { .. } | Content::Opened { .. } => {
            let mut opened = open_host(content)?;
            let path = opened.path;
            let digest = copy_exact(tar, &mut opened.reader, size, path, buf)?;
            let mut probe = [0u8; 1];
            let more = opened.reader.read(&mut probe).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
            if more > 0 {
                return Err(changed(path, size, "more"));
            }
            opened.check_unchanged()?;
            Ok(digest)
        }
        Content::Spool { spool, offset } => {
            let spool = &spools[*spool];
            let mut f = crate::beneath::AtReader::new(spool.file.clone());
            f.seek(SeekFrom::Start(*offset))
                .map_err(|source| Error::Io {
                    path: spool.archive.clone(),
                    source,
                })?;
            copy_exact(tar, &mut f, size, &spool.archive, buf)
        }
    }
}

fn copy_exact<W: Write>(
    tar: &mut TarOut<'_, W>,
    r: &mut dyn Read,
    size: u64,
    path: &Path,
    buf: &mut [u8],
) -> Result<Digest, Error> {
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(changed(path, size, "fewer")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        hasher.update(&buf[..n]);
        tar.write(&buf[..n])?;
        left -= n as u64;
    }
    Ok(Digest(hasher.finalize().into()))
}

fn changed(path: &Path, size: u64, how: &str) -> Error {
    Error::Io {
        path: path.to_owned(),
        source: io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the file changed while the layer was written: it has {how} than the {size} bytes it had when listed"
            ),
        ),
    }
}

/// The blob on its way to the caller's writer: hashed and counted, unless it
/// is the tar itself (no compression), whose digest is the diff_id: one
/// sha256 pass less over every byte of an uncompressed layer.
enum BlobOut<W: Write> {
    Hashed(HashingWriter<W>),
    Tar(W, u64),
}

impl<W: Write> BlobOut<W> {
    /// The digest (`None`: the diff_id's), the byte count and the writer.
    fn finish(self) -> (Option<Digest>, u64, W) {
        match self {
            BlobOut::Hashed(h) => {
                let (digest, size, w) = h.finish();
                (Some(digest), size, w)
            }
            BlobOut::Tar(w, size) => (None, size, w),
        }
    }
}

impl<W: Write> Write for BlobOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BlobOut::Hashed(h) => h.write(buf),
            BlobOut::Tar(w, size) => {
                let n = w.write(buf)?;
                *size += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlobOut::Hashed(h) => h.flush(),
            BlobOut::Tar(w, _) => w.flush(),
        }
    }
}

/// The compressor between the diff_id hash and the blob hash.
enum Encoder<W: Write> {
    Gzip(ParGzWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    fn new(c: Compression, w: W) -> io::Result<Encoder<W>> {
        Ok(match c {
            // Chunked on every core; the bytes depend on the data and the
            // level only (see `pgzip`).
            Compression::Gzip { level } => Encoder::Gzip(ParGzWriter::new(w, level)),
            Compression::Zstd { level } => {
                let mut e = zstd::stream::write::Encoder::new(w, level)?;
                // The multi-threaded mode writes the same bytes whatever the
                // number of workers (tested), unlike the single-threaded one.
                e.multithread(zstd_workers())?;
                // Jobs of 2 MiB rather than the default 4 windows (8 MiB at
                // level 3): zstd keeps a few jobs' input and output in
                // memory, 70 MiB with the default. Part of the bytes, so of
                // the identity; it costs about 0.05% of size.
                e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                e.include_checksum(false)?;
                Encoder::Zstd(e)
            }
            Compression::None => Encoder::None(w),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// The size of a zstd job (see `Encoder::new`), named by [`Compression::identity`].
pub(crate) const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// zstd workers: the threads of the caller's pool (so `--jobs` bounds them
/// too), up to 4. Does not change the bytes.
pub(crate) fn zstd_workers() -> u32 {
    rayon::current_num_threads().clamp(1, 4) as u32
}
