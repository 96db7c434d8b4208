//! The layer jobs the executor hands to this crate: those whose operations
//! read the content of the layers below (`from-dir`, `run`), which a
//! listing alone cannot answer.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_layer::{BuildOutput, Digest, JobOp, LayerJob, Listing, Progress, RunStep};

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

/// Whether `job` must be built by [`build_job`] rather than `strata_layer::build`.
pub fn is_union_job(job: &LayerJob) -> bool {
    job.ops.iter().any(JobOp::reads_lower_content)
}

/// Builds a `from-dir` or `run` layer on the layers `below` (bottom first)
/// and writes its blob to `out`. A job holds one `from-dir`, or only `run`
/// steps (the spec refuses anything else). Without a `store`, each run
/// applies the layers below afresh and its cache mounts start empty.
pub fn build_job(
    job: &LayerJob,
    below: &[Below<'_>],
    store: Option<&RunStore>,
    out: &mut dyn Write,
    progress: Progress<'_>,
    warn: &dyn Fn(String),
) -> Result<BuildOutput, Error> {
    let lower = Model::of(below.iter().map(|b| b.listing))?;
    let entries = match job.ops.as_slice() {
        [JobOp::FromDir { dir, normalize }] => diff_dir(
            &lower,
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
        ops => {
            let steps: Vec<&RunStep> = ops
                .iter()
                .map(|op| match op {
                    JobOp::Run(step) => Ok(step),
                    _ => Err(Error::BadJob(
                        "a layer with `run` steps holds nothing else, and `from-dir` is alone in its layer"
                            .to_owned(),
                    )),
                })
                .collect::<Result<_, _>>()?;
            let dirs = RunDirs::new(below, store.map(|s| s.unpacked.as_path()))?;
            if let Some(w) = dirs.single_id_warning() {
                warn(w);
            }
            for step in steps {
                dirs.run(step, store.map(|s| s.cache_mounts.as_path()))?;
            }
            let ids = dirs.ids.is_full().then_some(&dirs.ids);
            let entries = crate::upper::upper_entries(&lower, &dirs.upper, ids)?;
            // The upper directory must live until the layer is written.
            return Ok(strata_layer::build_entries(
                &entries,
                job.epoch,
                job.compression,
                out,
                progress,
            )?);
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
