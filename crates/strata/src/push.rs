//! `strata push` and `compose --push`: an image of an OCI layout to a
//! registry, blob by blob, with the layout's own manifest bytes.
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
    let image = layout.one(tag)?;
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
    let pushed = registry.push_manifest(&dest, &bytes, &media_type)?;
    debug_assert_eq!(pushed, found);
    Ok(PushReport {
        image: image.name.clone(),
        reference: dest.to_string(),
        manifest: pushed.to_string(),
        blobs,
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
    report
        .images
        .iter()
        .map(|img| {
            let dest = base.join(&img.name)?.with_tag(&img.tag)?;
            push_mounting(registry, &report.out, Some(&img.name), &dest, &mut pushed)
        })
        .collect()
}
