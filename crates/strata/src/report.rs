//! What a compose did: per image and per layer digests, sizes and cache use,
//! as a short human summary or as JSON for scripts.

use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;
use strata_layer::{Digest, LayerDescriptor};

/// Whether a layer came from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    Hit,
    Miss,
}

/// What a remote cache (`--remote-cache`) did for a layer: `hit`, its
/// blob and record fetched from it (and checked), nothing built; `miss`,
/// asked but not there (or its entry was bad, or the server unreachable),
/// so the layer came from the local cache or a local build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteStatus {
    Hit,
    Miss,
    /// Built on a remote worker (`--remote-exec`).
    Build,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// `image/layer` of the image that defines it.
    pub name: String,
    /// The blob: in JSON its `diff_id`, `digest`, `size` and `media_type`.
    #[serde(flatten)]
    pub desc: LayerDescriptor,
    pub cache: CacheStatus,
    /// With a remote cache, what it gave for this layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteStatus>,
    /// Why a layer missed: the first build, which part of its key changed
    /// since the last build of this layer, or a corrupt entry that was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miss_reason: Option<String>,
    /// The layer's cache key (blake3, hex): what its inputs and settings hash to.
    pub key: String,
    /// The compressor's identity ([`strata_layer::Compression::identity`]).
    pub compression: String,
    /// Every entry of the layer, for lock files; not in the JSON report.
    /// Shared by every image that has the layer: a base under 200 images
    /// is held once, not 200 times.
    #[serde(skip)]
    pub listing: std::sync::Arc<strata_layer::Listing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub tag: String,
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<LayerReport>,
    /// The SBOM artifact manifest about this image (`compose --sbom`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<Digest>,
}

/// A multi-platform image: an image index over images of the spec.
#[derive(Debug, Clone, Serialize)]
pub struct IndexReport {
    pub name: String,
    /// The digest of the image index.
    pub digest: Digest,
    /// Its images: name and `os/arch[/variant]`.
    pub images: Vec<IndexMember>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexMember {
    pub name: String,
    pub platform: String,
    pub manifest: Digest,
}

/// The report of each index of `plan`, as `written`.
pub(crate) fn index_reports(
    plan: &strata_plan::Plan,
    written: &strata_export::Written,
) -> Vec<IndexReport> {
    plan.indexes
        .iter()
        .zip(&written.indexes)
        .map(|(index, digest)| IndexReport {
            name: index.name.clone(),
            digest: *digest,
            images: index
                .images
                .iter()
                .filter_map(|&i| {
                    let image = plan.images.get(i)?;
                    Some(IndexMember {
                        name: image.name.clone(),
                        platform: image.config.platform(),
                        manifest: written.images.get(i)?.manifest,
                    })
                })
                .collect(),
        })
        .collect()
}

/// An external base as a compose resolved it.
#[derive(Debug, Clone, Serialize)]
pub struct BaseReport {
    /// The `from` as the spec wrote it.
    pub from: String,
    /// Where it was found, by digest.
    pub source: String,
    pub manifest: Digest,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComposeReport {
    pub spec: PathBuf,
    pub out: PathBuf,
    /// The layout at `out` already held exactly what this compose would
    /// write, and was left untouched (its files keep their inodes and mtimes).
    pub layout_unchanged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_archive: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci_archive: Option<PathBuf>,
    pub images: Vec<ImageReport>,
    /// Multi-platform images (`index` nodes of the spec).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexReport>,
    /// The external bases (`from "oci:..."`, `from "docker://..."`) and the
    /// manifest digest each resolved to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<BaseReport>,
    /// The build arguments (`arg`) and their values.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub args: std::collections::BTreeMap<String, String>,
    /// `--cache-from` or `--remote-cache`: layers fetched from the remote
    /// cache before building.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_cache_fetched: Option<usize>,
    /// `--cache-to`: layer artifacts pushed to the remote cache;
    /// `--remote-cache`: action results written to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_cache_pushed: Option<usize>,
    /// Wall time of the compose in milliseconds (not part of any digest).
    pub elapsed_ms: u64,
    /// The packages each `packages` layer installed, by `image/layer`, one
    /// `NAME VERSION ARCH SHA256 SIZE FILENAME` line each.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub packages: std::collections::BTreeMap<String, Vec<String>>,
}

impl ComposeReport {
    /// The short summary a terminal user sees.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let layers: std::collections::BTreeSet<Digest> = self
            .images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.desc.blob))
            .collect();
        let hits = self
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .filter(|l| l.cache == CacheStatus::Hit)
            .map(|l| l.desc.blob)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let _ = writeln!(
            s,
            "composed {} image(s) from {} distinct layer(s) ({} from cache) into {}{} in {}",
            self.images.len(),
            layers.len(),
            hits,
            self.out.display(),
            if self.layout_unchanged {
                " (up to date, left untouched)"
            } else {
                ""
            },
            if self.elapsed_ms < 1000 {
                format!("{} ms", self.elapsed_ms)
            } else {
                format!("{:.2} s", self.elapsed_ms as f64 / 1000.0)
            }
        );
        for img in &self.images {
            let _ = writeln!(s, "  {}:{}  manifest {}", img.name, img.tag, img.manifest);
            if let Some(sbom) = &img.sbom {
                let _ = writeln!(s, "    sbom (spdx) {sbom}");
            }
            for l in &img.layers {
                let _ = writeln!(
                    s,
                    "    {:<24} {}  {:>10}  {}",
                    l.name,
                    short(&l.desc.blob.to_string()),
                    human_size(l.desc.size),
                    match (&l.cache, &l.miss_reason) {
                        (CacheStatus::Hit, _) if l.remote == Some(RemoteStatus::Hit) => {
                            "remote hit".to_owned()
                        }
                        (CacheStatus::Hit, _) => "cached".to_owned(),
                        (CacheStatus::Miss, _) if l.remote == Some(RemoteStatus::Build) => {
                            "built remotely".to_owned()
                        }
                        (CacheStatus::Miss, Some(why)) => format!("built: {why}"),
                        (CacheStatus::Miss, None) => "built".to_owned(),
                    }
                );
            }
        }
        for index in &self.indexes {
            let _ = writeln!(s, "  {} (index)  {}", index.name, index.digest);
            for m in &index.images {
                let _ = writeln!(s, "    {:<24} {}", m.platform, m.name);
            }
        }
        if let Some(a) = &self.docker_archive {
            let _ = writeln!(s, "  docker-archive: {}", a.display());
        }
        if let Some(a) = &self.oci_archive {
            let _ = writeln!(s, "  oci-archive: {}", a.display());
        }
        s
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// `1.5 MiB`-style sizes.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl ComposeReport {
    /// The `--json` form: one object, keys in a fixed order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise the report: {e}\"}}"))
    }
}
