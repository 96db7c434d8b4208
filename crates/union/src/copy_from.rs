//! `copy "/SRC" from="IMAGE" to="/DEST"`: paths of another image of the spec
//! (a multi-stage build's build image) as one layer's entries.
//!
//! The source is read as the union of its layers ([`Model`]), never from a
//! host directory: `src` is resolved inside that union (symlinks followed
//! within the image, never out of it, as Docker resolves `COPY --from`), the
//! subtree below it is re-rooted at `to`, and the bytes of its files are
//! spooled out of the blobs that carry them (`squash::union_entries`). So a
//! copy needs no unpacked source and no privileges, and what it writes is
//! exactly what the image shows.
//!
//! Metadata, as Docker's `COPY --from` gives it: modes and xattrs as the
//! image has them, owners `0:0` unless `owner=`, `mode=` on every regular
//! file. A destination directory the layers below have keeps what they give
//! it, and so do parents (`strata_layer::build_entries_on`); a missing one is
//! 0755, owned by `owner` (as BuildKit's `COPY --chown` makes parents).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use strata_layer::{
    BuildOutput, CopyFromStep, HostEntry, ImagePath, LowerView, Progress, Source, UnionJob,
};

use crate::Error;
use crate::apply::io_err;
use crate::job::Below;
use crate::model::{Kind, Model, Node};

/// How many symlinks resolving one `src` may pass through, as the kernel's
/// `MAXSYMLINKS`.
const MAX_HOPS: usize = 40;

