//! Unpacked layers kept by diff_id, as a containerd snapshotter keeps them:
//! a `run` step's lower view is these directories stacked as overlayfs
//! lower directories, so consecutive `run` layers (and later composes) do
//! not unpack the whole union again for every step: each layer below is
//! unpacked once, the first time a run needs it.
//!
//! Layout, under the directory the caller names (`CACHE/unpacked-v1`):
//!
//! ```text
//! <uid>-<gid>/              one store per id range (owners are shifted into it)
//! <uid>-<gid>/<hex>/        one layer (its diff_id's hex) as an overlay lower
//!                           directory: whiteouts as 0/0 devices, opaque
//!                           directories with `user.overlay.opaque`
//! <uid>-<gid>/<hex>.lock    held while the layer is unpacked
//! <uid>-<gid>/<hex>.applied the layer cannot be a lower directory (see below):
//!                           runs on it apply the layers instead
//! <uid>-<gid>/tmp-*         a layer being unpacked, renamed to <hex> when complete
//! ```
//!
//! Why it is exact: a layer is unpacked alone by the applier `strata rootfs`
//! uses, with owners shifted as the materialised view shifts them, and
//! overlayfs then shows the uppermost layer's entry for each path, its
//! whiteouts and opaque directories hiding the layers below, which is the
//! union the model defines. Where a layer cannot say that by itself (a
//! directory it implies without an entry, whose made-up owner and mode would
//! hide the real ones below; a hard link to a file of a lower layer; an
//! opaque root), it is marked `.applied` and the run materialises the union
//! as before.
//!
//! Invariants: a directory named by a diff_id is complete (it appears by
//! `rename`); two composes unpacking the same layer wait for each other on
//! its lock rather than unpacking it twice; the store is 0700 and owned by
//! root, so no host user reaches the setuid files of an image; `cache gc`
//! (holding the cache's exclusive lock, so no run uses a snapshot) removes
//! what no layer record names, and the `tmp-*` a killed compose left. Only used when strata runs as root: the
//! shifted owners are then removable, and stage 1 of the sandbox binds the
//! directories into the run's directory as root, before it enters its
//! namespace.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::apply::{Applier, io_err};
use crate::idmap::IdMap;

/// The most layers stacked as lower directories; a deeper stack is
/// materialised. Overlayfs allows 500, and the mount's options must fit in a
/// page: each lower costs about 18 bytes (`/proc/self/fd/NNN:`).
pub const MAX_LOWERS: usize = 128;

/// The store of unpacked layers for one id range.
pub struct Snapshots {
    dir: PathBuf,
    ids: IdMap,
}

