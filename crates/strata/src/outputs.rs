//! What a compose writes into the layout besides its images: SBOM referrers
//! (`--sbom`) and multi-platform indexes (`index` nodes), and the OCI archive
//! (`--oci-archive`). Kept apart from the executor so that `compose` only
//! calls in here.

use strata_export::{ExportImage, LayoutExtras, MultiPlatform, Written};
use strata_layer::Listing;
use strata_plan::{LayerId, Plan};

use crate::{ComposeOptions, Error};

/// The referrers and indexes to write with `images` (the export form of
/// `plan.images`, in order); `listing(layer)` is the listing of a built layer.
pub(crate) fn layout_extras<'a>(
    plan: &Plan,
    images: &[ExportImage],
    opts: &ComposeOptions,
    listing: impl Fn(LayerId) -> &'a Listing,
) -> Result<LayoutExtras, Error> {
    let referrers = if opts.sbom {
        crate::sbom::referrers(plan, images, listing)?
    } else {
        Vec::new()
    };
    let indexes = plan
        .indexes
        .iter()
        .map(|index| MultiPlatform {
            name: index.name.clone(),
            images: index.images.clone(),
            annotations: crate::annotate::shared(
                &index
                    .images
                    .iter()
                    .filter_map(|&i| images.get(i))
                    .map(|i| &i.annotations)
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    Ok(LayoutExtras { referrers, indexes })
}

/// For each image, the digest of its SBOM artifact manifest, if it has one.
pub(crate) fn sbom_digests(
    extras: &LayoutExtras,
    written: &Written,
) -> Vec<Option<strata_layer::Digest>> {
    let mut sboms = vec![None; written.images.len()];
    for (referrer, digest) in extras.referrers.iter().zip(&written.referrers) {
        if let Some(slot) = sboms.get_mut(referrer.subject) {
            *slot = Some(*digest);
        }
    }
    sboms
}

/// `--oci-archive`: the layout just written, as one tar whose entries carry
/// the images' time (like the docker-archive's).
pub(crate) fn write_oci_archive(
    opts: &ComposeOptions,
    images: &[ExportImage],
) -> Result<(), Error> {
    if let Some(archive) = &opts.oci_archive {
        let mtime = images.iter().map(|i| i.config.created).max().unwrap_or(0);
        strata_export::write_oci_archive(archive, &opts.out, mtime)?;
    }
    Ok(())
}
