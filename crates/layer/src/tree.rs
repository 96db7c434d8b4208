//! The layer being built: a map from path to node, sorted by path bytes, plus
//! the whiteouts of lower paths. A file node records where its content comes
//! from (a host file, inline bytes, or a range of a spooled archive), never
//! the content itself, so the tree's size follows the number of entries and
//! not the size of the layer.
//!
//! Operations apply in order and later ones win. The rules that keep the
//! result a valid OCI layer live here: every entry's parent directories
//! exist, a whiteout and an entry never share a path (a deleted lower
//! directory that is written again becomes an opaque directory), and a
//! non-directory replacing a directory drops what was below it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;

use crate::{Error, ImagePath, Limits, LowerView, Owner};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Content<'a> {
    /// A host file, read when the tar is written.
    Host(PathBuf),
    /// A file below a spec's input directory, at this physical path: opened
    /// when the tar is written without following any symlink, so a file
    /// swapped for one meanwhile fails rather than leads outside.
    /// `since`: when the input was opened for its key ([`crate::HostInput::opened_at`]).
    Input {
        path: PathBuf,
        since: std::time::SystemTime,
    },
    /// A spec's input file, opened (and hashed for the key) by the planner:
    /// packed from that handle. `path` is for messages; `since` as for `Input`.
    Opened {
        file: std::sync::Arc<File>,
        path: PathBuf,
        since: std::time::SystemTime,
    },
    /// Bytes of the job itself.
    Inline(&'a [u8]),
    /// A range of the spool file `spool` (an index into [`Tree::spools`]).
    Spool { spool: usize, offset: u64 },
}

#[derive(Debug, Clone)]
pub(crate) enum Kind<'a> {
    /// `opaque`: the lower layers' contents of this directory are hidden.
    Dir {
        opaque: bool,
    },
    /// Files of one `group` share their content: they are hard links of each
    /// other in the tar.
    File {
        content: Content<'a>,
        size: u64,
        group: Option<u64>,
    },
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub kind: Kind<'a>,
    /// Permission bits, `0o7777` mask.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl<'a> Node<'a> {
    pub fn new(kind: Kind<'a>, mode: u32, owner: Option<Owner>) -> Node<'a> {
        let owner = owner.unwrap_or(Owner { uid: 0, gid: 0 });
        Node {
            kind,
            mode: mode & 0o7777,
            uid: owner.uid,
            gid: owner.gid,
            xattrs: Vec::new(),
        }
    }

    /// A parent directory no operation described.
    fn implicit_dir(opaque: bool) -> Node<'a> {
        Node::new(Kind::Dir { opaque }, 0o755, None)
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir { .. })
    }
}

/// A decompressed input archive; entries' contents are ranges of it.
pub(crate) struct Spool {
    /// A temporary file, or a plain tar input's own handle: read with `pread`.
    pub file: std::sync::Arc<File>,
    /// The input it was made from, for error messages.
    pub archive: PathBuf,
    /// For a plain tar read in place, its stat data when it was checked:
    /// it must not change until the layer is written (see `inplace`).
    pub stamp: Option<crate::inplace::Stamp>,
}

/// What one tar entry of the layer is.
pub(crate) enum What<'a> {
    Node(Node<'a>),
    /// `DIR/.wh.NAME`: `path` is deleted.
    Whiteout,
    /// `path/.wh..wh..opq`.
    Opaque,
}

/// One tar entry, with the name it has in the tar.
pub(crate) struct Item<'a> {
    pub name: Vec<u8>,
    pub path: ImagePath,
    pub what: What<'a>,
}

pub(crate) use strata_oci::whiteout::{OPAQUE_NAME, WHITEOUT_PREFIX, is_reserved};

pub(crate) struct Tree<'a> {
    lower: &'a LowerView,
    nodes: BTreeMap<ImagePath, Node<'a>>,
    whiteouts: BTreeSet<ImagePath>,
    pub spools: Vec<Spool>,
    next_group: u64,
    /// Bounds on the archives unpacked into the tree.
    pub limits: Limits,
    /// The owner of the operation being applied, given with `owner=`: the
    /// owner of the parents it creates that no layer below has.
    pub parent_owner: Option<Owner>,
}

