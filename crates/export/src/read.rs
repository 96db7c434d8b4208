//! Reading an OCI image layout back, validating it on the way, and rendering
//! an image's config as stable text (for `strata inspect` and snapshots).
//!
//! Every JSON blob read (manifest, config) is checked against the digest and
//! size that name it before it is parsed: a layout that does not hash to what
//! it says is reported, not half-trusted. Layer blobs are only checked for
//! presence and size, because hashing gigabytes is too slow for an inspection;
//! [`Layout::verify`] hashes them on request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType as OciMediaType, OciLayout,
};
use strata_oci::digest::digest_reader;
use strata_oci::{Digest, LayerDescriptor, MediaType};

use crate::Error;
use crate::layout::io_err;
use crate::manifest::ANNOTATION_REF_NAME;

/// JSON blobs larger than this are refused rather than read into memory. The
/// image spec lets registries refuse manifests over 4 MiB; configs are smaller.
const MAX_JSON_BLOB: u64 = 16 << 20;

/// An OCI image layout, read and validated.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    images: Vec<LayoutImage>,
    referrers: Vec<LayoutReferrer>,
    indexes: Vec<LayoutIndex>,
}

/// A multi-platform image of a layout: an `index.json` entry that is an
/// image index, whose manifests are images of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutIndex {
    /// Its `org.opencontainers.image.ref.name` (its digest when it has none).
    pub name: String,
    pub digest: Digest,
    /// (manifest digest, `os/arch[/variant]`) of each of its images.
    pub manifests: Vec<(Digest, String)>,
}

/// An artifact of a layout about one of its manifests (an SBOM): an
/// `index.json` entry with an `artifactType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutReferrer {
    pub artifact_type: String,
    /// The artifact manifest.
    pub manifest_digest: Digest,
    /// The manifest it is about (its `subject`), if it names one.
    pub subject: Option<Digest>,
}

/// One image of a layout: its manifest, its config and its layers.
#[derive(Debug, Clone)]
pub struct LayoutImage {
    /// The manifest's `org.opencontainers.image.ref.name` (its digest when it has none).
    pub name: String,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// Lowest layer first.
    pub layers: Vec<LayerDescriptor>,
}

/// Read the image layout at `dir`: `oci-layout`, `index.json`, and for each
/// manifest in the index its manifest and config blobs.
pub fn open_layout(dir: &Path) -> Result<Layout, Error> {
    let header_path = dir.join("oci-layout");
    let header = read_small(&header_path)?;
    let header: OciLayout = parse(&header, &header_path)?;
    if header.image_layout_version() != "1.0.0" {
        return Err(invalid(
            &header_path,
            format!(
                "image layout version {:?} is not supported (only \"1.0.0\")",
                header.image_layout_version()
            ),
        ));
    }

    let index_path = dir.join("index.json");
    let index: ImageIndex = parse(&read_small(&index_path)?, &index_path)?;
    let mut layout = Layout {
        dir: dir.to_path_buf(),
        images: Vec::with_capacity(index.manifests().len()),
        referrers: Vec::new(),
        indexes: Vec::new(),
    };
    for desc in index.manifests() {
        // An artifact (an SBOM) is not an image: it is kept aside, and the
        // images it is about are read as any other.
        if let Some(artifact_type) = desc.artifact_type() {
            let referrer = layout.read_referrer(desc, artifact_type.to_string(), &index_path)?;
            layout.referrers.push(referrer);
            continue;
        }
        if desc.media_type() == &OciMediaType::ImageIndex {
            let index = layout.read_index(desc, &index_path)?;
            layout.indexes.push(index);
            continue;
        }
        let image = layout.read_image(desc, &index_path)?;
        layout.images.push(image);
    }
    Ok(layout)
}

impl Layout {
    /// The directory the layout was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The images, in the order of `index.json`.
    pub fn images(&self) -> &[LayoutImage] {
        &self.images
    }

