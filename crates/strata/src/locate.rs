//! Where a layer's build error comes from: the spec operation (`add`, `copy`,
//! `rootfs`, ...) whose input or path failed, as `SPEC:LINE:COL`, so that a
//! refused tarball is reported with the tarball, the entry and the place in
//! the spec that added it; and the path a failed blob write went to.

use std::path::Path;

use strata_layer::{Error as LayerError, JobOp};
use strata_plan::{LayerNode, Plan};

/// `image/layer (SPEC:LINE:COL)` for an error of building `layer`, the place
/// being that of the operation the error is about (the layer's name when no
/// single operation is).
pub(crate) fn layer_at(plan: &Plan, layer: &LayerNode, err: &LayerError) -> String {
    let name = layer.qualified_name();
    let span = op_of(layer, err)
        .and_then(|op| layer.op_spans.get(op))
        .copied()
        .unwrap_or(layer.span);
    let (line, col) = strata_spec::Diagnostics::line_col(&plan.spec_source, span.offset());
    format!("{name} ({}:{line}:{col})", plan.spec_name)
}

/// The index of the operation `err` is about.
fn op_of(layer: &LayerNode, err: &LayerError) -> Option<usize> {
    let path: &Path = match err {
        LayerError::DeleteMissing { op, .. } | LayerError::BadPath { op, .. } => return Some(*op),
        LayerError::BadArchiveEntry { archive, .. }
        | LayerError::BadArchive { archive, .. }
        | LayerError::Limit { archive, .. }
        | LayerError::Spool { archive, .. }
        | LayerError::SpoolFull { archive, .. } => archive,
        LayerError::Io { path, .. }
        | LayerError::Host { path, .. }
        | LayerError::InputChanged { path, .. } => path,
        _ => return None,
    };
    let strata_plan::Build::Ops(job) = &layer.build else {
        return None;
    };
    job.ops.iter().position(|op| match op {
        JobOp::Unpack { archive, .. } => archive.path() == path,
        // A file below a copied directory names the file, at its physical
        // path (see `HostInput::real`).
        JobOp::Copy { src, .. } => path.starts_with(src.path()) || path.starts_with(src.real()),
        _ => false,
    })
}

/// A blob write that failed on the host (the layer writer only knows it was
/// writing) as an error on the directory it went to: `CACHE/tmp: No space
/// left on device (os error 28)`, without the random name of the temporary
/// file that the cache's writer adds to it.
pub(crate) fn write_error(err: LayerError, blob_dir: &Path) -> LayerError {
    let LayerError::Write(source) = err else {
        return err;
    };
    if let Some(code) = source.raw_os_error() {
        return LayerError::Io {
            path: blob_dir.to_path_buf(),
            source: std::io::Error::from_raw_os_error(code),
        };
    }
    let text = source.to_string();
    match text.find(" at path \"") {
        Some(i) => LayerError::Io {
            path: blob_dir.to_path_buf(),
            source: std::io::Error::new(source.kind(), &text[..i]),
        },
        None => LayerError::Write(source),
    }
}
