//! Artifacts that refer to an image of the layout (OCI 1.1 referrers): an
//! SBOM stored as an artifact manifest whose `subject` is the image manifest.
//!
//! Why an artifact manifest and not an annotation or a file beside the
//! layout: it is the form the image spec 1.1 defines for "data about an
//! image", it travels with the image through `skopeo copy`-like tools that
//! copy referrers, and `oras discover` finds it by the subject digest. The
//! image manifest itself does not change: adding or dropping an SBOM never
//! changes an image's digest.
//!
//! The artifact manifest has the empty config (`{}`,
//! `application/vnd.oci.empty.v1+json`), one layer holding the document, and
//! `artifactType` set to the document's media type, as the spec recommends.
//! In `index.json` it is listed without `org.opencontainers.image.ref.name`,
//! so it never takes a tag, and with its `artifactType`.

use std::collections::BTreeMap;

use oci_spec::image::{ImageManifestBuilder, MediaType as OciMediaType};
use strata_oci::Digest;

use crate::Error;
use crate::manifest::{descriptor, hash_map, len_u64};

/// `application/spdx+json`: an SPDX 2.3 JSON document.
pub const ARTIFACT_TYPE_SPDX: &str = "application/spdx+json";
/// `org.opencontainers.image.title`: the file name of a layer of an artifact.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// The bytes of the empty descriptor's blob (image spec 1.1 "empty descriptor").
pub(crate) const EMPTY_JSON: &[u8] = b"{}";

/// An artifact to store in a layout, referring to one of its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The index, in the images written, of the image this artifact is about.
    pub subject: usize,
    /// `artifactType`, also the media type of its one blob (`application/spdx+json`).
    pub artifact_type: String,
    /// The blob's file name (`org.opencontainers.image.title` of its descriptor).
    pub title: String,
    /// The blob: the document itself.
    pub bytes: Vec<u8>,
    /// Annotations on the artifact manifest (`org.opencontainers.image.created`).
    pub annotations: BTreeMap<String, String>,
}

/// The artifact manifest of `referrer`, about the manifest `subject`
/// (`subject_size` bytes), as canonical bytes.
pub(crate) fn referrer_manifest(
    referrer: &Referrer,
    subject: &Digest,
    subject_size: u64,
    image: &str,
) -> Result<Vec<u8>, Error> {
    let bad = |reason: String| Error::BadImage {
        image: image.to_owned(),
        reason: format!("the {} artifact: {reason}", referrer.artifact_type),
    };
    let mut config = descriptor(
        OciMediaType::EmptyJSON,
        &Digest::of(EMPTY_JSON),
        len_u64(EMPTY_JSON),
        BTreeMap::new(),
    )
    .map_err(&bad)?;
    // The spec's empty descriptor carries its two bytes inline.
    config.set_data(Some("e30=".to_owned()));
    let layer = descriptor(
        OciMediaType::from(referrer.artifact_type.as_str()),
        &Digest::of(&referrer.bytes),
        len_u64(&referrer.bytes),
        [(ANNOTATION_TITLE.to_owned(), referrer.title.clone())].into(),
    )
    .map_err(&bad)?;
    let subject = descriptor(
        OciMediaType::ImageManifest,
        subject,
        subject_size,
        BTreeMap::new(),
    )
    .map_err(&bad)?;
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(OciMediaType::ImageManifest)
        .artifact_type(OciMediaType::from(referrer.artifact_type.as_str()))
        .config(config)
        .layers(vec![layer])
        .subject(subject);
    if !referrer.annotations.is_empty() {
        builder = builder.annotations(hash_map(&referrer.annotations));
    }
    let manifest = builder.build().map_err(|e| bad(format!("manifest: {e}")))?;
    crate::canon::to_vec(&manifest).map_err(|e| bad(format!("writing the manifest json: {e}")))
}
