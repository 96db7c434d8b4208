//! The strata library: compose a spec into OCI images.
//!
//! [`compose`] runs the whole pipeline: read the spec, plan the graph, build
//! every layer (independent layers in parallel on a rayon pool, cache hits
//! reused without recompressing), and export an OCI image layout (and
//! optionally a docker-archive). Progress is reported as [`Event`]s to a
//! callback, so a terminal front end can draw it and a test can record it.
//!
//! Invariants: this crate draws nothing and prints nothing (front ends do);
//! every failure is an [`Error`] that names what and where; the output layout
//! is replaced only when the whole compose succeeded.

pub mod annotate;
mod base;
mod checked_fetch;
mod compose;
pub mod diff;
mod estimate;
pub mod import;
pub mod inspect;
pub mod json;
pub mod layering;
mod locate;
pub mod lock;
mod locked_check;
mod outputs;
mod owner_names;
pub mod package_diff;
pub mod packages;
pub mod push;
pub mod reapi_cache;
pub mod remote_cache;
pub mod remote_exec;
pub mod remote_worker;
mod report;
mod resolution_memo;
mod runners;
mod sbom;
pub mod testing;
mod union_job;
mod urls;

pub use base::{BaseOptions, plan_spec_with_bases};
pub use compose::{ComposeOptions, compose, plan_spec};
pub use report::{
    BaseReport, CacheStatus, ComposeReport, ImageReport, IndexMember, IndexReport, LayerReport,
    RemoteStatus, human_size,
};
pub use strata_cache::dir_size as cache_dir_size;
pub use strata_cache::{Cache, EntryInfo, MaintReport};
pub use strata_layer::Digest;
pub use strata_plan::{Plan, PlanOptions};
/// The Remote Execution API client (`--remote-cache`): its options.
pub use strata_reapi as reapi;
pub use strata_registry::{Options as RegistryOptions, Reference, Registry};
pub use strata_spec::Diagnostics;
/// The union filesystem: `rootfs`, `squash`, `commit`.
pub use strata_union as union;

use std::path::PathBuf;

/// A progress event of [`compose`]. Layer indices refer to the plan's layers.
#[derive(Debug, Clone)]
pub enum Event {
    /// The plan is ready: this many layers and images.
    Planned { layers: Vec<String>, images: usize },
    /// A layer started building (it missed the cache); `expected` is an
    /// estimate of the uncompressed bytes it will write, when one can be
    /// made cheaply (for a total and an ETA).
    LayerStarted {
        index: usize,
        name: String,
        expected: Option<u64>,
    },
    /// This many more uncompressed bytes of a layer were written.
    LayerProgress { index: usize, bytes: u64 },
    /// A layer is ready, built or from the cache.
    LayerDone {
        index: usize,
        name: String,
        cache: CacheStatus,
        /// With a remote cache: whether the layer came from it.
        remote: Option<RemoteStatus>,
        size: u64,
        /// Why it missed: which part of its key changed since the last build.
        reason: Option<String>,
    },
    /// Writing the outputs.
    Exporting { out: PathBuf },
    /// The OCI layout at `out` is done: written, or `unchanged` when it
    /// already held exactly what the compose would write and was left as it
    /// was (same files, inodes and mtimes).
    LayoutDone { out: PathBuf, unchanged: bool },
    /// A non-fatal problem (a corrupt cache entry that was dropped and rebuilt).
    Warning(String),
}

