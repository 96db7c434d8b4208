//! Remote layer builds (`compose --remote-exec grpc://HOST:PORT`): a layer
//! the caches missed runs as a Remote Execution API action on a server's
//! workers, and its result comes back through the same checks as a remote
//! cache hit. `docs/remote-cache.md` ("Remote builds") is the normative
//! description.
//!
//! The action's input root holds `job.json` (a [`JobFile`]: the layer's
//! operations, with every host input renamed to `in/N/NAME` inside the
//! root) and the inputs themselves as REAPI `Directory` trees; its command
//! is `strata __layer-job job.json`, its outputs `layer.blob` and
//! `layer.record.json`, the outputs of a cache entry. The worker side,
//! [`run_layer_job`], rebuilds the `LayerJob` from the root and calls
//! `strata_layer::build`, the builder of a local compose, so the same job
//! gives the same bytes on either side.
//!
//! Which layers go: those of `Build::Ops` (copy, add, file, mkdir, symlink,
//! workdir, delete). A layer that reads the layers below gets their
//! records (with listings) under `lower/` in its input root, from which the
//! worker folds the same lower view as a local build. `from-dir` and `run`
//! layers, which read the layers' contents, and external bases are built
//! (or fetched) locally.
//!
//! Invariants: nothing a worker returns is trusted before it passed the
//! checks of a remote cache hit (`reapi_cache::take_result`); a farm that is
//! unreachable or fails an action for its own reasons is one warning and a
//! local build; a job the worker ran and that failed is a build failure
//! located at the layer in the spec, with the worker's stderr.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strata_cache::{Cache, LayerRecord};
use strata_layer::{HostInput, ImagePath, JobOp, LayerJob, Owner};
use strata_plan::{Build, LayerNode, Plan};
use strata_reapi::{
    Action, BlobDigest, Client, Command, Directory, DirectoryNode, FileNode, Message as _,
    Platform, PlatformProperty, Source, SymlinkNode,
};
use strata_spec::SpecDiagnostic;

use crate::{Error, Event};

/// The job file at the root of an action's input root.
pub const JOB_FILE: &str = "job.json";
/// The subcommand a worker runs.
pub const JOB_SUBCOMMAND: &str = "__layer-job";
/// The format of [`JobFile`]; a worker refuses any other.
const JOB_FORMAT: u32 = 1;
/// How long a compose waits for one remote build.
const EXEC_WAIT: Duration = Duration::from_secs(3600);
/// The most of a failed job's stderr shown.
const MAX_STDERR: u64 = 64 << 10;

/// The platform a layer job asks for: a Linux worker.
fn job_platform() -> Platform {
    Platform {
        properties: vec![PlatformProperty {
            name: "OSFamily".into(),
            value: "linux".into(),
        }],
    }
}

/// The `Command` of every remote layer build: `strata __layer-job
/// job.json`. Its platform is the action's (REAPI 2.2); older servers read
/// the command's, so both say it.
pub fn job_command() -> Command {
    #[allow(deprecated)]
    Command {
        arguments: vec!["strata".into(), JOB_SUBCOMMAND.into(), JOB_FILE.into()],
        // Sorted, as the API requires.
        output_paths: vec![
            crate::reapi_cache::BLOB_OUTPUT.to_owned(),
            crate::reapi_cache::RECORD_OUTPUT.to_owned(),
        ],
        platform: Some(job_platform()),
        ..Default::default()
    }
}

/// A layer job as a worker reads it: the `LayerJob` with every host input
/// named by its path inside the input root.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub format: u32,
    pub epoch: u64,
    pub compression: CompressionFile,
    pub max_input_size: u64,
    pub max_entries: u64,
    pub ops: Vec<OpFile>,
    /// The records (JSON, with their listings) of the layers below, bottom
    /// first, as paths in the input root: what `delete` and the parents of
    /// what a layer writes are checked against.
    #[serde(default)]
    pub lower: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "codec")]
pub enum CompressionFile {
    Gzip { level: u32 },
    Zstd { level: i32 },
    None,
}

