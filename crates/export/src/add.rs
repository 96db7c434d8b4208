//! Adding one image to an existing OCI image layout, in place: the blobs of
//! a new layer, config and manifest, and an `index.json` that keeps every
//! other entry (`strata squash` and `strata commit` write this way).
//!
//! Why in place rather than a whole new layout: the image being derived
//! shares all or most of its blobs with the layout it comes from, and
//! content-addressed blobs can be added without disturbing a reader. Every
//! file is written under a temporary name in its final directory and renamed
//! into place, so a reader sees either the old index or the new one, and never
//! a blob whose name does not match its bytes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageConfiguration, ImageIndex, MediaType as OciMediaType,
    Sha256Digest,
};
use strata_oci::{Digest, MediaType};

use crate::layout::io_err;
use crate::manifest::{ANNOTATION_REF_NAME, hash_map, len_u64};
use crate::{Error, ExportedImage, LayoutImage};

/// A temporary file in the layout's blob directory, to write a new blob
/// into; [`keep_blob`] gives it its digest's name.
pub fn new_blob(dir: &Path) -> Result<tempfile::NamedTempFile, Error> {
    let blobs = dir.join("blobs").join("sha256");
    tempfile::Builder::new()
        .prefix(".tmp-blob-")
        .tempfile_in(&blobs)
        .map_err(|e| io_err(&blobs, e))
}

/// Renames a blob written through [`new_blob`] to its digest `digest`,
/// which the caller computed while writing it.
pub fn keep_blob(dir: &Path, blob: tempfile::NamedTempFile, digest: &Digest) -> Result<(), Error> {
    let path = dir.join("blobs").join("sha256").join(digest.hex());
    // Temporary files are private (0600); a blob is for every reader.
    blob.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| io_err(&path, e))?;
    blob.as_file().sync_all().map_err(|e| io_err(&path, e))?;
    blob.persist(&path).map_err(|e| io_err(&path, e.error))?;
    Ok(())
}

/// Adds the image `tag` to the layout at `dir` (replacing an image of that
/// name, keeping every other entry of the index): `config` as its config and
/// `layers` (digest, size, media type; lowest first, every blob already in
/// the layout) as its layers. The manifest is `base`'s, so its annotations
/// are kept.
pub fn add_image(
    dir: &Path,
    tag: &str,
    base: &LayoutImage,
    config: &ImageConfiguration,
    layers: &[(Digest, u64, MediaType)],
) -> Result<ExportedImage, Error> {
    let bad = |reason: String| Error::BadImage {
        image: tag.to_owned(),
        reason,
    };
    for (digest, size, _) in layers {
        let path = dir.join("blobs").join("sha256").join(digest.hex());
        let found = fs::metadata(&path).map_err(|e| io_err(&path, e))?.len();
        if found != *size {
            return Err(Error::Invalid {
                path,
                reason: format!("blob has {found} bytes, its descriptor says {size}"),
            });
        }
    }
    if config.rootfs().diff_ids().len() != layers.len() {
        return Err(bad(format!(
            "the config lists {} diff_ids for {} layers",
            config.rootfs().diff_ids().len(),
            layers.len()
        )));
    }
    let config_bytes =
        crate::canon::to_vec(config).map_err(|e| bad(format!("writing the config json: {e}")))?;
    let config_digest = Digest::of(&config_bytes);
    write_blob(dir, &config_digest, &config_bytes)?;

    let mut manifest = base.manifest.clone();
    manifest.set_config(
        descriptor(
            OciMediaType::ImageConfig,
            &config_digest,
            len_u64(&config_bytes),
        )
        .map_err(&bad)?,
    );
    manifest.set_layers(
        layers
            .iter()
            .map(|(digest, size, media_type)| {
                descriptor(OciMediaType::from(media_type.as_str()), digest, *size)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(&bad)?,
    );
    let manifest_bytes = crate::canon::to_vec(&manifest)
        .map_err(|e| bad(format!("writing the manifest json: {e}")))?;
    let manifest_digest = Digest::of(&manifest_bytes);
    write_blob(dir, &manifest_digest, &manifest_bytes)?;

    let index_path = dir.join("index.json");
    let mut bytes = Vec::new();
    crate::read::open_regular(&index_path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .map_err(|e| io_err(&index_path, e))?;
    let mut index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
        path: index_path.clone(),
        reason: format!("bad json: {e}"),
    })?;
    let mut manifests: Vec<Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF_NAME))
                .is_none_or(|name| name != tag)
        })
        .cloned()
        .collect();
    let mut entry = descriptor(
        OciMediaType::ImageManifest,
        &manifest_digest,
        len_u64(&manifest_bytes),
    )
    .map_err(&bad)?;
    entry.set_annotations(Some(hash_map(&BTreeMap::from([(
        ANNOTATION_REF_NAME.to_owned(),
        tag.to_owned(),
    )]))));
    manifests.push(entry);
    index.set_manifests(manifests);
    let index_bytes = crate::canon::to_vec(&index).map_err(|e| Error::Invalid {
        path: index_path.clone(),
        reason: format!("writing index.json: {e}"),
    })?;
    replace_file(dir, &index_path, &index_bytes)?;
    Ok(ExportedImage {
        name: tag.to_owned(),
        manifest: manifest_digest,
        manifest_size: len_u64(&manifest_bytes),
        config: config_digest,
    })
}

/// Writes a JSON blob unless the layout already has it.
fn write_blob(dir: &Path, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
    let path = dir.join("blobs").join("sha256").join(digest.hex());
    if path.is_file() {
        return Ok(());
    }
    replace_file(dir, &path, bytes)
}

/// Writes `path` under a temporary name beside it, then renames it into place.
fn replace_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(dir);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .map_err(|e| io_err(parent, e))?;
    tmp.write_all(bytes).map_err(|e| io_err(path, e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| io_err(path, e))?;
    tmp.as_file().sync_all().map_err(|e| io_err(path, e))?;
    tmp.persist(path).map_err(|e| io_err(path, e.error))?;
    Ok(())
}

fn descriptor(media_type: OciMediaType, digest: &Digest, size: u64) -> Result<Descriptor, String> {
    let sha: Sha256Digest = digest
        .hex()
        .parse()
        .map_err(|e| format!("digest {digest}: {e}"))?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(sha)
        .size(size)
        .build()
        .map_err(|e| format!("descriptor: {e}"))
}
