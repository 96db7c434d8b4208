//! Writing a docker-archive: one deterministic tar that `docker load`,
//! `podman load` and `skopeo copy docker-archive:` accept; and an OCI
//! archive, the same kind of tar holding only an OCI image layout
//! (`skopeo copy oci-archive:`).
//!
//! The format is the one `docker save` writes since Docker 25: an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/*`) plus the legacy
//! `manifest.json` and `repositories` files, whose paths point into the same
//! blobs. Old readers (docker < 25, podman, skopeo) use `manifest.json`; new
//! ones may use the layout; no blob is stored twice. In `index.json` each
//! manifest carries `io.containerd.image.name` (the full reference) and
//! `org.opencontainers.image.ref.name` (the tag), as docker writes them.
//!
//! The tar is canonical: entries sorted by path, ustar headers, mtime 0,
//! uid/gid 0 with no user or group names, mode 0644 (0755 for directories).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_oci::Digest;

use crate::layout::{check_blob, check_unique_names, io_err};
use crate::manifest::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, IndexEntry, image_json, index_json, len_u64,
    oci_layout_json,
};
use crate::{Error, ExportImage, LayerDesc};

/// Write `images` as a docker-archive at `file` (replacing a file there).
/// The tar is written under a temporary name in the same directory and
/// renamed into place, so `file` is never seen half-written.
pub fn write_docker_archive(file: &Path, images: &[ExportImage]) -> Result<(), Error> {
    let entries = plan_entries(images, file)?;
    // The archive's own entries carry the images' time (the spec's epoch or
    // SOURCE_DATE_EPOCH), so that it is the only time anywhere in the output.
    let mtime = images.iter().map(|i| i.config.created).max().unwrap_or(0);
    write_tar(file, &entries, mtime)
}

/// Write the OCI image layout at `layout` as an OCI archive at `file`: a tar
/// of the layout's `oci-layout`, `index.json` and `blobs/sha256/*` (what
/// `skopeo copy oci-archive:FILE:TAG` reads), canonical like a docker-archive,
/// every entry's mtime `mtime` (the images' time). Every blob is checked
/// against the digest that names it on the way into the tar. Written under a
/// temporary name and renamed into place.
pub fn write_oci_archive(file: &Path, layout: &Path, mtime: u64) -> Result<(), Error> {
    let mut entries = BTreeMap::new();
    entries.insert("blobs/".to_owned(), Entry::Dir);
    entries.insert("blobs/sha256/".to_owned(), Entry::Dir);
    for name in ["oci-layout", "index.json"] {
        let path = layout.join(name);
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        entries.insert(name.to_owned(), Entry::Bytes(bytes));
    }
    let blobs = layout.join("blobs").join("sha256");
    for dirent in fs::read_dir(&blobs).map_err(|e| io_err(&blobs, e))? {
        let dirent = dirent.map_err(|e| io_err(&blobs, e))?;
        let path = dirent.path();
        let digest: Digest = dirent
            .file_name()
            .to_str()
            .and_then(|hex| hex.parse().ok())
            .ok_or_else(|| Error::Invalid {
                path: path.clone(),
                reason: "not a sha256 blob name".to_owned(),
            })?;
        let meta = fs::symlink_metadata(&path).map_err(|e| io_err(&path, e))?;
        if !meta.is_file() {
            return Err(Error::Invalid {
                path,
                reason: "a blob of the layout is not a regular file".to_owned(),
            });
        }
        entries.insert(
            blob_name(&digest),
            Entry::Blob(BlobFile {
                digest,
                size: meta.len(),
                path,
            }),
        );
    }
    write_tar(file, &entries, mtime)
}

/// Write `entries` (in path order) as a canonical tar at `file`, atomically.
fn write_tar(file: &Path, entries: &BTreeMap<String, Entry<'_>>, mtime: u64) -> Result<(), Error> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid {
            path: file.to_path_buf(),
            reason: "the archive needs a utf-8 file name".to_owned(),
        })?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    // One writer of outputs in `parent` at a time, as for a layout (see
    // `swap`): a killed writer's `.NAME.tmp-*` is then surely a leftover,
    // and removed.
    let lock = crate::swap::OutputLock::acquire(&parent)?;
    crate::swap::remove_leftovers(&parent, name, &lock);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(&parent)
        .map_err(|e| io_err(&parent, e))?;
    let tmp_path = tmp.path().to_path_buf();

    // The temporary file is removed when `tmp` is dropped on any error below.
    let mut tar = tar::Builder::new(BufWriter::new(tmp.as_file()));
    for (path, entry) in entries {
        write_entry(&mut tar, path, entry, mtime).map_err(|e| match e {
            EntryError::Io(e) => io_err(&tmp_path, e),
            EntryError::Blob(e) => e,
        })?;
    }
    let buffered = tar.into_inner().map_err(|e| io_err(&tmp_path, e))?;
    buffered
        .into_inner()
        .map_err(|e| io_err(&tmp_path, e.into_error()))?;

    // Mode 0644 like any other output file, not tempfile's private 0600.
    set_mode_0644(tmp.as_file()).map_err(|e| io_err(&tmp_path, e))?;
    tmp.persist(file).map_err(|e| io_err(file, e.error))?;
    drop(lock);
    Ok(())
}

