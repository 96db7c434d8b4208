//! Lock files: the digests a spec composed to, committed next to the spec
//! (`specs/tomcat.kdl` -> `specs/tomcat.lock`), and the check that a fresh
//! compose still gives them (`strata compose --locked`, what a CI job runs).
//!
//! A lock holds, for every image, its manifest and config digests and its
//! layers; for every layer its cache key, compressor identity, media type,
//! diff_id, blob digest, size, and its whole listing (one
//! [`Entry::line`](strata_layer::Entry::line) per file). The format is plain
//! text, one fact a line, indented by what it belongs to, so a change to an
//! input shows in the lock's diff as the files it changed:
//!
//! ```text
//! strata-lock 1
//! spec tomcat.kdl
//! source-date-epoch unset
//! layer-format strata-layer-key-v1
//! compression gzip/libdeflate-1.26/4/members1-chunk1m
//! base docker://registry.example.com/base/debian:12 sha256:…   (external bases only)
//!
//! image centos
//!   manifest sha256:…
//!   config sha256:…
//!   layer centos/rootfs sha256:…
//!
//! layer centos/rootfs
//!   key 3f…
//!   compression gzip/libdeflate-1.26/4/members1-chunk1m
//!   media-type application/vnd.oci.image.layer.v1.tar+gzip
//!   diff-id sha256:…
//!   blob sha256:…
//!   size 5818
//!   listing 57 sha256:…
//!     /bin symlink 0777 0:0 -> usr/bin
//! ```
//!
//! Why whole listings rather than one digest per layer: a mismatch must name
//! the first differing file, and in CI the cache is cold, so the lock is the
//! only record of what was built. A per-entry digest would save about half
//! the bytes (the path dominates a line) but could not say *what* changed
//! (mode, owner, content); the listing says it, and makes the lock a
//! reviewable record of every image's files. The cost is about 100 bytes per
//! file: 11 KiB for the tomcat demo, about 1.5 MB for a 15 000-file distro
//! rootfs, which git stores compressed. The listing's sha256 is checked when
//! the lock is read, so a bad merge of a lock is an error, not a false pass.
//!
//! What `--locked` enforces is the digests (manifest, config, and each
//! layer's blob, diff_id, size and media type). The key, the compressor
//! identity and the layer format are informative: a strata upgrade that
//! changes them without changing bytes still passes, and when bytes do
//! change they tell why (the inputs changed, or the same inputs gave other
//! bytes).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strata_layer::{Digest, Entry, LayerDescriptor, MediaType};

use crate::report::ComposeReport;

/// The version of the lock format; bump when a reader of the old format
/// would misread the new one.
pub const LOCK_FORMAT: u32 = 1;

/// The lock file of a spec: `specs/tomcat.kdl` -> `specs/tomcat.lock`.
pub fn lock_path(spec: &Path) -> PathBuf {
    spec.with_extension("lock")
}

