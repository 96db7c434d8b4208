//! The on-disk applier behind `strata rootfs`: layer blobs streamed in order
//! into a directory, whiteouts applied, nothing ever written outside it.
//!
//! Why it cannot escape, whatever a layer holds: every path is an
//! [`ImagePath`] (normalised, no `..`), turned into `root/a/b/c` component
//! by component; before anything is created or removed, each ancestor is
//! checked with `symlink_metadata` to be a real directory (a symlink or file
//! in the way is replaced by a directory, as the model says, never followed);
//! the leaf is removed first and then created with calls that do not follow
//! a symlink at the leaf (`O_EXCL` opens, `symlink`, `link`, `mknod`), and
//! modes and owners are set through the open file or with `lchown`. A hard
//! link's target is resolved the same way, inside the root.
//!
//! One pass per blob: a whiteout or opaque marker must hide only what the
//! layers below left, so the paths this layer already wrote (tar order puts
//! some names before `.wh..wh..opq`) are remembered and spared. Directory
//! modes are applied last, deepest first, so that a read-only directory does
//! not stop its own contents from being written; their mtimes after that,
//! because writing into a directory changes its mtime. Every entry gets the
//! mtime its layer gives it, as umoci restores them, so that a tree
//! unpacked, edited and packed again by another tool shows only what was
//! edited as changed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_layer::read::BlobReader;
use strata_layer::{Entry, EntryKind, ImagePath};

use crate::Error;
use crate::idmap::IdMap;

/// What an applied root file system skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Device nodes not created (only root may create them).
    pub skipped_devices: Vec<String>,
    /// Extended attributes not set (only root may set most of them).
    pub skipped_xattrs: usize,
}

/// Applies layers, bottom first, to a directory.
pub struct Applier {
    root: PathBuf,
    /// Owners set and device nodes made: only when running as root.
    privileged: bool,
    /// Paths written by the layer being applied.
    written: BTreeSet<ImagePath>,
    /// Every directory's mode, set at the end.
    dir_modes: BTreeMap<ImagePath, u32>,
    /// Every directory's mtime from its layer, set after the modes.
    dir_mtimes: BTreeMap<ImagePath, u64>,
    report: ApplyReport,
    /// The id map of a `run` step's namespace: owners are written as the
    /// host ids that stand for them there.
    shift: Option<IdMap>,
    /// One layer as an overlayfs lower directory (`snapshot`) rather than
    /// applied onto the layers below: whiteouts become whiteout devices,
    /// opaque markers the `user.overlay.opaque` xattr.
    pub(crate) overlay: bool,
    /// In overlay mode, directories made for a path whose own entry the
    /// layer lacks: their owner and mode would hide those of the layers
    /// below, so a layer with any cannot be a snapshot.
    pub(crate) implied: BTreeSet<ImagePath>,
}