    /// The image whose ref name is `tag`.
    /// The images a `LAYOUT[:TAG]` names: the tagged one, or all of them.
    pub fn select(&self, tag: Option<&str>) -> Result<Vec<&LayoutImage>, Error> {
        match tag {
            Some(t) => Ok(vec![self.image(t)?]),
            None => Ok(self.images.iter().collect()),
        }
    }

    /// The one image a `LAYOUT[:TAG]` names: the tagged one, or the only
    /// image of the layout (several without a tag is an error naming them).
    pub fn one(&self, tag: Option<&str>) -> Result<&LayoutImage, Error> {
        match (tag, self.images.as_slice()) {
            (Some(t), _) => self.image(t),
            (None, [one]) => Ok(one),
            (None, all) => Err(Error::WhichImage {
                layout: self.dir.clone(),
                names: all.iter().map(|i| i.name.clone()).collect(),
            }),
        }
    }

    pub fn image(&self, tag: &str) -> Result<&LayoutImage, Error> {
        self.images
            .iter()
            .find(|i| i.name == tag)
            .ok_or_else(|| Error::NoSuchTag {
                layout: self.dir.clone(),
                tag: tag.to_owned(),
                available: self
                    .images
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The artifacts of the layout (SBOMs), in the order of `index.json`.
    pub fn referrers(&self) -> &[LayoutReferrer] {
        &self.referrers
    }

    /// The multi-platform images of the layout, in the order of `index.json`.
    pub fn indexes(&self) -> &[LayoutIndex] {
        &self.indexes
    }

    /// Where the blob `digest` is (or would be) in this layout.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Hash every layer blob of every image and check it against its digest.
    pub fn verify(&self) -> Result<(), Error> {
        let mut done = std::collections::BTreeSet::new();
        for image in &self.images {
            for LayerDescriptor { blob: digest, .. } in &image.layers {
                if !done.insert(*digest) {
                    continue;
                }
                let path = self.blob_path(digest);
                let file = open_regular(&path).map_err(|e| io_err(&path, e))?;
                let (found, _) =
                    digest_reader(io::BufReader::new(file)).map_err(|e| io_err(&path, e))?;
                if found != *digest {
                    return Err(Error::BadBlob {
                        path,
                        digest: *digest,
                        found,
                    });
                }
            }
        }
        Ok(())
    }

    fn read_index(&self, desc: &Descriptor, index_path: &Path) -> Result<LayoutIndex, Error> {
        let digest = sha256_of(desc, index_path)?;
        let name = desc
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .cloned()
            .unwrap_or_else(|| digest.to_string());
        let path = self.blob_path(&digest);
        let index: ImageIndex = parse(&self.read_json_blob(&digest, desc.size())?, &path)?;
        let manifests = index
            .manifests()
            .iter()
            .map(|m| {
                let platform = m.platform().as_ref().map_or_else(
                    || "unknown platform".to_owned(),
                    |p| match p.variant() {
                        Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
                        None => format!("{}/{}", p.os(), p.architecture()),
                    },
                );
                Ok((sha256_of(m, &path)?, platform))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(LayoutIndex {
            name,
            digest,
            manifests,
        })
    }

    fn read_referrer(
        &self,
        desc: &Descriptor,
        artifact_type: String,
        index_path: &Path,
    ) -> Result<LayoutReferrer, Error> {
        let manifest_digest = sha256_of(desc, index_path)?;
        let manifest_path = self.blob_path(&manifest_digest);
        let manifest: ImageManifest = parse(
            &self.read_json_blob(&manifest_digest, desc.size())?,
            &manifest_path,
        )?;
        let subject = match manifest.subject() {
            Some(s) => Some(sha256_of(s, &manifest_path)?),
            None => None,
        };
        Ok(LayoutReferrer {
            artifact_type,
            manifest_digest,
            subject,
        })
    }

    fn read_image(&self, desc: &Descriptor, index_path: &Path) -> Result<LayoutImage, Error> {
        if desc.media_type() != &OciMediaType::ImageManifest {
            return Err(invalid(
                index_path,
                format!(
                    "manifest {} has media type {}; only image manifests are supported",
                    desc.digest(),
                    desc.media_type()
                ),
            ));
        }
        let manifest_digest = sha256_of(desc, index_path)?;
        let name = desc
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .cloned()
            .unwrap_or_else(|| manifest_digest.to_string());
        let manifest_path = self.blob_path(&manifest_digest);
        let manifest: ImageManifest = parse(
            &self.read_json_blob(&manifest_digest, desc.size())?,
            &manifest_path,
        )?;

        let config_desc = manifest.config();
        if config_desc.media_type() != &OciMediaType::ImageConfig {
            return Err(invalid(
                &manifest_path,
                format!(
                    "config has media type {}, not {}",
                    config_desc.media_type(),
                    OciMediaType::ImageConfig
                ),
            ));
        }
        let config_digest = sha256_of(config_desc, &manifest_path)?;
        let config_path = self.blob_path(&config_digest);
        let config: ImageConfiguration = parse(
            &self.read_json_blob(&config_digest, config_desc.size())?,
            &config_path,
        )?;

        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(invalid(
                &config_path,
                format!(
                    "the config lists {} diff_ids but the manifest {} layers",
                    diff_ids.len(),
                    manifest.layers().len()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let digest = sha256_of(layer, &manifest_path)?;
            let diff_id: Digest = diff_id
                .strip_prefix("sha256:")
                .and_then(|hex| hex.parse().ok())
                .ok_or_else(|| {
                    invalid(&config_path, format!("diff_id {diff_id:?} is not a sha256"))
                })?;
            let media_type = MediaType::parse(layer.media_type().as_ref()).ok_or_else(|| {
                invalid(
                    &manifest_path,
                    format!(
                        "layer {digest} has media type {}, which strata does not read",
                        layer.media_type()
                    ),
                )
            })?;
            let path = self.blob_path(&digest);
            let size = fs::metadata(&path)
                .map_err(|e| missing_or_io(&path, e))?
                .len();
            if size != layer.size() {
                return Err(invalid(
                    &path,
                    format!(
                        "blob has {size} bytes, its descriptor says {}",
                        layer.size()
                    ),
                ));
            }
            layers.push(LayerDescriptor {
                diff_id,
                blob: digest,
                size: layer.size(),
                media_type,
            });
        }

        Ok(LayoutImage {
            name,
            manifest_digest,
            manifest,
            config_digest,
            config,
            layers,
        })
    }

    /// The bytes of a JSON blob, checked against its digest and size.
    fn read_json_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        if size > MAX_JSON_BLOB {
            return Err(invalid(
                &path,
                format!("blob of {size} bytes is too large for a manifest or config"),
            ));
        }
        let file = open_regular(&path).map_err(|e| missing_or_io(&path, e))?;
        let mut bytes = Vec::new();
        // One byte more than expected tells a longer blob from an exact one.
        file.take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(&path, e))?;
        let found = Digest::of(&bytes);
        if found != *digest {
            return Err(Error::BadBlob {
                path,
                digest: *digest,
                found,
            });
        }
        if crate::manifest::len_u64(&bytes) != size {
            return Err(invalid(
                &path,
                format!("blob has {} bytes, its descriptor says {size}", bytes.len()),
            ));
        }
        Ok(bytes)
    }
}

/// The sha256 a descriptor names; other algorithms are refused.
fn sha256_of(desc: &Descriptor, blamed: &Path) -> Result<Digest, Error> {
    desc.as_digest_sha256()
        .and_then(|hex| hex.parse().ok())
        .ok_or_else(|| {
            invalid(
                blamed,
                format!("digest {} is not a sha256 digest", desc.digest()),
            )
        })
}

fn read_small(path: &Path) -> Result<Vec<u8>, Error> {
    let file = open_regular(path).map_err(|e| missing_or_io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    if crate::manifest::len_u64(&bytes) > MAX_JSON_BLOB {
        return Err(invalid(path, "file is too large".to_owned()));
    }
    Ok(bytes)
}

/// Opens a file of a layout for reading, if it is a regular file. Layouts
/// come from elsewhere (`from "oci:..."`, `strata inspect`): a fifo named
/// `index.json` would block `open` until a writer came, and a device or a
/// fifo's `read` forever, so the file is opened without blocking and its
/// type checked on the open handle.
pub(crate) fn open_regular(path: &Path) -> io::Result<fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a fifo, socket or device)",
        ));
    }
    Ok(file)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| invalid(path, format!("bad json: {e}")))
}

