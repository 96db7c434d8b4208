//! [`list_blob`]: reading a layer blob back into its [`Listing`] (the
//! listing types and their text form are `strata_oci`'s).

use std::io::Read;
use std::path::PathBuf;

use crate::digest::HashingWriter;
use crate::read::BlobReader;
use crate::{EntryKind, Error, Listing};

/// The name used in errors of [`list_blob`], which reads no named file.
const BLOB: &str = "layer blob";

/// Reads a layer blob back into its listing, hashing every file's content.
///
/// The compression is told by magic bytes (gzip, zstd or plain tar; xz and
/// bzip2 are read too). For a blob written by [`build`](crate::build) this is
/// exactly the listing `build` returned. Other layers are read leniently
/// (`./` prefixes dropped, the root skipped) but a name with `..` is refused.
/// Memory does not grow with the blob.
pub fn list_blob(r: impl Read) -> Result<Listing, Error> {
    list_blob_with_mtimes(r).map(|(listing, _)| listing)
}

/// [`list_blob`], and each entry's mtime (seconds since the epoch) in the
/// listing's order: what a listing leaves out because every strata layer
/// has one mtime, and what `strata diff` shows of other tools' layers.
pub fn list_blob_with_mtimes(r: impl Read) -> Result<(Listing, Vec<u64>), Error> {
    let mut reader = BlobReader::new(r, BLOB)?;
    let mut entries = Vec::new();
    let mut mtimes = Vec::new();
    while let Some(mut e) = reader.next_entry()? {
        mtimes.push(reader.mtime());
        if e.kind == EntryKind::File {
            let mut h = HashingWriter::new(std::io::sink());
            let copied = std::io::copy(&mut reader.data(), &mut h);
            copied.map_err(|err| reader.data_error(err))?;
            let (digest, n, _) = h.finish();
            if n != e.size {
                return Err(Error::BadArchive {
                    archive: PathBuf::from(BLOB),
                    reason: "the archive is truncated".to_owned(),
                });
            }
            e.digest = Some(digest);
        }
        entries.push(e);
    }
    reader.finish()?;
    Ok((Listing { entries }, mtimes))
}
