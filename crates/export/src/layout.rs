//! Writing an OCI image layout directory: built whole under a temporary
//! sibling name, then swapped into place.
//!
//! Why a sibling: a rename is only atomic within one filesystem, and the parent
//! of the destination is the one place sure to be on the destination's
//! filesystem. Why verify layer blobs that a cache already verified: the
//! layout is what leaves the machine, and a blob that does not match its digest
//! would only be noticed by whoever pulls the image, far from the cause.
//!
//! Why a layout that is already up to date is left alone: on a warm compose
//! rewriting it is most of the work (an inode per blob, the swap, removing
//! the old tree), and tools that watch the output (rsync, file watchers,
//! build systems) then see nothing change. What the layout holds is
//! described once ([`Contents`]); the check and the writer both read it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use strata_oci::Digest;
use strata_oci::digest::{HashingWriter, digest_reader};

use crate::manifest::{
    ANNOTATION_REF_NAME, IndexEntry, image_json, index_json, multi_platform_json, oci_layout_json,
};
use crate::referrer::{EMPTY_JSON, Referrer, referrer_manifest};
use crate::{Error, ExportImage, LayerDesc};

/// What was written for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedImage {
    pub name: String,
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
}

/// What goes into a layout besides its images.
#[derive(Debug, Clone, Default)]
pub struct LayoutExtras {
    /// Artifacts about the images (SBOMs), listed in `index.json` untagged.
    pub referrers: Vec<Referrer>,
    /// Multi-platform images: image indexes over some of the images, tagged.
    pub indexes: Vec<MultiPlatform>,
}

/// A multi-platform image: an OCI image index of some of the images (one
/// per platform), tagged `name` in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPlatform {
    pub name: String,
    /// Indices into the images written; each descriptor carries the image's
    /// platform (`os`, `architecture`, `variant` of its config).
    pub images: Vec<usize>,
    /// Annotations on the image index.
    pub annotations: BTreeMap<String, String>,
}

/// What [`write_layout_with`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub images: Vec<ExportedImage>,
    /// The artifact manifest of each referrer, in the order given.
    pub referrers: Vec<Digest>,
    /// The image index of each multi-platform image, in the order given.
    pub indexes: Vec<Digest>,
    /// The layout at the destination already held exactly what would have
    /// been written (see [`write_layout_with`]) and was left untouched.
    pub unchanged: bool,
}

/// Write `images` as an OCI image layout at `dir`, replacing the layout that
/// is there (if any). `dir` must not exist, be empty, or be an image layout
/// (hold an `oci-layout` file); anything else is [`Error::NotALayout`] and is
/// left untouched. On error nothing is left at `dir` but what was there before.
pub fn write_layout(dir: &Path, images: &[ExportImage]) -> Result<Vec<ExportedImage>, Error> {
    write_layout_with(dir, images, &LayoutExtras::default()).map(|w| w.images)
}

/// [`write_layout`], with artifacts that refer to the images.
///
/// A layout at `dir` that already holds exactly the files a fresh write
/// would make is left as it is (its files keep their inodes and mtimes,
/// like an up to date target of make) and [`Written::unchanged`] is set.
/// "Exactly": the same directories and regular files and nothing else;
/// every file written from memory (`oci-layout`, `index.json`, configs,
/// manifests, artifacts) byte for byte; every layer blob the very file the
/// layout would hard-link (same device and inode), from a caller that
/// verified it ([`LayerDesc::verified`]). A blob that is only a copy is not
/// re-hashed (that costs about what writing it does): the layout is written
/// again, as on any doubt.
pub fn write_layout_with(
    dir: &Path,
    images: &[ExportImage],
    extras: &LayoutExtras,
) -> Result<Written, Error> {
    let (parent, name) = split_dir(dir)?;
    // Like `mkdir -p`: `--out target/images/x` on a fresh clone has no `target/images` yet.
    fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    // One writer of this output at a time, from the look at what is there
    // to the swap (see `swap`).
    let lock = crate::swap::OutputLock::acquire(&parent)?;
    crate::swap::remove_leftovers(&parent, &name, &lock);
    let existing = existing_kind(dir)?;
    check_unique_names(
        images
            .iter()
            .map(|i| i.name.as_str())
            .chain(extras.indexes.iter().map(|i| i.name.as_str())),
        dir,
    )?;
    let contents = contents(dir, images, extras)?;
    if matches!(existing, Existing::Replaceable) && contents.is_current(dir) {
        return Ok(Written {
            unchanged: true,
            ..contents.written
        });
    }

    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(|e| io_err(&parent, e))?;
    contents.write(tmp.path())?;

    match existing {
        Existing::Missing => {
            fs::rename(tmp.path(), dir).map_err(|e| io_err(dir, e))?;
            // The directory now lives at `dir`: forget it rather than remove it.
            let _ = tmp.keep();
        }
        Existing::Replaceable => swap_in(tmp, dir, &parent, &name)?,
    }
    Ok(contents.written)
}

