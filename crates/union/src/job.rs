//! The layer jobs the executor hands to this crate: those whose operations
//! read the content of the layers below (`from-dir`, `run`), which a
//! listing alone cannot answer.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_layer::{BuildOutput, Digest, Listing, Progress, UnionJob, UnionWork};

use crate::Error;
use crate::diff::{DiffOptions, diff_dir};
use crate::model::Model;
use crate::run::RunDirs;

/// One layer below a job: its listing, its blob and its diff_id.
#[derive(Debug, Clone, Copy)]
pub struct Below<'a> {
    pub listing: &'a Listing,
    pub blob: &'a Path,
    pub diff_id: &'a Digest,
}

/// Where `run` steps keep what outlives them, in strata's cache: the
/// layers below unpacked (see `snapshot`), and the directories of cache
/// mounts, by id.
#[derive(Debug, Clone)]
pub struct RunStore {
    pub unpacked: PathBuf,
    pub cache_mounts: PathBuf,
}

/// Builds a `from-dir`, `copy from=` or `run` layer on the layers `below`
/// (bottom first) and writes its blob to `out`. `sources[i]` are the layers
/// of the image that step `i` of a `copy from=` layer copies from (empty
/// for other layers). Without a `store`, each run applies the layers below
/// afresh and its cache mounts start empty.
#[allow(clippy::too_many_arguments)] // the executor's state, passed through once
pub fn build_job(
    job: &UnionJob,
    below: &[Below<'_>],
    sources: &[Vec<Below<'_>>],
    store: Option<&RunStore>,
    out: &mut dyn Write,
    progress: Progress<'_>,
    warn: &dyn Fn(String),
) -> Result<BuildOutput, Error> {
    let lower = || Model::of(below.iter().map(|b| b.listing));
    let entries = match &job.work {
        UnionWork::FromDir { dir, normalize } => diff_dir(
            &lower()?,
            dir,
            if *normalize {
                // A checkout's tree, reproducible whoever builds: modes by
                // their exec bit, owners and xattrs never from the host.
                DiffOptions {
                    exact_modes: false,
                    owners: false,
                    keep_missing_devices: true,
                    xattrs: false,
                }
            } else {
                // As `docker commit` records a container: every mode bit and
                // xattr, and owners when running as root (as a non-root user
                // every file is the user's, which says nothing). Device
                // nodes are never deleted: an unprivileged `rootfs` cannot
                // make them.
                DiffOptions {
                    exact_modes: true,
                    owners: crate::apply::running_as_root(),
                    keep_missing_devices: true,
                    xattrs: true,
                }
            },
        )?,
        UnionWork::Run(steps) => {
            let dirs = RunDirs::new(below, store.map(|s| s.unpacked.as_path()))?;
            if let Some(w) = dirs.single_id_warning() {
                warn(w);
            }
            for step in steps {
                dirs.run(step, store.map(|s| s.cache_mounts.as_path()), sources)?;
            }
            let ids = dirs.ids.is_full().then_some(&dirs.ids);
            let entries = crate::upper::upper_entries(&lower()?, &dirs.upper, ids)?;
            // The upper directory must live until the layer is written.
            return Ok(strata_layer::build_entries(
                &entries,
                job.epoch,
                job.compression,
                out,
                progress,
            )?);
        }
        UnionWork::CopyFrom(steps) => {
            return crate::copy_from::build(job, steps, below, sources, out, progress);
        }
    };
    Ok(strata_layer::build_entries(
        &entries,
        job.epoch,
        job.compression,
        out,
        progress,
    )?)
}
