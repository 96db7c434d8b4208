//! Writing an OCI image layout directory: built whole under a temporary
//! sibling name, then swapped into place.
//!
//! Why a sibling: a rename is only atomic within one filesystem, and the parent
//! of the destination is the one place sure to be on the destination's
//! filesystem. Why verify layer blobs that a cache already verified: the
//! layout is what leaves the machine, and a blob that does not match its digest
//! would only be noticed by whoever pulls the image, far from the cause.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use strata_layer::Digest;
use strata_layer::digest::{HashingWriter, digest_reader};

use crate::manifest::{
    ANNOTATION_REF_NAME, IndexEntry, image_json, index_json, multi_platform_json, oci_layout_json,
};
use crate::referrer::{EMPTY_JSON, Referrer, referrer_manifest};
use crate::{Error, ExportImage, LayerDesc};

/// What was written for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedImage {
    pub name: String,
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
}

/// What goes into a layout besides its images.
#[derive(Debug, Clone, Default)]
pub struct LayoutExtras {
    /// Artifacts about the images (SBOMs), listed in `index.json` untagged.
    pub referrers: Vec<Referrer>,
    /// Multi-platform images: image indexes over some of the images, tagged.
    pub indexes: Vec<MultiPlatform>,
}

/// A multi-platform image: an OCI image index of some of the images (one
/// per platform), tagged `name` in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPlatform {
    pub name: String,
    /// Indices into the images written; each descriptor carries the image's
    /// platform (`os`, `architecture`, `variant` of its config).
    pub images: Vec<usize>,
    /// Annotations on the image index.
    pub annotations: BTreeMap<String, String>,
}

/// What [`write_layout_with`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub images: Vec<ExportedImage>,
    /// The artifact manifest of each referrer, in the order given.
    pub referrers: Vec<Digest>,
    /// The image index of each multi-platform image, in the order given.
    pub indexes: Vec<Digest>,
}

/// Write `images` as an OCI image layout at `dir`, replacing the layout that
/// is there (if any). `dir` must not exist, be empty, or be an image layout
/// (hold an `oci-layout` file); anything else is [`Error::NotALayout`] and is
/// left untouched. On error nothing is left at `dir` but what was there before.
pub fn write_layout(dir: &Path, images: &[ExportImage]) -> Result<Vec<ExportedImage>, Error> {
    write_layout_with(dir, images, &LayoutExtras::default()).map(|w| w.images)
}

/// [`write_layout`], with artifacts that refer to the images.
pub fn write_layout_with(
    dir: &Path,
    images: &[ExportImage],
    extras: &LayoutExtras,
) -> Result<Written, Error> {
    let (parent, name) = split_dir(dir)?;
    let existing = existing_kind(dir)?;
    check_unique_names(
        images
            .iter()
            .map(|i| i.name.as_str())
            .chain(extras.indexes.iter().map(|i| i.name.as_str())),
        dir,
    )?;

    // Like `mkdir -p`: `--out target/images/x` on a fresh clone has no `target/images` yet.
    fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(|e| io_err(&parent, e))?;
    let exported = fill(tmp.path(), images, extras)?;

    match existing {
        Existing::Missing => {
            fs::rename(tmp.path(), dir).map_err(|e| io_err(dir, e))?;
            // The directory now lives at `dir`: forget it rather than remove it.
            let _ = tmp.keep();
        }
        Existing::Replaceable => swap_in(tmp, dir, &parent, &name)?,
    }
    Ok(exported)
}

enum Existing {
    Missing,
    /// An image layout or an empty directory.
    Replaceable,
}

/// The parent directory and the file name of `dir`.
fn split_dir(dir: &Path) -> Result<(PathBuf, String), Error> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid {
            path: dir.to_path_buf(),
            reason: "the layout directory needs a utf-8 file name".to_owned(),
        })?
        .to_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

fn existing_kind(dir: &Path) -> Result<Existing, Error> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(io_err(dir, e)),
    };
    // A symlink is refused even when it points at a layout: renaming it aside
    // would move the link and leave the layout it points at stale.
    if !meta.is_dir() {
        return Err(Error::NotALayout {
            path: dir.to_path_buf(),
        });
    }
    if dir.join("oci-layout").is_file() {
        return Ok(Existing::Replaceable);
    }
    let mut entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    if entries.next().is_none() {
        Ok(Existing::Replaceable)
    } else {
        Err(Error::NotALayout {
            path: dir.to_path_buf(),
        })
    }
}