/// A lock file, read or made from a compose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The spec's file name (not its path: the lock lies next to it).
    pub spec: String,
    /// `SOURCE_DATE_EPOCH` as it was when the lock was written.
    pub source_date_epoch: Option<u64>,
    /// The layer format version ([`strata_plan::KEY_FORMAT`], bumped when the
    /// way a layer is built from a job changes).
    pub layer_format: String,
    /// Every compressor identity the layers use, sorted.
    pub compression: Vec<String>,
    /// Every external base: the `from` as written and the manifest digest it
    /// resolved to (for a tag, the digest it named when the lock was written).
    pub bases: Vec<(String, Digest)>,
    /// Every build argument (`arg`) and the value the compose gave it.
    pub args: Vec<(String, String)>,
    pub images: Vec<LockedImage>,
    /// Every layer once, in the order the images first name them.
    pub layers: Vec<LockedLayer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedImage {
    pub name: String,
    pub manifest: Digest,
    pub config: Digest,
    /// (layer name, blob digest), lowest first.
    pub layers: Vec<(String, Digest)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedLayer {
    /// `image/layer` of the image that defines it.
    pub name: String,
    /// The cache key (blake3 hex) of its inputs and settings.
    pub key: String,
    pub compression: String,
    /// The blob: media type, diff_id, digest and size.
    pub desc: LayerDescriptor,
    /// The listing, in tar order; written one
    /// [`Entry::line`](strata_layer::Entry::line) per entry, and read back
    /// with [`Entry::parse_line`](strata_layer::Entry::parse_line).
    pub listing: Vec<Entry>,
    /// The Debian packages a `packages` layer installs, one
    /// [`LockedPackage::line`](crate::packages::LockedPackage::line) each:
    /// what `compose --locked` installs again, without resolving.
    pub packages: Vec<String>,
}

impl LockedLayer {
    /// sha256 of the listing's text form (lines ending in `\n`).
    pub fn listing_digest(&self) -> Digest {
        listing_digest(&self.listing)
    }
}

fn listing_digest(entries: &[Entry]) -> Digest {
    let mut text = String::new();
    for e in entries {
        text.push_str(&e.line());
        text.push('\n');
    }
    Digest::of(text.as_bytes())
}

/// Why a lock file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no lock file; write one with `strata lock {spec}`")]
    Missing { path: PathBuf, spec: String },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Lock {
    /// The lock of what `report` composed. `source_date_epoch` is the value the
    /// compose ran with ([`ComposeOptions::source_date_epoch`](crate::ComposeOptions)).
    pub fn from_report(report: &ComposeReport, source_date_epoch: Option<u64>) -> Lock {
        let spec = report.spec.file_name().map_or_else(
            || report.spec.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut layers: Vec<LockedLayer> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut images = Vec::new();
        for img in &report.images {
            let mut image_layers = Vec::new();
            for l in &img.layers {
                image_layers.push((l.name.clone(), l.desc.blob));
                if seen.insert(l.name.clone()) {
                    layers.push(LockedLayer {
                        name: l.name.clone(),
                        key: l.key.clone(),
                        compression: l.compression.clone(),
                        desc: l.desc,
                        listing: l.listing.entries.clone(),
                        packages: report.packages.get(&l.name).cloned().unwrap_or_default(),
                    });
                }
            }
            images.push(LockedImage {
                name: img.name.clone(),
                manifest: img.manifest,
                config: img.config,
                layers: image_layers,
            });
        }
        let compression: BTreeSet<String> = layers.iter().map(|l| l.compression.clone()).collect();
        Lock {
            spec,
            source_date_epoch,
            layer_format: strata_plan::KEY_FORMAT.to_owned(),
            compression: compression.into_iter().collect(),
            bases: report
                .bases
                .iter()
                .map(|b| (b.from.clone(), b.manifest))
                .collect(),
            args: report
                .args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            images,
            layers,
        }
    }

    /// The packages of each `packages` layer, by `image/layer`, for
    /// `compose --locked` ([`PackageOptions::locked`](crate::packages::PackageOptions::locked)).
    pub fn packages(&self) -> BTreeMap<String, Vec<crate::packages::LockedPackage>> {
        self.layers
            .iter()
            .filter(|l| !l.packages.is_empty())
            .map(|l| {
                let set = l
                    .packages
                    .iter()
                    .filter_map(|p| crate::packages::LockedPackage::parse(p))
                    .collect();
                (l.name.clone(), set)
            })
            .collect()
    }

    pub fn layer(&self, name: &str) -> Option<&LockedLayer> {
        self.layers.iter().find(|l| l.name == name)
    }

    pub fn image(&self, name: &str) -> Option<&LockedImage> {
        self.images.iter().find(|i| i.name == name)
    }

    /// The text form (see the module documentation). The same lock always
    /// renders to the same bytes.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# strata lock of {}: the digests `strata compose --locked` checks.",
            self.spec
        );
        let _ = writeln!(
            s,
            "# Written by `strata lock SPEC` (or `strata compose SPEC --update-lock`): commit it, review its diff, do not edit it."
        );
        let _ = writeln!(s, "strata-lock {LOCK_FORMAT}");
        let _ = writeln!(s, "spec {}", self.spec);
        let _ = writeln!(
            s,
            "source-date-epoch {}",
            epoch_text(self.source_date_epoch)
        );
        let _ = writeln!(s, "layer-format {}", self.layer_format);
        for c in &self.compression {
            let _ = writeln!(s, "compression {c}");
        }
        for (from, manifest) in &self.bases {
            let _ = writeln!(s, "base {from} {manifest}");
        }
        for (name, value) in &self.args {
            // Quoted as a JSON string: a value may hold spaces or newlines.
            let quoted = serde_json::to_string(value).unwrap_or_default();
            let _ = writeln!(s, "arg {name} {quoted}");
        }
        for img in &self.images {
            let _ = writeln!(s, "\nimage {}", img.name);
            let _ = writeln!(s, "  manifest {}", img.manifest);
            let _ = writeln!(s, "  config {}", img.config);
            for (name, blob) in &img.layers {
                let _ = writeln!(s, "  layer {name} {blob}");
            }
        }
        for l in &self.layers {
            let _ = writeln!(s, "\nlayer {}", l.name);
            let _ = writeln!(s, "  key {}", l.key);
            let _ = writeln!(s, "  compression {}", l.compression);
            let _ = writeln!(s, "  media-type {}", l.desc.media_type);
            let _ = writeln!(s, "  diff-id {}", l.desc.diff_id);
            let _ = writeln!(s, "  blob {}", l.desc.blob);
            let _ = writeln!(s, "  size {}", l.desc.size);
            for p in &l.packages {
                let _ = writeln!(s, "  package {p}");
            }
            let _ = writeln!(s, "  listing {} {}", l.listing.len(), l.listing_digest());
            for line in l.listing.iter().map(Entry::line) {
                let _ = writeln!(s, "    {line}");
            }
        }
        s
    }

    /// Read the lock file at `path`; a missing file says how to write one.
    pub fn read(path: &Path, spec: &Path) -> Result<Lock, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LockError::Missing {
                    path: path.to_owned(),
                    spec: spec.display().to_string(),
                });
            }
            Err(source) => {
                return Err(LockError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Lock::parse(&text, path)
    }

    /// Write the lock to `path`, through a temporary file renamed into place.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, self.render().as_bytes()).map_err(io)?;
        // A temporary file is private (0600); a lock is an ordinary source
        // file: keep the mode of the one it replaces, else 0644.
        let mode = std::fs::metadata(path).map_or_else(
            |_| std::fs::Permissions::from_mode(0o644),
            |m| m.permissions(),
        );
        tmp.as_file().set_permissions(mode).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Parse the text form; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        Parser::new(path).parse(text)
    }
}

