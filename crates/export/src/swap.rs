//! Putting a finished output in place: one writer at a time per output, an
//! atomic exchange, and the leftovers of killed writers removed.
//!
//! Why a lock: two composes into one `--out` that each move the old layout
//! aside and theirs in can interleave (one moves the other's new layout
//! aside, or finds the name taken: `Directory not empty`). An exclusive
//! `flock` on the output's parent directory makes them take turns; the
//! second then finds the first's layout, and leaves it if it is current.
//! The parent, not a lock file beside the output: a lock file would stay
//! behind for good (removing it would let a third writer lock a new file
//! while the second holds the old one), next to outputs that users list and
//! tools watch. The cost is that outputs sharing a parent are written one at
//! a time, which is the short last step of a compose. The kernel drops the
//! lock when its holder dies, so a killed compose never wedges the next.
//!
//! Why an exchange: moving the old layout aside and then the new one in
//! leaves no output at all between the two renames, and a kill there loses
//! both. `renameat2(RENAME_EXCHANGE)` swaps the two names in one step: the
//! output is at every instant the previous layout or the new one. Where the
//! filesystem cannot exchange, the two renames remain, still under the lock.
//!
//! Why clean up under the lock: a writer killed before its swap leaves
//! `.NAME.tmp-*`, one killed after it `.NAME.tmp-*` holding the old layout
//! (`.NAME.old-*` from the fallback). Only a writer of this output makes
//! such names, and none is running while the lock is held, so all of them
//! are leftovers.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FlockOperation, RenameFlags};
use rustix::io::Errno;

use crate::Error;
use crate::layout::io_err;

/// The exclusive right to write outputs in a directory, until dropped.
pub(crate) struct OutputLock {
    _dir: File,
}

impl OutputLock {
    /// Waits for the lock on the directory `parent` (which must exist).
    pub(crate) fn acquire(parent: &Path) -> Result<OutputLock, Error> {
        let dir = File::open(parent).map_err(|e| io_err(parent, e))?;
        loop {
            match rustix::fs::flock(&dir, FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(Errno::INTR) => {}
                Err(e) => return Err(io_err(parent, e.into())),
            }
        }
        Ok(OutputLock { _dir: dir })
    }
}

/// Removes the temporary and set-aside copies of the output `NAME` that
/// killed writers left in `parent`. Call with the [`OutputLock`] held.
/// Best effort: what cannot be removed now is tried again next time.
pub(crate) fn remove_leftovers(parent: &Path, name: &str, _lock: &OutputLock) -> Vec<PathBuf> {
    let prefixes = [format!(".{name}.tmp-"), format!(".{name}.old-")];
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else {
            continue;
        };
        if !prefixes.iter().any(|p| n.starts_with(p.as_str())) {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) => Err(e),
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Swaps the directories `new` and `dir` (both in one parent) in one step.
/// `Ok(false)` when the filesystem or kernel cannot exchange: the caller
/// falls back to two renames.
pub(crate) fn exchange(new: &Path, dir: &Path) -> Result<bool, Error> {
    match rustix::fs::renameat_with(CWD, new, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(io_err(dir, io::Error::from(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_swaps_two_directories() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(a.join("in-a"), b"").unwrap();
        assert!(exchange(&a, &b).unwrap(), "tmpfs and ext4 exchange");
        assert!(b.join("in-a").exists() && !a.join("in-a").exists());
    }

    #[test]
    fn leftovers_of_this_output_only_are_removed() {
        let d = tempfile::tempdir().unwrap();
        for dir in [".img.tmp-1", ".img.old-2", ".other.tmp-3", "img"] {
            fs::create_dir(d.path().join(dir)).unwrap();
        }
        fs::write(d.path().join(".img.tmp-4"), b"").unwrap();
        let lock = OutputLock::acquire(d.path()).unwrap();
        let mut removed = remove_leftovers(d.path(), "img", &lock);
        removed.sort();
        assert_eq!(
            removed,
            [".img.old-2", ".img.tmp-1", ".img.tmp-4"].map(|n| d.path().join(n))
        );
        let mut left: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".other.tmp-3", "img"]);
    }
}