/// Move the old layout at `dir` aside, the new one in, and remove the old one.
fn swap_in(new: tempfile::TempDir, dir: &Path, parent: &Path, name: &str) -> Result<(), Error> {
    // An empty directory reserves a unique name for the old layout; renaming a
    // directory over an empty one is allowed (POSIX rename). When this guard is
    // dropped it removes whatever is then under that name: the old layout once
    // the swap is done, or the empty placeholder if it fails.
    let old = tempfile::Builder::new()
        .prefix(&format!(".{name}.old-"))
        .tempdir_in(parent)
        .map_err(|e| io_err(parent, e))?;
    fs::rename(dir, old.path()).map_err(|e| io_err(dir, e))?;
    if let Err(e) = fs::rename(new.path(), dir) {
        // Put the old layout back; if even that fails, keep it under its
        // temporary name rather than delete the user's only copy.
        if fs::rename(old.path(), dir).is_err() {
            let _ = old.keep();
        }
        return Err(io_err(dir, e));
    }
    let _ = new.keep();
    drop(old);
    Ok(())
}

pub(crate) fn check_unique_names<'a>(
    names: impl Iterator<Item = &'a str>,
    out: &Path,
) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(Error::Invalid {
                path: out.to_path_buf(),
                reason: format!("two images are named {name:?}"),
            });
        }
    }
    Ok(())
}

/// Write the whole layout into the empty directory `root`.
fn fill(root: &Path, images: &[ExportImage], extras: &LayoutExtras) -> Result<Written, Error> {
    let blobs = root.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| io_err(&blobs, e))?;
    write_file(&root.join("oci-layout"), &oci_layout_json())?;

    let mut written = BTreeSet::new();
    let mut exported = Vec::with_capacity(images.len());
    let mut index = Vec::with_capacity(images.len());
    for image in images {
        for layer in &image.layers {
            if written.insert(layer.digest) {
                place_layer_blob(layer, &blobs.join(layer.digest.hex()))?;
            }
        }
        let json = image_json(image)?;
        for (digest, bytes) in [
            (json.config_digest, &json.config),
            (json.manifest_digest, &json.manifest),
        ] {
            // Two images may share a config (same settings, same layers).
            if written.insert(digest) {
                write_file(&blobs.join(digest.hex()), bytes)?;
            }
        }
        let manifest_size = crate::manifest::len_u64(&json.manifest);
        index.push(IndexEntry::image(
            json.manifest_digest,
            manifest_size,
            [(ANNOTATION_REF_NAME.to_owned(), image.name.clone())].into(),
        ));
        exported.push(ExportedImage {
            name: image.name.clone(),
            manifest: json.manifest_digest,
            manifest_size,
            config: json.config_digest,
        });
    }
    let mut indexes = Vec::with_capacity(extras.indexes.len());
    for multi in &extras.indexes {
        let bytes = multi_platform_json(multi, images, &exported, root)?;
        let digest = Digest::of(&bytes);
        if written.insert(digest) {
            write_file(&blobs.join(digest.hex()), &bytes)?;
        }
        index.push(IndexEntry {
            media_type: oci_spec::image::MediaType::ImageIndex,
            artifact_type: None,
            digest,
            size: crate::manifest::len_u64(&bytes),
            annotations: [(ANNOTATION_REF_NAME.to_owned(), multi.name.clone())].into(),
        });
        indexes.push(digest);
    }
    let referrers = add_referrers(
        &blobs,
        &extras.referrers,
        &exported,
        &mut written,
        &mut index,
    )?;
    let index_path = root.join("index.json");
    write_file(&index_path, &index_json(&index, &index_path)?)?;
    Ok(Written {
        images: exported,
        referrers,
        indexes,
    })
}