enum Existing {
    Missing,
    /// An image layout or an empty directory.
    Replaceable,
}

/// The parent directory and the file name of `dir`.
fn split_dir(dir: &Path) -> Result<(PathBuf, String), Error> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid {
            path: dir.to_path_buf(),
            reason: "the layout directory needs a utf-8 file name".to_owned(),
        })?
        .to_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

fn existing_kind(dir: &Path) -> Result<Existing, Error> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(io_err(dir, e)),
    };
    // A symlink is refused even when it points at a layout: renaming it aside
    // would move the link and leave the layout it points at stale.
    if !meta.is_dir() {
        return Err(Error::NotALayout {
            path: dir.to_path_buf(),
        });
    }
    if dir.join("oci-layout").is_file() {
        return Ok(Existing::Replaceable);
    }
    let mut entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    if entries.next().is_none() {
        Ok(Existing::Replaceable)
    } else {
        Err(Error::NotALayout {
            path: dir.to_path_buf(),
        })
    }
}

/// Put the new layout at `dir` and remove the old one: in one exchange
/// where the filesystem can, so that `dir` is never missing; else moving
/// the old one aside and the new one in.
fn swap_in(new: tempfile::TempDir, dir: &Path, parent: &Path, name: &str) -> Result<(), Error> {
    if crate::swap::exchange(new.path(), dir)? {
        // `new`'s name now holds the old layout: dropping it removes that.
        drop(new);
        return Ok(());
    }
    // An empty directory reserves a unique name for the old layout; renaming a
    // directory over an empty one is allowed (POSIX rename). When this guard is
    // dropped it removes whatever is then under that name: the old layout once
    // the swap is done, or the empty placeholder if it fails.
    let old = tempfile::Builder::new()
        .prefix(&format!(".{name}.old-"))
        .tempdir_in(parent)
        .map_err(|e| io_err(parent, e))?;
    fs::rename(dir, old.path()).map_err(|e| io_err(dir, e))?;
    if let Err(e) = fs::rename(new.path(), dir) {
        // Put the old layout back; if even that fails, keep it under its
        // temporary name rather than delete the user's only copy.
        if fs::rename(old.path(), dir).is_err() {
            let _ = old.keep();
        }
        return Err(io_err(dir, e));
    }
    let _ = new.keep();
    drop(old);
    Ok(())
}

pub(crate) fn check_unique_names<'a>(
    names: impl Iterator<Item = &'a str>,
    out: &Path,
) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(Error::Invalid {
                path: out.to_path_buf(),
                reason: format!("two images are named {name:?}"),
            });
        }
    }
    Ok(())
}

/// The directories of every layout, relative to its root.
const DIRS: [&str; 2] = ["blobs", "blobs/sha256"];

/// Where the bytes of one file of a layout come from.
enum Source<'a> {
    /// Written from memory: `oci-layout`, `index.json`, a config, a
    /// manifest, an image index, an artifact.
    Bytes(Cow<'a, [u8]>),
    /// A layer blob, hard-linked (else copied) from the caller's file.
    Layer(&'a LayerDesc),
}

/// Everything a layout holds, by path relative to its root, before any of
/// it is written. The writer ([`Contents::write`]) and the up to date check
/// ([`Contents::is_current`]) both read this one description, so what is
/// checked is what would be written.
struct Contents<'a> {
    files: BTreeMap<PathBuf, Source<'a>>,
    written: Written,
}

impl<'a> Contents<'a> {
    /// Add a blob named by `digest`, unless one is there already (two images
    /// may share a layer or a config).
    fn add_blob(&mut self, digest: Digest, source: Source<'a>) {
        let path = Path::new("blobs/sha256").join(digest.hex());
        self.files.entry(path).or_insert(source);
    }

    /// Write every file into the empty directory `root`.
    fn write(&self, root: &Path) -> Result<(), Error> {
        for dir in DIRS {
            let dir = root.join(dir);
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        }
        for (rel, source) in &self.files {
            let path = root.join(rel);
            match source {
                Source::Bytes(bytes) => write_file(&path, bytes)?,
                Source::Layer(layer) => place_layer_blob(layer, &path)?,
            }
        }
        Ok(())
    }

