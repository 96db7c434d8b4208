//! The executor: plan -> layers (parallel, cached) -> export.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use strata_cache::{Cache, LayerRecord, Miss};
use strata_export::{ExportImage, LayerDesc};
use strata_layer::MediaType;
use strata_layer::listing::LowerView;
use strata_plan::{LayerNode, Plan, PlanOptions};
use strata_spec::SpecDiagnostic;

use crate::report::{CacheStatus, ComposeReport, ImageReport, LayerReport};
use crate::{Error, Event};

/// How to compose.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// The OCI image layout directory to write (replaced as a whole on success).
    pub out: PathBuf,
    /// Also write a docker-archive (`docker load` / `podman load`) here.
    pub docker_archive: Option<PathBuf>,
    /// Layers built at once; default: the number of cores.
    pub jobs: Option<usize>,
    /// The cache directory; default [`Cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`, which overrides the spec's `epoch`. The caller reads
    /// the environment, so that the library's output depends only on its arguments.
    pub source_date_epoch: Option<u64>,
}

/// Read and plan a spec.
pub fn plan_spec(spec_path: &Path, opts: &PlanOptions) -> Result<Plan, Error> {
    let spec = strata_spec::read(spec_path)?;
    strata_plan::plan(&spec, spec_path, opts).map_err(|d| Error::Spec(Box::new(d)))
}

/// One layer, ready for export.
#[derive(Debug, Clone)]
struct Ready {
    record: LayerRecord,
    cache: CacheStatus,
    miss_reason: Option<String>,
}

