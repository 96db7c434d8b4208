//! `strata push` and `compose --push`: an image of an OCI layout to a
//! registry, blob by blob, with the layout's own manifest bytes; an
//! index with its images, and the artifacts (SBOMs) about an image as its
//! OCI 1.1 referrers.
//!
//! Blobs the registry has already are skipped (a `HEAD` each), so a push
//! that died half-way resumes where it stopped: the blobs that made it are
//! not sent again. The manifest is pushed last and as the exact bytes of the
//! layout, so the digest the registry serves is the local one, and a tag
//! never points at an image whose blobs are not all there.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;
use strata_layer::Digest;
use strata_registry::{OCI_MANIFEST, Reference, Registry};

use crate::Error;

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// The image's name in the layout.
    pub image: String,
    /// Where it went: `docker://HOST/REPO:TAG`.
    pub reference: String,
    /// The manifest digest, the same locally and in the registry.
    pub manifest: String,
    pub blobs: Vec<PushedBlob>,
    /// For an index: its images, each pushed by digest into the same
    /// repository before the index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PushReport>,
    /// The artifacts about the image (SBOMs) pushed as its referrers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<PushedReferrer>,
}

/// An artifact (an SBOM) pushed as a referrer of an image (OCI 1.1).
#[derive(Debug, Clone, Serialize)]
pub struct PushedReferrer {
    pub artifact_type: String,
    /// The artifact manifest's digest.
    pub manifest: String,
    /// Whether the registry lacks the referrers API, so that the artifact
    /// was listed under the fallback tag `sha256-HEX` instead.
    pub fallback_tag: Option<String>,
}

/// One blob of a push.
#[derive(Debug, Clone, Serialize)]
pub struct PushedBlob {
    pub digest: String,
    pub size: u64,
    /// False when the registry had it already (or it was mounted).
    pub uploaded: bool,
    /// Linked from another repository of the registry, with no upload
    /// (`compose --push`: a layer shared by two images is sent once).
    pub mounted: bool,
}

impl PushReport {
    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let mut out: String = self.images.iter().map(PushReport::summary).collect();
        out.push_str(&self.own_summary());
        for r in &self.referrers {
            out.push_str(&format!(
                "  referrer {} ({}){}\n",
                r.manifest,
                r.artifact_type,
                r.fallback_tag
                    .as_ref()
                    .map(|t| format!(", listed under tag {t}: the registry has no referrers API"))
                    .unwrap_or_default()
            ));
        }
        out
    }

    fn own_summary(&self) -> String {
        let sent = self.blobs.iter().filter(|b| b.uploaded).count();
        let mounted = self.blobs.iter().filter(|b| b.mounted).count();
        let bytes: u64 = self
            .blobs
            .iter()
            .filter(|b| b.uploaded)
            .map(|b| b.size)
            .sum();
        format!(
            "pushed {} to {} ({}): {sent} of {} blobs uploaded ({}), {mounted} mounted, {} already there\n",
            self.image,
            self.reference,
            self.manifest,
            self.blobs.len(),
            crate::human_size(bytes),
            self.blobs.len() - sent - mounted
        )
    }
}

/// Parse a registry reference given on the command line or in a spec: it
/// must start with `docker://`, so that it cannot be mistaken for a path.
pub fn parse_registry_ref(text: &str) -> Result<Reference, Error> {
    if !text.starts_with("docker://") {
        return Err(Error::Registry(strata_registry::Error::BadReference {
            reference: text.to_owned(),
            reason: "a registry reference starts with docker:// (docker://HOST/REPO:TAG)".into(),
        }));
    }
    Ok(Reference::parse(text)?)
}

/// Push image `tag` of the layout at `dir` (the only image when `tag` is
/// `None`) to `dest`. A `dest` without tag or digest gets the image's name
/// in the layout as its tag.
pub fn push(
    registry: &Registry,
    dir: &Path,
    tag: Option<&str>,
    dest: &Reference,
) -> Result<PushReport, Error> {
    push_mounting(registry, dir, tag, dest, &mut BTreeMap::new())
}

/// [`push`], mounting blobs that `pushed` says another repository of the
/// same registry has, and adding to `pushed` the blobs this push leaves in
/// `dest`'s repository.
fn push_mounting(
    registry: &Registry,
    dir: &Path,
    tag: Option<&str>,
    dest: &Reference,
    pushed: &mut BTreeMap<Digest, Reference>,
) -> Result<PushReport, Error> {
    let layout = strata_export::open_layout(dir)?;
    // A name that is an index's (and no image's) pushes the index.
    if let Some(tag) = tag
        && !layout.images().iter().any(|i| i.name == tag)
        && let Some(index) = layout.indexes().iter().find(|i| i.name == tag)
    {
        return push_index(registry, &layout, index, dest, pushed);
    }
    let image = layout.one(tag)?;
    push_image(registry, &layout, image, dest, pushed)
}

