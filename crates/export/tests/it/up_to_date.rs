//! A layout that already holds exactly what a write would make is left
//! untouched; one that differs in any file is written again, whole.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use strata_export::{ExportImage, LayoutExtras, Referrer, Written, write_layout_with};

use crate::Fixture;

/// The fixture's images, with blobs the caller verified (as the cache does).
fn verified(fx: &Fixture) -> Vec<ExportImage> {
    let mut images = fx.images();
    for layer in images.iter_mut().flat_map(|i| &mut i.layers) {
        layer.verified = true;
    }
    images
}

/// An SBOM-like artifact about the second image, so artifacts are checked too.
fn extras() -> LayoutExtras {
    LayoutExtras {
        referrers: vec![Referrer {
            subject: 1,
            artifact_type: "application/spdx+json".to_owned(),
            title: "app.spdx.json".to_owned(),
            bytes: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
            annotations: BTreeMap::new(),
        }],
        indexes: Vec::new(),
    }
}

/// Every directory (with a final `/`) and file of `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    tree_or_none(dir).unwrap_or_else(|| panic!("{}: holds a symlink", dir.display()))
}

/// [`tree`], or `None` for a tree that holds something other than files
/// and directories (a symlink).
fn tree_or_none(dir: &Path) -> Option<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                pending.push(path);
            } else if meta.is_file() {
                out.insert(rel, fs::read(&path).unwrap());
            } else {
                return None;
            }
        }
    }
    Some(out)
}

/// Whether every layer blob in `out` is a hard link of the fixture's file.
fn linked(out: &Path, fx: &Fixture) -> bool {
    [&fx.base, &fx.app].iter().all(|layer| {
        let blob = out.join("blobs/sha256").join(layer.desc.blob.hex());
        fs::symlink_metadata(&blob).is_ok_and(|m| m.ino() == ino(&layer.blob_path))
    })
}