/// A blob of a layout on disk, named by its digest.
struct BlobFile {
    digest: Digest,
    size: u64,
    path: PathBuf,
}

/// What goes at one path of the archive.
enum Entry<'a> {
    Dir,
    Bytes(Vec<u8>),
    Layer(&'a LayerDesc),
    /// A blob of a layout written before (an OCI archive).
    Blob(BlobFile),
}

/// Every entry of the archive, by path (so in the order they are written).
fn plan_entries<'a>(
    images: &'a [ExportImage],
    file: &Path,
) -> Result<BTreeMap<String, Entry<'a>>, Error> {
    let refs = images
        .iter()
        .map(DockerRef::of)
        .collect::<Result<Vec<_>, _>>()?;
    check_unique_names(refs.iter().map(|r| r.full.as_str()), file)?;

    let mut entries = BTreeMap::new();
    entries.insert("blobs/".to_owned(), Entry::Dir);
    entries.insert("blobs/sha256/".to_owned(), Entry::Dir);
    entries.insert("oci-layout".to_owned(), Entry::Bytes(oci_layout_json()));

    let mut index = Vec::with_capacity(images.len());
    let mut manifest = Vec::with_capacity(images.len());
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, docker_ref) in images.iter().zip(&refs) {
        for layer in &image.layers {
            entries
                .entry(blob_name(&layer.desc.blob))
                .or_insert(Entry::Layer(layer));
        }
        let json = image_json(image)?;
        index.push(IndexEntry::image(
            json.manifest_digest,
            len_u64(&json.manifest),
            [
                (ANNOTATION_IMAGE_NAME.to_owned(), docker_ref.full.clone()),
                (ANNOTATION_REF_NAME.to_owned(), image.tag.clone()),
            ]
            .into(),
        ));
        manifest.push(ManifestItem {
            config: blob_name(&json.config_digest),
            repo_tags: vec![format!("{}:{}", docker_ref.familiar, image.tag)],
            layers: image
                .layers
                .iter()
                .map(|l| blob_name(&l.desc.blob))
                .collect(),
        });
        // As docker does: the tag names the top layer's blob. Docker itself
        // reads `manifest.json` when there is one; this file is for tools
        // that only know the oldest format, and has nothing to say about an
        // image without layers.
        if let Some(top) = image.layers.last() {
            repositories
                .entry(docker_ref.familiar.clone())
                .or_default()
                .insert(image.tag.clone(), top.desc.blob.hex());
        }
        entries
            .entry(blob_name(&json.config_digest))
            .or_insert(Entry::Bytes(json.config));
        entries
            .entry(blob_name(&json.manifest_digest))
            .or_insert(Entry::Bytes(json.manifest));
    }
    entries.insert(
        "index.json".to_owned(),
        Entry::Bytes(index_json(&index, file)?),
    );
    let invalid = |what: &str, e: io::Error| Error::Invalid {
        path: file.to_path_buf(),
        reason: format!("writing {what}: {e}"),
    };
    entries.insert(
        "manifest.json".to_owned(),
        Entry::Bytes(crate::canon::to_vec(&manifest).map_err(|e| invalid("manifest.json", e))?),
    );
    if !repositories.is_empty() {
        entries.insert(
            "repositories".to_owned(),
            Entry::Bytes(
                crate::canon::to_vec(&repositories).map_err(|e| invalid("repositories", e))?,
            ),
        );
    }
    Ok(entries)
}

/// One image of `manifest.json`, in docker's field names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// An image's reference as docker writes it: `familiar` in `RepoTags`
/// (`tomcat`), `full` in `io.containerd.image.name`
/// (`docker.io/library/tomcat:8`).
struct DockerRef {
    familiar: String,
    full: String,
}

impl DockerRef {
    fn of(image: &ExportImage) -> Result<DockerRef, Error> {
        let bad = |reason: String| Error::BadImage {
            image: image.name.clone(),
            reason,
        };
        let name = image.name.as_str();
        let tag = image.tag.as_str();
        // Docker refuses to load what it could not have named: check here,
        // where the error can say which image, rather than at `docker load`.
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
            && !name.starts_with(['.', '_', '-', '/'])
            && !name.ends_with(['.', '_', '-', '/', ':']);
        if !name_ok {
            return Err(bad(format!(
                "{name:?} is not a docker repository name (lowercase letters, digits, \
                 '.', '_', '-', '/')"
            )));
        }
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !tag.starts_with(['.', '-']);
        if !tag_ok {
            return Err(bad(format!(
                "{tag:?} is not a docker tag (up to 128 letters, digits, '_', '.', '-')"
            )));
        }

        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        let has_domain = !first.is_empty()
            && (first.contains(['.', ':']) || first == "localhost")
            && !rest.is_empty();
        let path = if has_domain {
            name.to_owned()
        } else if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
        let familiar = match path.strip_prefix("docker.io/") {
            Some(p) => p.strip_prefix("library/").unwrap_or(p).to_owned(),
            None => path.clone(),
        };
        Ok(DockerRef {
            full: format!("{path}:{tag}"),
            familiar,
        })
    }
}

