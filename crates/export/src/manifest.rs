//! The manifest and index JSON of images, shared by the layout and the
//! docker-archive writers, and the descriptors they are made of.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use oci_spec::image::{
    Arch, Descriptor, DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType as OciMediaType, Os, PlatformBuilder, Sha256Digest,
};
use strata_oci::Digest;

use crate::{Error, ExportImage};

/// `org.opencontainers.image.ref.name`: the name (or tag) of a manifest in an index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `io.containerd.image.name`: the full reference docker (25+) and containerd
/// give a manifest in the index of an archive.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// The JSON blobs of one image: its config and its manifest, canonical bytes
/// and their digests. Nothing else of an image depends on where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageJson {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

/// The config and manifest of `image`. Layer blobs are not read: their
/// digests and sizes are taken from the [`crate::LayerDesc`]s, and checked
/// when they are written.
pub fn image_json(image: &ExportImage) -> Result<ImageJson, Error> {
    let bad = |reason: String| Error::BadImage {
        image: image.name.clone(),
        reason,
    };
    let config = crate::config::config_json(&image.config, &image.layers, &image.name)?;
    let config_digest = Digest::of(&config);

    let layers = image
        .layers
        .iter()
        .map(|layer| {
            descriptor(
                OciMediaType::from(layer.desc.media_type.as_str()),
                &layer.desc.blob,
                layer.desc.size,
                BTreeMap::new(),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(&bad)?;
    let config_desc = descriptor(
        OciMediaType::ImageConfig,
        &config_digest,
        len_u64(&config),
        BTreeMap::new(),
    )
    .map_err(&bad)?;
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(OciMediaType::ImageManifest)
        .config(config_desc)
        .layers(layers);
    if !image.annotations.is_empty() {
        builder = builder.annotations(hash_map(&image.annotations));
    }
    let manifest = builder.build().map_err(|e| bad(format!("manifest: {e}")))?;
    let manifest = crate::canon::to_vec(&manifest)
        .map_err(|e| bad(format!("writing the manifest json: {e}")))?;
    Ok(ImageJson {
        config_digest,
        config,
        manifest_digest: Digest::of(&manifest),
        manifest,
    })
}

/// One manifest entry of an index.
pub(crate) struct IndexEntry {
    /// An image manifest, or an image index (a multi-platform image).
    pub media_type: OciMediaType,
    /// The artifact type of an artifact manifest (an SBOM).
    pub artifact_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    /// The entry of an image manifest.
    pub(crate) fn image(digest: Digest, size: u64, annotations: BTreeMap<String, String>) -> Self {
        IndexEntry {
            media_type: OciMediaType::ImageManifest,
            artifact_type: None,
            digest,
            size,
            annotations,
        }
    }
}

/// The canonical `index.json` listing `entries` in the order given.
pub(crate) fn index_json(entries: &[IndexEntry], out: &Path) -> Result<Vec<u8>, Error> {
    let invalid = |reason: String| Error::Invalid {
        path: out.to_path_buf(),
        reason,
    };
    let manifests = entries
        .iter()
        .map(|e| {
            let mut d = descriptor(
                e.media_type.clone(),
                &e.digest,
                e.size,
                e.annotations.clone(),
            )?;
            if let Some(t) = &e.artifact_type {
                d.set_artifact_type(Some(OciMediaType::from(t.as_str())));
            }
            Ok(d)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(&invalid)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(OciMediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|e| invalid(format!("index: {e}")))?;
    crate::canon::to_vec(&index).map_err(|e| invalid(format!("writing index.json: {e}")))
}

/// The image index of a multi-platform image: a descriptor of each of its
/// images' manifests (as written: `exported`) with the image's platform.
pub(crate) fn multi_platform_json(
    multi: &crate::MultiPlatform,
    images: &[ExportImage],
    exported: &[crate::ExportedImage],
    out: &Path,
) -> Result<Vec<u8>, Error> {
    let bad = |reason: String| Error::BadImage {
        image: multi.name.clone(),
        reason,
    };
    let manifests = multi
        .images
        .iter()
        .map(|&i| {
            let (image, written) = images
                .get(i)
                .zip(exported.get(i))
                .ok_or_else(|| bad(format!("no image {i} of {}", images.len())))?;
            let c = &image.config;
            let mut platform = PlatformBuilder::default()
                .os(Os::from(c.os.as_str()))
                .architecture(Arch::from(c.architecture.as_str()));
            if let Some(v) = &c.variant {
                platform = platform.variant(v.clone());
            }
            let platform = platform
                .build()
                .map_err(|e| bad(format!("platform of {}: {e}", image.name)))?;
            let mut d = descriptor(
                OciMediaType::ImageManifest,
                &written.manifest,
                written.manifest_size,
                BTreeMap::new(),
            )
            .map_err(&bad)?;
            d.set_platform(Some(platform));
            Ok(d)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut builder = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(OciMediaType::ImageIndex)
        .manifests(manifests);
    if !multi.annotations.is_empty() {
        builder = builder.annotations(hash_map(&multi.annotations));
    }
    let index = builder.build().map_err(|e| bad(format!("index: {e}")))?;
    crate::canon::to_vec(&index).map_err(|e| Error::Invalid {
        path: out.to_path_buf(),
        reason: format!("writing the index of {}: {e}", multi.name),
    })
}

/// The canonical `oci-layout` file.
pub(crate) fn oci_layout_json() -> Vec<u8> {
    // Fixed text: written by hand, it is already canonical and cannot fail.
    br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()
}

pub(crate) fn descriptor(
    media_type: OciMediaType,
    digest: &Digest,
    size: u64,
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor, String> {
    let digest: Sha256Digest = digest
        .hex()
        .parse()
        .map_err(|e| format!("digest {digest}: {e}"))?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size);
    if !annotations.is_empty() {
        builder = builder.annotations(hash_map(&annotations));
    }
    builder.build().map_err(|e| format!("descriptor: {e}"))
}

/// oci-spec wants `HashMap`s; the order is restored by the canonical writer.
pub(crate) fn hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(crate) fn len_u64(bytes: &[u8]) -> u64 {
    // A usize always fits in a u64 on the platforms Rust supports.
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}