/// One operation of a [`JobFile`]; `input` is a path inside the input root.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op", deny_unknown_fields)]
pub enum OpFile {
    Unpack {
        input: String,
        to: ImagePath,
        owner: Option<[u32; 2]>,
        mode: Option<u32>,
    },
    Copy {
        input: String,
        to: ImagePath,
        into_dir: bool,
        mode: Option<u32>,
        owner: Option<[u32; 2]>,
        exclude: Vec<String>,
    },
    File {
        path: ImagePath,
        content: Vec<u8>,
        mode: Option<u32>,
        owner: Option<[u32; 2]>,
    },
    Mkdir {
        path: ImagePath,
        mode: Option<u32>,
        owner: Option<[u32; 2]>,
    },
    Symlink {
        path: ImagePath,
        target: Vec<u8>,
        owner: Option<[u32; 2]>,
    },
    Workdir {
        path: ImagePath,
        owner: Option<[u32; 2]>,
    },
    Delete {
        path: ImagePath,
    },
    Attr {
        path: ImagePath,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        recursive: bool,
    },
}

fn owner_out(o: &Option<Owner>) -> Option<[u32; 2]> {
    o.map(|o| [o.uid, o.gid])
}

fn owner_in(o: &Option<[u32; 2]>) -> Option<Owner> {
    o.map(|[uid, gid]| Owner { uid, gid })
}

/// The job file of `job`, and its host inputs by their path in the input
/// root; `None` when the job cannot run remotely (an input whose name is
/// not UTF-8 has no REAPI name).
fn job_file(job: &LayerJob) -> Option<(JobFile, Vec<(String, &HostInput)>)> {
    let mut inputs: Vec<(String, &HostInput)> = Vec::new();
    let name_input = |n: usize, h: &'_ HostInput| -> Option<String> {
        let name = h.path().file_name()?.to_str()?;
        let at = format!("in/{n}/{name}");
        Some(at)
    };
    let mut ops = Vec::with_capacity(job.ops.len());
    for (n, op) in job.ops.iter().enumerate() {
        ops.push(match op {
            JobOp::Unpack {
                archive,
                to,
                owner,
                mode,
            } => {
                let at = name_input(n, archive)?;
                inputs.push((at.clone(), archive));
                OpFile::Unpack {
                    input: at,
                    to: to.clone(),
                    owner: owner_out(owner),
                    mode: *mode,
                }
            }
            JobOp::Copy {
                src,
                to,
                into_dir,
                mode,
                owner,
            } => {
                let at = name_input(n, src)?;
                inputs.push((at.clone(), src));
                OpFile::Copy {
                    input: at,
                    to: to.clone(),
                    into_dir: *into_dir,
                    mode: *mode,
                    owner: owner_out(owner),
                    exclude: src
                        .excludes()
                        .map(|e| e.patterns().to_vec())
                        .unwrap_or_default(),
                }
            }
            JobOp::File {
                path,
                content,
                mode,
                owner,
            } => OpFile::File {
                path: path.clone(),
                content: content.clone(),
                mode: *mode,
                owner: owner_out(owner),
            },
            JobOp::Mkdir { path, mode, owner } => OpFile::Mkdir {
                path: path.clone(),
                mode: *mode,
                owner: owner_out(owner),
            },
            JobOp::Symlink {
                path,
                target,
                owner,
            } => OpFile::Symlink {
                path: path.clone(),
                target: target.clone(),
                owner: owner_out(owner),
            },
            JobOp::Workdir { path, owner } => OpFile::Workdir {
                path: path.clone(),
                owner: owner_out(owner),
            },
            JobOp::Delete { path } => OpFile::Delete { path: path.clone() },
            JobOp::Attr {
                path,
                mode,
                uid,
                gid,
                recursive,
            } => OpFile::Attr {
                path: path.clone(),
                mode: *mode,
                uid: *uid,
                gid: *gid,
                recursive: *recursive,
            },
        });
    }
    let compression = match job.compression {
        strata_layer::Compression::Gzip { level } => CompressionFile::Gzip { level },
        strata_layer::Compression::Zstd { level } => CompressionFile::Zstd { level },
        strata_layer::Compression::None => CompressionFile::None,
    };
    Some((
        JobFile {
            format: JOB_FORMAT,
            epoch: job.epoch,
            compression,
            max_input_size: job.limits.max_input_size,
            max_entries: job.limits.max_entries,
            ops,
            lower: Vec::new(),
        },
        inputs,
    ))
}

