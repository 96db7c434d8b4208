//! External bases: `from "oci:DIR:TAG"` and `from "docker://HOST/REPO:TAG"`
//! resolved to their layers and config before planning, and their blobs
//! fetched into the cache when a layer misses.
//!
//! A registry base's manifest and config are kept in the cache's blob store
//! by digest, so a base pinned by digest resolves with no request at all once
//! it was pulled; its layers are cache entries keyed by their content (see
//! `strata_plan::keys::external_key`), so a second compose fetches nothing.
//! Every byte fetched is checked against its digest before it is used.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use strata_cache::{BlobWriter, Cache};
use strata_export::ImageConfig;
use strata_layer::Digest;
use strata_layer::digest::HashingWriter;
use strata_plan::{BlobSource, ExternalImage, ExternalLayer, LayerNode};
use strata_registry::{Reference, Registry};
use strata_spec::{ExternalBase, Spanned, Spec, SpecDiagnostic};

use crate::Error;

/// The platform picked from a multi-platform base, unless the image names
/// its own (`platform "linux/arm64"`).
const OS: &str = "linux";
const ARCH: &str = "amd64";

/// How to resolve external bases.
#[derive(Debug, Clone, Default)]
pub struct BaseOptions {
    /// Speak plain HTTP to registries.
    pub insecure: bool,
    /// Manifest digests to use for registry bases named by tag, by `from`
    /// text (a lock's `base` lines, for `compose --locked`): the tag is not
    /// asked, so a moved tag does not change a locked build.
    pub pins: BTreeMap<String, Digest>,
    /// How `packages` layers are resolved.
    pub packages: crate::packages::PackageOptions,
}

/// An image's platform: OS, architecture, variant.
type Platform = (String, String, Option<String>);