fn ino(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

fn mtime(path: &Path) -> (i64, i64) {
    let meta = fs::metadata(path).unwrap();
    (meta.mtime(), meta.mtime_nsec())
}

#[test]
fn a_second_identical_write_leaves_the_layout_untouched() {
    let fx = Fixture::two_layers();
    let images = verified(&fx);
    let out = fx.path("out");
    let first = write_layout_with(&out, &images, &extras()).unwrap();
    assert!(!first.unchanged, "a new layout is written");
    let index = out.join("index.json");
    let blob = out.join("blobs/sha256").join(fx.app.desc.blob.hex());
    assert_eq!(
        ino(&blob),
        ino(&fx.app.blob_path),
        "the blob is hard-linked"
    );
    let before = (ino(&out), ino(&index), mtime(&index), ino(&blob));
    let bytes = tree(&out);
    // Coarse mtimes (1 s on some filesystems) could hide a rewrite: wait a tick.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let second = write_layout_with(&out, &images, &extras()).unwrap();
    assert!(second.unchanged);
    assert_eq!(
        Written {
            unchanged: false,
            ..second
        },
        first
    );
    assert_eq!((ino(&out), ino(&index), mtime(&index), ino(&blob)), before);
    assert!(tree(&out) == bytes);
    assert_eq!(
        crate::names(fx.tmp.path()),
        ["inputs", "out"],
        "no temporary made"
    );
}

#[test]
fn blobs_the_caller_did_not_verify_are_always_written_again() {
    let fx = Fixture::two_layers();
    let out = fx.path("out");
    // `verified: false`: a write hashes the blobs, so an up to date check
    // that only compares inodes would skip that check.
    write_layout_with(&out, &fx.images(), &LayoutExtras::default()).unwrap();
    let index = ino(&out.join("index.json"));
    let again = write_layout_with(&out, &fx.images(), &LayoutExtras::default()).unwrap();
    assert!(!again.unchanged);
    assert_ne!(ino(&out.join("index.json")), index, "written again");
}

#[test]
fn different_inputs_rewrite_the_layout() {
    let fx = Fixture::two_layers();
    let out = fx.path("out");
    write_layout_with(&out, &verified(&fx), &extras()).unwrap();
    let mut images = verified(&fx);
    images[1].name = "app2".to_owned();
    let written = write_layout_with(&out, &images, &extras()).unwrap();
    assert!(!written.unchanged);
    let fresh = fx.path("fresh");
    write_layout_with(&fresh, &images, &extras()).unwrap();
    assert!(tree(&out) == tree(&fresh));
}

type Change = fn(&Path, &Fixture);

/// Every way a layout can differ from what a write makes, each on its own.
const CHANGES: &[(&str, Change)] = &[
    ("an extra file", |out, _| {
        fs::write(out.join("notes.txt"), "mine").unwrap();
    }),
    ("an extra blob", |out, _| {
        fs::write(out.join("blobs/sha256/00"), "").unwrap();
    }),
    ("an extra directory", |out, _| {
        fs::create_dir(out.join("blobs/sha512")).unwrap();
    }),
    ("a missing layer blob", |out, fx| {
        fs::remove_file(out.join("blobs/sha256").join(fx.base.desc.blob.hex())).unwrap();
    }),
    ("a missing index.json", |out, _| {
        fs::remove_file(out.join("index.json")).unwrap();
    }),
    ("a manifest byte changed", |out, _| {
        let index = fs::read_to_string(out.join("index.json")).unwrap();
        let at = index.find("sha256:").unwrap() + 7;
        let manifest = out.join("blobs/sha256").join(&index[at..at + 64]);
        let mut bytes = fs::read(&manifest).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        fs::write(&manifest, bytes).unwrap();
    }),
    ("oci-layout changed", |out, _| {
        fs::write(out.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.1"}"#).unwrap();
    }),
    ("a layer blob replaced by a same-size copy", |out, fx| {
        let blob = out.join("blobs/sha256").join(fx.app.desc.blob.hex());
        let mut bytes = fs::read(&blob).unwrap();
        bytes[20] ^= 1;
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, bytes).unwrap();
    }),
    ("a layer blob replaced by an exact copy", |out, fx| {
        // The right bytes, but not the caller's file: not checked by hashing.
        let blob = out.join("blobs/sha256").join(fx.app.desc.blob.hex());
        let bytes = fs::read(&blob).unwrap();
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, bytes).unwrap();
    }),
    ("a layer blob replaced by a symlink to it", |out, fx| {
        let blob = out.join("blobs/sha256").join(fx.app.desc.blob.hex());
        fs::remove_file(&blob).unwrap();
        std::os::unix::fs::symlink(&fx.app.blob_path, &blob).unwrap();
    }),
    ("a config replaced by a directory", |out, _| {
        let index = fs::read_to_string(out.join("index.json")).unwrap();
        let at = index.find("sha256:").unwrap() + 7;
        let manifest = out.join("blobs/sha256").join(&index[at..at + 64]);
        fs::remove_file(&manifest).unwrap();
        fs::create_dir(&manifest).unwrap();
    }),
];

#[test]
fn a_layout_that_differs_in_any_file_is_written_again() {
    for (what, change) in CHANGES {
        let fx = Fixture::two_layers();
        let images = verified(&fx);
        let out = fx.path("out");
        write_layout_with(&out, &images, &extras()).unwrap();
        let expected = tree(&out);
        change(&out, &fx);
        assert!(
            tree_or_none(&out).as_ref() != Some(&expected) || !linked(&out, &fx),
            "{what}: the change changed nothing"
        );
        let index = ino(&out.join("oci-layout"));

        let written = write_layout_with(&out, &images, &extras()).unwrap();
        assert!(!written.unchanged, "{what}: taken as up to date");
        assert_ne!(ino(&out.join("oci-layout")), index, "{what}: not rewritten");
        // Compared whole, not printed whole: the trees hold every blob.
        assert!(
            tree(&out) == expected,
            "{what}: not what a fresh write makes"
        );
        assert!(linked(&out, &fx), "{what}: a layer blob is not linked");
        assert_eq!(crate::names(fx.tmp.path()), ["inputs", "out"], "{what}");
        // And now it is up to date.
        assert!(
            write_layout_with(&out, &images, &extras())
                .unwrap()
                .unchanged
        );
    }
}
