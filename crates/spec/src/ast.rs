//! The typed spec: what `parse` produces and every later stage consumes.
//!
//! Every value a user wrote carries the span of the token it came from, so the
//! planner and the builder can point back at the spec when they find a problem
//! the parser could not see (a missing input file, a `from` cycle, a `delete` of
//! a path no lower layer has).

use std::collections::BTreeMap;

use miette::SourceSpan;

/// A value with the span of the spec text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: SourceSpan) -> Self {
        Spanned { value, span }
    }
}

/// A whole spec file.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The name the spec was read under (a path as the user gave it), used in diagnostics.
    pub name: String,
    /// The spec text, kept for rendering diagnostics found by later stages.
    pub source: String,
    /// `epoch N`: the time (seconds since 1970) written into every mtime and
    /// `created`; `SOURCE_DATE_EPOCH` overrides it, the default is 0.
    pub epoch: Option<Spanned<u64>>,
    /// `compression "gzip"|"zstd"|"none"` for every layer; default gzip.
    pub compression: Option<Spanned<Compression>>,
    /// `compression ... level=N`: gzip 1-9, zstd 1-19; unset keeps the
    /// builder's default for the algorithm. Checked against the algorithm.
    pub compression_level: Option<Spanned<u32>>,
    /// `inputs-root "PATH"`: the host directory every input (`add`, `copy`,
    /// `rootfs` source) must lie in once symlinks are followed, relative to
    /// the spec file. Without it, inputs must lie in the spec's directory.
    pub inputs_root: Option<Spanned<String>>,
    /// `limits ...`: bounds on each input archive; what is not set keeps the
    /// builder's defaults.
    pub limits: Limits,
    /// The `image` nodes, in spec order.
    pub images: Vec<Image>,
    /// The `index` nodes (multi-platform images), in spec order.
    pub indexes: Vec<Index>,
    /// `arg NAME="default"`: build arguments, in spec order (see
    /// [`crate::apply_args`]).
    pub args: Vec<ArgDecl>,
    /// Debian repositories that `packages` operations install from.
    pub repositories: Vec<Repository>,
}

/// One build argument: `arg NAME="default"` (or `arg NAME`, empty by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: Spanned<String>,
    pub default: Option<Spanned<String>>,
}

/// One `index NAME { image A; image B }` node: images of this spec for
/// several platforms, under one name, written as an OCI image index.
#[derive(Debug, Clone)]
pub struct Index {
    pub name: Spanned<String>,
    /// Span of the whole node.
    pub span: SourceSpan,
    /// The `image NAME` children, in spec order (no name twice).
    pub images: Vec<Spanned<String>>,
}

/// `limits max-input-size="64GiB" max-entries=500000`: how far one input
/// archive may expand before the build refuses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `max-input-size`: bytes of decompressed tar, as a number of bytes.
    pub max_input_size: Option<Spanned<u64>>,
    /// `max-entries`: entries of the archive.
    pub max_entries: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// One `image NAME { ... }` node.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: Spanned<String>,
    /// Span of the whole node, for errors about the image as a whole.
    pub span: SourceSpan,
    /// `from NAME`: another image of the same spec whose layers and config
    /// this image builds on; or an image outside the spec (see [`ExternalBase`]).
    pub from: Option<Spanned<String>>,
    /// `rootfs "path"`: a tarball unpacked at `/` as this image's first layer
    /// (`FROM scratch` + `ADD rootfs.tar /`). Path relative to the spec file.
    pub rootfs: Option<Spanned<String>>,
    /// `tag "v1"`: the tag used for `NAME:TAG` in a docker-archive; default `latest`.
    pub tag: Option<Spanned<String>>,
    /// The `layer` nodes, in spec order (after the rootfs layer, if any).
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
}

