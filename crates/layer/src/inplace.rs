//! A plain tar input read in place (no spool, see `spool`) is checked to be
//! the bytes its cache key was made from, and to stay so while the layer is
//! written: a file changed mid-build is an error naming it, never a layer
//! cached under the key of other bytes.
//!
//! How: the planner notes on the input the digest of its bytes and, when it
//! hashed them itself from this handle in this process, the file's stat data
//! (size, mtime, ctime, inode) from before that read
//! ([`crate::HostInput::note_content_digest`]). Before the layer lists the
//! tar's entries, the stat data must still be those; where the digest came
//! from the cache's input index instead (stat data of an earlier process),
//! the whole file is hashed again from the handle and must match. After the
//! layer's tar is written, the stat data must be unchanged once more. Every
//! write to a file moves its ctime, which no user can set back, so a write
//! at any time between the hash and the end of the layer shows. The one
//! blind spot is the one git's index has: a write in the same clock tick as
//! the first stat (kernels that give coarse ctimes), to bytes already read.
//!
//! Why not hash a second time always: on a cold compose the planner has just
//! read and hashed the same bytes from the same handle, and a second pass
//! cost about 5% of the compose.

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
        Ok(Stamp::of_meta(&f.metadata()?))
    }

    pub(crate) fn of_meta(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// Checks `file` (the input at `path`) against what the planner noted
/// (`digest`, and `hashed`, its stat data when it hashed the file itself),
/// and returns its stamp, to be checked again by [`unchanged`] once the
/// layer is written.
pub(crate) fn check(
    file: &File,
    path: &Path,
    digest: Option<[u8; 32]>,
    hashed: Option<Stamp>,
) -> Result<Stamp, Error> {
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(stamp) = hashed {
        if Stamp::of(file).map_err(io_err)? != stamp {
            return Err(changed_since_hashed(path));
        }
        return Ok(stamp);
    }
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
        return Err(changed_since_hashed(path));
    }
    unchanged(file, path, &stamp)?;
    Ok(stamp)
}

fn changed_since_hashed(path: &Path) -> Error {
    Error::InputChanged {
        path: path.to_owned(),
        reason: "its bytes changed since they were hashed for the cache key".to_owned(),
    }
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
