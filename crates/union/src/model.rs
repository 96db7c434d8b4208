//! The reference model of the union filesystem: a map from path to node,
//! changed one layer listing at a time by the OCI rules, written to be
//! obviously right rather than fast. Property tests hold the on-disk applier
//! (`rootfs`) and real tools to it; `squash` and `commit` compute from it.
//!
//! The rules, for one layer applied on the union of the layers below:
//!
//! 1. Whiteouts and opaque markers apply first, and only to the layers below
//!    (never to entries of the same layer, whatever their order in the tar):
//!    a whiteout removes its path and everything below it, an opaque marker
//!    everything below its directory.
//! 2. Then each entry, in tar order: every ancestor becomes a directory (one
//!    that is missing appears as 0755 0:0; a non-directory in the way is
//!    replaced by one); a directory on a directory replaces its metadata and
//!    keeps its contents; anything else replaces what was at its path,
//!    everything below it included.
//! 3. A hard link is the file it names, with its metadata: the same inode.
//!    Its target must be a file the union shows at that moment.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use strata_layer::{Digest, EntryKind, ImagePath, Listing};

/// Which inode a regular file is: hard links share one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Inode {
    /// The file entry at `path` of layer number `layer` (bottom is 0) that
    /// carried the bytes.
    Layer { layer: usize, path: ImagePath },
    /// A file on the host (device and inode numbers).
    Host { dev: u64, ino: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        digest: Digest,
        size: u64,
        inode: Inode,
    },
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One path of the union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits, `0o7777` mask.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    fn implicit_dir() -> Node {
        Node {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        }
    }
}

/// A layer the model cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer {layer}: {path}: {reason}")]
pub struct ModelError {
    pub layer: usize,
    pub path: String,
    pub reason: String,
}

/// The union of a stack of layers. The root directory is implicit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    nodes: BTreeMap<ImagePath, Node>,
    layers: usize,
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// The union of `listings`, bottom first.
    pub fn of<'a>(listings: impl IntoIterator<Item = &'a Listing>) -> Result<Model, ModelError> {
        let mut m = Model::new();
        for l in listings {
            m.apply(l)?;
        }
        Ok(m)
    }

    /// A union made of `nodes` as they are, whose files come from `layers`
    /// layers (a part of another model, moved: `copy from=`). The caller
    /// keeps it a union: every ancestor of a node is a directory node.
    pub(crate) fn from_nodes(nodes: BTreeMap<ImagePath, Node>, layers: usize) -> Model {
        Model { nodes, layers }
    }

    /// Stacks one more layer on the union (see the module docs).
    pub fn apply(&mut self, layer: &Listing) -> Result<(), ModelError> {
        let index = self.layers;
        self.layers += 1;
        for e in &layer.entries {
            match e.kind {
                EntryKind::Whiteout => {
                    self.nodes.remove(&e.path);
                    self.remove_below(&e.path);
                }
                EntryKind::Opaque => self.remove_below(&e.path),
                _ => {}
            }
        }
        for e in &layer.entries {
            let err = |reason: &str| ModelError {
                layer: index,
                path: e.path.display(),
                reason: reason.to_owned(),
            };
            let kind = match e.kind {
                EntryKind::Whiteout | EntryKind::Opaque => continue,
                EntryKind::Dir => Kind::Dir,
                EntryKind::File => Kind::File {
                    digest: e.digest.ok_or_else(|| err("a file without a digest"))?,
                    size: e.size,
                    inode: Inode::Layer {
                        layer: index,
                        path: e.path.clone(),
                    },
                },
                EntryKind::Symlink => Kind::Symlink(e.link.clone().unwrap_or_default()),
                EntryKind::Char | EntryKind::Block => {
                    let (a, b) = e.device.unwrap_or_default();
                    if e.kind == EntryKind::Char {
                        Kind::Char(a, b)
                    } else {
                        Kind::Block(a, b)
                    }
                }
                EntryKind::Fifo => Kind::Fifo,
                EntryKind::Hardlink => {
                    let target = ImagePath(e.link.clone().unwrap_or_default());
                    match self.nodes.get(&target) {
                        Some(
                            n @ Node {
                                kind: Kind::File { .. },
                                ..
                            },
                        ) => {
                            let n = n.clone();
                            self.put(e.path.clone(), n);
                            continue;
                        }
                        _ => return Err(err("a hard link to something that is not a file")),
                    }
                }
            };
            if e.path.is_root() {
                continue;
            }
            self.put(
                e.path.clone(),
                Node {
                    kind,
                    mode: e.mode & 0o7777,
                    uid: e.uid,
                    gid: e.gid,
                    xattrs: e.xattrs.clone(),
                },
            );
        }
        Ok(())
    }

    fn put(&mut self, path: ImagePath, node: Node) {
        for a in path.ancestors() {
            match self.nodes.get(&a) {
                Some(n) if n.is_dir() => {}
                _ => {
                    self.remove_below(&a);
                    self.nodes.insert(a, Node::implicit_dir());
                }
            }
        }
        if !(node.is_dir() && self.nodes.get(&path).is_some_and(Node::is_dir)) {
            self.remove_below(&path);
        }
        self.nodes.insert(path, node);
    }

    fn remove_below(&mut self, path: &ImagePath) {
        let doomed: Vec<ImagePath> = self.below(path).map(|(p, _)| p.clone()).collect();
        for p in doomed {
            self.nodes.remove(&p);
        }
    }

    /// The paths strictly below `path`, in byte order.
    pub fn below<'a>(
        &'a self,
        path: &ImagePath,
    ) -> impl Iterator<Item = (&'a ImagePath, &'a Node)> + 'a {
        // `path/` up to `path0` (`0` follows `/`) holds exactly the paths
        // below `path`; below the root is every path.
        let (lo, hi) = if path.is_root() {
            (ImagePath::root(), None)
        } else {
            let mut lo = path.0.clone();
            lo.push(b'/');
            let mut hi = path.0.clone();
            hi.push(b'0');
            (ImagePath(lo), Some(ImagePath(hi)))
        };
        self.nodes
            .range(lo..)
            .take_while(move |(p, _)| hi.as_ref().is_none_or(|hi| *p < hi))
            .filter(|(p, _)| !p.is_root())
    }

    /// Every path of the union but the root, in byte order.
    pub fn nodes(&self) -> &BTreeMap<ImagePath, Node> {
        &self.nodes
    }

    pub fn get(&self, path: &ImagePath) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Whether the union shows a directory at `path` (the root always is one).
    pub fn is_dir(&self, path: &ImagePath) -> bool {
        path.is_root() || self.nodes.get(path).is_some_and(Node::is_dir)
    }

    /// The names of the direct children of the directory `dir`.
    pub fn children(&self, dir: &ImagePath) -> Vec<&[u8]> {
        self.below(dir)
            .filter(|(p, _)| p.parent().as_ref() == Some(dir))
            .filter_map(|(p, _)| p.file_name())
            .collect()
    }

    /// How many layers were applied.
    pub fn layers(&self) -> usize {
        self.layers
    }
}

