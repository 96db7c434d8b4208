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

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The index file. Bump the version (and [`MAGIC`]) when [`Entry`] or the
/// encoding changes shape or meaning; an old file is then simply not read.
const INDEX_FILE: &str = "inputs-v2.bin";

/// The first bytes of an index file.
const MAGIC: &[u8; 16] = b"strata-inputs-2\n";

/// Coarse filesystems keep mtimes in whole (or even two) seconds.
pub const RACY_MARGIN_NS: i128 = 2_000_000_000;

/// Bytes of one entry after its path: size, mtime, ctime, inode, device,
/// hashed-at (8 bytes each) and the 32-byte digest.
const ENTRY_LEN: usize = 6 * 8 + 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
    /// blake3 of the content.
    digest: [u8; 32],
    /// When the content was read (ns since 1970), for the racy check.
    hashed_at_ns: i64,
}

impl Entry {
    fn stat(&self) -> (u64, i64, i64, u64, u64) {
        (self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev)
    }
}

/// Size, mtime and ctime (ns since 1970), inode and device.
pub(crate) fn stat_of(meta: &fs::Metadata) -> (u64, i64, i64, u64, u64) {
    (
        meta.size(),
        meta.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        meta.ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
        meta.ino(),
        meta.dev(),
    )
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Paths are keys as their bytes, hashed: `Path`'s ordering walks components
/// (a third of a warm build's CPU time on 50,000 files, measured), and even
/// byte order compares long shared prefixes 16 times per lookup. A lookup
/// table only: the file is written in sorted order (see `encode`), and no
/// map order reaches an image.
type Entries = HashMap<Box<[u8]>, Entry>;

/// The input index of one cache directory, loaded in memory; [`save`](InputIndex::save) writes it back atomically.
///
/// File format (all integers little-endian): [`MAGIC`], the entry count
/// (u64), then per entry the path length (u32), the path bytes and
/// [`ENTRY_LEN`] bytes of fields, and last the blake3 of everything before
/// it. A file that does not check out is ignored as a whole.
#[derive(Debug)]
pub struct InputIndex {
    path: PathBuf,
    /// What the file held: read without a lock by the parallel digesters.
    loaded: Entries,
    /// What this process learned (stat data changed, or new paths).
    fresh: Mutex<Entries>,
}

impl InputIndex {
    /// Load the index of a cache root; a missing or unreadable index is empty
    /// (it is only a speed-up: losing it costs a re-hash, never a wrong key).
    pub fn load(cache_root: &Path) -> InputIndex {
        // The JSON index of strata 0.1 (12.5 MB for 53,000 files): never
        // read again, so not kept.
        let _ = fs::remove_file(cache_root.join("inputs-v1.json"));
        let path = cache_root.join(INDEX_FILE);
        let loaded = fs::read(&path)
            .ok()
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        InputIndex {
            path,
            loaded,
            fresh: Mutex::new(HashMap::new()),
        }
    }

    /// The digest remembered for `path`, if its stat data matches and the entry is not racy.
    pub fn get(&self, path: &Path, meta: &fs::Metadata) -> Option<[u8; 32]> {
        let key = path.as_os_str().as_bytes();
        let stat = stat_of(meta);
        let trusted = |e: &Entry| {
            let (_, mtime, ctime, _, _) = stat;
            e.stat() == stat
                && i128::from(mtime.max(ctime)) + RACY_MARGIN_NS < i128::from(e.hashed_at_ns)
        };
        if let Some(e) = self.loaded.get(key).filter(|e| trusted(e)) {
            return Some(e.digest);
        }
        let fresh = self.fresh.lock().ok()?;
        fresh.get(key).filter(|e| trusted(e)).map(|e| e.digest)
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
            digest,
            hashed_at_ns: now_ns(),
        };
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.insert(path.as_os_str().as_bytes().into(), entry);
        }
    }

    /// Write the index back (temporary file + rename) if anything was added.
    /// Concurrent writers each rename a whole file: the last one wins, and
    /// what the other learned is simply hashed again next time.
    pub fn save(&self) -> std::io::Result<()> {
        let fresh = self
            .fresh
            .lock()
            .map_err(|_| std::io::Error::other("input index lock poisoned"))?;
        if fresh.is_empty() {
            return Ok(());
        }
        // What was loaded, less what this process re-learned, plus that:
        // by reference, not a copy of the whole map.
        let all: Vec<(&[u8], &Entry)> = self
            .loaded
            .iter()
            .filter(|(k, _)| !fresh.contains_key(*k))
            .chain(fresh.iter())
            .map(|(k, v)| (&**k, v))
            .collect();
        let bytes = encode(all);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir.join("tmp"))?;
        tmp.write_all(&bytes)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The file for `entries` (each path once), in path order.
fn encode(mut entries: Vec<(&[u8], &Entry)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + entries.len() * (ENTRY_LEN + 64));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (path, e) in entries {
        // Paths are bounded by PATH_MAX (4096), far below u32::MAX.
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        for v in [
            e.size,
            e.mtime_ns as u64,
            e.ctime_ns as u64,
            e.ino,
            e.dev,
            e.hashed_at_ns as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&e.digest);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Entries> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    let mut r = body.strip_prefix(MAGIC.as_slice())?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = r.split_at_checked(n)?;
        r = rest;
        Some(head)
    };
    let u64_at =
        |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut entries =
        HashMap::with_capacity(usize::try_from(count).ok()?.min(bytes.len() / ENTRY_LEN));
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let path: Box<[u8]> = take(len)?.into();
        let f = take(ENTRY_LEN)?;
        let entry = Entry {
            size: u64_at(f, 0),
            mtime_ns: u64_at(f, 1) as i64,
            ctime_ns: u64_at(f, 2) as i64,
            ino: u64_at(f, 3),
            dev: u64_at(f, 4),
            hashed_at_ns: u64_at(f, 5) as i64,
            digest: f[48..80].try_into().ok()?,
        };
        entries.insert(path, entry);
    }
    take(1).is_none().then_some(entries)
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
            let mut e = idx.fresh.lock().unwrap();
            let entry = e.get_mut(f.as_os_str().as_bytes()).unwrap();
            entry.hashed_at_ns += 10 * RACY_MARGIN_NS as i64; // as if hashed long after the last change
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

    #[test]
    fn a_damaged_index_file_is_ignored_as_a_whole() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tmp")).unwrap();
        let f = d.path().join("input");
        std::fs::write(&f, b"one").unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        let idx = InputIndex::load(d.path());
        idx.put(&f, &meta, [9; 32]);
        idx.save().unwrap();
        let file = d.path().join(INDEX_FILE);
        let good = std::fs::read(&file).unwrap();
        assert_eq!(decode(&good).map(|e| e.len()), Some(1));
        // Any flipped byte, and any truncation, makes the whole file unread.
        for i in [0, 20, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert_eq!(decode(&bad), None, "flipped byte {i}");
        }
        for n in [0, 10, good.len() - 1] {
            assert_eq!(decode(&good[..n]), None, "truncated to {n}");
        }
        std::fs::write(&file, &good[..good.len() - 3]).unwrap();
        assert!(InputIndex::load(d.path()).loaded.is_empty());
    }
}
