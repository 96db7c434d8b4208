//! The difference between the union of the layers below and a directory, as
//! one layer's entries: what `docker commit` records, and what a spec's
//! `from-dir` layer holds.
//!
//! The directory is walked without following symlinks, next to the model:
//! a path that is new, or whose kind, content (a file's sha256, a link's
//! target, a device's numbers) or compared metadata differ, becomes an entry;
//! a path of the model the directory lacks becomes a whiteout; a directory
//! whose lower contents are all gone while it holds new ones becomes an
//! opaque directory (one marker rather than a whiteout per old name). Every
//! directory above an entry is written too, with the metadata the union
//! already gives it, because a layer's implicit parents would otherwise
//! reset it to 0755 0:0.
//!
//! What "compared metadata" means is the caller's choice ([`DiffOptions`]):
//! `commit` and a spec's `from-dir` record exact modes and xattrs, as `docker
//! commit` does, and exact owners only when they run as root (an
//! unprivileged `rootfs` could not set them, so they carry no information);
//! `from-dir normalize=#true` keeps a checkout's tree reproducible (modes
//! only by their exec bit, owners and xattrs never from the host).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use strata_layer::{HostEntry, ImagePath, Source};

use crate::Error;
use crate::apply::io_err;
use crate::model::{Kind, Model, Node};

/// How a directory is compared with the union below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compare and record every permission bit; otherwise only a file's exec
    /// bit counts, and new paths get 0644/0755 (0777 for symlinks).
    pub exact_modes: bool,
    /// Compare and record the host's owners; otherwise a path keeps the
    /// owner the union gives it (0:0 when new).
    pub owners: bool,
    /// A device node of the union that the directory lacks is kept rather
    /// than deleted (an unprivileged user cannot create one in a directory).
    pub keep_missing_devices: bool,
    /// Compare and record the host's xattrs (those a layer records, see
    /// [`strata_layer::recorded_xattrs`]): all of them with `owners`, the
    /// `user.*` ones otherwise (the only ones an unprivileged `rootfs` could
    /// set). The others are kept as the union has them.
    pub xattrs: bool,
}

/// The entries of the layer that turns the union `lower` into the tree under `dir`.
///
/// `dir` is resolved once to its physical path; everything below it is
/// listed, stated and opened without following any symlink (see
/// `strata_layer::read_dir_stated`), so a symlink swapped into the tree
/// while it is read (a checkout other users can write) makes the build fail
/// rather than record or pack a file from outside it.
pub fn diff_dir(lower: &Model, dir: &Path, opts: DiffOptions) -> Result<Vec<HostEntry>, Error> {
    let dir = &fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| io_err(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::BadDir {
            path: dir.to_path_buf(),
            reason: "not a directory".to_owned(),
        });
    }
    let mut d = Differ {
        lower,
        opts,
        out: Vec::new(),
        groups: BTreeMap::new(),
    };
    d.walk(dir, &ImagePath::root(), true)?;
    Ok(d.out)
}

/// A directory's entries, sorted by name, each with its `lstat`.
type Listing = Vec<(std::ffi::OsString, std::io::Result<fs::Metadata>)>;

/// The entries of the physical directory `host`, opened without following
/// any symlink.
fn list(host: &Path) -> Result<Listing, Error> {
    strata_layer::read_dir_stated(host).map_err(|e| io_err(host, e))
}

struct Differ<'a> {
    lower: &'a Model,
    opts: DiffOptions,
    out: Vec<HostEntry>,
    /// Hard-link groups of emitted host files, by (device, inode).
    groups: BTreeMap<(u64, u64), u64>,
}