impl<'a> Tree<'a> {
    pub fn new(lower: &'a LowerView) -> Tree<'a> {
        Tree {
            lower,
            nodes: BTreeMap::new(),
            whiteouts: BTreeSet::new(),
            spools: Vec::new(),
            next_group: 0,
            limits: Limits::DEFAULT,
            parent_owner: None,
        }
    }

    /// A fresh hardlink group id.
    pub fn new_group(&mut self) -> u64 {
        self.next_group += 1;
        self.next_group
    }

    /// Puts `node` at `path`, creating missing parent directories. A
    /// directory put on an existing directory keeps what is below it, and
    /// replaces its metadata only if `replace_meta` (an operation that
    /// describes the directory, as opposed to one that merely needs it).
    /// Anything else replaces what was at `path`, with everything below it.
    /// The root is never an entry: putting a directory there does nothing,
    /// and callers refuse anything else before calling.
    pub fn put(&mut self, path: ImagePath, mut node: Node<'a>, replace_meta: bool) {
        if path.is_root() {
            debug_assert!(node.is_dir(), "only a directory can be put at the root");
            return;
        }
        self.ensure_parents(&path);
        if let Kind::Dir { opaque } = &mut node.kind {
            match self.nodes.get_mut(&path) {
                Some(existing) => {
                    if let Kind::Dir { opaque: was } = existing.kind {
                        if replace_meta {
                            *opaque = was;
                            *existing = node;
                        }
                        return;
                    }
                    // A non-directory this layer put here hid the lower
                    // directory, if any; the new directory must hide it too.
                    *opaque = true;
                }
                None => {
                    if self.whiteouts.remove(&path) {
                        *opaque = self.lower.is_dir(&path);
                    } else if !replace_meta {
                        // A directory an operation merely needs (`copy` of a
                        // directory into it) keeps what the layers below gave
                        // it, as Docker's COPY keeps an existing destination.
                        self.keep_lower_meta(&path, &mut node);
                    }
                }
            }
            self.nodes.insert(path, node);
        } else {
            self.remove_below(&path);
            self.whiteouts.remove(&path);
            self.nodes.insert(path, node);
        }
    }

    /// Sets the mode (not of a symlink) and owner of the node at `path`,
    /// and with `recursive` of every node below it; nothing if this layer
    /// has no node there.
    pub fn attr(
        &mut self,
        path: &ImagePath,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        recursive: bool,
    ) {
        let set = |n: &mut Node<'a>| {
            if let Some(m) = mode
                && !matches!(n.kind, Kind::Symlink(_))
            {
                n.mode = m & 0o7777;
            }
            if let Some(u) = uid {
                n.uid = u;
            }
            if let Some(g) = gid {
                n.gid = g;
            }
        };
        let Some(node) = self.nodes.get_mut(path) else {
            return;
        };
        let dir = node.is_dir();
        set(node);
        if recursive && dir {
            // Everything below sorts between `PATH/` and `PATH0`.
            let mut lo = path.0.clone();
            lo.push(b'/');
            let mut hi = path.0.clone();
            hi.push(b'/' + 1);
            for (_, n) in self.nodes.range_mut(ImagePath(lo)..ImagePath(hi)) {
                set(n);
            }
        }
    }

    /// Makes every proper ancestor of `path` a directory.
    fn ensure_parents(&mut self, path: &ImagePath) {
        // The ancestors of every node are directories: when the parent is
        // one, so are the rest. This keeps a deep tree put in order (as an
        // archive's sorted entries are) linear rather than quadratic.
        if let Some(parent) = path.parent().filter(|p| !p.is_root())
            && self.nodes.get(&parent).is_some_and(Node::is_dir)
        {
            return;
        }
        for a in path.ancestors() {
            match self.nodes.get(&a) {
                Some(n) if n.is_dir() => {}
                // Same reasoning as in `put`: the non-directory hid lower
                // contents, which must stay hidden.
                Some(_) => {
                    self.nodes.insert(a, Node::implicit_dir(true));
                }
                None => {
                    let opaque = self.whiteouts.remove(&a) && self.lower.is_dir(&a);
                    let mut node = Node::implicit_dir(opaque);
                    if let Some(o) = self.parent_owner {
                        node.uid = o.uid;
                        node.gid = o.gid;
                    }
                    if !opaque {
                        // An existing parent keeps the mode, owner and
                        // xattrs the layers below gave it (after `file
                        // "/tmp/y"`, `/tmp` is still 1777); a missing one is
                        // 0755 0:0.
                        self.keep_lower_meta(&a, &mut node);
                    }
                    self.nodes.insert(a, node);
                }
            }
        }
    }

    /// Gives the directory `node` at `path` the metadata the layers below
    /// give that directory, if they list it.
    fn keep_lower_meta(&self, path: &ImagePath, node: &mut Node<'a>) {
        if let Some(m) = self.lower.dir_meta(path) {
            node.mode = m.mode;
            node.uid = m.uid;
            node.gid = m.gid;
            node.xattrs = m.xattrs.clone();
        }
    }