/// The tree under `dir` on the host, read without following any symlink,
/// as model nodes (files hashed, hard links told by their inode). What is
/// directly in `dir` is at the top; `dir` itself is not listed.
pub fn read_dir_tree(dir: &Path) -> io::Result<BTreeMap<ImagePath, Node>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), ImagePath::root())];
    while let Some((host, path)) = stack.pop() {
        for entry in fs::read_dir(&host)? {
            let entry = entry?;
            let name = entry.file_name();
            let child_host = entry.path();
            let child = path.join(name.as_bytes());
            let meta = fs::symlink_metadata(&child_host)?;
            let node = node_of(&child_host, &meta)?;
            if node.is_dir() {
                stack.push((child_host, child.clone()));
            }
            out.insert(child, node);
        }
    }
    Ok(out)
}

/// The model node of one host path (`meta` from `symlink_metadata`).
pub fn node_of(host: &Path, meta: &fs::Metadata) -> io::Result<Node> {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        let (digest, size) =
            strata_layer::digest::digest_reader(io::BufReader::new(fs::File::open(host)?))?;
        Kind::File {
            digest,
            size,
            inode: Inode::Host {
                dev: meta.dev(),
                ino: meta.ino(),
            },
        }
    } else if ft.is_symlink() {
        Kind::Symlink(fs::read_link(host)?.as_os_str().as_bytes().to_vec())
    } else if ft.is_char_device() || ft.is_block_device() {
        let rdev = meta.rdev();
        let (major, minor) = (
            rustix::fs::major(rdev as rustix::fs::Dev),
            rustix::fs::minor(rdev as rustix::fs::Dev),
        );
        if ft.is_char_device() {
            Kind::Char(major, minor)
        } else {
            Kind::Block(major, minor)
        }
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        return Err(io::Error::other(format!(
            "{}: a socket cannot be part of an image",
            host.display()
        )));
    };
    Ok(Node {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        xattrs: Vec::new(),
    })
}

/// A tree as stable text, one line per path, for comparing trees made in
/// different ways (the model, an applied rootfs, a tool's unpack): kind,
/// mode (not for symlinks, whose mode Linux fixes), owner when `owners`,
/// content digest, link target or device numbers; a file that shares its
/// inode with an earlier path says `=> FIRST`. Xattrs are left out.
pub fn describe(nodes: &BTreeMap<ImagePath, Node>, owners: bool) -> String {
    let mut first_of: BTreeMap<&Inode, &ImagePath> = BTreeMap::new();
    let mut linked: BTreeSet<&Inode> = BTreeSet::new();
    for (p, n) in nodes {
        if let Kind::File { inode, .. } = &n.kind
            && first_of.insert(inode, p).is_some()
        {
            linked.insert(inode);
        }
    }
    let mut first_of: BTreeMap<&Inode, &ImagePath> = BTreeMap::new();
    let mut s = String::new();
    for (p, n) in nodes {
        s.push_str(&p.display());
        let body = match &n.kind {
            Kind::Dir => "dir".to_owned(),
            Kind::File {
                digest,
                size,
                inode,
            } => {
                let mut t = format!("file {size} {digest}");
                if linked.contains(inode) {
                    match first_of.get(inode) {
                        Some(first) => t.push_str(&format!(" => {first}")),
                        None => {
                            first_of.insert(inode, p);
                        }
                    }
                }
                t
            }
            Kind::Symlink(t) => format!("symlink -> {}", String::from_utf8_lossy(t)),
            Kind::Char(a, b) => format!("char {a},{b}"),
            Kind::Block(a, b) => format!("block {a},{b}"),
            Kind::Fifo => "fifo".to_owned(),
        };
        s.push(' ');
        s.push_str(&body);
        if !matches!(n.kind, Kind::Symlink(_)) {
            s.push_str(&format!(" {:04o}", n.mode));
        }
        if owners {
            s.push_str(&format!(" {}:{}", n.uid, n.gid));
        }
        s.push('\n');
    }
    s
}
