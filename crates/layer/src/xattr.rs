//! The extended attributes of a host path that a layer records when it
//! copies a tree exactly (`from-dir`, `commit`): which ones, read how.
//!
//! Recorded: `user.*`, `trusted.*` and `security.capability` (file
//! capabilities, the one Docker records). Left out: `security.selinux` (a
//! label of the host's policy, which the runtime sets in a container),
//! `system.*` (ACLs, which OCI runtimes do not restore) and overlayfs's own
//! `*.overlay.*` attributes (whiteout and opaque markers of an upper
//! directory, which a layer states as `.wh.` entries instead).

use std::io;
use std::path::Path;

/// The xattrs of `path` (not following a symlink) that a layer records,
/// sorted by name. A file system without xattrs has none.
pub fn recorded_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < (1 << 20) => {
                names.resize(names.len() * 4, 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !is_recorded(name) {
            continue;
        }
        if let Some(value) = xattr_value(path, name)? {
            out.push((name.to_owned(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a layer records the xattr `name`.
pub fn is_recorded(name: &str) -> bool {
    let ours =
        name.starts_with("user.") || name.starts_with("trusted.") || name == "security.capability";
    ours && !name.starts_with("user.overlay.") && !name.starts_with("trusted.overlay.")
}

/// One xattr's value, or `None` when it went away meanwhile.
fn xattr_value(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            // Linux's largest value is 64 KiB (`XATTR_SIZE_MAX`).
            Err(rustix::io::Errno::RANGE) if buf.len() < (1 << 17) => {
                buf.resize(buf.len() * 4, 0);
            }
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}
