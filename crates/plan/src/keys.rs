//! Layer cache keys: blake3 over a canonical, versioned encoding of everything
//! that decides a layer's bytes, and the content digests of its inputs.
//!
//! The encoding is a sequence of tagged, length-prefixed fields, so two
//! different jobs can never encode to the same bytes. What goes in: the key
//! format version, the compressor's identity (codec, implementation, level),
//! the epoch, every op with its arguments, the content digest of every input
//! (file bytes, exec bits, link targets, the shape of a directory tree), and,
//! for a layer that reads the layers below it, the stack digest of the layer
//! under it ([`stack_digest`]: every key below, chained). What never goes in:
//! host paths, mtimes, owners, inode numbers.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use strata_layer::{Compression, HostInput, JobOp};

use crate::Step;

/// Bump when the encoding below, or the way a layer is built from a job,
/// changes: every old key then misses instead of hitting wrongly.
pub const KEY_FORMAT: &str = "strata-layer-key-v1";

/// A layer's cache key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerKey(pub [u8; 32]);

impl LayerKey {
    pub fn hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }
}

impl fmt::Display for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerKey({})", self.hex())
    }
}

/// The content digest of one input, as the spec named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDigest {
    /// The source path as written in the spec.
    pub src: String,
    /// blake3 of the input's canonical content encoding.
    pub digest: [u8; 32],
    /// Where the input is on this host (for an SBOM to hash it); never
    /// part of a key, which depends on content only.
    pub path: std::path::PathBuf,
}

/// Tagged, length-prefixed fields into a blake3 hasher, through a buffer:
/// a tree of 50,000 files encodes to about 200,000 fields of a few bytes
/// each, and blake3 runs several times faster over long inputs than over a
/// call per field (a fifth of a warm compose's user time, measured). The
/// digest is that of the same bytes hashed field by field.
struct Enc {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

/// Bytes buffered before they go to the hasher.
const ENC_BUF: usize = 64 * 1024;

impl Enc {
    fn new() -> Self {
        Enc {
            hasher: blake3::Hasher::new(),
            buf: Vec::new(),
        }
    }

