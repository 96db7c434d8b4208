//! The content-addressed store: layer blobs by sha256 and layer records by key.
//!
//! Layout of a cache directory (the bucket names carry a version: bump it when
//! the record format changes, and old entries are simply never read):
//!
//! ```text
//! CACHE/blobs/sha256/<hex>        compressed layer blobs
//! CACHE/layers-v1/<key>.json      LayerRecord: diff_id, blob, size, media type, listing
//! CACHE/tmp/                      temporary files, renamed into place when complete
//! ```
//!
//! Invariants: an entry becomes visible only by `rename` of a complete file,
//! so a build killed at any moment leaves either the old state or the new
//! entry, never half of one; a record is trusted only if its blob exists with
//! the recorded size and sha256 (checked on every hit); a bad entry is removed
//! and reported as a miss. The cache knows nothing about specs or images.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod index;
mod maint;

pub use index::{InputIndex, RACY_MARGIN_NS};
pub use maint::{EntryInfo, LastBuild, MaintReport, dir_size};

use serde::{Deserialize, Serialize};
use strata_layer::digest::HashingWriter;
use strata_layer::{Digest, Listing};

/// The bucket of layer records. Bump when [`LayerRecord`] changes shape.
const LAYERS_BUCKET: &str = "layers-v1";

/// What the cache remembers of one built layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: Digest,
    pub blob: Digest,
    pub size: u64,
    pub media_type: String,
    pub listing: Listing,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Why a lookup missed, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No record under this key.
    Absent,
    /// A record existed but its blob was missing or corrupt; it was removed.
    Dropped(String),
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The default cache directory: `$STRATA_CACHE_DIR`, else the platform's
    /// cache directory (`$XDG_CACHE_HOME/strata`, `~/.cache/strata`).
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("STRATA_CACHE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("strata")
    }

    /// Open (creating if needed) a cache directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Cache, Error> {
        let root = root.into();
        for sub in ["blobs/sha256", LAYERS_BUCKET, "last-v1", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub(crate) fn record_path(&self, key: &str) -> PathBuf {
        self.root.join(LAYERS_BUCKET).join(format!("{key}.json"))
    }

    /// The record under `key`, if it and its blob are sound. A record whose
    /// blob is missing, truncated or does not hash to its digest is removed
    /// (with the blob) and reported as [`Miss::Dropped`].
    pub fn get(&self, key: &str) -> Result<Result<LayerRecord, Miss>, Error> {
        let path = self.record_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(Miss::Absent)),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let record: LayerRecord = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Ok(Err(Miss::Dropped(format!(
                    "unreadable record {}: {e}",
                    path.display()
                ))));
            }
        };
        match self.verify_blob(&record.blob, record.size) {
            Ok(()) => Ok(Ok(record)),
            Err(reason) => {
                let _ = fs::remove_file(&path);
                let _ = fs::remove_file(self.blob_path(&record.blob));
                Ok(Err(Miss::Dropped(reason)))
            }
        }
    }

    /// Check a blob's size and sha256.
    fn verify_blob(&self, digest: &Digest, size: u64) -> Result<(), String> {
        let path = self.blob_path(digest);
        let f = fs::File::open(&path).map_err(|e| format!("blob {digest}: {e}"))?;
        let (found, n) =
            strata_layer::digest::digest_reader(io::BufReader::with_capacity(1 << 20, f))
                .map_err(|e| format!("blob {digest}: {e}"))?;
        if n != size {
            return Err(format!(
                "blob {digest} is {n} bytes, the record says {size}"
            ));
        }
        if found != *digest {
            return Err(format!("blob {digest} hashes to {found}"));
        }
        Ok(())
    }

    /// A temporary file in the cache, for a blob being written.
    pub fn new_blob(&self) -> Result<BlobWriter, Error> {
        let dir = self.root.join("tmp");
        let file = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
        Ok(BlobWriter {
            inner: HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Store a finished blob and its record under `key`. The blob's bytes are
    /// checked against the record's digest before anything becomes visible.
    pub fn put(&self, key: &str, record: &LayerRecord, blob: BlobWriter) -> Result<(), Error> {
        let tmp_dir = self.root.join("tmp");
        let (digest, size, buf) = blob.inner.finish();
        let file = buf
            .into_inner()
            .map_err(|e| io_err(&tmp_dir)(e.into_error()))?;
        if digest != record.blob || size != record.size {
            return Err(Error::Io {
                path: file.path().to_path_buf(),
                source: io::Error::other(format!(
                    "blob written is {digest} ({size} bytes), the layer says {} ({} bytes)",
                    record.blob, record.size
                )),
            });
        }
        file.as_file().sync_data().map_err(io_err(file.path()))?;
        // Blobs are hard-linked into output layouts: make them readable like
        // any output file, not tempfile's private 0600.
        file.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io_err(file.path()))?;
        let blob_path = self.blob_path(&digest);
        file.persist(&blob_path)
            .map_err(|e| io_err(&blob_path)(e.error))?;

        let rec_path = self.record_path(key);
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
        let json = serde_json::to_vec(record).map_err(|e| io_err(&rec_path)(e.into()))?;
        tmp.write_all(&json).map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_data().map_err(io_err(tmp.path()))?;
        tmp.persist(&rec_path)
            .map_err(|e| io_err(&rec_path)(e.error))?;
        Ok(())
    }
}

impl Cache {
    /// Store a small blob (a manifest or config of an external base) by its
    /// sha256, written to a temporary name and renamed.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        let tmp_dir = self.root.join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
        tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io_err(tmp.path()))?;
        tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        Ok(digest)
    }

    /// A small blob by its digest, if the cache has it and it hashes right
    /// (a bad one is removed).
    pub fn get_bytes(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).ok()?;
        if Digest::of(&bytes) != *digest {
            let _ = fs::remove_file(&path);
            return None;
        }
        Some(bytes)
    }
}