fn epoch_text(e: Option<u64>) -> String {
    e.map_or_else(|| "unset".to_owned(), |e| e.to_string())
}

/// The fields every `layer` section must have, once.
const REQUIRED_LAYER_FIELDS: [&str; 4] = ["media-type", "diff-id", "blob", "size"];

/// What the lock's parser is in the middle of.
enum Section {
    Header,
    Image(usize),
    Layer(usize),
}

struct Parser<'a> {
    path: &'a Path,
    line: usize,
}

impl Parser<'_> {
    fn new(path: &Path) -> Parser<'_> {
        Parser { path, line: 0 }
    }

    fn err(&self, reason: impl Into<String>) -> LockError {
        LockError::Parse {
            path: self.path.to_owned(),
            line: self.line,
            reason: reason.into(),
        }
    }

    fn digest(&self, s: &str) -> Result<Digest, LockError> {
        s.parse().map_err(|e| self.err(format!("{e}")))
    }

    fn parse(mut self, text: &str) -> Result<Lock, LockError> {
        let mut lock = Lock {
            spec: String::new(),
            source_date_epoch: None,
            layer_format: String::new(),
            compression: Vec::new(),
            bases: Vec::new(),
            args: Vec::new(),
            images: Vec::new(),
            layers: Vec::new(),
        };
        let mut version = None;
        let mut section = Section::Header;
        // Declared listing sizes and digests, checked at the end.
        let mut declared: BTreeMap<usize, (usize, Digest, usize)> = BTreeMap::new();
        // (image section?, index, field) of every pinned field read once.
        let mut seen: BTreeSet<(bool, usize, String)> = BTreeSet::new();
        for (n, raw) in text.lines().enumerate() {
            self.line = n + 1;
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            let line = &raw[indent..];
            if line.is_empty() || (indent == 0 && line.starts_with('#')) {
                continue;
            }
            match (indent, &section) {
                (4, Section::Layer(i)) if declared.contains_key(i) => {
                    let entry = Entry::parse_line(line).map_err(|e| self.err(e.to_string()))?;
                    lock.layers[*i].listing.push(entry);
                }
                (0, _) => {
                    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                    match word {
                        "strata-lock" => {
                            let v: u32 = rest
                                .parse()
                                .map_err(|_| self.err(format!("bad version {rest:?}")))?;
                            if v != LOCK_FORMAT {
                                return Err(self.err(format!(
                                    "lock format {v} is not supported (this strata reads {LOCK_FORMAT}); rewrite it with `strata lock`"
                                )));
                            }
                            version = Some(v);
                        }
                        "spec" => lock.spec = rest.to_owned(),
                        "source-date-epoch" => {
                            lock.source_date_epoch = match rest {
                                "unset" => None,
                                n => Some(n.parse().map_err(|_| {
                                    self.err(format!("bad source-date-epoch {n:?}"))
                                })?),
                            }
                        }
                        "layer-format" => lock.layer_format = rest.to_owned(),
                        "compression" => lock.compression.push(rest.to_owned()),
                        "base" => {
                            let (from, digest) = rest
                                .rsplit_once(' ')
                                .ok_or_else(|| self.err("expected `base FROM DIGEST`"))?;
                            lock.bases.push((from.to_owned(), self.digest(digest)?));
                        }
                        "arg" => {
                            let (name, quoted) = rest
                                .split_once(' ')
                                .ok_or_else(|| self.err("expected `arg NAME \"VALUE\"`"))?;
                            let value: String = serde_json::from_str(quoted).map_err(|_| {
                                self.err(format!("bad value {quoted:?} of arg {name}"))
                            })?;
                            lock.args.push((name.to_owned(), value));
                        }
                        "image" => {
                            lock.images.push(LockedImage {
                                name: rest.to_owned(),
                                manifest: Digest([0; 32]),
                                config: Digest([0; 32]),
                                layers: Vec::new(),
                            });
                            section = Section::Image(lock.images.len() - 1);
                        }
                        "layer" => {
                            lock.layers.push(LockedLayer {
                                name: rest.to_owned(),
                                key: String::new(),
                                compression: String::new(),
                                // Placeholders until the fields are read;
                                // a field never read is an error below.
                                desc: LayerDescriptor {
                                    diff_id: Digest([0; 32]),
                                    blob: Digest([0; 32]),
                                    size: 0,
                                    media_type: MediaType::Tar,
                                },
                                listing: Vec::new(),
                                packages: Vec::new(),
                            });
                            section = Section::Layer(lock.layers.len() - 1);
                        }
                        w => return Err(self.err(format!("unknown line {w:?}"))),
                    }
                }
                (2, Section::Image(i)) => {
                    let img = &mut lock.images[*i];
                    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                    match word {
                        "manifest" | "config" if !seen.insert((true, *i, word.to_owned())) => {
                            return Err(self.err(format!("a second {word} line")));
                        }
                        "manifest" => img.manifest = self.digest(rest)?,
                        "config" => img.config = self.digest(rest)?,
                        "layer" => {
                            let (name, blob) = rest
                                .rsplit_once(' ')
                                .ok_or_else(|| self.err("expected `layer NAME DIGEST`"))?;
                            img.layers.push((name.to_owned(), self.digest(blob)?));
                        }
                        w => return Err(self.err(format!("unknown image field {w:?}"))),
                    }
                }
                (2, Section::Layer(i)) => {
                    let i = *i;
                    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                    let layer = &mut lock.layers[i];
                    if REQUIRED_LAYER_FIELDS.contains(&word)
                        && !seen.insert((false, i, word.to_owned()))
                    {
                        return Err(self.err(format!("a second {word} line")));
                    }
                    match word {
                        "key" => layer.key = rest.to_owned(),
                        "compression" => layer.compression = rest.to_owned(),
                        "media-type" => {
                            layer.desc.media_type = MediaType::parse(rest).ok_or_else(|| {
                                self.err(format!("{rest:?} is not a layer media type"))
                            })?;
                        }
                        "diff-id" => layer.desc.diff_id = self.digest(rest)?,
                        "blob" => layer.desc.blob = self.digest(rest)?,
                        "size" => {
                            layer.desc.size = rest
                                .parse()
                                .map_err(|_| self.err(format!("bad size {rest:?}")))?;
                        }
                        "package" => {
                            if crate::packages::LockedPackage::parse(rest).is_none() {
                                return Err(self.err(format!(
                                    "expected `package NAME VERSION ARCH SHA256 SIZE FILENAME`, found {rest:?}"
                                )));
                            }
                            layer.packages.push(rest.to_owned());
                        }
                        "listing" => {
                            let (count, digest) = rest
                                .split_once(' ')
                                .ok_or_else(|| self.err("expected `listing COUNT DIGEST`"))?;
                            let count = count
                                .parse()
                                .map_err(|_| self.err(format!("bad entry count {count:?}")))?;
                            let digest = self.digest(digest)?;
                            declared.insert(i, (count, digest, self.line));
                        }
                        w => return Err(self.err(format!("unknown layer field {w:?}"))),
                    }
                }
                _ => return Err(self.err("unexpected indentation")),
            }
        }
        if version.is_none() {
            self.line = 1;
            return Err(self.err("not a strata lock file (no `strata-lock` line)"));
        }
        // Every digest a lock pins must have been read: a missing line is an
        // error naming it, never a zero digest that no compose can match.
        let missing = |what: String, field: &str| LockError::Invalid {
            path: self.path.to_owned(),
            reason: format!("{what} has no `{field}` line"),
        };
        for (i, img) in lock.images.iter().enumerate() {
            for field in ["manifest", "config"] {
                if !seen.contains(&(true, i, field.to_owned())) {
                    return Err(missing(format!("image {}", img.name), field));
                }
            }
        }
        for (i, layer) in lock.layers.iter().enumerate() {
            for field in REQUIRED_LAYER_FIELDS {
                if !seen.contains(&(false, i, field.to_owned())) {
                    return Err(missing(format!("layer {}", layer.name), field));
                }
            }
        }
        for (i, layer) in lock.layers.iter().enumerate() {
            let Some(&(count, digest, line)) = declared.get(&i) else {
                return Err(LockError::Invalid {
                    path: self.path.to_owned(),
                    reason: format!("layer {} has no listing", layer.name),
                });
            };
            self.line = line;
            if layer.listing.len() != count || layer.listing_digest() != digest {
                return Err(self.err(format!(
                    "the listing of layer {} does not match its count and digest (a bad merge or an edit?); rewrite the lock with `strata lock`",
                    layer.name
                )));
            }
        }
        for img in &lock.images {
            for (name, _) in &img.layers {
                if lock.layer(name).is_none() {
                    return Err(LockError::Invalid {
                        path: self.path.to_owned(),
                        reason: format!(
                            "image {} names layer {name}, which has no section",
                            img.name
                        ),
                    });
                }
            }
        }
        Ok(lock)
    }
}

