//! The executor: plan -> layers (parallel, cached) -> export.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use strata_cache::{Cache, InputIndex, LastBuild, LayerRecord, Miss};
use strata_export::{ExportImage, LayerDesc};
use strata_layer::LowerView;
use strata_plan::{Build, DigestMemo, LayerNode, Plan, PlanOptions};
use strata_spec::SpecDiagnostic;

use crate::report::{CacheStatus, ComposeReport, ImageReport, LayerReport, RemoteStatus};
use crate::{Error, Event};

/// How to compose.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// The OCI image layout directory to write (replaced as a whole on
    /// success; left untouched when it already holds exactly that layout).
    pub out: PathBuf,
    /// Also write a docker-archive (`docker load` / `podman load`) here.
    pub docker_archive: Option<PathBuf>,
    /// Also write the layout as an OCI archive (a tar of the layout) here.
    pub oci_archive: Option<PathBuf>,
    /// Store an SPDX 2.3 SBOM of each image in the layout, as an artifact
    /// that refers to the image (the images themselves do not change).
    pub sbom: bool,
    /// `org.opencontainers.image.source` on every image, over the spec's.
    pub source: Option<String>,
    /// `org.opencontainers.image.revision` on every image, over the spec's.
    pub revision: Option<String>,
    /// Layers built at once; default: the number of cores.
    pub jobs: Option<usize>,
    /// The cache directory; default [`Cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`, which overrides the spec's `epoch`. The caller reads
    /// the environment, so that the library's output depends only on its arguments.
    pub source_date_epoch: Option<u64>,
    /// Leave [`LayerReport::listing`](crate::LayerReport) empty for cache hits
    /// whose listing no layer above needed: a hit then reads only the small
    /// head of its record (a 50,000-file listing is 10 MB of JSON). For
    /// callers that do not use the listings, such as a plain `strata compose`.
    pub lazy_listings: bool,
    /// Speak plain HTTP to registries (external bases, `--cache-from`).
    pub insecure: bool,
    /// A registry repository (`docker://HOST/REPO`) to fetch layers missing
    /// from the local cache from, before building.
    pub cache_from: Option<String>,
    /// A registry repository to push every layer to after composing.
    pub cache_to: Option<String>,
    /// A Remote Execution API server whose action cache and CAS hold
    /// layers (`--remote-cache grpc://HOST:PORT`): read before building,
    /// written after. See [`crate::reapi_cache`].
    pub remote_cache: Option<strata_reapi::Options>,
    /// A Remote Execution API server whose workers build the layers the
    /// caches miss (`--remote-exec grpc://HOST:PORT`); also the remote
    /// cache when `remote_cache` is not given. See [`crate::remote_exec`].
    pub remote_exec: Option<strata_reapi::Options>,
    /// Manifest digests for external bases named by tag (from a lock).
    pub base_pins: std::collections::BTreeMap<String, strata_layer::Digest>,
    /// `--arg NAME=VALUE`: values of the spec's build arguments (`arg`),
    /// over their defaults. A name the spec does not declare is an error.
    pub args: std::collections::BTreeMap<String, String>,
    /// How `packages` layers are resolved (`--mirror`).
    pub packages: crate::packages::PackageOptions,
}

/// Read and plan a spec.
pub fn plan_spec(spec_path: &Path, opts: &PlanOptions) -> Result<Plan, Error> {
    let mut opts = opts.clone();
    let spec = read_spec(spec_path, &mut opts.args)?;
    strata_plan::plan(&spec, spec_path, &opts).map_err(|d| Error::Spec(Box::new(d)))
}

/// Read a spec and substitute its build arguments: `args` holds the values
/// given (`--arg`) on the way in, and every declared argument's value on the
/// way out.
pub(crate) fn read_spec(
    spec_path: &Path,
    args: &mut std::collections::BTreeMap<String, String>,
) -> Result<strata_spec::Spec, Error> {
    let spec = strata_spec::read(spec_path)?;
    let (spec, values) = strata_spec::apply_args(&spec, args)?;
    *args = values;
    Ok(spec)
}