/// The `LayerJob` a job file in `root` describes, its inputs opened
/// beneath `root`.
fn layer_job(file: &JobFile, root: &Path) -> Result<LayerJob, Error> {
    let bad = |reason: String| Error::BadSource {
        source_ref: root.join(JOB_FILE).display().to_string(),
        reason,
    };
    if file.format != JOB_FORMAT {
        return Err(bad(format!(
            "job format {} (this strata reads {JOB_FORMAT})",
            file.format
        )));
    }
    let open = |input: &str| -> Result<HostInput, Error> {
        let rel = plain_path(input)
            .ok_or_else(|| bad(format!("input {input:?} is not a path inside the job")))?;
        HostInput::open(&root.join(rel)).map_err(|source| Error::Io {
            path: root.join(rel),
            source,
        })
    };
    let mut ops = Vec::with_capacity(file.ops.len());
    for op in &file.ops {
        ops.push(match op {
            OpFile::Unpack {
                input,
                to,
                owner,
                mode,
            } => JobOp::Unpack {
                archive: open(input)?,
                to: to.clone(),
                owner: owner_in(owner),
                mode: *mode,
            },
            OpFile::Copy {
                input,
                to,
                into_dir,
                mode,
                owner,
                exclude,
            } => {
                let mut src = open(input)?;
                if !exclude.is_empty() {
                    src = src.with_excludes(strata_layer::Excludes::new(exclude).map_err(bad)?);
                }
                JobOp::Copy {
                    src,
                    to: to.clone(),
                    into_dir: *into_dir,
                    mode: *mode,
                    owner: owner_in(owner),
                }
            }
            OpFile::File {
                path,
                content,
                mode,
                owner,
            } => JobOp::File {
                path: path.clone(),
                content: content.clone(),
                mode: *mode,
                owner: owner_in(owner),
            },
            OpFile::Mkdir { path, mode, owner } => JobOp::Mkdir {
                path: path.clone(),
                mode: *mode,
                owner: owner_in(owner),
            },
            OpFile::Symlink {
                path,
                target,
                owner,
            } => JobOp::Symlink {
                path: path.clone(),
                target: target.clone(),
                owner: owner_in(owner),
            },
            OpFile::Workdir { path, owner } => JobOp::Workdir {
                path: path.clone(),
                owner: owner_in(owner),
            },
            OpFile::Delete { path } => JobOp::Delete { path: path.clone() },
            OpFile::Attr {
                path,
                mode,
                uid,
                gid,
                recursive,
            } => JobOp::Attr {
                path: path.clone(),
                mode: *mode,
                uid: *uid,
                gid: *gid,
                recursive: *recursive,
            },
        });
    }
    Ok(LayerJob {
        ops,
        epoch: file.epoch,
        compression: match file.compression {
            CompressionFile::Gzip { level } => strata_layer::Compression::Gzip { level },
            CompressionFile::Zstd { level } => strata_layer::Compression::Zstd { level },
            CompressionFile::None => strata_layer::Compression::None,
        },
        limits: strata_layer::Limits {
            max_input_size: file.max_input_size,
            max_entries: file.max_entries,
        },
    })
}

/// `at` as a relative path of plain components only (no `..`, no root).
fn plain_path(at: &str) -> Option<&Path> {
    let rel = Path::new(at);
    let plain = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (plain && !at.is_empty()).then_some(rel)
}

