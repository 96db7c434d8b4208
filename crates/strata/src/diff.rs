//! `strata diff A B`: why two images differ, as stable text. A and B are each
//! an OCI layout (`DIR`, or `DIR:TAG` for one image of it) or a lock file
//! (`specs/tomcat.lock`, or `FILE:TAG`).
//!
//! The answer goes from the top down and stops where things agree: the
//! manifest digest (equal manifests mean equal images, and nothing more is
//! said); the manifest's own fields (annotations); the config digest and
//! which config fields differ (`created`, `config.Env`, `history`…, by their
//! OCI JSON names); then, layer by layer by position, the blob, diff_id and
//! size, and for a pair of differing layers every entry added (`+`),
//! removed (`-`) or changed (`~`: type, mode, owner, content, link, device,
//! xattrs, mtime). Entries that differ in nothing but the same mtime change
//! are folded into one line, since a new `SOURCE_DATE_EPOCH` changes them all.
//!
//! Debian packages are compared as packages before the files they are made
//! of (`name: old -> new`, `+ name version`, `- name version`): a lock's
//! `package` lines, or the dpkg status of a layout image's top layer that
//! has one, so `run "apt-get install"` images compare too.
//!
//! A lock file records digests and listings but no config fields and no
//! mtimes, so against a lock those parts are compared as far as it knows.
//! A listing has no mtimes either: they are read from the tar headers of
//! the blobs in a second pass, only for layers that differ.
//!
//! Images are paired by name; when each side names one image (a tag, or a
//! layout or lock holding one image) those two are compared whatever their
//! names. The text is empty exactly when nothing differs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufReader;

use serde_json::Value;
use strata_layer::{Digest, Entry, EntryKind, ImagePath, LayerDescriptor};

use crate::Error;
use crate::inspect::parse_target;
use crate::lock::{Lock, LockedLayer};

/// The result of [`diff`]: stable text, empty when the sides are identical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub text: String,
}

impl Diff {
    pub fn identical(&self) -> bool {
        self.text.is_empty()
    }
}

/// Compare `a` and `b`, each `LAYOUT[:TAG]` or `LOCKFILE[:TAG]`.
pub fn diff(a: &str, b: &str) -> Result<Diff, Error> {
    let a = Side::open(a)?;
    let b = Side::open(b)?;
    let mut out = String::new();
    let pairs: Vec<(Option<&ImageView>, Option<&ImageView>)> =
        if a.images.len() == 1 && b.images.len() == 1 {
            vec![(a.images.first(), b.images.first())]
        } else {
            let mut pairs: Vec<_> = a
                .images
                .iter()
                .map(|i| (Some(i), b.images.iter().find(|j| j.name == i.name)))
                .collect();
            pairs.extend(
                b.images
                    .iter()
                    .filter(|j| !a.images.iter().any(|i| i.name == j.name))
                    .map(|j| (None, Some(j))),
            );
            pairs
        };
    for pair in pairs {
        match pair {
            (Some(x), Some(y)) => diff_image(&mut out, &a, x, &b, y)?,
            (Some(x), None) => {
                let _ = writeln!(out, "image {}: only in A (manifest {})", x.name, x.manifest);
            }
            (None, Some(y)) => {
                let _ = writeln!(out, "image {}: only in B (manifest {})", y.name, y.manifest);
            }
            (None, None) => {}
        }
    }
    Ok(Diff { text: out })
}

/// One side of the comparison.
struct Side {
    images: Vec<ImageView>,
    /// A layout directory, where blobs are read; `None` for a lock.
    layout: Option<strata_export::Layout>,
}

struct ImageView {
    name: String,
    manifest: Digest,
    config_digest: Digest,
    /// The manifest's and the config's JSON (a lock has neither).
    manifest_json: Option<Value>,
    config_json: Option<Value>,
    layers: Vec<LayerView>,
    /// A lock's packages (`package` lines of its layers); `None` for a
    /// layout, whose dpkg status is read when the images differ.
    packages: Option<crate::package_diff::PackageSet>,
}

struct LayerView {
    /// The layer's name: `image/layer` from a lock, from the history's
    /// `created_by` (`strata: layer jdk`) in a layout.
    label: Option<String>,
    desc: LayerDescriptor,
    /// The listing a lock holds; `None` means: read the blob.
    lines: Option<Vec<Entry>>,
}

