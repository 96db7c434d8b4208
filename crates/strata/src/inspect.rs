//! `strata inspect`: what an OCI layout holds, as stable text fit for review
//! and snapshots: images, layers, config, and with `files` every layer's
//! listing, read back from the blobs themselves.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// A layout and, optionally, one tag in it: `DIR` or `DIR:TAG`. A path that
/// exists as given is a layout (even with a `:` in its name).
pub fn parse_target(target: &str) -> (PathBuf, Option<String>) {
    if Path::new(target).exists() {
        return (PathBuf::from(target), None);
    }
    match target.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
            (PathBuf::from(dir), Some(tag.to_owned()))
        }
        _ => (PathBuf::from(target), None),
    }
}

/// What a target names in a layout: the images to show and the indexes.
pub(crate) struct Selection<'l> {
    pub images: Vec<&'l strata_export::LayoutImage>,
    pub indexes: Vec<&'l strata_export::LayoutIndex>,
}

/// Without a tag, every image and index; a tag of an image, that image; a
/// tag of a multi-platform index, the index and each of its images.
pub(crate) fn select<'l>(
    layout: &'l strata_export::Layout,
    tag: Option<&str>,
) -> Result<Selection<'l>, Error> {
    let index = tag.and_then(|t| layout.indexes().iter().find(|i| i.name == t));
    Ok(match (tag, index) {
        (_, Some(index)) => Selection {
            images: index
                .manifests
                .iter()
                .filter_map(|(d, _)| layout.images().iter().find(|i| i.manifest_digest == *d))
                .collect(),
            indexes: vec![index],
        },
        (tag, None) => Selection {
            images: layout.select(tag)?,
            indexes: if tag.is_some() {
                Vec::new()
            } else {
                layout.indexes().iter().collect()
            },
        },
    })
}

/// Render an inspection of `target`.
pub fn inspect(target: &str, files: bool) -> Result<String, Error> {
    let (dir, tag) = parse_target(target);
    let layout = strata_export::open_layout(&dir)?;
    let Selection { images, indexes } = select(&layout, tag.as_deref())?;
    let mut s = String::new();
    for index in indexes {
        let _ = writeln!(s, "index {}", index.name);
        let _ = writeln!(s, "  digest {}", index.digest);
        for (digest, platform) in &index.manifests {
            let name = layout
                .images()
                .iter()
                .find(|i| i.manifest_digest == *digest)
                .map_or("(not in the layout)", |i| i.name.as_str());
            let _ = writeln!(s, "  {platform} {name} {digest}");
        }
        s.push('\n');
    }
    for (n, img) in images.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        let _ = writeln!(s, "image {}", img.name);
        let _ = writeln!(s, "  manifest {}", img.manifest_digest);
        let _ = writeln!(s, "  config   {}", img.config_digest);
        for referrer in layout.referrers() {
            if referrer.subject == Some(img.manifest_digest) {
                let _ = writeln!(
                    s,
                    "  referrer {} {}",
                    referrer.manifest_digest, referrer.artifact_type
                );
            }
        }
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
            let _ = writeln!(
                s,
                "  layer {} {} {} bytes {} diff_id {}",
                i + 1,
                blob,
                size,
                media_type.as_str(),
                diff_id
            );
        }
        for line in strata_export::config_summary(img).lines() {
            let _ = writeln!(s, "  {line}");
        }
        // Docker's fields, which the OCI config type does not hold.
        let raw = std::fs::read(layout.blob_path(&img.config_digest)).unwrap_or_default();
        let (health, shell) = strata_export::read_docker_fields(&raw);
        if let Some(h) = health {
            let _ = write!(s, "  healthcheck {:?}", h.test);
            for (k, v) in [
                ("interval", h.interval),
                ("timeout", h.timeout),
                ("start-period", h.start_period),
            ] {
                if let Some(ns) = v {
                    let _ = write!(s, " {k}={}ms", ns / 1_000_000);
                }
            }
            if let Some(r) = h.retries {
                let _ = write!(s, " retries={r}");
            }
            s.push('\n');
        }
        if let Some(shell) = shell {
            let _ = writeln!(s, "  shell {shell:?}");
        }
        if files {
            for (i, strata_layer::LayerDescriptor { blob, .. }) in img.layers.iter().enumerate() {
                let listing =
                    layer_listing(&layout, blob, &format!("{} layer {}", img.name, i + 1))?;
                let _ = writeln!(s, "  files of layer {} ({}):", i + 1, blob);
                for line in listing.text().lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
    }
    Ok(s)
}

/// The listing of one layer blob of a layout, read back from its bytes.
/// `label` names the layer in errors (`tomcat layer 2`).
pub fn layer_listing(
    layout: &strata_export::Layout,
    blob: &strata_layer::Digest,
    label: &str,
) -> Result<strata_layer::Listing, Error> {
    let path = layout.blob_path(blob);
    let f = std::fs::File::open(&path).map_err(|source| {
        Error::Export(strata_export::Error::Io {
            path: path.clone(),
            source,
        })
    })?;
    strata_layer::list_blob(std::io::BufReader::new(f)).map_err(|source| Error::Layer {
        layer: label.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_a_tag_only_when_the_path_does_not_exist() {
        assert_eq!(
            parse_target("/nonexistent/layout:tomcat"),
            (PathBuf::from("/nonexistent/layout"), Some("tomcat".into()))
        );
        assert_eq!(
            parse_target("/nonexistent/layout"),
            (PathBuf::from("/nonexistent/layout"), None)
        );
        let d = tempfile::tempdir().unwrap();
        let odd = d.path().join("a:b");
        std::fs::create_dir(&odd).unwrap();
        assert_eq!(parse_target(odd.to_str().unwrap()), (odd.clone(), None));
    }
}
