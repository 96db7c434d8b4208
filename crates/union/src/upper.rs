//! An overlayfs upper directory as one layer's entries: what a `run` step
//! changed, in the image-spec's terms.
//!
//! Overlayfs records a deletion as a character device 0/0 and a directory
//! that replaced a lower one (removed, then made again) with the xattr
//! `user.overlay.opaque=y` (with the `userxattr` mount option); those become
//! a whiteout and an opaque directory. Everything else in the upper
//! directory is new or changed and is written as it is, with two rules for
//! owners: where the namespace mapped a full range of ids, each file's owner
//! is the id it has inside the namespace (a file the command chowned to
//! 1000:50 is 1000:50 in the layer); where it mapped one id, every file the
//! command made belongs to the current user, mapped to root in the user
//! namespace, so a path keeps the owner the layers below gave it and a new
//! one is 0:0.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use strata_layer::{HostEntry, ImagePath, Source};

use crate::Error;
use crate::apply::io_err;
use crate::idmap::IdMap;
use crate::model::{Kind, Model};

const OPAQUE: &str = "user.overlay.opaque";
/// Overlay features that record changes in ways no layer can hold; they are
/// off by default for a user-namespace mount, and refused if ever seen.
const UNSUPPORTED: &[&str] = &["user.overlay.redirect", "user.overlay.metacopy"];

/// The entries of the layer that the upper directory `upper` of an overlay
/// over `lower` holds.
/// `ids` is the namespace's map when it was a full one.
pub fn upper_entries(
    lower: &Model,
    upper: &Path,
    ids: Option<&IdMap>,
) -> Result<Vec<HostEntry>, Error> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut stack = vec![(upper.to_path_buf(), ImagePath::root())];
    while let Some((host_dir, dir)) = stack.pop() {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for e in fs::read_dir(&host_dir).map_err(|e| io_err(&host_dir, e))? {
            names.push(
                e.map_err(|e| io_err(&host_dir, e))?
                    .file_name()
                    .as_bytes()
                    .to_vec(),
            );
        }
        names.sort();
        for name in names {
            let host = host_dir.join(OsStr::from_bytes(&name));
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&host).map_err(|e| io_err(&host, e))?;
            let ft = meta.file_type();
            let low = lower.get(&path);
            if ft.is_char_device() && meta.rdev() == 0 {
                if low.is_some() {
                    out.push(HostEntry {
                        path,
                        source: Source::Whiteout,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        xattrs: Vec::new(),
                    });
                }
                continue;
            }
            for name in UNSUPPORTED {
                if xattr(&host, name)?.is_some() {
                    return Err(Error::BadDir {
                        path: host,
                        reason: format!("overlayfs recorded {name}, which no layer can hold"),
                    });
                }
            }
            let source = if ft.is_dir() {
                let opaque = xattr(&host, OPAQUE)?.as_deref() == Some(b"y".as_slice());
                stack.push((host.clone(), path.clone()));
                Source::Dir {
                    opaque: opaque && lower.is_dir(&path),
                }
            } else if ft.is_file() {
                let group = (meta.nlink() > 1).then(|| {
                    let next = groups.len() as u64 + 1;
                    *groups.entry((meta.dev(), meta.ino())).or_insert(next)
                });
                Source::File {
                    path: host.clone(),
                    size: meta.len(),
                    group,
                }
            } else if ft.is_symlink() {
                let t = fs::read_link(&host).map_err(|e| io_err(&host, e))?;
                Source::Symlink(t.as_os_str().as_bytes().to_vec())
            } else if ft.is_fifo() {
                Source::Fifo
            } else if ft.is_char_device() || ft.is_block_device() {
                let rdev = meta.rdev() as rustix::fs::Dev;
                let (a, b) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
                if ft.is_char_device() {
                    Source::Char(a, b)
                } else {
                    Source::Block(a, b)
                }
            } else {
                return Err(Error::BadDir {
                    path: host,
                    reason: "a socket cannot be part of an image".to_owned(),
                });
            };
            let same_kind = low.is_some_and(|n| {
                matches!(
                    (&n.kind, &source),
                    (Kind::Dir, Source::Dir { .. })
                        | (Kind::File { .. }, Source::File { .. })
                        | (Kind::Symlink(_), Source::Symlink(_))
                        | (Kind::Fifo, Source::Fifo)
                )
            });
            let (uid, gid) = match (ids, low) {
                (Some(m), _) => match (m.image_uid(meta.uid()), m.image_gid(meta.gid())) {
                    (Some(u), Some(g)) => (u, g),
                    _ => {
                        return Err(Error::BadDir {
                            path: host,
                            reason: format!(
                                "owned by {}:{}, which the run's namespace does not map",
                                meta.uid(),
                                meta.gid()
                            ),
                        });
                    }
                },
                (None, Some(n)) if same_kind => (n.uid, n.gid),
                _ => (0, 0),
            };
            out.push(HostEntry {
                path,
                source,
                mode: meta.mode() & 0o7777,
                uid,
                gid,
                xattrs: low
                    .filter(|_| same_kind)
                    .map(|n| n.xattrs.clone())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// The value of one xattr of `path` (not following a symlink), if it has it.
fn xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, Error> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) => Ok(None),
        // A file system without xattrs has none of ours either.
        Err(rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(io_err(path, e.into())),
    }
}
