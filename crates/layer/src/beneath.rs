//! Host inputs opened so that what is read is what was checked: a spec's
//! source is resolved once, component by component on open directory
//! handles, to a file handle and the physical path it lies at; everything
//! read below an input directory is then opened without following any
//! symlink at all (`openat2` with `RESOLVE_NO_SYMLINKS`, or a walk with
//! `O_NOFOLLOW` where the kernel lacks it).
//!
//! Why: checking a path and opening it again later is a race. Another
//! process that can write the spec's directory (a checkout shared with a
//! CI job, a directory other users can write) may swap `inputs/x` for a
//! symlink to `/etc/shadow` between the check and the open, and strata,
//! running as root, would pack the outside file. Here the file that the
//! planner checked and hashed is the open handle that the layer packs, and a
//! symlink swapped in anywhere below an input directory makes the open fail
//! instead of leading elsewhere.
//!
//! Why a walk of our own for a spec's source rather than `RESOLVE_BENEATH`:
//! a source may itself be, or pass through, a symlink that stays inside the
//! inputs root, also an absolute one (`inputs/current -> /srv/spec/v2`),
//! which `RESOLVE_BENEATH` refuses outright; and the caller needs the
//! physical path the walk ended at, to check it against the inputs root and
//! to open what lies below it without following symlinks. The walk holds a
//! handle on each directory it passes, reads each symlink on its parent's
//! handle, and tracks the physical path as the names it descended, so a
//! rename or swap meanwhile changes what it finds but never makes the
//! reported path differ from what was opened.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// As many symlinks as Linux follows in one path (`MAXSYMLINKS`).
const MAX_HOPS: usize = 40;

/// A source of a spec, opened: its name as the spec wrote it, the physical
/// path it was found at, and for a regular file the open handle that is
/// hashed for the cache key and packed into the layer.
#[derive(Debug, Clone)]
pub struct HostInput {
    path: PathBuf,
    real: PathBuf,
    file: Option<Arc<File>>,
    /// For a directory, the entries an `exclude=` leaves out.
    excludes: Option<Arc<crate::Excludes>>,
    opened_at: std::time::SystemTime,
    /// The blake3 of the file's bytes that its cache key was made from, as
    /// the planner noted it ([`HostInput::note_content_digest`]): what a
    /// plain tar read in place is checked against.
    content_digest: Arc<std::sync::OnceLock<([u8; 32], Option<crate::inplace::Stamp>)>>,
}

impl HostInput {
    /// Resolves `path` (following symlinks, as the spec named it) to a
    /// regular file or a directory and opens it. Relative paths are taken
    /// from the working directory.
    pub fn open(path: &Path) -> io::Result<HostInput> {
        // The fine clock: an inode time is stamped from the same real-time
        // clock, coarse (up to a tick behind) or fine, so no change before
        // this instant has a later ctime.
        let opened_at = std::time::SystemTime::now();
        let absolute = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir()?.join(path)
        };
        let (real, file) = match resolve(&absolute) {
            Err(e) if e.raw_os_error() == Some(Errno::MFILE.raw_os_error()) && raise_fd_limit() => {
                resolve(&absolute)?
            }
            r => r?,
        };
        Ok(HostInput {
            path: path.to_owned(),
            real,
            file: file.map(Arc::new),
            excludes: None,
            opened_at,
            content_digest: Arc::default(),
        })
    }

    /// This input with the entries `excludes` matches left out (of a
    /// directory: they are neither hashed nor copied).
    pub fn with_excludes(mut self, excludes: crate::Excludes) -> HostInput {
        self.excludes = Some(Arc::new(excludes));
        self
    }

    /// The `exclude=` patterns of this input, if it has any.
    pub fn excludes(&self) -> Option<&crate::Excludes> {
        self.excludes.as_deref()
    }

    /// When it was opened, before anything of it was read for a cache key:
    /// a file of it whose inode changed since (its ctime, which only the
    /// kernel sets, is later) may not be what the key says, and the layer
    /// writer refuses it. Nothing written before the open is ever refused;
    /// a change within a clock tick after it may be stamped with a coarse
    /// time that is not later, and is not seen (a tick, a few ms, is the
    /// limit of what inode times tell, as for git's racy index).
    pub fn opened_at(&self) -> std::time::SystemTime {
        self.opened_at
    }

    /// The path as the spec wrote it (joined to the spec's directory): for
    /// messages, and for the name a copied file takes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The physical path the input was found at: absolute, no symlink in it.
    pub fn real(&self) -> &Path {
        &self.real
    }

    /// The open regular file; `None` for a directory.
    pub fn file(&self) -> Option<&File> {
        self.file.as_deref()
    }

    pub fn is_dir(&self) -> bool {
        self.file.is_none()
    }

    /// A reader of the open file from its start, independent of any other
    /// reader of it (two layers may copy the same input at once).
    pub fn reader(&self) -> Option<AtReader> {
        self.file.clone().map(|file| AtReader { file, pos: 0 })
    }

    pub(crate) fn shared_file(&self) -> Option<Arc<File>> {
        self.file.clone()
    }

    /// Notes the blake3 of the file's bytes, as hashed (or remembered) for
    /// the cache key, and `hashed`: the file's stat data from before the
    /// read, when the digest was computed from this handle now (`None`: it
    /// came from the input index). A plain tar that a layer reads in place is
    /// checked against them (see `inplace`), so bytes that changed since are
    /// an error, never a layer cached under the old key. The first digest
    /// noted stays.
    pub fn note_content_digest(&self, digest: [u8; 32], hashed: Option<&Metadata>) {
        let stamp = hashed.map(crate::inplace::Stamp::of_meta);
        let _ = self.content_digest.set((digest, stamp));
    }

    /// The digest [`note_content_digest`](Self::note_content_digest) noted.
    pub(crate) fn content_digest(&self) -> Option<[u8; 32]> {
        self.content_digest.get().map(|(d, _)| *d)
    }

    /// The stat data the planner hashed the file with, if it did.
    pub(crate) fn hashed_stamp(&self) -> Option<crate::inplace::Stamp> {
        self.content_digest.get().and_then(|(_, s)| *s)
    }
}

