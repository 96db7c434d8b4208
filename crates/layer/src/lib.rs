//! One layer job -> a deterministic tar stream -> diff_id, compressed blob,
//! blob digest and a file listing.
//!
//! A [`LayerJob`] is a list of operations with every input already resolved
//! and opened ([`HostInput`]: the file the planner hashed is the handle packed
//! here, and nothing below an input directory is reached through a symlink). [`build`] applies them to an in-memory tree of the layer (paths
//! sorted by bytes, parent directories made explicit, metadata normalised), then
//! streams that tree through a tar writer, sha256 (the diff_id), the compressor
//! and sha256 again (the blob digest) into the caller's writer. File contents are
//! never held in memory: they are read from their source while the tar is
//! written, and an input tarball is first decompressed to a temporary spool file
//! (sparse, and checked against the free space of `$TMPDIR`; a plain tar is
//! read in place) so that its entries can be written in sorted order.
//!
//! [`list_blob`] reads a blob back into the [`Listing`] that `build` returned
//! for it; [`LowerView`] stacks listings into the union view that `delete`
//! checks against. The tar format itself (headers written and read) is in
//! `ustar`, host copies in `host`, input archives in `ingest`, the layer tree
//! and its whiteout rules in `tree`, the parallel gzip compressor in `pgzip`.
//!
//! Invariants: this crate knows nothing about images, specs or the cache; the
//! same job and the same input bytes give the same output bytes on any machine
//! (mtimes, owners, umask and the order of a directory never reach the output);
//! nothing is ever written on the host but to the writer it is given and to
//! temporary files it removes; memory does not grow with the size of a layer;
//! only `delete` reads the lower layers, so a layer without one does not
//! depend on what lies below it (`from-dir` and `run`, which read the lower
//! layers' contents, are built by `strata-union` with [`build_entries`]).

mod beneath;
mod build;
mod compress;
mod entries;
mod exclude;
mod glob;
mod host;
mod ingest;
mod inplace;
pub mod listing;
mod pgzip;
pub mod read;
mod spool;
mod tree;
mod ustar;
mod xattr;

pub use beneath::{AtReader, HostInput, map_dir_entries, open_file, read_dir_stated, read_link};
pub use build::{BuildOutput, Progress, build};
pub use compress::Compression;
pub use entries::{HostEntry, Source, build_entries, build_entries_on};
pub use exclude::Excludes;
pub use host::read_listed;
pub use listing::{list_blob, list_blob_with_mtimes};
// The image model's types, from the ground crate: re-exported so that a
// layer's callers name them where they meet them.
pub use strata_oci::{
    BadLine, Digest, Entry, EntryKind, Healthcheck, ImageConfig, ImagePath, LayerDescriptor,
    Listing, LowerView, MediaType, digest, history, whiteout,
};
pub use xattr::{is_recorded as is_recorded_xattr, recorded_xattrs};

use std::path::PathBuf;

/// Numeric owner of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Everything that decides a layer's bytes.
#[derive(Debug, Clone)]
pub struct LayerJob {
    pub ops: Vec<JobOp>,
    /// mtime of every entry (seconds since 1970).
    pub epoch: u64,
    pub compression: Compression,
    /// Bounds on the input archives; they never change a layer's bytes, only
    /// whether it builds, so they are no part of its cache key.
    pub limits: Limits,
}

/// How far one input archive of `unpack` may expand, against decompression
/// bombs: the size of its decompressed tar (which is also what its spool
/// takes in the temporary directory) and its number of entries. The names in
/// error messages (`max-input-size`, `max-entries`) are those of the spec's
/// `limits` node, which sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_input_size: u64,
    pub max_entries: u64,
}