/// `strata __layer-job job.json`, run by a worker in an action's input
/// root (`root`, the job file's directory): build the layer with the
/// builder of a local compose and write `layer.blob` and
/// `layer.record.json` beside the job file (each to a temporary name,
/// then renamed).
pub fn run_layer_job(job_path: &Path) -> Result<(), Error> {
    let root = match job_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let text = std::fs::read(job_path).map_err(io(job_path))?;
    let file: JobFile = serde_json::from_slice(&text).map_err(|source| Error::Json {
        what: format!("cannot read {}", job_path.display()),
        source,
    })?;
    let job = layer_job(&file, &root)?;
    let mut lower = strata_layer::LowerView::default();
    for at in &file.lower {
        let path = root.join(plain_path(at).ok_or_else(|| Error::BadSource {
            source_ref: job_path.display().to_string(),
            reason: format!("lower record {at:?} is not a path inside the job"),
        })?);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let record: LayerRecord = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: format!("cannot read {}", path.display()),
            source,
        })?;
        lower.apply(&record.listing);
    }
    let mut blob = tempfile::NamedTempFile::new_in(&root).map_err(io(&root))?;
    let out = {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, blob.as_file_mut());
        let out =
            strata_layer::build(&job, &lower, &mut w, &|_| {}).map_err(|source| Error::Layer {
                layer: job_path.display().to_string(),
                source,
            })?;
        std::io::Write::flush(&mut w).map_err(io(&root))?;
        out
    };
    let record = LayerRecord {
        desc: out.desc,
        listing: out.listing,
    };
    let json = serde_json::to_vec(&record).map_err(|source| Error::Json {
        what: "cannot write the layer record".into(),
        source,
    })?;
    let blob_path = root.join(crate::reapi_cache::BLOB_OUTPUT);
    blob.persist(&blob_path).map_err(|e| Error::Io {
        path: blob_path.clone(),
        source: e.error,
    })?;
    let record_path = root.join(crate::reapi_cache::RECORD_OUTPUT);
    let mut tmp = tempfile::NamedTempFile::new_in(&root).map_err(io(&root))?;
    std::io::Write::write_all(&mut tmp, &json).map_err(io(&record_path))?;
    tmp.persist(&record_path).map_err(|e| Error::Io {
        path: record_path.clone(),
        source: e.error,
    })?;
    Ok(())
}

/// An input root being assembled: its `Directory` messages and files, by digest.
#[derive(Default)]
struct Root {
    blobs: Vec<(BlobDigest, Source)>,
}

/// Why a layer cannot go to the farm (it builds locally, silently).
struct Unsupported;

impl Root {
    fn add_dir(&mut self, dir: &Directory) -> DirectoryNodeDigest {
        let bytes = dir.encode_to_vec();
        let d = BlobDigest::of(&bytes);
        self.blobs.push((d.clone(), Source::Bytes(bytes)));
        DirectoryNodeDigest(d)
    }

    /// A host file read from `r` (its open handle, from the start), small
    /// ones into memory, larger ones streamed again from their physical
    /// path at upload (the server refuses bytes that do not hash to the
    /// digest taken here).
    fn add_file(
        &mut self,
        name: &str,
        mut r: impl std::io::Read,
        meta: &std::fs::Metadata,
        real: &Path,
    ) -> Result<FileNode, Error> {
        use std::os::unix::fs::PermissionsExt as _;
        let io = |source| Error::Io {
            path: real.to_path_buf(),
            source,
        };
        let executable = meta.permissions().mode() & 0o111 != 0;
        let (d, src) = if meta.len() <= strata_reapi::CHUNK as u64 {
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            r.read_to_end(&mut bytes).map_err(io)?;
            (BlobDigest::of(&bytes), Source::Bytes(bytes))
        } else {
            let d = BlobDigest::of_reader(r).map_err(io)?;
            (d, Source::File(real.to_path_buf()))
        };
        self.blobs.push((d.clone(), src));
        Ok(FileNode {
            name: name.to_owned(),
            digest: Some(d.to_proto()),
            is_executable: executable,
            ..Default::default()
        })
    }

