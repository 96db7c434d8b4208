//! Where a spec's sources may come from: each `add`, `copy` and `rootfs`
//! source is resolved against the spec's directory, its symlinks followed,
//! and must then lie inside the inputs root (the spec's directory, or the
//! spec's `inputs-root`) and be a regular file or a directory.
//!
//! Specs come from many hands, like the tarballs they name: without this, a
//! spec could copy `/etc/shadow` or `~/.ssh` into an image, directly, through
//! `../..`, or through a symlink planted beside it. A spec that needs inputs
//! from elsewhere says so with `inputs-root`. Symlinks inside a copied
//! directory are not followed (the layer copies them as links), so checking
//! the source itself is enough.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use miette::SourceSpan;
use strata_layer::HostInput;
use strata_spec::{Spanned, Spec, SpecDiagnostic};

/// The directory every source must lie in.
#[derive(Debug, Clone)]
pub(crate) struct InputRoot {
    /// Canonical: absolute, symlinks resolved.
    dir: PathBuf,
    /// Whether the spec set it with `inputs-root`.
    explicit: bool,
}

/// The inputs root of `spec`, whose sources are relative to `base_dir`.
pub(crate) fn root(spec: &Spec, base_dir: &Path) -> Result<InputRoot, SpecDiagnostic> {
    match &spec.inputs_root {
        Some(r) => {
            let path = base_dir.join(&r.value);
            let dir = fs::canonicalize(&path)
                .and_then(|dir| {
                    if fs::metadata(&dir)?.is_dir() {
                        Ok(dir)
                    } else {
                        Err(io::Error::other("not a directory"))
                    }
                })
                .map_err(|e| {
                    SpecDiagnostic::new(
                        format!("inputs-root {}: {}", path.display(), reason(&e)),
                        r.span,
                        "this directory",
                    )
                    .with_help(
                        "`inputs-root` names an existing directory, relative to the spec file",
                    )
                })?;
            Ok(InputRoot {
                dir,
                explicit: true,
            })
        }
        None => {
            let dir = fs::canonicalize(base_dir).map_err(|e| {
                SpecDiagnostic::new(
                    format!(
                        "the spec's directory {}: {}",
                        base_dir.display(),
                        reason(&e)
                    ),
                    SourceSpan::new(0.into(), 0),
                    "here",
                )
            })?;
            Ok(InputRoot {
                dir,
                explicit: false,
            })
        }
    }
}

/// The source `src`, opened: it exists, lies inside `root` once its
/// symlinks are followed, and is a regular file or a directory. Its path is
/// kept as written (joined to `base_dir`), not resolved, so that a symlinked
/// source keeps its own name (`copy "current" to="/opt/"` makes
/// `/opt/current`, as Docker's COPY does).
///
/// The path is checked first, for messages that say where it leads; then it
/// is opened once, on directory handles ([`HostInput::open`]), and what was
/// opened is checked again: a source swapped for a symlink between the two
/// cannot bring in a file from outside, as the handle is what is hashed and
/// packed.
pub(crate) fn resolve(
    root: Option<&InputRoot>,
    base_dir: &Path,
    src: &Spanned<String>,
) -> Result<HostInput, SpecDiagnostic> {
    // `inputs/x` rather than `./inputs/x` for a spec in the working
    // directory: the path appears in messages.
    let path = if base_dir == Path::new(".") {
        PathBuf::from(&src.value)
    } else {
        base_dir.join(&src.value)
    };
    let diag = |message: String, label: &str| SpecDiagnostic::new(message, src.span, label);
    let missing = |e: &io::Error| {
        diag(
            format!("input {}: {}", path.display(), reason(e)),
            "this input",
        )
        .with_help("input paths are relative to the directory of the spec file")
    };
    fs::symlink_metadata(&path).map_err(|e| missing(&e))?;
    let resolved = fs::canonicalize(&path).map_err(|e| missing(&e))?;
    if let Some(root) = root
        && !resolved.starts_with(&root.dir)
    {
        let via = if lexically_normal(&base_dir.join(&src.value)) == resolved {
            String::new()
        } else {
            format!(" (it resolves to {})", resolved.display())
        };
        let (message, help) = if root.explicit {
            (
                format!(
                    "input {} is outside the inputs root {}{via}",
                    path.display(),
                    root.dir.display()
                ),
                "inputs must lie inside `inputs-root`; widen it to take this input".to_owned(),
            )
        } else {
            (
                format!(
                    "input {} is outside the spec's directory {}{via}",
                    path.display(),
                    root.dir.display()
                ),
                "inputs must lie inside the spec's directory; a spec that needs others says \
                 where they may come from at its top: `inputs-root \"..\"` (docs/spec.md §6.1)"
                    .to_owned(),
            )
        };
        return Err(diag(message, "outside the inputs root").with_help(help));
    }
    let meta = fs::metadata(&resolved).map_err(|e| missing(&e))?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_dir() {
        let what = if ft.is_fifo() {
            "a fifo"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(diag(
            format!(
                "input {} is {what}: only files and directories can be inputs",
                path.display()
            ),
            "not a file or directory",
        ));
    }
    let input = HostInput::open(&path).map_err(|e| missing(&e))?;
    if let Some(root) = root
        && !input.real().starts_with(&root.dir)
    {
        return Err(diag(
            format!(
                "input {} changed while it was opened: it now resolves to {}, outside the inputs root {}",
                path.display(),
                input.real().display(),
                root.dir.display()
            ),
            "outside the inputs root",
        )
        .with_help("something replaced the input with a symlink while strata read it; nothing from outside was read"));
    }
    Ok(input)
}

/// Whether a source's name says it is a tarball: `add` of such a file that
/// holds none of the tarball formats is refused rather than copied.
pub(crate) fn named_like_archive(src: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.bz2", ".tbz2",
        ".tbz",
    ];
    let lower = src.to_ascii_lowercase();
    SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// `path` with `.` and `..` applied without touching the file system, to
/// tell a source reached through a symlink from one that is not.
fn lexically_normal(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// `input` with the `exclude=` patterns `x`: a directory's, compiled (a
/// pattern that is none, or `exclude=` on a file, is an error at `x`).
pub(crate) fn with_excludes(
    input: strata_layer::HostInput,
    x: &Spanned<Vec<String>>,
) -> Result<strata_layer::HostInput, SpecDiagnostic> {
    if !input.is_dir() {
        return Err(SpecDiagnostic::new(
            format!(
                "`exclude` filters a directory, and {} is a file",
                input.path().display()
            ),
            x.span,
            "not a directory's",
        )
        .with_help("remove `exclude=`, or copy the directory that holds the file"));
    }
    let ex = strata_layer::Excludes::new(&x.value).map_err(|reason| {
        SpecDiagnostic::new(format!("bad exclude pattern: {reason}"), x.span, "here").with_help(
            "patterns are .dockerignore's: Go's filepath.Match syntax plus `**`, `!` to re-include",
        )
    })?;
    Ok(input.with_excludes(ex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarball_names() {
        for yes in ["a.tar", "x/b.tar.gz", "C.TGZ", "d.tar.zst", "e.tbz2"] {
            assert!(named_like_archive(yes), "{yes}");
        }
        for no in ["a.gz", "index.jsp", "tar", "x.tar.gz.sig"] {
            assert!(!named_like_archive(no), "{no}");
        }
    }

    #[test]
    fn lexical_normalisation() {
        assert_eq!(
            lexically_normal(Path::new("/a/b/../c/./d")),
            Path::new("/a/c/d")
        );
    }
}
