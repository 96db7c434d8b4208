//! Snapshot testing of images: compose a spec and get, per image, a stable
//! text of its config and of every layer's files, ready for
//! `insta::assert_snapshot!` in a user's own `cargo test`, or for
//! `strata snapshot` to write and check next to the spec.
//!
//! The text is read back from the composed blobs (not from what the builder
//! meant to write), names layers by diff_id (the digest of the uncompressed
//! tar, so a compression library upgrade does not churn snapshots), and
//! depends on nothing of the machine. Its line format is documented in
//! `docs/listing.md`.
//!
//! ```no_run
//! // tests/images.rs of a user's project
//! #[test]
//! fn app_image() {
//!     let snap = strata::testing::snapshot("specs/app.kdl").unwrap();
//!     for image in &snap.images {
//!         insta::assert_snapshot!(image.name.clone(), image.text());
//!     }
//! }
//! ```

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::{ComposeOptions, Error};

/// The snapshot of every image of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub images: Vec<ImageSnapshot>,
}

/// One image: its config and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSnapshot {
    pub name: String,
    pub tag: String,
    /// The config, one `key: value` line each (see `strata inspect`).
    pub config: String,
    pub layers: Vec<LayerSnapshot>,
}

/// One layer: its name in the spec, diff_id and file listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSnapshot {
    /// `image/layer` of the image that defines it.
    pub name: String,
    pub diff_id: String,
    /// One line per tar entry, sorted (see `docs/listing.md`).
    pub listing: String,
}

impl Snapshot {
    pub fn image(&self, name: &str) -> Option<&ImageSnapshot> {
        self.images.iter().find(|i| i.name == name)
    }
}

impl ImageSnapshot {
    /// The whole snapshot of the image as one stable text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "image {}:{}", self.name, self.tag);
        let _ = writeln!(s, "config:");
        for line in self.config.lines() {
            let _ = writeln!(s, "  {line}");
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(
                s,
                "layer {} {} diff_id {}",
                i + 1,
                layer.name,
                layer.diff_id
            );
            for line in layer.listing.lines() {
                let _ = writeln!(s, "  {line}");
            }
        }
        s
    }
}

/// Compose `spec` into a temporary layout (with the default cache, so
/// repeated test runs are fast) and snapshot every image.
pub fn snapshot(spec: impl AsRef<Path>) -> Result<Snapshot, Error> {
    snapshot_with(spec.as_ref(), None)
}

/// [`snapshot`] with an explicit cache directory.
pub fn snapshot_with(spec: &Path, cache_dir: Option<PathBuf>) -> Result<Snapshot, Error> {
    let tmp = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let out = tmp.path().join("layout");
    let opts = ComposeOptions {
        out: out.clone(),
        cache_dir,
        source_date_epoch: None,
        ..Default::default()
    };
    let report = crate::compose(spec, &opts, &|_| {})?;
    let layout = strata_export::open_layout(&out)?;
    let mut images = Vec::new();
    for img in &report.images {
        let li = layout.image(&img.name)?;
        let mut layers = Vec::new();
        for (n, strata_layer::LayerDescriptor { blob, diff_id, .. }) in li.layers.iter().enumerate()
        {
            let listing = crate::inspect::layer_listing(
                &layout,
                blob,
                &format!("{} layer {}", img.name, n + 1),
            )?;
            layers.push(LayerSnapshot {
                name: img
                    .layers
                    .get(n)
                    .map_or_else(|| format!("layer {}", n + 1), |l| l.name.clone()),
                diff_id: diff_id.to_string(),
                listing: listing.text(),
            });
        }
        images.push(ImageSnapshot {
            name: img.name.clone(),
            tag: img.tag.clone(),
            config: strata_export::config_summary(li),
            layers,
        });
    }
    Ok(Snapshot { images })
}

/// Where `strata snapshot` keeps the snapshot of one image of a spec:
/// `<spec dir>/snapshots/<spec stem>.<image>.snap`.
pub fn snapshot_path(spec: &Path, image: &str) -> PathBuf {
    let stem = spec
        .file_stem()
        .map_or_else(|| "spec".into(), |s| s.to_string_lossy().into_owned());
    spec.parent()
        .unwrap_or(Path::new("."))
        .join("snapshots")
        .join(format!("{stem}.{image}.snap"))
}

/// The outcome of checking one image's snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Same,
    /// No snapshot file yet.
    Missing,
    /// The file differs: a unified diff from the file to the new snapshot.
    Changed(String),
}

/// Compare an image's snapshot with its file.
pub fn check(path: &Path, image: &ImageSnapshot) -> Result<Check, Error> {
    let new = image.text();
    match std::fs::read_to_string(path) {
        Ok(old) if old == new => Ok(Check::Same),
        Ok(old) => Ok(Check::Changed(
            similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(2)
                .header(&path.display().to_string(), "new")
                .to_string(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Check::Missing),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write an image's snapshot file (temporary name, then rename).
pub fn accept(path: &Path, image: &ImageSnapshot) -> Result<(), Error> {
    let io = |source| {
        Error::Export(strata_export::Error::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::fs::write(tmp.path(), image.text()).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
