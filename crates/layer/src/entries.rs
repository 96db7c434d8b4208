//! A layer from explicit entries: [`build_entries`] writes a list of
//! [`HostEntry`]s (metadata given, file contents read from host files) as a
//! deterministic layer, through the same tree and tar writer as [`build`](crate::build).
//!
//! This is the primitive behind the layers that the union crate computes
//! rather than a spec describes: a squashed image, the difference between a
//! directory and the layers below it (`commit`, `from-dir`), and the upper
//! directory of a `run` step. Unlike the spec's operations, nothing is
//! normalised here: modes, owners and xattrs are written as given, because the
//! caller computed them from layers that already had them.

use std::io::Write;
use std::path::PathBuf;

use crate::LowerView;
use crate::build::{Progress, write_tree};
use crate::tree::{Content, Kind, Node, Tree, is_reserved};
use crate::{BuildOutput, Compression, Error, ImagePath};

/// What one entry of [`build_entries`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory; `opaque` hides the lower layers' contents of it.
    Dir {
        opaque: bool,
    },
    /// A regular file whose bytes are the host file `path`, which must still
    /// have `size` bytes when the layer is written. Files of one `group` are
    /// hard links of each other in the layer.
    File {
        path: PathBuf,
        size: u64,
        group: Option<u64>,
    },
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// A whiteout: the path is deleted from the lower layers.
    Whiteout,
}

/// One entry of a layer built by [`build_entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub path: ImagePath,
    pub source: Source,
    /// Permission bits, `0o7777` mask (ignored for a whiteout).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Writes `entries` (in any order) as one layer into `out`: sorted, parents