impl Limits {
    /// 64 GiB and 500,000 entries: beyond a real rootfs or SDK tarball
    /// (a full Debian desktop has about 300,000 files). The entry limit is
    /// what bounds memory: an archive's entries are held while its layer is
    /// written, about 1 KB each all told (500,000 entries of a plain tar
    /// peaked at 470 MiB RSS), so 10 million needed about 10 GB.
    pub const DEFAULT: Limits = Limits {
        max_input_size: 64 << 30,
        max_entries: 500_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// One operation, inputs resolved. A destination that ends in `/` (`into_dir`)
/// means "inside this directory"; otherwise it names the result itself.
#[derive(Debug, Clone)]
pub enum JobOp {
    /// Unpack a tarball (gzip, xz, zstd, bzip2 or plain, detected by its magic
    /// bytes, never by its name) into the directory `to`.
    Unpack {
        archive: HostInput,
        to: ImagePath,
        /// Overrides every entry's owner.
        owner: Option<Owner>,
        /// Overrides the permission bits of every regular file.
        mode: Option<u32>,
    },
    /// Copy a host file or directory (its contents, recursively, as Docker COPY).
    Copy {
        src: HostInput,
        to: ImagePath,
        into_dir: bool,
        mode: Option<u32>,
        owner: Option<Owner>,
    },
    File {
        path: ImagePath,
        content: Vec<u8>,
        mode: Option<u32>,
        owner: Option<Owner>,
    },
    Mkdir {
        path: ImagePath,
        mode: Option<u32>,
        owner: Option<Owner>,
    },
    Symlink {
        path: ImagePath,
        target: Vec<u8>,
        owner: Option<Owner>,
    },
    /// A whiteout for a path of the lower layers; see [`build`]. A path with
    /// `*`, `?` or `[` is a glob over the union of the lower layers.
    Delete { path: ImagePath },
    /// The image's working directory, made as Docker's `WORKDIR` makes it:
    /// when the layers below have it, it stays as they give it; otherwise
    /// it (and any missing parent) is made 0755, owned by `owner`.
    Workdir {
        path: ImagePath,
        owner: Option<Owner>,
    },
    /// Changes the permission bits and/or the owner of what this layer
    /// has at `path` (with `recursive`, of everything below it too), as a
    /// package's `chmod`/`chown` in its postinst does. A symlink keeps its
    /// mode. A path this layer does not have is left alone: changing a
    /// lower layer's file would copy its content up, which no caller asks.
    Attr {
        path: ImagePath,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        recursive: bool,
    },
}

/// Work that reads the content of the layers below, not only their paths:
/// built by `strata-union`, never by [`build`], which has no such
/// operation to be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnionWork {
    /// The difference between the union of the layers below and the host
    /// directory `dir`. Modes, owners and xattrs are recorded exactly, as
    /// `docker commit` does, unless `normalize` (a tree checked out from
    /// git): then only the exec bit counts and host owners never reach the
    /// layer, as for `copy`.
    FromDir { dir: PathBuf, normalize: bool },
    /// Commands run one after another on the union of the layers below; the
    /// layer is what they changed.
    Run(Vec<RunStep>),
    /// Paths copied out of other images of the spec (a multi-stage build),
    /// in order: the layer holds them, and the parents they need.
    CopyFrom(Vec<CopyFromStep>),
}

/// One `copy "/SRC" from="IMAGE" to="/DEST"`: what the image `image` shows
/// at `src` (a directory's contents, or a file), put at `to`, as Docker's
/// `COPY --from` puts it: modes and xattrs as the image has them, owners
/// `0:0` unless `owner`, `mode` (if any) on every regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFromStep {
    /// The image of the spec the paths come from (for messages).
    pub image: String,
    /// The stack digest of that image's layers, every key chained: what the
    /// layer's key covers of its source, so it is rebuilt exactly when the
    /// source image changes.
    pub source: [u8; 32],
    pub src: ImagePath,
    pub to: ImagePath,
    /// `to` ends with `/`: a file goes into that directory under its name.
    pub into_dir: bool,
    pub mode: Option<u32>,
    pub owner: Option<Owner>,
}

/// Everything that decides the bytes of a layer built from the layers
/// below by [`UnionWork`].
#[derive(Debug, Clone)]
pub struct UnionJob {
    pub work: UnionWork,
    /// mtime of every entry (seconds since 1970).
    pub epoch: u64,
    pub compression: Compression,
}

/// One `run` step: a command and the environment it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// Run by `shell`, or `/bin/sh -c`.
    pub command: String,
    /// The image's `shell` (Docker's `SHELL`): the words `command` is
    /// appended to; `None` for `/bin/sh -c`.
    pub shell: Option<Vec<String>>,
    /// `KEY=VALUE`, in order.
    pub env: Vec<String>,
    /// The working directory; `/` when unset.
    pub workdir: Option<String>,
    /// Who the command runs as (`user=`); root when unset.
    pub user: Option<String>,
    /// Whether the command shares the host's network.
    pub network: bool,
    /// The image's platform, `os/arch[/variant]`: a command of another
    /// architecture than the host's runs only through a binfmt handler.
    pub platform: String,
    /// What is mounted for the command only (cache directories, secrets):
    /// never in the layer, and in its key only by their declaration.
    pub mounts: Vec<RunMount>,
}

