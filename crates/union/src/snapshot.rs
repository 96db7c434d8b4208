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
//! shifted owners are then removable, and stage 1 of the sandbox opens the
//! directories as root before it enters its namespace.

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
