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

/// Builds a `from-dir` or `run` layer on `below` (the records of every
/// layer below it, bottom first, whose blobs are in `cache`).
#[allow(clippy::too_many_arguments)] // the executor's state, passed through once
pub(crate) fn build(
    plan: &Plan,
    layer: &LayerNode,
    job: &UnionJob,
    below: &[LayerRecord],
    cache: &Cache,
    out: &mut dyn Write,
    progress: strata_layer::Progress<'_>,
    warn: &dyn Fn(String),
) -> Result<BuildOutput, Error> {
    let blobs: Vec<PathBuf> = below
        .iter()
        .map(|r| cache.blob_path(&r.desc.blob))
        .collect();
    let below: Vec<Below<'_>> = below
        .iter()
        .zip(&blobs)
        .map(|(r, blob)| Below {
            listing: &r.listing,
            blob,
            diff_id: &r.desc.diff_id,
        })
        .collect();
    let store = strata_union::RunStore {
        unpacked: cache.unpacked_dir(),
        cache_mounts: cache.cache_mounts_dir(),
    };
    strata_union::build_job(job, &below, Some(&store), out, progress, warn).map_err(|source| {
        match source {
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
            source => Error::UnionLayer {
                layer: layer.qualified_name(),
                source,
            },
        }
    })
}

/// [`Error::Build`] at the `run` step of `layer` whose command is `command`.
fn failed_at(plan: &Plan, layer: &LayerNode, command: &str, what: String, help: String) -> Error {
    let op = layer
        .steps()
        .iter()
        .position(|step| matches!(step, Step::Run(s) if s.command == command));
    let span = op
        .and_then(|i| layer.op_spans.get(i).copied())
        .unwrap_or(layer.span);
    Error::Build(Box::new(
        plan.diagnostic(
            SpecDiagnostic::new(
                format!("layer `{}` of image `{}`: {what}", layer.name, layer.image),
                span,
                "this command",
            )
            .with_help(help),
        ),
    ))
}
