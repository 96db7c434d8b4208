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

/// A file's bytes, and the index (in `below`) of the layer that gave them.
type Found = Option<(Vec<u8>, usize)>;

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
    let [passwd, group] = read_from_stack(below, lower, cache, ["etc/passwd", "etc/group"])?;
    let text = |f: &Found| {
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

/// The bytes of each regular file of `paths` as the stack `below` shows
/// it, and the index of the layer they come from; `None` for a path the
/// stack lacks. Each blob is read once for all the paths it gives (a base
/// layer usually gives both files); a hard link is followed once, within
/// its layer.
fn read_from_stack<const N: usize>(
    below: &[LayerRecord],
    lower: &LowerView,
    cache: &Cache,
    paths: [&str; N],
) -> Result<[Found; N], Error> {
    let mut out: [Found; N] = std::array::from_fn(|_| None);
    // (wanted path, index in `paths`) by the layer that gives it.
    let mut by_layer: std::collections::BTreeMap<usize, Vec<(ImagePath, usize)>> =
        std::collections::BTreeMap::new();
    for (n, p) in paths.iter().enumerate() {
        let Some(path) = ImagePath::parse_abs(&format!("/{p}")) else {
            continue;
        };
        if !matches!(
            lower.kind(&path),
            Some(EntryKind::File | EntryKind::Hardlink)
        ) {
            continue;
        }
        // The union shows it, so the topmost layer that lists it gave it.
        if let Some(i) = below.iter().rposition(|r| {
            r.listing
                .entries
                .iter()
                .any(|e| e.path == path && matches!(e.kind, EntryKind::File | EntryKind::Hardlink))
        }) {
            by_layer.entry(i).or_default().push((path, n));
        }
    }
    for (i, mut wanted) in by_layer {
        // A hard link names a file of the same layer: a second pass reads it.
        for _ in 0..2 {
            if wanted.is_empty() {
                break;
            }
            wanted = read_layer(&below[i], cache, &wanted, |n, bytes| {
                out[n] = Some((bytes, i))
            })?;
        }
    }
    Ok(out)
}

/// One pass over `record`'s blob: `found(n, bytes)` for each regular file
/// of `wanted`; returns the hard links met instead, as their targets.
fn read_layer(
    record: &LayerRecord,
    cache: &Cache,
    wanted: &[(ImagePath, usize)],
    mut found: impl FnMut(usize, Vec<u8>),
) -> Result<Vec<(ImagePath, usize)>, Error> {
    let blob = cache.blob_path(&record.desc.blob);
    let file = std::fs::File::open(&blob).map_err(|source| Error::Io {
        path: blob.clone(),
        source,
    })?;
    let layer_err = |source| Error::Layer {
        layer: "reading /etc/passwd and /etc/group of a layer below".to_owned(),
        source,
    };
    let mut reader = strata_layer::read::BlobReader::new(std::io::BufReader::new(file), &blob)
        .map_err(layer_err)?;
    let mut left: Vec<(ImagePath, usize)> = wanted.to_vec();
    let mut links = Vec::new();
    while !left.is_empty() {
        let Some(e) = reader.next_entry().map_err(layer_err)? else {
            break;
        };
        let Some(at) = left.iter().position(|(p, _)| *p == e.path) else {
            continue;
        };
        let (_, n) = left.swap_remove(at);
        match (e.kind, e.link) {
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
                found(n, bytes);
            }
            (EntryKind::Hardlink, Some(target)) => links.push((ImagePath(target), n)),
            _ => {}
        }
    }
    Ok(links)
}
