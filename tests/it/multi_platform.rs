//! `index NAME { image A; image B }`: images of several platforms under one
//! tag, written as a nested OCI image index that skopeo reads and copies
//! (`--all`) keeping every digest.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{have, run_ok, strata, strata_ok};

const SPEC: &str = r#"epoch 1700000000
image app-amd64 {
    layer files { file "/hello.txt" "hi\n" }
    cmd "/bin/true"
}
image app-arm64 {
    from app-amd64
    platform "linux/arm64/v8"
}
index app {
    image app-amd64
    image app-arm64
}
"#;

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

#[test]
fn an_index_groups_images_of_several_platforms_under_one_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("mp.kdl"), SPEC).unwrap();
    let cache = dir.join("cache");
    let report: Value = serde_json::from_str(&strata_ok(
        dir,
        &cache,
        &["compose", "mp.kdl", "-o", "lay", "--json"],
    ))
    .unwrap();
    let layout = dir.join("lay");

    let index = json(&layout.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    let tags: Vec<(&str, &str)> = entries
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap(),
                m["mediaType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("app-amd64", "application/vnd.oci.image.manifest.v1+json"),
            ("app-arm64", "application/vnd.oci.image.manifest.v1+json"),
            ("app", "application/vnd.oci.image.index.v1+json"),
        ]
    );
    let nested_digest = entries[2]["digest"].as_str().unwrap();
    assert_eq!(report["indexes"][0]["name"], "app");
    assert_eq!(report["indexes"][0]["digest"], nested_digest);
    let nested = json(&blob(&layout, nested_digest));
    assert_eq!(
        nested["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        nested["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let members = nested["manifests"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    for (member, (digest, platform)) in members.iter().zip([
        (entries[0]["digest"].clone(), ("amd64", None)),
        (entries[1]["digest"].clone(), ("arm64", Some("v8"))),
    ]) {
        assert_eq!(member["digest"], digest);
        assert_eq!(member["platform"]["os"], "linux");
        assert_eq!(member["platform"]["architecture"], platform.0);
        assert_eq!(member["platform"]["variant"].as_str(), platform.1);
        // The platform in the index is the one in the image's config.
        let manifest = json(&blob(&layout, digest.as_str().unwrap()));
        let config = json(&blob(
            &layout,
            manifest["config"]["digest"].as_str().unwrap(),
        ));
        assert_eq!(config["architecture"], platform.0);
    }

    let plan = strata_ok(dir, &cache, &["plan", "mp.kdl"]);
    assert!(
        plan.ends_with("\nindex app\n  linux/amd64 app-amd64\n  linux/arm64/v8 app-arm64\n"),
        "{plan}"
    );

    // strata's own reader shows the index and its images.
    let inspect = strata_ok(dir, &cache, &["inspect", "lay:app"]);
    assert!(inspect.starts_with("index app\n"), "{inspect}");
    assert!(
        inspect.contains("linux/arm64/v8 app-arm64 sha256:"),
        "{inspect}"
    );
    assert!(inspect.contains("\nimage app-amd64\n"), "{inspect}");

    // The same spec composed again gives the same index.
    strata_ok(
        dir,
        &dir.join("cache2"),
        &[
            "compose",
            "mp.kdl",
            "-o",
            "again",
            "-q",
            "--oci-archive",
            "mp.tar",
        ],
    );
    assert_eq!(
        crate::support::tree_bytes(&layout),
        crate::support::tree_bytes(&dir.join("again"))
    );

    if !have(
        "skopeo",
        "an_index_groups_images_of_several_platforms_under_one_tag",
    ) {
        return;
    }
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:app", layout.display())),
    );
    assert_eq!(
        raw.as_bytes(),
        fs::read(blob(&layout, nested_digest)).unwrap(),
        "skopeo sees the index"
    );
    let copy = dir.join("copy");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--all", "--preserve-digests"])
            .arg(format!("oci:{}:app", layout.display()))
            .arg(format!("oci:{}:app", copy.display())),
    );
    let copied = json(&copy.join("index.json"));
    assert_eq!(copied["manifests"][0]["digest"], nested_digest);
    for member in members {
        let digest = member["digest"].as_str().unwrap();
        assert!(blob(&copy, digest).is_file(), "{digest} copied");
    }
    // The strict validator accepts a layout holding an index.
    if have(
        "oci-image-tool",
        "an_index_groups_images_of_several_platforms_under_one_tag",
    ) {
        run_ok(
            Command::new("oci-image-tool")
                .args(["validate", "--type", "image"])
                .arg(&layout),
        );
    }
    // The OCI archive holds the index too.
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}:app", dir.join("mp.tar").display())),
    );
    assert_eq!(
        raw.as_bytes(),
        fs::read(blob(&layout, nested_digest)).unwrap()
    );
}

#[test]
fn an_index_of_unknown_images_or_one_platform_twice_is_refused_with_places() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("bad.kdl"),
        r#"image app-amd64 { layer l { file "/a" "a" } }
image app-x86 { layer l { file "/a" "a" } }
index app {
    image app-amd64
    image app-amd46
    image app-x86
}
"#,
    )
    .unwrap();
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", "bad.kdl"],
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no image named `app-amd46` in this spec"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `app-amd64`?"), "{stderr}");
    assert!(
        stderr.contains("images `app-amd64` and `app-x86` of index `app` are both linux/amd64"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.kdl:5:11"), "{stderr}");
    assert!(stderr.contains("bad.kdl:6:11"), "{stderr}");
    assert!(stderr.contains("2 errors"), "{stderr}");
}
