//! Reading a layer blob entry by entry, with the data of each file: the
//! streaming reader behind [`list_blob`](crate::list_blob) and behind the
//! union crate's `rootfs` applier and `squash`.
//!
//! A blob is read once, front to back, whatever its compression (told by its
//! magic bytes); memory does not grow with its size. Names are normalised as
//! [`ImagePath`]s (a name with `..` is refused, `./` prefixes and the root
//! entry are dropped), whiteouts and opaque markers are recognised, and PAX
//! and GNU extensions are applied, so a caller sees one [`Entry`] per member
//! in tar order.

use std::io::{self, Read};
use std::path::PathBuf;

use crate::ingest::{self, Format, NOT_A_TAR};
use crate::ustar::{self, ReadError};
use crate::{Entry, EntryKind};
use crate::{Error, ImagePath};
use strata_oci::whiteout::{self, Marker};

struct Stream<R>(R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> ustar::Skip for Stream<R> {}

/// A layer blob read one entry at a time.
pub struct BlobReader<'r> {
    reader: ustar::Reader<Stream<Box<dyn Read + 'r>>>,
    format: Format,
    /// What errors call the blob (its path, or "layer blob").
    name: PathBuf,
    /// The data size of the entry last returned, when it is a regular file.
    pending: u64,
    /// The mtime of the entry last returned.
    mtime: u64,
}

impl<'r> BlobReader<'r> {
    /// Starts reading the blob `r`; `name` is what errors call it.
    pub fn new(r: impl Read + 'r, name: impl Into<PathBuf>) -> Result<BlobReader<'r>, Error> {
        let name = name.into();
        let bad = |reason: String| Error::BadArchive {
            archive: name.clone(),
            reason,
        };
        let (format, r) = ingest::sniff(r).map_err(|e| bad(e.to_string()))?;
        let format = format.ok_or_else(|| bad(NOT_A_TAR.to_owned()))?;
        let decoded = ingest::decoder(format, r).map_err(|e| bad(e.to_string()))?;
        Ok(BlobReader {
            reader: ustar::Reader::new(Stream(decoded)),
            format,
            name,
            pending: 0,
            mtime: 0,
        })
    }

    /// The error for bytes that could not be read or decompressed.
    ///
    /// An error of the disk being written while the data is copied (a full
    /// `$TMPDIR` under a `run` step's lower layers, say) is said to be that,
    /// not a corrupt blob: reading a blob never fails for a full disk.
    pub fn data_error(&self, e: io::Error) -> Error {
        data_error(&self.name, self.format, e)
    }

    /// The next entry, in tar order; `None` at the end of the archive. A
    /// regular file's `size` is set and its `digest` is not (read its bytes
    /// with [`BlobReader::data`]); a whiteout or opaque marker names the path
    /// it hides. Whatever was not read of the previous entry's data is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        loop {
            self.pending = 0;
            let raw = match self.reader.next_entry() {
                Ok(Some(raw)) => raw,
                Ok(None) => return Ok(None),
                Err(ReadError::Io(e)) => return Err(self.data_error(e)),
                Err(ReadError::Format(reason)) => {
                    return Err(Error::BadArchive {
                        archive: self.name.clone(),
                        reason,
                    });
                }
            };
            if let Some(e) = self.convert(&raw)? {
                if e.kind == EntryKind::File {
                    self.pending = raw.size;
                }
                self.mtime = raw.mtime;
                return Ok(Some(e));
            }
        }
    }

    /// The modification time (seconds since the epoch) of the entry last
    /// returned by [`BlobReader::next_entry`]. Not part of [`Entry`]: a
    /// listing describes content, and every strata layer has one mtime.
    pub fn mtime(&self) -> u64 {
        self.mtime
    }

    /// The bytes of the regular file last returned by
    /// [`BlobReader::next_entry`] (nothing for any other entry). A reader that
    /// yields fewer bytes than the entry's size means a truncated blob.
    pub fn data(&mut self) -> impl Read + '_ {
        let size = std::mem::take(&mut self.pending);
        self.reader.data(size)
    }

    /// Reads whatever follows the end-of-archive marker, so that damaged
    /// compressed data after the tar's end is noticed too.
    pub fn finish(mut self) -> Result<(), Error> {
        self.reader
            .drain()
            .map(|_| ())
            .map_err(|e| self.data_error(e))
    }

    /// One header as a listing entry; `None` for the root directory.
    fn convert(&self, raw: &ustar::RawEntry) -> Result<Option<Entry>, Error> {
        let err = |reason: String| Error::BadArchiveEntry {
            archive: self.name.clone(),
            entry: String::from_utf8_lossy(&raw.name).into_owned(),
            reason,
        };
        let path = ImagePath::normalise(&raw.name).map_err(|r| err(r.to_owned()))?;
        if path.is_root() {
            return Ok(None);
        }
        let name = path.file_name().unwrap_or_default();
        let parent = path.parent().unwrap_or_else(ImagePath::root);
        let marker = match whiteout::classify(name).map_err(|r| err(r.to_owned()))? {
            Marker::Opaque => Some((parent, EntryKind::Opaque)),
            Marker::Whiteout(deleted) => Some((parent.join(deleted), EntryKind::Whiteout)),
            Marker::Plain => None,
        };
        if let Some((path, kind)) = marker {
            return Ok(Some(Entry::bare(path, kind)));
        }
        let id =
            |n: u64| u32::try_from(n).map_err(|_| err(format!("id {n} does not fit in 32 bits")));
        let device =
            |n: u64| u32::try_from(n).map_err(|_| err(format!("device number {n} is too large")));
        let mut e = Entry {
            path,
            kind: EntryKind::File,
            mode: (raw.mode & 0o7777) as u32,
            uid: id(raw.uid)?,
            gid: id(raw.gid)?,
            size: 0,
            digest: None,
            link: None,
            device: None,
            xattrs: raw.xattrs().map_err(err)?,
        };
        match raw.typeflag {
            ustar::kind::FILE | ustar::kind::OLD_FILE | ustar::kind::CONTIGUOUS
                if raw.name.ends_with(b"/") && raw.size == 0 =>
            {
                e.kind = EntryKind::Dir;
            }
            ustar::kind::FILE | ustar::kind::OLD_FILE | ustar::kind::CONTIGUOUS => {
                e.size = raw.size;
            }
            ustar::kind::HARDLINK => {
                e.kind = EntryKind::Hardlink;
                let target = ImagePath::normalise(&raw.link)
                    .map_err(|r| err(format!("hardlink target: {r}")))?;
                e.link = Some(target.0);
            }
            ustar::kind::SYMLINK => {
                e.kind = EntryKind::Symlink;
                e.link = Some(raw.link.clone());
            }
            ustar::kind::CHAR | ustar::kind::BLOCK => {
                e.kind = if raw.typeflag == ustar::kind::CHAR {
                    EntryKind::Char
                } else {
                    EntryKind::Block
                };
                e.device = Some((device(raw.device.0)?, device(raw.device.1)?));
            }
            ustar::kind::DIR => e.kind = EntryKind::Dir,
            ustar::kind::FIFO => e.kind = EntryKind::Fifo,
            t => return Err(err(format!("unsupported entry type {:?}", char::from(t)))),
        }
        Ok(Some(e))
    }
}