    /// The directory at the physical path `dir` (its entries opened without
    /// following symlinks), entries excluded by `excludes` left out.
    fn add_host_dir(
        &mut self,
        dir: &Path,
        rel: &[u8],
        excludes: Option<&strata_layer::Excludes>,
    ) -> Result<Result<DirectoryNodeDigest, Unsupported>, Error> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut out = Directory::default();
        for (name, meta) in strata_layer::read_dir_stated(dir).map_err(io)? {
            let Some(name_str) = name.to_str() else {
                return Ok(Err(Unsupported));
            };
            let mut child_rel = rel.to_vec();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name_str.as_bytes());
            let path = dir.join(&name);
            let meta = meta.map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let excluded = excludes.is_some_and(|e| e.excluded(&child_rel));
            let ft = meta.file_type();
            if ft.is_dir() {
                // A directory an exclude names may hold re-included entries.
                if excluded && !excludes.is_some_and(|e| e.has_reincludes()) {
                    continue;
                }
                let Ok(d) = self.add_host_dir(&path, &child_rel, excludes)? else {
                    return Ok(Err(Unsupported));
                };
                out.directories.push(DirectoryNode {
                    name: name_str.to_owned(),
                    digest: Some(d.0.to_proto()),
                });
            } else if excluded {
                continue;
            } else if ft.is_file() {
                let f = strata_layer::open_file(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                out.files.push(self.add_file(name_str, &f, &meta, &path)?);
            } else if ft.is_symlink() {
                let target = strata_layer::read_link(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                let Some(target) = target.to_str() else {
                    return Ok(Err(Unsupported));
                };
                out.symlinks.push(SymlinkNode {
                    name: name_str.to_owned(),
                    target: target.to_owned(),
                    ..Default::default()
                });
            } else {
                // A fifo, socket or device: REAPI has no node for it.
                return Ok(Err(Unsupported));
            }
        }
        Ok(Ok(self.add_dir(&out)))
    }
}

struct DirectoryNodeDigest(BlobDigest);

/// The input root of `job` (with its job file), or `Unsupported`.
fn input_root(
    job: &LayerJob,
    lower: &[LayerRecord],
) -> Result<Result<(BlobDigest, Root), Unsupported>, Error> {
    let Some((mut file, inputs)) = job_file(job) else {
        return Ok(Err(Unsupported));
    };
    let mut root = Root::default();
    // lower/N.json, the records of the layers below.
    let mut lower_dir = Directory::default();
    for (n, record) in lower.iter().enumerate() {
        let bytes = serde_json::to_vec(record).map_err(|source| Error::Json {
            what: "cannot write a layer record".into(),
            source,
        })?;
        let d = BlobDigest::of(&bytes);
        root.blobs.push((d.clone(), Source::Bytes(bytes)));
        // Zero-padded, so that the names sort as the layers stack.
        let name = format!("{n:06}.json");
        file.lower.push(format!("lower/{name}"));
        lower_dir.files.push(FileNode {
            name,
            digest: Some(d.to_proto()),
            ..Default::default()
        });
    }
    // in/N/NAME, one directory per op with an input.
    let mut by_op: Vec<(String, Directory)> = Vec::new();
    for (at, input) in &inputs {
        let mut parts = at.splitn(3, '/').skip(1);
        let (Some(n), Some(name)) = (parts.next(), parts.next()) else {
            return Ok(Err(Unsupported));
        };
        let mut holder = Directory::default();
        match (input.file(), input.reader()) {
            (Some(f), Some(r)) => {
                let meta = f.metadata().map_err(|source| Error::Io {
                    path: input.real().to_path_buf(),
                    source,
                })?;
                holder
                    .files
                    .push(root.add_file(name, r, &meta, input.real())?);
            }
            _ => {
                let Ok(d) = root.add_host_dir(input.real(), b"", input.excludes())? else {
                    return Ok(Err(Unsupported));
                };
                holder.directories.push(DirectoryNode {
                    name: name.to_owned(),
                    digest: Some(d.0.to_proto()),
                });
            }
        }
        by_op.push((n.to_owned(), holder));
    }
    by_op.sort_by(|a, b| a.0.cmp(&b.0));
    let mut inputs_dir = Directory::default();
    for (n, holder) in &by_op {
        let d = root.add_dir(holder);
        inputs_dir.directories.push(DirectoryNode {
            name: n.clone(),
            digest: Some(d.0.to_proto()),
        });
    }
    let mut top = Directory::default();
    let job_bytes = serde_json::to_vec(&file).map_err(|source| Error::Json {
        what: "cannot write a job file".into(),
        source,
    })?;
    let job_d = BlobDigest::of(&job_bytes);
    root.blobs.push((job_d.clone(), Source::Bytes(job_bytes)));
    top.files.push(FileNode {
        name: JOB_FILE.into(),
        digest: Some(job_d.to_proto()),
        ..Default::default()
    });
    if !by_op.is_empty() {
        let d = root.add_dir(&inputs_dir);
        top.directories.push(DirectoryNode {
            name: "in".into(),
            digest: Some(d.0.to_proto()),
        });
    }
    if !lower.is_empty() {
        let d = root.add_dir(&lower_dir);
        top.directories.push(DirectoryNode {
            name: "lower".into(),
            digest: Some(d.0.to_proto()),
        });
    }
    let top_d = root.add_dir(&top);
    Ok(Ok((top_d.0, root)))
}

