//! Memos: derived data kept so that a build need not derive it again. Today
//! one kind: the folded view of a stack of layers (`strata_oci::LowerView`),
//! keyed by the stack's diff_ids, so a layer rebuilt above an unchanged base
//! (the one-file change) reads one small file instead of parsing every lower
//! listing (measured: the parse and fold were half the CPU of such a
//! compose over a Debian base). The compose keeps one only for a layer that
//! is rebuilt, so a first build of many images over one base writes none.
//!
//! A memo is never trusted beyond its bytes: they end in their own blake3,
//! and one that does not check is removed and treated as absent. Memos are
//! written to a temporary name and renamed, without `fsync`: losing one to a
//! crash costs a recomputation, never a wrong answer. `cache gc` removes
//! memos unused for a day ([`MEMO_KEEP`]); a read marks one used.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::Cache;

/// The bucket, `CACHE/memo-v1/<key>`. Bump when the framing changes.
pub(crate) const MEMO_BUCKET: &str = "memo-v1";

/// How long `cache gc` keeps a memo nobody read.
pub(crate) const MEMO_KEEP: Duration = Duration::from_secs(24 * 3600);

impl Cache {
    fn memo_path(&self, key: &str) -> Option<PathBuf> {
        // Keys are hex digests: nothing else names a file here.
        let hex = key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| self.root().join(MEMO_BUCKET).join(key))
    }

    /// The bytes kept under `key` (a 64-digit hex digest), if a whole memo is there.
    pub fn memo(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.memo_path(key)?;
        let mut bytes = fs::read(&path).ok()?;
        let body = bytes.len().checked_sub(32)?;
        if blake3::hash(&bytes[..body]).as_bytes() != &bytes[body..] {
            let _ = fs::remove_file(&path);
            return None;
        }
        if let Ok(f) = fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        bytes.truncate(body);
        Some(bytes)
    }

    /// Keep `bytes` under `key`. Best effort: a memo that cannot be written
    /// is only a memo less.
    pub fn put_memo(&self, key: &str, bytes: &[u8]) {
        let Some(path) = self.memo_path(key) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(self.root().join(MEMO_BUCKET))?;
            let mut tmp = tempfile::NamedTempFile::new_in(self.root().join("tmp"))?;
            tmp.write_all(bytes)?;
            tmp.write_all(blake3::hash(bytes).as_bytes())?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        let _ = write();
    }

    /// Removes memos not read within [`MEMO_KEEP`] (or `older_than`, if
    /// shorter); returns the bytes freed.
    pub(crate) fn remove_old_memos(
        &self,
        older_than: Option<Duration>,
        removed: &mut Vec<(String, String)>,
    ) -> u64 {
        let keep = older_than.map_or(MEMO_KEEP, |d| d.min(MEMO_KEEP));
        let now = SystemTime::now();
        let mut freed = 0;
        let Ok(entries) = fs::read_dir(self.root().join(MEMO_BUCKET)) else {
            return 0;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age > keep && fs::remove_file(e.path()).is_ok() {
                freed += meta.len();
                removed.push((
                    format!("memo {}", e.file_name().to_string_lossy()),
                    "derived data unused for a day".to_owned(),
                ));
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_comes_back_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = "ab".repeat(32);
        assert_eq!(cache.memo(&key), None);
        cache.put_memo(&key, b"folded view");
        assert_eq!(cache.memo(&key).as_deref(), Some(&b"folded view"[..]));
        // A key that is not a digest names no file.
        cache.put_memo("../escape", b"x");
        assert_eq!(cache.memo("../escape"), None);
        assert!(!dir.path().join("escape").exists());
        // A changed or cut memo is removed, and absent.
        let path = dir.path().join(MEMO_BUCKET).join(&key);
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.memo(&key), None);
        assert!(!path.exists());
        fs::write(&path, b"short").unwrap();
        assert_eq!(cache.memo(&key), None);
    }

    #[test]
    fn gc_removes_memos_unused_for_a_day_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (old, new) = ("01".repeat(32), "02".repeat(32));
        cache.put_memo(&old, b"old");
        cache.put_memo(&new, b"new");
        let two_days = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        fs::File::options()
            .append(true)
            .open(dir.path().join(MEMO_BUCKET).join(&old))
            .unwrap()
            .set_modified(two_days)
            .unwrap();
        let report = cache.gc(None, None).unwrap();
        assert!(
            report
                .removed
                .iter()
                .any(|(what, _)| what == &format!("memo {old}")),
            "{report:?}"
        );
        assert_eq!(cache.memo(&old), None);
        assert_eq!(cache.memo(&new).as_deref(), Some(&b"new"[..]));
    }
}