fn missing_or_io(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        invalid(path, "missing".to_owned())
    } else {
        io_err(path, e)
    }
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        reason,
    }
}

/// An image's config as stable text: one setting a line (lists indented
/// below their heading), every setting present, `-` for an unset one, sets
/// and maps sorted. The same config always renders the same way, whatever
/// order the JSON held its maps in.
pub fn config_summary(img: &LayoutImage) -> String {
    let cfg = &img.config;
    let run = cfg.config().clone().unwrap_or_default();
    let mut out = String::new();
    let mut platform = format!("{}/{}", cfg.os(), cfg.architecture());
    if let Some(variant) = cfg.variant() {
        platform.push('/');
        platform.push_str(variant);
    }
    line(&mut out, "platform", Some(platform));
    line(&mut out, "created", cfg.created().clone());
    line(&mut out, "author", cfg.author().as_deref().map(text));
    line(&mut out, "user", run.user().as_deref().map(text));
    line(&mut out, "workdir", run.working_dir().as_deref().map(text));
    line(
        &mut out,
        "entrypoint",
        run.entrypoint().as_deref().map(argv),
    );
    line(&mut out, "cmd", run.cmd().as_deref().map(argv));
    list(&mut out, "env", run.env().iter().flatten().map(|s| text(s)));
    let mut ports: Vec<&String> = run.exposed_ports().iter().flatten().collect();
    ports.sort();
    list(
        &mut out,
        "exposed ports",
        ports.into_iter().map(|s| text(s)),
    );
    let mut volumes: Vec<&String> = run.volumes().iter().flatten().collect();
    volumes.sort();
    list(&mut out, "volumes", volumes.into_iter().map(|s| text(s)));
    let labels: BTreeMap<&String, &String> = run.labels().iter().flatten().collect();
    list(
        &mut out,
        "labels",
        labels
            .into_iter()
            .map(|(k, v)| format!("{}={}", text(k), text(v))),
    );
    line(
        &mut out,
        "stop signal",
        run.stop_signal().as_deref().map(text),
    );
    out
}

