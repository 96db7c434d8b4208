//! Cache maintenance: listing entries, verifying every blob, evicting the
//! least recently used entries (`strata cache ls|verify|gc`), and the
//! last-build records that explain why a layer missed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use strata_oci::Digest;

use crate::{Cache, Error, io_err};

/// One layer entry of the cache, for `strata cache ls`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryInfo {
    pub key: String,
    pub blob: strata_oci::Digest,
    /// Compressed size of the blob.
    pub size: u64,
    pub media_type: strata_oci::MediaType,
    /// When the entry was last written or hit.
    #[serde(skip)]
    pub last_used: SystemTime,
    /// Seconds since 1970 of `last_used`, for JSON.
    pub last_used_unix: u64,
}

/// What `verify` or `gc` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MaintReport {
    pub checked: usize,
    /// Entries removed, with the reason.
    pub removed: Vec<(String, String)>,
    /// Bytes freed.
    pub freed: u64,
}

/// The record of the last build of a layer, by name, to explain the next miss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastBuild {
    pub key: String,
    /// The key's parts as (label, hex digest).
    pub parts: Vec<(String, String)>,
}

impl Cache {
    /// Every layer entry, most recently used first.
    pub fn entries(&self) -> Result<Vec<EntryInfo>, Error> {
        let dir = self.root().join(crate::LAYERS_BUCKET);
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let path = e.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let Ok(Ok(rec)) = crate::record::read_head_for(&path, key) else {
                continue;
            };
            let last_used = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.push(EntryInfo {
                key: key.to_owned(),
                blob: rec.desc.blob,
                size: rec.desc.size,
                media_type: rec.desc.media_type,
                last_used,
                last_used_unix: last_used
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
        }
        out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Mark an entry as used now (its record's mtime is its last use).
    pub fn touch(&self, key: &str) {
        let _ = crate::used_now(&self.record_path(key), false);
    }

    /// Re-hash every blob; remove records whose blob is missing or corrupt,
    /// unreadable records, and blobs no record names.
    pub fn verify(&self) -> Result<MaintReport, Error> {
        let _lock = self.lock_exclusive()?;
        let mut report = MaintReport::default();
        let dir = self.root().join(crate::LAYERS_BUCKET);
        let mut referenced = BTreeSet::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = e.map_err(io_err(&dir))?.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned)
            else {
                continue;
            };
            report.checked += 1;
            match self.get_checked(&key, true, true)? {
                Ok(rec) => {
                    referenced.insert(rec.desc.blob);
                }
                Err(crate::Miss::Dropped(reason)) => report.removed.push((key, reason)),
                Err(crate::Miss::Absent) => {}
            }
        }
        referenced.extend(self.kept_small_blobs(None, true, &mut report)?);
        report.freed += self.remove_orphans(&referenced, &mut report.removed)?;
        Ok(report)
    }

    /// The small blobs (see [`Cache::put_bytes`]) to keep: those whose marker
    /// is not older than `older_than` and whose blob is there, re-hashed
    /// when `rehash`. Markers of the others are removed (their blobs then go
    /// as orphans). Small blobs are not counted against a size limit: they
    /// are a few KiB each, and losing one costs a fetch over the network.
    fn kept_small_blobs(
        &self,
        older_than: Option<Duration>,
        rehash: bool,
        report: &mut MaintReport,
    ) -> Result<BTreeSet<Digest>, Error> {
        let dir = self.root().join(crate::SMALL_BUCKET);
        let now = SystemTime::now();
        let mut kept = BTreeSet::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            report.checked += 1;
            let why_not = match format!("sha256:{name}").parse::<Digest>() {
                Err(_) => Some("not a marker of a small blob"),
                Ok(d) => {
                    let last_used = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    let path = self.blob_path(&d);
                    // Read only to re-hash: gc looks at the stat data.
                    let sound = if rehash {
                        fs::read(&path).map(|b| Digest::of(&b) == d)
                    } else {
                        fs::metadata(&path).map(|m| m.is_file())
                    };
                    if older_than
                        .is_some_and(|age| now.duration_since(last_used).unwrap_or_default() > age)
                    {
                        Some("unused for too long")
                    } else {
                        match sound {
                            Err(_) => Some("its blob is missing"),
                            Ok(false) => Some("its blob does not hash to its digest"),
                            Ok(true) => {
                                kept.insert(d);
                                None
                            }
                        }
                    }
                }
            };
            if let Some(why) = why_not {
                let _ = fs::remove_file(e.path());
                report
                    .removed
                    .push((format!("small blob sha256:{name}"), why.to_owned()));
            }
        }
        Ok(kept)
    }

    /// Evict least recently used entries until the blobs total at most
    /// `max_size` bytes, and every entry unused for longer than `older_than`.
    pub fn gc(
        &self,
        max_size: Option<u64>,
        older_than: Option<Duration>,
    ) -> Result<MaintReport, Error> {
        let _lock = self.lock_exclusive()?;
        let mut report = MaintReport::default();
        let mut entries = self.entries()?;
        report.checked = entries.len();
        // Oldest last: pop from the end.
        let now = SystemTime::now();
        let total = |es: &[EntryInfo]| -> u64 {
            let blobs: BTreeMap<Digest, u64> = es.iter().map(|e| (e.blob, e.size)).collect();
            blobs.values().sum()
        };
        while let Some(oldest) = entries.last() {
            let too_old = older_than
                .is_some_and(|age| now.duration_since(oldest.last_used).unwrap_or_default() > age);
            let too_big = max_size.is_some_and(|max| total(&entries) > max);
            if !too_old && !too_big {
                break;
            }
            let Some(e) = entries.pop() else { break };
            let _ = fs::remove_file(self.record_path(&e.key));
            report.removed.push((
                e.key,
                if too_old {
                    "unused for too long"
                } else {
                    "over the size limit"
                }
                .to_owned(),
            ));
        }
        let mut referenced: BTreeSet<Digest> = entries.iter().map(|e| e.blob).collect();
        referenced.extend(self.kept_small_blobs(older_than, false, &mut report)?);
        report.freed += self.remove_orphans(&referenced, &mut report.removed)?;
        let diff_ids: BTreeSet<String> = entries
            .iter()
            .filter_map(|e| {
                crate::record::read_head_for(&self.record_path(&e.key), &e.key)
                    .ok()?
                    .ok()
            })
            .map(|r| r.desc.diff_id.hex())
            .collect();
        report.freed += self.remove_unpacked(&diff_ids, &mut report.removed);
        report.freed += self.remove_old_memos(older_than, &mut report.removed);
        Ok(report)
    }