    fn field(&mut self, tag: &str, bytes: &[u8]) -> &mut Self {
        self.buf
            .extend_from_slice(&(tag.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(tag.as_bytes());
        self.buf
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        if bytes.len() >= ENC_BUF {
            self.hasher.update(&self.buf);
            self.buf.clear();
            self.hasher.update(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
            if self.buf.len() >= ENC_BUF {
                self.hasher.update(&self.buf);
                self.buf.clear();
            }
        }
        self
    }

    fn opt_u32(&mut self, tag: &str, v: Option<u32>) -> &mut Self {
        match v {
            Some(v) => self.field(tag, &v.to_le_bytes()),
            None => self.field(tag, b"-"),
        }
    }

    fn owner(&mut self, o: Option<strata_layer::Owner>) -> &mut Self {
        match o {
            Some(o) => self.field(
                "owner",
                &[o.uid.to_le_bytes(), o.gid.to_le_bytes()].concat(),
            ),
            None => self.field("owner", b"-"),
        }
    }

    fn finish(&self) -> [u8; 32] {
        let mut h = self.hasher.clone();
        h.update(&self.buf);
        h.finalize().into()
    }
}

/// One named component of a layer key: what it is, and the digest of its
/// canonical encoding. The key is the digest of all parts in order; the parts
/// themselves are kept so that a miss can say which one changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    /// A stable, human-readable label: `compression`, `op 2: copy inputs/index.jsp`, `below`.
    pub label: String,
    pub digest: [u8; 32],
}

impl KeyPart {
    fn new(label: impl Into<String>, enc: &Enc) -> Self {
        KeyPart {
            label: label.into(),
            digest: enc.finish(),
        }
    }
}

/// The key of a layer job and its parts. `inputs` are the digests of the job's
/// host inputs in op order; `below` the stack digest of the layer under it
/// when it reads the layers below: one part, whatever the depth, so a plan
/// of n layers makes n parts, not n² (the parts name no lower layer; the
/// compose names the ones that changed when it explains a miss).
///
/// A reading layer keyed this way never equals a key of
/// the older encoding, which had one part per lower layer: the parts differ,
/// so [`KEY_FORMAT`] did not need a bump, and the keys of layers that do not
/// read below, and every image digest, stayed as they were.
pub fn layer_key(
    steps: &[Step<'_>],
    epoch: u64,
    compression: Compression,
    inputs: &[InputDigest],
    below: Option<&[u8; 32]>,
) -> (LayerKey, Vec<KeyPart>) {
    let mut parts = vec![
        KeyPart::new("format", Enc::new().field("format", KEY_FORMAT.as_bytes())),
        KeyPart::new(
            format!("compression {}", compression.identity()),
            Enc::new().field("compression", compression.identity().as_bytes()),
        ),
        KeyPart::new(
            format!("epoch {}", epoch),
            Enc::new().field("epoch", &epoch.to_le_bytes()),
        ),
    ];
    let mut inputs = inputs.iter();
    for (n, step) in steps.iter().enumerate() {
        let mut e = Enc::new();
        let label = match *step {
            Step::Op(JobOp::Unpack {
                to, owner, mode, ..
            }) => {
                let input = inputs.next();
                e.field("op", b"unpack")
                    .field("input", &input.map_or([0; 32], |i| i.digest))
                    .field("to", &to.0)
                    .owner(*owner)
                    .opt_u32("mode", *mode);
                format!("add {}", input.map_or("?", |i| i.src.as_str()))
            }
            Step::Op(JobOp::Copy {
                to,
                into_dir,
                mode,
                owner,
                ..
            }) => {
                let input = inputs.next();
                e.field("op", b"copy")
                    .field("input", &input.map_or([0; 32], |i| i.digest))
                    .field("to", &to.0)
                    .field("into_dir", &[u8::from(*into_dir)])
                    .owner(*owner)
                    .opt_u32("mode", *mode);
                format!("copy {}", input.map_or("?", |i| i.src.as_str()))
            }
            Step::Op(JobOp::File {
                path,
                content,
                mode,
                owner,
            }) => {
                e.field("op", b"file")
                    .field("path", &path.0)
                    .field("content", content)
                    .owner(*owner)
                    .opt_u32("mode", *mode);
                format!("file {}", path.display())
            }
            Step::Op(JobOp::Mkdir { path, mode, owner }) => {
                e.field("op", b"mkdir")
                    .field("path", &path.0)
                    .owner(*owner)
                    .opt_u32("mode", *mode);
                format!("mkdir {}", path.display())
            }
            Step::Op(JobOp::Symlink {
                path,
                target,
                owner,
            }) => {
                e.field("op", b"symlink")
                    .field("path", &path.0)
                    .field("target", target)
                    .owner(*owner);
                format!("symlink {}", path.display())
            }
            Step::Op(JobOp::Workdir { path, owner }) => {
                e.field("op", b"workdir")
                    .field("path", &path.0)
                    .owner(*owner);
                format!("workdir {}", path.display())
            }
            Step::Op(JobOp::Delete { path }) => {
                e.field("op", b"delete").field("path", &path.0);
                format!("delete {}", path.display())
            }
            Step::Op(JobOp::Attr {
                path,
                mode,
                uid,
                gid,
                recursive,
            }) => {
                e.field("op", b"attr")
                    .field("path", &path.0)
                    .opt_u32("mode", *mode)
                    .opt_u32("uid", *uid)
                    .opt_u32("gid", *gid)
                    .field("recursive", &[u8::from(*recursive)]);
                format!("attr {}", path.display())
            }
            Step::FromDir { normalize } => {
                let input = inputs.next();
                e.field("op", b"from-dir")
                    .field("input", &input.map_or([0; 32], |i| i.digest));
                // Only the exact form adds a field: a `normalize=#true`
                // layer keeps the key it had before exact was the default.
                if !normalize {
                    e.field("exact", b"");
                }
                format!("from-dir {}", input.map_or("?", |i| i.src.as_str()))
            }
            Step::Run(step) => {
                e.field("op", b"run")
                    .field("command", step.command.as_bytes());
                for kv in &step.env {
                    e.field("env", kv.as_bytes());
                }
                e.field("workdir", step.workdir.as_deref().unwrap_or("-").as_bytes())
                    .field("user", step.user.as_deref().unwrap_or("-").as_bytes())
                    .field("network", &[u8::from(step.network)])
                    // Two platforms' images may share a base tarball: their
                    // commands run different binaries.
                    .field("platform", step.platform.as_bytes());
                // Only a `shell` adds a field: a step run by `/bin/sh -c`
                // keeps the key it had before `shell` existed.
                if let Some(shell) = &step.shell {
                    for w in shell {
                        e.field("shell", w.as_bytes());
                    }
                }
                // A mount's declaration, never its content: a cache's files
                // and a secret's bytes do not change what the key says.
                for m in &step.mounts {
                    match m {
                        strata_layer::RunMount::Cache { target, id } => e
                            .field("mount", b"cache")
                            .field("target", target.as_bytes())
                            .field("id", id.as_bytes()),
                        strata_layer::RunMount::Secret { target, .. } => e
                            .field("mount", b"secret")
                            .field("target", target.as_bytes()),
                        // The image shown by its layers, never its name.
                        strata_layer::RunMount::Bind {
                            target,
                            source,
                            stack,
                            ..
                        } => e
                            .field("mount", b"bind")
                            .field("target", target.as_bytes())
                            .field("source", &source.0)
                            .field("image", stack),
                    };
                }
                format!("run {}", step.command)
            }
            Step::CopyFrom(step) => {
                // The source image by its layers' stack digest, never by
                // its name: renaming a stage changes nothing.
                e.field("op", b"copy-from")
                    .field("source", &step.source)
                    .field("src", &step.src.0)
                    .field("to", &step.to.0)
                    .field("into_dir", &[u8::from(step.into_dir)])
                    .owner(step.owner)
                    .opt_u32("mode", step.mode);
                format!("copy {} from={}", step.src.display(), step.image)
            }
        };
        parts.push(KeyPart::new(format!("op {}: {label}", n + 1), &e));
    }
    if let Some(stack) = below {
        parts.push(KeyPart::new("below", Enc::new().field("below", stack)));
    }
    let mut all = Enc::new();
    for p in &parts {
        all.field("part", &p.digest);
    }
    (LayerKey(all.finish()), parts)
}

/// `parts` with one more, the owners the layer's ops give by name (which
/// its ops' own parts leave out), and the key they make. Only a layer with
/// such owners has this part, so every other key stays as it was.
pub(crate) fn with_owner_names(
    mut parts: Vec<KeyPart>,
    names: &[crate::NamedOwner],
) -> (LayerKey, Vec<KeyPart>) {
    let mut e = Enc::new();
    for n in names {
        e.field("op", &(n.op as u64).to_le_bytes())
            .field("owner-name", n.owner.to_string().as_bytes());
    }
    parts.push(KeyPart::new("owner names", &e));
    let mut all = Enc::new();
    for p in &parts {
        all.field("part", &p.digest);
    }
    (LayerKey(all.finish()), parts)
}

/// The digest of a stack of layers: `key` (the top layer's) chained onto
/// `under`, the stack digest of the layers below it (`None` at the bottom).
/// Equal stacks of keys, and only they, give equal digests.
pub fn stack_digest(under: Option<&[u8; 32]>, key: &LayerKey) -> [u8; 32] {
    let mut e = Enc::new();
    if let Some(u) = under {
        e.field("stack-under", u);
    }
    e.field("stack-top", &key.0).finish()
}

/// The key of a layer of an external base: its blob, diff_id and media type
/// (its content, whatever reference it was found by). A layer above that
/// reads the layers below covers it through this key.
pub fn external_key(
    blob: &strata_layer::Digest,
    diff_id: &strata_layer::Digest,
    media_type: &str,
) -> (LayerKey, Vec<KeyPart>) {
    let parts = vec![
        KeyPart::new("format", Enc::new().field("format", KEY_FORMAT.as_bytes())),
        KeyPart::new(
            format!("external blob {blob}"),
            Enc::new()
                .field("external-blob", &blob.0)
                .field("diff-id", &diff_id.0)
                .field("media-type", media_type.as_bytes()),
        ),
    ];
    let mut all = Enc::new();
    for p in &parts {
        all.field("part", &p.digest);
    }
    (LayerKey(all.finish()), parts)
}

/// Why a key differs from an earlier key of the same layer, from their parts:
/// one line per part that changed, appeared or went away.
pub fn explain_change(old: &[(String, String)], new: &[KeyPart]) -> Vec<String> {
    let mut out = Vec::new();
    for p in new {
        let hex = blake3::Hash::from(p.digest).to_hex().to_string();
        match old.iter().find(|(label, _)| *label == p.label) {
            None => out.push(format!("new {}", p.label)),
            Some((_, d)) if *d != hex => out.push(format!("changed {}", p.label)),
            Some(_) => {}
        }
    }
    for (label, _) in old {
        if !new.iter().any(|p| &p.label == label) {
            out.push(format!("removed {label}"));
        }
    }
    out
}

/// Remembers input file digests by their stat data, the way git's index does,
/// so a warm build does not re-read unchanged inputs.
pub trait DigestMemo: Send + Sync {
    /// The digest recorded for `path` if its stat data still matches `meta`
    /// and the record is not racy (see the cache's input index).
    fn get(&self, path: &Path, meta: &fs::Metadata) -> Option<[u8; 32]>;
    /// [`get`](DigestMemo::get) for `dir.join(name)`: a memo that can find
    /// it without the joined path saves an allocation per input file.
    fn get_in(&self, dir: &Path, name: &std::ffi::OsStr, meta: &fs::Metadata) -> Option<[u8; 32]> {
        self.get(&dir.join(name), meta)
    }
    /// Record the digest of `path` as hashed with stat data `meta`.
    fn put(&self, path: &Path, meta: &fs::Metadata, digest: [u8; 32]);
    /// Whether the memo may remember files of directory `dir`: when it
    /// cannot, the tree's walk opens each file for reading as it lists it
    /// (four calls per file hashed, not eight), and otherwise states it
    /// without opening it for reading (what a remembered file costs least).
    fn knows_dir(&self, dir: &Path) -> bool {
        let _ = dir;
        true
    }
}

/// Whether an input is a tarball that `add` unpacks: compressed (gzip, xz,
/// zstd, bzip2) by its magic bytes, or a plain tar by its ustar magic. A
/// directory is not. Read from the input's open handle.
pub fn is_archive(input: &HostInput) -> io::Result<bool> {
    let Some(mut f) = input.reader() else {
        return Ok(false);
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    Ok(head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.get(257..262) == Some(b"ustar"))
}

/// The content digest of an input: a file's bytes and exec bit, or a directory
/// tree's names (sorted by bytes), types, exec bits, contents and link targets.
/// Symlinks given directly were followed when the input was opened (the spec
/// named them); inside a directory they are recorded as links, as the layer
/// copies them. A file is hashed from the handle the layer packs; a tree is
/// walked at its physical path without following any symlink.
pub fn digest_input(input: &HostInput, memo: Option<&dyn DigestMemo>) -> io::Result<[u8; 32]> {
    let mut e = Enc::new();
    match (input.file(), input.reader()) {
        (Some(file), Some(mut reader)) => {
            let meta = file.metadata()?;
            let content = match memo.and_then(|m| m.get(input.path(), &meta)) {
                Some(d) => {
                    input.note_content_digest(d, None);
                    d
                }
                None => {
                    let d = hash_reader(&mut reader, &meta)?;
                    if let Some(m) = memo {
                        m.put(input.path(), &meta, d);
                    }
                    input.note_content_digest(d, Some(&meta));
                    d
                }
            };
            e.field("file", &content)
                .field("exec", &[u8::from(meta.permissions().mode() & 0o111 != 0)]);
        }
        _ => {
            e.field("dir", b"");
            // Only an `exclude=` adds fields: a copy without one keeps the
            // key it had before excludes existed. Excluded entries are
            // never read.
            if let Some(ex) = input.excludes() {
                for p in ex.patterns() {
                    e.field("exclude", p.as_bytes());
                }
            }
            digest_tree(input.real(), &mut e, memo, input.excludes())?;
        }
    }
    Ok(e.finish())
}

/// [`digest_input`] of a directory that a `from-dir` records exactly: its
/// content, and every entry's permission bits (setuid, setgid, sticky),
/// owner, device numbers and the xattrs it would record, so that a `chmod`
/// or `chown` alone is a change of the layer's key.
pub fn digest_input_exact(
    input: &HostInput,
    memo: Option<&dyn DigestMemo>,
) -> io::Result<[u8; 32]> {
    let mut e = Enc::new();
    e.field("exact", &digest_input(input, memo)?);
    digest_tree_meta(input.real(), &mut Vec::new(), &mut e)?;
    Ok(e.finish())
}

/// The metadata of `dir` and everything under it, sorted by name bytes.
fn digest_tree_meta(dir: &Path, rel: &mut Vec<u8>, e: &mut Enc) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(dir)?;
    e.field("name", rel)
        .field("mode", &(meta.mode() & 0o7777).to_le_bytes())
        .field("uid", &meta.uid().to_le_bytes())
        .field("gid", &meta.gid().to_le_bytes())
        .field("rdev", &meta.rdev().to_le_bytes());
    for (name, value) in strata_layer::recorded_xattrs(dir)? {
        e.field("xattr", name.as_bytes()).field("value", &value);
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let mut names: Vec<OsString> = fs::read_dir(dir)?
        .map(|d| d.map(|d| d.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let len = rel.len();
        rel.push(b'/');
        rel.extend_from_slice(name.as_bytes());
        digest_tree_meta(&dir.join(&name), rel, e)?;
        rel.truncate(len);
    }
    Ok(())
}

/// Files up to this size are read whole to be hashed.
const SMALL_FILE: u64 = 1 << 20;

/// The content digest of the file below an input directory at the physical
/// path `path`: opened without following symlinks,
/// hashed from that handle, and remembered by the memo with the handle's own
/// stat data (what was hashed is what is remembered).
fn hash_file(path: &Path, memo: Option<&dyn DigestMemo>) -> io::Result<([u8; 32], bool)> {
    let mut f = strata_layer::open_file(path)?;
    let meta = f.metadata()?;
    let d = hash_reader(&mut f, &meta)?;
    if let Some(m) = memo {
        m.put(path, &meta, d);
    }
    Ok((d, meta.permissions().mode() & 0o111 != 0))
}

/// The blake3 of what `f` reads, `meta` being its stat data.
fn hash_reader(f: &mut impl Read, meta: &fs::Metadata) -> io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    if meta.len() <= SMALL_FILE {
        // One read into a buffer of the file's size: `update_reader` zeroes
        // a 64 KiB buffer per call, which on 50,000 files of a few KiB
        // cost more than the hashing.
        // Not `fs::read`: it stats the file again for its size, which the
        // caller already has.
        let mut bytes = vec![0; usize::try_from(meta.len()).unwrap_or(0) + 1];
        let n = strata_layer::read_listed(f, &mut bytes)?;
        h.update(&bytes[..n]);
        if n as u64 > meta.len() {
            // It grew since it was listed: stream the rest rather than hold it.
            h.update_reader(f)?;
        }
    } else {
        h.update_reader(f)?;
    }
    Ok(h.finalize().into())
}

/// One entry of a tree, as it enters the key: what [`digest_tree`] encodes,
/// in order. Collected in parallel, encoded in sequence.
enum TreeItem {
    Symlink(Vec<u8>),
    Dir(Vec<(OsString, TreeItem)>),
    /// A directory an `exclude=` pattern excludes, walked only for what a
    /// `!` pattern re-includes below it.
    ExcludedDir(Vec<(OsString, TreeItem)>),
    File {
        content: [u8; 32],
        exec: bool,
    },
    Special,
}

/// The names and items of a directory, sorted by name bytes. Entries are
/// stated and hashed on the rayon pool: on a warm build the work is one
/// `stat` per file, and on a cold one reading and hashing, both of which
/// scale with cores.
fn scan_tree(
    dir: &Path,
    memo: Option<&dyn DigestMemo>,
    ex: Option<(&strata_layer::Excludes, &[u8])>,
) -> io::Result<Vec<(OsString, TreeItem)>> {
    use rayon::prelude::*;
    // Files are hashed while the directory is open; directories are walked
    // once it is closed, so a deep tree holds no descriptor per level.
    let open_files = memo.is_none_or(|m| !m.knows_dir(dir));
    let entries = strata_layer::map_dir_entries(dir, open_files, |name, meta, opened| {
        scan_entry(dir, name, meta?, opened, memo, ex)
    })?;
    entries
        .into_par_iter()
        .map(|entry| {
            Ok(match entry? {
                Scanned::Item(item) => Some(item),
                Scanned::Skipped => None,
                Scanned::Dir {
                    name,
                    rel,
                    excluded,
                } => {
                    let below = ex.zip(rel.as_deref()).map(|((x, _), r)| (x, r));
                    let children = scan_tree(&dir.join(&name), memo, below)?;
                    Some((
                        name,
                        if excluded {
                            TreeItem::ExcludedDir(children)
                        } else {
                            TreeItem::Dir(children)
                        },
                    ))
                }
            })
        })
        .filter_map(Result::transpose)
        .collect()
}

/// What [`scan_entry`] found: an item, nothing (excluded), or a directory
/// to walk (with its path relative to the excludes' root, when there are
/// excludes).
enum Scanned {
    Item((OsString, TreeItem)),
    Skipped,
    Dir {
        name: OsString,
        rel: Option<Vec<u8>>,
        excluded: bool,
    },
}

/// One entry of [`scan_tree`]: `opened` is the entry's handle when it is a
/// regular file, through which `meta` was stated and its bytes are hashed.
fn scan_entry(
    dir: &Path,
    name: OsString,
    meta: fs::Metadata,
    opened: Option<fs::File>,
    memo: Option<&dyn DigestMemo>,
    ex: Option<(&strata_layer::Excludes, &[u8])>,
) -> io::Result<Scanned> {
    let rel = ex.map(|(_, rel)| {
        let mut r = rel.to_vec();
        if !r.is_empty() {
            r.push(b'/');
        }
        r.extend_from_slice(name.as_bytes());
        r
    });
    let excluded = ex
        .zip(rel.as_deref())
        .is_some_and(|((x, _), r)| x.excluded(r));
    if excluded {
        let reenters = ex.is_some_and(|(x, _)| x.has_reincludes());
        return Ok(if meta.is_dir() && reenters {
            Scanned::Dir {
                name,
                rel,
                excluded: true,
            }
        } else {
            Scanned::Skipped
        });
    }
    let item = if meta.file_type().is_symlink() {
        TreeItem::Symlink(
            strata_layer::read_link(&dir.join(&name))?
                .into_os_string()
                .into_vec(),
        )
    } else if meta.is_dir() {
        return Ok(Scanned::Dir {
            name,
            rel,
            excluded: false,
        });
    } else if meta.is_file() {
        // A remembered digest is found without joining the path.
        let (content, exec) = match (memo.and_then(|m| m.get_in(dir, &name, &meta)), opened) {
            (Some(d), _) => (d, meta.permissions().mode() & 0o111 != 0),
            (None, Some(mut f)) => {
                // Hashed from the handle `meta` was stated through, as
                // `hash_file` does.
                let d = hash_reader(&mut f, &meta)?;
                if let Some(m) = memo {
                    m.put(&dir.join(&name), &meta, d);
                }
                (d, meta.permissions().mode() & 0o111 != 0)
            }
            (None, None) => hash_file(&dir.join(&name), memo)?,
        };
        TreeItem::File { content, exec }
    } else {
        TreeItem::Special
    };
    Ok(Scanned::Item((name, item)))
}

fn digest_tree(
    dir: &Path,
    e: &mut Enc,
    memo: Option<&dyn DigestMemo>,
    ex: Option<&strata_layer::Excludes>,
) -> io::Result<()> {
    let ex = ex.map(|x| (x, &b""[..]));
    encode_tree(&scan_tree(dir, memo, ex)?, &mut Vec::new(), e);
    Ok(())
}

/// Each entry under its path relative to the tree's root (`/name`,
/// `/dir/name`), built in `rel` as the encoding descends.
fn encode_tree(items: &[(OsString, TreeItem)], rel: &mut Vec<u8>, e: &mut Enc) {
    for (name, item) in items {
        let len = rel.len();
        rel.push(b'/');
        rel.extend_from_slice(name.as_bytes());
        if let TreeItem::ExcludedDir(children) = item {
            encode_tree(children, rel, e);
            rel.truncate(len);
            continue;
        }
        e.field("name", rel);
        match item {
            TreeItem::Symlink(target) => {
                e.field("symlink", target);
            }
            TreeItem::Dir(children) => {
                e.field("dir", b"");
                encode_tree(children, rel, e);
            }
            TreeItem::File { content, exec } => {
                e.field("file", content).field("exec", &[u8::from(*exec)]);
            }
            // Special files are refused by the builder; digest their kind so
            // the key is still defined.
            TreeItem::Special => {
                e.field("special", b"");
            }
            TreeItem::ExcludedDir(_) => {}
        }
        rel.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn digest(path: &Path) -> [u8; 32] {
        digest_input(&HostInput::open(path).unwrap(), None).unwrap()
    }

    fn tree(root: &Path, order: &[&str]) {
        for name in order {
            let p = root.join(name);
            if name.ends_with('/') {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, name.as_bytes()).unwrap();
            }
        }
    }

    #[test]
    fn directory_digest_ignores_creation_order_mtime_and_location() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path(), &["x/", "x/1", "x/2", "y"]);
        tree(b.path(), &["y", "x/2", "x/", "x/1"]);
        filetime::set_file_mtime(
            b.path().join("y"),
            filetime::FileTime::from_unix_time(12345, 0),
        )
        .unwrap();
        assert_eq!(digest(a.path()), digest(b.path()));
    }

    #[test]
    fn directory_digest_sees_content_exec_bit_and_links() {
        let a = tempfile::tempdir().unwrap();
        tree(a.path(), &["f"]);
        let d0 = digest(a.path());
        fs::set_permissions(a.path().join("f"), fs::Permissions::from_mode(0o755)).unwrap();
        let d1 = digest(a.path());
        assert_ne!(d0, d1, "exec bit");
        fs::write(a.path().join("f"), b"other").unwrap();
        let d2 = digest(a.path());
        assert_ne!(d1, d2, "content");
        symlink("f", a.path().join("l")).unwrap();
        let d3 = digest(a.path());
        fs::remove_file(a.path().join("l")).unwrap();
        symlink("g", a.path().join("l")).unwrap();
        assert_ne!(d3, digest(a.path()), "link target");
    }

    #[test]
    fn archive_detection_is_by_magic_not_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("looks.tar.gz");
        fs::write(&p, b"plain text").unwrap();
        assert!(!is_archive(&HostInput::open(&p).unwrap()).unwrap());
        let q = d.path().join("data.bin");
        fs::write(&q, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(is_archive(&HostInput::open(&q).unwrap()).unwrap());
        assert!(!is_archive(&HostInput::open(d.path()).unwrap()).unwrap());
    }

    /// The digest of a fixed tree, pinned: the key encoding must not change
    /// without a new KEY_FORMAT (every cached layer would hit wrongly or
    /// miss). Large enough (2,000 entries, 100 KiB of fields) to go through
    /// the encoder's buffer several times, with a field longer than it.
    /// (The value is what the encoding before the buffer gave: checked.)
    #[test]
    fn a_tree_digest_is_pinned() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for i in 0..1000 {
            let dir = root.join(format!("d{:02}", i % 37));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("f{i}")), format!("{i}").repeat(i % 7)).unwrap();
        }
        fs::write(root.join("big"), vec![7u8; 70_000]).unwrap();
        fs::write(root.join("tool"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("d00/f0", root.join("link")).unwrap();
        symlink("x".repeat(70_000 / 100), root.join("long-link")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        let hex = |d: [u8; 32]| blake3::Hash::from(d).to_hex().to_string();
        assert_eq!(
            hex(digest(root)),
            "0a8a2a7bb2eb95b57ab2565930acf592d88a47bbdc132b0c199067d8140bff4b",
            "the tree encoding changed: bump KEY_FORMAT"
        );
    }
}