/// One line per layer: blob digest, size, media type, diff_id and the
/// history entry that made it (`created_by`), lowest layer first.
pub fn layers_summary(img: &LayoutImage) -> String {
    let history: Vec<_> = img
        .config
        .history()
        .iter()
        .flatten()
        .filter(|h| h.empty_layer() != Some(true))
        .collect();
    let mut out = String::new();
    for (i, l) in img.layers.iter().enumerate() {
        let (digest, diff_id, size, media_type) = (l.blob, l.diff_id, l.size, l.media_type);
        let created_by = history
            .get(i)
            .and_then(|h| h.created_by().as_deref())
            .map_or_else(|| "-".to_owned(), text);
        let _ = writeln!(
            out,
            "{i} {digest} {size} {} diff_id={diff_id} {created_by}",
            media_type.as_str()
        );
    }
    out
}

fn line(out: &mut String, key: &str, value: Option<String>) {
    let _ = writeln!(out, "{key}: {}", value.as_deref().unwrap_or("-"));
}

fn list(out: &mut String, key: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        line(out, key, None);
        return;
    }
    let _ = writeln!(out, "{key}:");
    for item in items {
        let _ = writeln!(out, "  {item}");
    }
}

/// `s` as is when it is plain, else quoted and escaped, so that a value with
/// a newline or edge spaces cannot break or blur the line structure.
fn text(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.starts_with('"')
        && !s.chars().any(char::is_control);
    if plain {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// An argument vector as a JSON array, the way a Dockerfile writes exec form.
fn argv(args: &[String]) -> String {
    // Serialising strings cannot fail, and canonical JSON is valid UTF-8; the
    // fallback is unreachable.
    crate::canon::to_vec(&args)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default()
}