/// Raises the soft limit of open files to the hard limit, once. Each file a
/// spec names is held open from planning to packing ([`HostInput`]), so a
/// spec of more than about a thousand file inputs met the usual soft limit
/// of 1,024 (`EMFILE`), while the hard limit is far higher; Go's runtime
/// raises it the same way at start.
fn raise_fd_limit() -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    static RAISED: AtomicBool = AtomicBool::new(false);
    if RAISED.swap(true, Ordering::Relaxed) {
        return false;
    }
    let limit = getrlimit(Resource::Nofile);
    match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) if maximum > current => setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )
        .is_ok(),
        _ => false,
    }
}

/// Reads a shared file with `pread`, so readers of one handle do not move
/// each other's offset.
#[derive(Debug)]
pub struct AtReader {
    file: Arc<File>,
    pos: u64,
}

impl AtReader {
    pub(crate) fn new(file: Arc<File>) -> AtReader {
        AtReader { file, pos: 0 }
    }
}

impl std::io::Seek for AtReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            std::io::SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            std::io::SeekFrom::Current(d) => (self.pos, d),
            std::io::SeekFrom::End(d) => (self.file.metadata()?.len(), d),
        };
        self.pos = base
            .checked_add_signed(delta)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}

impl Read for AtReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Whether `openat2` is known to be missing (an old kernel or a seccomp
/// filter that refuses it): then every open walks.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `path` with `flags` without following a symlink in any of its
/// components: a symlink anywhere fails with `ELOOP` (or `ENOTDIR` on the
/// walk), whatever it points to.
fn open_nofollow(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    open_nofollow_errno(path, flags).map_err(|e| match e {
        // The path was checked to be symlink-free and of this kind when the
        // input was opened or listed: something replaced part of it since.
        Errno::LOOP | Errno::NOTDIR => io::Error::new(
            io::ErrorKind::InvalidInput,
            "it changed while it was read (a symlink or another kind of file now \
             stands in its path, and symlinks there are never followed)",
        ),
        e => e.into(),
    })
}

fn open_nofollow_errno(path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        // `EAGAIN` says a rename raced the lookup: try again, then walk.
        for _ in 0..4 {
            match rustix::fs::openat2(CWD, path, flags, Mode::empty(), resolve) {
                Err(Errno::NOSYS | Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                Err(Errno::AGAIN) => {}
                r => return r,
            }
        }
    }
    walk_nofollow(path, flags)
}

/// The fallback of [`open_nofollow`]: one `openat` with `O_NOFOLLOW` per
/// component, each on the handle of the directory before it.
fn walk_nofollow(path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(
        CWD,
        if path.is_absolute() { "/" } else { "." },
        dir_flags,
        Mode::empty(),
    )?;
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return rustix::fs::openat(&dir, ".", flags, Mode::empty());
    };
    for name in parents {
        dir = rustix::fs::openat(&dir, *name, dir_flags, Mode::empty())?;
    }
    rustix::fs::openat(&dir, *last, flags, Mode::empty())
}

/// The regular file at the physical path `path`, opened without following
/// any symlink. Never blocks: a fifo put in its place is refused, not
/// waited on.
pub fn open_file(path: &Path) -> io::Result<File> {
    let fd = open_nofollow(path, OFlags::RDONLY | OFlags::NONBLOCK)?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file any more",
        ));
    }
    Ok(file)
}

