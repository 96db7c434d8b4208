//! The union operations on an image of an OCI layout: `rootfs` (materialise
//! the union view), `squash` (one layer holding it) and `commit` (one more
//! layer: the difference between the view and a directory), the last two
//! written back into the same layout under a new tag.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{HistoryBuilder, ImageConfiguration};
use strata_export::{ExportedImage, Layout, LayoutImage};
use strata_layer::{Compression, Listing};

use crate::Error;
use crate::apply::{self, ApplyReport, io_err};
use crate::diff::{DiffOptions, diff_dir};
use crate::model::Model;

/// One image of a layout, ready for the union operations.
pub struct Image {
    pub layout: Layout,
    pub image: LayoutImage,
    /// Its layer blobs, bottom first.
    pub blobs: Vec<PathBuf>,
}

/// How a derived layer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// The mtime of every entry of the new layer.
    pub epoch: u64,
    pub compression: Compression,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            epoch: 0,
            compression: Compression::DEFAULT_GZIP,
        }
    }
}

impl Image {
    /// The image `tag` of the layout at `dir`.
    pub fn open(dir: &Path, tag: &str) -> Result<Image, Error> {
        let layout = strata_export::open_layout(dir)?;
        let image = layout.image(tag)?.clone();
        let blobs = image
            .layers
            .iter()
            .map(|l| layout.blob_path(&l.blob))
            .collect();
        Ok(Image {
            layout,
            image,
            blobs,
        })
    }

    /// Every layer's listing, read (and hashed) from its blob.
    pub fn listings(&self) -> Result<Vec<Listing>, Error> {
        self.blobs.iter().map(|blob| list_blob_file(blob)).collect()
    }

    /// The union of the image's layers.
    pub fn model(&self) -> Result<Model, Error> {
        Ok(Model::of(&self.listings()?)?)
    }
}

/// `strata rootfs`: the union view of `tag` in the layout `layout`,
/// materialised in `dir` (missing or empty).
pub fn rootfs(layout: &Path, tag: &str, dir: &Path) -> Result<ApplyReport, Error> {
    let image = Image::open(layout, tag)?;
    apply::apply_blobs(&image.blobs, dir)
}

/// `strata squash`: the image `tag` with its layers replaced by one layer
/// holding their union, config kept (one diff_id and one history entry),
/// written into the same layout as `new_tag`.
pub fn squash(
    layout: &Path,
    tag: &str,
    new_tag: &str,
    opts: WriteOptions,
) -> Result<ExportedImage, Error> {
    let image = Image::open(layout, tag)?;
    let model = image.model()?;
    let spool = tempfile::tempdir().map_err(|e| io_err(&std::env::temp_dir(), e))?;
    // Its physical path: the spooled files are opened without following symlinks.
    let spooled = fs::canonicalize(spool.path()).map_err(|e| io_err(spool.path(), e))?;
    let entries = crate::squash::union_entries(&model, &image.blobs, &spooled)?;
    write_image(
        &image,
        new_tag,
        image.image.config.clone(),
        &entries,
        opts,
        false,
    )
}

/// `strata commit`: the image `tag` with one more layer, the difference
/// between its union view and the directory `dir`, written into the same
/// layout as `new_tag`.
pub fn commit(
    layout: &Path,
    tag: &str,
    dir: &Path,
    new_tag: &str,
    opts: WriteOptions,
) -> Result<ExportedImage, Error> {
    let image = Image::open(layout, tag)?;
    let model = image.model()?;
    let root = apply::running_as_root();
    let entries = diff_dir(
        &model,
        dir,
        DiffOptions {
            exact_modes: true,
            owners: root,
            keep_missing_devices: !root,
            xattrs: true,
        },
    )?;
    write_image(
        &image,
        new_tag,
        image.image.config.clone(),
        &entries,
        opts,
        true,
    )
}

/// Writes one new layer from `entries` into the image's layout, and the image
/// `new_tag`: the old layers (when `append`) plus the new one.
fn write_image(
    image: &Image,
    new_tag: &str,
    mut config: ImageConfiguration,
    entries: &[strata_layer::HostEntry],
    opts: WriteOptions,
    append: bool,
) -> Result<ExportedImage, Error> {
    let dir = image.layout.dir();
    let mut blob = strata_export::new_blob(dir)?;
    let out = strata_layer::build_entries(
        entries,
        opts.epoch,
        opts.compression,
        blob.as_file_mut(),
        &|_| {},
    )?;
    strata_export::keep_blob(dir, blob, &out.desc.blob)?;

    let mut layers: Vec<_> = if append {
        image
            .image
            .layers
            .iter()
            .map(|l| (l.blob, l.size, l.media_type))
            .collect()
    } else {
        Vec::new()
    };
    layers.push((out.desc.blob, out.desc.size, out.desc.media_type));
    let created_by = if append {
        format!("strata commit {}", image.image.name)
    } else {
        format!("strata squash {}", image.image.name)
    };
    let mut diff_ids = if append {
        config.rootfs().diff_ids().clone()
    } else {
        Vec::new()
    };
    diff_ids.push(out.desc.diff_id.to_string());
    config.rootfs_mut().set_diff_ids(diff_ids);
    // An image without history keeps none: one entry for several layers
    // would pair the wrong entry with each layer.
    let history = match config.history() {
        Some(h) if append => Some(h.clone()),
        None if append => None,
        _ => Some(Vec::new()),
    };
    if let Some(mut history) = history {
        let mut h = HistoryBuilder::default().created_by(created_by);
        if let Some(created) = config.created() {
            h = h.created(created.clone());
        }
        history.push(h.build().map_err(|e| Error::BadDir {
            path: dir.to_path_buf(),
            reason: format!("history entry: {e}"),
        })?);
        config.set_history(Some(history));
    }
    Ok(strata_export::add_image(
        dir,
        new_tag,
        &image.image,
        &config,
        &layers,
    )?)
}

/// The listing of the blob file `blob`, errors naming it.
pub(crate) fn list_blob_file(blob: &Path) -> Result<Listing, Error> {
    let file = std::fs::File::open(blob).map_err(|e| io_err(blob, e))?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    strata_layer::list_blob(reader).map_err(|e| match e {
        strata_layer::Error::BadArchive { reason, .. } => {
            Error::Layer(strata_layer::Error::BadArchive {
                archive: blob.to_path_buf(),
                reason,
            })
        }
        strata_layer::Error::BadArchiveEntry { entry, reason, .. } => {
            Error::Layer(strata_layer::Error::BadArchiveEntry {
                archive: blob.to_path_buf(),
                entry,
                reason,
            })
        }
        e => Error::Layer(e),
    })
}