    /// Removes the unpacked layers (`CACHE/unpacked-v1/<range>/<hex>`, with
    /// their `.lock` and `.applied` markers) whose diff_id no kept record
    /// has, and every `tmp-*` a killed compose left. With the exclusive lock
    /// held, no run is using them. Returns the bytes freed.
    fn remove_unpacked(
        &self,
        diff_ids: &BTreeSet<String>,
        removed: &mut Vec<(String, String)>,
    ) -> u64 {
        let mut freed = 0;
        let Ok(ranges) = fs::read_dir(self.unpacked_dir()) else {
            return 0;
        };
        for range in ranges.flatten() {
            let Ok(entries) = fs::read_dir(range.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let hex = name
                    .strip_suffix(".lock")
                    .or_else(|| name.strip_suffix(".applied"))
                    .unwrap_or(&name);
                if !name.starts_with("tmp-") && diff_ids.contains(hex) {
                    continue;
                }
                let path = e.path();
                let size = dir_size(&path);
                let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if gone.is_ok() {
                    freed += size;
                    if !name.ends_with(".lock") {
                        removed.push((
                            format!("unpacked {name}"),
                            "no record has this layer".to_owned(),
                        ));
                    }
                }
            }
        }
        freed
    }

    /// Remove blobs no record names (and stale temporary files); returns the bytes freed.
    fn remove_orphans(
        &self,
        referenced: &BTreeSet<Digest>,
        removed: &mut Vec<(String, String)>,
    ) -> Result<u64, Error> {
        let mut freed = 0;
        // Records of an older format are never read: their blobs are orphans.
        for old in crate::OLD_LAYERS_BUCKETS {
            let dir = self.root().join(old);
            let n = dir_size(&dir);
            if dir.exists() && fs::remove_dir_all(&dir).is_ok() {
                freed += n;
                removed.push((format!("{old}/"), "records of an older format".to_owned()));
            }
        }
        let dir = self.root().join("blobs/sha256");
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = e.map_err(io_err(&dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let keep = name
                .parse::<Digest>()
                .is_ok_and(|d| referenced.contains(&d));
            if !keep {
                let _ = fs::remove_file(self.root().join(crate::VERIFIED_BUCKET).join(name));
                let meta = fs::symlink_metadata(&path);
                freed += meta.as_ref().map_or(0, |m| m.len());
                let why = match meta {
                    Ok(m) if !m.is_file() => {
                        "not a regular file (a directory or link in a blob's place)"
                    }
                    _ => "no record uses it",
                };
                if crate::repair::remove_any(&path).is_ok() {
                    removed.push((format!("blob sha256:{name}"), why.to_owned()));
                }
            }
        }
        // With the exclusive lock held, no build is writing: every temporary is stale.
        let tmp = self.root().join("tmp");
        for e in fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            freed += e.metadata().map_or(0, |m| m.len());
            let _ = fs::remove_file(e.path());
        }
        Ok(freed)
    }

    pub(crate) fn last_path(&self, name: &str) -> std::path::PathBuf {
        let id = blake3::hash(name.as_bytes()).to_hex();
        self.root()
            .join("last-v1")
            .join(format!("{}.json", &id[..32]))
    }

    /// The last build recorded under a layer's name (`SPEC-FILE-NAME image/layer`).
    pub fn last_build(&self, name: &str) -> Option<LastBuild> {
        serde_json::from_slice(&fs::read(self.last_path(name)).ok()?).ok()
    }

    /// Record the build of a layer under its name. A record that already
    /// says so is left alone: on a warm compose every layer is a hit of its
    /// last build, and creating a file per layer was a fifth of the CPU time
    /// of a warm compose of a small spec (ext4 inode allocation, measured).
    pub fn set_last_build(&self, name: &str, last: &LastBuild) -> Result<(), Error> {
        let path = self.last_path(name);
        let json = serde_json::to_vec(last).map_err(|e| io_err(&path)(e.into()))?;
        if fs::read(&path).is_ok_and(|old| old == json) {
            return Ok(());
        }
        let dir = self.root().join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
        tmp.write_all(&json).map_err(io_err(&path))?;
        tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        Ok(())
    }

    /// A shared lock: builds hold it, so `gc`/`verify` never remove what a build is using.
    pub fn lock_shared(&self) -> Result<fs::File, Error> {
        let f = self.lock_file()?;
        f.lock_shared().map_err(io_err(&self.root().join("lock")))?;
        Ok(f)
    }

    /// The exclusive lock of maintenance.
    pub fn lock_exclusive(&self) -> Result<fs::File, Error> {
        let f = self.lock_file()?;
        f.lock().map_err(io_err(&self.root().join("lock")))?;
        Ok(f)
    }

    fn lock_file(&self) -> Result<fs::File, Error> {
        let path = self.root().join("lock");
        fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))
    }
}

/// Total size of the files under `dir` (for `strata cache ls`).
pub fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
