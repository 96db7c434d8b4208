//! A [`Spec`] to a [`Plan`]: the graph of layer jobs and image jobs, with
//! `from` chains resolved, configs inherited, input paths resolved and cache
//! keys computed.
//!
//! An image's layers are its base's layers (through `from`), then its `rootfs`
//! layer, then its own `layer` nodes. A layer defined once is one node however
//! many images stack on it, which is how images of one spec share blobs.
//! A layer whose ops only add content depends on nothing and can be built in
//! parallel with any other; a layer with a `delete` reads the union of the
//! layers below it (to know what it deletes), and a `from-dir` or `run` layer
//! their contents (to diff against, or to run on), so it depends on them and
//! its key covers theirs.
//!
//! Invariants: this crate builds nothing and writes nothing; it reads input
//! files only to digest them for keys. Every user error is a
//! [`SpecDiagnostic`] with a span into the spec, and all of them are reported
//! together. Keys depend only on content (never on paths of the checkout,
//! mtimes or owners).

mod config;
mod index;
mod inputs;
mod keys;
mod owners;
mod render;
mod run_mounts;
mod urls;
mod workdir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::SourceSpan;
use strata_layer::ImageConfig;
use strata_layer::{
    Compression, CopyFromStep, ImagePath, JobOp, LayerJob, Owner, RunStep, UnionJob, UnionWork,
};
use strata_spec::{Diagnostics, Op, Spanned, Spec, SpecDiagnostic};

pub use index::IndexNode;
pub use keys::{DigestMemo, InputDigest, KEY_FORMAT, KeyPart, LayerKey, explain_change};
pub use owners::{NamedOwner, Unresolved, resolve_job};

/// Index of a layer in [`Plan::layers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerId(pub usize);

/// What the plan needs from outside the spec.
#[derive(Clone, Default)]
pub struct PlanOptions {
    /// `SOURCE_DATE_EPOCH`: when set, overrides the spec's `epoch`.
    pub source_date_epoch: Option<u64>,
    /// Remembered input digests (the cache's input index), so unchanged
    /// inputs are not re-read; `None` hashes every input.
    pub memo: Option<std::sync::Arc<dyn DigestMemo>>,
    /// External bases (`from "oci:..."`, `from "docker://..."`), resolved by
    /// the caller, by the `from` text. A `from` missing here is an error.
    pub bases: BTreeMap<String, ExternalImage>,
    /// The value of every build argument of the spec, which the caller has
    /// substituted in it (`strata_spec::apply_args`); kept in the plan for
    /// the lock and the report.
    pub args: BTreeMap<String, String>,
    /// The operations of each layer with `packages`, by (image, layer)
    /// name, resolved by the caller (`strata-deb` through `strata`): a
    /// `packages` layer missing here is an error.
    pub packages: BTreeMap<(String, String), PackageOps>,
    /// The file each URL of an `add` was fetched to, verified against its
    /// `checksum=` by the caller: a URL missing here is an error.
    pub urls: BTreeMap<String, PathBuf>,
}

/// A `packages` layer's operations: each verified `.deb`'s data archive to
/// unpack (with its input digest, which covers the package's sha256) and
/// the files that make the packages installed (dpkg status, links).
#[derive(Debug, Clone, Default)]
pub struct PackageOps {
    pub ops: Vec<JobOp>,
    /// One per `Unpack` of `ops`, in order.
    pub inputs: Vec<InputDigest>,
    /// The packages as the lock records them, one line each.
    pub lock: Vec<String>,
}

/// An image outside the spec that a `from` names: its layers as they are,
/// and its config, which the image inherits as from an image of the spec.
#[derive(Debug, Clone)]
pub struct ExternalImage {
    /// Where it was found (`oci:DIR:TAG`, `docker://HOST/REPO@sha256:...`).
    pub source: String,
    /// Its manifest digest.
    pub manifest: strata_layer::Digest,
    pub layers: Vec<ExternalLayer>,
    pub config: ImageConfig,
}

/// One layer of an external base, reused as it is (never rebuilt or recompressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLayer {
    /// The layer as the base's manifest and config describe it.
    pub desc: strata_layer::LayerDescriptor,
    /// Where to fetch the blob on a cache miss (not part of the key).
    pub fetch: BlobSource,
}

/// Where the blob of an external layer can be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// An OCI image layout directory.
    Layout(PathBuf),
    /// A registry repository (`docker://HOST/REPO`), over HTTP when `insecure`.
    Registry { repository: String, insecure: bool },
}

impl std::fmt::Debug for PlanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanOptions")
            .field("source_date_epoch", &self.source_date_epoch)
            .field("memo", &self.memo.is_some())
            .field("bases", &self.bases.keys().collect::<Vec<_>>())
            .field("args", &self.args)
            .finish()
    }
}

/// The whole graph of one spec.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The spec's name and text, for diagnostics found while building.
    pub spec_name: String,
    pub spec_source: String,
    pub epoch: u64,
    pub compression: Compression,
    /// Layers in an order where every layer comes after the layers below it.
    pub layers: Vec<LayerNode>,
    /// Images in spec order.
    pub images: Vec<ImageNode>,
    /// Multi-platform images (`index` nodes), in spec order.
    pub indexes: Vec<IndexNode>,
    /// The external bases the images build on, by `from` text.
    pub bases: BTreeMap<String, ExternalImage>,
    /// The build arguments and their values (see [`PlanOptions::args`]).
    pub args: BTreeMap<String, String>,
    /// The packages each `packages` layer installs, by `image/layer`, as
    /// the lock records them ([`PackageOps::lock`]).
    pub packages: BTreeMap<String, Vec<String>>,
}

