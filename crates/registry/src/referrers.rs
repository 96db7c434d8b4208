//! OCI 1.1 referrers: an artifact manifest whose `subject` is an image
//! manifest, pushed by digest, must be findable from that image. A registry
//! with the referrers API (`GET /v2/REPO/referrers/DIGEST`) lists it by
//! itself; one without (distribution 2.8 has none) needs the tag schema
//! fallback the distribution spec defines: an image index tagged
//! `sha256-HEX` (the subject's digest) that lists every referrer, which the
//! client reads, extends and writes back.
//!
//! Whether the registry has the API is told by asking it for the referrers
//! after the push (oci-client's `pull_referrers` reads the API, and the
//! fallback tag when the API answers 404): only when that does not list
//! the artifact is the fallback tag written.

use std::collections::BTreeMap;

use strata_oci::Digest;

use crate::{Error, OCI_INDEX, OCI_MANIFEST, Reference, Registry};

impl Registry {
    /// The manifests the registry lists as referring to `subject` in `r`'s
    /// repository (its referrers API, else its fallback tag); empty when it
    /// lists none or cannot say.
    pub fn referrers(&self, r: &Reference, subject: &Digest) -> Vec<Digest> {
        let at = r.at_digest(*subject);
        self.auth(&at);
        match self
            .rt
            .block_on(self.client.pull_referrers(&at.to_oci(), None))
        {
            Ok(index) => index
                .manifests
                .iter()
                .filter_map(|m| m.digest.parse().ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Make the artifact manifest `artifact` (pushed by digest into `r`'s
    /// repository: `size` bytes, of `artifact_type`, with `annotations`)
    /// findable from `subject`: nothing more when the registry lists it
    /// already, else it is added to the fallback tag's index. Returns
    /// whether that tag was written.
    pub fn list_referrer(
        &self,
        r: &Reference,
        subject: &Digest,
        artifact: &Digest,
        size: u64,
        artifact_type: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        if self.referrers(r, subject).contains(artifact) {
            return Ok(false);
        }
        let tag = r.with_tag(&fallback_tag(subject))?;
        let protocol = |reason: String| Error::Protocol {
            registry: r.registry.clone(),
            what: format!("the referrers of {subject} (tag {})", fallback_tag(subject)),
            reason,
        };
        let mut index: serde_json::Value = match self.fetch_manifest(&tag) {
            Ok(m) => serde_json::from_slice(&m.bytes).map_err(|e| protocol(e.to_string()))?,
            Err(e) if e.is_not_found() => serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [],
            }),
            Err(e) => return Err(e),
        };
        let Some(manifests) = index.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
            return Err(protocol("the tag is not an image index".into()));
        };
        let mut desc = serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": artifact.to_string(),
            "size": size,
            "artifactType": artifact_type,
        });
        if !annotations.is_empty() {
            desc["annotations"] = serde_json::json!(annotations);
        }
        manifests.push(desc);
        let bytes = serde_json::to_vec(&index).map_err(|e| protocol(e.to_string()))?;
        self.push_manifest(&tag, &bytes, OCI_INDEX)?;
        Ok(true)
    }
}

/// The tag schema's tag for the referrers of `subject`: `sha256-HEX`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}