fn platform_text((os, arch, variant): &Platform) -> String {
    match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// Resolve every external `from` of `spec` (paths relative to `spec_dir`).
/// Errors point at the `from` that failed.
pub fn resolve(
    spec: &Spec,
    spec_dir: &Path,
    cache: &Cache,
    opts: &BaseOptions,
) -> Result<BTreeMap<String, ExternalImage>, Error> {
    let insecure = opts.insecure;
    let mut out = BTreeMap::new();
    let mut registry = None;
    let mut problems = Vec::new();
    // The platform each external `from` was resolved for, and where.
    let mut resolved_for: BTreeMap<String, (Platform, usize)> = BTreeMap::new();
    for image in &spec.images {
        let Some(from) = &image.from else { continue };
        let Some(base) = ExternalBase::parse(&from.value) else {
            continue;
        };
        let platform: Platform = image.config.platform.as_ref().map_or_else(
            || (OS.to_owned(), ARCH.to_owned(), None),
            |p| {
                (
                    p.value.os.clone(),
                    p.value.architecture.clone(),
                    p.value.variant.clone(),
                )
            },
        );
        if let Some((first, first_offset)) = resolved_for.get(&from.value) {
            // One base per `from` text: two platforms would silently share
            // the first one's layers.
            if *first != platform {
                let line = spec.source[..*first_offset].lines().count().max(1);
                problems.push(
                    SpecDiagnostic::new(
                        format!(
                            "base `{}` is used by images of two platforms ({} on line {line}, {} here)",
                            from.value,
                            platform_text(first),
                            platform_text(&platform)
                        ),
                        from.span,
                        "another platform of the same base",
                    )
                    .with_help(
                        "strata resolves a `from` once; name each platform's image by its \
                         own digest (`...@sha256:...`)",
                    ),
                );
            }
            continue;
        }
        resolved_for.insert(from.value.clone(), (platform.clone(), from.span.offset()));
        let resolved = match base {
            ExternalBase::Oci { path, tag } => from_layout(&spec_dir.join(path), tag.as_deref()),
            ExternalBase::Registry(text) => {
                if registry.is_none() {
                    registry = Some(Registry::new(&strata_registry::Options { insecure })?);
                }
                match registry.as_ref() {
                    Some(reg) => from_registry(
                        reg,
                        cache,
                        &text,
                        opts.pins.get(&from.value),
                        insecure,
                        &platform,
                    ),
                    None => continue,
                }
            }
        };
        match resolved {
            Ok(img) => {
                out.insert(from.value.clone(), img);
            }
            Err(e) => problems.push(diag(from, &e)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Spec(Box::new(strata_spec::Diagnostics::new(
            &spec.name,
            &spec.source,
            problems,
        ))))
    }
}

fn diag(from: &Spanned<String>, e: &Error) -> SpecDiagnostic {
    let msg = crate::error_chain(e);
    SpecDiagnostic::new(
        format!("cannot resolve base `{}`: {msg}", from.value),
        from.span,
        "this base",
    )
}

/// A base from an OCI layout on disk.
fn from_layout(dir: &Path, tag: Option<&str>) -> Result<ExternalImage, Error> {
    let layout = strata_export::open_layout(dir)?;
    let img = layout.one(tag)?;
    let dir = fs::canonicalize(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(ExternalImage {
        source: format!("oci:{}:{}", dir.display(), img.name),
        manifest: img.manifest_digest,
        layers: img
            .layers
            .iter()
            .map(|desc| ExternalLayer {
                desc: *desc,
                fetch: BlobSource::Layout(dir.clone()),
            })
            .collect(),
        config: {
            // The config's bytes again, for Docker's fields oci-spec drops;
            // `open_layout` has checked them against their digest.
            let raw = fs::read(dir.join("blobs/sha256").join(img.config_digest.hex()))
                .unwrap_or_default();
            image_config(&img.config, &raw)
        },
    })
}

/// A base from a registry: the manifest (the linux/amd64 one of an index),
/// its config, and its layers' descriptors.
fn from_registry(
    reg: &Registry,
    cache: &Cache,
    text: &str,
    pin: Option<&Digest>,
    insecure: bool,
    (os, arch, variant): &Platform,
) -> Result<ExternalImage, Error> {
    let mut r = Reference::parse(text)?;
    if r.digest.is_none() {
        r.digest = pin.copied();
    }
    let mut manifest = manifest(reg, cache, &r)?;
    if manifest.is_index() {
        let index: ImageIndex = json(&manifest.bytes, "index")?;
        let pick = index
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == *os
                        && p.architecture().to_string() == *arch
                        // A variant the spec names must match; none takes the first.
                        && variant.as_ref().is_none_or(|v| p.variant().as_ref() == Some(v))
                })
            })
            .ok_or_else(|| Error::BadSource {
                source_ref: r.to_string(),
                reason: format!(
                    "index {} has no {} image",
                    manifest.digest,
                    platform_text(&(os.clone(), arch.clone(), variant.clone()))
                ),
            })?;
        let d: Digest = pick
            .digest()
            .to_string()
            .parse()
            .map_err(|e| bad_source(&r, e))?;
        manifest = self::manifest(reg, cache, &r.at_digest(d))?;
    }
    let m: ImageManifest = json(&manifest.bytes, "manifest")?;
    let config_digest: Digest = m
        .config()
        .digest()
        .to_string()
        .parse()
        .map_err(|e| bad_source(&r, e))?;
    let config_bytes = match cache.get_bytes(&config_digest) {
        Some(b) => b,
        None => {
            // The manifest names the size; a config over this is refused
            // before it is fetched into memory.
            const MAX_CONFIG: u64 = 16 << 20;
            if m.config().size() > MAX_CONFIG {
                return Err(bad_source(
                    &r,
                    format!(
                        "config {config_digest} is {} bytes, more than the {MAX_CONFIG} an image config may have",
                        m.config().size()
                    ),
                ));
            }
            let mut buf = Vec::new();
            reg.fetch_blob(&r, &config_digest, Some(m.config().size()), &mut buf)?;
            cache.put_bytes(&buf)?;
            buf
        }
    };
    let config: ImageConfiguration = json(&config_bytes, "config")?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != m.layers().len() {
        return Err(bad_source(
            &r,
            format!(
                "manifest {} has {} layers but its config {} diff_ids",
                manifest.digest,
                m.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let repository = format!("docker://{}/{}", r.registry, r.repository);
    let layers = m
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| {
            Ok(ExternalLayer {
                desc: strata_layer::LayerDescriptor {
                    blob: l
                        .digest()
                        .to_string()
                        .parse()
                        .map_err(|e| bad_source(&r, e))?,
                    diff_id: diff_id.parse().map_err(|e| bad_source(&r, e))?,
                    size: l.size(),
                    media_type: layer_media_type(l.media_type().as_ref())?,
                },
                fetch: BlobSource::Registry {
                    repository: repository.clone(),
                    insecure,
                },
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(ExternalImage {
        source: format!("{repository}@{}", manifest.digest),
        manifest: manifest.digest,
        layers,
        config: image_config(&config, &config_bytes),
    })
}

/// A manifest by reference: from the cache when pinned by digest and kept,
/// else from the registry (and then kept).
fn manifest(
    reg: &Registry,
    cache: &Cache,
    r: &Reference,
) -> Result<strata_registry::Manifest, Error> {
    if let Some(d) = r.digest
        && let Some(bytes) = cache.get_bytes(&d)
        && let Ok(media_type) = media_type(&bytes)
    {
        return Ok(strata_registry::Manifest {
            bytes,
            digest: d,
            media_type,
        });
    }
    let m = reg.fetch_manifest(r)?;
    cache.put_bytes(&m.bytes)?;
    Ok(m)
}

/// The OCI media type of a layer of a base: a docker schema 2 layer is the
/// same bytes under another name, so the image built on it is the same
/// whichever format the base was pushed in.
fn layer_media_type(t: &str) -> Result<strata_layer::MediaType, Error> {
    strata_layer::MediaType::parse(t).ok_or_else(|| Error::BadSource {
        source_ref: "a base".to_owned(),
        reason: format!(
            "a layer has media type {t}, which strata cannot reuse (tar, tar+gzip or tar+zstd)"
        ),
    })
}

fn media_type(bytes: &[u8]) -> Result<String, Error> {
    let v: serde_json::Value = json(bytes, "manifest")?;
    Ok(match v.get("mediaType").and_then(|t| t.as_str()) {
        Some(t) => t.to_owned(),
        None if v.get("manifests").is_some() => strata_registry::OCI_INDEX.to_owned(),
        None => strata_registry::OCI_MANIFEST.to_owned(),
    })
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: format!("unreadable {what}"),
        source,
    })
}

/// An external base strata refuses, and why.
fn bad_source(r: &impl std::fmt::Display, reason: impl std::fmt::Display) -> Error {
    Error::BadSource {
        source_ref: r.to_string(),
        reason: reason.to_string(),
    }
}

/// The config an image inherits from an external base, as strata holds it.
fn image_config(c: &ImageConfiguration, raw: &[u8]) -> ImageConfig {
    let (healthcheck, shell) = strata_export::read_docker_fields(raw);
    let mut out = ImageConfig {
        healthcheck,
        shell,
        os: c.os().to_string(),
        architecture: c.architecture().to_string(),
        variant: c.variant().clone(),
        author: c.author().clone(),
        ..ImageConfig::default()
    };
    if let Some(cfg) = c.config() {
        out.env = cfg.env().clone().unwrap_or_default();
        out.cmd = cfg.cmd().clone();
        out.entrypoint = cfg.entrypoint().clone();
        out.workdir = cfg.working_dir().clone().filter(|w| !w.is_empty());
        out.user = cfg.user().clone().filter(|u| !u.is_empty());
        out.exposed_ports = cfg
            .exposed_ports()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        out.volumes = cfg
            .volumes()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        out.labels = cfg
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        out.stop_signal = cfg.stop_signal().clone();
    }
    out
}

/// Fetch the blob of an external layer into `blob` (a cache blob being
/// written), checked against its digest and size; returns its listing.
pub fn fetch_layer(
    layer: &LayerNode,
    ext: &ExternalLayer,
    cache: &Cache,
    blob: &mut BlobWriter,
) -> Result<strata_layer::Listing, Error> {
    // Into a temporary file first: the listing is read from it, then it is
    // copied into the cache entry.
    let tmp_dir = cache.root().join("tmp");
    let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|source| Error::Io {
        path: tmp_dir.clone(),
        source,
    })?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    match &ext.fetch {
        BlobSource::Layout(dir) => {
            let path = dir.join("blobs/sha256").join(ext.desc.blob.hex());
            let mut src = fs::File::open(&path).map_err(io_err(&path))?;
            let mut w = HashingWriter::new(io::BufWriter::new(tmp.as_file_mut()));
            io::copy(&mut src, &mut w).map_err(io_err(&path))?;
            let (found, n, mut inner) = w.finish();
            inner.flush().map_err(io_err(&path))?;
            if found != ext.desc.blob || n != ext.desc.size {
                return Err(Error::DigestMismatch {
                    what: format!(
                        "{} ({n} bytes; the manifest says {})",
                        path.display(),
                        ext.desc.size
                    ),
                    expected: ext.desc.blob,
                    found,
                });
            }
        }
        BlobSource::Registry {
            repository,
            insecure,
        } => {
            let r = Reference::parse(repository)?;
            let reg = Registry::new(&strata_registry::Options {
                insecure: *insecure,
            })?;
            let mut w = io::BufWriter::new(tmp.as_file_mut());
            reg.fetch_blob(&r, &ext.desc.blob, Some(ext.desc.size), &mut w)?;
            w.flush().map_err(io_err(&tmp_dir))?;
        }
    }
    let listing = check_contents(
        tmp.path(),
        ext.desc.media_type,
        &ext.desc.diff_id,
        &layer.qualified_name(),
    )?;
    let mut file = fs::File::open(tmp.path()).map_err(io_err(tmp.path()))?;
    io::copy(&mut file, blob).map_err(io_err(tmp.path()))?;
    Ok(listing)
}

/// Read a fetched layer blob once: its listing, and a check that its
/// uncompressed tar hashes to `diff_id` (what a runtime checks on unpack;
/// a base or remote cache that says otherwise is refused here, not there).
pub(crate) fn check_contents(
    path: &Path,
    media_type: strata_layer::MediaType,
    diff_id: &Digest,
    layer: &str,
) -> Result<strata_layer::Listing, Error> {
    let file = io::BufReader::with_capacity(
        1 << 20,
        fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?,
    );
    check_stream(file, path, media_type, diff_id, layer)
}

/// [`check_contents`] of a blob's bytes as `file` reads them (`path` names
/// them in errors): what a remote cache hit runs on another thread while
/// the blob is still arriving, so its bytes are read once.
pub(crate) fn check_stream(
    file: impl io::BufRead,
    path: &Path,
    media_type: strata_layer::MediaType,
    diff_id: &Digest,
    layer: &str,
) -> Result<strata_layer::Listing, Error> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let tar: Box<dyn io::Read + '_> = match media_type {
        strata_layer::MediaType::TarGzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        strata_layer::MediaType::TarZstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(io_err)?)
        }
        strata_layer::MediaType::Tar => Box::new(file),
    };
    let mut hashed = HashingReader(tar, HashingWriter::new(io::sink()));
    let listing = strata_layer::list_blob(&mut hashed).map_err(|source| Error::Layer {
        layer: layer.to_owned(),
        source,
    })?;
    // The listing stops at the end-of-archive marker: hash the rest too.
    io::copy(&mut hashed, &mut io::sink()).map_err(io_err)?;
    let (found, _, _) = hashed.1.finish();
    if found != *diff_id {
        return Err(Error::DiffIdMismatch {
            layer: layer.to_owned(),
            expected: *diff_id,
            found,
        });
    }
    Ok(listing)
}