impl Snapshots {
    /// The store under `root` (made 0700 if missing) for the range `ids`.
    pub fn open(root: &Path, ids: &IdMap) -> Result<Snapshots, Error> {
        // Stage 1 binds the layers from the run's directory, not from here.
        let root = &std::path::absolute(root).map_err(|e| io_err(root, e))?;
        let (uid, gid) = (ids.host_uid(0).unwrap_or(0), ids.host_gid(0).unwrap_or(0));
        let dir = root.join(format!("{uid}-{gid}"));
        for d in [root, &dir] {
            match fs::DirBuilder::new().mode(0o700).create(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(d, e)),
            }
        }
        Ok(Snapshots {
            dir,
            ids: ids.clone(),
        })
    }

    /// The directory of the layer `diff_hex` (unpacked from `blob` if it is
    /// not there yet), or `None` when the layer cannot be a lower directory.
    pub fn get(&self, diff_hex: &str, blob: &Path) -> Result<Option<PathBuf>, Error> {
        let done = self.dir.join(diff_hex);
        let applied = self.dir.join(format!("{diff_hex}.applied"));
        if done.is_dir() {
            return Ok(Some(done));
        }
        if applied.exists() {
            return Ok(None);
        }
        let lock_path = self.dir.join(format!("{diff_hex}.lock"));
        let lock = fs::File::create(&lock_path).map_err(|e| io_err(&lock_path, e))?;
        lock.lock().map_err(|e| io_err(&lock_path, e))?;
        // Another compose may have unpacked it while this one waited.
        if done.is_dir() {
            return Ok(Some(done));
        }
        if applied.exists() {
            return Ok(None);
        }
        let tmp = tempfile::Builder::new()
            .prefix("tmp-")
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir_in(&self.dir)
            .map_err(|e| io_err(&self.dir, e))?;
        let (uid, gid) = (
            self.ids.host_uid(0).unwrap_or(0),
            self.ids.host_gid(0).unwrap_or(0),
        );
        std::os::unix::fs::lchown(tmp.path(), Some(uid), Some(gid))
            .map_err(|e| io_err(tmp.path(), e))?;
        let mut applier = Applier::new(tmp.path(), true);
        applier.set_shift(&self.ids);
        applier.overlay = true;
        let exact = match applier.apply_blob(blob) {
            Ok(()) => applier.implied.is_empty(),
            // A hard link to a lower layer's file: only the union has it.
            Err(Error::BadLayer { .. }) => false,
            Err(e) => return Err(e),
        };
        if !exact {
            fs::write(&applied, b"").map_err(|e| io_err(&applied, e))?;
            return Ok(None);
        }
        applier.finish()?;
        let path = tmp.keep();
        fs::rename(&path, &done).map_err(|e| io_err(&done, e))?;
        Ok(Some(done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// An uncompressed layer of `(path, kind, content)`: `d` a directory,
    /// `f` a file.
    fn layer(dir: &Path, name: &str, entries: &[(&str, char, &str)]) -> PathBuf {
        let path = dir.join(name);
        let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
        for (p, kind, content) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(if *kind == 'd' {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_mode(if *kind == 'd' { 0o750 } else { 0o640 });
            h.set_uid(1000);
            h.set_gid(50);
            h.set_size(content.len() as u64);
            b.append_data(&mut h, p, content.as_bytes()).unwrap();
        }
        b.into_inner().unwrap();
        path
    }

    #[test]
    fn a_layer_unpacks_as_an_overlay_lower_directory_or_is_refused() {
        if !crate::running_as_root() {
            eprintln!(
                "SKIPPED a_layer_unpacks_as_an_overlay_lower_directory_or_is_refused: needs root"
            );
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let ids = IdMap::for_this_process();
        let store = Snapshots::open(&tmp.path().join("unpacked"), &ids).unwrap();
        let whole = layer(
            tmp.path(),
            "whole.tar",
            &[
                ("etc/", 'd', ""),
                ("etc/.wh.old", 'f', ""),
                ("opt/", 'd', ""),
                ("opt/.wh..wh..opq", 'f', ""),
                ("opt/new", 'f', "new"),
            ],
        );
        let dir = store.get("aa", &whole).unwrap().expect("a lower directory");
        let old = fs::symlink_metadata(dir.join("etc/old")).unwrap();
        assert!(
            old.file_type().is_char_device() && old.rdev() == 0,
            "a whiteout"
        );
        let opaque = rustix::fs::lgetxattr(dir.join("opt"), "user.overlay.opaque", &mut [0u8; 4]);
        assert_eq!(opaque.ok(), Some(1), "an opaque directory");
        let new = fs::symlink_metadata(dir.join("opt/new")).unwrap();
        assert_eq!(
            (new.uid(), new.gid(), new.mode() & 0o7777),
            (
                ids.host_uid(1000).unwrap(),
                ids.host_gid(50).unwrap(),
                0o640
            ),
            "owners shifted into the range, modes kept"
        );
        assert_eq!(
            fs::metadata(dir.join("opt")).unwrap().mode() & 0o7777,
            0o750
        );
        // The second time, the same directory, not unpacked again.
        let ino = fs::metadata(&dir).unwrap().ino();
        let again = store.get("aa", &whole).unwrap().unwrap();
        assert_eq!(fs::metadata(&again).unwrap().ino(), ino);
        // A layer that implies `usr/` without an entry for it would hide the
        // owner and mode of the `usr/` below: it is applied instead.
        let implied = layer(tmp.path(), "implied.tar", &[("usr/bin/tool", 'f', "x")]);
        assert_eq!(store.get("bb", &implied).unwrap(), None);
        assert!(store.dir.join("bb.applied").exists());
        assert!(!store.dir.join("bb").exists());
        assert_eq!(store.get("bb", &implied).unwrap(), None);
    }
}