fn blake3_hex(d: &[u8; 32]) -> String {
    blake3::Hash::from(*d).to_hex().to_string()
}

/// The cache's input index as the planner's digest memo.
struct MemoIndex(InputIndex);

impl DigestMemo for MemoIndex {
    fn get(&self, path: &Path, meta: &std::fs::Metadata) -> Option<[u8; 32]> {
        self.0.get(path, meta)
    }
    fn get_in(
        &self,
        dir: &Path,
        name: &std::ffi::OsStr,
        meta: &std::fs::Metadata,
    ) -> Option<[u8; 32]> {
        self.0.get_in(dir, name, meta)
    }
    fn put(&self, path: &Path, meta: &std::fs::Metadata, digest: [u8; 32]) {
        self.0.put(path, meta, digest);
    }
    fn knows_dir(&self, dir: &Path) -> bool {
        self.0.knows_dir(dir)
    }
}

/// One layer, ready for export.
#[derive(Debug, Clone)]
struct Ready {
    record: LayerRecord,
    cache: CacheStatus,
    miss_reason: Option<String>,
    /// Whether its key differs from the last build of this layer (or it
    /// has none): what a layer above that reads it names when its own
    /// `below` key part changed.
    changed: bool,
    /// What the remote cache (`--remote-cache`) gave for it.
    remote: Option<RemoteStatus>,
    /// The cache key whose record holds the listing, while `record.listing`
    /// is not loaded yet (a hit read with [`Cache::get_head`]).
    listing_pending: Option<String>,
}

impl Ready {
    /// Load the record's listing if it was left in the cache.
    fn load_listing(&mut self, cache: &Cache) -> Result<(), Error> {
        if let Some(key) = self.listing_pending.take() {
            self.record.listing = cache.listing(&key, &self.record)?;
        }
        Ok(())
    }
}

