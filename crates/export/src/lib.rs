//! OCI image layouts (image-spec 1.1), docker-archives and OCI archives:
//! image config, manifest and index JSON, and the blobs they name; in a
//! layout also multi-platform image indexes ([`MultiPlatform`]) and
//! artifacts that refer to an image, such as an SBOM ([`Referrer`]).
//!
//! Types come from `oci-spec`; JSON is always written through a canonical
//! formatter (RFC 8785: sorted keys, no whitespace), because oci-spec keeps
//! labels, exposed ports and volumes in `HashMap`s whose order is random.
//!
//! Invariants: this crate builds no layer and knows nothing about specs or the
//! cache: it is handed finished blobs by path. An output (layout directory or
//! archive file) is written under a temporary name and renamed into place, so
//! a reader never sees half of one (a layout that already holds exactly
//! those files is left as it is); the same inputs give the same bytes.

mod add;
mod archive;
mod canon;
mod config;
mod layout;
mod manifest;
mod read;
mod referrer;
mod swap;

pub use add::{add_image, keep_blob, new_blob};
pub use archive::{write_docker_archive, write_oci_archive};
pub use config::{ImageConfig, config_json, image_configuration, read_docker_fields, rfc3339};
pub use layout::{
    ExportedImage, LayoutExtras, MultiPlatform, Written, write_layout, write_layout_with,
};
pub use manifest::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ImageJson, image_json};
pub use read::{
    Layout, LayoutImage, LayoutIndex, LayoutReferrer, config_summary, layers_summary, open_layout,
};
pub use referrer::{ANNOTATION_TITLE, ARTIFACT_TYPE_SPDX, Referrer};

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_oci::{Digest, LayerDescriptor};

/// One layer of an image to export: a finished blob on disk.
#[derive(Debug, Clone)]
pub struct LayerDesc {
    /// The blob and the diff_id of the tar inside it.
    pub desc: LayerDescriptor,
    /// Where the blob's bytes are (hard-linked into the output where possible, else copied).
    pub blob_path: PathBuf,
    /// The history entry's `created_by` (`strata: layer jdk`).
    pub created_by: String,
    /// The caller has checked that the bytes at `blob_path` hash to `desc.blob`
    /// (the cache does, on every hit and write): the layout then hard-links
    /// the blob without reading it again. When false, it is re-hashed as it
    /// is linked or copied, and a mismatch is an error.
    pub verified: bool,
}

/// One image to export.
#[derive(Debug, Clone)]
pub struct ExportImage {
    /// `org.opencontainers.image.ref.name` in the layout's index.json.
    pub name: String,
    /// The tag of `NAME:TAG` in a docker-archive.
    pub tag: String,
    pub config: ImageConfig,
    /// Annotations on the manifest.
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<LayerDesc>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: exists and is not an OCI image layout; refusing to replace it")]
    NotALayout { path: PathBuf },
    #[error("{path}: blob {digest} does not match its bytes (found {found})")]
    BadBlob {
        path: PathBuf,
        digest: Digest,
        found: Digest,
    },
    /// An image that cannot be written as asked (no os, a tag docker refuses…).
    #[error("image {image}: {reason}")]
    BadImage { image: String, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{layout}: no image tagged {tag:?} (tags: {available})")]
    NoSuchTag {
        layout: PathBuf,
        tag: String,
        available: String,
    },
    /// A command that needs one image was given a layout of several and no tag.
    #[error("{} holds {} images; name one as {}:NAME (one of: {})", layout.display(), names.len(), layout.display(), names.join(", "))]
    WhichImage { layout: PathBuf, names: Vec<String> },
}