/// Whether this process runs as root (and so can set owners and make devices).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Applier {
    /// An applier into the existing directory `root`.
    pub fn new(root: &Path, privileged: bool) -> Applier {
        Applier {
            root: root.to_path_buf(),
            privileged,
            written: BTreeSet::new(),
            dir_modes: BTreeMap::new(),
            dir_mtimes: BTreeMap::new(),
            report: ApplyReport::default(),
            shift: None,
            overlay: false,
            implied: BTreeSet::new(),
        }
    }

    /// Shifts owners into a `run` step's id range.
    pub(crate) fn set_shift(&mut self, ids: &IdMap) {
        self.shift = Some(ids.clone());
    }

    /// The host owner that stands for the image's `uid`:`gid`: itself, or
    /// its id in the run's range (an id the range lacks becomes its nobody,
    /// 65534, as the kernel shows unmapped ids).
    fn host_owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        match &self.shift {
            None => (uid, gid),
            Some(m) => (
                m.host_uid(uid).or_else(|| m.host_uid(65534)).unwrap_or(uid),
                m.host_gid(gid).or_else(|| m.host_gid(65534)).unwrap_or(gid),
            ),
        }
    }

    /// Applies the layer blob at `blob` (any compression strata reads).
    pub fn apply_blob(&mut self, blob: &Path) -> Result<(), Error> {
        let file = File::open(blob).map_err(|e| io_err(blob, e))?;
        let mut reader = BlobReader::new(BufReader::with_capacity(1 << 16, file), blob)?;
        self.written.clear();
        while let Some(e) = reader.next_entry()? {
            match e.kind {
                EntryKind::Whiteout => self.hide(&e.path, true)?,
                EntryKind::Opaque => self.hide(&e.path, false)?,
                _ => {
                    self.put(&e, &mut reader, blob)?;
                    self.mtime(&e, reader.mtime())?;
                    self.written.insert(e.path.clone());
                }
            }
        }
        reader.finish()?;
        Ok(())
    }

    /// Sets every directory's mode, deepest first, and says what was skipped.
    pub fn finish(self) -> Result<ApplyReport, Error> {
        for (path, mode) in self.dir_modes.iter().rev() {
            let host = self.host(path);
            // Only a real directory: never chmod through a symlink.
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {
                    fs::set_permissions(&host, fs::Permissions::from_mode(*mode))
                        .map_err(|e| io_err(&host, e))?
                }
                _ => {}
            }
        }
        for (path, mtime) in self.dir_mtimes.iter().rev() {
            let host = self.host(path);
            if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                set_mtime(&host, *mtime)?;
            }
        }
        Ok(self.report)
    }

    /// Gives the entry `e`, just put, the mtime of its layer: now for what
    /// is not a directory, at the end for a directory. A hard link is its
    /// target's inode, and a device node not made has none.
    fn mtime(&mut self, e: &Entry, mtime: u64) -> Result<(), Error> {
        match e.kind {
            EntryKind::Dir => {
                self.dir_mtimes.insert(e.path.clone(), mtime);
                Ok(())
            }
            EntryKind::Hardlink | EntryKind::Whiteout | EntryKind::Opaque => Ok(()),
            _ if e.path.is_root() => Ok(()),
            _ => {
                let host = self.host(&e.path);
                if fs::symlink_metadata(&host).is_err() {
                    return Ok(());
                }
                set_mtime(&host, mtime)
            }
        }
    }

    fn host(&self, path: &ImagePath) -> PathBuf {
        let mut p = self.root.clone();
        for c in path.components() {
            p.push(OsStr::from_bytes(c));
        }
        p
    }

    /// Whether `path` lies in real directories all the way from the root:
    /// `Some(host path)` if so, `None` if an ancestor is missing or is not
    /// a directory (then the union has nothing at `path`).
    fn resolve(&self, path: &ImagePath) -> Result<Option<PathBuf>, Error> {
        for a in path.ancestors() {
            let host = self.host(&a);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err(&host, e)),
            }
        }
        Ok(Some(self.host(path)))
    }

    /// Removes what the layers below left at `path` (with `itself`) or below
    /// it, sparing what this layer wrote and the directories leading to it.
    fn hide(&mut self, path: &ImagePath, itself: bool) -> Result<(), Error> {
        if path.is_root() && itself {
            return Ok(());
        }
        if self.overlay {
            return self.mark_hidden(path, itself);
        }
        let Some(host) = self.resolve(path)? else {
            return Ok(());
        };
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&host, e)),
        };
        let written_here = itself && self.written.contains(path);
        let written_below = self.written_below(path);
        if written_here {
            return Ok(());
        }
        if itself && !written_below {
            return self.remove(path, &host, meta.is_dir());
        }
        if meta.is_dir() {
            let mut names = Vec::new();
            for entry in fs::read_dir(&host).map_err(|e| io_err(&host, e))? {
                names.push(entry.map_err(|e| io_err(&host, e))?.file_name());
            }
            for name in names {
                self.hide(&path.join(name.as_bytes()), true)?;
            }
        }
        Ok(())
    }

    /// Overlay mode: what `hide` removes from the layers below is marked
    /// instead, as overlayfs reads it in a lower directory mounted with
    /// `userxattr`: a whiteout device (0/0) at a deleted path, the
    /// `user.overlay.opaque` xattr on a directory whose lower content is gone.
    fn mark_hidden(&mut self, path: &ImagePath, itself: bool) -> Result<(), Error> {
        if itself && self.written.contains(path) {
            return Ok(());
        }
        let host = self.parents(path)?;
        let existing = match fs::symlink_metadata(&host) {
            Ok(m) => Some(m.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&host, e)),
        };
        if itself {
            if existing.is_some() {
                return Ok(());
            }
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &host,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|err| io_err(&host, err.into()))?;
            return self.chown(&host, 0, 0);
        }
        if path.is_root() {
            // An opaque root hides every layer below: no lower directory
            // can say that, so the caller applies the layers instead.
            self.implied.insert(path.clone());
            return Ok(());
        }
        match existing {
            Some(true) => {}
            Some(false) => {
                fs::remove_file(&host).map_err(|e| io_err(&host, e))?;
                self.mkdir(path, &host, 0o755, 0, 0)?;
                self.implied.insert(path.clone());
            }
            None => {
                self.mkdir(path, &host, 0o755, 0, 0)?;
                self.implied.insert(path.clone());
            }
        }
        rustix::fs::lsetxattr(
            &host,
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|err| io_err(&host, err.into()))
    }

    fn written_below(&self, path: &ImagePath) -> bool {
        if path.is_root() {
            return !self.written.is_empty();
        }
        let mut lo = path.0.clone();
        lo.push(b'/');
        let mut hi = path.0.clone();
        hi.push(b'0');
        self.written
            .range(ImagePath(lo)..ImagePath(hi))
            .next()
            .is_some()
    }

    /// Removes `host` (the path `path`), a whole tree if it is a directory.
    fn remove(&mut self, path: &ImagePath, host: &Path, is_dir: bool) -> Result<(), Error> {
        if is_dir {
            // `remove_dir_all` does not follow symlinks inside the tree.
            fs::remove_dir_all(host).map_err(|e| io_err(host, e))?;
            let doomed: Vec<ImagePath> = self
                .dir_modes
                .keys()
                .filter(|p| p.starts_with(path))
                .cloned()
                .collect();
            for p in doomed {
                self.dir_modes.remove(&p);
                self.dir_mtimes.remove(&p);
            }
        } else {
            fs::remove_file(host).map_err(|e| io_err(host, e))?;
        }
        Ok(())
    }

    /// Makes every ancestor of `path` a real directory: a missing one is
    /// created (0755 0:0, as the model says), anything else in the way is
    /// removed first. Returns the host path of `path`.
    fn parents(&mut self, path: &ImagePath) -> Result<PathBuf, Error> {
        for a in path.ancestors() {
            let host = self.host(&a);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => fs::remove_file(&host).map_err(|e| io_err(&host, e))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&host, e)),
            }
            self.mkdir(&a, &host, 0o755, 0, 0)?;
            if self.overlay {
                self.implied.insert(a.clone());
            }
        }
        Ok(self.host(path))
    }

    fn mkdir(
        &mut self,
        path: &ImagePath,
        host: &Path,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), Error> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(host)
            .map_err(|e| io_err(host, e))?;
        self.chown(host, uid, gid)?;
        self.dir_modes.insert(path.clone(), mode);
        Ok(())
    }

    fn chown(&self, host: &Path, uid: u32, gid: u32) -> Result<(), Error> {
        if self.privileged {
            let (uid, gid) = self.host_owner(uid, gid);
            std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(|e| io_err(host, e))?;
        }
        Ok(())
    }

    /// Sets an entry's xattrs where this process may: all of them as root,
    /// `user.*` ones otherwise.
    fn xattrs(&mut self, host: &Path, e: &Entry) -> Result<(), Error> {
        for (name, value) in &e.xattrs {
            if !self.privileged && !name.starts_with("user.") {
                self.report.skipped_xattrs += 1;
                continue;
            }
            rustix::fs::lsetxattr(host, name.as_str(), value, rustix::fs::XattrFlags::empty())
                .map_err(|err| io_err(host, err.into()))?;
        }
        Ok(())
    }

    /// Creates the entry `e` (data read from `reader`) in place of whatever
    /// the layers below had at its path.
    fn put(&mut self, e: &Entry, reader: &mut BlobReader<'_>, blob: &Path) -> Result<(), Error> {
        if e.path.is_root() {
            return Ok(());
        }
        let host = self.parents(&e.path)?;
        let existing = match fs::symlink_metadata(&host) {
            Ok(m) => Some(m.is_dir()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(io_err(&host, err)),
        };
        if e.kind == EntryKind::Dir {
            self.implied.remove(&e.path);
            match existing {
                Some(true) => {
                    self.chown(&host, e.uid, e.gid)?;
                    self.dir_modes.insert(e.path.clone(), e.mode);
                }
                Some(false) => {
                    fs::remove_file(&host).map_err(|err| io_err(&host, err))?;
                    self.mkdir(&e.path, &host, e.mode, e.uid, e.gid)?;
                }
                None => self.mkdir(&e.path, &host, e.mode, e.uid, e.gid)?,
            }
            return self.xattrs(&host, e);
        }
        if let Some(is_dir) = existing {
            self.remove(&e.path, &host, is_dir)?;
        }
        match e.kind {
            EntryKind::File => {
                let mut f = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&host)
                    .map_err(|err| io_err(&host, err))?;
                let copied = io::copy(&mut reader.data(), &mut f);
                let n = copied.map_err(|err| reader.data_error(err))?;
                if n != e.size {
                    return Err(Error::BadLayer {
                        blob: blob.to_path_buf(),
                        path: e.path.display(),
                        reason: format!("the blob ends inside this file ({n} of {} bytes)", e.size),
                    });
                }
                if self.privileged {
                    let (uid, gid) = self.host_owner(e.uid, e.gid);
                    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                        .map_err(|err| io_err(&host, err))?;
                }
                // After the owner: chown clears setuid and setgid bits.
                f.set_permissions(fs::Permissions::from_mode(e.mode))
                    .map_err(|err| io_err(&host, err))?;
            }
            EntryKind::Symlink => {
                let target = e.link.as_deref().unwrap_or_default();
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &host)
                    .map_err(|err| io_err(&host, err))?;
                self.chown(&host, e.uid, e.gid)?;
            }
            EntryKind::Hardlink => {
                let target = ImagePath(e.link.clone().unwrap_or_default());
                let bad = |reason: &str| Error::BadLayer {
                    blob: blob.to_path_buf(),
                    path: e.path.display(),
                    reason: format!("hard link to {target}: {reason}"),
                };
                let Some(target_host) = self.resolve(&target)? else {
                    return Err(bad("no such file in the layers applied so far"));
                };
                match fs::symlink_metadata(&target_host) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => return Err(bad("not a regular file")),
                    Err(_) => return Err(bad("no such file in the layers applied so far")),
                }
                fs::hard_link(&target_host, &host).map_err(|err| io_err(&host, err))?;
                // The link is the target's inode: its metadata stays the target's.
                return Ok(());
            }
            EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
                let file_type = match e.kind {
                    EntryKind::Char => rustix::fs::FileType::CharacterDevice,
                    EntryKind::Block => rustix::fs::FileType::BlockDevice,
                    _ => rustix::fs::FileType::Fifo,
                };
                if e.kind != EntryKind::Fifo && !self.privileged {
                    self.report.skipped_devices.push(e.path.display());
                    return Ok(());
                }
                let (major, minor) = e.device.unwrap_or_default();
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &host,
                    file_type,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|err| io_err(&host, err.into()))?;
                self.chown(&host, e.uid, e.gid)?;
                // mknod's mode is cut by the umask; set the real one after the owner.
                fs::set_permissions(&host, fs::Permissions::from_mode(e.mode))
                    .map_err(|err| io_err(&host, err))?;
            }
            EntryKind::Dir | EntryKind::Whiteout | EntryKind::Opaque => {}
        }
        self.xattrs(&host, e)
    }
}