/// The target of the symlink at the physical path `path`, read on its
/// parent directory's handle (opened without following symlinks).
pub fn read_link(path: &Path) -> io::Result<PathBuf> {
    let (parent, name) = split(path)?;
    let dir = open_nofollow(parent, OFlags::PATH | OFlags::DIRECTORY)?;
    let target = rustix::fs::readlinkat(&dir, name, Vec::new()).map_err(|e| match e {
        // Listed as a symlink, no longer one.
        Errno::INVAL => changed(),
        e => e.into(),
    })?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        )),
    }
}

/// The entries of the directory at the physical path `dir` (opened without
/// following symlinks), sorted by name bytes, each with its metadata (not
/// following symlinks; an error stays with its entry, so a caller can report
/// errors in name order). They are stated on the rayon pool, relative to the
/// open directory: one at a time by full path, that was a tenth of a cold
/// build of 50,000 small files. The directory is closed when this returns,
/// so a walk that descends holds no descriptor per level.
pub fn read_dir_stated(dir: &Path) -> io::Result<Vec<(OsString, io::Result<Metadata>)>> {
    use rayon::prelude::*;
    let fd = open_nofollow(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    names.sort_unstable();
    Ok(names
        .into_par_iter()
        .map(|name| {
            let meta = lstat_at(&fd, &name);
            (name, meta)
        })
        .collect())
}

/// [`read_dir_stated`], with each entry handed to `f` on the rayon pool
/// while the directory is open, and, with `open_files`, a regular file
/// handed over opened for reading (without following symlinks, never blocking) and stated through
/// that handle: a caller that reads the file then makes four calls for it
/// (open, stat, read, close) rather than eight (a stat by `O_PATH` handle
/// here, then an open by its full path, two stats, a read and two closes).
/// On 53,000 input files that was half the system time of hashing them.
/// Without `open_files` every entry is stated by its `O_PATH` handle, as
/// [`read_dir_stated`] does (cheaper when the caller will not read it:
/// opening for reading and closing cost 15% more CPU than an `O_PATH`
/// handle on a warm compose of 53,000 files).
/// Whether an entry is a regular file comes from the directory listing
/// (`d_type`); an entry the filesystem does not type, or that is something
/// else, is stated as [`read_dir_stated`] states it. A regular file that
/// is something else once opened (swapped meanwhile) is an error of its
/// entry.
pub fn map_dir_entries<T: Send>(
    dir: &Path,
    open_files: bool,
    f: impl Fn(OsString, io::Result<Metadata>, Option<File>) -> T + Sync,
) -> io::Result<Vec<T>> {
    use rayon::prelude::*;
    let fd = open_nofollow(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            let regular = open_files && entry.file_type() == FileType::RegularFile;
            names.push((OsString::from_vec(name.to_vec()), regular));
        }
    }
    names.sort_unstable();
    Ok(names
        .into_par_iter()
        .map(|(name, regular)| {
            if regular {
                let opened = rustix::fs::openat(
                    &fd,
                    name.as_os_str(),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| match e {
                    // Listed as a file, a symlink now.
                    Errno::LOOP => Some(changed()),
                    // Unreadable (an excluded file need not be readable):
                    // stated as any other entry, and its reader fails.
                    _ => None,
                })
                .map(File::from)
                .and_then(|file| match file.metadata() {
                    Ok(meta) if meta.is_file() => Ok((meta, file)),
                    Ok(_) => Err(Some(changed())),
                    Err(e) => Err(Some(e)),
                });
                match opened {
                    Ok((meta, file)) => return f(name, Ok(meta), Some(file)),
                    Err(Some(e)) => return f(name, Err(e), None),
                    Err(None) => {}
                }
            }
            let meta = lstat_at(&fd, &name);
            f(name, meta, None)
        })
        .collect())
}

