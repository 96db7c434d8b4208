//! The `--json` forms of `strata plan`, `strata inspect` and `strata diff`:
//! one JSON object each, keys sorted (each typed form below goes through
//! serde_json's ordered map on its way out), digests as `sha256:…` and blake3
//! keys as hex, for scripts (`jq`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use strata_layer::{Digest, Entry, MediaType};
use strata_plan::Plan;

use crate::Error;

/// A blake3 digest as hex.
#[derive(Serialize)]
#[serde(transparent)]
struct Blake3(String);

impl Blake3 {
    fn of(d: &[u8; 32]) -> Blake3 {
        Blake3(blake3::Hash::from(*d).to_hex().to_string())
    }
}

/// `value` as pretty JSON with its keys sorted, and a newline.
fn pretty(value: &impl Serialize) -> String {
    let sorted = serde_json::to_value(value);
    let mut s = sorted
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise: {e}\"}}"));
    s.push('\n');
    s
}

#[derive(Serialize)]
struct PlanJson {
    spec: String,
    epoch: u64,
    compression: String,
    layers: Vec<PlanLayer>,
    images: Vec<PlanImage>,
    indexes: Vec<PlanIndex>,
}

#[derive(Serialize)]
struct PlanLayer {
    name: String,
    key: String,
    reads_below: bool,
    depends_on: Vec<String>,
    ops: usize,
    inputs: Vec<PlanInput>,
    key_parts: Vec<PlanKeyPart>,
}

#[derive(Serialize)]
struct PlanInput {
    src: String,
    blake3: Blake3,
}

#[derive(Serialize)]
struct PlanKeyPart {
    label: String,
    blake3: Blake3,
}

#[derive(Serialize)]
struct PlanImage {
    name: String,
    tag: String,
    platform: String,
    layers: Vec<String>,
}

#[derive(Serialize)]
struct PlanIndex {
    name: String,
    images: Vec<Member>,
}

#[derive(Serialize)]
struct Member {
    name: String,
    platform: String,
}

/// `strata plan --json`: every layer (key, the parts it is made of, what it
/// reads), every image (its layer stack, platform) and every index.
pub fn plan_json(plan: &Plan) -> String {
    let name = |id: &strata_plan::LayerId| plan.layer(*id).qualified_name();
    let layers = plan
        .layers
        .iter()
        .map(|l| PlanLayer {
            name: l.qualified_name(),
            key: l.key.hex(),
            reads_below: l.reads_below,
            depends_on: l.deps().iter().map(name).collect(),
            ops: l.steps().len(),
            inputs: l
                .inputs
                .iter()
                .map(|i| PlanInput {
                    src: i.src.clone(),
                    blake3: Blake3::of(&i.digest),
                })
                .collect(),
            key_parts: l
                .key_parts
                .iter()
                .map(|p| PlanKeyPart {
                    label: p.label.clone(),
                    blake3: Blake3::of(&p.digest),
                })
                .collect(),
        })
        .collect();
    let images = plan
        .images
        .iter()
        .map(|i| PlanImage {
            name: i.name.clone(),
            tag: i.tag.clone(),
            platform: i.config.platform(),
            layers: i.layers.iter().map(name).collect(),
        })
        .collect();
    let indexes = plan
        .indexes
        .iter()
        .map(|x| PlanIndex {
            name: x.name.clone(),
            images: x
                .images
                .iter()
                .filter_map(|&i| plan.images.get(i))
                .map(|i| Member {
                    name: i.name.clone(),
                    platform: i.config.platform(),
                })
                .collect(),
        })
        .collect();
    let spec = std::path::Path::new(&plan.spec_name)
        .file_name()
        .map_or_else(
            || plan.spec_name.clone(),
            |n| n.to_string_lossy().into_owned(),
        );
    pretty(&PlanJson {
        spec,
        epoch: plan.epoch,
        compression: plan.compression.identity(),
        layers,
        images,
        indexes,
    })
}