/// Why a compose does not match its lock: one paragraph per difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockMismatch {
    pub problems: Vec<String>,
}

impl std::fmt::Display for LockMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(p)?;
        }
        Ok(())
    }
}

/// Compare a fresh compose (`found`, from [`Lock::from_report`]) with the
/// committed lock. Differing digests fail; each problem names the image,
/// the layer, why its bytes changed (its inputs, or the same inputs giving
/// other bytes), and the first differing file entry.
pub fn check(locked: &Lock, found: &Lock) -> Result<(), LockMismatch> {
    let mut problems = Vec::new();
    let mut context = Vec::new();
    if locked.source_date_epoch != found.source_date_epoch {
        context.push(format!(
            "the lock was written with SOURCE_DATE_EPOCH {}, this compose ran with {}",
            epoch_text(locked.source_date_epoch),
            epoch_text(found.source_date_epoch)
        ));
    }
    if locked.layer_format != found.layer_format {
        context.push(format!(
            "the lock was written by a strata with layer format {}, this one has {}",
            locked.layer_format, found.layer_format
        ));
    }

    for img in &found.images {
        let Some(old) = locked.image(&img.name) else {
            problems.push(format!(
                "image {}: not in the lock (a new image in the spec)",
                img.name
            ));
            continue;
        };
        if old.manifest == img.manifest {
            continue;
        }
        let mut p = format!(
            "image {}: manifest {} (locked {})",
            img.name, img.manifest, old.manifest
        );
        if old.config != img.config {
            // The config lists every layer's diff_id: a changed layer changes it too.
            let diff_ids = |i: &LockedImage, lock: &Lock| {
                i.layers
                    .iter()
                    .map(|(n, _)| lock.layer(n).map(|l| l.desc.diff_id))
                    .collect::<Vec<_>>()
            };
            let why = if diff_ids(old, locked) == diff_ids(img, found) {
                "its settings (env, cmd, labels, created, history…) differ; `strata diff` shows which"
            } else {
                "it lists the layers' diff_ids, and a layer below changed (its settings may differ too; `strata diff` shows them)"
            };
            let _ = write!(
                p,
                "\n  config {} (locked {}): {why}",
                img.config, old.config
            );
        }
        let names = |l: &[(String, Digest)]| l.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&old.layers) != names(&img.layers) {
            let _ = write!(
                p,
                "\n  layers: {} (locked {})",
                names(&img.layers).join(" "),
                names(&old.layers).join(" ")
            );
        }
        for (pos, (name, blob)) in img.layers.iter().enumerate() {
            let locked_blob = old.layers.iter().find(|(n, _)| n == name).map(|(_, b)| b);
            if locked_blob == Some(blob) {
                continue;
            }
            let _ = write!(p, "\n  layer {} ({name}): ", pos + 1);
            match (found.layer(name), locked.layer(name)) {
                (Some(new), Some(old)) => p.push_str(&explain_layer(old, new)),
                _ => p.push_str("not in the lock (a new layer in the spec)"),
            }
        }
        problems.push(p);
    }
    for old in &locked.images {
        if found.image(&old.name).is_none() {
            problems.push(format!(
                "image {}: in the lock but not composed (removed from the spec?)",
                old.name
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.extend(context);
    Err(LockMismatch { problems })
}

/// Why a layer's bytes differ from the locked ones, indented for [`check`].
fn explain_layer(old: &LockedLayer, new: &LockedLayer) -> String {
    let (old_d, new_d) = (&old.desc, &new.desc);
    let mut s = format!("blob {} (locked {})", new_d.blob, old_d.blob);
    if old_d.diff_id != new_d.diff_id {
        let _ = write!(
            s,
            "\n    diff_id {} (locked {})",
            new_d.diff_id, old_d.diff_id
        );
    }
    if old_d.size != new_d.size {
        let _ = write!(s, "\n    size {} (locked {})", new_d.size, old_d.size);
    }
    if old_d.media_type != new_d.media_type {
        let _ = write!(
            s,
            "\n    media type {} (locked {})",
            new_d.media_type, old_d.media_type
        );
    }
    if old.key == new.key {
        let _ = write!(
            s,
            "\n    its inputs and settings are as locked (key {}): the same inputs gave other bytes",
            short(&new.key)
        );
    } else {
        let _ = write!(
            s,
            "\n    its inputs or settings changed (key {}, locked {})",
            short(&new.key),
            short(&old.key)
        );
    }
    if old.compression != new.compression {
        let _ = write!(
            s,
            "\n    compressor {} (locked {})",
            new.compression, old.compression
        );
    }
    let package_changes = package_changes(&old.packages, &new.packages);
    if !package_changes.is_empty() {
        s.push_str("\n    packages (locked -> this compose):");
        for c in package_changes {
            let _ = write!(s, "\n      {c}");
        }
    }
    match first_difference(&old.listing, &new.listing) {
        Some(d) => {
            let _ = write!(s, "\n    first differing entry: {d}");
        }
        None if old.desc.diff_id == new.desc.diff_id => s.push_str(
            "\n    the uncompressed tar is identical: the compressor wrote other bytes (a compression library upgrade?)",
        ),
        None => s.push_str(
            "\n    every entry is as locked: the difference is in what a listing does not show (entry mtimes, from the epoch or SOURCE_DATE_EPOCH, or the tar format)",
        ),
    }
    s
}

/// The package changes of a layer from its `old` to its `new` package
/// lines, by name (see [`crate::package_diff::changes`]).
pub fn package_changes(old: &[String], new: &[String]) -> Vec<String> {
    use crate::package_diff::{changes, from_lock_lines};
    changes(&from_lock_lines(old), &from_lock_lines(new))
}

fn short(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}

/// The path of a listing line: its first field.
/// An entry's path as its listing line shows it.
fn line_path(e: &Entry) -> String {
    let line = e.line();
    line.split(' ').next().unwrap_or_default().to_owned()
}

/// The first entry where two listings (in tar order) differ, described.
pub fn first_difference(locked: &[Entry], found: &[Entry]) -> Option<String> {
    let i = locked
        .iter()
        .zip(found)
        .position(|(a, b)| a != b)
        .unwrap_or(locked.len().min(found.len()));
    match (locked.get(i), found.get(i)) {
        (None, None) => None,
        (Some(a), None) => Some(format!("{} removed (locked: {})", line_path(a), a.line())),
        (None, Some(b)) => Some(format!("{} added: {}", line_path(b), b.line())),
        (Some(a), Some(b)) if a.path == b.path && a.kind == b.kind => Some(format!(
            "{} changed\n      locked: {}\n      built:  {}",
            line_path(a),
            a.line(),
            b.line()
        )),
        (Some(a), Some(b)) => {
            // Whichever path the other side still has further on is the
            // shifted one; the other was added or removed.
            let found_has_a = found[i..]
                .iter()
                .any(|l| l.path == a.path && l.kind == a.kind);
            Some(if found_has_a {
                format!("{} added: {}", line_path(b), b.line())
            } else {
                format!("{} removed (locked: {})", line_path(a), a.line())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest([n; 32])
    }

    fn sample() -> Lock {
        Lock {
            spec: "x.kdl".into(),
            source_date_epoch: None,
            layer_format: "strata-layer-key-v1".into(),
            compression: vec!["gzip/x/6".into()],
            bases: vec![("docker://h.io/base:1".into(), d(7))],
            args: vec![("VERSION".into(), "1 \"two\"\n".into())],
            images: vec![LockedImage {
                name: "app".into(),
                manifest: d(1),
                config: d(2),
                layers: vec![("app/one".into(), d(3))],
            }],
            layers: vec![LockedLayer {
                name: "app/one".into(),
                key: "ab".repeat(32),
                compression: "gzip/x/6".into(),
                desc: LayerDescriptor {
                    media_type: MediaType::TarGzip,
                    diff_id: d(4),
                    blob: d(3),
                    size: 42,
                },
                listing: [
                    "/etc/ dir 0755 0:0".to_owned(),
                    "/etc/motd file 0644 0:0 2 sha256:".to_owned() + &"00".repeat(32),
                    "/odd\\x20name symlink 0777 0:0 -> a\\x0ab".to_owned(),
                ]
                .iter()
                .map(|l| Entry::parse_line(l).unwrap())
                .collect(),
                packages: vec![format!(
                    "libc6 2.36-9+deb12u10 amd64 {} 2758208 pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb",
                    "ab".repeat(32)
                )],
            }],
        }
    }

    #[test]
    fn text_round_trips() {
        let lock = sample();
        let text = lock.render();
        assert_eq!(Lock::parse(&text, Path::new("x.lock")).unwrap(), lock);
        assert!(text.contains("\n    /etc/motd file 0644"), "{text}");
    }

    #[test]
    fn an_edited_listing_is_refused() {
        let text = sample()
            .render()
            .replace("/etc/motd file 0644", "/etc/motd file 0600");
        let e = Lock::parse(&text, Path::new("x.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.lock:") && e.contains("does not match"), "{e}");
    }

    #[test]
    fn a_listing_line_that_is_no_entry_and_a_missing_digest_are_refused() {
        let text = sample()
            .render()
            .replace("/etc/motd file 0644 0:0 2", "/etc/motd file 0644 0:0 two");
        let e = Lock::parse(&text, Path::new("x.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.lock:") && e.contains("bad size"), "{e}");
        // A lock without a layer's blob line never pins a zero digest.
        let text: String = sample()
            .render()
            .lines()
            .filter(|l| !l.starts_with("  blob "))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = Lock::parse(&text, Path::new("x.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no `blob` line"), "{e}");
    }

    #[test]
    fn junk_is_refused_with_its_line() {
        let e = Lock::parse("strata-lock 1\nbogus 3\n", Path::new("x.lock"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.lock:2: unknown line \"bogus\"");
        let e = Lock::parse("image a\n", Path::new("x.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a strata lock file"), "{e}");
    }

    #[test]
    fn check_names_the_layer_and_first_entry() {
        let locked = sample();
        assert_eq!(check(&locked, &locked), Ok(()));
        let mut found = sample();
        found.images[0].manifest = d(9);
        found.images[0].layers[0].1 = d(8);
        found.layers[0].desc.blob = d(8);
        found.layers[0].desc.diff_id = d(7);
        found.layers[0].listing[1].mode = 0o755;
        let e = check(&locked, &found).unwrap_err().to_string();
        assert!(e.contains("image app: manifest"), "{e}");
        assert!(e.contains("layer 1 (app/one): blob"), "{e}");
        assert!(e.contains("the same inputs gave other bytes"), "{e}");
        assert!(
            e.contains("first differing entry: /etc/motd changed"),
            "{e}"
        );
    }

    #[test]
    fn drift_shows_package_changes_as_package_changes() {
        let locked = sample();
        let mut found = sample();
        found.images[0].manifest = d(9);
        found.images[0].layers[0].1 = d(8);
        found.layers[0].desc.blob = d(8);
        found.layers[0].key = "cd".repeat(32);
        found.layers[0].packages = vec![
            format!(
                "libc6 2.36-9+deb12u13 amd64 {} 2758208 pool/main/g/glibc/libc6_2.36-9+deb12u13_amd64.deb",
                "cd".repeat(32)
            ),
            format!(
                "tzdata 2025b all {} 1 pool/main/t/tzdata/tzdata_2025b_all.deb",
                "ef".repeat(32)
            ),
        ];
        let e = check(&locked, &found).unwrap_err().to_string();
        assert!(
            e.contains(
                "packages (locked -> this compose):\n      libc6: 2.36-9+deb12u10 -> 2.36-9+deb12u13\n      + tzdata 2025b"
            ),
            "{e}"
        );
    }

    #[test]
    fn first_difference_tells_added_from_removed() {
        let l = |v: &[&str]| {
            v.iter()
                .map(|p| Entry::parse_line(&format!("{p} fifo 0644 0:0")).unwrap())
                .collect::<Vec<_>>()
        };
        let a = l(&["/a", "/b", "/c"]);
        assert_eq!(first_difference(&a, &a), None);
        assert_eq!(
            first_difference(&a, &l(&["/a", "/c"])).unwrap(),
            "/b removed (locked: /b fifo 0644 0:0)"
        );
        assert_eq!(
            first_difference(&a, &l(&["/a", "/a2", "/b", "/c"])).unwrap(),
            "/a2 added: /a2 fifo 0644 0:0"
        );
        assert_eq!(
            first_difference(&a, &l(&["/a", "/b"])).unwrap(),
            "/c removed (locked: /c fifo 0644 0:0)"
        );
    }
}