/// The image configuration nodes of one image. Values are as written: `env`
/// values are expanded by the planner, which knows the inherited environment.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// `env K=V ...`, in spec order (later entries may refer to earlier ones as `$K` / `${K}`).
    pub env: Vec<(Spanned<String>, Spanned<String>)>,
    /// `cmd "arg" ...`
    pub cmd: Option<Spanned<Vec<String>>>,
    /// `entrypoint "arg" ...`
    pub entrypoint: Option<Spanned<Vec<String>>>,
    /// `workdir "/path"`
    pub workdir: Option<Spanned<String>>,
    /// `user "name"` or `user "uid:gid"`
    pub user: Option<Spanned<String>>,
    /// `expose 8080 "53/udp"`: normalised to `PORT/PROTO` (`8080/tcp`).
    pub expose: Vec<Spanned<String>>,
    /// `volume "/data" ...`
    pub volumes: Vec<Spanned<String>>,
    /// `label k=v ...`
    pub labels: BTreeMap<String, Spanned<String>>,
    /// `annotation k=v ...` (written on the manifest)
    pub annotations: BTreeMap<String, Spanned<String>>,
    /// `stop-signal "SIGTERM"`
    pub stop_signal: Option<Spanned<String>>,
    /// `author "name <mail>"`
    pub author: Option<Spanned<String>>,
    /// `platform "linux/amd64"` (`os/arch[/variant]`); default linux/amd64.
    pub platform: Option<Spanned<Platform>>,
    /// `healthcheck "CMD" "curl" "-f" "http://localhost/" interval="30s" ...`
    pub healthcheck: Option<Spanned<Healthcheck>>,
    /// `shell "/bin/bash" "-c"`: the shell `run` steps use (Docker's `SHELL`).
    pub shell: Option<Spanned<Vec<String>>>,
}

/// `healthcheck TEST... [interval=] [timeout=] [start-period=] [retries=]`:
/// Docker's `HEALTHCHECK`, written as the config's `Healthcheck` holds it.
/// `test` is Docker's `Test` array: `["CMD", ARG...]` (exec form),
/// `["CMD-SHELL", COMMAND]` (run by the image's shell) or `["NONE"]` (no
/// health check, not even an inherited one). Durations are nanoseconds;
/// `None` leaves the field out, which means Docker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// One `layer NAME { ... }` node.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: Spanned<String>,
    pub span: SourceSpan,
    pub ops: Vec<Spanned<Op>>,
}

/// Owner of an entry: `owner="1000:1000"`, `owner=1000` (gid = uid),
/// `owner="app:app"`, `owner="app"` (the user's primary group) or a mix
/// (`owner="1000:staff"`). Names are resolved against the image's own
/// `/etc/passwd` and `/etc/group` when the layer is built.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub user: OwnerId,
    /// `None` only when `user` is a name: then the group is that user's
    /// primary group (as BuildKit's `COPY --chown=NAME` gives it).
    pub group: Option<OwnerId>,
}

/// One side of an [`Owner`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerId {
    Id(u32),
    Name(String),
}

impl Owner {
    /// A numeric owner.
    pub fn ids(uid: u32, gid: u32) -> Owner {
        Owner {
            user: OwnerId::Id(uid),
            group: Some(OwnerId::Id(gid)),
        }
    }

    /// `(uid, gid)` when neither side is a name.
    pub fn numeric(&self) -> Option<(u32, u32)> {
        match (&self.user, &self.group) {
            (OwnerId::Id(u), Some(OwnerId::Id(g))) => Some((*u, *g)),
            _ => None,
        }
    }
}

impl std::fmt::Display for OwnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OwnerId::Id(n) => write!(f, "{n}"),
            OwnerId::Name(s) => f.write_str(s),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

