//! A plain tar input read in place (no spool, see `spool`) is checked to be
//! the bytes its cache key was made from, and to stay so while the layer is
//! written: a file changed mid-build is an error naming it, never a layer
//! cached under the key of other bytes.
//!
//! How: before its entries are listed, the file's stat data is taken (size,
//! mtime, ctime, inode) and its whole content hashed with blake3 from the
//! handle the planner opened; the hash must be the digest the planner noted
//! for the key ([`crate::HostInput::note_content_digest`]). After the layer's
//! tar is written, the stat data must be unchanged. Every write to a file
//! moves its ctime, which no user can set back, so a write at any time
//! between the check and the end of the layer shows; a write between the
//! planner's hash and the check shows in the hash. The one blind spot is the
//! one git's index has: a write in the same clock tick as the first stat
//! (kernels that give coarse ctimes), to bytes the check had already read.
//!
//! Why hash a second time: the planner's digest may come from the cache's
//! input index (stat data only), and the file may change between planning
//! and building; reading the tar from the page cache and hashing it costs a
//! fraction of deflating it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::Error;

/// The stat data that every write to a file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Stamp {
    pub(crate) fn of(f: &File) -> io::Result<Stamp> {
        let s = rustix::fs::fstat(f)?;
        Ok(Stamp {
            size: s.st_size as u64,
            mtime: (s.st_mtime as i64, s.st_mtime_nsec as i64),
            ctime: (s.st_ctime as i64, s.st_ctime_nsec as i64),
            ino: s.st_ino as u64,
        })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// Checks `file` (the input at `path`) against `digest`, and returns its
/// stamp, to be checked again by [`unchanged`] once the layer is written.
pub(crate) fn check(file: &File, path: &Path, digest: Option<[u8; 32]>) -> Result<Stamp, Error> {
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let stamp = Stamp::of(file).map_err(io_err)?;
    let Some(expected) = digest else {
        return Ok(stamp);
    };
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = file.read_at(&mut buf, at).map_err(io_err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    if *h.finalize().as_bytes() != expected {
        return Err(Error::InputChanged {
            path: path.to_owned(),
            reason: "its bytes changed since they were hashed for the cache key".to_owned(),
        });
    }
    unchanged(file, path, &stamp)?;
    Ok(stamp)
}

/// Whether `file` still has the stat data `stamp`.
pub(crate) fn unchanged(file: &File, path: &Path, stamp: &Stamp) -> Result<(), Error> {
    let now = Stamp::of(file).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    if now != *stamp {
        return Err(Error::InputChanged {
            path: path.to_owned(),
            reason: "it was written to while the layer was built from it".to_owned(),
        });
    }
    Ok(())
}