/// A blob being written into the cache: hashed as it is written.
pub struct BlobWriter {
    inner: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_for(bytes: &[u8]) -> LayerRecord {
        LayerRecord {
            diff_id: Digest::of(b"tar"),
            blob: Digest::of(bytes),
            size: bytes.len() as u64,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            listing: Listing::default(),
        }
    }

    fn put(cache: &Cache, key: &str, bytes: &[u8]) -> LayerRecord {
        let rec = record_for(bytes);
        let mut w = cache.new_blob().unwrap();
        w.write_all(bytes).unwrap();
        cache.put(key, &rec, w).unwrap();
        rec
    }

    #[test]
    fn put_then_get_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        assert_eq!(cache.get("k").unwrap(), Err(Miss::Absent));
        let rec = put(&cache, "k", b"blob bytes");
        assert_eq!(cache.get("k").unwrap(), Ok(rec));
        assert_eq!(
            fs::read_dir(d.path().join("tmp")).unwrap().count(),
            0,
            "no temporary left behind"
        );
    }

    #[test]
    fn a_corrupt_blob_is_dropped_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        let rec = put(&cache, "k", b"blob bytes");
        fs::write(cache.blob_path(&rec.blob), b"blob bytez").unwrap();
        match cache.get("k").unwrap() {
            Err(Miss::Dropped(reason)) => assert!(reason.contains("hashes to"), "{reason}"),
            other => panic!("expected a dropped entry, got {other:?}"),
        }
        assert_eq!(cache.get("k").unwrap(), Err(Miss::Absent));
        assert!(!cache.blob_path(&rec.blob).exists());
    }

    #[test]
    fn a_truncated_record_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        put(&cache, "k", b"blob");
        fs::write(cache.record_path("k"), b"{\"diff_id\":").unwrap();
        assert!(matches!(cache.get("k").unwrap(), Err(Miss::Dropped(_))));
    }

    #[test]
    fn put_refuses_bytes_that_do_not_match_the_record() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        let rec = record_for(b"expected");
        let mut w = cache.new_blob().unwrap();
        w.write_all(b"something else").unwrap();
        assert!(cache.put("k", &rec, w).is_err());
        assert_eq!(cache.get("k").unwrap(), Err(Miss::Absent));
    }
}