/// made explicit (0755, 0:0, where no entry describes them), every mtime
/// `epoch`. Refused with [`Error::BadPath`] (`op` is the entry's index): the
/// root as anything but a directory, a name reserved for whiteouts, two
/// entries for one path, and an entry below a non-directory.
pub fn build_entries(
    entries: &[HostEntry],
    epoch: u64,
    compression: Compression,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<BuildOutput, Error> {
    build_entries_on(
        entries,
        &LowerView::new(),
        epoch,
        compression,
        out,
        progress,
    )
}

/// [`build_entries`] for a layer on the union `lower`: a parent that no
/// entry describes and the layers below have as a directory keeps the
/// mode, owner and xattrs they give it (as Docker's COPY keeps them),
/// rather than becoming 0755 0:0.
pub fn build_entries_on(
    entries: &[HostEntry],
    lower: &LowerView,
    epoch: u64,
    compression: Compression,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<BuildOutput, Error> {
    let mut tree = Tree::new(lower);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Parents before children, so that "below a non-directory" is seen.
    order.sort_by(|&a, &b| entries[a].path.cmp(&entries[b].path));
    let mut last: Option<&ImagePath> = None;
    let mut leaves: Vec<&ImagePath> = Vec::new();
    for i in order {
        let e = &entries[i];
        let bad = |reason: &str| Error::BadPath {
            op: i,
            path: e.path.display(),
            reason: reason.to_owned(),
        };
        if last == Some(&e.path) {
            return Err(bad("two entries for one path"));
        }
        last = Some(&e.path);
        if e.path.components().any(is_reserved) {
            return Err(bad(crate::host::RESERVED));
        }
        if leaves.iter().any(|l| e.path.starts_with(l)) {
            return Err(bad("an entry below a non-directory of the same layer"));
        }
        if e.path.is_root() {
            if e.source != (Source::Dir { opaque: false }) {
                return Err(bad("only a plain directory can be at the root"));
            }
            continue;
        }
        let kind = match &e.source {
            Source::Dir { opaque } => Kind::Dir { opaque: *opaque },
            Source::File { path, size, group } => Kind::File {
                content: Content::Host(path.clone()),
                size: *size,
                group: *group,
            },
            Source::Symlink(target) => {
                if target.is_empty() || target.contains(&0) {
                    return Err(bad("a symlink target must be non-empty and without NUL"));
                }
                Kind::Symlink(target.clone())
            }
            Source::Char(a, b) => Kind::Char(*a, *b),
            Source::Block(a, b) => Kind::Block(*a, *b),
            Source::Fifo => Kind::Fifo,
            Source::Whiteout => {
                leaves.push(&e.path);
                tree.whiteout(&e.path);
                continue;
            }
        };
        if !matches!(kind, Kind::Dir { .. }) {
            leaves.push(&e.path);
        }
        let mut node = Node::new(kind, e.mode, None);
        node.uid = e.uid;
        node.gid = e.gid;
        node.xattrs = e.xattrs.clone();
        tree.put(e.path.clone(), node, true);
    }
    write_tree(tree, epoch, compression, out, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntryKind, JobOp, LayerJob};

    fn entry(path: &str, source: Source) -> HostEntry {
        HostEntry {
            path: ImagePath(path.as_bytes().to_vec()),
            source,
            mode: 0o700,
            uid: 1,
            gid: 2,
            xattrs: Vec::new(),
        }
    }

    fn build(entries: &[HostEntry]) -> Result<BuildOutput, Error> {
        build_entries(entries, 0, Compression::None, &mut Vec::new(), &|_| {})
    }

    #[test]
    fn entries_keep_their_metadata_and_become_whiteouts_and_opaque_dirs() {
        let out = build(&[
            entry("d/gone", Source::Whiteout),
            entry("o", Source::Dir { opaque: true }),
            entry("o/l", Source::Symlink(b"../d".to_vec())),
        ])
        .unwrap();
        assert_eq!(
            out.listing.text(),
            "/d/ dir 0755 0:0\n/d/gone whiteout\n/o/ dir 0700 1:2\n/o/ opaque\n/o/l symlink 0700 1:2 -> ../d\n"
        );
    }

    #[test]
    fn contradictions_are_refused() {
        let dup = build(&[entry("a", Source::Fifo), entry("a", Source::Fifo)]).unwrap_err();
        assert!(
            dup.to_string().contains("two entries for one path"),
            "{dup}"
        );
        let below = build(&[entry("a", Source::Fifo), entry("a/b", Source::Fifo)]).unwrap_err();
        assert!(
            below.to_string().contains("below a non-directory"),
            "{below}"
        );
        let reserved = build(&[entry(".wh.x", Source::Fifo)]).unwrap_err();
        assert!(reserved.to_string().contains("reserved"), "{reserved}");
    }

    #[test]
    fn a_glob_delete_whites_out_the_topmost_matches_of_the_union_below() {
        let lower_job = LayerJob {
            ops: ["a/x.log", "a/b/y.log", "a-c.log", "keep"]
                .iter()
                .map(|p| JobOp::File {
                    path: ImagePath(p.as_bytes().to_vec()),
                    content: Vec::new(),
                    mode: None,
                    owner: None,
                })
                .collect(),
            epoch: 0,
            compression: Compression::None,
            limits: Default::default(),
        };
        let below = crate::build(&lower_job, &LowerView::new(), &mut Vec::new(), &|_| {}).unwrap();
        let mut lower = LowerView::new();
        lower.apply(&below.listing);
        let job = |pattern: &str| LayerJob {
            ops: vec![JobOp::Delete {
                path: ImagePath(pattern.as_bytes().to_vec()),
            }],
            ..lower_job.clone()
        };
        let out = crate::build(&job("**/*.log"), &lower, &mut Vec::new(), &|_| {}).unwrap();
        let gone: Vec<String> = out
            .listing
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Whiteout)
            .map(|e| e.path.display())
            .collect();
        assert_eq!(gone, ["/a-c.log", "/a/x.log", "/a/b/y.log"]);
        let out = crate::build(&job("a/*"), &lower, &mut Vec::new(), &|_| {}).unwrap();
        assert_eq!(
            out.listing.text(),
            "/a/ dir 0755 0:0\n/a/b whiteout\n/a/x.log whiteout\n"
        );
        let none = crate::build(&job("*.txt"), &lower, &mut Vec::new(), &|_| {}).unwrap_err();
        assert!(matches!(none, Error::DeleteMissing { .. }), "{none}");
    }
}
