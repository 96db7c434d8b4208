//! The one description of a layer blob, used from the build to the cache,
//! the export, the report and the lock.

use crate::{Digest, MediaType};

/// A layer blob: what a manifest's layer descriptor and a config's
/// `rootfs.diff_ids` entry say of it.
///
/// Serialized with the OCI spec's field names (`digest`, `diff_id`, `size`,
/// `mediaType`-style values as `media_type`), so the JSON reports and locks
/// read as the image does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct LayerDescriptor {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as stored (compressed or not).
    /// Read as `blob` too: the name layer records shared through a
    /// registry had before this type.
    #[serde(rename = "digest", alias = "blob")]
    pub blob: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    pub media_type: MediaType,
}