#[derive(Serialize)]
struct InspectJson {
    layout: std::path::PathBuf,
    images: Vec<InspectImage>,
    indexes: Vec<InspectIndex>,
}

#[derive(Serialize)]
struct InspectImage {
    name: String,
    manifest: Digest,
    config_digest: Digest,
    annotations: BTreeMap<String, String>,
    /// The OCI config as the layout holds it.
    config: Value,
    layers: Vec<InspectLayer>,
    referrers: Vec<InspectReferrer>,
}

#[derive(Serialize)]
struct InspectLayer {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    media_type: MediaType,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<Entry>>,
}

#[derive(Serialize)]
struct InspectReferrer {
    digest: Digest,
    artifact_type: String,
}

#[derive(Serialize)]
struct InspectIndex {
    name: String,
    digest: Digest,
    manifests: Vec<IndexManifest>,
}

#[derive(Serialize)]
struct IndexManifest {
    digest: Digest,
    platform: String,
}

#[derive(Serialize)]
struct DiffJson<'a> {
    a: &'a str,
    b: &'a str,
    identical: bool,
    lines: Vec<&'a str>,
}

/// `strata inspect --json`: the images of a layout (or the one tagged, or
/// the images of the tagged index): digests, layers, the OCI config and the
/// manifest annotations, with `files` every layer's listing; and its indexes
/// and referrers.
pub fn inspect_json(target: &str, files: bool) -> Result<String, Error> {
    let (dir, tag) = crate::inspect::parse_target(target);
    let layout = strata_export::open_layout(&dir)?;
    let crate::inspect::Selection { images, indexes } =
        crate::inspect::select(&layout, tag.as_deref())?;
    let mut out = Vec::with_capacity(images.len());
    for img in images {
        let mut layers = Vec::with_capacity(img.layers.len());
        for (i, d) in img.layers.iter().enumerate() {
            let files = if files {
                let what = format!("{} layer {}", img.name, i + 1);
                Some(crate::inspect::layer_listing(&layout, &d.blob, &what)?.entries)
            } else {
                None
            };
            layers.push(InspectLayer {
                digest: d.blob,
                diff_id: d.diff_id,
                size: d.size,
                media_type: d.media_type,
                files,
            });
        }
        // The config's own bytes (checked against their digest when the
        // layout was read), so Docker's fields that `oci-spec` drops
        // (`Healthcheck`, `Shell`) are shown too.
        let raw = std::fs::read(layout.blob_path(&img.config_digest))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let config = match raw {
            Some(v) => v,
            None => serde_json::to_value(&img.config).map_err(|source| Error::Json {
                what: format!("{}: the config", img.name),
                source,
            })?,
        };
        out.push(InspectImage {
            name: img.name.clone(),
            manifest: img.manifest_digest,
            config_digest: img.config_digest,
            annotations: img
                .manifest
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            config,
            layers,
            referrers: layout
                .referrers()
                .iter()
                .filter(|r| r.subject == Some(img.manifest_digest))
                .map(|r| InspectReferrer {
                    digest: r.manifest_digest,
                    artifact_type: r.artifact_type.clone(),
                })
                .collect(),
        });
    }
    let indexes = indexes
        .into_iter()
        .map(|x| InspectIndex {
            name: x.name.clone(),
            digest: x.digest,
            manifests: x
                .manifests
                .iter()
                .map(|(d, p)| IndexManifest {
                    digest: *d,
                    platform: p.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(pretty(&InspectJson {
        layout: dir,
        images: out,
        indexes,
    }))
}

/// `strata diff --json`: whether the sides are identical, and the lines of
/// the text form (each starting `-`, `+`, `~` or a heading), in order.
pub fn diff_json(a: &str, b: &str, diff: &crate::diff::Diff) -> String {
    pretty(&DiffJson {
        a,
        b,
        identical: diff.identical(),
        lines: diff.text.lines().collect(),
    })
}