/// A reader that hashes what passes through it.
struct HashingReader<R>(R, HashingWriter<io::Sink>);

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Read and plan a spec whose external bases are resolved first, through
/// `cache` (the default cache, opened only if the spec has external bases,
/// when `None`).
pub fn plan_spec_with_bases(
    spec_path: &Path,
    mut opts: strata_plan::PlanOptions,
    cache: Option<&Cache>,
    base_opts: &BaseOptions,
) -> Result<strata_plan::Plan, Error> {
    let spec = crate::compose::read_spec(spec_path, &mut opts.args)?;
    let dir = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let external = spec.images.iter().any(|i| {
        i.from
            .as_ref()
            .is_some_and(|f| ExternalBase::parse(&f.value).is_some())
    });
    let mut base_problems = None;
    if external {
        let cache = match cache {
            Some(c) => c.clone(),
            None => Cache::open(Cache::default_dir())?,
        };
        match resolve(&spec, dir, &cache, base_opts) {
            Ok(bases) => opts.bases = bases,
            // Planned all the same: a base that cannot be fetched must not
            // hide the spec's other mistakes, which the user would otherwise
            // meet one run later.
            Err(Error::Spec(d)) => base_problems = Some(d),
            Err(e) => return Err(e),
        }
    }
    let has_urls = spec
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .flat_map(|l| &l.ops)
        .any(|o| {
            matches!(
                o.value,
                strata_spec::Op::Add {
                    checksum: Some(_),
                    ..
                }
            )
        });
    if has_urls {
        let cache = match cache {
            Some(c) => c.clone(),
            None => Cache::open(Cache::default_dir())?,
        };
        opts.urls = crate::urls::fetch(&spec, &cache)?;
    }
    let has_packages = spec
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .flat_map(|l| &l.ops)
        .any(|o| matches!(o.value, strata_spec::Op::Packages(_)));
    if has_packages {
        let cache = match cache {
            Some(c) => c.clone(),
            None => Cache::open(Cache::default_dir())?,
        };
        opts.packages =
            crate::packages::resolve(&spec, dir, cache.root(), &base_opts.packages)?.ops;
    }
    let planned = strata_plan::plan(&spec, spec_path, &opts);
    match (planned, base_problems) {
        (Ok(plan), None) => Ok(plan),
        (Ok(_), Some(bases)) => Err(Error::Spec(bases)),
        (Err(planned), None) => Err(Error::Spec(Box::new(planned))),
        (Err(planned), Some(mut all)) => {
            for item in planned.items {
                // The planner's word for a base that `resolve` already
                // reported, with its reason.
                let unresolved = item.message.starts_with("external base `")
                    && item.message.ends_with("` was not resolved");
                if !unresolved {
                    all.push(item);
                }
            }
            all.items.sort_by_key(|d| d.span.offset());
            Err(Error::Spec(all))
        }
    }
}