enum EntryError {
    Io(io::Error),
    Blob(Error),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        EntryError::Io(e)
    }
}

fn write_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    entry: &Entry<'_>,
    mtime: u64,
) -> Result<(), EntryError> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path)?;
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    match entry {
        Entry::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            header.set_cksum();
            tar.append(&header, io::empty())?;
        }
        Entry::Bytes(bytes) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(len_u64(bytes));
            header.set_cksum();
            tar.append(&header, bytes.as_slice())?;
        }
        Entry::Layer(layer) => {
            let src = &layer.blob_path;
            let file = fs::File::open(src).map_err(|e| EntryError::Blob(io_err(src, e)))?;
            let len = file
                .metadata()
                .map_err(|e| EntryError::Blob(io_err(src, e)))?
                .len();
            if len != layer.desc.size {
                // The tar header, written before the bytes, must carry the
                // size. Hash the blob anyway, to tell a wrong blob (BadBlob)
                // from the right one under a wrong size (Invalid).
                let (found, size) = strata_oci::digest::digest_reader(io::BufReader::new(file))
                    .map_err(|e| EntryError::Blob(io_err(src, e)))?;
                return Err(EntryError::Blob(
                    check_blob(layer, found, size)
                        .err()
                        .unwrap_or_else(|| Error::Invalid {
                            path: src.clone(),
                            reason: "blob changed while it was read".to_owned(),
                        }),
                ));
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(layer.desc.size);
            header.set_cksum();
            let mut reader = HashingReader::new(io::BufReader::new(file).take(layer.desc.size));
            tar.append(&header, &mut reader)
                .map_err(|e| EntryError::Blob(io_err(src, e)))?;
            let (found, size) = reader.finish();
            check_blob(layer, found, size).map_err(EntryError::Blob)?;
        }
        Entry::Blob(blob) => {
            let src = &blob.path;
            let file = fs::File::open(src).map_err(|e| EntryError::Blob(io_err(src, e)))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(blob.size);
            header.set_cksum();
            let mut reader = HashingReader::new(io::BufReader::new(file).take(blob.size));
            tar.append(&header, &mut reader)
                .map_err(|e| EntryError::Blob(io_err(src, e)))?;
            let (found, size) = reader.finish();
            if found != blob.digest || size != blob.size {
                return Err(EntryError::Blob(Error::BadBlob {
                    path: src.clone(),
                    digest: blob.digest,
                    found,
                }));
            }
        }
    }
    Ok(())
}

/// A reader that hashes (sha256) and counts what is read through it, so a
/// blob is verified in the same pass that copies it into the archive.
struct HashingReader<R> {
    inner: R,
    hasher: strata_oci::digest::HashingWriter<io::Sink>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: strata_oci::digest::HashingWriter::new(io::sink()),
        }
    }

    fn finish(self) -> (Digest, u64) {
        let (digest, count, _) = self.hasher.finish();
        (digest, count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(unix)]
fn set_mode_0644(file: &fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode_0644(_file: &fs::File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_ref(name: &str, tag: &str) -> Result<(String, String), Error> {
        let image = ExportImage {
            name: name.to_owned(),
            tag: tag.to_owned(),
            config: crate::ImageConfig::default(),
            annotations: BTreeMap::new(),
            layers: Vec::new(),
        };
        DockerRef::of(&image).map(|r| (r.familiar, r.full))
    }

    #[test]
    fn references_are_normalised_like_docker() {
        let ok = |name: &str, familiar: &str, full: &str| {
            let (f, u) = docker_ref(name, "1.0").expect(name);
            assert_eq!((f.as_str(), u.as_str()), (familiar, full), "{name}");
        };
        ok("tomcat", "tomcat", "docker.io/library/tomcat:1.0");
        ok("me/tomcat", "me/tomcat", "docker.io/me/tomcat:1.0");
        ok(
            "docker.io/library/tomcat",
            "tomcat",
            "docker.io/library/tomcat:1.0",
        );
        ok("ghcr.io/me/app", "ghcr.io/me/app", "ghcr.io/me/app:1.0");
        ok(
            "localhost:5000/app",
            "localhost:5000/app",
            "localhost:5000/app:1.0",
        );
        ok("localhost/app", "localhost/app", "localhost/app:1.0");
    }

    #[test]
    fn bad_references_are_refused() {
        assert!(docker_ref("Tomcat", "1").is_err());
        assert!(docker_ref("", "1").is_err());
        assert!(docker_ref("tomcat", "").is_err());
        assert!(docker_ref("tomcat", "a:b").is_err());
        assert!(docker_ref("tomcat", "-x").is_err());
        assert!(docker_ref("tomcat", &"x".repeat(129)).is_err());
    }
}
