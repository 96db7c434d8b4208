//! Host files and directories copied into the layer (`copy`, and `add` of
//! something that is not a tarball), with their metadata normalised.
//!
//! Only the exec bit survives from the host: files become 0755 or 0644,
//! directories 0755, symlinks 0777, all owned by 0:0 unless the operation
//! says otherwise, so that umask, checkout tool and file owner never reach
//! the layer. Contents are not read here: a file node records its host path
//! and the size seen now, and the tar writer checks that it still reads
//! exactly that many bytes.

use std::fs::{FileType, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::tree::{Content, Kind, Node, Tree, is_reserved};
use crate::{Error, HostInput, ImagePath, Owner};

/// The `copy` operation (index `op`). A file goes to `to`, or into it when
/// `into_dir`; a directory's contents go into `to`, recursively, as Docker's
/// COPY does. A symlink given as `src` is followed; symlinks inside a copied
/// directory are copied as symlinks.
pub(crate) fn copy(
    tree: &mut Tree<'_>,
    op: usize,
    src: &HostInput,
    to: &ImagePath,
    into_dir: bool,
    mode: Option<u32>,
    owner: Option<Owner>,
) -> Result<(), Error> {
    let Some(file) = src.shared_file() else {
        tree.put(
            to.clone(),
            Node::new(Kind::Dir { opaque: false }, 0o755, owner),
            false,
        );
        return copy_dir(
            tree,
            src.real(),
            src.opened_at(),
            to,
            mode,
            owner,
            src.excludes(),
        );
    };
    let path = src.path();
    // The handle the planner opened, checked and hashed: its metadata, not
    // the path's, which may have changed since.
    let meta = file.metadata().map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let dest = if into_dir {
        let name = path.file_name().ok_or_else(|| Error::Host {
            path: path.to_owned(),
            reason: "the path has no file name".to_owned(),
        })?;
        to.join(name.as_bytes())
    } else {
        to.clone()
    };
    if dest.is_root() {
        return Err(Error::BadPath {
            op,
            path: dest.display(),
            reason: "a file cannot replace the root directory".to_owned(),
        });
    }
    if dest.file_name().is_some_and(is_reserved) {
        return Err(Error::BadPath {
            op,
            path: dest.display(),
            reason: RESERVED.to_owned(),
        });
    }
    let content = Content::Opened {
        file,
        path: path.to_owned(),
        since: src.opened_at(),
    };
    tree.put(dest, file_node(content, &meta, mode, owner), true);
    Ok(())
}

pub(crate) const RESERVED: &str = "names starting with .wh. are reserved for whiteouts";

/// The contents of the host directory at the physical path `src`, put below
/// `to`; nothing below it is reached through a symlink. Iterative, so
/// a deep tree cannot exhaust the stack; entries are visited in name order
/// (the tree sorts them anyway, but errors should not depend on readdir).
fn copy_dir(
    tree: &mut Tree<'_>,
    src: &Path,
    since: std::time::SystemTime,
    to: &ImagePath,
    mode: Option<u32>,
    owner: Option<Owner>,
    excludes: Option<&crate::Excludes>,
) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    // Each directory with its path relative to `src` (for `exclude=`) and
    // whether an exclude pattern left it out (then only what a `!`
    // pattern re-includes below it is copied, with it as a plain parent).
    let mut stack: Vec<(PathBuf, ImagePath, Vec<u8>)> =
        vec![(src.to_owned(), to.clone(), Vec::new())];
    while let Some((dir, dest, rel)) = stack.pop() {
        let stated = crate::beneath::read_dir_stated(&dir).map_err(io(&dir))?;
        for (name, meta) in stated {
            let path = dir.join(&name);
            let mut child_rel = rel.clone();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name.as_bytes());
            let excluded = excludes.is_some_and(|x| x.excluded(&child_rel));
            if excluded {
                let is_dir = meta.as_ref().is_ok_and(|m| m.file_type().is_dir());
                if is_dir && excludes.is_some_and(crate::Excludes::has_reincludes) {
                    stack.push((path, dest.join(name.as_bytes()), child_rel));
                }
                continue;
            }
            if is_reserved(name.as_bytes()) {
                return Err(Error::Host {
                    path,
                    reason: RESERVED.to_owned(),
                });
            }
            let meta = meta.map_err(io(&path))?;
            let ft = meta.file_type();
            let target = dest.join(name.as_bytes());
            if target.0.len() > crate::ingest::PATH_MAX {
                return Err(Error::Host {
                    path,
                    reason: format!(
                        "copied to {} its image path is {} bytes long, more than Linux's limit of {}",
                        target.display(),
                        target.0.len(),
                        crate::ingest::PATH_MAX
                    ),
                });
            }
            if ft.is_dir() {
                tree.put(
                    target.clone(),
                    Node::new(Kind::Dir { opaque: false }, 0o755, owner),
                    true,
                );
                stack.push((path, target, child_rel));
            } else if ft.is_file() {
                let content = Content::Input { path, since };
                tree.put(target, file_node(content, &meta, mode, owner), true);
            } else if ft.is_symlink() {
                let link = crate::beneath::read_link(&path).map_err(io(&path))?;
                let kind = Kind::Symlink(link.as_os_str().as_bytes().to_vec());
                tree.put(target, Node::new(kind, 0o777, owner), true);
            } else {
                return Err(special(&path, ft));
            }
        }
    }
    Ok(())
}

fn file_node<'a>(
    content: Content<'a>,
    meta: &Metadata,
    mode: Option<u32>,
    owner: Option<Owner>,
) -> Node<'a> {
    let exec = meta.permissions().mode() & 0o111 != 0;
    let mode = mode.unwrap_or(if exec { 0o755 } else { 0o644 });
    let kind = Kind::File {
        content,
        size: meta.len(),
        group: None,
    };
    Node::new(kind, mode, owner)
}

fn special(path: &Path, ft: FileType) -> Error {
    let what = if ft.is_fifo() {
        "a fifo"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Error::Host {
        path: path.to_owned(),
        reason: format!("is {what}: only files, directories and symlinks can be copied"),
    }
}

/// Reads a file listed with `buf.len() - 1` bytes into `buf` and returns how
/// many bytes it had: the size it was listed with, fewer if it shrank, or
/// `buf.len()` if it grew (without reading all of what it grew by).
///
/// One `read` for the usual case: a read that fills the listed size is
/// taken as the end, rather than asking again for the 0 that says so (on
/// 50,000 small files that second `read` was a quarter of the calls).
/// What that leaves out is a file that grew while the first `read` ran or a
/// filesystem that returns short reads mid-file exactly at the listed size:
/// no different from a file that grows right after it was read, which no
/// check here could see either.
pub fn read_listed(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let listed = buf.len().saturating_sub(1);
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if n == listed {
            break;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod read_listed_tests {
    use super::read_listed;

    #[test]
    fn says_whether_a_file_kept_shrank_or_grew_from_its_listed_size() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        let read = |listed: usize| {
            let mut buf = vec![0; listed + 1];
            let n = read_listed(&mut std::fs::File::open(&p).unwrap(), &mut buf).unwrap();
            (n, buf[..n.min(5)].to_vec())
        };
        assert_eq!(read(5), (5, b"12345".to_vec()), "as listed");
        assert_eq!(read(7).0, 5, "shrank since it was listed");
        assert_eq!(read(3).0, 4, "grew: one byte more than listed, no more");
        assert_eq!(read(0).0, 1);
        std::fs::write(&p, b"").unwrap();
        assert_eq!(read(0).0, 0);
    }
}