/// One layer job.
#[derive(Debug, Clone)]
pub struct LayerNode {
    pub id: LayerId,
    /// The image whose spec node defines this layer.
    pub image: String,
    /// The layer's name (`rootfs` for an image's rootfs).
    pub name: String,
    pub span: SourceSpan,
    /// How the layer is made: the builder it goes to, and everything that
    /// decides its bytes.
    pub build: Build,
    /// The span of each step of `build` ([`LayerNode::steps`]), for errors
    /// the builder reports by index.
    pub op_spans: Vec<SourceSpan>,
    /// The layer directly below this one in its image (`None` at the
    /// bottom). The whole stack below is this chain ([`Plan::below`]): one
    /// link per layer, so planning stays linear in the layer count.
    pub under: Option<LayerId>,
    /// How many layers are below it.
    pub depth: usize,
    /// The digest of the stack up to and including this layer: its key
    /// chained onto the stack digest of the layer under it. A layer that
    /// reads the layers below has the stack digest of its `under` in its
    /// key (one key part, however many layers are below).
    pub stack: [u8; 32],
    /// The layers it must wait for, when it reads the layers below: the
    /// nearest layer below that also reads, and every layer between (the
    /// one that reads has waited for everything under it). Empty otherwise.
    pub deps: Vec<LayerId>,
    /// Whether building this layer reads the layers below (it has a
    /// `delete`, a `from-dir` or `run` steps).
    pub reads_below: bool,
    /// The top layer of each image of the spec this layer reads (one per
    /// `copy from=` step, or per `bind` mount of its `run` steps, in
    /// order): the builder reads that layer and every layer below it.
    pub sources: Vec<LayerId>,
    /// The digests of the inputs it reads, in op order.
    pub inputs: Vec<InputDigest>,
    /// The owners its ops give by name, resolved against the layers below
    /// when it is built ([`resolve_job`]); it then reads below.
    pub owner_names: Vec<NamedOwner>,
    pub key: LayerKey,
    /// The named parts the key is made of, to explain a miss.
    pub key_parts: Vec<KeyPart>,
}

/// How a layer is made. The kind is the type, so no layer can reach a
/// builder that would refuse it.
#[derive(Debug, Clone)]
pub enum Build {
    /// Operations on a tree of their own (`strata_layer::build`); only a
    /// `delete` looks at the layers below, and only at their listings.
    Ops(LayerJob),
    /// `from-dir` or `run`, which read the content of the layers below
    /// (`strata_union::build_job`).
    Union(UnionJob),
    /// A layer of an external base: fetched as it is, never built.
    External(ExternalLayer),
}

/// What the planner makes of one operation of the spec.
enum Planned {
    Op(JobOp),
    Union(UnionStep),
}

/// A `from-dir`, `run` or `copy from=` operation, before the layer's build
/// is chosen.
enum UnionStep {
    FromDir { dir: PathBuf, normalize: bool },
    Run(RunStep),
    CopyFrom(CopyFromStep),
}

/// One step of a layer's build, whatever its kind: what keys, plans and
/// error locations walk.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Op(&'a JobOp),
    FromDir { normalize: bool },
    Run(&'a RunStep),
    CopyFrom(&'a CopyFromStep),
}

impl LayerNode {
    /// `image/layer`, the name used in progress, reports and errors.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.image, self.name)
    }

    /// The compressor strata writes the layer's blob with (`None` for an
    /// external layer, whose blob is its base's, as it is).
    pub fn compression(&self) -> Compression {
        match &self.build {
            Build::Ops(job) => job.compression,
            Build::Union(job) => job.compression,
            Build::External(_) => Compression::None,
        }
    }

    /// The external base layer this is, if it is one.
    pub fn external(&self) -> Option<&ExternalLayer> {
        match &self.build {
            Build::External(ext) => Some(ext),
            _ => None,
        }
    }

    /// The steps of the layer's build, in order (none for an external layer).
    pub fn steps(&self) -> Vec<Step<'_>> {
        match &self.build {
            Build::Ops(job) => job.ops.iter().map(Step::Op).collect(),
            Build::Union(UnionJob {
                work: UnionWork::FromDir { normalize, .. },
                ..
            }) => vec![Step::FromDir {
                normalize: *normalize,
            }],
            Build::Union(UnionJob {
                work: UnionWork::Run(steps),
                ..
            }) => steps.iter().map(Step::Run).collect(),
            Build::Union(UnionJob {
                work: UnionWork::CopyFrom(steps),
                ..
            }) => steps.iter().map(Step::CopyFrom).collect(),
            Build::External(_) => Vec::new(),
        }
    }

    /// The layers this one must wait for (see [`LayerNode::deps`]);
    /// everything below them is ready when they are.
    pub fn deps(&self) -> &[LayerId] {
        &self.deps
    }
}

/// One image job.
#[derive(Debug, Clone)]
pub struct ImageNode {
    pub name: String,
    pub tag: String,
    pub span: SourceSpan,
    /// Its layers, bottom first (the base's layers first).
    pub layers: Vec<LayerId>,
    pub config: ImageConfig,
    pub annotations: BTreeMap<String, String>,
}

