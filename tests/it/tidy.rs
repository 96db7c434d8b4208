//! Rules a reviewer would otherwise have to remember, checked on every
//! `cargo test`: every Rust file says what it owns in a `//!` line, and no
//! `HashMap`/`HashSet` appears where iteration order could reach output bytes.

use std::path::{Path, PathBuf};

use crate::support::repo;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "snapshots" {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for top in ["crates", "xtask", "tests"] {
        rust_files(&repo().join(top), &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "found only {} files", files.len());
    files
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let missing: Vec<String> = all_sources()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` line: {missing:#?}"
    );
}

/// Crates whose output is bytes that must not vary use ordered maps only.
/// The exceptions: one converts to the `HashMap`s oci-spec's API takes, whose
/// order the canonical JSON writer then fixes; the cache's input index is a
/// lookup table whose file is written sorted.
const HASHMAP_ALLOWED: &[&str] = &["crates/export/src/manifest.rs", "crates/cache/src/index.rs"];

#[test]
fn no_hash_maps_in_crates_that_write_output() {
    let mut offenders = Vec::new();
    for p in all_sources() {
        let rel = p.strip_prefix(repo()).unwrap().display().to_string();
        let output_crate = [
            "crates/layer/",
            "crates/export/",
            "crates/plan/",
            "crates/cache/",
            "crates/spec/",
        ]
        .iter()
        .any(|c| rel.starts_with(c));
        if !output_crate || HASHMAP_ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("HashMap") || code.contains("HashSet") {
                offenders.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use BTreeMap/BTreeSet where order can reach output:\n{}",
        offenders.join("\n")
    );
}