impl Side {
    fn open(target: &str) -> Result<Side, Error> {
        let (path, tag) = parse_target(target);
        if path.is_file() {
            let lock = Lock::read(&path, &path)?;
            let images = lock
                .images
                .iter()
                .filter(|i| tag.as_deref().is_none_or(|t| t == i.name))
                .map(|i| {
                    Ok(ImageView {
                        name: i.name.clone(),
                        manifest: i.manifest,
                        config_digest: i.config,
                        manifest_json: None,
                        config_json: None,
                        packages: Some(crate::package_diff::from_lock_lines(
                            i.layers
                                .iter()
                                .filter_map(|(n, _)| lock.layer(n))
                                .flat_map(|l| &l.packages),
                        )),
                        layers: i
                            .layers
                            .iter()
                            .map(|(name, _)| {
                                // A lock read by `Lock::parse` has a section for
                                // every layer its images name.
                                let l: &LockedLayer = lock.layer(name).ok_or_else(|| {
                                    Error::Lock(crate::lock::LockError::Invalid {
                                        path: path.clone(),
                                        reason: format!(
                                            "image {} names layer {name}, which the lock lacks",
                                            i.name
                                        ),
                                    })
                                })?;
                                Ok(LayerView {
                                    label: Some(name.clone()),
                                    desc: l.desc,
                                    lines: Some(l.listing.clone()),
                                })
                            })
                            .collect::<Result<_, Error>>()?,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            if let Some(t) = &tag
                && images.is_empty()
            {
                return Err(Error::NoImage {
                    target: path.display().to_string(),
                    name: t.clone(),
                    available: lock.images.iter().map(|i| i.name.clone()).collect(),
                });
            }
            return Ok(Side {
                images,
                layout: None,
            });
        }
        let layout = strata_export::open_layout(&path)?;
        let chosen = layout.select(tag.as_deref())?;
        let mut images = Vec::new();
        for img in chosen {
            // From the typed layout, which read and checked them once; as
            // JSON values only to compare their fields one by one.
            let as_value = |what: &str, v: serde_json::Result<Value>| {
                v.map_err(|source| Error::Json {
                    what: format!("image {}: {what}", img.name),
                    source,
                })
            };
            let manifest_json = as_value("the manifest", serde_json::to_value(&img.manifest))?;
            let config_json = as_value("the config", serde_json::to_value(&img.config))?;
            let labels = layer_labels(&img.config);
            images.push(ImageView {
                name: img.name.clone(),
                manifest: img.manifest_digest,
                config_digest: img.config_digest,
                manifest_json: Some(manifest_json),
                config_json: Some(config_json),
                packages: None,
                layers: img
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(i, desc)| LayerView {
                        label: labels.get(i).cloned().flatten(),
                        desc: *desc,
                        lines: None,
                    })
                    .collect(),
            });
        }
        Ok(Side {
            images,
            layout: Some(layout),
        })
    }

    /// The image's installed Debian packages: a lock's `package` lines, or
    /// the dpkg status of the top layer of a layout image that has one
    /// (read from its blob). Empty when it has none.
    fn packages(&self, image: &ImageView) -> Result<crate::package_diff::PackageSet, Error> {
        if let Some(p) = &image.packages {
            return Ok(p.clone());
        }
        let Some(layout) = &self.layout else {
            return Ok(Default::default());
        };
        for layer in image.layers.iter().rev() {
            let path = layout.blob_path(&layer.desc.blob);
            let status =
                crate::package_diff::status_in_blob(&path).map_err(|source| Error::Layer {
                    layer: layer
                        .label
                        .clone()
                        .unwrap_or_else(|| layer.desc.blob.to_string()),
                    source,
                })?;
            if let Some(text) = status {
                return Ok(crate::package_diff::from_status(&text));
            }
        }
        Ok(Default::default())
    }

    /// The entries of a layer of this side, by path, with mtimes when a blob
    /// is there to read them from.
    fn entries(&self, layer: &LayerView, what: &str) -> Result<BTreeMap<Key, Facts>, Error> {
        if let Some(entries) = &layer.lines {
            // A lock's listing was parsed, line by line, when it was read.
            return Ok(entries.iter().map(Facts::of_entry).collect());
        }
        let Some(layout) = &self.layout else {
            return Ok(BTreeMap::new());
        };
        let path = layout.blob_path(&layer.desc.blob);
        let open = || {
            std::fs::File::open(&path).map_err(|source| {
                Error::Export(strata_export::Error::Io {
                    path: path.clone(),
                    source,
                })
            })
        };
        // One read through the project's own reader: the listing, and the
        // mtimes a listing leaves out.
        let (listing, mtimes) = strata_layer::list_blob_with_mtimes(BufReader::new(open()?))
            .map_err(|source| Error::Layer {
                layer: what.to_owned(),
                source,
            })?;
        Ok(listing
            .entries
            .iter()
            .zip(mtimes)
            .map(|(e, mtime)| {
                let (key, mut facts) = Facts::of_entry(e);
                facts.mtime = Some(mtime);
                (key, facts)
            })
            .collect())
    }
}

/// A layer's name from the config's history, one per non-empty layer.
fn layer_labels(config: &oci_spec::image::ImageConfiguration) -> Vec<Option<String>> {
    config
        .history()
        .iter()
        .flatten()
        .filter(|h| h.empty_layer() != Some(true))
        .map(|h| {
            h.created_by()
                .as_deref()
                .map(|s| strata_layer::history::layer_name(s).unwrap_or(s).to_owned())
        })
        .collect()
}

fn diff_image(
    out: &mut String,
    a_side: &Side,
    a: &ImageView,
    b_side: &Side,
    b: &ImageView,
) -> Result<(), Error> {
    if a.manifest == b.manifest {
        return Ok(());
    }
    if a.name == b.name {
        let _ = writeln!(out, "image {}", a.name);
    } else {
        let _ = writeln!(out, "image {} -> {}", a.name, b.name);
    }
    let _ = writeln!(out, "  manifest {} -> {}", a.manifest, b.manifest);
    if let (Some(x), Some(y)) = (&a.manifest_json, &b.manifest_json) {
        // The config and layers are compared below, from what they name.
        let skip = ["config", "layers"];
        diff_fields(out, "manifest.", &fields(x, &skip), &fields(y, &skip));
    }
    if a.config_digest != b.config_digest {
        let _ = writeln!(out, "  config {} -> {}", a.config_digest, b.config_digest);
        match (&a.config_json, &b.config_json) {
            (Some(x), Some(y)) => {
                // rootfs.diff_ids are the layers, compared one by one below.
                let skip = ["rootfs"];
                let before = out.len();
                diff_fields(out, "", &fields(x, &skip), &fields(y, &skip));
                if out.len() == before {
                    let _ = writeln!(
                        out,
                        "  (the same settings: only the layers' diff_ids it lists differ)"
                    );
                }
            }
            _ => {
                let _ = writeln!(out, "  (a lock file records no config fields)");
            }
        }
    }
    // Packages as packages: by name, before the files they are made of.
    let package_changes = crate::package_diff::changes(&a_side.packages(a)?, &b_side.packages(b)?);
    if !package_changes.is_empty() {
        let _ = writeln!(out, "  packages:");
        for c in package_changes {
            let _ = writeln!(out, "    {c}");
        }
    }
    if a.layers.len() != b.layers.len() {
        let _ = writeln!(out, "  layers {} -> {}", a.layers.len(), b.layers.len());
    }
    for i in 0..a.layers.len().max(b.layers.len()) {
        let n = i + 1;
        match (a.layers.get(i), b.layers.get(i)) {
            (Some(x), Some(y)) if x.desc.blob == y.desc.blob => {}
            (Some(x), Some(y)) => {
                let label = match (&x.label, &y.label) {
                    (Some(p), Some(q)) if p == q => format!(" ({p})"),
                    // A lock names layers `image/layer`, a layout's history `layer`.
                    (Some(p), Some(q)) if p.ends_with(&format!("/{q}")) => format!(" ({p})"),
                    (Some(p), Some(q)) if q.ends_with(&format!("/{p}")) => format!(" ({q})"),
                    (Some(p), Some(q)) => format!(" ({p} -> {q})"),
                    (Some(p), None) | (None, Some(p)) => format!(" ({p})"),
                    (None, None) => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  layer {n}{label}: blob {} -> {}",
                    x.desc.blob, y.desc.blob
                );
                if x.desc.diff_id != y.desc.diff_id {
                    let _ = writeln!(out, "    diff_id {} -> {}", x.desc.diff_id, y.desc.diff_id);
                }
                if x.desc.size != y.desc.size {
                    let _ = writeln!(out, "    size {} -> {}", x.desc.size, y.desc.size);
                }
                if x.desc.media_type != y.desc.media_type {
                    let _ = writeln!(
                        out,
                        "    media type {} -> {}",
                        x.desc.media_type, y.desc.media_type
                    );
                }
                if x.desc.diff_id == y.desc.diff_id {
                    let _ = writeln!(
                        out,
                        "    the same tar, compressed to other bytes (another compressor or level)"
                    );
                    continue;
                }
                let what = format!("layer {n} of image {}", a.name);
                let ea = a_side.entries(x, &what)?;
                let eb = b_side.entries(y, &what)?;
                let before = out.len();
                diff_entries(out, &ea, &eb);
                if out.len() == before {
                    let _ = writeln!(
                        out,
                        "    every entry is the same: the tars differ in what a listing does not show (header format, order)"
                    );
                }
            }
            (Some(x), None) => {
                let _ = writeln!(
                    out,
                    "  layer {n}: only in A: blob {}, {} bytes",
                    x.desc.blob, x.desc.size
                );
            }
            (None, Some(y)) => {
                let _ = writeln!(
                    out,
                    "  layer {n}: only in B: blob {}, {} bytes",
                    y.desc.blob, y.desc.size
                );
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// A JSON object flattened to named fields (`created`, `config.Env`), each
/// rendered as lines: a list item or a map entry a line, maps sorted.
fn fields(v: &Value, skip: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(obj) = v.as_object() else {
        return out;
    };
    for (k, v) in obj {
        if skip.contains(&k.as_str()) {
            continue;
        }
        match v {
            Value::Object(inner) if k == "config" => {
                for (k2, v2) in inner {
                    out.insert(format!("config.{k2}"), lines_of(v2));
                }
            }
            _ => {
                out.insert(k.clone(), lines_of(v));
            }
        }
    }
    out
}

fn lines_of(v: &Value) -> Vec<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(scalar).collect(),
        Value::Object(map) => {
            let mut lines: Vec<String> = map
                .iter()
                .map(|(k, v)| match v {
                    Value::Object(o) if o.is_empty() => k.clone(),
                    v => format!("{k}={}", scalar(v)),
                })
                .collect();
            lines.sort();
            lines
        }
        v => vec![scalar(v)],
    }
}

/// Print the fields that differ: `name: old -> new` for single values, else
/// the lines only in A (`-`) and only in B (`+`).
fn diff_fields(
    out: &mut String,
    prefix: &str,
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
) {
    let empty = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        let x = a.get(name).unwrap_or(&empty);
        let y = b.get(name).unwrap_or(&empty);
        if x == y {
            continue;
        }
        if x.len() <= 1 && y.len() <= 1 && !name.ends_with("Env") && name != "history" {
            let show = |v: &Vec<String>| v.first().map_or("-".to_owned(), |s| quote(s));
            let _ = writeln!(out, "  {prefix}{name}: {} -> {}", show(x), show(y));
            continue;
        }
        let _ = writeln!(out, "  {prefix}{name}:");
        let only = |from: &Vec<String>, other: &Vec<String>| {
            let mut rest = other.clone();
            let mut only = Vec::new();
            for item in from {
                match rest.iter().position(|r| r == item) {
                    Some(p) => {
                        rest.remove(p);
                    }
                    None => only.push(item.clone()),
                }
            }
            only
        };
        let removed = only(x, y);
        let added = only(y, x);
        if removed.is_empty() && added.is_empty() {
            let _ = writeln!(out, "    the same items in another order");
        }
        for r in removed {
            let _ = writeln!(out, "    - {}", quote(&r));
        }
        for a in added {
            let _ = writeln!(out, "    + {}", quote(&a));
        }
    }
}

/// A value as is when it is plain, else quoted, so a newline cannot break lines.
fn quote(s: &str) -> String {
    if s.is_empty() || s.chars().any(char::is_control) {
        format!("{s:?}")
    } else {
        s.to_owned()
    }
}

/// An entry's identity in a layer: its path, and whether it is a whiteout
/// or an opaque marker (which may share a path with a real entry).
type Key = (ImagePath, u8);

/// What is known of one entry, field by field, from a listing line (and
/// from the blob, when there is one: xattr values and the mtime).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    line: String,
    path: String,
    kind: String,
    mode: Option<String>,
    owner: Option<String>,
    content: Option<String>,
    link: Option<String>,
    device: Option<String>,
    /// Names, with a digest of the value when the blob was read.
    xattrs: Vec<(String, Option<Digest>)>,
    mtime: Option<u64>,
}

impl Facts {
    /// The facts of a listing line (the format of [`Entry::line`], read
    /// back by [`Entry::parse_line`]).
    #[cfg(test)]
    fn of_line(line: &str) -> Result<(Key, Facts), strata_layer::BadLine> {
        Ok(Facts::of_entry(&Entry::parse_line(line)?))
    }

    fn of_entry(e: &Entry) -> (Key, Facts) {
        let class = match e.kind {
            EntryKind::Whiteout => 1,
            EntryKind::Opaque => 2,
            _ => 0,
        };
        let marker = matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque);
        // Compared as the listing prints them, so a change reads as a review
        // of the lock's diff would show it.
        let line = e.line();
        let printed = |from: &str| {
            line.split_once(from)
                .map(|(_, v)| v.split(" xattr=").next().unwrap_or(v).to_owned())
        };
        let f = Facts {
            path: line.split(' ').next().unwrap_or_default().to_owned(),
            kind: e.kind.as_str().to_owned(),
            mode: (!marker).then(|| format!("{:04o}", e.mode)),
            owner: (!marker).then(|| format!("{}:{}", e.uid, e.gid)),
            content: (e.kind == EntryKind::File).then(|| match &e.digest {
                Some(d) => format!("{} {d}", e.size),
                None => format!("{} -", e.size),
            }),
            link: match e.kind {
                EntryKind::Symlink => printed(" -> ").map(|t| format!("-> {t}")),
                EntryKind::Hardlink => printed(" => ").map(|t| format!("=> {t}")),
                _ => None,
            },
            device: e
                .device
                .filter(|_| matches!(e.kind, EntryKind::Char | EntryKind::Block))
                .map(|(major, minor)| format!("{major},{minor}")),
            xattrs: e
                .xattrs
                .iter()
                .map(|(n, v)| (n.clone(), Some(Digest::of(v))))
                .collect(),
            mtime: None,
            line,
        };
        ((e.path.clone(), class), f)
    }

    /// What differs between `self` (A) and `other` (B), as `field a -> b`.
    fn changes(&self, other: &Facts) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut cmp = |name: &'static str, x: &Option<String>, y: &Option<String>| {
            if x != y {
                let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
                out.push((name, format!("{name} {} -> {}", show(x), show(y))));
            }
        };
        if self.kind != other.kind {
            cmp("type", &Some(self.kind.clone()), &Some(other.kind.clone()));
        }
        cmp("mode", &self.mode, &other.mode);
        cmp("owner", &self.owner, &other.owner);
        cmp("content", &self.content, &other.content);
        cmp("link", &self.link, &other.link);
        cmp("device", &self.device, &other.device);
        let names =
            |v: &[(String, Option<Digest>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&self.xattrs) != names(&other.xattrs) {
            out.push((
                "xattrs",
                format!(
                    "xattrs [{}] -> [{}]",
                    names(&self.xattrs).join(" "),
                    names(&other.xattrs).join(" ")
                ),
            ));
        } else {
            for ((n, x), (_, y)) in self.xattrs.iter().zip(&other.xattrs) {
                if let (Some(x), Some(y)) = (x, y)
                    && x != y
                {
                    out.push(("xattrs", format!("xattr {n} value changed")));
                }
            }
        }
        if let (Some(x), Some(y)) = (self.mtime, other.mtime)
            && x != y
        {
            out.push(("mtime", format!("mtime {x} -> {y}")));
        }
        out
    }
}

fn diff_entries(out: &mut String, a: &BTreeMap<Key, Facts>, b: &BTreeMap<Key, Facts>) {
    let keys: std::collections::BTreeSet<&Key> = a.keys().chain(b.keys()).collect();
    // Entries whose only change is their mtime, by (old, new): folded.
    let mut mtime_only: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for key in keys {
        match (a.get(key), b.get(key)) {
            (Some(x), None) => {
                let _ = writeln!(out, "    - {}", x.line);
            }
            (None, Some(y)) => {
                let _ = writeln!(out, "    + {}", y.line);
            }
            (Some(x), Some(y)) => {
                let changes = x.changes(y);
                if changes.is_empty() {
                    continue;
                }
                if changes.len() == 1 && changes[0].0 == "mtime" {
                    mtime_only
                        .entry(changes[0].1.clone())
                        .or_default()
                        .push(&x.path);
                    continue;
                }
                let text: Vec<&str> = changes.iter().map(|(_, t)| t.as_str()).collect();
                let _ = writeln!(out, "    ~ {}: {}", x.path, text.join(", "));
            }
            (None, None) => {}
        }
    }
    for (change, paths) in mtime_only {
        if paths.len() == 1 {
            let _ = writeln!(out, "    ~ {}: {change}", paths[0]);
        } else {
            let shown: Vec<&str> = paths.iter().take(3).copied().collect();
            let more = if paths.len() > 3 { ", …" } else { "" };
            let _ = writeln!(
                out,
                "    ~ {} entries: {change} ({}{more})",
                paths.len(),
                shown.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_fields() {
        let d = Digest::of(b"abc");
        let (key, f) = Facts::of_line("/usr/bin/ dir 0755 0:0").unwrap();
        assert_eq!(key, (ImagePath(b"usr/bin".to_vec()), 0));
        assert_eq!(f.mode.as_deref(), Some("0755"));
        let (key, f) =
            Facts::of_line("/a\\x20b symlink 0777 1:2 -> x\\x20y xattr=user.k=v").unwrap();
        assert_eq!(key.0, ImagePath(b"a b".to_vec()));
        assert_eq!(f.link.as_deref(), Some("-> x\\x20y"));
        assert_eq!(f.owner.as_deref(), Some("1:2"));
        assert_eq!(
            f.xattrs,
            vec![("user.k".to_owned(), Some(Digest::of(b"v")))]
        );
        let (key, _) = Facts::of_line("/etc/motd whiteout").unwrap();
        assert_eq!(key, (ImagePath(b"etc/motd".to_vec()), 1));
        let (_, f) = Facts::of_line(&format!("/f file 0644 0:0 3 {d}")).unwrap();
        assert_eq!(f.content, Some(format!("3 {d}")));
        assert!(Facts::of_line("/f file 0644 0:0 3 sha256:ab").is_err());
    }

    #[test]
    fn changes_name_their_fields() {
        let d = Digest::of(b"abc");
        let (_, mut x) = Facts::of_line(&format!("/f file 0644 0:0 3 {d}")).unwrap();
        let (_, mut y) = Facts::of_line(&format!("/f file 0755 1:1 3 {d}")).unwrap();
        x.mtime = Some(0);
        y.mtime = Some(5);
        let c: Vec<String> = x.changes(&y).into_iter().map(|(_, t)| t).collect();
        assert_eq!(c, ["mode 0644 -> 0755", "owner 0:0 -> 1:1", "mtime 0 -> 5"]);
    }

    #[test]
    fn config_fields_diff_by_item() {
        let a: Value = serde_json::json!({
            "created": "1970-01-01T00:00:00Z",
            "config": {"Env": ["A=1", "B=2"], "Cmd": ["/x"], "Labels": {"k": "v"}},
            "rootfs": {"diff_ids": ["x"]}
        });
        let b: Value = serde_json::json!({
            "created": "2023-11-14T22:13:20Z",
            "config": {"Env": ["A=1", "B=3"], "Cmd": ["/x"], "Labels": {"k": "w"}},
            "rootfs": {"diff_ids": ["y"]}
        });
        let mut out = String::new();
        diff_fields(
            &mut out,
            "",
            &fields(&a, &["rootfs"]),
            &fields(&b, &["rootfs"]),
        );
        assert_eq!(
            out,
            "  config.Env:\n    - B=2\n    + B=3\n  config.Labels: k=v -> k=w\n  created: 1970-01-01T00:00:00Z -> 2023-11-14T22:13:20Z\n"
        );
    }
}
