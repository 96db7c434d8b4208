//! The image model's shared types: the ground every other strata crate
//! stands on, so that one fact has one type from the build to the cache, the
//! export, the report and the lock.
//!
//! - [`Digest`] (sha256, `sha256:<hex>`) and the [`HashingWriter`] that
//!   makes them;
//! - [`MediaType`] of a layer blob, and the one [`LayerDescriptor`];
//! - [`ImagePath`], a normalised path inside an image, as bytes;
//! - the layer [`Listing`]: its [`Entry`] with the text line writer
//!   ([`Entry::line`]) and parser ([`Entry::parse_line`]), and the union view
//!   of a stack of listings ([`LowerView`]);
//! - the whiteout names and markers ([`whiteout`]);
//! - the resolved [`ImageConfig`];
//! - the history line that names a layer ([`history`]).
//!
//! Invariants: this crate depends on no other strata crate and does no I/O
//! (the hashing writer writes only where it is told); every type here that
//! reaches output bytes serializes deterministically (ordered collections
//! only); a value parsed from text prints back to the same text.

pub mod config;
pub mod descriptor;
pub mod digest;
pub mod history;
pub mod listing;
pub mod media;
pub mod path;
pub mod whiteout;

pub use config::{Healthcheck, ImageConfig};
pub use descriptor::LayerDescriptor;
pub use digest::{BadDigest, Digest, HashingWriter, digest_reader};
pub use listing::{BadLine, DirMeta, Entry, EntryKind, Listing, LowerView};
pub use media::MediaType;
pub use path::ImagePath;
