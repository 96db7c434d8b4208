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
//!
//! The index does not grow without bound: a save keeps the entries this
//! process looked up or learned, and others only while they were hashed less
//! than [`KEEP_UNUSED_NS`] ago. Files of a deleted checkout, a temporary
//! directory or another project that stopped using the cache drop out; a
//! project that shares the cache with a busier one re-hashes its inputs at
//! most once a month.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The index file. Bump the version (and [`MAGIC`]) when [`Entry`] or the
/// encoding changes shape or meaning; an old file is then simply not read.
const INDEX_FILE: &str = "inputs-v3.bin";

/// Index files of earlier versions, removed when an index is loaded: they
/// are never read again (v1: JSON, 12.5 MB for 53,000 files; v2: one full
/// path per entry, 5.5 MB).
const OLD_INDEX_FILES: [&str; 2] = ["inputs-v1.json", "inputs-v2.bin"];

/// The first bytes of an index file.
const MAGIC: &[u8; 16] = b"strata-inputs-3\n";

/// How long an entry nobody looks up is kept, from when it was hashed: 30 days.
pub const KEEP_UNUSED_NS: i64 = 30 * 24 * 3600 * 1_000_000_000;

/// Coarse filesystems keep mtimes in whole (or even two) seconds.
pub const RACY_MARGIN_NS: i128 = 2_000_000_000;

