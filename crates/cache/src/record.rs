//! The on-disk form of a [`LayerRecord`]: one line of JSON with everything a
//! hit needs (diff_id, blob, size, media type, and the length and blake3 of
//! the listing), a newline, then the listing as JSON.
//!
//! Why two parts: a hit reads the head only. The listing of a layer of
//! 50,000 files is 10 MB of JSON; in one JSON object with the head, a hit
//! had to scan all of it (30 ms of a 0.2 s warm compose, measured). The
//! listing is checked against the head's length and blake3 whenever it is
//! read. Compact JSON never holds a raw newline, so the first one ends the head.

use std::fs;
use std::io::{self, BufRead, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use strata_oci::{LayerDescriptor, MediaType};

use crate::LayerRecord;

#[derive(Serialize, Deserialize)]
struct Head {
    /// The key the record was stored under. Read back, it must be the key
    /// it is found under: two record files swapped or copied over each
    /// other would otherwise give an image with another layer's blob, and
    /// every digest would check out. Records written before it was added
    /// have none, and are taken as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    diff_id: strata_oci::Digest,
    blob: strata_oci::Digest,
    size: u64,
    media_type: MediaType,
    listing_bytes: u64,
    /// Hex blake3 of the listing's JSON.
    listing_blake3: String,
}

impl Head {
    fn record(self) -> LayerRecord {
        LayerRecord {
            desc: LayerDescriptor {
                diff_id: self.diff_id,
                blob: self.blob,
                size: self.size,
                media_type: self.media_type,
            },
            listing: Default::default(),
        }
    }
}

/// A head longer than this is not a head (it is a few hundred bytes).
const MAX_HEAD: u64 = 64 * 1024;

#[cfg(test)]
pub(crate) fn encode(record: &LayerRecord) -> serde_json::Result<Vec<u8>> {
    encode_inner(None, record)
}

/// [`encode`], with the key the record is stored under in its head.
pub(crate) fn encode_for(key: &str, record: &LayerRecord) -> serde_json::Result<Vec<u8>> {
    encode_inner(Some(key), record)
}

fn encode_inner(key: Option<&str>, record: &LayerRecord) -> serde_json::Result<Vec<u8>> {
    let listing = serde_json::to_vec(&record.listing)?;
    let head = Head {
        key: key.map(str::to_owned),
        diff_id: record.desc.diff_id,
        blob: record.desc.blob,
        size: record.desc.size,
        media_type: record.desc.media_type,
        listing_bytes: listing.len() as u64,
        listing_blake3: blake3::hash(&listing).to_hex().to_string(),
    };
    let mut out = serde_json::to_vec(&head)?;
    out.push(b'\n');
    out.extend_from_slice(&listing);
    Ok(out)
}

/// A whole record, its listing checked against its head. `Err` says why
/// the bytes are not a record.
#[cfg(test)]
pub(crate) fn decode(bytes: &[u8]) -> Result<LayerRecord, String> {
    decode_inner(bytes, None)
}

/// [`decode`] of the record found under `key`: one whose head names another
/// key is refused.
pub(crate) fn decode_for(bytes: &[u8], key: &str) -> Result<LayerRecord, String> {
    decode_inner(bytes, Some(key))
}

/// Refuses a head that names another key than `expected`.
fn check_key(head: &Head, expected: Option<&str>) -> Result<(), String> {
    match (&head.key, expected) {
        (Some(found), Some(expected)) if found != expected => Err(format!(
            "it is the record of layer key {found} (blob {}), not of {expected}: \
             record files were swapped or copied over each other",
            head.blob
        )),
        _ => Ok(()),
    }
}

fn decode_inner(bytes: &[u8], expected: Option<&str>) -> Result<LayerRecord, String> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no head line")?;
    let head: Head = serde_json::from_slice(&bytes[..nl]).map_err(|e| format!("head: {e}"))?;
    check_key(&head, expected)?;
    let listing = &bytes[nl + 1..];
    if listing.len() as u64 != head.listing_bytes
        || blake3::hash(listing).to_hex().as_str() != head.listing_blake3
    {
        return Err(format!(
            "the listing is {} bytes that do not hash to what the head says ({} bytes, blake3 {})",
            listing.len(),
            head.listing_bytes,
            head.listing_blake3
        ));
    }
    let listing = serde_json::from_slice(listing).map_err(|e| format!("listing: {e}"))?;
    Ok(LayerRecord {
        listing,
        ..head.record()
    })
}