/// Compose every image of a spec. See the crate docs.
pub fn compose(
    spec_path: &Path,
    opts: &ComposeOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<ComposeReport, Error> {
    let started = Instant::now();
    let plan = plan_spec(
        spec_path,
        &PlanOptions {
            source_date_epoch: opts.source_date_epoch,
        },
    )?;
    on_event(Event::Planned {
        layers: plan.layers.iter().map(LayerNode::qualified_name).collect(),
        images: plan.images.len(),
    });
    let cache = Cache::open(opts.cache_dir.clone().unwrap_or_else(Cache::default_dir))?;

    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(jobs) = opts.jobs {
        pool = pool.num_threads(jobs.max(1));
    }
    let pool = pool
        .build()
        .map_err(|e| Error::Other(format!("cannot start worker threads: {e}")))?;
    let ready = pool.install(|| build_all(&plan, &cache, on_event))?;

    let images: Vec<ExportImage> = plan
        .images
        .iter()
        .map(|img| ExportImage {
            name: img.name.clone(),
            tag: img.tag.clone(),
            config: img.config.clone(),
            annotations: img.annotations.clone(),
            layers: img
                .layers
                .iter()
                .map(|&id| {
                    let r = &ready[id.0].record;
                    let node = plan.layer(id);
                    LayerDesc {
                        digest: r.blob,
                        diff_id: r.diff_id,
                        size: r.size,
                        media_type: MediaType::parse(&r.media_type).unwrap_or(MediaType::TarGzip),
                        blob_path: cache.blob_path(&r.blob),
                        created_by: format!("strata: layer {}", node.name),
                    }
                })
                .collect(),
        })
        .collect();
    on_event(Event::Exporting {
        out: opts.out.clone(),
    });
    let exported = strata_export::write_layout(&opts.out, &images)?;
    if let Some(archive) = &opts.docker_archive {
        strata_export::write_docker_archive(archive, &images)?;
    }

    let images = plan
        .images
        .iter()
        .zip(exported)
        .map(|(img, ex)| ImageReport {
            name: img.name.clone(),
            tag: img.tag.clone(),
            manifest: ex.manifest.to_string(),
            config: ex.config.to_string(),
            layers: img
                .layers
                .iter()
                .map(|&id| {
                    let r = &ready[id.0];
                    LayerReport {
                        name: plan.layer(id).qualified_name(),
                        diff_id: r.record.diff_id.to_string(),
                        digest: r.record.blob.to_string(),
                        size: r.record.size,
                        media_type: r.record.media_type.clone(),
                        cache: r.cache.clone(),
                        miss_reason: r.miss_reason.clone(),
                    }
                })
                .collect(),
        })
        .collect();
    Ok(ComposeReport {
        spec: spec_path.to_path_buf(),
        out: opts.out.clone(),
        docker_archive: opts.docker_archive.clone(),
        images,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Build (or fetch from the cache) every layer of the plan. Layers run in
/// waves: each wave is every layer whose dependencies are ready, built in
/// parallel. Independent layers all land in the first wave.
fn build_all(
    plan: &Plan,
    cache: &Cache,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Ready>, Error> {
    let done: Mutex<Vec<Option<Ready>>> = Mutex::new(vec![None; plan.layers.len()]);
    loop {
        let wave: Vec<&LayerNode> = {
            let done = done
                .lock()
                .map_err(|_| Error::Other("a worker thread panicked".into()))?;
            plan.layers
                .iter()
                .filter(|l| done[l.id.0].is_none() && l.deps().iter().all(|d| done[d.0].is_some()))
                .collect()
        };
        if wave.is_empty() {
            break;
        }
        let results: Vec<Result<(usize, Ready), Error>> = wave
            .par_iter()
            .map(|layer| {
                let lower = {
                    let done = done
                        .lock()
                        .map_err(|_| Error::Other("a worker thread panicked".into()))?;
                    let mut view = LowerView::new();
                    for d in layer.deps() {
                        if let Some(r) = &done[d.0] {
                            view.apply(&r.record.listing);
                        }
                    }
                    view
                };
                build_one(plan, layer, &lower, cache, on_event).map(|r| (layer.id.0, r))
            })
            .collect();
        let mut errors = Vec::new();
        {
            let mut done = done
                .lock()
                .map_err(|_| Error::Other("a worker thread panicked".into()))?;
            for r in results {
                match r {
                    Ok((i, ready)) => done[i] = Some(ready),
                    Err(e) => errors.push(e),
                }
            }
        }
        if !errors.is_empty() {
            return Err(merge_errors(errors));
        }
    }
    let done = done
        .into_inner()
        .map_err(|_| Error::Other("a worker thread panicked".into()))?;
    done.into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                Error::Other(format!(
                    "layer {} was never built",
                    plan.layers[i].qualified_name()
                ))
            })
        })
        .collect()
}

/// Several spec diagnostics become one report; otherwise the first error wins.
fn merge_errors(errors: Vec<Error>) -> Error {
    let mut diags: Option<Box<strata_spec::Diagnostics>> = None;
    let mut other = None;
    for e in errors {
        match e {
            Error::Spec(d) => match &mut diags {
                Some(all) => all.items.extend(d.items),
                None => diags = Some(d),
            },
            e => {
                other.get_or_insert(e);
            }
        }
    }
    match (diags, other) {
        (Some(d), _) => Error::Spec(d),
        (None, Some(e)) => e,
        (None, None) => Error::Other("no error".into()),
    }
}

fn build_one(
    plan: &Plan,
    layer: &LayerNode,
    lower: &LowerView,
    cache: &Cache,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Ready, Error> {
    let index = layer.id.0;
    let name = layer.qualified_name();
    let key = layer.key.hex();
    let miss_reason = match cache.get(&key)? {
        Ok(record) => {
            on_event(Event::LayerDone {
                index,
                name,
                cache: CacheStatus::Hit,
                size: record.size,
            });
            return Ok(Ready {
                record,
                cache: CacheStatus::Hit,
                miss_reason: None,
            });
        }
        Err(Miss::Absent) => None,
        Err(Miss::Dropped(reason)) => {
            on_event(Event::Warning(format!(
                "layer {name}: dropped a bad cache entry and rebuilt it: {reason}"
            )));
            Some(reason)
        }
    };
    on_event(Event::LayerStarted {
        index,
        name: name.clone(),
    });
    let mut blob = cache.new_blob()?;
    let progress = |bytes: u64| on_event(Event::LayerProgress { index, bytes });
    let out = strata_layer::build(&layer.job, lower, &mut blob, &progress).map_err(|e| match e {
        strata_layer::Error::DeleteMissing { op, path } => {
            let span = layer.op_spans.get(op).copied().unwrap_or(layer.span);
            Error::Spec(Box::new(plan.diagnostic(
                SpecDiagnostic::new(
                    format!("cannot delete {path}: no layer below `{}` in image `{}` has it", layer.name, layer.image),
                    span,
                    "nothing to delete",
                )
                .with_help("`delete` records a whiteout for a path of a lower layer; check the path"),
            )))
        }
        source => Error::Layer { layer: name.clone(), source },
    })?;
    let record = LayerRecord {
        diff_id: out.diff_id,
        blob: out.blob,
        size: out.size,
        media_type: out.media_type.as_str().to_owned(),
        listing: out.listing,
    };
    cache.put(&key, &record, blob)?;
    on_event(Event::LayerDone {
        index,
        name,
        cache: CacheStatus::Miss,
        size: record.size,
    });
    Ok(Ready {
        record,
        cache: CacheStatus::Miss,
        miss_reason,
    })
}
