//! What the cache does with an entry that is not what its name says: a
//! directory, symlink or fifo where a blob should be.
//!
//! Why: a directory at a blob's path made every compose fail (the rebuilt
//! blob's rename onto it is refused) while `cache verify` reported nothing
//! wrong, and a fifo there would have blocked the hash that checks it. Such
//! an entry is never a blob: it is removed, like a blob that fails its hash.

use std::fs;
use std::io;
use std::path::Path;

/// Removes whatever is at `path`, a whole directory included. Not an error
/// when nothing is there.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes way for a file at `path`: anything there that is not a regular
/// file is removed (a regular file is replaced by the rename itself).
pub(crate) fn clear_for_file(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => remove_any(path),
        _ => Ok(()),
    }
}

/// Opens `path` for reading if it is a regular file, without blocking on a
/// fifo (`O_NONBLOCK`) and without following a symlink.
pub(crate) fn open_file(path: &Path) -> io::Result<fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let f = fs::File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use crate::{Cache, LayerRecord, Miss};
    use std::fs;

    fn record(bytes: &[u8]) -> LayerRecord {
        LayerRecord {
            desc: strata_oci::LayerDescriptor {
                diff_id: strata_oci::Digest::of(b"tar"),
                blob: strata_oci::Digest::of(bytes),
                size: bytes.len() as u64,
                media_type: strata_oci::MediaType::Tar,
            },
            listing: Default::default(),
        }
    }

    fn put(cache: &Cache, key: &str, bytes: &[u8]) -> LayerRecord {
        let r = record(bytes);
        let mut w = cache.new_blob().unwrap();
        std::io::Write::write_all(&mut w, bytes).unwrap();
        cache.put(key, &r, w).unwrap();
        r
    }

    /// Issue 16, item 7: a directory in a blob's place is dropped on a hit,
    /// does not stop the blob being written again, and `cache verify`
    /// finds and removes it.
    #[test]
    fn a_directory_in_a_blobs_place_is_repaired() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path().join("c")).unwrap();
        let r = put(&cache, "k1", b"layer one");
        let blob = cache.blob_path(&r.desc.blob);
        fs::remove_file(&blob).unwrap();
        fs::create_dir_all(blob.join("sub")).unwrap();
        fs::write(blob.join("sub/f"), b"x").unwrap();
        match cache.get("k1").unwrap() {
            Err(Miss::Dropped(reason)) => {
                assert!(reason.contains("not a regular file"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(!blob.exists(), "the directory is gone");
        put(&cache, "k1", b"layer one");
        assert!(cache.get("k1").unwrap().is_ok());

        // Where put meets it first, and where verify does.
        fs::remove_file(&blob).unwrap();
        fs::create_dir(&blob).unwrap();
        put(&cache, "k1", b"layer one");
        assert!(cache.get("k1").unwrap().is_ok());
        let orphan = cache.blob_path(&strata_oci::Digest::of(b"nobody"));
        fs::create_dir_all(orphan.join("x")).unwrap();
        fs::remove_file(&blob).unwrap();
        fs::create_dir(&blob).unwrap();
        let report = cache.verify().unwrap();
        assert!(!orphan.exists() && !blob.exists());
        let reasons: Vec<_> = report.removed.iter().map(|(_, why)| why.as_str()).collect();
        assert!(
            reasons.iter().any(|w| w.contains("not a regular file")),
            "{reasons:?}"
        );
        assert!(
            report.removed.iter().any(|(what, _)| what == "k1"),
            "{:?}",
            report.removed
        );
    }

    /// Issue 16, item 7: two record files swapped are both refused (and
    /// rebuilt), not each taken for the other layer.
    #[test]
    fn swapped_records_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path().join("c")).unwrap();
        put(&cache, "ka", b"layer a");
        put(&cache, "kb", b"layer b");
        let (a, b) = (cache.record_path("ka"), cache.record_path("kb"));
        let tmp = a.with_extension("swap");
        fs::rename(&a, &tmp).unwrap();
        fs::rename(&b, &a).unwrap();
        fs::rename(&tmp, &b).unwrap();
        for key in ["ka", "kb"] {
            match cache.get_head(key).unwrap() {
                Err(Miss::Dropped(reason)) => {
                    assert!(reason.contains("were swapped"), "{reason}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        // Both blobs stay: each is another layer's, and gc finds them orphans.
        assert!(cache.blob_path(&record(b"layer a").desc.blob).exists());
    }
}