/// Builds a layer of `steps` on `below`; `sources[i]` are the layers of the
/// image step `i` copies from, bottom first.
pub(crate) fn build(
    job: &UnionJob,
    steps: &[CopyFromStep],
    below: &[Below<'_>],
    sources: &[Vec<Below<'_>>],
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<BuildOutput, Error> {
    let mut lower = LowerView::new();
    for b in below {
        lower.apply(b.listing);
    }
    let spool = tempfile::tempdir().map_err(|e| io_err(&std::env::temp_dir(), e))?;
    // Its physical path: the spooled files are opened without following symlinks.
    let spooled = fs::canonicalize(spool.path()).map_err(|e| io_err(spool.path(), e))?;
    let mut merged: BTreeMap<ImagePath, HostEntry> = BTreeMap::new();
    for (n, step) in steps.iter().enumerate() {
        let source = sources.get(n).map(Vec::as_slice).unwrap_or_default();
        let dir = spooled.join(n.to_string());
        fs::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        for e in step_entries(step, source, &lower, &dir)? {
            put(&mut merged, e);
        }
    }
    let entries: Vec<HostEntry> = merged.into_values().collect();
    // The spool must live until the layer is written.
    let out = strata_layer::build_entries_on(
        &entries,
        &lower,
        job.epoch,
        job.compression,
        out,
        progress,
    )?;
    drop(spool);
    Ok(out)
}

/// The entries one step puts in the layer: the copied tree and the parents
/// of `to` that the layers below lack.
fn step_entries(
    step: &CopyFromStep,
    source: &[Below<'_>],
    lower: &LowerView,
    spool: &Path,
) -> Result<Vec<HostEntry>, Error> {
    let model = Model::of(source.iter().map(|b| b.listing))?;
    let fail = |reason: String| Error::CopyFrom {
        image: step.image.clone(),
        src: step.src.display(),
        reason,
    };
    let at = resolve(&model, &step.src).map_err(fail)?;
    let owner = |node: &mut Node| {
        let (uid, gid) = step.owner.map_or((0, 0), |o| (o.uid, o.gid));
        node.uid = uid;
        node.gid = gid;
        if let (Some(mode), Kind::File { .. }) = (step.mode, &node.kind) {
            node.mode = mode & 0o7777;
        }
    };
    let mut picked: BTreeMap<ImagePath, Node> = BTreeMap::new();
    if model.is_dir(&at) {
        // A directory's contents go into `to`, as Docker copies them; `to`
        // itself is described only when the layers below lack it.
        if !lower.is_dir(&step.to) && !step.to.is_root() {
            let mut node = model.get(&at).cloned().unwrap_or_else(implicit_dir);
            owner(&mut node);
            picked.insert(step.to.clone(), node);
        }
        let cut = if at.is_root() { 0 } else { at.0.len() + 1 };
        for (path, node) in model.below(&at) {
            let mut node = node.clone();
            owner(&mut node);
            picked.insert(step.to.join(&path.0[cut..]), node);
        }
    } else {
        let Some(node) = model.get(&at) else {
            return Err(fail("no such file or directory".to_owned()));
        };
        let dest = match (step.into_dir, step.src.file_name()) {
            (true, Some(name)) => step.to.join(name),
            _ => step.to.clone(),
        };
        if dest.is_root() {
            return Err(fail(
                "a file cannot be copied to `/`; end `to` with a directory".to_owned(),
            ));
        }
        let mut node = node.clone();
        owner(&mut node);
        picked.insert(dest, node);
    }
    // Parents the layers below lack are made, owned as the copy is.
    let first = picked.keys().next().cloned();
    if let Some(first) = first {
        for a in first.ancestors() {
            if !lower.is_dir(&a) && !picked.contains_key(&a) {
                let mut node = implicit_dir();
                owner(&mut node);
                picked.insert(a, node);
            }
        }
    }
    let sub = Model::from_nodes(picked, model.layers());
    let blobs: Vec<std::path::PathBuf> = source.iter().map(|b| b.blob.to_path_buf()).collect();
    crate::squash::union_entries(&sub, &blobs, spool)
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

/// `path` inside the union `model` with every symlink on the way followed
/// (an absolute target from the image's root, `..` never above it), as a
/// container would see it; why not, when it leads nowhere.
pub(crate) fn resolve(model: &Model, path: &ImagePath) -> Result<ImagePath, String> {
    let mut done = ImagePath::root();
    let mut rest: Vec<Vec<u8>> = path.components().map(<[u8]>::to_vec).collect();
    rest.reverse();
    let mut hops = 0;
    while let Some(c) = rest.pop() {
        let next = done.join(&c);
        match model.get(&next).map(|n| &n.kind) {
            Some(Kind::Symlink(target)) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!(
                        "more than {MAX_HOPS} symlinks to follow at {}",
                        next.display()
                    ));
                }
                if target.starts_with(b"/") {
                    done = ImagePath::root();
                }
                rest.extend(
                    target
                        .split(|&b| b == b'/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(<[u8]>::to_vec),
                );
            }
            Some(_) if rest.is_empty() || model.is_dir(&next) => done = next,
            Some(_) => return Err(format!("{} is not a directory", next.display())),
            None if next.is_root() => done = next,
            None => return Err(format!("no such file or directory ({})", next.display())),
        }
    }
    Ok(done)
}

/// Puts `e` in `merged`: a later step wins over an earlier one, as a later
/// `copy` of a Dockerfile does (a directory on a directory keeps what is
/// below it; anything else replaces what was there).
fn put(merged: &mut BTreeMap<ImagePath, HostEntry>, e: HostEntry) {
    for a in e.path.ancestors() {
        if merged
            .get(&a)
            .is_some_and(|x| !matches!(x.source, Source::Dir { .. }))
        {
            merged.remove(&a);
        }
    }
    let is_dir = matches!(e.source, Source::Dir { .. });
    let was_dir = merged
        .get(&e.path)
        .is_some_and(|x| matches!(x.source, Source::Dir { .. }));
    if !(is_dir && was_dir) {
        let doomed: Vec<ImagePath> = merged
            .range(e.path.clone()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(&e.path))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            merged.remove(&p);
        }
    }
    merged.insert(e.path.clone(), e);
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_layer::{Compression, JobOp, LayerJob, Owner};

    fn layer(ops: Vec<JobOp>) -> (strata_layer::Listing, Vec<u8>) {
        let job = LayerJob {
            ops,
            epoch: 0,
            compression: Compression::None,
            limits: Default::default(),
        };
        let mut blob = Vec::new();
        let out = strata_layer::build(&job, &LowerView::new(), &mut blob, &|_| {}).unwrap();
        (out.listing, blob)
    }

    fn p(s: &str) -> ImagePath {
        ImagePath::parse_abs(s).unwrap()
    }

    fn file(path: &str, content: &str, mode: u32) -> JobOp {
        JobOp::File {
            path: p(path),
            content: content.as_bytes().to_vec(),
            mode: Some(mode),
            owner: Some(Owner { uid: 7, gid: 8 }),
        }
    }

    /// The listing text of a copy-from layer of `steps` from one image
    /// holding `source` ops, on an image holding `lower` ops.
    fn copy(source: Vec<JobOp>, lower: Vec<JobOp>, steps: Vec<CopyFromStep>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (src_listing, src_blob) = layer(source);
        let (low_listing, low_blob) = layer(lower);
        let src_path = dir.path().join("src");
        let low_path = dir.path().join("low");
        fs::write(&src_path, &src_blob).unwrap();
        fs::write(&low_path, &low_blob).unwrap();
        let digest = strata_layer::Digest([0; 32]);
        let src = vec![Below {
            listing: &src_listing,
            blob: &src_path,
            diff_id: &digest,
        }];
        let below = [Below {
            listing: &low_listing,
            blob: &low_path,
            diff_id: &digest,
        }];
        let sources = vec![src; steps.len()];
        let job = UnionJob {
            work: strata_layer::UnionWork::CopyFrom(steps.clone()),
            epoch: 0,
            compression: Compression::None,
        };
        let mut out = Vec::new();
        match build(&job, &steps, &below, &sources, &mut out, &|_| {}) {
            Ok(built) => built.listing.text(),
            Err(e) => format!("error: {e}"),
        }
    }

    fn step(src: &str, to: &str) -> CopyFromStep {
        CopyFromStep {
            image: "build".to_owned(),
            source: [0; 32],
            src: p(src),
            to: p(to),
            into_dir: to.ends_with('/'),
            mode: None,
            owner: None,
        }
    }

    fn sha(content: &str) -> String {
        strata_layer::Digest::of(content.as_bytes()).to_string()
    }

    #[test]
    fn a_directory_s_contents_land_in_to_with_modes_kept_and_owners_root() {
        let text = copy(
            vec![
                file("/out/bin/app", "app", 0o755),
                file("/out/etc/app.conf", "conf", 0o600),
                file("/other", "no", 0o644),
            ],
            vec![JobOp::Mkdir {
                path: p("/usr"),
                mode: Some(0o700),
                owner: Some(Owner { uid: 3, gid: 3 }),
            }],
            vec![step("/out", "/usr/local")],
        );
        // /usr keeps what the layer below gives it; /usr/local is the
        // source directory's; nothing else of the source comes along.
        let want = format!(
            "/usr/ dir 0700 3:3\n/usr/local/ dir 0755 0:0\n/usr/local/bin/ dir 0755 0:0\n\
             /usr/local/bin/app file 0755 0:0 3 {}\n/usr/local/etc/ dir 0755 0:0\n\
             /usr/local/etc/app.conf file 0600 0:0 4 {}\n",
            sha("app"),
            sha("conf")
        );
        assert_eq!(text, want);
    }

    #[test]
    fn a_file_through_symlinks_goes_into_a_directory_with_owner_and_mode() {
        let mut s = step("/opt/current/bin/tool", "/usr/bin/");
        s.owner = Some(Owner { uid: 1000, gid: 50 });
        s.mode = Some(0o750);
        let text = copy(
            vec![
                file("/opt/v2/bin/tool", "tool", 0o755),
                JobOp::Symlink {
                    path: p("/opt/current"),
                    target: b"../opt/./v2".to_vec(),
                    owner: None,
                },
            ],
            vec![file("/keep", "k", 0o644)],
            vec![s],
        );
        // The name is the one written in `src`; a missing parent is the
        // copy's owner's, as BuildKit's --chown makes it.
        let want = format!(
            "/usr/ dir 0755 1000:50\n/usr/bin/ dir 0755 1000:50\n/usr/bin/tool file 0750 1000:50 4 {}\n",
            sha("tool")
        );
        assert_eq!(text, want);
    }

    #[test]
    fn what_the_image_lacks_or_loops_is_an_error_naming_the_path() {
        let missing = copy(
            vec![file("/a", "a", 0o644)],
            vec![],
            vec![step("/b/c", "/x")],
        );
        assert!(
            missing.contains("copy from image `build`: /b/c: no such file or directory (/b)"),
            "{missing}"
        );
        let looped = copy(
            vec![JobOp::Symlink {
                path: p("/l"),
                target: b"/l".to_vec(),
                owner: None,
            }],
            vec![],
            vec![step("/l", "/x")],
        );
        assert!(looped.contains("more than 40 symlinks"), "{looped}");
        let through_file = copy(
            vec![file("/a", "a", 0o644)],
            vec![],
            vec![step("/a/b", "/x")],
        );
        assert!(
            through_file.contains("/a is not a directory"),
            "{through_file}"
        );
    }

    #[test]
    fn a_later_step_wins_and_the_root_of_the_source_is_its_whole_tree() {
        let text = copy(
            vec![file("/a/f", "one", 0o644)],
            vec![],
            vec![step("/", "/dst"), step("/a/f", "/dst/a")],
        );
        // The second step's file replaces the first step's directory `a`.
        let want = format!(
            "/dst/ dir 0755 0:0\n/dst/a file 0644 0:0 3 {}\n",
            sha("one")
        );
        assert_eq!(text, want);
    }
}