/// Push `index` of `layout`: each of its images by digest into `dest`'s
/// repository (their blobs mounted when another repository has them),
/// then the index as the layout's bytes under `dest`'s tag (the index's
/// name when it has none), so the tag never names an index whose images
/// are not all there.
fn push_index(
    registry: &Registry,
    layout: &strata_export::Layout,
    index: &strata_export::LayoutIndex,
    dest: &Reference,
    pushed: &mut BTreeMap<Digest, Reference>,
) -> Result<PushReport, Error> {
    let dest = if dest.tag.is_none() && dest.digest.is_none() {
        dest.with_tag(&index.name)?
    } else {
        dest.clone()
    };
    if let Some(d) = dest.digest
        && d != index.digest
    {
        return Err(Error::Usage(format!(
            "{dest} names digest {d}, but index {} has digest {}",
            index.name, index.digest
        )));
    }
    let mut images = Vec::new();
    for (digest, platform) in &index.manifests {
        let image = layout
            .images()
            .iter()
            .find(|i| i.manifest_digest == *digest)
            .ok_or_else(|| Error::BadSource {
                source_ref: layout.dir().display().to_string(),
                reason: format!(
                    "index {} names image {digest} ({platform}), which the layout does not hold",
                    index.name
                ),
            })?;
        images.push(push_image(
            registry,
            layout,
            image,
            &dest.at_digest(*digest),
            pushed,
        )?);
    }
    let bytes = read_checked(layout, &index.digest, "the layout's index names it")?;
    let pushed_digest = registry.push_manifest(&dest, &bytes, strata_registry::OCI_INDEX)?;
    Ok(PushReport {
        image: index.name.clone(),
        reference: dest.to_string(),
        manifest: pushed_digest.to_string(),
        blobs: Vec::new(),
        images,
        referrers: Vec::new(),
    })
}

/// The bytes of blob `digest` of `layout`, checked against it: what a
/// registry gets must hash to what the layout names.
fn read_checked(
    layout: &strata_export::Layout,
    digest: &Digest,
    named_by: &str,
) -> Result<Vec<u8>, Error> {
    let path = layout.blob_path(digest);
    let bytes = fs::read(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let found = Digest::of(&bytes);
    if found != *digest {
        return Err(Error::DigestMismatch {
            what: format!("{} ({named_by})", path.display()),
            expected: *digest,
            found,
        });
    }
    Ok(bytes)
}

/// Push one image of `layout`, then its artifacts as referrers.
fn push_image(
    registry: &Registry,
    layout: &strata_export::Layout,
    image: &strata_export::LayoutImage,
    dest: &Reference,
    pushed: &mut BTreeMap<Digest, Reference>,
) -> Result<PushReport, Error> {
    let dest = if dest.tag.is_none() && dest.digest.is_none() {
        dest.with_tag(&image.name)?
    } else {
        dest.clone()
    };
    if let Some(d) = dest.digest
        && d != image.manifest_digest
    {
        return Err(Error::Usage(format!(
            "{dest} names digest {d}, but image {} has manifest {}",
            image.name, image.manifest_digest
        )));
    }

    let config_path = layout.blob_path(&image.config_digest);
    let config_size = fs::metadata(&config_path).map_or(0, |m| m.len());
    let all = image
        .layers
        .iter()
        .map(|l| (l.blob, l.size))
        .chain([(image.config_digest, config_size)]);
    let mut blobs = Vec::new();
    for (digest, size) in all {
        let (mut uploaded, mut mounted) = (false, false);
        if !registry.has_blob(&dest, &digest)? {
            mounted = pushed
                .get(&digest)
                .is_some_and(|from| registry.mount_blob(&dest, from, &digest));
            if !mounted {
                registry.upload_blob(&dest, &digest, &layout.blob_path(&digest))?;
                uploaded = true;
            }
        }
        pushed.insert(digest, dest.clone());
        blobs.push(PushedBlob {
            digest: digest.to_string(),
            size,
            uploaded,
            mounted,
        });
    }

    // The manifest goes as the layout's bytes, checked once more here: what
    // the registry gets must hash to what the layout's index says.
    let manifest_path = layout.blob_path(&image.manifest_digest);
    let bytes = fs::read(&manifest_path).map_err(|source| Error::Io {
        path: manifest_path.clone(),
        source,
    })?;
    let media_type = image
        .manifest
        .media_type()
        .as_ref()
        .map_or_else(|| OCI_MANIFEST.to_owned(), |m| m.to_string());
    // Checked before the tag moves: a tag must never point at bytes that
    // are not the layout's image.
    let found = strata_layer::Digest::of(&bytes);
    if found != image.manifest_digest {
        return Err(Error::DigestMismatch {
            what: format!("{} (the layout's index names it)", manifest_path.display()),
            expected: image.manifest_digest,
            found,
        });
    }
    let pushed_digest = registry.push_manifest(&dest, &bytes, &media_type)?;
    debug_assert_eq!(pushed_digest, found);
    let referrers = layout
        .referrers()
        .iter()
        .filter(|r| r.subject == Some(image.manifest_digest))
        .map(|r| push_referrer(registry, layout, r, &image.manifest_digest, &dest, pushed))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PushReport {
        image: image.name.clone(),
        reference: dest.to_string(),
        manifest: pushed_digest.to_string(),
        blobs,
        images: Vec::new(),
        referrers,
    })
}

