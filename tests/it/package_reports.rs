//! Packages in what strata reports (issue 18): the SBOM lists each package
//! a `packages` layer installs with its purl and its `.deb`'s sha256, and
//! `strata lock` and `strata diff` show package changes as package changes
//! (`name: old -> new`, `+ name version`, `- name version`); a Release past
//! its `Valid-Until` is an error unless the spec's repository says
//! `check-valid-until=#false`. Offline, from a repository the test makes
//! and signs itself.
//!
//! No SBOM scanner (syft, Trivy, Grype) is packaged by Debian or PyPI, so
//! none is run here; what they read, the dpkg status, is checked with dpkg
//! itself in `packages.rs`.

use std::fs;

use serde_json::Value;
use strata_testkit::debrepo::{SignedRepo, build_deb, have_tools, index_and_sign, sign};

use crate::support::{sbom_of, strata_ok};

#[test]
fn sbom_purls_and_package_changes_in_lock_and_diff() {
    let test = "sbom_purls_and_package_changes_in_lock_and_diff";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    let (root, gnupg, cache, dir) = (
        repo.root.clone(),
        repo.gnupg.clone(),
        repo.cache.clone(),
        repo.dir.clone(),
    );
    build_deb(&root, "app", "1.0", "amd64", &["Depends: lib, gone"]);
    build_deb(&root, "lib", "1:1.0+b1", "amd64", &[]);
    build_deb(&root, "gone", "3", "all", &[]);
    repo.publish();
    fs::write(
        dir.join("app.kdl"),
        format!(
            "{}image app {{\n    layer os {{ file \"/etc/os-release\" \"ID=debian\\nVERSION_ID=\\\"12\\\"\\n\" }}\n    layer app {{ packages \"app\" }}\n}}\n",
            repo.repository("")
        ),
    )
    .unwrap();
    let first = strata_ok(&dir, &cache, &["lock", "app.kdl"]);
    assert!(!first.contains("packages of"), "no lock before: {first}");
    let lock1 = fs::read_to_string(dir.join("app.lock")).unwrap();
    fs::write(dir.join("before.lock"), &lock1).unwrap();
    strata_ok(
        &dir,
        &cache,
        &["compose", "app.kdl", "-o", "out1", "--sbom", "-q"],
    );

    // Every package, with its purl and the sha256 the lock records.
    let doc = sbom_of(&dir.join("out1")).0;
    let debs: Vec<&Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-Deb-"))
        .collect();
    let purls: Vec<&str> = debs
        .iter()
        .map(|p| p["externalRefs"][0]["referenceLocator"].as_str().unwrap())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/debian/app@1.0?arch=amd64&distro=debian-12",
            "pkg:deb/debian/gone@3?arch=all&distro=debian-12",
            "pkg:deb/debian/lib@1%3A1.0%2Bb1?arch=amd64&distro=debian-12",
        ]
    );
    for p in &debs {
        let name = p["name"].as_str().unwrap();
        let line = lock1
            .lines()
            .find(|l| l.starts_with(&format!("  package {name} ")))
            .unwrap();
        let sha = line.split(' ').nth(6).unwrap();
        assert_eq!(p["checksums"][0]["checksumValue"], sha, "{name}");
        assert_eq!(p["versionInfo"], line.split(' ').nth(4).unwrap(), "{name}");
    }
    let contains = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["relationshipType"] == "CONTAINS"
                && r["relatedSpdxElement"]
                    .as_str()
                    .unwrap()
                    .starts_with("SPDXRef-Deb-")
        })
        .count();
    assert_eq!(contains, 3, "each package under its layer");

    // The mirror moves on: app 1.1 needs lib 2.0 and extra, not gone.
    build_deb(
        &root,
        "app",
        "1.1",
        "amd64",
        &["Depends: lib (>= 1:2), extra"],
    );
    build_deb(&root, "lib", "1:2.0", "amd64", &[]);
    build_deb(&root, "extra", "1", "all", &[]);
    index_and_sign(&root, &gnupg);
    let relock = strata_ok(&dir, &cache, &["lock", "app.kdl"]);
    let changes = "  app: 1.0 -> 1.1\n  + extra 1\n  - gone 3\n  lib: 1:1.0+b1 -> 1:2.0\n";
    assert!(
        relock.contains(&format!("packages of app/app:\n{changes}")),
        "{relock}"
    );
    strata_ok(&dir, &cache, &["compose", "app.kdl", "-o", "out2", "-q"]);
    let indented = changes.replace("\n  ", "\n    ").replacen("  ", "    ", 1);
    for against in ["out1", "before.lock"] {
        let diff = crate::support::strata(&dir, &cache, &["diff", against, "out2"]);
        let text = String::from_utf8_lossy(&diff.stdout);
        assert!(
            text.contains(&format!("  packages:\n{indented}")),
            "strata diff {against} out2:\n{text}"
        );
    }

    // The spec asks for more than the lock pins: `--locked` does not
    // install the lock's set silently, it says the spec drifted (exit 4).
    let spec = fs::read_to_string(dir.join("app.kdl")).unwrap();
    for (request, says) in [
        (
            "\"app\" \"extra2\"",
            "`extra2`, which the lock does not pin for this layer (no such package in it)",
        ),
        (
            "\"app\" \"lib (>= 1:3)\"",
            "`lib (>= 1:3)`, which the lock does not pin for this layer (it pins 1:2.0)",
        ),
    ] {
        fs::write(
            dir.join("app.kdl"),
            spec.replace("packages \"app\"", &format!("packages {request}")),
        )
        .unwrap();
        let out = crate::support::strata(
            &dir,
            &cache,
            &["compose", "app.kdl", "--locked", "-o", "out3", "-q"],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains(says) && err.contains("strata lock"), "{err}");
    }
    fs::write(dir.join("app.kdl"), &spec).unwrap();
    strata_ok(
        &dir,
        &cache,
        &["compose", "app.kdl", "--locked", "-o", "out3", "-q"],
    );
}

#[test]
fn an_expired_release_is_an_error_unless_the_spec_opts_out() {
    let test = "an_expired_release_is_an_error_unless_the_spec_opts_out";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    let (root, gnupg, cache, dir) = (
        repo.root.clone(),
        repo.gnupg.clone(),
        repo.cache.clone(),
        repo.dir.clone(),
    );
    build_deb(&root, "app", "1", "amd64", &[]);
    repo.publish();
    let release = root.join("dists/stable/Release");
    let text = fs::read_to_string(&release).unwrap();
    fs::write(
        &release,
        format!("Valid-Until: Sat, 01 Jan 2022 00:00:00 UTC\n{text}"),
    )
    .unwrap();
    sign(&root, &gnupg);
    let spec = |opt: &str| {
        fs::write(
            dir.join("app.kdl"),
            format!(
                "{}image app {{\n    layer app {{ packages \"app\" }}\n}}\n",
                repo.repository(opt)
            ),
        )
        .unwrap();
    };
    spec("");
    let out = crate::support::strata(&dir, &cache, &["compose", "app.kdl", "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("dists/stable/InRelease")
            && err.contains("Valid-Until (Sat, 01 Jan 2022 00:00:00 UTC) is past"),
        "{err}"
    );
    spec(" check-valid-until=#false");
    strata_ok(&dir, &cache, &["compose", "app.kdl", "-q"]);
}