/// Bytes of one entry after its name: size, mtime, ctime, inode, device,
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

    fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.size,
            self.mtime_ns as u64,
            self.ctime_ns as u64,
            self.ino,
            self.dev,
            self.hashed_at_ns as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.digest);
    }

    /// `f` is [`ENTRY_LEN`] bytes.
    fn decode(f: &[u8]) -> Entry {
        let u64_at =
            |i: usize| u64::from_le_bytes(f[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Entry {
            size: u64_at(0),
            mtime_ns: u64_at(1) as i64,
            ctime_ns: u64_at(2) as i64,
            ino: u64_at(3),
            dev: u64_at(4),
            hashed_at_ns: u64_at(5) as i64,
            digest: f[48..80].try_into().unwrap_or([0; 32]),
        }
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

/// A path's directory and its last name, split at the last `/`: `/a/x` is
/// (`/a`, `x`), `/x` is (`/`, `x`) and `x` is (``, `x`). Two spellings of
/// one file may share both (`/x` and `//x`); [`encode`] keeps one of them.
/// [`InputIndex::get_in`] finds the same directory from the `Path` a name
/// was joined to.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (&path[..1], &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// The directory part [`split`] gives for `dir.join(name)`: `dir` without
/// one trailing slash, unless it is `/` itself (`a/` and `a` give `a`, `a//`
/// gives `a/`, `/` and `//` give `/`).
fn dir_key(dir: &Path) -> &[u8] {
    let b = dir.as_os_str().as_bytes();
    // `join` adds a `/` unless `dir` ends in one; `split` cuts at the last.
    match b.strip_suffix(b"/") {
        Some(stripped) if b.len() > 1 => stripped,
        _ => b,
    }
}

/// The index file as loaded: its bytes, and where each directory's entries
/// are in them. Looking a file up hashes its directory (a few hundred in a
/// large tree) and binary-searches its name among that directory's entries,
/// which are sorted by name bytes: loading costs no allocation per entry (a
/// map of 53,000 owned paths took 25 ms to build, a tenth of a warm compose).
/// A lookup table only: no map order reaches an image.
#[derive(Debug, Default)]
struct Loaded {
    bytes: Vec<u8>,
    /// Directory path → range of `entries`.
    dirs: HashMap<Box<[u8]>, std::ops::Range<usize>>,
    /// Per entry, the offset in `bytes` of its name length; grouped by
    /// directory, sorted by name within one.
    entries: Vec<usize>,
    /// Per entry, whether this process looked it up (set by the parallel
    /// digesters; read when saving, to keep what is in use).
    used: Vec<AtomicBool>,
}

impl Loaded {
    /// The name and fields of the entry at `offset`. Offsets come from
    /// [`decode`], which checked that they are in bounds.
    fn at(&self, offset: usize) -> (&[u8], &[u8]) {
        let len = u32::from_le_bytes(self.bytes[offset..offset + 4].try_into().unwrap_or([0; 4]))
            as usize;
        let name = &self.bytes[offset + 4..offset + 4 + len];
        (
            name,
            &self.bytes[offset + 4 + len..offset + 4 + len + ENTRY_LEN],
        )
    }

    #[cfg(test)]
    fn get(&self, path: &[u8]) -> Option<Entry> {
        let (dir, name) = split(path);
        self.get_in(dir, name)
    }

    /// The entry of `name` in `dir`, marked as used.
    fn get_in(&self, dir: &[u8], name: &[u8]) -> Option<Entry> {
        let range = self.dirs.get(dir)?;
        let entries = &self.entries[range.clone()];
        let i = entries.binary_search_by(|&o| self.at(o).0.cmp(name)).ok()?;
        self.used[range.start + i].store(true, Ordering::Relaxed);
        Some(Entry::decode(self.at(entries[i]).1))
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The input index of one cache directory, loaded in memory; [`save`](InputIndex::save) writes it back atomically.
///
/// File format (all integers little-endian): [`MAGIC`], the directory count
/// (u64), then per directory, in byte order of their paths: the path length
/// (u32) and bytes (as [`split`] gives them), the entry count (u32), and per entry, in
/// byte order of their names: the name length (u32), the name and
/// [`ENTRY_LEN`] bytes of fields. Last, the blake3 of everything before it.
/// A file that does not check out is ignored as a whole.
#[derive(Debug)]
pub struct InputIndex {
    path: PathBuf,
    /// What the file held: read without a lock by the parallel digesters.
    loaded: Loaded,
    /// What this process learned (stat data changed, or new paths), by full path.
    fresh: Mutex<HashMap<Box<[u8]>, Entry>>,
    /// Whether the file was there but did not check out (see [`InputIndex::damaged`]).
    damaged: bool,
}

impl InputIndex {
    /// Load the index of a cache root; a missing or unreadable index is empty
    /// (it is only a speed-up: losing it costs a re-hash, never a wrong key).
    pub fn load(cache_root: &Path) -> InputIndex {
        for old in OLD_INDEX_FILES {
            let _ = fs::remove_file(cache_root.join(old));
        }
        let path = cache_root.join(INDEX_FILE);
        let (loaded, damaged) = match fs::read(&path) {
            Ok(bytes) => match decode(bytes) {
                Some(loaded) => (loaded, false),
                None => (Loaded::default(), true),
            },
            Err(_) => (Loaded::default(), false),
        };
        InputIndex {
            path,
            loaded,
            fresh: Mutex::new(HashMap::new()),
            damaged,
        }
    }

    /// The index file, when it was there but did not check out (truncated,
    /// garbage, another version): it was ignored, so every input is hashed
    /// again, and the next save replaces it. A caller says so: silently, a
    /// cache that keeps being damaged only looks slow.
    pub fn damaged(&self) -> Option<&Path> {
        self.damaged.then_some(self.path.as_path())
    }

    /// The digest remembered for `path`, if its stat data matches and the entry is not racy.
    pub fn get(&self, path: &Path, meta: &fs::Metadata) -> Option<[u8; 32]> {
        let key = path.as_os_str().as_bytes();
        let (dir, name) = split(key);
        trusted(self.loaded.get_in(dir, name), meta).or_else(|| self.fresh_get(key, meta))
    }

    /// [`get`](InputIndex::get) for `dir.join(name)`, without joining them
    /// unless the loaded entries miss (a warm compose looks up every input file).
    pub fn get_in(&self, dir: &Path, name: &OsStr, meta: &fs::Metadata) -> Option<[u8; 32]> {
        trusted(self.loaded.get_in(dir_key(dir), name.as_bytes()), meta)
            .or_else(|| self.fresh_get(dir.join(name).as_os_str().as_bytes(), meta))
    }

    /// Whether the loaded index holds any file of directory `dir`: when it
    /// does not (a fresh cache, a new directory), a caller expects to hash
    /// every file there rather than find it remembered.
    pub fn knows_dir(&self, dir: &Path) -> bool {
        self.loaded.dirs.contains_key(dir_key(dir))
    }

    /// What this process learned for `path`, if trusted.
    fn fresh_get(&self, path: &[u8], meta: &fs::Metadata) -> Option<[u8; 32]> {
        let fresh = self.fresh.lock().ok()?;
        trusted(fresh.get(path).copied(), meta)
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
        let bytes = encode(
            &self.loaded,
            &fresh,
            now_ns().saturating_sub(KEEP_UNUSED_NS),
        );
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir.join("tmp"))?;
        tmp.write_all(&bytes)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The digest of `entry` if its stat data is `meta`'s and it is not racy.
fn trusted(entry: Option<Entry>, meta: &fs::Metadata) -> Option<[u8; 32]> {
    let stat = stat_of(meta);
    let (_, mtime, ctime, _, _) = stat;
    entry
        .filter(|e| {
            e.stat() == stat
                && i128::from(mtime.max(ctime)) + RACY_MARGIN_NS < i128::from(e.hashed_at_ns)
        })
        .map(|e| e.digest)
}

/// The file for what was `loaded`, less what was re-learned and what was
/// neither used nor hashed since `keep_since` (ns since 1970), plus the
/// `fresh` entries. Directory by directory in byte order, each a merge of
/// two name-sorted runs: entries loaded are copied as they were read, with
/// no sort or allocation per entry (a sort of all 53,000 paths was most of
/// the cost of saving after a one-file change).
fn encode(loaded: &Loaded, fresh: &HashMap<Box<[u8]>, Entry>, keep_since: i64) -> Vec<u8> {
    use std::collections::BTreeMap;
    let mut fresh_by_dir: BTreeMap<&[u8], Vec<(&[u8], &Entry)>> = BTreeMap::new();
    for (path, e) in fresh {
        let (dir, name) = split(path);
        fresh_by_dir.entry(dir).or_default().push((name, e));
    }
    let mut dirs: Vec<&[u8]> = loaded.dirs.keys().map(|d| &**d).collect();
    dirs.extend(
        fresh_by_dir
            .keys()
            .filter(|d| !loaded.dirs.contains_key(**d)),
    );
    dirs.sort_unstable();

    let mut out = Vec::with_capacity(loaded.bytes.len() + fresh.len() * (ENTRY_LEN + 64) + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(dirs.len() as u64).to_le_bytes());
    // Paths and names are bounded by PATH_MAX (4096), and a directory's
    // entries by what fits in memory: far below u32::MAX.
    let name_and_fields = |out: &mut Vec<u8>, name: &[u8], e: &Entry| {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
        e.encode(out);
    };
    let kept = |k: usize| {
        loaded.used[k].load(Ordering::Relaxed)
            || Entry::decode(loaded.at(loaded.entries[k]).1).hashed_at_ns >= keep_since
    };
    let mut dir_count = 0u64;
    let dir_count_at = out.len() - 8;
    for dir in dirs {
        let old: Vec<usize> = loaded
            .dirs
            .get(dir)
            .map_or(0..0, |r| r.clone())
            .filter(|&k| kept(k))
            .map(|k| loaded.entries[k])
            .collect();
        let mut new = fresh_by_dir.remove(dir).unwrap_or_default();
        if old.is_empty() && new.is_empty() {
            continue;
        }
        dir_count += 1;
        new.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // `/x` and `//x` are one file under one name: written twice, the
        // file would not load.
        new.dedup_by(|a, b| a.0 == b.0);
        out.extend_from_slice(&(dir.len() as u32).to_le_bytes());
        out.extend_from_slice(dir);
        let count_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        let (mut i, mut j, mut count) = (0, 0, 0u32);
        while i < old.len() || j < new.len() {
            let old_name = old.get(i).map(|&o| loaded.at(o).0);
            match (old_name, new.get(j)) {
                (Some(o), Some((n, e))) if *n <= o => {
                    name_and_fields(&mut out, n, e);
                    // A re-learned entry replaces the loaded one.
                    i += usize::from(*n == o);
                    j += 1;
                }
                (Some(_), _) => {
                    let at = old[i];
                    let (name, _) = loaded.at(at);
                    out.extend_from_slice(&loaded.bytes[at..at + 4 + name.len() + ENTRY_LEN]);
                    i += 1;
                }
                (None, Some((n, e))) => {
                    name_and_fields(&mut out, n, e);
                    j += 1;
                }
                (None, None) => break,
            }
            count += 1;
        }
        out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    }
    out[dir_count_at..dir_count_at + 8].copy_from_slice(&dir_count.to_le_bytes());
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn decode(mut bytes: Vec<u8>) -> Option<Loaded> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    bytes.truncate(body_len);
    let mut pos = MAGIC.len();
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    let mut take = |n: usize| -> Option<(usize, &[u8])> {
        let at = pos;
        let end = at.checked_add(n).filter(|&e| e <= bytes.len())?;
        pos = end;
        Some((at, &bytes[at..end]))
    };
    let u32_of = |b: &[u8]| b.try_into().ok().map(u32::from_le_bytes);
    let dir_count = u64::from_le_bytes(take(8)?.1.try_into().ok()?);
    let mut dirs = HashMap::new();
    let mut entries = Vec::with_capacity(body_len / (ENTRY_LEN + 8));
    for _ in 0..dir_count {
        let len = u32_of(take(4)?.1)? as usize;
        let dir: Box<[u8]> = take(len)?.1.into();
        let count = u32_of(take(4)?.1)?;
        let first = entries.len();
        let mut last: Option<(usize, usize)> = None;
        for _ in 0..count {
            let (at, len) = take(4)?;
            let len = u32_of(len)? as usize;
            let (name_at, _) = take(len)?;
            take(ENTRY_LEN)?;
            // Sorted, each name once: lookups binary-search.
            if let Some((p, plen)) = last
                && bytes_at(&bytes, p, plen) >= bytes_at(&bytes, name_at, len)
            {
                return None;
            }
            last = Some((name_at, len));
            entries.push(at);
        }
        if dirs.insert(dir, first..entries.len()).is_some() {
            return None;
        }
    }
    let used = entries.iter().map(|_| AtomicBool::new(false)).collect();
    (pos == bytes.len()).then_some(Loaded {
        bytes,
        dirs,
        entries,
        used,
    })
}

fn bytes_at(bytes: &[u8], at: usize, len: usize) -> &[u8] {
    &bytes[at..at + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache root with the `tmp/` an index is saved through.
    fn cache_root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tmp")).unwrap();
        d
    }

    #[test]
    fn remembers_until_the_file_changes_and_distrusts_young_entries() {
        let d = cache_root();
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
        let d = cache_root();
        let f = d.path().join("input");
        std::fs::write(&f, b"one").unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        let idx = InputIndex::load(d.path());
        idx.put(&f, &meta, [9; 32]);
        idx.save().unwrap();
        let file = d.path().join(INDEX_FILE);
        let good = std::fs::read(&file).unwrap();
        assert_eq!(decode(good.clone()).map(|e| e.entries.len()), Some(1));
        // Any flipped byte, and any truncation, makes the whole file unread.
        for i in [0, 20, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(decode(bad).is_none(), "flipped byte {i}");
        }
        for n in [0, 10, good.len() - 1] {
            assert!(decode(good[..n].to_vec()).is_none(), "truncated to {n}");
        }
        std::fs::write(&file, &good[..good.len() - 3]).unwrap();
        let damaged = InputIndex::load(d.path());
        assert!(damaged.loaded.is_empty());
        // ...and says so (issue 16, item 7), unlike a missing or a good one.
        assert_eq!(damaged.damaged(), Some(file.as_path()));
        std::fs::write(&file, &good).unwrap();
        assert_eq!(InputIndex::load(d.path()).damaged(), None);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(InputIndex::load(d.path()).damaged(), None);
    }

    #[test]
    fn finds_every_entry_of_many_directories_and_nothing_else() {
        let d = cache_root();
        let idx = InputIndex::load(d.path());
        let meta = std::fs::metadata(d.path()).unwrap();
        // Names that sort differently as bytes and as paths, a name that is
        // a prefix of another, a file and a directory of the same name, and
        // a relative path next to an absolute one.
        let mut paths: Vec<String> = Vec::new();
        for dir in ["/a", "/a/b", "/a-b", "/a.b", "/", "rel", ""] {
            for name in ["x", "x.y", "x-y", "xy", "b", "Z"] {
                paths.push(if dir.is_empty() {
                    name.to_owned()
                } else if dir == "/" {
                    format!("/{name}")
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
        for (i, p) in paths.iter().enumerate() {
            idx.put(Path::new(p), &meta, [i as u8; 32]);
        }
        idx.save().unwrap();
        let back = InputIndex::load(d.path());
        assert_eq!(back.loaded.entries.len(), paths.len());
        for (i, p) in paths.iter().enumerate() {
            let e = back
                .loaded
                .get(p.as_bytes())
                .unwrap_or_else(|| panic!("{p} lost"));
            assert_eq!(e.digest, [i as u8; 32], "{p}");
        }
        // The same entries found from the directory a name was joined to.
        for (dir, name) in [
            ("/a", "x"),
            ("/a/", "x.y"),
            ("/", "Z"),
            ("", "b"),
            ("rel", "xy"),
            ("/a/b", "x-y"),
        ] {
            let joined = Path::new(dir).join(name);
            assert!(
                back.loaded.get(joined.as_os_str().as_bytes()).is_some(),
                "{dir} + {name}"
            );
            assert_eq!(
                back.loaded.get_in(dir_key(Path::new(dir)), name.as_bytes()),
                back.loaded.get(joined.as_os_str().as_bytes()),
                "{dir} + {name}"
            );
        }
        for absent in ["/a/c", "/a/b/x/y", "a/x", "/x.z", "x.", "/a/", "/a"] {
            assert!(back.loaded.get(absent.as_bytes()).is_none(), "{absent}");
        }
        // A second save keeps what was loaded and what is new, each once.
        back.put(Path::new("/new/file"), &meta, [200; 32]);
        back.put(Path::new("/a/x"), &meta, [201; 32]);
        back.put(Path::new("/a/A"), &meta, [202; 32]);
        back.put(Path::new("/a/zz"), &meta, [203; 32]);
        back.save().unwrap();
        let again = InputIndex::load(d.path());
        assert_eq!(again.loaded.entries.len(), paths.len() + 3);
        assert_eq!(again.loaded.get(b"/a/A").unwrap().digest, [202; 32]);
        assert_eq!(again.loaded.get(b"/a/zz").unwrap().digest, [203; 32]);
        assert_eq!(again.loaded.get(b"/new/file").unwrap().digest, [200; 32]);
        assert_eq!(again.loaded.get(b"/a/x").unwrap().digest, [201; 32]);
        assert_eq!(
            again.loaded.get(b"/a/b/x").unwrap().digest,
            back.loaded.get(b"/a/b/x").unwrap().digest
        );
    }

    #[test]
    fn an_index_with_unsorted_or_repeated_names_is_not_read() {
        let e = Entry {
            size: 1,
            mtime_ns: 2,
            ctime_ns: 3,
            ino: 4,
            dev: 5,
            digest: [6; 32],
            hashed_at_ns: 7,
        };
        let fresh = HashMap::from([(b"/d/a"[..].into(), e), (b"/d/b"[..].into(), e)]);
        let good = encode(&Loaded::default(), &fresh, 0);
        assert_eq!(decode(good).map(|l| l.entries.len()), Some(2));
        // encode sorts; write the body by hand to get an order it never writes.
        let body = |names: [&[u8]; 2]| {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&1u64.to_le_bytes());
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(b"/d/");
            out.extend_from_slice(&2u32.to_le_bytes());
            for n in names {
                out.extend_from_slice(&(n.len() as u32).to_le_bytes());
                out.extend_from_slice(n);
                e.encode(&mut out);
            }
            let sum = blake3::hash(&out);
            out.extend_from_slice(sum.as_bytes());
            out
        };
        assert!(decode(body([b"a", b"b"])).is_some());
        assert!(decode(body([b"b", b"a"])).is_none(), "unsorted");
        assert!(decode(body([b"a", b"a"])).is_none(), "repeated");
    }

    #[test]
    fn a_save_drops_old_entries_nobody_looked_up() {
        let d = cache_root();
        let meta = std::fs::metadata(d.path()).unwrap();
        let idx = InputIndex::load(d.path());
        for p in ["/old/used", "/gone/unused", "/recent/unused"] {
            idx.put(Path::new(p), &meta, [1; 32]);
        }
        {
            let mut fresh = idx.fresh.lock().unwrap();
            for p in ["/old/used", "/gone/unused"] {
                fresh.get_mut(p.as_bytes()).unwrap().hashed_at_ns -= KEEP_UNUSED_NS + 1;
            }
        }
        idx.save().unwrap();
        let back = InputIndex::load(d.path());
        assert_eq!(back.loaded.entries.len(), 3, "a save keeps what it learned");
        // This process looks one old entry up (racy or not, it is in use).
        let _ = back.get(Path::new("/old/used"), &meta);
        back.put(Path::new("/new/file"), &meta, [2; 32]);
        back.save().unwrap();
        let again = InputIndex::load(d.path());
        let mut kept: Vec<&str> = ["/old/used", "/gone/unused", "/recent/unused", "/new/file"]
            .into_iter()
            .filter(|p| again.loaded.get(p.as_bytes()).is_some())
            .collect();
        kept.sort_unstable();
        assert_eq!(kept, ["/new/file", "/old/used", "/recent/unused"]);
        assert_eq!(
            again.loaded.dirs.len(),
            3,
            "a directory left empty is not written"
        );
    }

    #[test]
    fn two_spellings_of_one_path_do_not_spoil_the_file() {
        let d = cache_root();
        let meta = std::fs::metadata(d.path()).unwrap();
        let idx = InputIndex::load(d.path());
        for p in ["/ctx/a", "/x", "//x"] {
            idx.put(Path::new(p), &meta, [3; 32]);
        }
        idx.save().unwrap();
        let back = InputIndex::load(d.path());
        assert_eq!(back.loaded.entries.len(), 2);
        assert!(back.loaded.get(b"/x").is_some() && back.loaded.get(b"/ctx/a").is_some());
    }

    #[test]
    fn dir_key_is_the_directory_split_gives_for_a_joined_name() {
        for dir in [
            "a", "a/", "a//", "/", "//", "///", "", ".", "/a/b//", "/a/b",
        ] {
            let joined = Path::new(dir).join("n");
            let (split_dir, name) = split(joined.as_os_str().as_bytes());
            assert_eq!(name, b"n", "{dir:?}");
            assert_eq!(
                dir_key(Path::new(dir)),
                split_dir,
                "{dir:?} joined is {joined:?}"
            );
        }
    }
}
