//! The layering budget (issue 18): `packages ... layers=N` splits a
//! layer's package set so that the images of one spec that install the same
//! packages share layers. Three images each install a big shared package
//! (a stand-in for the JRE) and one of their own: with `layers=2` the shared
//! package is one layer all three store once, and the layout is smaller
//! than without the budget; the lock records each part, and `--locked`
//! gives the same digests. Offline, from a repository the test makes and
//! signs itself.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use strata_testkit::debrepo::{build_deb_with, have_tools, index_and_sign};

use crate::support::{index_digests, strata_ok};

/// Bytes of the distinct blobs a layout stores.
fn stored(layout: &Path) -> u64 {
    fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// The layer digests of an image of a layout, lowest first.
fn layers(layout: &Path, image: &str) -> Vec<String> {
    let (_, manifest) = index_digests(layout)
        .into_iter()
        .find(|(name, _)| name == image)
        .unwrap_or_else(|| panic!("no image {image}"));
    let blob = layout
        .join("blobs/sha256")
        .join(manifest.trim_start_matches("sha256:"));
    let m: serde_json::Value = serde_json::from_slice(&fs::read(blob).unwrap()).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_layering_budget_makes_images_share_their_common_packages() {
    let test = "a_layering_budget_makes_images_share_their_common_packages";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (root, gnupg, cache) = (
        tmp.path().join("repo"),
        tmp.path().join("gnupg"),
        tmp.path().join("cache"),
    );
    // Incompressible, so that sharing shows in the bytes stored.
    let mut big = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while big.len() < 300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.push_str(&format!("{x:016x}"));
    }
    build_deb_with(
        &root,
        "jre",
        "17",
        "amd64",
        &["Depends: libz"],
        &[("usr/lib/jvm/rt.data", &big)],
    );
    build_deb_with(&root, "libz", "1", "amd64", &[], &[]);
    for app in ["tomcat", "ant", "jetty"] {
        build_deb_with(&root, app, "1", "all", &["Depends: jre"], &[]);
    }
    let key = index_and_sign(&root, &gnupg);
    let dir = tmp.path().join("spec");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("test.gpg"), &key).unwrap();
    let spec = |budget: &str| {
        let mut s = format!(
            "repository test url=\"file://{}\" suite=\"stable\" keyring=\"test.gpg\"\n",
            root.display()
        );
        for app in ["tomcat", "ant", "jetty"] {
            s.push_str(&format!(
                "image {app} {{\n    layer app {{ packages \"{app}\"{budget} }}\n}}\n"
            ));
        }
        s
    };
    fs::write(dir.join("one.kdl"), spec("")).unwrap();
    fs::write(dir.join("split.kdl"), spec(" layers=2")).unwrap();
    strata_ok(&dir, &cache, &["compose", "one.kdl", "-o", "one", "-q"]);
    strata_ok(&dir, &cache, &["lock", "split.kdl", "-o", "split", "-q"]);

    let (one, split) = (dir.join("one"), dir.join("split"));
    let mut lowest = BTreeSet::new();
    for app in ["tomcat", "ant", "jetty"] {
        assert_eq!(layers(&one, app).len(), 1, "{app} without a budget");
        let l = layers(&split, app);
        assert_eq!(l.len(), 2, "{app} with layers=2: {l:?}");
        lowest.insert(l[0].clone());
    }
    assert_eq!(lowest.len(), 1, "the shared part is one layer: {lowest:?}");
    let (bytes_one, bytes_split) = (stored(&one), stored(&split));
    eprintln!("stored: {bytes_one} bytes with one layer each, {bytes_split} with layers=2");
    assert!(
        bytes_split * 2 < bytes_one,
        "sharing stores less: {bytes_split} against {bytes_one}"
    );

    // The lock names each part; `--locked` installs them as they were.
    let lock = fs::read_to_string(dir.join("split.lock")).unwrap();
    for part in ["layer tomcat/app~1", "layer tomcat/app"] {
        assert!(lock.contains(&format!("\n{part}\n")), "{part} in:\n{lock}");
    }
    let shared_lines: Vec<&str> = lock
        .split("\nlayer ")
        .filter(|l| l.starts_with("tomcat/app~1\n"))
        .flat_map(|l| l.lines().filter(|x| x.trim_start().starts_with("package ")))
        .collect();
    assert_eq!(shared_lines.len(), 2, "jre and libz: {shared_lines:?}");
    strata_ok(
        &dir,
        &cache,
        &["compose", "split.kdl", "--locked", "-o", "again", "-q"],
    );
    assert_eq!(index_digests(&dir.join("again")), index_digests(&split));
}