/// The remote build farm of one compose: the client, and whether it has
/// been given up on.
pub struct RemoteExec {
    client: Client,
    down: AtomicBool,
}

impl RemoteExec {
    pub fn connect(opts: &strata_reapi::Options) -> Result<RemoteExec, Error> {
        Ok(RemoteExec {
            client: Client::connect(opts)?,
            down: AtomicBool::new(false),
        })
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Give up on the farm without a word (its server was found down, and
    /// said so, as the remote cache).
    pub(crate) fn mark_down(&self) {
        self.down.store(true, Ordering::Relaxed);
    }

    /// Give up on the farm, with one warning.
    fn give_up(&self, why: &str, on_event: &(dyn Fn(Event) + Sync)) {
        if !self.down.swap(true, Ordering::Relaxed) {
            on_event(Event::Warning(format!(
                "remote execution unavailable, not used for the rest of this compose (layers build locally): {why}"
            )));
        }
    }
}

/// Build `layer` on the farm, if there is one and the layer can go: its
/// record (in `cache` now, checked as a remote cache hit is), or `None`
/// for a local build.
pub(crate) fn try_build(
    exec: Option<&RemoteExec>,
    plan: &Plan,
    layer: &LayerNode,
    cache: &Cache,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Option<LayerRecord>, Error> {
    let Some(exec) = exec else { return Ok(None) };
    let Build::Ops(job) = &layer.build else {
        return Ok(None);
    };
    // Owners by name are resolved against the layers below by the local
    // builder (`owner_names`); the job as planned has none of their ids.
    if !layer.owner_names.is_empty() {
        return Ok(None);
    }
    if exec.down.load(Ordering::Relaxed) {
        return Ok(None);
    }
    // The layers below, as the local build would fold them (they are all
    // in the cache: the layer waited for them).
    let mut lower = Vec::new();
    if layer.reads_below {
        for d in plan.below(layer.id) {
            let key = plan.layer(d).key.hex();
            let Ok(head) = cache.get_head(&key)? else {
                return Ok(None);
            };
            let listing = cache.listing(&key, &head)?;
            lower.push(LayerRecord {
                desc: head.desc,
                listing,
            });
        }
    }
    let Ok((root_d, root)) = input_root(job, &lower)? else {
        return Ok(None);
    };
    let command = job_command();
    let action = Action {
        command_digest: Some(BlobDigest::of_message(&command).to_proto()),
        input_root_digest: Some(root_d.to_proto()),
        platform: Some(job_platform()),
        ..Default::default()
    };
    let action_d = BlobDigest::of_message(&action);
    let mut blobs = root.blobs;
    blobs.push((
        BlobDigest::of_message(&command),
        Source::Bytes(command.encode_to_vec()),
    ));
    blobs.push((action_d.clone(), Source::Bytes(action.encode_to_vec())));
    let client = &exec.client;
    let farm_failed = |e: &dyn std::fmt::Display| {
        exec.give_up(&e.to_string(), on_event);
        Ok(None)
    };
    if let Err(e) = client.upload(&blobs) {
        return farm_failed(&e);
    }
    let response = match client.execute(&action_d, true, EXEC_WAIT) {
        Ok(r) => r,
        Err(e) => return farm_failed(&e),
    };
    if let Some(s) = response.status.as_ref().filter(|s| s.code != 0) {
        return farm_failed(&format!(
            "{}: action {action_d} failed on the farm: {} (code {})",
            client.url(),
            s.message,
            s.code
        ));
    }
    let Some(result) = response.result else {
        return farm_failed(&format!("{}: action {action_d}: no result", client.url()));
    };
    if result.exit_code != 0 {
        let stderr = match result.stderr_digest.as_ref().map(BlobDigest::from_proto) {
            Some(Ok(d)) if d.size > 0 => match client.read_bytes(&d, MAX_STDERR) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => format!("(its stderr cannot be read: {e})"),
            },
            _ => String::from_utf8_lossy(&result.stderr_raw).into_owned(),
        };
        // The end of it, where the error is.
        let lines: Vec<&str> = stderr.trim_end().lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        let help = format!("the worker's stderr:\n{tail}");
        return Err(Error::Build(Box::new(plan.diagnostic(
            SpecDiagnostic::new(
                format!(
                    "layer `{}` of image `{}` failed on a remote worker (exit code {}, action {action_d})",
                    layer.name, layer.image, result.exit_code
                ),
                layer.span,
                "built remotely",
            )
            .with_help(help),
        ))));
    }
    let key = layer.key.hex();
    let source = format!("{} action {action_d}", client.url());
    // A result that fails the checks is the farm's fault, not the spec's:
    // the layer builds here.
    if let Err(e) = crate::reapi_cache::take_result(
        cache,
        client,
        &key,
        layer.compression().media_type(),
        &result,
        &source,
    ) {
        return farm_failed(&crate::error_chain(&e));
    }
    match cache.get_head(&key)? {
        Ok(head) => {
            let listing = cache.listing(&key, &head)?;
            Ok(Some(LayerRecord {
                desc: head.desc,
                listing,
            }))
        }
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_file_round_trips() {
        let job = LayerJob {
            ops: vec![
                JobOp::File {
                    path: ImagePath::parse_abs("/etc/motd").unwrap(),
                    content: b"hi\n".to_vec(),
                    mode: Some(0o600),
                    owner: Some(Owner { uid: 1, gid: 2 }),
                },
                JobOp::Symlink {
                    path: ImagePath::parse_abs("/l").unwrap(),
                    target: b"/etc/motd".to_vec(),
                    owner: None,
                },
            ],
            epoch: 7,
            compression: strata_layer::Compression::DEFAULT_GZIP,
            limits: strata_layer::Limits::DEFAULT,
        };
        let (file, inputs) = job_file(&job).unwrap();
        assert!(inputs.is_empty());
        let text = serde_json::to_string(&file).unwrap();
        let back: JobFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, file);
        let again = layer_job(&back, Path::new("/nonexistent")).unwrap();
        assert_eq!(format!("{:?}", again.ops), format!("{:?}", job.ops));
        assert_eq!(again.compression, job.compression);
    }

    #[test]
    fn a_job_input_outside_the_root_is_refused() {
        let file = JobFile {
            format: JOB_FORMAT,
            epoch: 0,
            compression: CompressionFile::None,
            max_input_size: 1,
            max_entries: 1,
            ops: vec![OpFile::Copy {
                input: "../../etc/passwd".into(),
                to: ImagePath::parse_abs("/x").unwrap(),
                into_dir: false,
                mode: None,
                owner: None,
                exclude: vec![],
            }],
            lower: vec![],
        };
        assert!(matches!(
            layer_job(&file, Path::new("/tmp")),
            Err(Error::BadSource { .. })
        ));
    }
}
