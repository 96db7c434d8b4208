//! `compose --sbom`: an SPDX 2.3 JSON document per image, stored in the
//! layout as an artifact that refers to the image (see `strata_export`'s
//! referrers).
//!
//! The document is made from what the compose already knows, without reading
//! a blob again: every layer (a package, with its blob's sha256), every
//! regular file of every layer (path and sha256, from the layer listings the
//! builder produced), and every input the spec declared for those layers (a
//! package, with strata's blake3 content digest of it). It is deterministic:
//! `created` is the images' time (the spec's `epoch` or SOURCE_DATE_EPOCH),
//! the document namespace is derived from the image manifest's digest, there
//! is no random identifier, and the JSON is canonical (RFC 8785).
//!
//! What it does not claim: licenses (every license field is left out, which
//! SPDX 2.3 reads as NOASSERTION), and the SHA1 of each file that the SPDX
//! text asks for (listings keep sha256 only; the JSON schema accepts any
//! algorithm).

use std::collections::BTreeMap;

use canon_json::CanonJsonSerialize;
use serde_json::{Value, json};
use strata_export::{ARTIFACT_TYPE_SPDX, ExportImage, Referrer};
use strata_layer::{EntryKind, Listing};
use strata_plan::Plan;

use crate::Error;

/// The file name of the document in its artifact (`org.opencontainers.image.title`).
pub const SBOM_TITLE: &str = "sbom.spdx.json";

/// One referrer per image of `images` (the export form of `plan.images`, in
/// the same order): its SPDX document. `listing(layer)` is the listing of a
/// plan layer.
pub(crate) fn referrers<'a>(
    plan: &Plan,
    images: &[ExportImage],
    listing: impl Fn(strata_plan::LayerId) -> &'a Listing,
) -> Result<Vec<Referrer>, Error> {
    plan.images
        .iter()
        .zip(images)
        .enumerate()
        .map(|(i, (node, image))| {
            let json = strata_export::image_json(image)?;
            let created = strata_export::rfc3339(image.config.created).ok_or_else(|| {
                Error::Other(format!(
                    "image {}: its time is past the year 9999",
                    image.name
                ))
            })?;
            let layers: Vec<SbomLayer<'_>> = node
                .layers
                .iter()
                .zip(&image.layers)
                .map(|(&id, desc)| {
                    let layer = plan.layer(id);
                    SbomLayer {
                        name: layer.qualified_name(),
                        digest: desc.digest.to_string(),
                        diff_id: desc.diff_id.to_string(),
                        inputs: layer
                            .inputs
                            .iter()
                            .map(|input| (input.src.clone(), hex(&input.digest)))
                            .collect(),
                        listing: listing(id),
                    }
                })
                .collect();
            let doc = document(&SbomImage {
                name: &image.name,
                tag: &image.tag,
                manifest: &json.manifest_digest.to_string(),
                created: &created,
                layers: &layers,
            });
            let bytes = doc.to_canon_json_vec().map_err(|e| {
                Error::Other(format!("image {}: writing the sbom: {e}", image.name))
            })?;
            Ok(Referrer {
                subject: i,
                artifact_type: ARTIFACT_TYPE_SPDX.to_owned(),
                title: SBOM_TITLE.to_owned(),
                bytes,
                annotations: [("org.opencontainers.image.created".to_owned(), created)].into(),
            })
        })
        .collect()
}

/// What the document of one image is made of.
pub(crate) struct SbomImage<'a> {
    pub name: &'a str,
    pub tag: &'a str,
    /// `sha256:…` of the image manifest.
    pub manifest: &'a str,
    /// RFC 3339.
    pub created: &'a str,
    pub layers: &'a [SbomLayer<'a>],
}

/// One layer of an image, lowest first.
pub(crate) struct SbomLayer<'a> {
    /// `image/layer`.
    pub name: String,
    /// `sha256:…` of the blob.
    pub digest: String,
    pub diff_id: String,
    /// The spec's sources of this layer: (path as written, blake3 hex).
    pub inputs: Vec<(String, String)>,
    pub listing: &'a Listing,
}

fn hex(d: &[u8; 32]) -> String {
    blake3::Hash::from(*d).to_hex().to_string()
}

/// The SPDX 2.3 document of one image.
pub(crate) fn document(image: &SbomImage<'_>) -> Value {
    let manifest_hex = image
        .manifest
        .strip_prefix("sha256:")
        .unwrap_or(image.manifest);
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": image.name,
        "versionInfo": image.tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": manifest_hex}],
        "comment": format!("the OCI image manifest {}", image.manifest),
    })];
    let mut files = Vec::new();
    let mut relationships = vec![relationship(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        "SPDXRef-Image",
    )];
    // One package per distinct input (the same source in two layers is one).
    let mut inputs: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for layer in image.layers {
        for (src, digest) in &layer.inputs {
            let n = inputs.len() + 1;
            inputs
                .entry((src.as_str(), digest.as_str()))
                .or_insert_with(|| format!("SPDXRef-Input-{n}"));
        }
    }
    for ((src, digest), id) in &inputs {
        packages.push(json!({
            "SPDXID": id,
            "name": src,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "SOURCE",
            "checksums": [{"algorithm": "BLAKE3", "checksumValue": digest}],
            "comment": "an input the spec declares; the checksum is strata's content digest of it \
                        (blake3 over its canonical encoding: bytes, and for a directory its tree)",
        }));
    }
    for (n, layer) in image.layers.iter().enumerate() {
        let layer_id = format!("SPDXRef-Layer-{}", n + 1);
        packages.push(json!({
            "SPDXID": layer_id,
            "name": layer.name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "ARCHIVE",
            "checksums": [{
                "algorithm": "SHA256",
                "checksumValue": layer.digest.strip_prefix("sha256:").unwrap_or(&layer.digest),
            }],
            "comment": format!("layer {} of the image: blob {}, diff_id {}", n + 1, layer.digest, layer.diff_id),
        }));
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &layer_id));
        for (src, digest) in &layer.inputs {
            if let Some(input_id) = inputs.get(&(src.as_str(), digest.as_str())) {
                relationships.push(relationship(&layer_id, "GENERATED_FROM", input_id));
            }
        }
        // Regular files only: SPDX files carry a checksum, and a directory,
        // link or whiteout has none.
        let regular = layer
            .listing
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .filter_map(|e| e.digest.map(|d| (e, d)));
        for (m, (entry, digest)) in regular.enumerate() {
            let file_id = format!("SPDXRef-File-{}-{}", n + 1, m + 1);
            files.push(json!({
                "SPDXID": file_id,
                "fileName": format!("./{}", String::from_utf8_lossy(&entry.path.0)),
                "checksums": [{"algorithm": "SHA256", "checksumValue": digest.hex()}],
            }));
            relationships.push(relationship(&layer_id, "CONTAINS", &file_id));
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{}", image.name, image.tag),
        "documentNamespace": format!(
            "https://strata.invalid/spdx/{}/sha256-{manifest_hex}",
            image.name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.', "-")
        ),
        "creationInfo": {
            "created": image.created,
            "creators": [format!("Tool: strata-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}
