//! The union view as one layer's entries: every path the model shows, with
//! its metadata, and the bytes of every file spooled out of the layer blob
//! that carried them.
//!
//! Why a spool: a layer's tar is written sorted by path, while the bytes sit
//! in several compressed blobs that can only be read front to back. Each blob
//! is read once and only the files that survive in the union are copied out,
//! to a temporary directory; the layer is then written from there. Hard
//! links (paths sharing one inode in the model) stay hard links.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use strata_layer::digest::HashingWriter;
use strata_layer::read::BlobReader;
use strata_layer::{Digest, EntryKind, HostEntry, ImagePath, Source};

use crate::Error;
use crate::apply::io_err;
use crate::model::{Inode, Kind, Model, Node};

/// The entries of one layer that holds the union `model` of the layer blobs
/// `blobs` (bottom first), file contents spooled into `spool`.
pub fn union_entries(
    model: &Model,
    blobs: &[PathBuf],
    spool: &Path,
) -> Result<Vec<HostEntry>, Error> {
    // Which file entries of which layer carry bytes the union still shows.
    let mut needed: BTreeMap<usize, BTreeSet<&ImagePath>> = BTreeMap::new();
    let mut paths_of: BTreeMap<&Inode, usize> = BTreeMap::new();
    for node in model.nodes().values() {
        if let Kind::File { inode, .. } = &node.kind {
            *paths_of.entry(inode).or_default() += 1;
            if let Inode::Layer { layer, path } = inode {
                needed.entry(*layer).or_default().insert(path);
            }
        }
    }
    let mut spooled: BTreeMap<(usize, ImagePath), (PathBuf, Digest)> = BTreeMap::new();
    for (&layer, paths) in &needed {
        let blob = blobs.get(layer).ok_or_else(|| Error::BadLayer {
            blob: spool.to_path_buf(),
            path: "/".to_owned(),
            reason: format!(
                "the model has layer {layer} but only {} blobs were given",
                blobs.len()
            ),
        })?;
        let file = File::open(blob).map_err(|e| io_err(blob, e))?;
        let mut reader = BlobReader::new(BufReader::with_capacity(1 << 16, file), blob)?;
        while let Some(e) = reader.next_entry()? {
            if e.kind != EntryKind::File || !paths.contains(&e.path) {
                continue;
            }
            // A path twice in one layer: the later entry wins, as in the model.
            let key = (layer, e.path.clone());
            let name = match spooled.get(&key) {
                Some((p, _)) => p.clone(),
                None => spool.join(format!("{layer}-{}", spooled.len())),
            };
            let out = File::create(&name).map_err(|err| io_err(&name, err))?;
            let mut w = HashingWriter::new(BufWriter::new(out));
            let copied = io::copy(&mut reader.data(), &mut w);
            copied.map_err(|err| reader.data_error(err))?;
            let (digest, n, buffered) = w.finish();
            buffered
                .into_inner()
                .map_err(|err| io_err(&name, err.into_error()))?
                .flush()
                .map_err(|err| io_err(&name, err))?;
            if n != e.size {
                return Err(Error::BadLayer {
                    blob: blob.clone(),
                    path: e.path.display(),
                    reason: "the blob ends inside this file".to_owned(),
                });
            }
            spooled.insert(key, (name, digest));
        }
        reader.finish()?;
    }

    let mut groups: BTreeMap<&Inode, u64> = BTreeMap::new();
    let mut entries = Vec::with_capacity(model.nodes().len());
    for (path, node) in model.nodes() {
        let source = match &node.kind {
            Kind::Dir => Source::Dir { opaque: false },
            Kind::File {
                digest,
                size,
                inode,
            } => {
                let Inode::Layer {
                    layer,
                    path: carrier,
                } = inode
                else {
                    return Err(not_from_layers(path));
                };
                let Some((spooled_at, found)) = spooled.get(&(*layer, carrier.clone())) else {
                    return Err(not_from_layers(path));
                };
                if found != digest {
                    return Err(Error::BadLayer {
                        blob: blobs[*layer].clone(),
                        path: carrier.display(),
                        reason: format!(
                            "the file's bytes changed since the blob was listed ({found}, listed {digest})"
                        ),
                    });
                }
                let group = if paths_of.get(inode).copied().unwrap_or(0) > 1 {
                    let next = groups.len() as u64 + 1;
                    Some(*groups.entry(inode).or_insert(next))
                } else {
                    None
                };
                Source::File {
                    path: spooled_at.clone(),
                    size: *size,
                    group,
                }
            }
            Kind::Symlink(t) => Source::Symlink(t.clone()),
            Kind::Char(a, b) => Source::Char(*a, *b),
            Kind::Block(a, b) => Source::Block(*a, *b),
            Kind::Fifo => Source::Fifo,
        };
        entries.push(entry(path, node, source));
    }
    Ok(entries)
}

/// A host entry with `node`'s metadata.
pub(crate) fn entry(path: &ImagePath, node: &Node, source: Source) -> HostEntry {
    HostEntry {
        path: path.clone(),
        source,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        xattrs: node.xattrs.clone(),
    }
}

fn not_from_layers(path: &ImagePath) -> Error {
    Error::BadLayer {
        blob: PathBuf::from("layer blobs"),
        path: path.display(),
        reason: "no layer carries this file's bytes".to_owned(),
    }
}