/// Why a compose failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read spec {path}: {source}")]
    ReadSpec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Problems in the spec, located; render with miette for snippets.
    #[error("{0}")]
    Spec(Box<Diagnostics>),
    #[error("layer {layer}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: strata_layer::Error,
    },
    #[error(transparent)]
    Cache(#[from] strata_cache::Error),
    #[error(transparent)]
    Export(#[from] strata_export::Error),
    #[error(transparent)]
    Union(#[from] strata_union::Error),
    /// A `from-dir` or `run` layer that could not be built.
    #[error("layer {layer}: {source}")]
    UnionLayer {
        layer: String,
        #[source]
        source: strata_union::Error,
    },
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Registry(#[from] strata_registry::Error),
    /// A Remote Execution API server (`--remote-cache`).
    #[error(transparent)]
    Remote(#[from] strata_reapi::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What the caller asked for cannot be done as asked (a flag that
    /// needs another, a value out of its range): the message says how.
    #[error("{0}")]
    Usage(String),
    /// A layout or lock lacks the image a command named.
    #[error("{target}: no image {name:?} in it (images: {})", available.join(", "))]
    NoImage {
        target: String,
        name: String,
        available: Vec<String>,
    },
    /// An external base (`from "oci:..."`, `from "docker://..."`) or a
    /// shared layer record that strata refuses to build on.
    #[error("{source_ref}: {reason}")]
    BadSource { source_ref: String, reason: String },
    /// Bytes that do not hash to the digest that names them.
    #[error("{what} hashes to {found}, but {expected} was expected")]
    DigestMismatch {
        what: String,
        expected: Digest,
        found: Digest,
    },
    /// A layer's uncompressed tar that does not hash to its diff_id.
    #[error("layer {layer}: its tar hashes to {found}, but its diff_id is {expected}")]
    DiffIdMismatch {
        layer: String,
        expected: Digest,
        found: Digest,
    },
    /// JSON strata wrote or read (a record, a manifest, a report).
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// An image whose time cannot be written as an RFC 3339 date.
    #[error("image {image}: its time {created} is past the year 9999")]
    TimeOutOfRange { image: String, created: u64 },
    /// A layer's blob and its listing disagree (the SBOM reads both).
    #[error("layer {layer}: {reason} /{path}")]
    ListingMismatch {
        layer: String,
        path: String,
        reason: &'static str,
    },
    /// The worker pool could not be started, or a worker panicked.
    #[error("the build's worker threads: {0}")]
    Workers(String),
    /// A build step that failed where the spec is right, located in the
    /// spec: a `run` command that exited non-zero, an image with no
    /// `/bin/sh` to run it, a `delete` of a path no layer below has.
    #[error("{0}")]
    Build(Box<Diagnostics>),
    /// A `packages` layer that could not be resolved, fetched or verified.
    #[error("layer {layer}: {source}")]
    Packages {
        layer: String,
        #[source]
        source: Box<strata_deb::Error>,
    },
    /// `compose --locked`: a `packages` layer asks for a package the lock
    /// does not pin for it (the spec changed since `strata lock`).
    #[error(
        "{at}: layer {layer}: the spec asks for `{request}`, which the lock does not pin for this layer ({reason}); run `strata lock` to resolve the spec's packages again"
    )]
    LockedPackages {
        /// `SPEC:LINE:COL` of the request.
        at: String,
        layer: String,
        request: String,
        reason: String,
    },
    /// `compose --locked`: the lock pins a package for a `packages` layer
    /// that neither the spec nor anything it asks for needs any more (a
    /// request the spec dropped).
    #[error(
        "{at}: layer {layer}: the lock pins `{package}`{}, which the spec no longer asks for (nor does any package it asks for depend on it); run `strata lock` to resolve the spec's packages again",
        if *more == 0 { String::new() } else { format!(" and {more} more") }
    )]
    LockedUnwanted {
        /// `SPEC:LINE:COL` of the layer's `packages` node.
        at: String,
        layer: String,
        /// `NAME VERSION`.
        package: String,
        /// How many more the lock pins that nothing wants.
        more: usize,
    },
    /// `strata import`: the Dockerfile lines that cannot be translated.
    #[error(
        "{} cannot be translated ({} problem{}):\n{}",
        dockerfile.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        import::render_problems(dockerfile, problems).trim_end()
    )]
    Import {
        dockerfile: PathBuf,
        problems: Vec<import::Problem>,
    },
}

/// The kinds of failure a front end tells apart (the `strata` binary gives
/// each its own exit code), so a CI job can say "fix the spec" from "the build
/// broke" from "the machine is in trouble".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The command was asked for something it cannot do as asked (a flag
    /// that needs another, a value out of range).
    Usage,
    /// The spec is invalid: nothing was built.
    Spec,
    /// A build step failed on what the spec asked for: a `run` command, a
    /// tarball refused (unsafe entry, corrupt, over a limit), a `delete` of
    /// a missing path, a host input that cannot be copied, a sandbox that
    /// cannot start, an image without `/bin/sh`.
    Build,
    /// What `compose --locked` would build is not what the lock pins.
    LockDrift,
    /// Anything else: I/O, the cache, a registry, the outputs.
    Other,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            Error::Usage(_) => FailureKind::Usage,
            Error::Spec(_) | Error::ReadSpec { .. } | Error::Import { .. } => FailureKind::Spec,
            Error::Build(_) => FailureKind::Build,
            Error::LockedPackages { .. } | Error::LockedUnwanted { .. } => FailureKind::LockDrift,
            Error::Layer { source, .. } if source.is_build_failure() => FailureKind::Build,
            Error::Union(source) | Error::UnionLayer { source, .. }
                if source.is_build_failure() =>
            {
                FailureKind::Build
            }
            _ => FailureKind::Other,
        }
    }
}

/// An error and its sources, on one line (`a: b: c`), each said once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    msg
}

impl From<strata_spec::ReadError> for Error {
    fn from(e: strata_spec::ReadError) -> Self {
        match e {
            strata_spec::ReadError::Io { path, source } => Error::ReadSpec {
                path: path.into(),
                source,
            },
            strata_spec::ReadError::Invalid(d) => Error::Spec(d),
            e @ strata_spec::ReadError::UnknownArg { .. } => Error::Usage(e.to_string()),
        }
    }
}