/// The layer nodes of an external base, pushed onto `layers`, and an image
/// node holding them and the base's config, to build on like a spec image.
fn external_base(
    image: &str,
    from: &Spanned<String>,
    base: &ExternalImage,
    layers: &mut Vec<LayerNode>,
) -> ImageNode {
    let mut stack: Vec<LayerId> = Vec::new();
    for (n, l) in base.layers.iter().enumerate() {
        let (key, key_parts) =
            keys::external_key(&l.desc.blob, &l.desc.diff_id, l.desc.media_type.as_str());
        let id = LayerId(layers.len());
        let under = stack.last().copied();
        layers.push(LayerNode {
            id,
            image: image.to_owned(),
            name: format!("base-{}", n + 1),
            span: from.span,
            build: Build::External(l.clone()),
            op_spans: Vec::new(),
            under,
            depth: stack.len(),
            stack: keys::stack_digest(under.map(|u| &layers[u.0].stack), &key),
            deps: Vec::new(),
            reads_below: false,
            sources: Vec::new(),
            inputs: Vec::new(),
            owner_names: Vec::new(),
            key,
            key_parts,
        });
        stack.push(id);
    }
    ImageNode {
        name: image.to_owned(),
        tag: "latest".to_owned(),
        span: from.span,
        layers: stack,
        config: base.config.clone(),
        annotations: BTreeMap::new(),
    }
}

impl Plan {
    /// Every layer below `id` in its image, bottom first (a walk down the
    /// [`LayerNode::under`] chain).
    pub fn below(&self, id: LayerId) -> Vec<LayerId> {
        let mut out = Vec::with_capacity(self.layer(id).depth);
        let mut cur = self.layer(id).under;
        while let Some(u) = cur {
            out.push(u);
            cur = self.layer(u).under;
        }
        out.reverse();
        out
    }

    pub fn layer(&self, id: LayerId) -> &LayerNode {
        &self.layers[id.0]
    }

    /// A diagnostic found after planning, rendered against the spec.
    pub fn diagnostic(&self, d: SpecDiagnostic) -> Diagnostics {
        Diagnostics::new(&self.spec_name, &self.spec_source, vec![d])
    }
}

/// Plan a spec read from `spec_path` (input paths are relative to its directory).
pub fn plan(spec: &Spec, spec_path: &Path, opts: &PlanOptions) -> Result<Plan, Diagnostics> {
    let base_dir = spec_path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut errors = Vec::new();
    let inputs_root = inputs::root(spec, &base_dir)
        .map_err(|d| errors.push(d))
        .ok();
    let defaults = strata_layer::Limits::DEFAULT;
    let limits = strata_layer::Limits {
        max_input_size: spec
            .limits
            .max_input_size
            .as_ref()
            .map_or(defaults.max_input_size, |n| n.value),
        max_entries: spec
            .limits
            .max_entries
            .as_ref()
            .map_or(defaults.max_entries, |n| n.value),
    };
    Planner {
        spec,
        base_dir,
        inputs_root,
        limits,
        memo: opts.memo.clone(),
        errors,
        image_config: None,
        packages: opts.packages.clone(),
        urls: opts.urls.clone(),
        tops: BTreeMap::new(),
    }
    .run(opts)
}

struct Planner<'a> {
    spec: &'a Spec,
    base_dir: PathBuf,
    /// Where sources may come from; `None` when `inputs-root` is broken
    /// (already reported).
    inputs_root: Option<inputs::InputRoot>,
    limits: strata_layer::Limits,
    memo: Option<std::sync::Arc<dyn DigestMemo>>,
    errors: Vec<SpecDiagnostic>,
    /// The resolved config of the image whose layers are being planned:
    /// `run` steps run in its environment.
    image_config: Option<ImageConfig>,
    /// See [`PlanOptions::packages`].
    packages: BTreeMap<(String, String), PackageOps>,
    /// See [`PlanOptions::urls`].
    urls: BTreeMap<String, PathBuf>,
    /// The top layer of each image planned so far, by name (`None` for an
    /// image without layers): what a `copy from=` reads.
    tops: BTreeMap<String, Option<LayerId>>,
}