    /// Whether the layout at `dir` holds exactly these files. Any error
    /// reading it is a no: the layout is then written again.
    fn is_current(&self, dir: &Path) -> bool {
        self.check_current(dir).unwrap_or(false)
    }

    fn check_current(&self, dir: &Path) -> io::Result<bool> {
        // The tree first, from stats alone: the same directories and
        // regular files, nothing else. A walk stops as soon as it has seen
        // more entries than expected, so a large stray tree costs little.
        let expected = DIRS.len() + self.files.len();
        let mut dirs = BTreeSet::new();
        let mut files = BTreeSet::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            for entry in fs::read_dir(dir.join(&rel))? {
                let entry = entry?;
                let path = rel.join(entry.file_name());
                // Not followed: a symlink is neither a directory nor a file here.
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    pending.push(path.clone());
                    dirs.insert(path);
                } else if kind.is_file() {
                    files.insert(path);
                } else {
                    return Ok(false);
                }
                if dirs.len() + files.len() > expected {
                    return Ok(false);
                }
            }
        }
        if !dirs
            .iter()
            .map(PathBuf::as_path)
            .eq(DIRS.iter().map(Path::new))
            || !files.iter().eq(self.files.keys())
        {
            return Ok(false);
        }
        // Then each file, cheapest test first.
        for (rel, source) in &self.files {
            let path = dir.join(rel);
            let meta = fs::symlink_metadata(&path)?;
            let same = match source {
                Source::Bytes(bytes) => {
                    meta.len() == crate::manifest::len_u64(bytes) && fs::read(&path)? == **bytes
                }
                Source::Layer(layer) => {
                    // The cache's own blob: then these are bytes it verified.
                    // An unverified source is re-hashed by a write, so it
                    // never counts as current.
                    let src = fs::symlink_metadata(&layer.blob_path)?;
                    layer.verified
                        && src.is_file()
                        && (src.dev(), src.ino()) == (meta.dev(), meta.ino())
                        && meta.len() == layer.desc.size
                }
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// What the layout of `images` and `extras` holds; `dir` (where it will be
/// written) names it in errors.
fn contents<'a>(
    dir: &Path,
    images: &'a [ExportImage],
    extras: &'a LayoutExtras,
) -> Result<Contents<'a>, Error> {
    let mut contents = Contents {
        files: BTreeMap::new(),
        written: Written {
            images: Vec::with_capacity(images.len()),
            referrers: Vec::new(),
            indexes: Vec::with_capacity(extras.indexes.len()),
            unchanged: false,
        },
    };
    contents.files.insert(
        PathBuf::from("oci-layout"),
        Source::Bytes(oci_layout_json().into()),
    );
    let mut index = Vec::with_capacity(images.len());
    for image in images {
        for layer in &image.layers {
            contents.add_blob(layer.desc.blob, Source::Layer(layer));
        }
        let json = image_json(image)?;
        let manifest_size = crate::manifest::len_u64(&json.manifest);
        contents.add_blob(json.config_digest, Source::Bytes(json.config.into()));
        contents.add_blob(json.manifest_digest, Source::Bytes(json.manifest.into()));
        index.push(IndexEntry::image(
            json.manifest_digest,
            manifest_size,
            [(ANNOTATION_REF_NAME.to_owned(), image.name.clone())].into(),
        ));
        contents.written.images.push(ExportedImage {
            name: image.name.clone(),
            manifest: json.manifest_digest,
            manifest_size,
            config: json.config_digest,
        });
    }
    for multi in &extras.indexes {
        let bytes = multi_platform_json(multi, images, &contents.written.images, dir)?;
        let digest = Digest::of(&bytes);
        index.push(IndexEntry {
            media_type: oci_spec::image::MediaType::ImageIndex,
            artifact_type: None,
            digest,
            size: crate::manifest::len_u64(&bytes),
            annotations: [(ANNOTATION_REF_NAME.to_owned(), multi.name.clone())].into(),
        });
        contents.add_blob(digest, Source::Bytes(bytes.into()));
        contents.written.indexes.push(digest);
    }
    add_referrers(dir, &extras.referrers, &mut contents, &mut index)?;
    let index_path = dir.join("index.json");
    contents.files.insert(
        PathBuf::from("index.json"),
        Source::Bytes(index_json(&index, &index_path)?.into()),
    );
    Ok(contents)
}

