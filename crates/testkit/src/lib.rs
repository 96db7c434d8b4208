//! Helpers the test suites share (a dev-dependency only): what several test
//! binaries used to write each for itself. Reading is done with independent
//! code (the `tar` crate, plain JSON), never with strata's own readers, so a
//! test that checks strata's output does not trust strata to read it.
//!
//! Invariant: nothing here is used by a product crate; every helper panics
//! with what it was reading when the bytes are not what a test expects.

use std::io::Read;
use std::path::Path;

/// (path, header, content) of every entry of the tar at `path`, in order.
pub fn tar_entries(path: &Path) -> Vec<(String, tar::Header, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| {
            let mut e = e.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut content = Vec::new();
            e.read_to_end(&mut content)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = String::from_utf8(e.path_bytes().to_vec())
                .unwrap_or_else(|_| panic!("{}: a name that is not UTF-8", path.display()));
            (name, e.header().clone(), content)
        })
        .collect()
}

/// (tag, manifest digest) of each manifest in a layout's `index.json`, in
/// the index's order; an untagged manifest has an empty tag.
pub fn index_digests(layout: &Path) -> Vec<(String, String)> {
    let path = layout.join("index.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let index: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no manifests array", path.display()))
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                m["digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}
