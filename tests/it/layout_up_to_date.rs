//! `strata compose` into a layout that is already up to date leaves it
//! untouched (same inodes and mtimes, like make) and says so; any
//! difference from what a fresh compose writes rewrites it, whole.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use crate::support::{strata, strata_ok, tree_bytes};

const SPEC: &str = r#"
epoch 1700000000
image base {
    layer os { copy "os/" to="/etc/" }
    cmd "/bin/sh"
}
image app {
    from "base"
    layer app { copy "app.txt" to="/srv/app.txt" }
    cmd "/bin/cat" "/srv/app.txt"
}
"#;

fn project(dir: &Path) {
    fs::create_dir_all(dir.join("os")).unwrap();
    fs::write(dir.join("spec.kdl"), SPEC).unwrap();
    fs::write(dir.join("os/hostname"), "box\n").unwrap();
    fs::write(dir.join("app.txt"), "app v1\n").unwrap();
}

/// `strata compose spec.kdl -o OUT --json ARGS`, parsed.
fn compose(dir: &Path, out: &str, args: &[&str]) -> Value {
    let mut all = vec!["compose", "spec.kdl", "-o", out, "--json"];
    all.extend_from_slice(args);
    let text = strata_ok(dir, &dir.join("cache"), &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not json ({e}):\n{text}"))
}

/// The manifest digest of each image of a report.
fn manifests(report: &Value) -> Vec<String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["manifest"].as_str().unwrap().to_owned())
        .collect()
}

fn stamp(path: &Path) -> (u64, i64, i64) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

/// The layer blobs of `report`, as paths under its layout.
fn layer_blobs(dir: &Path, report: &Value) -> Vec<std::path::PathBuf> {
    let out = dir.join(report["out"].as_str().unwrap());
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["layers"].as_array().unwrap())
        .map(|l| {
            let digest = l["digest"].as_str().unwrap();
            out.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        })
        .collect()
}

/// The layout `out` holds exactly what a fresh compose writes: the same
/// index.json and the same files (blobs named by digest) with the same bytes.
fn assert_like_fresh(dir: &Path, out: &str, args: &[&str], what: &str) {
    let fresh = format!("fresh-{}", out);
    let _ = fs::remove_dir_all(dir.join(&fresh));
    let report = compose(dir, &fresh, args);
    assert_eq!(report["layout_unchanged"], false, "{what}: a new layout");
    assert_eq!(
        fs::read(dir.join(out).join("index.json")).unwrap(),
        fs::read(dir.join(&fresh).join("index.json")).unwrap(),
        "{what}: index.json"
    );
    let (a, b) = (tree_bytes(&dir.join(out)), tree_bytes(&dir.join(&fresh)));
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "{what}: the files");
    assert!(a == b, "{what}: the bytes");
    // And every blob it names matches its digest.
    let layout = strata_export::open_layout(&dir.join(out)).unwrap();
    layout.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
}

#[test]
fn a_second_identical_compose_leaves_the_layout_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let first = compose(dir, "out", &[]);
    assert_eq!(first["layout_unchanged"], false);
    let out = dir.join("out");
    let blobs = layer_blobs(dir, &first);
    let before: Vec<_> = [out.clone(), out.join("index.json"), out.join("oci-layout")]
        .iter()
        .chain(&blobs)
        .map(|p| stamp(p))
        .collect();
    let bytes = tree_bytes(&out);
    // A rewrite within one mtime tick would keep the mtime, not the inode;
    // wait anyway, so both say something.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let second = compose(dir, "out", &[]);
    assert_eq!(second["layout_unchanged"], true, "{second}");
    assert_eq!(manifests(&second), manifests(&first));
    let after: Vec<_> = [out.clone(), out.join("index.json"), out.join("oci-layout")]
        .iter()
        .chain(&blobs)
        .map(|p| stamp(p))
        .collect();
    assert_eq!(after, before, "inodes and mtimes kept");
    assert!(tree_bytes(&out) == bytes);
    let leftovers: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");

    // The summary says so too.
    let text = strata_ok(
        dir,
        &dir.join("cache"),
        &["compose", "spec.kdl", "-o", "out"],
    );
    assert!(text.contains("(up to date, left untouched)"), "{text}");
    assert_eq!(stamp(&out.join("index.json")), before[1]);
}