/// Write the blobs and artifact manifests of `referrers`, and list them in
/// `index` after the images, untagged.
fn add_referrers(
    blobs: &Path,
    referrers: &[Referrer],
    images: &[ExportedImage],
    written: &mut BTreeSet<Digest>,
    index: &mut Vec<IndexEntry>,
) -> Result<Vec<Digest>, Error> {
    let mut digests = Vec::with_capacity(referrers.len());
    for referrer in referrers {
        let subject = images.get(referrer.subject).ok_or_else(|| Error::Invalid {
            path: blobs.to_path_buf(),
            reason: format!(
                "a {} artifact refers to image {} of {}",
                referrer.artifact_type,
                referrer.subject,
                images.len()
            ),
        })?;
        let manifest = referrer_manifest(
            referrer,
            &subject.manifest,
            subject.manifest_size,
            &subject.name,
        )?;
        let manifest_digest = Digest::of(&manifest);
        for bytes in [EMPTY_JSON, referrer.bytes.as_slice(), manifest.as_slice()] {
            let digest = Digest::of(bytes);
            if written.insert(digest) {
                write_file(&blobs.join(digest.hex()), bytes)?;
            }
        }
        index.push(IndexEntry {
            media_type: oci_spec::image::MediaType::ImageManifest,
            artifact_type: Some(referrer.artifact_type.clone()),
            digest: manifest_digest,
            size: crate::manifest::len_u64(&manifest),
            annotations: Default::default(),
        });
        digests.push(manifest_digest);
    }
    Ok(digests)
}

/// Hard-link (else copy) a layer blob to `dst` and check that its bytes are
/// the ones its descriptor names.
fn place_layer_blob(layer: &LayerDesc, dst: &Path) -> Result<(), Error> {
    let src = &layer.blob_path;
    // `hard_link` links a symlink itself, not its target: copy those instead.
    let is_file = fs::symlink_metadata(src)
        .map_err(|e| io_err(src, e))?
        .is_file();
    if is_file && layer.verified && fs::hard_link(src, dst).is_ok() {
        // Linked, so these are the very bytes the caller checked; only the
        // size is looked at again (a stat, not a read).
        let size = fs::metadata(dst).map_err(|e| io_err(dst, e))?.len();
        return check_blob(layer, layer.digest, size);
    }
    let (found, size) = if is_file && fs::hard_link(src, dst).is_ok() {
        // Read back what is now in the layout: a linked blob has not been
        // hashed by this process, and must not be trusted more than a copy.
        let file = fs::File::open(dst).map_err(|e| io_err(dst, e))?;
        digest_reader(io::BufReader::new(file)).map_err(|e| io_err(src, e))?
    } else {
        copy_hashing(src, dst)?
    };
    check_blob(layer, found, size)
}

/// Copy `src` to a new file `dst`, hashing the bytes on the way.
fn copy_hashing(src: &Path, dst: &Path) -> Result<(Digest, u64), Error> {
    let mut input = fs::File::open(src).map_err(|e| io_err(src, e))?;
    let output = fs::File::create_new(dst).map_err(|e| io_err(dst, e))?;
    let mut writer = HashingWriter::new(io::BufWriter::new(output));
    // Not `io::copy`: a failed write (a full disk) must name `dst`, and a
    // failed read `src`.
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match io::Read::read(&mut input, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(src, e)),
        };
        writer.write_all(&buf[..n]).map_err(|e| io_err(dst, e))?;
    }
    let (digest, size, buffered) = writer.finish();
    buffered
        .into_inner()
        .map_err(|e| io_err(dst, e.into_error()))?;
    Ok((digest, size))
}

/// A blob whose digest or size is not the one its descriptor names is
/// refused (the temporary layout holding it is then removed).
pub(crate) fn check_blob(layer: &LayerDesc, found: Digest, size: u64) -> Result<(), Error> {
    if found != layer.digest {
        return Err(Error::BadBlob {
            path: layer.blob_path.clone(),
            digest: layer.digest,
            found,
        });
    }
    if size != layer.size {
        return Err(Error::Invalid {
            path: layer.blob_path.clone(),
            reason: format!(
                "blob {} has {size} bytes but its descriptor says {}",
                layer.digest, layer.size
            ),
        });
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = fs::File::create_new(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))
}

pub(crate) fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
