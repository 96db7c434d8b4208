//! Where an input tarball's tar stream is read from while its layer is
//! written: the input itself when it is a plain tar, else a temporary spool
//! file of the decompressed stream, written sparse and checked against the
//! free space of `$TMPDIR` as it grows.
//!
//! Why avoid the spool for a plain tar: it already is what the spool would
//! be, so copying it doubled the disk a large rootfs needs for nothing; the
//! planner's open handle is read with `pread`, so layers sharing the input
//! do not move each other's offset. Why sparse: tar pads every entry with
//! zeros, and a tarball that expands to gigabytes of zeros (a few KiB
//! compressed) would otherwise fill `$TMPDIR`; runs of zeros become holes.
//! Why check the free space: a full `$TMPDIR` fails every other program
//! using it too, and the bare `No space left on device` did not say which
//! disk or how much was needed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The free space is looked at each time this much more was written.
const CHECK_EVERY: u64 = 8 << 20;

/// Free bytes for an unprivileged writer on the filesystem of `f`.
pub(crate) fn free_bytes(f: &File) -> io::Result<u64> {
    let s = rustix::fs::fstatvfs(f)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// A lower bound of the space that decompressing `input` (a gzip, xz, zstd
/// or bzip2 file) into a sparse spool takes: its own size. Not the size the
/// data expands to (gzip's trailer records it): runs of zeros expand a lot
/// and take no space, while the rest rarely compresses below its size.
pub(crate) fn expected_size(input: &File) -> u64 {
    input.metadata().map_or(0, |m| m.len())
}

/// Why copying into the spool stopped.
pub(crate) enum Copy {
    Read(io::Error),
    Write(io::Error),
    /// More than the limit came out.
    TooLarge,
    /// The spool's filesystem has `free` bytes left, less than the next
    /// `need` (the whole archive, or the next step of it) takes.
    NoSpace {
        need: u64,
        free: u64,
    },
}

/// Copies `r` into `spool`, `max` bytes at most, leaving holes for runs of
/// zeros; returns the number of bytes. Fails with [`Copy::NoSpace`] before
/// the filesystem fills, with `expected` (a lower bound of the total) as the
/// need where it is known.
pub(crate) fn fill(r: &mut dyn Read, spool: &File, max: u64, expected: u64) -> Result<u64, Copy> {
    let free = free_bytes(spool).map_err(Copy::Write)?;
    if expected > free {
        return Err(Copy::NoSpace {
            need: expected,
            free,
        });
    }
    let mut w = io::BufWriter::with_capacity(1 << 16, spool);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    // Bytes written, not holes: what takes space.
    let mut written = 0u64;
    let mut next_check = CHECK_EVERY;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        total += n as u64;
        if total > max {
            return Err(Copy::TooLarge);
        }
        let chunk = &buf[..n];
        if chunk.iter().all(|&b| b == 0) {
            // `BufWriter`'s seek writes out what it holds first.
            w.seek(SeekFrom::Current(n as i64)).map_err(Copy::Write)?;
            continue;
        }
        if written >= next_check {
            let free = free_bytes(spool).map_err(Copy::Write)?;
            if free < CHECK_EVERY {
                return Err(Copy::NoSpace {
                    need: written.max(expected) + CHECK_EVERY,
                    free,
                });
            }
            next_check = written + CHECK_EVERY;
        }
        written += n as u64;
        w.write_all(chunk)
            .map_err(|e| no_space(e, written.max(expected), spool))?;
    }
    w.flush()
        .map_err(|e| no_space(e, written.max(expected), spool))?;
    // A trailing run of zeros is a hole the file must still cover.
    spool.set_len(total).map_err(Copy::Write)?;
    Ok(total)
}

/// A write error, as [`Copy::NoSpace`] when the disk is full.
fn no_space(e: io::Error, need: u64, spool: &File) -> Copy {
    if e.raw_os_error() == Some(28) {
        Copy::NoSpace {
            need,
            free: free_bytes(spool).unwrap_or(0),
        }
    } else {
        Copy::Write(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn runs_of_zeros_become_holes() {
        let spool = tempfile::tempfile().unwrap();
        let mut data = vec![0u8; 64 << 20];
        data[5] = 1;
        let n = fill(&mut &data[..], &spool, u64::MAX, 0).ok().unwrap();
        assert_eq!(n, 64 << 20);
        let meta = spool.metadata().unwrap();
        assert_eq!(meta.len(), 64 << 20);
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        let mut back = Vec::new();
        (&spool).seek(SeekFrom::Start(0)).unwrap();
        (&spool).read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn a_need_beyond_the_free_space_fails_before_writing() {
        let spool = tempfile::tempfile().unwrap();
        match fill(&mut &b"abc"[..], &spool, u64::MAX, u64::MAX / 2) {
            Err(Copy::NoSpace { need, free }) => {
                assert_eq!(need, u64::MAX / 2);
                assert!(free < need);
            }
            _ => panic!("must refuse"),
        }
        assert_eq!(spool.metadata().unwrap().len(), 0);
    }
}