/// Resolves the absolute `path` as `open(2)` would, following symlinks,
/// on directory handles: the physical path it ends at, and the open file
/// when that is a regular file (`None` for a directory). Anything else (a
/// fifo, a socket, a device) is refused without being opened for reading.
fn resolve(path: &Path) -> io::Result<(PathBuf, Option<File>)> {
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = rustix::fs::openat(CWD, "/", dir_flags, Mode::empty())?;
    // The directories descended into, with their names: the physical path.
    let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, path.as_os_str().as_bytes());
    let mut hops = 0;
    let mut file = None;
    let mut file_name = None;
    while let Some(name) = todo.pop() {
        if name == "." {
            continue;
        }
        if name == ".." {
            stack.pop();
            continue;
        }
        let parent = stack.last().map_or(root.as_fd(), |(fd, _)| fd.as_fd());
        let stat = rustix::fs::statat(parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Errno::LOOP.into());
                }
                let target =
                    rustix::fs::readlinkat(parent, name.as_os_str(), Vec::new()).map_err(|e| {
                        match e {
                            // It stopped being a symlink since the stat.
                            Errno::INVAL => changed(),
                            e => e.into(),
                        }
                    })?;
                let target = target.into_bytes();
                if target.first() == Some(&b'/') {
                    stack.clear();
                }
                push_components(&mut todo, &target);
            }
            FileType::Directory => {
                let fd = rustix::fs::openat(parent, name.as_os_str(), dir_flags, Mode::empty())
                    .map_err(|e| {
                        if e == Errno::NOTDIR {
                            changed()
                        } else {
                            e.into()
                        }
                    })?;
                stack.push((fd, name));
            }
            FileType::RegularFile if todo.is_empty() => {
                let fd = rustix::fs::openat(
                    parent,
                    name.as_os_str(),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| {
                    if e == Errno::LOOP {
                        changed()
                    } else {
                        e.into()
                    }
                })?;
                let f = File::from(fd);
                // What was opened is what is packed: check it, not the stat.
                if !f.metadata()?.is_file() {
                    return Err(changed());
                }
                file = Some(f);
                file_name = Some(name);
            }
            FileType::RegularFile => return Err(Errno::NOTDIR.into()),
            _ if todo.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file or a directory",
                ));
            }
            _ => return Err(Errno::NOTDIR.into()),
        }
    }
    let mut real = PathBuf::from("/");
    for (_, name) in &stack {
        real.push(name);
    }
    if let Some(name) = file_name {
        real.push(name);
    }
    Ok((real, file))
}

fn push_components(todo: &mut Vec<OsString>, path: &[u8]) {
    for c in path.split(|b| *b == b'/').rev().filter(|c| !c.is_empty()) {
        todo.push(OsString::from_vec(c.to_vec()));
    }
}

fn changed() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "it changed while it was read (a file swapped for a symlink, or back)",
    )
}

/// The entry `name` of the directory `dir` as `lstat` gives it: `O_PATH`
/// opens the entry itself, a symlink included, without reading it, and its
/// `fstat` is the entry's `lstat`.
fn lstat_at(dir: &impl AsFd, name: &OsStr) -> io::Result<Metadata> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
    .and_then(|entry| File::from(entry).metadata())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_to_the_physical_path_and_opens_once() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"content").unwrap();
        symlink("a/b", root.join("rel")).unwrap();
        symlink(root.join("a"), root.join("abs")).unwrap();
        symlink("../b/f", root.join("a/b/up")).unwrap();
        for (given, real) in [
            ("a/b/f", "a/b/f"),
            ("rel/f", "a/b/f"),
            ("abs/b/f", "a/b/f"),
            ("abs/b/up", "a/b/f"),
            ("abs/b/../b/./f", "a/b/f"),
            ("rel", "a/b"),
        ] {
            let input = HostInput::open(&root.join(given)).unwrap();
            assert_eq!(input.real(), root.join(real), "{given}");
            assert_eq!(input.path(), root.join(given));
            if let Some(mut r) = input.reader() {
                let mut s = String::new();
                r.read_to_string(&mut s).unwrap();
                assert_eq!(s, "content");
            } else {
                assert!(input.is_dir());
            }
        }
        symlink("loop", root.join("loop")).unwrap();
        assert!(HostInput::open(&root.join("loop")).is_err());
        assert!(HostInput::open(&root.join("a/b/f/x")).is_err());
        assert!(HostInput::open(&root.join("missing")).is_err());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("p");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(HostInput::open(&fifo).is_err());
        assert!(open_file(&fifo).is_err());
    }

    #[test]
    fn below_an_input_no_symlink_is_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/f"), b"x").unwrap();
        std::fs::write(root.join("secret"), b"s").unwrap();
        symlink(root.join("dir"), root.join("linkdir")).unwrap();
        symlink(root.join("secret"), root.join("dir/link")).unwrap();
        let plain = root.join("dir/f");
        assert!(open_file(&plain).is_ok());
        assert!(walk_nofollow(&plain, OFlags::RDONLY | OFlags::NOFOLLOW).is_ok());
        for path in [root.join("linkdir/f"), root.join("dir/link")] {
            assert!(open_file(&path).is_err(), "{}", path.display());
            assert!(
                walk_nofollow(&path, OFlags::RDONLY | OFlags::NOFOLLOW).is_err(),
                "{}",
                path.display()
            );
        }
        assert_eq!(
            read_link(&root.join("dir/link")).unwrap(),
            root.join("secret")
        );
        assert!(read_dir_stated(&root.join("linkdir")).is_err());
        let names: Vec<_> = read_dir_stated(&root.join("dir"))
            .unwrap()
            .into_iter()
            .map(|(n, m)| (n, m.unwrap().file_type().is_symlink()))
            .collect();
        assert_eq!(
            names,
            [(OsString::from("f"), false), (OsString::from("link"), true)]
        );
    }
}