/// Push the artifact `referrer` of `layout` about `subject` into `dest`'s
/// repository: its blobs, its manifest by digest (its `subject` makes a
/// registry with the referrers API list it), and where the registry lacks
/// that API, an entry in the fallback tag's index (OCI 1.1 tag schema).
fn push_referrer(
    registry: &Registry,
    layout: &strata_export::Layout,
    referrer: &strata_export::LayoutReferrer,
    subject: &Digest,
    dest: &Reference,
    pushed: &mut BTreeMap<Digest, Reference>,
) -> Result<PushedReferrer, Error> {
    let bytes = read_checked(
        layout,
        &referrer.manifest_digest,
        "an artifact of the layout",
    )?;
    let bad = |reason: String| Error::BadSource {
        source_ref: layout
            .blob_path(&referrer.manifest_digest)
            .display()
            .to_string(),
        reason,
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let blobs = manifest["config"]
        .as_object()
        .into_iter()
        .chain(
            manifest["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_object()),
        )
        .map(|d| {
            d.get("digest")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<Digest>().ok())
                .ok_or_else(|| bad("a descriptor without a sha256 digest".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let at = dest.at_digest(referrer.manifest_digest);
    for digest in blobs {
        if !registry.has_blob(&at, &digest)? {
            registry.upload_blob(&at, &digest, &layout.blob_path(&digest))?;
        }
        pushed.insert(digest, at.clone());
    }
    registry.push_manifest(&at, &bytes, OCI_MANIFEST)?;
    let annotations: BTreeMap<String, String> = manifest["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let tagged = registry.list_referrer(
        dest,
        subject,
        &referrer.manifest_digest,
        bytes.len() as u64,
        &referrer.artifact_type,
        &annotations,
    )?;
    Ok(PushedReferrer {
        artifact_type: referrer.artifact_type.clone(),
        manifest: referrer.manifest_digest.to_string(),
        fallback_tag: tagged.then(|| strata_registry::fallback_tag(subject)),
    })
}

/// `compose --push docker://HOST/REPO`: every image of a composed layout
/// goes to `HOST/REPO/NAME:TAG` (NAME the image's name in the spec, TAG its
/// `tag`, default `latest`). A `base` with a tag or digest is refused: one
/// tag cannot name several images.
pub fn push_composed(
    registry: &Registry,
    report: &crate::ComposeReport,
    base: &Reference,
) -> Result<Vec<PushReport>, Error> {
    if base.tag.is_some() || base.digest.is_some() {
        return Err(Error::Registry(strata_registry::Error::BadReference {
            reference: base.to_string(),
            reason: "compose --push takes a repository without tag (docker://HOST/REPO); \
                     each image goes to REPO/NAME:TAG"
                .into(),
        }));
    }
    let mut pushed = BTreeMap::new();
    let mut out = report
        .images
        .iter()
        .map(|img| {
            let dest = base.join(&img.name)?.with_tag(&img.tag)?;
            push_mounting(registry, &report.out, Some(&img.name), &dest, &mut pushed)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // Each index goes to REPO/NAME:latest with its images, mounted from
    // the repositories they were just pushed to.
    for index in &report.indexes {
        let dest = base.join(&index.name)?.with_tag("latest")?;
        out.push(push_mounting(
            registry,
            &report.out,
            Some(&index.name),
            &dest,
            &mut pushed,
        )?);
    }
    Ok(out)
}
