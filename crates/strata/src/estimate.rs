//! How many uncompressed tar bytes a layer about to be built will write,
//! estimated from its inputs, for the progress display's total and ETA.
//! Cheap against the build itself: file sizes from `stat`, a directory's
//! from a walk of its metadata (no content is read), a plain tarball's own
//! size, a single-member gzip's from its trailer (`ISIZE`). What cannot be
//! told cheaply (xz, zstd, bzip2, a gzip of 4 GiB or more, `run` and
//! `from-dir` layers, layers of an external base) is `None`, and the
//! display then shows no total for that layer rather than a wrong one.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use strata_layer::{HostInput, JobOp};
use strata_plan::{Build, LayerNode};

/// A tar header per entry, besides its data rounded up to 512 bytes.
const HEADER: u64 = 512;

/// Past this many entries a directory walk stops and says "unknown".
const MAX_WALK: u64 = 1_000_000;

/// The estimated uncompressed size of `layer`'s tar, if it can be told.
pub(crate) fn layer_bytes(layer: &LayerNode) -> Option<u64> {
    let Build::Ops(job) = &layer.build else {
        return None;
    };
    let mut total = 0u64;
    for op in &job.ops {
        total += match op {
            JobOp::Copy { src, .. } => input_bytes(src)?,
            JobOp::Unpack { archive, .. } => archive_bytes(archive)?,
            JobOp::File { content, .. } => HEADER + padded(content.len() as u64),
            _ => HEADER,
        };
    }
    Some(total)
}

fn padded(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

fn input_bytes(input: &HostInput) -> Option<u64> {
    match input.file() {
        Some(f) => Some(HEADER + padded(f.metadata().ok()?.len())),
        None => {
            let mut entries = 0;
            walk(input.real(), &mut entries)
        }
    }
}

fn walk(dir: &Path, entries: &mut u64) -> Option<u64> {
    let mut total = 0;
    for e in fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        *entries += 1;
        if *entries > MAX_WALK {
            return None;
        }
        let m = e.metadata().ok()?;
        total += HEADER;
        if m.is_dir() {
            total += walk(&e.path(), entries)?;
        } else if m.is_file() {
            total += padded(m.len());
        }
    }
    Some(total)
}

fn archive_bytes(archive: &HostInput) -> Option<u64> {
    let f = archive.file()?;
    let len = f.metadata().ok()?.len();
    let mut r = archive.reader()?;
    let mut head = [0u8; 512];
    r.read_exact(&mut head).ok()?;
    if head.get(257..262) == Some(b"ustar") {
        return Some(len);
    }
    if head.starts_with(&[0x1f, 0x8b]) && len >= 18 {
        // ISIZE: the uncompressed size modulo 2^32, of the last member only;
        // smaller than the compressed size means it wrapped or lies.
        r.seek(SeekFrom::Start(len - 4)).ok()?;
        let mut isize = [0u8; 4];
        r.read_exact(&mut isize).ok()?;
        let n = u64::from(u32::from_le_bytes(isize));
        return (n >= len).then_some(n);
    }
    None
}