/// The head of the record at `path`, with an empty listing: the outer
/// `Err` is an I/O error (`NotFound` for no record), the inner one says why
/// the bytes are not a record head.
#[cfg(test)]
pub(crate) fn read_head(path: &Path) -> io::Result<Result<LayerRecord, String>> {
    read_head_inner(path, None)
}

/// [`read_head`] of the record stored under `key` (see [`decode_for`]).
pub(crate) fn read_head_for(path: &Path, key: &str) -> io::Result<Result<LayerRecord, String>> {
    read_head_inner(path, Some(key))
}

fn read_head_inner(path: &Path, expected: Option<&str>) -> io::Result<Result<LayerRecord, String>> {
    let file = fs::File::open(path)?;
    let mut line = Vec::with_capacity(512);
    io::BufReader::with_capacity(4096, &file)
        .take(MAX_HEAD)
        .read_until(b'\n', &mut line)?;
    if line.pop() != Some(b'\n') {
        return Ok(Err(format!("no head line in its first {MAX_HEAD} bytes")));
    }
    let head = match serde_json::from_slice::<Head>(&line) {
        Ok(h) => h,
        Err(e) => return Ok(Err(format!("head: {e}"))),
    };
    if let Err(e) = check_key(&head, expected) {
        return Ok(Err(e));
    }
    // A record cut short or grown is found here, so that the layer is
    // rebuilt now rather than failing when its listing is read.
    let len = file.metadata()?.len();
    let expected = (line.len() as u64 + 1).saturating_add(head.listing_bytes);
    if len != expected {
        return Ok(Err(format!(
            "the record is {len} bytes, its head says {expected}"
        )));
    }
    Ok(Ok(head.record()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LayerRecord {
        let listing: strata_oci::Listing = serde_json::from_value(serde_json::json!({
            "entries": []
        }))
        .unwrap();
        LayerRecord {
            desc: strata_oci::LayerDescriptor {
                diff_id: strata_oci::Digest::of(b"tar"),
                blob: strata_oci::Digest::of(b"blob"),
                size: 4,
                media_type: strata_oci::MediaType::TarGzip,
            },
            listing,
        }
    }

    #[test]
    fn round_trips_and_the_head_alone_reads_the_first_line() {
        let r = record();
        let bytes = encode(&r).unwrap();
        assert_eq!(decode(&bytes).unwrap(), r);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        fs::write(&p, &bytes).unwrap();
        let head = read_head(&p).unwrap().unwrap();
        assert_eq!((head.desc.blob, head.desc.size), (r.desc.blob, r.desc.size));
        // A record cut short, or with bytes after its listing, is refused
        // by its head already.
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
        for n in [bytes.len() - 3, nl + 1] {
            fs::write(&p, &bytes[..n]).unwrap();
            let err = read_head(&p).unwrap().unwrap_err();
            assert!(err.contains("its head says"), "{err}");
            assert!(decode(&bytes[..n]).is_err());
        }
        fs::write(&p, [&bytes[..], b" "].concat()).unwrap();
        assert!(read_head(&p).unwrap().is_err());
    }

    #[test]
    fn a_record_read_under_another_key_is_refused() {
        let r = record();
        let bytes = encode_for("aaaa", &r).unwrap();
        assert_eq!(decode_for(&bytes, "aaaa").unwrap(), r);
        let err = decode_for(&bytes, "bbbb").unwrap_err();
        assert!(err.contains("record of layer key aaaa"), "{err}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bbbb.json");
        fs::write(&p, &bytes).unwrap();
        assert!(read_head_for(&p, "aaaa").unwrap().is_ok());
        assert!(read_head_for(&p, "bbbb").unwrap().is_err());
        // A record of before the key was written is taken as it is.
        assert_eq!(decode_for(&encode(&r).unwrap(), "bbbb").unwrap(), r);
    }

    #[test]
    fn a_listing_that_does_not_match_its_head_is_refused() {
        let bytes = encode(&record()).unwrap();
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
        // Same length, one byte changed: the hash catches it.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] = b' ';
        let err = decode(&bad).unwrap_err();
        assert!(err.contains("do not hash"), "{err}");
        // No newline at all, or garbage for a head.
        assert!(decode(&bytes[..nl]).is_err());
        assert!(decode(b"{\"diff_id\":\n{}").is_err());
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        fs::write(&p, &bytes[..nl]).unwrap();
        assert!(read_head(&p).unwrap().is_err());
        fs::write(&p, vec![b'x'; 100_000]).unwrap();
        assert!(read_head(&p).unwrap().unwrap_err().contains("no head line"));
        assert_eq!(
            read_head(&d.path().join("absent")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