impl Differ<'_> {
    /// Compares the directory `host` (the image path `path`) with the
    /// union's; `lower_visible`: whether the union's contents of `path`
    /// still show (false below a new or opaque directory). Returns whether
    /// anything was emitted at or below `path`'s children.
    fn walk(&mut self, host: &Path, path: &ImagePath, lower_visible: bool) -> Result<bool, Error> {
        let listing = list(host)?;
        self.walk_listed(host, path, lower_visible, listing)
    }

    /// [`walk`](Self::walk) of `host` as `listing` found it.
    fn walk_listed(
        &mut self,
        host: &Path,
        path: &ImagePath,
        lower_visible: bool,
        listing: Listing,
    ) -> Result<bool, Error> {
        let names: Vec<Vec<u8>> = listing.iter().map(|(n, _)| n.as_bytes().to_vec()).collect();
        let mut emitted = false;
        for (name, meta) in listing {
            let child = path.join(name.as_bytes());
            let child_host = host.join(&name);
            let meta = meta.map_err(|e| io_err(&child_host, e))?;
            let low = if lower_visible {
                self.lower.get(&child)
            } else {
                None
            };
            emitted |= self.one(&child_host, &child, &meta, low)?;
        }
        if lower_visible {
            for name in self.lower.children(path) {
                if names.binary_search_by(|n| n.as_slice().cmp(name)).is_ok() {
                    continue;
                }
                let child = path.join(name);
                let is_device = matches!(
                    self.lower.get(&child).map(|n| &n.kind),
                    Some(Kind::Char(..) | Kind::Block(..))
                );
                if is_device && self.opts.keep_missing_devices {
                    continue;
                }
                self.out.push(HostEntry {
                    path: child,
                    source: Source::Whiteout,
                    mode: 0,
                    uid: 0,
                    gid: 0,
                    xattrs: Vec::new(),
                });
                emitted = true;
            }
        }
        Ok(emitted)
    }

    /// One path of the directory; returns whether anything was emitted at or below it.
    fn one(
        &mut self,
        host: &Path,
        path: &ImagePath,
        meta: &fs::Metadata,
        low: Option<&Node>,
    ) -> Result<bool, Error> {
        let ft = meta.file_type();
        let mode = meta.mode() & 0o7777;
        if ft.is_dir() {
            let low_dir = low.filter(|n| n.is_dir());
            let Some(low_dir) = low_dir else {
                // New (or replacing a non-directory): everything below is new.
                self.walk(host, path, false)?;
                let xattrs = self.xattrs_for(host, None)?;
                let e = self.new_entry(
                    path,
                    meta,
                    low,
                    Source::Dir { opaque: false },
                    0o755,
                    xattrs,
                );
                self.out.push(e);
                return Ok(true);
            };
            // Replaced: every lower name is gone and there are new ones.
            let lower_names = self.lower.children(path);
            let listing = list(host)?;
            let replaced = !lower_names.is_empty()
                && !listing.is_empty()
                && lower_names.iter().all(|n| {
                    listing
                        .binary_search_by(|(h, _)| h.as_bytes().cmp(*n))
                        .is_err()
                });
            let below = self.walk_listed(host, path, !replaced, listing)?;
            let xattrs = self.xattrs_for(host, Some(low_dir))?;
            let changed = !self.same_meta(meta, low_dir, true)
                || replaced
                || !same_xattrs(&xattrs, &low_dir.xattrs);
            if changed || below {
                let source = Source::Dir { opaque: replaced };
                let e = if changed {
                    self.new_entry(path, meta, low, source, 0o755, xattrs)
                } else {
                    crate::squash::entry(path, low_dir, source)
                };
                self.out.push(e);
                return Ok(true);
            }
            return Ok(false);
        }
        // A symlink's xattrs are never recorded (Linux refuses `user.*` on one).
        let xattrs = if ft.is_symlink() {
            Vec::new()
        } else {
            self.xattrs_for(host, low)?
        };
        let (source, normal) = if ft.is_file() {
            let size = meta.len();
            if let Some(n) = low
                && let Kind::File {
                    digest, size: s, ..
                } = &n.kind
                && *s == size
                && self.same_meta(meta, n, false)
                && same_xattrs(&xattrs, &n.xattrs)
            {
                let (found, _) = strata_layer::digest::digest_reader(std::io::BufReader::new(
                    strata_layer::open_file(host).map_err(|e| io_err(host, e))?,
                ))
                .map_err(|e| io_err(host, e))?;
                if found == *digest {
                    return Ok(false);
                }
            }
            let group = if meta.nlink() > 1 {
                let next = self.groups.len() as u64 + 1;
                Some(*self.groups.entry((meta.dev(), meta.ino())).or_insert(next))
            } else {
                None
            };
            let exec = mode & 0o111 != 0;
            (
                Source::File {
                    path: host.to_path_buf(),
                    size,
                    group,
                },
                if exec { 0o755 } else { 0o644 },
            )
        } else if ft.is_symlink() {
            let target = fs::read_link(host).map_err(|e| io_err(host, e))?;
            let target = target.as_os_str().as_bytes().to_vec();
            if let Some(
                n @ Node {
                    kind: Kind::Symlink(t),
                    ..
                },
            ) = low
                && *t == target
                && self.same_owner(meta, n)
            {
                return Ok(false);
            }
            (Source::Symlink(target), 0o777)
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            let rdev = meta.rdev() as rustix::fs::Dev;
            let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            let (source, kind) = if ft.is_fifo() {
                (Source::Fifo, Kind::Fifo)
            } else if ft.is_char_device() {
                (Source::Char(major, minor), Kind::Char(major, minor))
            } else {
                (Source::Block(major, minor), Kind::Block(major, minor))
            };
            if let Some(n) = low
                && n.kind == kind
                && self.same_meta(meta, n, false)
                && same_xattrs(&xattrs, &n.xattrs)
            {
                return Ok(false);
            }
            (source, 0o644)
        } else {
            return Err(Error::BadDir {
                path: host.to_path_buf(),
                reason: "a socket cannot be part of an image".to_owned(),
            });
        };
        let e = self.new_entry(path, meta, low, source, normal, xattrs);
        self.out.push(e);
        Ok(true)
    }

    /// The xattrs the layer gives `host` (whose union node is `low`), sorted:
    /// with [`DiffOptions::xattrs`] the host's for the names it controls,
    /// the union's for the others; without, the union's.
    fn xattrs_for(&self, host: &Path, low: Option<&Node>) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut kept: Vec<(String, Vec<u8>)> = low.map(|n| n.xattrs.clone()).unwrap_or_default();
        if !self.opts.xattrs {
            return Ok(kept);
        }
        let controlled = |name: &str| {
            strata_layer::is_recorded_xattr(name) && (self.opts.owners || name.starts_with("user."))
        };
        kept.retain(|(name, _)| !controlled(name));
        let host_xattrs = strata_layer::recorded_xattrs(host).map_err(|e| io_err(host, e))?;
        kept.extend(host_xattrs.into_iter().filter(|(name, _)| controlled(name)));
        kept.sort();
        Ok(kept)
    }

    /// Whether the host metadata matches the union's node, as the options compare it.
    fn same_meta(&self, meta: &fs::Metadata, node: &Node, dir: bool) -> bool {
        let mode = meta.mode() & 0o7777;
        let modes = if self.opts.exact_modes {
            mode == node.mode
        } else {
            dir || (mode & 0o111 != 0) == (node.mode & 0o111 != 0)
        };
        modes && self.same_owner(meta, node)
    }

    fn same_owner(&self, meta: &fs::Metadata, node: &Node) -> bool {
        !self.opts.owners || (meta.uid() == node.uid && meta.gid() == node.gid)
    }

    /// An entry for a new or changed path: modes and owners as the options say.
    fn new_entry(
        &self,
        path: &ImagePath,
        meta: &fs::Metadata,
        low: Option<&Node>,
        source: Source,
        normal: u32,
        xattrs: Vec<(String, Vec<u8>)>,
    ) -> HostEntry {
        let host_mode = meta.mode() & 0o7777;
        let same_kind = low.is_some_and(|n| same_kind(&n.kind, &source));
        let mode = if self.opts.exact_modes {
            host_mode
        } else {
            match low {
                // Keep the union's mode when only the content changed.
                Some(n)
                    if same_kind
                        && (n.mode & 0o111 != 0) == (host_mode & 0o111 != 0)
                        && !matches!(source, Source::Symlink(_)) =>
                {
                    n.mode
                }
                _ => normal,
            }
        };
        let (uid, gid) = match low {
            _ if self.opts.owners => (meta.uid(), meta.gid()),
            Some(n) if same_kind => (n.uid, n.gid),
            _ => (0, 0),
        };
        HostEntry {
            path: path.clone(),
            source,
            mode,
            uid,
            gid,
            // A path that changed kind keeps none of the union's xattrs.
            xattrs: if same_kind || self.opts.xattrs {
                xattrs
            } else {
                Vec::new()
            },
        }
    }
}

/// Whether the sorted `ours` are the union's `theirs`, in whatever order a
/// tarball listed them.
fn same_xattrs(ours: &[(String, Vec<u8>)], theirs: &[(String, Vec<u8>)]) -> bool {
    let mut theirs = theirs.to_vec();
    theirs.sort();
    ours == theirs.as_slice()
}

fn same_kind(kind: &Kind, source: &Source) -> bool {
    matches!(
        (kind, source),
        (Kind::Dir, Source::Dir { .. })
            | (Kind::File { .. }, Source::File { .. })
            | (Kind::Symlink(_), Source::Symlink(_))
            | (Kind::Char(..), Source::Char(..))
            | (Kind::Block(..), Source::Block(..))
            | (Kind::Fifo, Source::Fifo)
    )
}