/// Compose every image of a spec. See the crate docs.
///
/// The stages, in order: **plan** the spec (external bases resolved and
/// their manifests fetched), **pull** layers a remote cache has
/// (`--cache-from`), **build** every layer the cache lacks, **export** the
/// images, **publish** the layers to a remote cache (`--cache-to`), and
/// **report**. Every stage after the build reads one join of the plan's
/// layers and their cache records ([`Built`]).
pub fn compose(
    spec_path: &Path,
    opts: &ComposeOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<ComposeReport, Error> {
    let started = Instant::now();
    let remotes = Remotes::of(opts)?;
    let cache = Cache::open(opts.cache_dir.clone().unwrap_or_else(Cache::default_dir))?;
    // Held until the compose is done, so `strata cache gc` never removes a blob in use.
    let _lock = cache.lock_shared()?;
    let plan = plan_stage(spec_path, opts, &cache, on_event)?;
    let (pulled, remote) = pull_stage(&plan, &cache, &remotes, opts, on_event)?;
    if let (Some(c), Some(x)) = (&remotes.reapi, &remotes.exec) {
        // One server found down is one warning, not one per service.
        if c.is_down() && c.client().url() == x.url() {
            x.mark_down();
        }
    }
    // An SBOM lists every file of every layer, and a record pushed to a
    // remote cache carries its listing (the REAPI cache loads those it
    // pushes itself: a warm compose pushes none).
    let listings = !opts.lazy_listings || opts.sbom || remotes.cache_to.is_some();
    let ready = build_stage(&plan, &cache, opts, listings, &remote, &remotes, on_event)?;
    let built = Built { plan, ready };
    let exported = export_stage(&built, &cache, opts, on_event)?;
    let pushed = publish_stage(&built, &cache, &remotes, opts, on_event)?;
    Ok(report_stage(
        spec_path, opts, built, exported, pulled, pushed, started,
    ))
}

/// The remote layer caches a compose reads and writes.
struct Remotes {
    cache_from: Option<strata_registry::Reference>,
    cache_to: Option<strata_registry::Reference>,
    reapi: Option<crate::reapi_cache::RemoteCache>,
    exec: Option<crate::remote_exec::RemoteExec>,
}

impl Remotes {
    fn of(opts: &ComposeOptions) -> Result<Remotes, Error> {
        let parse = |r: &Option<String>| {
            r.as_deref()
                .map(crate::remote_cache::parse_repo)
                .transpose()
        };
        Ok(Remotes {
            cache_from: parse(&opts.cache_from)?,
            cache_to: parse(&opts.cache_to)?,
            reapi: opts
                .remote_cache
                .as_ref()
                .or(opts.remote_exec.as_ref())
                .map(crate::reapi_cache::RemoteCache::connect)
                .transpose()?,
            exec: opts
                .remote_exec
                .as_ref()
                .map(crate::remote_exec::RemoteExec::connect)
                .transpose()?,
        })
    }

    fn registry(opts: &ComposeOptions) -> Result<strata_registry::Registry, Error> {
        Ok(strata_registry::Registry::new(&strata_registry::Options {
            insecure: opts.insecure,
        })?)
    }
}

/// The plan, with the inputs' digests remembered in the cache's index.
fn plan_stage(
    spec_path: &Path,
    opts: &ComposeOptions,
    cache: &Cache,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Plan, Error> {
    let index = Arc::new(MemoIndex(InputIndex::load(cache.root())));
    if let Some(path) = index.0.damaged() {
        on_event(Event::Warning(format!(
            "the input index {} is damaged and was ignored: every input is hashed again, and the index rewritten",
            path.display()
        )));
    }
    let plan = crate::base::plan_spec_with_bases(
        spec_path,
        PlanOptions {
            source_date_epoch: opts.source_date_epoch,
            memo: Some(index.clone()),
            args: opts.args.clone(),
            ..Default::default()
        },
        Some(cache),
        &crate::base::BaseOptions {
            insecure: opts.insecure,
            pins: opts.base_pins.clone(),
            packages: opts.packages.clone(),
        },
    )?;
    if let Err(e) = index.0.save() {
        on_event(Event::Warning(format!("cannot save the input index: {e}")));
    }
    on_event(Event::Planned {
        layers: plan.layers.iter().map(LayerNode::qualified_name).collect(),
        images: plan.images.len(),
    });
    Ok(plan)
}

/// `--cache-from`, `--remote-cache`: the layers the remote caches hold,
/// fetched into the local cache so that the build finds them there. How
/// many (`None` without a remote cache), and per layer key what the
/// `--remote-cache` server said.
fn pull_stage(
    plan: &Plan,
    cache: &Cache,
    remotes: &Remotes,
    opts: &ComposeOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(Option<usize>, RemoteStatuses), Error> {
    let mut fetched = None;
    let mut statuses = RemoteStatuses::new();
    if let Some(remote) = &remotes.reapi {
        statuses = crate::reapi_cache::pull(plan, cache, remote, on_event)?;
        let hits = statuses.values().filter(|s| **s == RemoteStatus::Hit);
        fetched = Some(hits.count());
    }
    if let Some(repo) = &remotes.cache_from {
        let registry = Remotes::registry(opts)?;
        let n = crate::remote_cache::pull(plan, cache, &registry, repo, on_event)?;
        fetched = Some(fetched.unwrap_or(0) + n);
    }
    Ok((fetched, statuses))
}

/// What the `--remote-cache` server said, by layer key.
type RemoteStatuses = std::collections::BTreeMap<String, RemoteStatus>;

/// The plan joined with a ready record for each of its layers (by
/// `LayerId`): what export, publish and report all read.
struct Built {
    plan: Plan,
    ready: Vec<Ready>,
}

impl Built {
    /// The layers of `image`, bottom first, with their records.
    fn layers<'a>(
        &'a self,
        image: &'a strata_plan::ImageNode,
    ) -> impl Iterator<Item = (&'a LayerNode, &'a Ready)> + 'a {
        image
            .layers
            .iter()
            .map(|&id| (self.plan.layer(id), &self.ready[id.0]))
    }
}

/// Every layer built, or found in the cache, on a pool of `--jobs` threads.
fn build_stage(
    plan: &Plan,
    cache: &Cache,
    opts: &ComposeOptions,
    listings: bool,
    remote: &RemoteStatuses,
    remotes: &Remotes,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Ready>, Error> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(jobs) = opts.jobs {
        pool = pool.num_threads(jobs.max(1));
    }
    let pool = pool
        .build()
        .map_err(|e| Error::Workers(format!("cannot start them: {e}")))?;
    let exec = remotes.exec.as_ref();
    let mut ready = pool.install(|| build_all(plan, cache, remote, exec, on_event))?;
    if listings {
        for r in &mut ready {
            r.load_listing(cache)?;
        }
    }
    Ok(ready)
}

/// What the export wrote.
struct Exported {
    layout_unchanged: bool,
    /// Per image: its manifest and config digests.
    images: Vec<strata_export::ExportedImage>,
    sboms: Vec<Option<strata_layer::Digest>>,
    indexes: Vec<crate::report::IndexReport>,
}

/// The OCI layout (and the archives asked for) of every image.
fn export_stage(
    built: &Built,
    cache: &Cache,
    opts: &ComposeOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Exported, Error> {
    let plan = &built.plan;
    let mut images: Vec<ExportImage> = Vec::with_capacity(plan.images.len());
    for img in &plan.images {
        let layers = built
            .layers(img)
            .map(|(node, r)| LayerDesc {
                desc: r.record.desc,
                blob_path: cache.blob_path(&r.record.desc.blob),
                created_by: strata_layer::history::created_by(&node.name),
                // A miss was hashed as the builder wrote it; a hit was
                // checked by `Cache::get_head` (see its stamp rule).
                verified: true,
            })
            .collect();
        images.push(ExportImage {
            name: img.name.clone(),
            tag: img.tag.clone(),
            config: img.config.clone(),
            annotations: crate::annotate::annotations(img, opts)?,
            layers,
        });
    }
    on_event(Event::Exporting {
        out: opts.out.clone(),
    });
    let extras =
        crate::outputs::layout_extras(plan, &images, opts, |id| &built.ready[id.0].record.listing)?;
    let written = strata_export::write_layout_with(&opts.out, &images, &extras)?;
    on_event(Event::LayoutDone {
        out: opts.out.clone(),
        unchanged: written.unchanged,
    });
    if let Some(archive) = &opts.docker_archive {
        strata_export::write_docker_archive(archive, &images)?;
    }
    crate::outputs::write_oci_archive(opts, &images)?;
    Ok(Exported {
        layout_unchanged: written.unchanged,
        sboms: crate::outputs::sbom_digests(&extras, &written),
        indexes: crate::report::index_reports(plan, &written),
        images: written.images,
    })
}

/// `--cache-to`: every layer the spec builds, shared through the registry.
/// The images are built and exported by now: a cache that cannot take them
/// is worth a warning, not a failed compose (as with `--cache-from`).
fn publish_stage(
    built: &Built,
    cache: &Cache,
    remotes: &Remotes,
    opts: &ComposeOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Option<usize>, Error> {
    let mut pushed = None;
    if let Some(remote) = &remotes.reapi {
        // A layer built here is written; one from the local cache only if
        // the server lacks one of its blobs (unless it was seen to hold it
        // lately: a warm compose asks nothing); one the server gave, never.
        let mut owned: Vec<(String, LayerRecord, bool)> = Vec::new();
        for (l, r) in built
            .plan
            .layers
            .iter()
            .filter(|l| l.external().is_none())
            .map(|l| (l, &built.ready[l.id.0]))
            .filter(|(_, r)| r.remote != Some(RemoteStatus::Hit))
        {
            let key = l.key.hex();
            let fresh = r.cache == CacheStatus::Miss;
            if !fresh && remote.known_held(cache, &key) {
                continue;
            }
            let mut r = r.clone();
            r.load_listing(cache)?;
            owned.push((key, r.record, fresh));
        }
        let layers: Vec<(String, &LayerRecord, bool)> =
            owned.iter().map(|(k, r, f)| (k.clone(), r, *f)).collect();
        pushed = Some(if layers.is_empty() {
            0
        } else {
            crate::reapi_cache::push(&layers, cache, remote, on_event)
        });
    }
    let Some(repo) = &remotes.cache_to else {
        return Ok(pushed);
    };
    let registry = Remotes::registry(opts)?;
    let layers: Vec<(String, &LayerRecord)> = built
        .plan
        .layers
        .iter()
        .filter(|l| l.external().is_none())
        .map(|l| (l.key.hex(), &built.ready[l.id.0].record))
        .collect();
    match crate::remote_cache::push(&layers, cache, &registry, repo) {
        Ok(n) => Ok(Some(n)),
        Err(e) => {
            on_event(Event::Warning(format!(
                "remote cache: could not push to {repo}: {e}"
            )));
            Ok(None)
        }
    }
}

/// The report: per image and layer, from the same join the export read.
fn report_stage(
    spec_path: &Path,
    opts: &ComposeOptions,
    mut built: Built,
    exported: Exported,
    remote_cache_fetched: Option<usize>,
    remote_cache_pushed: Option<usize>,
    started: Instant,
) -> ComposeReport {
    // Each layer's listing moves into the report, shared by every image on
    // the layer: never copied (it was once per image, so a 10,000-file base
    // under 200 images was held 200 times).
    let listings: Vec<Arc<strata_layer::Listing>> = built
        .ready
        .iter_mut()
        .map(|r| Arc::new(std::mem::take(&mut r.record.listing)))
        .collect();
    let built = &built;
    let plan = &built.plan;
    let images = plan
        .images
        .iter()
        .zip(exported.images)
        .zip(exported.sboms)
        .map(|((img, ex), sbom)| ImageReport {
            sbom,
            name: img.name.clone(),
            tag: img.tag.clone(),
            manifest: ex.manifest,
            config: ex.config,
            layers: built
                .layers(img)
                .map(|(node, r)| LayerReport {
                    name: node.qualified_name(),
                    desc: r.record.desc,
                    cache: r.cache.clone(),
                    remote: r.remote,
                    miss_reason: r.miss_reason.clone(),
                    key: node.key.hex(),
                    compression: node.compression().identity(),
                    listing: Arc::clone(&listings[node.id.0]),
                })
                .collect(),
        })
        .collect();
    ComposeReport {
        packages: plan.packages.clone(),
        spec: spec_path.to_path_buf(),
        out: opts.out.clone(),
        layout_unchanged: exported.layout_unchanged,
        docker_archive: opts.docker_archive.clone(),
        oci_archive: opts.oci_archive.clone(),
        indexes: exported.indexes,
        images,
        bases: plan
            .bases
            .iter()
            .map(|(from, b)| crate::report::BaseReport {
                from: from.clone(),
                source: b.source.clone(),
                manifest: b.manifest,
            })
            .collect(),
        args: plan.args.clone(),
        remote_cache_fetched,
        remote_cache_pushed,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// The memo key of the view of a stack of layers: its diff_ids, bottom
/// first (a listing is a function of its layer's tar, so equal diff_ids
/// give an equal view).
fn view_memo_key<'a>(diff_ids: impl Iterator<Item = &'a strata_layer::Digest>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"strata lower view v1\n");
    for d in diff_ids {
        h.update(d.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// What a layer that is built gets from the layers below it.
#[derive(Default)]
struct Gathered {
    /// The view of the image below it (empty unless it reads below).
    lower: LowerView,
    /// The records of every layer below, bottom first, for `from-dir` and `run`.
    below: Vec<LayerRecord>,
    /// For `copy from=`: the records of the layers of each image it copies
    /// from, bottom first, one list per step.
    sources: Vec<Vec<LayerRecord>>,
    /// The layers below whose keys changed since their last build.
    changed_below: Vec<String>,
}

/// Names the layers below behind a changed `below` key part: those whose
/// key changed since their last build ("changed below: base/app"), the top
/// few of a deep stack. When none did (a stack put back as it once was),
/// the part stays as it is.
/// At most this many changes are named in a miss's reason, then how many
/// more: a `packages` layer whose set changed has hundreds (each package
/// is a key part, and one more shifts the numbers of those after it).
const NAMED_CHANGES: usize = 10;

fn capped(changes: Vec<String>) -> String {
    if changes.len() <= NAMED_CHANGES {
        return changes.join("; ");
    }
    format!(
        "{}; and {} more",
        changes[..NAMED_CHANGES].join("; "),
        changes.len() - NAMED_CHANGES
    )
}

fn name_changed_below(changes: Vec<String>, changed_below: &[String]) -> Vec<String> {
    const NAMED: usize = 8;
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        if c != "changed below" || changed_below.is_empty() {
            out.push(c);
            continue;
        }
        let skip = changed_below.len().saturating_sub(NAMED);
        out.extend(
            changed_below[skip..]
                .iter()
                .map(|n| format!("changed below: {n}")),
        );
        if skip > 0 {
            out.push(format!("changed below: {skip} more layers under those"));
        }
    }
    out
}

/// Build (or fetch from the cache) every layer of the plan. Layers run in
/// waves: each wave is every layer whose dependencies are ready, built in
/// parallel. Independent layers all land in the first wave.
fn build_all(
    plan: &Plan,
    cache: &Cache,
    remote: &RemoteStatuses,
    exec: Option<&crate::remote_exec::RemoteExec>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Ready>, Error> {
    let done: Mutex<Vec<Option<Ready>>> = Mutex::new(vec![None; plan.layers.len()]);
    loop {
        let wave: Vec<&LayerNode> = {
            let done = done
                .lock()
                .map_err(|_| Error::Workers("one panicked".into()))?;
            plan.layers
                .iter()
                .filter(|l| done[l.id.0].is_none() && l.deps().iter().all(|d| done[d.0].is_some()))
                .collect()
        };
        if wave.is_empty() {
            break;
        }
        // One runner per pool thread, never a layer per stolen job (see `runners`).
        let results: Vec<Result<(usize, Ready), Error>> =
            crate::runners::each(&wave, |layer: &&LayerNode| {
                // What the layers below give it, gathered only when it is
                // built: a hit needs none of it, so a warm compose of a deep
                // stack does not fold every lower listing once per layer.
                // `rebuilt`: the layer was built before under another key.
                let gather = |rebuilt: bool| -> Result<Gathered, Error> {
                    let mut done = done
                        .lock()
                        .map_err(|_| Error::Workers("one panicked".into()))?;
                    let mut g = Gathered::default();
                    if layer.reads_below {
                        // `from-dir` and `run` read the layers' contents, not only the view.
                        // So do owners by name, which read /etc/passwd and /etc/group.
                        let records =
                            matches!(layer.build, Build::Union(_)) || !layer.owner_names.is_empty();
                        // The view of an unchanged stack is a memo: a layer
                        // rebuilt over it parses none of the lower listings.
                        let below = plan.below(layer.id);
                        let memo = view_memo_key(
                            below
                                .iter()
                                .filter_map(|d| done[d.0].as_ref())
                                .map(|r| &r.record.desc.diff_id),
                        );
                        let memoized = (!records)
                            .then(|| cache.memo(&memo).and_then(|b| LowerView::decode(&b)))
                            .flatten();
                        let fold = memoized.is_none();
                        g.lower = memoized.unwrap_or_default();
                        // Every layer below is ready: its deps waited for them.
                        for d in below {
                            if let Some(r) = &mut done[d.0] {
                                if fold {
                                    r.load_listing(cache)?;
                                    g.lower.apply(&r.record.listing);
                                }
                                if records {
                                    g.below.push(r.record.clone());
                                }
                                if r.changed {
                                    g.changed_below.push(plan.layer(d).qualified_name());
                                }
                            }
                        }
                        // Kept for a layer that is rebuilt (the edit-rebuild
                        // loop), not for every layer of a first build: 200
                        // images over one base would write 200 views of it
                        // that nothing reads.
                        if fold && rebuilt {
                            cache.put_memo(&memo, &g.lower.encode());
                        }
                    }
                    // Every layer of a source image is ready: its deps
                    // waited for them.
                    for &top in &layer.sources {
                        let mut records = Vec::new();
                        for d in plan.below(top).into_iter().chain([top]) {
                            if let Some(r) = &mut done[d.0] {
                                r.load_listing(cache)?;
                                records.push(r.record.clone());
                            }
                        }
                        g.sources.push(records);
                    }
                    Ok(g)
                };
                let remote = remote.get(&layer.key.hex()).copied();
                build_one(plan, layer, &gather, cache, remote, exec, on_event)
                    .map(|r| (layer.id.0, r))
            });
        let mut errors = Vec::new();
        {
            let mut done = done
                .lock()
                .map_err(|_| Error::Workers("one panicked".into()))?;
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
        .map_err(|_| Error::Workers("one panicked".into()))?;
    done.into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                Error::Workers(format!(
                    "layer {} was never built",
                    plan.layers[i].qualified_name()
                ))
            })
        })
        .collect()
}

/// Several spec diagnostics (or located build failures) become one report;
/// otherwise the first error wins.
fn merge_errors(errors: Vec<Error>) -> Error {
    let mut diags: Option<Box<strata_spec::Diagnostics>> = None;
    let mut other = None;
    for e in errors {
        match e {
            Error::Spec(d) => match &mut diags {
                Some(all) => all.items.extend(d.items),
                None => diags = Some(d),
            },
            // Located build failures are reported together, like spec errors.
            Error::Build(d) => match &mut other {
                Some(Error::Build(all)) => all.items.extend(d.items),
                _ => {
                    other.get_or_insert(Error::Build(d));
                }
            },
            e => {
                other.get_or_insert(e);
            }
        }
    }
    match (diags, other) {
        (Some(d), _) => Error::Spec(d),
        (None, Some(e)) => e,
        (None, None) => Error::Workers("a build failed without saying why".into()),
    }
}

fn build_one(
    plan: &Plan,
    layer: &LayerNode,
    gather: &dyn Fn(bool) -> Result<Gathered, Error>,
    cache: &Cache,
    remote: Option<RemoteStatus>,
    exec: Option<&crate::remote_exec::RemoteExec>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Ready, Error> {
    let index = layer.id.0;
    let name = layer.qualified_name();
    let key = layer.key.hex();
    // The last build of this layer is remembered under the spec's file name
    // and the layer's name (not the checkout path), to say why a key changed.
    let spec_file = Path::new(&plan.spec_name).file_name().map_or_else(
        || plan.spec_name.clone(),
        |n| n.to_string_lossy().into_owned(),
    );
    let last_name = format!("{spec_file} {name}");
    let last = LastBuild {
        key: key.clone(),
        parts: layer
            .key_parts
            .iter()
            .map(|p| (p.label.clone(), blake3_hex(&p.digest)))
            .collect(),
    };
    let prev = cache.last_build(&last_name);
    let changed = prev.as_ref().is_none_or(|p| p.key != key);
    // Only the head of a hit's record: its listing is read when a layer
    // above or the caller needs it (see `Ready::load_listing`).
    let miss = match cache.get_head(&key)? {
        Ok(record) => {
            cache.touch(&key);
            if prev.as_ref() != Some(&last) {
                let _ = cache.set_last_build(&last_name, &last);
            }
            on_event(Event::LayerDone {
                index,
                name,
                cache: CacheStatus::Hit,
                remote,
                size: record.desc.size,
                reason: None,
            });
            return Ok(Ready {
                record,
                cache: CacheStatus::Hit,
                remote,
                miss_reason: None,
                changed,
                listing_pending: Some(key),
            });
        }
        Err(miss) => miss,
    };
    let Gathered {
        lower,
        below,
        sources,
        changed_below,
    } = gather(prev.is_some())?;
    let miss_reason = match miss {
        Miss::Absent => match prev {
            None => "first build of this layer".to_owned(),
            Some(prev) if prev.key == key => "not in the cache (evicted or removed)".to_owned(),
            Some(prev) => {
                let changes = strata_plan::explain_change(&prev.parts, &layer.key_parts);
                if changes.is_empty() {
                    "the key changed".to_owned()
                } else {
                    capped(name_changed_below(changes, &changed_below))
                }
            }
        },
        Miss::Dropped(reason) => {
            on_event(Event::Warning(format!(
                "layer {name}: dropped a bad cache entry and rebuilt it: {reason}"
            )));
            format!("the cache entry was bad and was dropped: {reason}")
        }
    };
    on_event(Event::LayerStarted {
        index,
        name: name.clone(),
        expected: crate::estimate::layer_bytes(layer),
    });
    // A layer the farm builds is in the cache when it returns.
    let (record, remote) = match crate::remote_exec::try_build(exec, plan, layer, cache, on_event)?
    {
        Some(record) => (record, Some(RemoteStatus::Build)),
        None => {
            let mut blob = cache.new_blob()?;
            let progress = |bytes: u64| on_event(Event::LayerProgress { index, bytes });
            let record = if let Some(ext) = layer.external() {
                // A layer of an external base: its blob as it is, checked.
                let listing = crate::base::fetch_layer(layer, ext, cache, &mut blob)?;
                LayerRecord {
                    desc: ext.desc,
                    listing,
                }
            } else {
                let warn = |w: String| on_event(Event::Warning(w));
                built_record(
                    plan, layer, &lower, &below, &sources, cache, &mut blob, &progress, &warn,
                )?
            };
            cache.put(&key, &record, blob)?;
            (record, remote)
        }
    };
    let _ = cache.set_last_build(&last_name, &last);
    on_event(Event::LayerDone {
        index,
        name,
        cache: CacheStatus::Miss,
        remote,
        size: record.desc.size,
        reason: Some(miss_reason.clone()),
    });
    Ok(Ready {
        record,
        cache: CacheStatus::Miss,
        remote,
        miss_reason: Some(miss_reason),
        changed,
        listing_pending: None,
    })
}

/// Build a layer of the spec into `blob`: its record (not yet stored).
#[allow(clippy::too_many_arguments)] // the executor's state, passed through once
fn built_record(
    plan: &Plan,
    layer: &LayerNode,
    lower: &LowerView,
    below: &[LayerRecord],
    sources: &[Vec<LayerRecord>],
    cache: &Cache,
    blob: &mut strata_cache::BlobWriter,
    progress: &(dyn Fn(u64) + Sync),
    warn: &dyn Fn(String),
) -> Result<LayerRecord, Error> {
    let out = match &layer.build {
        Build::Union(job) => crate::union_job::build(
            plan, layer, job, below, sources, cache, blob, progress, warn,
        ),
        Build::External(_) => unreachable!("build_one fetches external layers, never builds them"),
        Build::Ops(job) if !layer.owner_names.is_empty() => {
            let job = crate::owner_names::resolve(plan, layer, job, below, lower, cache)?;
            build_ops(plan, layer, &job, lower, cache, blob, progress)
        }
        Build::Ops(job) => build_ops(plan, layer, job, lower, cache, blob, progress),
    }?;
    Ok(LayerRecord {
        desc: out.desc,
        listing: out.listing,
    })
}

/// A layer of plain operations, built by `strata_layer::build`.
fn build_ops(
    plan: &Plan,
    layer: &LayerNode,
    job: &strata_layer::LayerJob,
    lower: &LowerView,
    cache: &Cache,
    blob: &mut strata_cache::BlobWriter,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<strata_layer::BuildOutput, Error> {
    strata_layer::build(job, lower, blob, progress).map_err(|e| match e {
        strata_layer::Error::DeleteMissing { op, path } => {
            let span = layer.op_spans.get(op).copied().unwrap_or(layer.span);
            Error::Build(Box::new(
                plan.diagnostic(
                    SpecDiagnostic::new(
                        format!(
                            "cannot delete {path}: no layer below `{}` in image `{}` has it",
                            layer.name, layer.image
                        ),
                        span,
                        "nothing to delete",
                    )
                    .with_help(
                        "`delete` records a whiteout for a path of a lower layer; check the path",
                    ),
                ),
            ))
        }
        source => Error::Layer {
            layer: crate::locate::layer_at(plan, layer, &source),
            source: crate::locate::write_error(source, &cache.root().join("tmp")),
        },
    })
}
