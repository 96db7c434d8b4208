//! The outputs of `strata compose` besides the layout, read by real tools:
//! the OCI archive (`--oci-archive`), and layers of every compression
//! (`gzip`, `zstd`, `none`) unpacked by umoci and copied by skopeo.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{have, index_digests, run_ok, strata_ok};

/// A spec dir with one image of two layers, compressed with `codec`.
fn small_spec(dir: &Path, codec: &str) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("inputs")).unwrap();
    fs::write(dir.join("inputs/data.txt"), "some data\n".repeat(100)).unwrap();
    let spec = dir.join("app.kdl");
    fs::write(
        &spec,
        format!(
            "epoch 1700000000\ncompression \"{codec}\"\nimage app {{\n    \
             layer base {{ mkdir \"/srv\" mode=0o755\n file \"/srv/hello.txt\" \"hi\\n\" }}\n    \
             layer data {{ copy \"inputs/data.txt\" to=\"/srv/data.txt\" }}\n    \
             cmd \"/bin/true\"\n}}\n"
        ),
    )
    .unwrap();
    spec
}

use strata_testkit::tar_entries as entries;

#[test]
fn oci_archive_is_the_layout_in_a_canonical_tar_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small_spec(&tmp.path().join("src"), "gzip");
    let spec = spec.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("out/b.tar");
    // What a compose killed while writing its archive leaves behind (the
    // layout's are covered in nothing_escapes.rs): removed by the next
    // writer of that archive, and only those of that archive.
    fs::write(tmp.path().join(".a.tar.tmp-Killed1"), "half an archive").unwrap();
    fs::write(tmp.path().join(".other.tar.tmp-Keep"), "not ours").unwrap();
    let json = strata_ok(
        tmp.path(),
        &cache,
        &[
            "compose",
            spec,
            "-o",
            "one",
            "--oci-archive",
            "a.tar",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["oci_archive"].as_str(), Some("a.tar"));
    assert!(
        !tmp.path().join(".a.tar.tmp-Killed1").exists(),
        "leftover removed"
    );
    assert!(
        tmp.path().join(".other.tar.tmp-Keep").exists(),
        "another output's file kept"
    );
    // A second compose, from a cold cache into another layout: the same bytes.
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache2"),
        &[
            "compose",
            spec,
            "-o",
            "two",
            "--oci-archive",
            "out/b.tar",
            "-q",
        ],
    );
    let (bytes_a, bytes_b) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
    assert!(
        bytes_a == bytes_b,
        "two composes give byte-identical archives"
    );

    let entries = entries(&a);
    let paths: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries sorted by path");
    assert_eq!(paths[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(paths[paths.len() - 2..], ["index.json", "oci-layout"]);
    // Every file of the layout is in the archive with its bytes, and nothing else.
    let layout = tmp.path().join("one");
    let files = crate::support::tree_bytes(&layout);
    assert_eq!(files.len() + 2, entries.len());
    for (rel, content) in &files {
        let (_, _, c) = entries
            .iter()
            .find(|(p, _, _)| p == rel)
            .unwrap_or_else(|| panic!("{rel} missing from the archive"));
        assert!(c == content, "{rel}: same bytes as in the layout");
    }
    for (path, header, _) in &entries {
        assert!(header.as_ustar().is_some(), "{path}: ustar");
        assert_eq!(header.mtime().unwrap(), 1_700_000_000, "{path}: the epoch");
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
        assert_eq!(header.username_bytes(), Some(&b""[..]), "{path}");
        let mode = if path.ends_with('/') { 0o755 } else { 0o644 };
        assert_eq!(header.mode().unwrap(), mode, "{path}");
    }
    // No temporary file is left next to the archive.
    let names: Vec<_> = fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["b.tar"]);

    if !have(
        "skopeo",
        "oci_archive_is_the_layout_in_a_canonical_tar_and_reproducible",
    ) {
        return;
    }
    let digest = index_digests(&layout)[0].1.clone();
    let inspect: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:app", a.display())),
    ))
    .unwrap();
    assert_eq!(inspect["Digest"].as_str(), Some(digest.as_str()));
    let copy = tmp.path().join("copy");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--preserve-digests"])
            .arg(format!("oci-archive:{}:app", a.display()))
            .arg(format!("oci:{}:app", copy.display())),
    );
    assert_eq!(index_digests(&copy), [("app".to_owned(), digest)]);
}

