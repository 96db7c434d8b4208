//! The owners a layer gives by name (`owner="app:app"`), resolved when it
//! is built against the image's own `/etc/passwd` and `/etc/group` as the
//! layers below give them: the topmost layer holding each file wins, and a
//! whiteout (or an opaque `/etc`) above it removes it. The files are read
//! from those layers' blobs in the cache (at most [`MAX_FILE`] bytes each).

use std::io::Read;

use strata_cache::{Cache, LayerRecord};
use strata_layer::{EntryKind, ImagePath, LayerJob, LowerView};
use strata_plan::{LayerNode, Plan};
use strata_spec::SpecDiagnostic;

use crate::Error;

/// Larger than any real passwd or group file; bounds what is held.
const MAX_FILE: u64 = 16 << 20;

/// `job` with its owners by name replaced by the ids the layers below give
/// them. `below` are the records of every layer below `layer`, bottom
/// first (as [`Plan::below`] lists them), `lower` their union view.
pub(crate) fn resolve(
    plan: &Plan,
    layer: &LayerNode,
    job: &LayerJob,
    below: &[LayerRecord],
    lower: &LowerView,
    cache: &Cache,
) -> Result<LayerJob, Error> {
    let ids = plan.below(layer.id);
    let name_of = |i: usize| {
        ids.get(i)
            .map_or_else(|| "?".to_owned(), |id| plan.layer(*id).qualified_name())
    };
    let passwd = read_from_stack(below, lower, cache, "etc/passwd")?;
    let group = read_from_stack(below, lower, cache, "etc/group")?;
    let text = |f: &Option<(Vec<u8>, usize)>| {
        f.as_ref()
            .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    strata_plan::resolve_job(job, &layer.owner_names, &text(&passwd), &text(&group)).map_err(|u| {
        let named = &layer.owner_names[u.index];
        let found = if u.file == "/etc/passwd" { &passwd } else { &group };
        let whence = match found {
            Some((_, i)) => format!("the image's {} (from layer {})", u.file, name_of(*i)),
            None => format!("the layers below, which have no {}", u.file),
        };
        Error::Build(Box::new(plan.diagnostic(
            SpecDiagnostic::new(
                format!(
                    "layer {}: {} of owner `{}` is not in {whence}",
                    layer.qualified_name(),
                    u.what,
                    named.owner
                ),
                named.span,
                "no such name",
            )
            .with_help(
                "names are resolved against the image's own /etc/passwd and /etc/group, as the layers below give them; add the user in a layer below, or give numeric ids",
            ),
        )))
    })
}

/// The bytes of the regular file `path` as the stack `below` shows it, and
/// the index of the layer they come from; `None` when the stack lacks it.
fn read_from_stack(
    below: &[LayerRecord],
    lower: &LowerView,
    cache: &Cache,
    path: &str,
) -> Result<Option<(Vec<u8>, usize)>, Error> {
    let Some(path) = ImagePath::parse_abs(&format!("/{path}")) else {
        return Ok(None);
    };
    if !matches!(
        lower.kind(&path),
        Some(EntryKind::File | EntryKind::Hardlink)
    ) {
        return Ok(None);
    }
    // The union shows it, so the topmost layer that lists it gave it.
    let Some(i) = below.iter().rposition(|r| {
        r.listing
            .entries
            .iter()
            .any(|e| e.path == path && matches!(e.kind, EntryKind::File | EntryKind::Hardlink))
    }) else {
        return Ok(None);
    };
    let record = &below[i];
    let mut want = path;
    // A hard link names a file of the same layer; follow one.
    'read: for _ in 0..2 {
        let blob = cache.blob_path(&record.desc.blob);
        let file = std::fs::File::open(&blob).map_err(|source| Error::Io {
            path: blob.clone(),
            source,
        })?;
        let layer_err = |source| Error::Layer {
            layer: format!("reading {} of a layer below", want.display()),
            source,
        };
        let mut reader = strata_layer::read::BlobReader::new(std::io::BufReader::new(file), &blob)
            .map_err(layer_err)?;
        while let Some(e) = reader.next_entry().map_err(layer_err)? {
            if e.path != want {
                continue;
            }
            match (e.kind, &e.link) {
                (EntryKind::File, _) => {
                    let mut bytes = Vec::new();
                    reader
                        .data()
                        .take(MAX_FILE)
                        .read_to_end(&mut bytes)
                        .map_err(|source| Error::Io {
                            path: blob.clone(),
                            source,
                        })?;
                    return Ok(Some((bytes, i)));
                }
                (EntryKind::Hardlink, Some(target)) => {
                    want = ImagePath(target.clone());
                    continue 'read;
                }
                _ => return Ok(None),
            }
        }
        return Ok(None);
    }
    Ok(None)
}
