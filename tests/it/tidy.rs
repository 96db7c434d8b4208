//! Rules a reviewer would otherwise have to remember, checked on every
//! `cargo test`: every Rust file says what it owns in a `//!` line; no
//! `HashMap`/`HashSet` appears where iteration order could reach output
//! bytes; the crates depend on each other only along the arrows of
//! docs/architecture.md; only the binaries print; each library crate has
//! one error enum.

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
            "crates/oci/",
            "crates/layer/",
            "crates/export/",
            "crates/plan/",
            "crates/cache/",
            "crates/spec/",
            // Locks, reports, SBOMs and run layers are bytes on disk too.
            "crates/strata/",
            "crates/union/",
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

/// The allowed arrows between workspace crates (docs/architecture.md, "Crate
/// map"): a crate may depend on the crates listed for it, and on no other
/// workspace crate. `strata-oci` is the ground every crate may stand on.
const ALLOWED_DEPS: &[(&str, &[&str])] = &[
    ("strata-oci", &[]),
    ("strata-spec", &[]),
    ("strata-layer", &["strata-oci"]),
    ("strata-cache", &["strata-oci"]),
    ("strata-export", &["strata-oci"]),
    ("strata-registry", &["strata-oci"]),
    ("strata-deb", &[]),
    ("strata-reapi", &[]),
    (
        "strata-plan",
        &["strata-oci", "strata-spec", "strata-layer"],
    ),
    (
        "strata-union",
        &["strata-oci", "strata-layer", "strata-export"],
    ),
    (
        "strata",
        &[
            "strata-oci",
            "strata-spec",
            "strata-plan",
            "strata-layer",
            "strata-cache",
            "strata-export",
            "strata-union",
            "strata-registry",
            "strata-deb",
            "strata-reapi",
        ],
    ),
    ("strata-cli", &["strata"]),
    ("strata-testkit", &[]),
    ("xtask", &["strata"]),
];

/// The workspace crates a manifest's `[dependencies]` name (dev-dependencies
/// are for tests and may reach anywhere).
fn workspace_deps(manifest: &str) -> Vec<String> {
    let mut section = "";
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[dependencies]"
            && let Some((name, _)) = line.split_once(['.', ' ', '='])
            && (name == "strata" || name.starts_with("strata-"))
        {
            out.push(name.to_owned());
        }
    }
    out
}

fn package_name(manifest: &str) -> Option<String> {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("name = "))
        .map(|n| n.trim_matches('"').to_owned())
}

#[test]
fn crates_depend_only_along_the_documented_arrows() {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(repo().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("Cargo.toml"))
        .collect();
    manifests.push(repo().join("xtask/Cargo.toml"));
    manifests.sort();
    let mut problems = Vec::new();
    for m in &manifests {
        let text = std::fs::read_to_string(m).unwrap();
        let name = package_name(&text).unwrap();
        let Some((_, allowed)) = ALLOWED_DEPS.iter().find(|(c, _)| *c == name) else {
            problems.push(format!(
                "{name} is not in the crate map: add it to docs/architecture.md and ALLOWED_DEPS"
            ));
            continue;
        };
        for dep in workspace_deps(&text) {
            if !allowed.contains(&dep.as_str()) {
                problems.push(format!("{name} -> {dep} is not an allowed arrow"));
            }
        }
    }
    assert!(
        problems.len() < manifests.len(),
        "the manifest reader found nothing"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The reader itself: an arrow that is there must be seen.
    let strata = std::fs::read_to_string(repo().join("crates/strata/Cargo.toml")).unwrap();
    assert!(workspace_deps(&strata).contains(&"strata-plan".to_owned()));
}

/// Files outside the binaries that may print: the sandbox's stages are
/// processes of their own, whose stderr is the run step's log.
const PRINT_ALLOWED: &[&str] = &["crates/union/src/sandbox.rs"];

#[test]
fn only_the_binaries_print() {
    let mut offenders = Vec::new();
    for p in all_sources() {
        let rel = p.strip_prefix(repo()).unwrap().display().to_string();
        let library = rel.starts_with("crates/") && !rel.starts_with("crates/cli/");
        // Tests and examples are programs of their own, and testkit is
        // their shared part (a dev-dependency only): it says SKIPPED.
        let program = rel.contains("/tests/")
            || rel.contains("/examples/")
            || rel.starts_with("crates/testkit/");
        if !library || program || PRINT_ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Test modules at the end of a file may print what they check.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("]
                .iter()
                .any(|m| code.contains(m))
            {
                offenders.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "libraries report through their return values and progress events, not stdout/stderr:\n{}",
        offenders.join("\n")
    );
}

/// The variants of a crate's `Error` enum (in its `src/lib.rs`), as text:
/// an error enum of the crate that `Error` wraps as a source (`Lock(#[from]
/// lock::LockError)`) is a part of it, not a second enum.
fn top_error_text(krate: &str) -> String {
    let lib = std::fs::read_to_string(repo().join("crates").join(krate).join("src/lib.rs"))
        .unwrap_or_default();
    let Some(start) = lib.find("pub enum Error") else {
        return String::new();
    };
    let body = &lib[start..];
    body[..body.find("\n}").unwrap_or(body.len())].to_owned()
}

#[test]
fn each_library_crate_has_one_error_enum() {
    let mut found: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in all_sources() {
        let rel = p.strip_prefix(repo()).unwrap().display().to_string();
        if !rel.starts_with("crates/") || rel.starts_with("crates/cli/") || rel.contains("/tests/")
        {
            continue;
        }
        let krate = rel.split('/').nth(1).unwrap().to_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line
                .trim()
                .strip_prefix("pub enum ")
                .and_then(|r| r.split([' ', '{', '<']).next())
            else {
                continue;
            };
            let derives_error = lines[..i]
                .iter()
                .rev()
                .take_while(|l| {
                    l.trim_start().starts_with("#[") || l.trim_start().starts_with("///")
                })
                .any(|l| l.contains("thiserror::Error") || l.contains("derive(Debug, Error"));
            let wrapped = name != "Error" && top_error_text(&krate).contains(name);
            if derives_error && !wrapped {
                found
                    .entry(krate.clone())
                    .or_default()
                    .push(format!("{rel}: {name}"));
            }
        }
    }
    let many: Vec<String> = found
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, v)| format!("{k}: {}", v.join(", ")))
        .collect();
    assert!(found.len() >= 5, "the error enum scan found only {found:?}");
    assert!(
        many.is_empty(),
        "one error enum per crate, and others only as sources of its variants:\n{}",
        many.join("\n")
    );
}
