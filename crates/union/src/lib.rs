//! The union filesystem of a stack of layers: the model every container
//! runtime implements (layers looked up from the top down, deletions as
//! whiteouts, a copy-on-write layer on top), made visible and usable.
//!
//! - [`model`]: the reference model, plain and obviously right, that the
//!   rest is tested against.
//! - [`apply`]: the on-disk applier behind `strata rootfs`, which never
//!   writes outside its directory whatever the layers hold.
//! - [`squash`](mod@squash), [`diff`] and `upper`: the union, the difference
//!   between the union and a directory (`commit`, `from-dir`), and an
//!   overlayfs upper directory (`run`), each as one layer's entries, which
//!   `strata_layer::build_entries` writes deterministically.
//! - `image`: those operations on an image of an OCI layout ([`rootfs`],
//!   [`squash()`], [`commit`]), written back into the layout under a new tag.
//! - `job`, `run` and `copy_from`: the layer jobs the executor cannot build
//!   from listings alone ([`build_job`]): `from-dir`, `copy from=` (paths of
//!   another image, read out of its blobs) and `run` steps, the latter run
//!   rootless in a user namespace on an overlay mount, on the layers below
//!   unpacked once each by diff_id (`snapshot`).
//!
//! Invariants: nothing is written outside the directory or layout a caller
//! names, and temporary directories it removes; a layer is always written by
//! `strata_layer` (sorted, normalised mtimes, the same bytes for the same
//! entries); host owners reach a layer only where the operation records a
//! tree exactly and can know them (`commit` and `from-dir` as root, `run`),
//! never for `from-dir normalize=#true`.

pub mod apply;
mod copy_from;
pub mod diff;
pub mod idmap;
mod image;
mod job;
pub mod model;
mod run;
pub mod sandbox;
mod snapshot;
pub mod squash;
mod upper;

pub use apply::{ApplyReport, apply_blobs, running_as_root};
pub use diff::{DiffOptions, diff_dir};
pub use image::{Image, WriteOptions, commit, rootfs, squash};
pub use job::{Below, RunStore, build_job};
pub use model::{Model, ModelError};
pub use upper::upper_entries;

use std::path::PathBuf;

/// Why a union operation failed. Each variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Layer(#[from] strata_layer::Error),
    #[error(transparent)]
    Export(#[from] strata_export::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A layer blob that cannot be applied (a hard link to nothing, a
    /// truncated file).
    #[error("{blob}: {path}: {reason}")]
    BadLayer {
        blob: PathBuf,
        path: String,
        reason: String,
    },
    /// A directory that cannot become a layer (a socket in it, say).
    #[error("{path}: {reason}")]
    BadDir { path: PathBuf, reason: String },
    #[error(
        "{path}: exists and is not an empty directory; a root file system is only unpacked into a new or empty one"
    )]
    NotEmpty { path: PathBuf },
    /// The machine does not let a `run` step run: what is missing.
    #[error("cannot run a `run` step: {0}")]
    Sandbox(String),
    /// The layers below a `run` step have no `/bin/sh` to run `command` with.
    #[error("the layers below have no /bin/sh to run {command:?} with")]
    NoShell { command: String },
    /// A secret of a `run` step whose bytes cannot be read: `source` names
    /// the file or variable, never the bytes.
    #[error("the secret for {target}: {from}: {reason}")]
    Secret {
        target: String,
        from: String,
        reason: String,
    },
    /// A mount of a `run` step that cannot be made where the image has
    /// something else (a file where a cache directory goes, say).
    #[error("the {kind} mount at {target}: {reason}")]
    MountPoint {
        kind: &'static str,
        target: String,
        reason: String,
    },
    /// A `copy from=` whose source path the image does not show.
    #[error("copy from image `{image}`: {src}: {reason}")]
    CopyFrom {
        image: String,
        src: String,
        reason: String,
    },
    /// The command of a `run` step failed; `output` is the end of what it printed.
    #[error("run {command:?} failed ({status}); its output ends with:\n{output}")]
    RunFailed {
        command: String,
        status: String,
        output: String,
    },
}

impl Error {
    /// Whether the build failed on what it was asked to do (a command that
    /// failed, a sandbox that cannot start, an image without `/bin/sh`, a
    /// layer or directory that cannot be applied or recorded), as opposed to
    /// the machine's I/O.
    pub fn is_build_failure(&self) -> bool {
        // Not an exhaustive match: a new variant is the machine's trouble (1)
        // until it is said to be the build's.
        match self {
            Error::Layer(e) => e.is_build_failure(),
            e => matches!(
                e,
                Error::RunFailed { .. }
                    | Error::CopyFrom { .. }
                    | Error::MountPoint { .. }
                    | Error::Sandbox(_)
                    | Error::BadLayer { .. }
                    | Error::BadDir { .. }
                    | Error::Model(_)
            ),
        }
    }
}