    /// Nodes and whiteouts strictly below `path`.
    fn remove_below(&mut self, path: &ImagePath) {
        if path.is_root() {
            self.nodes.clear();
            self.whiteouts.clear();
            return;
        }
        // `path/` up to `path0` (`0` follows `/`) holds exactly the paths
        // below `path` in byte order.
        let mut lo = path.0.clone();
        lo.push(b'/');
        let mut hi = path.0.clone();
        hi.push(b'0');
        let (lo, hi) = (ImagePath(lo), ImagePath(hi));
        let doomed: Vec<ImagePath> = self
            .nodes
            .range(lo.clone()..hi.clone())
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.nodes.remove(&p);
        }
        let doomed: Vec<ImagePath> = self.whiteouts.range(lo..hi).cloned().collect();
        for p in doomed {
            self.whiteouts.remove(&p);
        }
    }

    /// Whether this layer hides `path` of the lower layers: it was deleted,
    /// or an ancestor was deleted, replaced by a non-directory or made opaque.
    fn hides_lower(&self, path: &ImagePath) -> bool {
        if self.whiteouts.contains(path) {
            return true;
        }
        path.ancestors().iter().any(|a| {
            self.whiteouts.contains(a)
                || match self.nodes.get(a) {
                    Some(Node {
                        kind: Kind::Dir { opaque },
                        ..
                    }) => *opaque,
                    Some(_) => true,
                    None => false,
                }
        })
    }

    /// The `delete` operation (index `op`): removes what this layer put at
    /// `path` and below, and records a whiteout if a lower layer shows it.
    /// A `path` with `*`, `?` or `[` is a glob (see `glob`): every path of
    /// the union so far that it matches is deleted, and none is an error.
    pub fn delete(&mut self, op: usize, path: &ImagePath) -> Result<(), Error> {
        if !crate::glob::is_glob(&path.0) {
            return self.delete_path(op, path);
        }
        let mut matches: Vec<ImagePath> = self
            .lower
            .paths()
            .filter(|p| !self.hides_lower(p))
            .chain(self.nodes.keys())
            .filter(|p| crate::glob::matches(&path.0, &p.0))
            .cloned()
            .collect();
        matches.sort();
        matches.dedup();
        // Deleting a directory deletes what is below it.
        let all: BTreeSet<&ImagePath> = matches.iter().collect();
        let top: Vec<ImagePath> = matches
            .iter()
            .filter(|m| !m.ancestors().iter().any(|a| all.contains(a)))
            .cloned()
            .collect();
        if top.is_empty() {
            return Err(Error::DeleteMissing {
                op,
                path: path.display(),
            });
        }
        for m in &top {
            self.delete_path(op, m)?;
        }
        Ok(())
    }

    fn delete_path(&mut self, op: usize, path: &ImagePath) -> Result<(), Error> {
        if path.is_root() {
            return Err(Error::BadPath {
                op,
                path: path.display(),
                reason: "the root directory cannot be deleted".to_owned(),
            });
        }
        let here = self.nodes.contains_key(path);
        let in_lower = self.lower.contains(path) && !self.hides_lower(path);
        if !here && !in_lower {
            return Err(Error::DeleteMissing {
                op,
                path: path.display(),
            });
        }
        self.nodes.remove(path);
        self.remove_below(path);
        if in_lower {
            self.ensure_parents(path);
            self.whiteouts.insert(path.clone());
        }
        Ok(())
    }

    /// Records a whiteout at `path` without asking the lower view, for a
    /// layer built from explicit entries (the caller knows what lies below).
    pub fn whiteout(&mut self, path: &ImagePath) {
        self.ensure_parents(path);
        self.nodes.remove(path);
        self.remove_below(path);
        self.whiteouts.insert(path.clone());
    }

    /// Every tar entry of the layer, sorted by tar name, and the spools
    /// their contents come from.
    pub fn into_items(self) -> (Vec<Item<'a>>, Vec<Spool>) {
        let mut items = Vec::with_capacity(self.nodes.len() + self.whiteouts.len());
        for (path, node) in self.nodes {
            let mut name = path.0.clone();
            if let Kind::Dir { opaque } = node.kind {
                name.push(b'/');
                if opaque {
                    let mut marker = name.clone();
                    marker.extend_from_slice(OPAQUE_NAME);
                    items.push(Item {
                        name: marker,
                        path: path.clone(),
                        what: What::Opaque,
                    });
                }
            }
            items.push(Item {
                name,
                path,
                what: What::Node(node),
            });
        }
        for path in self.whiteouts {
            let mut name = Vec::with_capacity(path.0.len() + 5);
            if let Some(parent) = path.parent().filter(|p| !p.is_root()) {
                name.extend_from_slice(&parent.0);
                name.push(b'/');
            }
            name.extend_from_slice(WHITEOUT_PREFIX);
            name.extend_from_slice(path.file_name().unwrap_or_default());
            items.push(Item {
                name,
                path,
                what: What::Whiteout,
            });
        }
        // Directories sort as `name/`, so this is the order of the tar names
        // themselves, which is also parents before children.
        items.sort_by(|a, b| a.name.cmp(&b.name));
        (items, self.spools)
    }
}