/// Add the blobs and artifact manifests of `referrers`, and list them in
/// `index` after the images, untagged.
fn add_referrers<'a>(
    dir: &Path,
    referrers: &'a [Referrer],
    contents: &mut Contents<'a>,
    index: &mut Vec<IndexEntry>,
) -> Result<(), Error> {
    for referrer in referrers {
        let images = &contents.written.images;
        let subject = images.get(referrer.subject).ok_or_else(|| Error::Invalid {
            path: dir.to_path_buf(),
            reason: format!(
                "a {} artifact refers to image {} of {}",
                referrer.artifact_type,
                referrer.subject,
                images.len()
            ),
        })?;
        let manifest = referrer_manifest(
            referrer,
            &subject.manifest,
            subject.manifest_size,
            &subject.name,
        )?;
        let manifest_digest = Digest::of(&manifest);
        index.push(IndexEntry {
            media_type: oci_spec::image::MediaType::ImageManifest,
            artifact_type: Some(referrer.artifact_type.clone()),
            digest: manifest_digest,
            size: crate::manifest::len_u64(&manifest),
            annotations: Default::default(),
        });
        contents.add_blob(Digest::of(EMPTY_JSON), Source::Bytes(EMPTY_JSON.into()));
        contents.add_blob(
            Digest::of(&referrer.bytes),
            Source::Bytes(referrer.bytes.as_slice().into()),
        );
        contents.add_blob(manifest_digest, Source::Bytes(manifest.into()));
        contents.written.referrers.push(manifest_digest);
    }
    Ok(())
}

/// Hard-link (else copy) a layer blob to `dst` and check that its bytes are
/// the ones its descriptor names.
fn place_layer_blob(layer: &LayerDesc, dst: &Path) -> Result<(), Error> {
    let src = &layer.blob_path;
    // `hard_link` links a symlink itself, not its target: copy those instead.
    let is_file = fs::symlink_metadata(src)
        .map_err(|e| io_err(src, e))?
        .is_file();
    if is_file && layer.verified && fs::hard_link(src, dst).is_ok() {
        // Linked, so these are the very bytes the caller checked; only the
        // size is looked at again (a stat, not a read).
        let size = fs::metadata(dst).map_err(|e| io_err(dst, e))?.len();
        return check_blob(layer, layer.desc.blob, size);
    }
    let (found, size) = if is_file && fs::hard_link(src, dst).is_ok() {
        // Read back what is now in the layout: a linked blob has not been
        // hashed by this process, and must not be trusted more than a copy.
        let file = fs::File::open(dst).map_err(|e| io_err(dst, e))?;
        digest_reader(io::BufReader::new(file)).map_err(|e| io_err(src, e))?
    } else {
        copy_hashing(src, dst)?
    };
    check_blob(layer, found, size)
}

/// Copy `src` to a new file `dst`, hashing the bytes on the way.
fn copy_hashing(src: &Path, dst: &Path) -> Result<(Digest, u64), Error> {
    let mut input = fs::File::open(src).map_err(|e| io_err(src, e))?;
    let output = fs::File::create_new(dst).map_err(|e| io_err(dst, e))?;
    let mut writer = HashingWriter::new(io::BufWriter::new(output));
    // Not `io::copy`: a failed write (a full disk) must name `dst`, and a
    // failed read `src`.
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match io::Read::read(&mut input, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(src, e)),
        };
        writer.write_all(&buf[..n]).map_err(|e| io_err(dst, e))?;
    }
    let (digest, size, buffered) = writer.finish();
    buffered
        .into_inner()
        .map_err(|e| io_err(dst, e.into_error()))?;
    Ok((digest, size))
}

/// A blob whose digest or size is not the one its descriptor names is
/// refused (the temporary layout holding it is then removed).
pub(crate) fn check_blob(layer: &LayerDesc, found: Digest, size: u64) -> Result<(), Error> {
    if found != layer.desc.blob {
        return Err(Error::BadBlob {
            path: layer.blob_path.clone(),
            digest: layer.desc.blob,
            found,
        });
    }
    if size != layer.desc.size {
        return Err(Error::Invalid {
            path: layer.blob_path.clone(),
            reason: format!(
                "blob {} has {size} bytes but its descriptor says {}",
                layer.desc.blob, layer.desc.size
            ),
        });
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = fs::File::create_new(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes).map_err(|e| io_err(path, e))
}

pub(crate) fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