/// One operation inside a layer. Paths inside the image are absolute
/// (`/usr/local/`); a trailing `/` on a destination means "into this directory".
/// Source paths are relative to the spec file, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `add "src" to="/dst/"`: a tarball (gzip, xz, zstd, bzip2 or plain) is
    /// unpacked into the destination; any other file or directory is copied.
    Add {
        src: Spanned<String>,
        to: Spanned<String>,
        mode: Option<Spanned<u32>>,
        owner: Option<Spanned<Owner>>,
        /// `exclude="PATTERN ..."`: see [`Op::Copy`].
        exclude: Option<Spanned<Vec<String>>>,
        /// `checksum="sha256:HEX"`: required when `src` is an `http://` or
        /// `https://` URL (Docker's `ADD --checksum`), refused otherwise.
        checksum: Option<Spanned<String>>,
    },
    /// `copy "src" to="/dst/"`: a file or directory, copied, never unpacked.
    Copy {
        src: Spanned<String>,
        to: Spanned<String>,
        mode: Option<Spanned<u32>>,
        owner: Option<Spanned<Owner>>,
        /// `exclude="PATTERN ..."`: for a directory, the entries left out,
        /// as a `.dockerignore` leaves them out (patterns separated by
        /// blanks, `\ ` a blank inside one; `!` re-includes).
        exclude: Option<Spanned<Vec<String>>>,
        /// `from="IMAGE"`: `src` is an absolute path in that image of the
        /// spec, not a host file (Docker's `COPY --from`, a multi-stage
        /// build).
        from: Option<Spanned<String>>,
    },
    /// `file "/path" "content"`: a file with inline content.
    File {
        path: Spanned<String>,
        content: Spanned<String>,
        mode: Option<Spanned<u32>>,
        owner: Option<Spanned<Owner>>,
    },
    /// `mkdir "/path"`: a directory (and its parents).
    Mkdir {
        path: Spanned<String>,
        mode: Option<Spanned<u32>>,
        owner: Option<Spanned<Owner>>,
        /// `if-missing=#true`: made only when the layers below lack it (as
        /// Docker's `WORKDIR` makes its directory); an existing one keeps
        /// its mode and owner. Takes no `mode=`.
        if_missing: Option<Spanned<bool>>,
    },
    /// `symlink "/path" target="..."`.
    Symlink {
        path: Spanned<String>,
        target: Spanned<String>,
        owner: Option<Spanned<Owner>>,
    },
    /// `delete "/path"`: a whiteout for a path some lower layer has. A path
    /// with `*`, `?` or `[` is a glob matched against the layers below.
    Delete { path: Spanned<String> },
    /// `from-dir "dir" [normalize=#true]`: the layer is the difference
    /// between the union of the layers below and this host directory
    /// (relative to the spec file), recorded exactly as `docker commit`
    /// does, or with modes and owners normalised as for `copy`.
    FromDir {
        src: Spanned<String>,
        normalize: Option<Spanned<bool>>,
    },
    /// `run "command" [network=#true]`: the layer is what the command, run by
    /// `/bin/sh -c` on the layers below, changed.
    Run {
        command: Spanned<String>,
        /// `network=#true` gives the command the host's network; default none.
        network: Option<Spanned<bool>>,
        /// `user="NAME[:GROUP]"`: who the command runs as (as a Dockerfile's
        /// USER before RUN); default root.
        user: Option<Spanned<String>>,
        /// The mounts of the command, from the `run` node's block.
        mounts: Vec<Spanned<RunMount>>,
    },
    /// Debian packages, resolved with their dependencies and unpacked.
    Packages(PackagesOp),
}

/// A mount of a `run` step (a child node of `run`), as BuildKit's
/// `RUN --mount`: visible to the command only, never in the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `cache "/var/cache/apt" [id="apt"]`: a directory kept in strata's
    /// cache and shared by every run that names the same id (default: the
    /// path).
    Cache {
        target: Spanned<String>,
        id: Option<Spanned<String>>,
    },
    /// `secret "/run/secrets/token" file="token.txt"` (or `env="TOKEN"`):
    /// bytes visible at the path during the run only.
    Secret {
        target: Spanned<String>,
        source: SecretSource,
    },
    /// `bind "/mnt/build" from="IMAGE" [source="/PATH"]`: what another
    /// image of the spec shows at `source` (its root by default),
    /// read-only, as BuildKit's `--mount=type=bind,from=`.
    Bind {
        target: Spanned<String>,
        from: Spanned<String>,
        source: Option<Spanned<String>>,
    },
}

impl RunMount {
    /// Where the mount is in the image.
    pub fn target(&self) -> &Spanned<String> {
        match self {
            RunMount::Cache { target, .. }
            | RunMount::Secret { target, .. }
            | RunMount::Bind { target, .. } => target,
        }
    }
}

/// Where a secret's bytes come from, read when the step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `file="..."`: a host file, relative to the spec file.
    File(Spanned<String>),
    /// `env="NAME"`: an environment variable of strata's.
    Env(Spanned<String>),
}

impl Spec {
    /// The image named `name`.
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.name.value == name)
    }

    /// Problems a later stage found in this spec, ready to render against its source.
    pub fn diagnostics(&self, items: Vec<crate::SpecDiagnostic>) -> crate::Diagnostics {
        crate::Diagnostics::new(&self.name, &self.source, items)
    }

    /// One problem a later stage found in this spec.
    pub fn diagnostic(&self, item: crate::SpecDiagnostic) -> crate::Diagnostics {
        crate::Diagnostics::single(&self.name, &self.source, item)
    }
}