/// A mount of a `run` step, as BuildKit's `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A directory of strata's cache shared by the runs that name `id`,
    /// read-write at `target`.
    Cache { target: String, id: String },
    /// Bytes read when the step runs, visible read-only at `target`.
    Secret {
        target: String,
        source: SecretSource,
    },
    /// What the image `image` of the spec shows at `source`, read-only at
    /// `target`.
    Bind {
        target: String,
        image: String,
        source: ImagePath,
        /// The stack digest of that image's layers (what the key covers).
        stack: [u8; 32],
        /// Which of the layer's source images it is (an index into the
        /// `sources` the builder is given).
        index: usize,
    },
}

/// Where a secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A host file.
    File(PathBuf),
    /// An environment variable of strata's.
    Env(String),
}

impl JobOp {
    /// Whether the operation may write below a directory that the layers
    /// below have, which then keeps their mode, owner and xattrs (as
    /// Docker's COPY keeps existing parents): everything but a path right
    /// under `/` and a `delete`.
    pub fn keeps_lower_parents(&self) -> bool {
        let under = |p: &ImagePath| p.parent().is_some_and(|d| !d.is_root());
        match self {
            JobOp::Unpack { .. } => true,
            JobOp::Copy { to, into_dir, .. } => *into_dir || under(to) || self.copies_a_tree(),
            JobOp::File { path, .. } | JobOp::Mkdir { path, .. } | JobOp::Symlink { path, .. } => {
                under(path)
            }
            JobOp::Delete { .. } | JobOp::Attr { .. } => false,
            JobOp::Workdir { .. } => true,
        }
    }

    /// Whether a `copy` copies a directory (into its destination, which may exist).
    fn copies_a_tree(&self) -> bool {
        matches!(self, JobOp::Copy { src, .. } if src.is_dir())
    }
}

/// Why a layer could not be built. Each variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `op` is the index of the operation in [`LayerJob::ops`].
    #[error("delete {path}: no lower layer has this path")]
    DeleteMissing { op: usize, path: String },
    #[error("{archive}: entry {entry:?}: {reason}")]
    BadArchiveEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{archive}: {reason}")]
    BadArchive { archive: PathBuf, reason: String },
    /// An input archive exceeds the job's [`Limits`].
    #[error("{archive}: {reason}")]
    Limit { archive: PathBuf, reason: String },
    /// The decompressed copy of an input archive could not be written to the
    /// temporary directory.
    #[error("{archive}: cannot spool the decompressed archive into {dir}: {source}")]
    Spool {
        archive: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `$TMPDIR` has too little free space for an input archive's spool:
    /// found before it filled up (or when it did), with what was needed.
    #[error(
        "{archive}: not enough space in $TMPDIR ({dir}) to spool the decompressed archive: it needs {} or more, {} free (No space left on device); set TMPDIR to a directory on a larger disk",
        ingest::human_size(*need),
        ingest::human_size(*free)
    )]
    SpoolFull {
        archive: PathBuf,
        dir: PathBuf,
        need: u64,
        free: u64,
    },
    /// The disk being written filled up while a blob or archive was
    /// unpacked (not a fault of the blob).
    #[error(
        "{archive}: cannot unpack it: the disk it is written to is full ({source}); for a `run` step that is $TMPDIR: free space there or set TMPDIR to a larger disk"
    )]
    DiskFull {
        archive: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the layer: {0}")]
    Write(#[source] std::io::Error),
    /// An operation's path or argument cannot be built (a file at `/`, a
    /// reserved `.wh.` name, an empty symlink target).
    #[error("{path}: {reason}")]
    BadPath {
        op: usize,
        path: String,
        reason: String,
    },
    /// A host input cannot be copied (a fifo, socket or device in a copied
    /// directory, a reserved `.wh.` name).
    #[error("{path}: {reason}")]
    Host { path: PathBuf, reason: String },
    /// An input file changed while the layer was built from it: its bytes
    /// no longer hash to the digest its cache key was made from, or its
    /// size, mtime or ctime moved while it was read. Nothing is cached.
    #[error("{path}: {reason}; nothing was cached from it, compose again once it stays put")]
    InputChanged { path: PathBuf, reason: String },
    /// The job's compression settings are out of range.
    #[error("compression {0}")]
    BadCompression(String),
}

impl Error {
    /// Whether the build failed on what the spec asked for (a refused or
    /// corrupt tarball, a missing path to delete, an uncopyable input), as
    /// opposed to the machine (I/O, a full disk) or a bad setting.
    pub fn is_build_failure(&self) -> bool {
        matches!(
            self,
            Error::DeleteMissing { .. }
                | Error::BadArchiveEntry { .. }
                | Error::BadArchive { .. }
                | Error::Limit { .. }
                | Error::BadPath { .. }
                | Error::Host { .. }
        )
    }
}

#[cfg(test)]
mod tests;