/// See [`BlobReader::data_error`].
fn data_error(name: &std::path::Path, format: Format, e: io::Error) -> Error {
    // ENOSPC, EDQUOT, EROFS: the writing side failed.
    if matches!(e.raw_os_error(), Some(28 | 122 | 30)) {
        return Error::DiskFull {
            archive: name.to_owned(),
            source: e,
        };
    }
    Error::BadArchive {
        archive: name.to_owned(),
        reason: format!("corrupt or truncated {} data: {e}", format.name()),
    }
}

#[cfg(test)]
mod data_error_tests {
    use super::*;

    /// Issue 16, item 7: a full disk while unpacking is no corrupt blob.
    #[test]
    fn a_full_disk_is_not_a_corrupt_blob() {
        let name = std::path::Path::new("CACHE/blobs/sha256/ab");
        let full = data_error(name, Format::Gzip, io::Error::from_raw_os_error(28));
        assert!(matches!(full, Error::DiskFull { .. }), "{full:?}");
        let msg = full.to_string();
        assert!(msg.contains("the disk it is written to is full"), "{msg}");
        assert!(!msg.contains("corrupt"), "{msg}");
        let bad = data_error(name, Format::Gzip, io::Error::other("invalid gzip header"));
        assert!(
            bad.to_string().contains("corrupt or truncated gzip data"),
            "{bad}"
        );
    }
}