/// Default `PATH` of an image built from scratch, as Docker and BuildKit set it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Planner<'_> {
    fn run(mut self, opts: &PlanOptions) -> Result<Plan, Diagnostics> {
        let spec = self.spec;
        let epoch = opts
            .source_date_epoch
            .or(spec.epoch.as_ref().map(|e| e.value))
            .unwrap_or(0);
        let level = spec.compression_level.as_ref().map(|l| l.value);
        let compression = match spec.compression.as_ref().map(|c| c.value) {
            None | Some(strata_spec::Compression::Gzip) => match level {
                Some(level) => Compression::Gzip { level },
                None => Compression::DEFAULT_GZIP,
            },
            Some(strata_spec::Compression::Zstd) => match level {
                // The parser checked the range (1-19).
                Some(level) => Compression::Zstd {
                    level: i32::try_from(level).unwrap_or(3),
                },
                None => Compression::DEFAULT_ZSTD,
            },
            Some(strata_spec::Compression::None) => Compression::None,
        };

        let order = self.image_order();
        let mut layers: Vec<LayerNode> = Vec::new();
        let mut images: Vec<Option<ImageNode>> = vec![None; spec.images.len()];
        // External bases become layer nodes once, however many images use them.
        let mut external: BTreeMap<String, ImageNode> = BTreeMap::new();
        for idx in order {
            let image = &spec.images[idx];
            let parent = match image.from.as_ref() {
                Some(from) if strata_spec::ExternalBase::parse(&from.value).is_some() => {
                    if !external.contains_key(&from.value) {
                        let Some(base) = opts.bases.get(&from.value) else {
                            self.errors.push(
                                SpecDiagnostic::new(
                                    format!("external base `{}` was not resolved", from.value),
                                    from.span,
                                    "not resolved",
                                )
                                .with_help("`strata compose` and `strata lock` fetch external bases; this command does not"),
                            );
                            continue;
                        };
                        let node = external_base(&image.name.value, from, base, &mut layers);
                        external.insert(from.value.clone(), node);
                    }
                    external.get(&from.value).cloned()
                }
                _ => image.from.as_ref().and_then(|from| {
                    let p = spec
                        .images
                        .iter()
                        .position(|i| i.name.value == from.value)?;
                    images[p].clone()
                }),
            };
            let mut stack: Vec<LayerId> = parent
                .as_ref()
                .map(|p| p.layers.clone())
                .unwrap_or_default();
            if let Some(rootfs) = &image.rootfs {
                let ops = vec![Spanned::new(
                    Op::Add {
                        src: rootfs.clone(),
                        to: Spanned::new("/".to_owned(), rootfs.span),
                        mode: None,
                        owner: None,
                        exclude: None,
                        checksum: None,
                    },
                    rootfs.span,
                )];
                if let Some(node) = self.layer_node(
                    &image.name.value,
                    "rootfs",
                    rootfs.span,
                    &ops,
                    &stack,
                    &layers,
                    epoch,
                    compression,
                ) {
                    stack.push(node.id);
                    layers.push(node);
                }
            }
            self.image_config = Some(config::resolve(
                parent.as_ref().map(|p| &p.config),
                &image.config,
                epoch,
                DEFAULT_PATH,
            ));
            for layer in &image.layers {
                if let Some(node) = self.layer_node(
                    &image.name.value,
                    &layer.name.value,
                    layer.name.span,
                    &layer.ops,
                    &stack,
                    &layers,
                    epoch,
                    compression,
                ) {
                    stack.push(node.id);
                    layers.push(node);
                }
            }
            let config = config::resolve(
                parent.as_ref().map(|p| &p.config),
                &image.config,
                epoch,
                DEFAULT_PATH,
            );
            match workdir::layer(
                image,
                &config,
                &stack,
                &layers,
                epoch,
                compression,
                self.limits,
            ) {
                Some(Ok(node)) => {
                    stack.push(node.id);
                    layers.push(node);
                }
                Some(Err(d)) => self.errors.push(d),
                None => {}
            }
            let annotations = image
                .config
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect();
            self.tops
                .insert(image.name.value.clone(), stack.last().copied());
            images[idx] = Some(ImageNode {
                name: image.name.value.clone(),
                tag: image
                    .tag
                    .as_ref()
                    .map_or_else(|| "latest".to_owned(), |t| t.value.clone()),
                span: image.span,
                layers: stack,
                config,
                annotations,
            });
        }

        let (indexes, errors) = index::resolve(spec, &images);
        self.errors.extend(errors);
        if !self.errors.is_empty() {
            return Err(Diagnostics::new(&spec.name, &spec.source, self.errors));
        }
        Ok(Plan {
            spec_name: spec.name.clone(),
            spec_source: spec.source.clone(),
            epoch,
            compression,
            layers,
            images: images.into_iter().flatten().collect(),
            indexes,
            bases: opts.bases.clone(),
            args: opts.args.clone(),
            packages: opts
                .packages
                .iter()
                .map(|((image, layer), p)| (format!("{image}/{layer}"), p.lock.clone()))
                .collect(),
        })
    }

    /// Images ordered so that every image comes after the images it needs:
    /// its `from` base and the images its layers `copy from=`. Reports
    /// unknown images and cycles, and leaves out the images they taint.
    fn image_order(&mut self) -> Vec<usize> {
        let images = &self.spec.images;
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, image) in images.iter().enumerate() {
            if by_name.insert(image.name.value.as_str(), i).is_some() {
                self.errors.push(SpecDiagnostic::new(
                    format!("image `{}` is defined twice", image.name.value),
                    image.name.span,
                    "second definition",
                ));
            }
        }
        let names: Vec<&str> = by_name.keys().copied().collect();
        // What each image needs: (image, the reference's span, whether it
        // is a `from`).
        let mut needs: Vec<Vec<(usize, SourceSpan, bool)>> = vec![Vec::new(); images.len()];
        let mut broken = vec![false; images.len()];
        for (i, image) in images.iter().enumerate() {
            let from = image
                .from
                .iter()
                .filter(|f| strata_spec::ExternalBase::parse(&f.value).is_none())
                .map(|f| (f, true));
            let copies = image
                .layers
                .iter()
                .flat_map(|l| &l.ops)
                .flat_map(|op| match &op.value {
                    Op::Copy { from: Some(f), .. } => vec![(f, false)],
                    Op::Run { mounts, .. } => mounts
                        .iter()
                        .filter_map(|m| match &m.value {
                            strata_spec::RunMount::Bind { from, .. } => Some((from, false)),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                });
            for (name, is_from) in from.chain(copies) {
                match by_name.get(name.value.as_str()) {
                    Some(&p) => needs[i].push((p, name.span, is_from)),
                    None => {
                        let mut d = SpecDiagnostic::new(
                            format!("no image named `{}` in this spec", name.value),
                            name.span,
                            "unknown image",
                        );
                        if let Some(best) = strata_spec::did_you_mean(&name.value, &names) {
                            d = d.with_help(format!("did you mean `{best}`?"));
                        } else if !is_from {
                            d = d.with_help(
                                "`copy from=` names an image of this spec (a build stage)",
                            );
                        }
                        self.errors.push(d);
                        broken[i] = true;
                    }
                }
            }
        }
        // Depth first, without recursion (a chain of `from` may be long):
        // an image is placed once everything it needs is; a reference back
        // to an image on the walk closes a cycle, reported once.
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            New,
            OnWalk,
            Placed,
            Tainted,
        }
        let mut state = vec![State::New; images.len()];
        let mut in_cycle = vec![false; images.len()];
        let mut order = Vec::new();
        for start in 0..images.len() {
            if state[start] != State::New {
                continue;
            }
            // (image, how many of its needs were followed)
            let mut walk: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = State::OnWalk;
            while let Some(&mut (v, ref mut k)) = walk.last_mut() {
                if let Some(&(w, _, _)) = needs[v].get(*k) {
                    *k += 1;
                    match state[w] {
                        State::New => {
                            state[w] = State::OnWalk;
                            walk.push((w, 0));
                        }
                        State::OnWalk => {
                            let at = walk.iter().position(|&(x, _)| x == w).unwrap_or(0);
                            let members: Vec<usize> = walk[at..].iter().map(|&(x, _)| x).collect();
                            // The edge each member follows to the next one.
                            let edges: Vec<(SourceSpan, bool)> = walk[at..]
                                .iter()
                                .map(|&(x, k)| {
                                    let (_, span, is_from) = needs[x][k - 1];
                                    (span, is_from)
                                })
                                .collect();
                            if members.iter().all(|&m| !in_cycle[m]) {
                                self.errors.push(cycle_diagnostic(images, &members, &edges));
                            }
                            for m in members {
                                in_cycle[m] = true;
                            }
                        }
                        State::Placed | State::Tainted => {}
                    }
                    continue;
                }
                walk.pop();
                let tainted = broken[v]
                    || in_cycle[v]
                    || needs[v]
                        .iter()
                        .any(|&(w, _, _)| state[w] == State::Tainted || in_cycle[w]);
                if tainted {
                    state[v] = State::Tainted;
                } else {
                    state[v] = State::Placed;
                    order.push(v);
                }
            }
        }
        order
    }

    /// One layer's job, inputs resolved and digested; `None` (with errors recorded) when an input is missing.
    #[allow(clippy::too_many_arguments)]
    fn layer_node(
        &mut self,
        image: &str,
        name: &str,
        span: SourceSpan,
        ops: &[Spanned<Op>],
        below: &[LayerId],
        layers: &[LayerNode],
        epoch: u64,
        compression: Compression,
    ) -> Option<LayerNode> {
        let mut job_ops = Vec::new();
        let mut union = Vec::new();
        let mut op_spans = Vec::new();
        let mut inputs = Vec::new();
        let mut ok = true;
        let mut reads_below = false;
        let mut packages_seen = false;
        let mut owner_names = Vec::new();
        let mut sources = Vec::new();
        for op in ops {
            if let Op::Copy { from: Some(_), .. } = &op.value {
                match self.copy_from(&op.value, layers) {
                    Ok(Some((step, top))) => {
                        // The parents it passes through keep what the
                        // layers below give them.
                        reads_below |= !below.is_empty();
                        union.push((UnionStep::CopyFrom(step), op.span));
                        op_spans.push(op.span);
                        sources.push(top);
                    }
                    // The source image failed to plan, and said why.
                    Ok(None) => ok = false,
                    Err(d) => {
                        self.errors.push(d);
                        ok = false;
                    }
                }
                continue;
            }
            if matches!(op.value, Op::Packages(_)) {
                // Every `packages` of a layer was resolved as one set.
                if std::mem::replace(&mut packages_seen, true) {
                    continue;
                }
                match self.packages.get(&(image.to_owned(), name.to_owned())) {
                    Some(p) => {
                        job_ops.extend(p.ops.iter().cloned());
                        op_spans.extend(p.ops.iter().map(|_| op.span));
                        inputs.extend(p.inputs.iter().cloned());
                    }
                    None => {
                        self.errors.push(
                            SpecDiagnostic::new("packages were not resolved", op.span, "not resolved")
                                .with_help("`strata compose` and `strata lock` resolve packages; this command does not"),
                        );
                        ok = false;
                    }
                }
                continue;
            }
            match self.job_op(&op.value) {
                Ok((Planned::Op(job_op), input)) => {
                    reads_below |= matches!(job_op, JobOp::Delete { .. })
                        || (!below.is_empty() && job_op.keeps_lower_parents());
                    if let Some(o) = op.value.owner().filter(|o| o.value.numeric().is_none()) {
                        if below.is_empty() {
                            self.errors.push(owners::nothing_below(image, name, o));
                            ok = false;
                        }
                        reads_below = true;
                        owner_names.push(NamedOwner {
                            op: job_ops.len(),
                            owner: o.value.clone(),
                            span: o.span,
                        });
                    }
                    job_ops.push(job_op);
                    op_spans.push(op.span);
                    inputs.extend(input);
                }
                Ok((Planned::Union(mut work), input)) => {
                    reads_below = true;
                    if let UnionStep::Run(step) = &mut work
                        && !self.bind_sources(step, op, layers, &mut sources)
                    {
                        ok = false;
                    }
                    union.push((work, op.span));
                    op_spans.push(op.span);
                    inputs.extend(input);
                }
                Err(d) => {
                    self.errors.push(d);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        let build = match self.union_build(job_ops, union, span, epoch, compression) {
            Ok(build) => build,
            Err(d) => {
                self.errors.push(d);
                return None;
            }
        };
        let under = below.last().map(|id| &layers[id.0]);
        // What it waits for: down to the nearest layer that reads too, below
        // it and below the top of each image it copies from.
        let mut deps = Vec::new();
        if reads_below {
            deps = wait_chain(under, layers);
        }
        for top in &sources {
            for d in wait_chain(Some(&layers[top.0]), layers) {
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
        }
        let below_key = match under {
            Some(u) if reads_below => Some(&u.stack),
            _ => None,
        };
        let mut node = LayerNode {
            id: LayerId(layers.len()),
            image: image.to_owned(),
            name: name.to_owned(),
            span,
            build,
            op_spans,
            under: under.map(|u| u.id),
            depth: below.len(),
            stack: [0; 32],
            deps,
            reads_below,
            sources,
            inputs,
            owner_names,
            key: LayerKey([0; 32]),
            key_parts: Vec::new(),
        };
        (node.key, node.key_parts) =
            keys::layer_key(&node.steps(), epoch, compression, &node.inputs, below_key);
        if !node.owner_names.is_empty() {
            (node.key, node.key_parts) =
                keys::with_owner_names(std::mem::take(&mut node.key_parts), &node.owner_names);
        }
        node.stack = keys::stack_digest(under.map(|u| &u.stack), &node.key);
        Some(node)
    }

    /// The layer's build from its planned operations: plain operations, or
    /// one `from-dir`, or `run` steps only (the spec refuses any other mix,
    /// see `whole_layer_ops`; this says so again rather than build a layer
    /// no builder takes).
    fn union_build(
        &self,
        ops: Vec<JobOp>,
        union: Vec<(UnionStep, SourceSpan)>,
        span: SourceSpan,
        epoch: u64,
        compression: Compression,
    ) -> Result<Build, SpecDiagnostic> {
        if union.is_empty() {
            return Ok(Build::Ops(LayerJob {
                ops,
                epoch,
                compression,
                limits: self.limits,
            }));
        }
        let alone = || {
            SpecDiagnostic::new(
                "`from-dir` is alone in its layer, and a layer with `run` steps or `copy from=` holds nothing else",
                span,
                "this layer",
            )
        };
        if !ops.is_empty() {
            return Err(alone());
        }
        let work = match union.as_slice() {
            [(UnionStep::FromDir { dir, normalize }, _)] => UnionWork::FromDir {
                dir: dir.clone(),
                normalize: *normalize,
            },
            steps @ [(UnionStep::CopyFrom(_), _), ..] => UnionWork::CopyFrom(
                steps
                    .iter()
                    .map(|(s, _)| match s {
                        UnionStep::CopyFrom(step) => Ok(step.clone()),
                        _ => Err(alone()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            steps => UnionWork::Run(
                steps
                    .iter()
                    .map(|(s, _)| match s {
                        UnionStep::Run(step) => Ok(step.clone()),
                        _ => Err(alone()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Build::Union(UnionJob {
            work,
            epoch,
            compression,
        }))
    }

    /// Fills in the image each `bind` mount of `step` shows: its layers'
    /// stack digest (for the key) and its place in `sources` (for the
    /// builder). False (with errors recorded) when one cannot be had.
    fn bind_sources(
        &mut self,
        step: &mut RunStep,
        op: &Spanned<Op>,
        layers: &[LayerNode],
        sources: &mut Vec<LayerId>,
    ) -> bool {
        let Op::Run {
            mounts: spec_mounts,
            ..
        } = &op.value
        else {
            return true;
        };
        let mut ok = true;
        for (m, spec) in step.mounts.iter_mut().zip(spec_mounts) {
            let strata_layer::RunMount::Bind {
                image,
                stack,
                index,
                ..
            } = m
            else {
                continue;
            };
            match self.tops.get(image.as_str()) {
                // The image failed to plan, and said why.
                None => ok = false,
                Some(None) => {
                    let span = match &spec.value {
                        strata_spec::RunMount::Bind { from, .. } => from.span,
                        _ => spec.span,
                    };
                    self.errors.push(SpecDiagnostic::new(
                        format!("image `{image}` has no layers to mount"),
                        span,
                        "an empty image",
                    ));
                    ok = false;
                }
                Some(Some(top)) => {
                    *stack = layers[top.0].stack;
                    *index = sources.len();
                    sources.push(*top);
                }
            }
        }
        ok
    }

    /// A `copy "/SRC" from="IMAGE" to="/DEST"`: its step, keyed by the
    /// stack digest of the image's layers, and that image's top layer.
    /// `Ok(None)` when the image was not planned (its own errors say why).
    fn copy_from(
        &self,
        op: &Op,
        layers: &[LayerNode],
    ) -> Result<Option<(CopyFromStep, LayerId)>, SpecDiagnostic> {
        let Op::Copy {
            src,
            to,
            mode,
            owner,
            from: Some(from),
            ..
        } = op
        else {
            unreachable!("layer_node routes only `copy from=` here");
        };
        let Some(top) = self.tops.get(&from.value) else {
            return Ok(None);
        };
        let Some(top) = *top else {
            return Err(SpecDiagnostic::new(
                format!("image `{}` has no layers to copy from", from.value),
                from.span,
                "an empty image",
            ));
        };
        // Names are resolved against the layers below a plain layer; a
        // `copy from=` step is built by `strata-union`, which does not yet.
        let owner = match owner {
            Some(o) => match o.value.numeric() {
                Some((uid, gid)) => Some(Owner { uid, gid }),
                None => {
                    return Err(SpecDiagnostic::new(
                        format!("owner `{}` by name on `copy from=`", o.value),
                        o.span,
                        "a name",
                    )
                    .with_help("give numeric ids here: owner=\"1000:1000\""));
                }
            },
            None => None,
        };
        Ok(Some((
            CopyFromStep {
                image: from.value.clone(),
                source: layers[top.0].stack,
                src: image_path(src)?,
                to: image_path(to)?,
                into_dir: to.value.ends_with('/'),
                mode: mode.as_ref().map(|m| m.value),
                owner,
            },
            top,
        )))
    }

    fn job_op(&self, op: &Op) -> Result<(Planned, Option<InputDigest>), SpecDiagnostic> {
        match op {
            Op::FromDir { .. } | Op::Run { .. } => self.union_step(op),
            _ => self
                .plain_op(op)
                .map(|(op, input)| (Planned::Op(op), input)),
        }
    }

    /// A `from-dir` or a `run` step: work for `strata-union`.
    fn union_step(&self, op: &Op) -> Result<(Planned, Option<InputDigest>), SpecDiagnostic> {
        Ok(match op {
            Op::FromDir { src, normalize } => {
                let normalize = normalize.as_ref().is_some_and(|n| n.value);
                let host = self.input(src)?;
                if !host.is_dir() {
                    return Err(SpecDiagnostic::new(
                        format!("input {}: not a directory", host.path().display()),
                        src.span,
                        "not a directory",
                    )
                    .with_help("`from-dir` takes a directory: the layer makes the image below look like it"));
                }
                let digest = if normalize {
                    keys::digest_input(&host, self.memo.as_deref())
                } else {
                    keys::digest_input_exact(&host, self.memo.as_deref())
                }
                .map_err(|e| io_diag(src, host.path(), e))?;
                (
                    Planned::Union(UnionStep::FromDir {
                        dir: host.path().to_owned(),
                        normalize,
                    }),
                    Some(InputDigest {
                        src: src.value.clone(),
                        digest,
                        path: host.path().to_owned(),
                    }),
                )
            }
            Op::Run {
                command,
                network,
                user,
                mounts,
            } => {
                let mounts = mounts
                    .iter()
                    .map(|m| self.run_mount(&m.value))
                    .collect::<Result<Vec<_>, _>>()?;
                let config = self.image_config.clone().unwrap_or_default();
                (
                    Planned::Union(UnionStep::Run(RunStep {
                        command: command.value.clone(),
                        shell: config.shell.clone(),
                        env: config.env.clone(),
                        workdir: config.workdir.clone(),
                        // Not the image's `user`: that is who its
                        // containers run as, and the steps that build it
                        // (installing packages, say) run as root unless
                        // they say otherwise.
                        user: user.as_ref().map(|u| u.value.clone()),
                        platform: config.platform(),
                        network: network.as_ref().is_some_and(|n| n.value),
                        mounts,
                    })),
                    None,
                )
            }
            _ => unreachable!("job_op routes only from-dir and run here"),
        })
    }

    fn plain_op(&self, op: &Op) -> Result<(JobOp, Option<InputDigest>), SpecDiagnostic> {
        // An owner by name is left out here: `layer_node` records it, and
        // the executor puts the ids in when the layers below are built.
        let owner = |o: &Option<Spanned<strata_spec::Owner>>| {
            o.as_ref()
                .and_then(|o| o.value.numeric())
                .map(|(uid, gid)| Owner { uid, gid })
        };
        let mode = |m: &Option<Spanned<u32>>| m.as_ref().map(|m| m.value);
        Ok(match op {
            Op::Add {
                src,
                to,
                mode: m,
                owner: o,
                checksum: Some(sum),
                exclude,
            } => urls::op(
                &self.urls,
                src,
                to,
                sum,
                mode(m),
                owner(o),
                exclude.as_ref(),
            )?,
            Op::Add {
                src,
                to,
                mode: m,
                owner: o,
                exclude,
                ..
            }
            | Op::Copy {
                src,
                to,
                mode: m,
                owner: o,
                exclude,
                ..
            } => {
                let host = self.input(src)?;
                let host = match exclude {
                    Some(x) => inputs::with_excludes(host, x)?,
                    None => host,
                };
                let dest = image_path(to)?;
                let into_dir = to.value.ends_with('/');
                let unpack = matches!(op, Op::Add { .. })
                    && keys::is_archive(&host).map_err(|e| io_diag(src, host.path(), e))?;
                if matches!(op, Op::Add { .. })
                    && !unpack
                    && !host.is_dir()
                    && inputs::named_like_archive(&src.value)
                {
                    return Err(SpecDiagnostic::new(
                        format!(
                            "input {} is named like a tarball but is not one (neither gzip, xz, zstd, bzip2 nor plain tar)",
                            host.path().display()
                        ),
                        src.span,
                        "not a tarball",
                    )
                    .with_help("`add` unpacks tarballs and copies other files; to copy this file as it is, write `copy`"));
                }
                let digest = keys::digest_input(&host, self.memo.as_deref())
                    .map_err(|e| io_diag(src, host.path(), e))?;
                let path = host.path().to_owned();
                let job_op = if unpack {
                    JobOp::Unpack {
                        archive: host,
                        to: dest,
                        owner: owner(o),
                        mode: mode(m),
                    }
                } else {
                    JobOp::Copy {
                        src: host,
                        to: dest,
                        into_dir,
                        mode: mode(m),
                        owner: owner(o),
                    }
                };
                (
                    job_op,
                    Some(InputDigest {
                        src: src.value.clone(),
                        digest,
                        path,
                    }),
                )
            }
            Op::File {
                path,
                content,
                mode: m,
                owner: o,
            } => (
                JobOp::File {
                    path: image_path(path)?,
                    content: content.value.clone().into_bytes(),
                    mode: mode(m),
                    owner: owner(o),
                },
                None,
            ),
            Op::Mkdir {
                path,
                owner: o,
                if_missing: Some(b),
                ..
            } if b.value => (
                JobOp::Workdir {
                    path: image_path(path)?,
                    owner: owner(o),
                },
                None,
            ),
            Op::Mkdir {
                path,
                mode: m,
                owner: o,
                ..
            } => (
                JobOp::Mkdir {
                    path: image_path(path)?,
                    mode: mode(m),
                    owner: owner(o),
                },
                None,
            ),
            Op::Symlink {
                path,
                target,
                owner: o,
            } => (
                JobOp::Symlink {
                    path: image_path(path)?,
                    target: target.value.clone().into_bytes(),
                    owner: owner(o),
                },
                None,
            ),
            Op::Delete { path } => (
                JobOp::Delete {
                    path: image_path(path)?,
                },
                None,
            ),
            Op::FromDir { .. } | Op::Run { .. } => {
                unreachable!("job_op routes from-dir and run to union_step")
            }
            // `layer_node` puts the resolved operations of `packages` in
            // place of the op; it never asks for it alone.
            Op::Packages(p) => {
                let span = p
                    .packages
                    .first()
                    .map_or(miette::SourceSpan::new(0.into(), 0), |n| n.span);
                return Err(SpecDiagnostic::new(
                    "packages are planned with their layer",
                    span,
                    "here",
                ));
            }
        })
    }

    /// An input path, relative to the spec's directory, that must exist and
    /// stay inside the inputs root (see `inputs`).
    fn input(&self, src: &Spanned<String>) -> Result<strata_layer::HostInput, SpecDiagnostic> {
        inputs::resolve(self.inputs_root.as_ref(), &self.base_dir, src)
    }
}

/// The layers a layer that reads from `top` down must wait for: `top` and
/// each layer under it down to the nearest one that reads below too (that
/// one has waited for everything under it), bottom first.
fn wait_chain(top: Option<&LayerNode>, layers: &[LayerNode]) -> Vec<LayerId> {
    let mut chain = Vec::new();
    let mut cur = top;
    while let Some(l) = cur {
        chain.push(l.id);
        if l.reads_below {
            break;
        }
        cur = l.under.map(|u| &layers[u.0]);
    }
    chain.reverse();
    chain
}

/// A cycle of images that need each other (`members`, each following
/// `edges[i]` to the next, the last back to the first), reported at the
/// reference of the member first in spec order.
fn cycle_diagnostic(
    images: &[strata_spec::Image],
    members: &[usize],
    edges: &[(SourceSpan, bool)],
) -> SpecDiagnostic {
    let first = (0..members.len()).min_by_key(|&i| members[i]).unwrap_or(0);
    let mut names = Vec::with_capacity(members.len() + 1);
    for n in 0..=members.len() {
        names.push(
            images[members[(first + n) % members.len()]]
                .name
                .value
                .as_str(),
        );
    }
    let (span, _) = edges[first];
    if edges.iter().all(|&(_, is_from)| is_from) {
        SpecDiagnostic::new(
            format!("`from` cycle: {}", names.join(" -> ")),
            span,
            "this `from` closes the cycle",
        )
        .with_help("an image cannot build on itself, directly or through other images")
    } else {
        SpecDiagnostic::new(
            format!("images need each other in a cycle: {}", names.join(" -> ")),
            span,
            "this reference closes the cycle",
        )
        .with_help(
            "an image cannot build on or `copy from=` itself, directly or through other images",
        )
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn io_diag(src: &Spanned<String>, path: &Path, e: std::io::Error) -> SpecDiagnostic {
    SpecDiagnostic::new(
        format!("input {}: {}", path.display(), io_reason(&e)),
        src.span,
        "this input",
    )
}

fn image_path(p: &Spanned<String>) -> Result<ImagePath, SpecDiagnostic> {
    ImagePath::parse_abs(&p.value).ok_or_else(|| {
        SpecDiagnostic::new(
            format!("not an absolute path in the image: {:?}", p.value),
            p.span,
            "here",
        )
        .with_help("paths in the image start with `/` and have no `..`")
    })
}