#[test]
fn a_changed_input_rewrites_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let first = compose(dir, "out", &[]);
    let index = stamp(&dir.join("out/index.json"));
    fs::write(dir.join("app.txt"), "app v2\n").unwrap();
    let second = compose(dir, "out", &[]);
    assert_eq!(second["layout_unchanged"], false);
    assert_ne!(
        second["images"][1]["manifest"],
        first["images"][1]["manifest"]
    );
    assert_ne!(stamp(&dir.join("out/index.json")), index);
    assert_like_fresh(dir, "out", &[], "a changed input");
    // The old app layer went with the old layout.
    let old = layer_blobs(dir, &first);
    assert!(
        !old.last().unwrap().exists(),
        "{}",
        old.last().unwrap().display()
    );
}

#[test]
fn a_sbom_layout_is_up_to_date_only_with_its_sbom() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    compose(dir, "out", &[]);
    let with = compose(dir, "out", &["--sbom"]);
    assert_eq!(with["layout_unchanged"], false, "the SBOMs are new files");
    assert!(with["images"][0]["sbom"].is_string());
    let again = compose(dir, "out", &["--sbom"]);
    assert_eq!(again["layout_unchanged"], true, "{again}");
    assert_like_fresh(dir, "out", &["--sbom"], "with SBOMs");
    let without = compose(dir, "out", &[]);
    assert_eq!(without["layout_unchanged"], false, "the SBOMs must go");
    assert_like_fresh(dir, "out", &[], "without SBOMs");
}

type Change = fn(&Path, &Value);

/// Ways a layout can differ from a fresh compose's, each on its own.
const CHANGES: &[(&str, Change)] = &[
    ("an extra file", |out, _| {
        fs::write(out.join("blobs/sha256/notes"), "mine\n").unwrap();
    }),
    ("a missing layer blob", |out, report| {
        let digest = report["images"][0]["layers"][0]["digest"].as_str().unwrap();
        fs::remove_file(out.join("blobs/sha256").join(&digest[7..])).unwrap();
    }),
    ("a manifest byte changed", |out, report| {
        let digest = report["images"][1]["manifest"].as_str().unwrap();
        let path = out.join("blobs/sha256").join(&digest[7..]);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        fs::write(&path, bytes).unwrap();
    }),
    (
        "a layer blob replaced by a same-size copy",
        |out, report| {
            let digest = report["images"][1]["layers"][1]["digest"].as_str().unwrap();
            let path = out.join("blobs/sha256").join(&digest[7..]);
            let mut bytes = fs::read(&path).unwrap();
            bytes[30] ^= 1;
            // A new file: writing through the link would change the cache's blob.
            fs::remove_file(&path).unwrap();
            fs::write(&path, bytes).unwrap();
        },
    ),
];

#[test]
fn a_layout_that_differs_from_a_fresh_compose_is_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let report = compose(dir, "out", &[]);
    let out = dir.join("out");
    let expected = tree_bytes(&out);
    for (what, change) in CHANGES {
        change(&out, &report);
        assert!(tree_bytes(&out) != expected, "{what}: changed nothing");
        let oci_layout = stamp(&out.join("oci-layout"));
        let again = compose(dir, "out", &[]);
        assert_eq!(again["layout_unchanged"], false, "{what}");
        assert_eq!(manifests(&again), manifests(&report), "{what}");
        assert_ne!(
            stamp(&out.join("oci-layout")),
            oci_layout,
            "{what}: rewritten"
        );
        assert!(tree_bytes(&out) == expected, "{what}: not as before");
        assert_like_fresh(dir, "out", &[], what);
    }
    // The cache was not harmed: a fresh cache gives the same layout.
    let clean = strata_ok(
        dir,
        &dir.join("cache2"),
        &["compose", "spec.kdl", "-o", "clean", "-q"],
    );
    assert!(clean.is_empty());
    assert!(tree_bytes(&dir.join("clean")) == expected);
}

#[test]
fn a_directory_that_is_not_a_layout_is_still_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    fs::create_dir(dir.join("out")).unwrap();
    fs::write(dir.join("out/notes.txt"), "keep me\n").unwrap();
    let run = strata(
        dir,
        &dir.join("cache"),
        &["compose", "spec.kdl", "-o", "out"],
    );
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("is not an OCI image layout; refusing to replace it"),
        "{stderr}"
    );
    assert_eq!(
        tree_bytes(&dir.join("out")),
        [("notes.txt".to_owned(), b"keep me\n".to_vec())]
    );
}
