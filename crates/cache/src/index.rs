//! The input index: content digests of input files remembered by their stat
//! data (size, mtime, ctime, inode, device), the way git's index remembers
//! blob ids, so a warm build does not re-read inputs that did not change.
//!
//! The racy case: a file changed within the timestamp granularity right after
//! it was hashed could keep the same mtime. An entry is therefore trusted only
//! if the file's mtime is older than the moment its digest was taken by more
//! than [`RACY_MARGIN_NS`]; a younger entry is re-hashed (and re-recorded, so
//! it is trusted once it has aged). Any stat difference (including ctime, which
//! chmod and every write move) is a miss.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Bump when [`Entry`] changes shape or meaning.
const INDEX_FILE: &str = "inputs-v1.json";

/// Coarse filesystems keep mtimes in whole (or even two) seconds.
pub const RACY_MARGIN_NS: i128 = 2_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    /// blake3 of the content, hex.
    digest: String,
    /// When the content was read (ns since 1970), for the racy check.
    hashed_at_ns: i128,
}

fn stat_of(meta: &fs::Metadata) -> (u64, i128, i128, u64, u64) {
    (
        meta.size(),
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        meta.ino(),
        meta.dev(),
    )
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The input index of one cache directory, loaded in memory; [`save`](InputIndex::save) writes it back atomically.
#[derive(Debug)]
pub struct InputIndex {
    path: PathBuf,
    entries: Mutex<BTreeMap<PathBuf, Entry>>,
    dirty: Mutex<bool>,
}

impl InputIndex {
    /// Load the index of a cache root; a missing or unreadable index is empty
    /// (it is only a speed-up: losing it costs a re-hash, never a wrong key).
    pub fn load(cache_root: &Path) -> InputIndex {
        let path = cache_root.join(INDEX_FILE);
        let entries = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        InputIndex {
            path,
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        }
    }

    /// The digest remembered for `path`, if its stat data matches and the entry is not racy.
    pub fn get(&self, path: &Path, meta: &fs::Metadata) -> Option<[u8; 32]> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(path)?;
        let (size, mtime, ctime, ino, dev) = stat_of(meta);
        if (e.size, e.mtime_ns, e.ctime_ns, e.ino, e.dev) != (size, mtime, ctime, ino, dev) {
            return None;
        }
        if mtime.max(ctime) + RACY_MARGIN_NS >= e.hashed_at_ns {
            return None;
        }
        let mut d = [0u8; 32];
        hex::decode_to_slice(&e.digest, &mut d).ok()?;
        Some(d)
    }

    /// Remember the digest of `path`, whose stat data was `meta` when hashing began.
    /// The hashing moment is taken as now minus the racy margin's worth of doubt:
    /// the caller stats, then reads, then calls this, so "now" is after the read.
    pub fn put(&self, path: &Path, meta: &fs::Metadata, digest: [u8; 32]) {
        let (size, mtime_ns, ctime_ns, ino, dev) = stat_of(meta);
        let entry = Entry {
            size,
            mtime_ns,
            ctime_ns,
            ino,
            dev,
            digest: hex::encode(digest),
            hashed_at_ns: now_ns(),
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(path.to_path_buf(), entry);
            if let Ok(mut d) = self.dirty.lock() {
                *d = true;
            }
        }
    }

    /// Write the index back (temporary file + rename) if anything was added.
    /// Concurrent writers each rename a whole file: the last one wins, and
    /// what the other learned is simply hashed again next time.
    pub fn save(&self) -> std::io::Result<()> {
        if !self.dirty.lock().map(|d| *d).unwrap_or(false) {
            return Ok(());
        }
        let json = {
            let entries = self
                .entries
                .lock()
                .map_err(|_| std::io::Error::other("input index lock poisoned"))?;
            serde_json::to_vec(&*entries)?
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir.join("tmp"))?;
        tmp.write_all(&json)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_the_file_changes_and_distrusts_young_entries() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tmp")).unwrap();
        let f = d.path().join("input");
        std::fs::write(&f, b"one").unwrap();
        // An old file: trusted once recorded.
        filetime::set_file_mtime(&f, filetime::FileTime::from_unix_time(1_000_000_000, 0)).unwrap();
        let idx = InputIndex::load(d.path());
        let meta = std::fs::metadata(&f).unwrap();
        idx.put(&f, &meta, [7; 32]);
        // ctime was just moved by set_file_mtime, so the entry is racy until it ages.
        assert_eq!(
            idx.get(&f, &meta),
            None,
            "a young ctime makes the entry racy"
        );
        {
            let mut e = idx.entries.lock().unwrap();
            let entry = e.get_mut(&f).unwrap();
            entry.hashed_at_ns += 10 * RACY_MARGIN_NS; // as if hashed long after the last change
        }
        assert_eq!(idx.get(&f, &meta), Some([7; 32]));
        idx.save().unwrap();
        assert_eq!(
            InputIndex::load(d.path()).get(&f, &meta),
            Some([7; 32]),
            "survives a reload"
        );

        // Same size, same mtime, new content: ctime (and usually mtime) moves: a miss.
        std::fs::write(&f, b"two").unwrap();
        filetime::set_file_mtime(&f, filetime::FileTime::from_unix_time(1_000_000_000, 0)).unwrap();
        let meta2 = std::fs::metadata(&f).unwrap();
        assert_eq!(idx.get(&f, &meta2), None);
    }
}