/// Applies the layer blobs `blobs` (bottom first) into `dir`, which must be
/// missing or an empty directory (it is created). Owners are set and device
/// nodes made only when running as root; the report says what was skipped.
pub fn apply_blobs(blobs: &[PathBuf], dir: &Path) -> Result<ApplyReport, Error> {
    apply_blobs_shifted(blobs, dir, None)
}

/// [`apply_blobs`], with owners shifted into a `run` step's id range (as
/// root; an unprivileged user cannot set them).
pub(crate) fn apply_blobs_shifted(
    blobs: &[PathBuf],
    dir: &Path,
    shift: Option<&IdMap>,
) -> Result<ApplyReport, Error> {
    prepare_dir(dir)?;
    let mut applier = Applier::new(dir, running_as_root());
    applier.shift = shift.cloned();
    for blob in blobs {
        applier.apply_blob(blob)?;
    }
    applier.finish()
}

/// Creates `dir`, or checks that it is an empty directory: a root file
/// system is never unpacked over files that are already there.
pub fn prepare_dir(dir: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            let mut entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
            if entries.next().is_some() {
                return Err(Error::NotEmpty {
                    path: dir.to_path_buf(),
                });
            }
            Ok(())
        }
        Ok(_) => Err(Error::NotEmpty {
            path: dir.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| io_err(dir, e))
        }
        Err(e) => Err(io_err(dir, e)),
    }
}

/// Sets the access and modification times of `host` (not following a
/// symlink) to `mtime` seconds since the epoch.
fn set_mtime(host: &Path, mtime: u64) -> Result<(), Error> {
    let t = rustix::fs::Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        host,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err(host, e.into()))
}

pub(crate) fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