impl Image {
    /// The layer named `name` (the `rootfs` layer is not a `Layer`).
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name.value == name)
    }
}

impl Op {
    /// The node name of this operation (`add`, `copy`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Copy { .. } => "copy",
            Op::File { .. } => "file",
            Op::Mkdir { .. } => "mkdir",
            Op::Symlink { .. } => "symlink",
            Op::Delete { .. } => "delete",
            Op::FromDir { .. } => "from-dir",
            Op::Run { .. } => "run",
            Op::Packages(_) => "packages",
        }
    }

    /// The path inside the image the operation writes or deletes: `to` for
    /// `add` and `copy`, the path argument for the others; `None` for
    /// `from-dir` and `run`, which may change any path.
    pub fn dest(&self) -> Option<&Spanned<String>> {
        match self {
            Op::Add { to, .. } | Op::Copy { to, .. } => Some(to),
            Op::File { path, .. }
            | Op::Mkdir { path, .. }
            | Op::Symlink { path, .. }
            | Op::Delete { path } => Some(path),
            Op::FromDir { .. } | Op::Run { .. } | Op::Packages(_) => None,
        }
    }

    /// The explicit `mode=`, if the operation has one.
    pub fn mode(&self) -> Option<&Spanned<u32>> {
        match self {
            Op::Add { mode, .. }
            | Op::Copy { mode, .. }
            | Op::File { mode, .. }
            | Op::Mkdir { mode, .. } => mode.as_ref(),
            Op::Symlink { .. }
            | Op::Delete { .. }
            | Op::FromDir { .. }
            | Op::Run { .. }
            | Op::Packages(_) => None,
        }
    }

    /// The explicit `owner=`, if the operation has one.
    pub fn owner(&self) -> Option<&Spanned<Owner>> {
        match self {
            Op::Add { owner, .. }
            | Op::Copy { owner, .. }
            | Op::File { owner, .. }
            | Op::Mkdir { owner, .. }
            | Op::Symlink { owner, .. } => owner.as_ref(),
            Op::Delete { .. } | Op::FromDir { .. } | Op::Run { .. } | Op::Packages(_) => None,
        }
    }
}

/// A `from` that names an image outside the spec: `oci:PATH[:TAG]` (an OCI
/// image layout on disk, relative to the spec) or `docker://HOST/REPO:TAG`
/// / `docker://HOST/REPO@sha256:HEX` (a registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalBase {
    Oci { path: String, tag: Option<String> },
    Registry(String),
}

impl ExternalBase {
    /// The external base a `from` value names; `None` for an image of the spec.
    pub fn parse(from: &str) -> Option<ExternalBase> {
        if from.starts_with("docker://") {
            return Some(ExternalBase::Registry(from.to_owned()));
        }
        let rest = from.strip_prefix("oci:")?;
        // The tag is after the last `:` unless a `/` follows it (then the
        // `:` is part of a directory name).
        Some(match rest.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => ExternalBase::Oci {
                path: path.to_owned(),
                tag: Some(tag.to_owned()),
            },
            _ => ExternalBase::Oci {
                path: rest.to_owned(),
                tag: None,
            },
        })
    }
}

/// `repository NAME suite="bookworm" keyring="debian.gpg" [url="..."]
/// [components="main ..."] [architectures="amd64 ..."]`: a signed Debian
/// repository. Without `url`, the mirror comes from `--mirror` or the
/// host's apt sources, so a spec need not name one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: Spanned<String>,
    pub span: SourceSpan,
    pub url: Option<Spanned<String>>,
    pub suite: Spanned<String>,
    /// `main` when unset.
    pub components: Vec<String>,
    /// The first is the native architecture; `amd64` when unset.
    pub architectures: Vec<String>,
    /// A keyring file (binary or armored OpenPGP keys), relative to the spec.
    pub keyring: Spanned<String>,
    /// Refuse a Release whose `Valid-Until` is past (`check-valid-until`,
    /// as apt's option; on unless `#false`).
    pub check_valid_until: bool,
}

/// `packages "NAME" "NAME (>= VERSION)" "NAME=VERSION" ... [required=#true]
/// [repository=NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesOp {
    pub packages: Vec<Spanned<String>>,
    /// Also every package of `Priority: required` (a minbase system).
    pub required: bool,
    /// The repository's name; the spec's only repository when unset.
    pub repository: Option<Spanned<String>>,
}
