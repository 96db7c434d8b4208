//! The `--json` forms of `strata plan`, `strata inspect` and `strata diff`:
//! one JSON object each, keys sorted (serde_json's map is ordered), digests
//! as `sha256:…` and blake3 keys as hex, for scripts (`jq`).

use serde_json::{Value, json};
use strata_plan::Plan;

use crate::Error;

fn blake3_hex(d: &[u8; 32]) -> String {
    blake3::Hash::from(*d).to_hex().to_string()
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise: {e}\"}}"));
    s.push('\n');
    s
}

/// `strata plan --json`: every layer (key, the parts it is made of, what it
/// reads), every image (its layer stack, platform) and every index.
pub fn plan_json(plan: &Plan) -> String {
    let layers: Vec<Value> = plan
        .layers
        .iter()
        .map(|l| {
            json!({
                "name": l.qualified_name(),
                "key": l.key.hex(),
                "reads_below": l.reads_below,
                "depends_on": l.deps().iter().map(|&d| plan.layer(d).qualified_name()).collect::<Vec<_>>(),
                "ops": l.steps().len(),
                "inputs": l.inputs.iter().map(|i| json!({
                    "src": i.src,
                    "blake3": blake3_hex(&i.digest),
                })).collect::<Vec<_>>(),
                "key_parts": l.key_parts.iter().map(|p| json!({
                    "label": p.label,
                    "blake3": blake3_hex(&p.digest),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let images: Vec<Value> = plan
        .images
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "tag": i.tag,
                "platform": i.config.platform(),
                "layers": i.layers.iter().map(|&id| plan.layer(id).qualified_name()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let indexes: Vec<Value> = plan
        .indexes
        .iter()
        .map(|x| {
            json!({
                "name": x.name,
                "images": x.images.iter().filter_map(|&i| plan.images.get(i)).map(|i| json!({
                    "name": i.name,
                    "platform": i.config.platform(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let spec = std::path::Path::new(&plan.spec_name)
        .file_name()
        .map_or_else(
            || plan.spec_name.clone(),
            |n| n.to_string_lossy().into_owned(),
        );
    pretty(&json!({
        "spec": spec,
        "epoch": plan.epoch,
        "compression": plan.compression.identity(),
        "layers": layers,
        "images": images,
        "indexes": indexes,
    }))
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
        for (
            i,
            strata_layer::LayerDescriptor {
                blob,
                diff_id,
                size,
                media_type,
            },
        ) in img.layers.iter().enumerate()
        {
            let mut layer = json!({
                "digest": blob.to_string(),
                "diff_id": diff_id.to_string(),
                "size": size,
                "media_type": media_type.as_str(),
            });
            if files {
                let listing = crate::inspect::layer_listing(
                    &layout,
                    blob,
                    &format!("{} layer {}", img.name, i + 1),
                )?;
                layer["files"] =
                    serde_json::to_value(&listing.entries).map_err(|source| Error::Json {
                        what: format!("{} layer {}", img.name, i + 1),
                        source,
                    })?;
            }
            layers.push(layer);
        }
        let config = serde_json::to_value(&img.config).map_err(|source| Error::Json {
            what: format!("{}: the config", img.name),
            source,
        })?;
        let referrers: Vec<Value> = layout
            .referrers()
            .iter()
            .filter(|r| r.subject == Some(img.manifest_digest))
            .map(|r| json!({"digest": r.manifest_digest.to_string(), "artifact_type": r.artifact_type}))
            .collect();
        out.push(json!({
            "name": img.name,
            "manifest": img.manifest_digest.to_string(),
            "config_digest": img.config_digest.to_string(),
            "annotations": img.manifest.annotations().clone().unwrap_or_default().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "config": config,
            "layers": layers,
            "referrers": referrers,
        }));
    }
    let indexes: Vec<Value> = indexes
        .into_iter()
        .map(|x| {
        json!({
            "name": x.name,
            "digest": x.digest.to_string(),
            "manifests": x.manifests.iter().map(|(d, p)| json!({"digest": d.to_string(), "platform": p})).collect::<Vec<_>>(),
        })
    })
    .collect();
    Ok(pretty(&json!({
        "layout": dir,
        "images": out,
        "indexes": indexes,
    })))
}

/// `strata diff --json`: whether the sides are identical, and the lines of
/// the text form (each starting `-`, `+`, `~` or a heading), in order.
pub fn diff_json(a: &str, b: &str, diff: &crate::diff::Diff) -> String {
    pretty(&json!({
        "a": a,
        "b": b,
        "identical": diff.identical(),
        "lines": diff.text.lines().collect::<Vec<_>>(),
    }))
}
