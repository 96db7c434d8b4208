//! The layers the executor hands to `strata-union`: `from-dir` and `run`,
//! which need the content of the layers below (their listings and blobs in
//! the cache), not only the union view of their paths.

use std::io::Write;
use std::path::PathBuf;

use strata_cache::{Cache, LayerRecord};
use strata_layer::{BuildOutput, UnionJob};
use strata_plan::{LayerNode, Plan, Step};
use strata_spec::SpecDiagnostic;
use strata_union::Below;

use crate::Error;

/// Builds a `from-dir`, `run` or `copy from=` layer on `below` (the records
/// of every layer below it, bottom first, whose blobs are in `cache`);
/// `sources` are the records of the images a `copy from=` layer reads.
#[allow(clippy::too_many_arguments)] // the executor's state, passed through once
pub(crate) fn build(
    plan: &Plan,
    layer: &LayerNode,
    job: &UnionJob,
    below: &[LayerRecord],
    sources: &[Vec<LayerRecord>],
    cache: &Cache,
    out: &mut dyn Write,
    progress: strata_layer::Progress<'_>,
    warn: &dyn Fn(String),
) -> Result<BuildOutput, Error> {
    let blobs_of = |records: &[LayerRecord]| -> Vec<PathBuf> {
        records
            .iter()
            .map(|r| cache.blob_path(&r.desc.blob))
            .collect()
    };
    let blobs = blobs_of(below);
    let below = belows(below, &blobs);
    let source_blobs: Vec<Vec<PathBuf>> = sources.iter().map(|s| blobs_of(s)).collect();
    let sources: Vec<Vec<Below<'_>>> = sources
        .iter()
        .zip(&source_blobs)
        .map(|(records, blobs)| belows(records, blobs))
        .collect();
    let store = strata_union::RunStore {
        unpacked: cache.unpacked_dir(),
        cache_mounts: cache.cache_mounts_dir(),
    };
    strata_union::build_job(job, &below, &sources, Some(&store), out, progress, warn).map_err(
        |source| match source {
            // A failing command, or no shell to run it with, is a failed
            // build (not an invalid spec), pointed at the command.
            strata_union::Error::RunFailed {
                command,
                status,
                output,
            } => failed_at(
                plan,
                layer,
                &command,
                format!("the command failed ({status})"),
                format!("its output ends with:\n{}", output.trim_end()),
            ),
            strata_union::Error::NoShell { command } => failed_at(
                plan,
                layer,
                &command,
                "the layers below have no /bin/sh to run the command with".to_owned(),
                "a `run` step runs `/bin/sh -c COMMAND`: build on an image that has a shell"
                    .to_owned(),
            ),
            // A path the source image lacks: pointed at its `copy`.
            strata_union::Error::CopyFrom { image, src, reason } => {
                let op = layer.steps().iter().position(|step| {
                    matches!(step, Step::CopyFrom(s) if s.image == image && s.src.display() == src)
                });
                located(
                    plan,
                    layer,
                    op,
                    format!("cannot copy {src} from image `{image}`: {reason}"),
                    "this copy",
                    format!("the path is looked up in `{image}` as its layers make it, symlinks followed inside it; `strata ls` lists what an image holds"),
                )
            }
            source => Error::UnionLayer {
                layer: layer.qualified_name(),
                source,
            },
        },
    )
}

/// The views of `records` whose blobs are `blobs`.
fn belows<'a>(records: &'a [LayerRecord], blobs: &'a [PathBuf]) -> Vec<Below<'a>> {
    records
        .iter()
        .zip(blobs)
        .map(|(r, blob)| Below {
            listing: &r.listing,
            blob,
            diff_id: &r.desc.diff_id,
        })
        .collect()
}

/// [`Error::Build`] at the `run` step of `layer` whose command is `command`.
fn failed_at(plan: &Plan, layer: &LayerNode, command: &str, what: String, help: String) -> Error {
    let op = layer
        .steps()
        .iter()
        .position(|step| matches!(step, Step::Run(s) if s.command == command));
    located(plan, layer, op, what, "this command", help)
}

/// [`Error::Build`] at step `op` of `layer` (at the layer when `None`).
fn located(
    plan: &Plan,
    layer: &LayerNode,
    op: Option<usize>,
    what: String,
    label: &str,
    help: String,
) -> Error {
    let span = op
        .and_then(|i| layer.op_spans.get(i).copied())
        .unwrap_or(layer.span);
    Error::Build(Box::new(
        plan.diagnostic(
            SpecDiagnostic::new(
                format!("layer `{}` of image `{}`: {what}", layer.name, layer.image),
                span,
                label,
            )
            .with_help(help),
        ),
    ))
}