/// Every compression, end to end: umoci unpacks the image with the files the
/// spec put there, and skopeo copies it keeping the manifest digest.
#[test]
fn every_compression_is_read_by_umoci_and_skopeo() {
    const TEST: &str = "every_compression_is_read_by_umoci_and_skopeo";
    if !have("umoci", TEST) || !have("skopeo", TEST) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (codec, media_type) in [
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("none", "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let dir = tmp.path().join(codec);
        let spec = small_spec(&dir.join("src"), codec);
        let json = strata_ok(
            &dir,
            &dir.join("cache"),
            &["compose", spec.to_str().unwrap(), "-o", "layout", "--json"],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let layers = report["images"][0]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{codec}");
        for layer in layers {
            assert_eq!(layer["media_type"].as_str(), Some(media_type), "{codec}");
        }
        let layout = dir.join("layout");

        // umoci 0.4.7 (Debian 12) refuses zstd layers ("blob is not correct
        // mediatype"): skopeo decodes them into gzip first, which checks
        // that they decode, and umoci unpacks the result.
        let unpack_from = if codec == "zstd" {
            let gz = dir.join("as-gzip");
            run_ok(
                Command::new("skopeo")
                    .args(["copy", "--dest-compress-format", "gzip"])
                    .arg(format!("oci:{}:app", layout.display()))
                    .arg(format!("oci:{}:app", gz.display())),
            );
            gz
        } else {
            layout.clone()
        };
        let bundle = dir.join("bundle");
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:app", unpack_from.display()))
                .arg(&bundle),
        );
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            fs::read_to_string(rootfs.join("srv/hello.txt")).unwrap(),
            "hi\n",
            "{codec}"
        );
        assert_eq!(
            fs::read_to_string(rootfs.join("srv/data.txt")).unwrap(),
            "some data\n".repeat(100),
            "{codec}"
        );

        let digest = index_digests(&layout)[0].1.clone();
        let copy = dir.join("copy");
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--preserve-digests"])
                .arg(format!("oci:{}:app", layout.display()))
                .arg(format!("oci:{}:app", copy.display())),
        );
        assert_eq!(
            index_digests(&copy),
            [("app".to_owned(), digest)],
            "{codec}: skopeo keeps the digest"
        );
    }
}

/// The manifest annotations of the image `tag` of a layout.
fn manifest_annotations(layout: &Path, tag: &str) -> serde_json::Value {
    let digest = index_digests(layout)
        .into_iter()
        .find(|(t, _)| t == tag)
        .unwrap()
        .1;
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    manifest["annotations"].clone()
}

#[test]
fn created_source_and_revision_annotations_come_from_the_epoch_the_spec_and_the_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("app.kdl"),
        "epoch 1700000000\n\
         image app {\n    \
             annotation org.opencontainers.image.source=\"https://example.org/spec.git\"\n    \
             annotation org.opencontainers.image.revision=\"from-spec\"\n    \
             layer l { file \"/a\" \"a\" }\n\
         }\n\
         image bare { layer l { file \"/b\" \"b\" } }\n",
    )
    .unwrap();
    let cache = dir.join("cache");
    strata_ok(dir, &cache, &["compose", "app.kdl", "-o", "spec", "-q"]);
    let spec = manifest_annotations(&dir.join("spec"), "app");
    assert_eq!(
        spec["org.opencontainers.image.created"], "2023-11-14T22:13:20Z",
        "the spec's epoch"
    );
    assert_eq!(
        spec["org.opencontainers.image.source"],
        "https://example.org/spec.git"
    );
    assert_eq!(spec["org.opencontainers.image.revision"], "from-spec");
    let bare = manifest_annotations(&dir.join("spec"), "bare");
    assert_eq!(
        bare.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["org.opencontainers.image.created"]
    );

    strata_ok(
        dir,
        &cache,
        &[
            "compose",
            "app.kdl",
            "-o",
            "flags",
            "-q",
            "--source",
            "https://example.org/ci.git",
            "--revision",
            "0123abc",
        ],
    );
    for tag in ["app", "bare"] {
        let flags = manifest_annotations(&dir.join("flags"), tag);
        assert_eq!(
            flags["org.opencontainers.image.source"], "https://example.org/ci.git",
            "{tag}: the flag wins"
        );
        assert_eq!(
            flags["org.opencontainers.image.revision"], "0123abc",
            "{tag}"
        );
    }

    // SOURCE_DATE_EPOCH moves `created` with the rest of the image's times.
    let out = Command::new(crate::support::strata_bin())
        .args(["compose", "app.kdl", "-o", "sde", "-q"])
        .current_dir(dir)
        .env("STRATA_CACHE_DIR", &cache)
        .env("SOURCE_DATE_EPOCH", "86400")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        manifest_annotations(&dir.join("sde"), "app")["org.opencontainers.image.created"],
        "1970-01-02T00:00:00Z"
    );

    // An empty value is a usage error, not an empty annotation.
    let out = crate::support::strata(dir, &cache, &["compose", "app.kdl", "--source", ""]);
    assert_eq!(out.status.code(), Some(2));
}
