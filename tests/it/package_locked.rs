//! `compose --locked` against a spec that drifted from its lock (issue 18),
//! both ways: a package the spec asks for that the lock lacks, and one the
//! lock pins that the spec no longer asks for (a dropped request). Each is
//! an error naming the package and the place in the spec, exit 4. And the
//! reason a packages layer missed the cache names a few of its changed
//! packages, not hundreds. Offline, from a repository the test signs.

use std::fs;

use strata_testkit::debrepo::{SignedRepo, build_deb, have_tools};

use crate::support::{strata, strata_ok};

const IMAGE: &str = "image app {\n    layer app { packages PKGS }\n}\n";

#[test]
fn locked_composes_refuse_a_request_the_lock_lacks_and_one_the_spec_dropped() {
    let test = "locked_composes_refuse_a_request_the_lock_lacks_and_one_the_spec_dropped";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    build_deb(
        &repo.root,
        "app",
        "1.0",
        "amd64",
        &["Depends: lib | altlib"],
    );
    build_deb(&repo.root, "lib", "1.0", "amd64", &[]);
    build_deb(&repo.root, "altlib", "1.0", "amd64", &[]);
    build_deb(&repo.root, "extra", "2", "all", &["Depends: helper"]);
    build_deb(&repo.root, "helper", "3", "amd64", &["Provides: helping"]);
    build_deb(&repo.root, "tool", "1", "amd64", &[]);
    repo.publish();
    let spec = |pkgs: &str| repo.write_spec("app.kdl", &IMAGE.replace("PKGS", pkgs));
    spec("\"app\" \"extra\"");
    strata_ok(&repo.dir, &repo.cache, &["lock", "app.kdl"]);
    let lock = fs::read_to_string(repo.dir.join("app.lock")).unwrap();
    assert_eq!(lock.matches("\n  package ").count(), 4, "{lock}");
    // As locked: installs.
    strata_ok(
        &repo.dir,
        &repo.cache,
        &["compose", "app.kdl", "--locked", "-o", "out", "-q"],
    );
    let locked = |name: &str| {
        let out = strata(
            &repo.dir,
            &repo.cache,
            &["compose", "app.kdl", "--locked", "-o", name, "-q"],
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains("strata lock"), "{err}");
        err
    };
    // A request the lock lacks: named, at its place in the spec.
    spec("\"app\" \"extra\" \"tool\"");
    let err = locked("out2");
    assert!(
        err.contains("app.kdl:3:")
            && err.contains("`tool`, which the lock does not pin for this layer"),
        "{err}"
    );
    // A request dropped: the lock's extra, and the helper only it needs,
    // are wanted by nothing the spec asks for.
    spec("\"app\"");
    let err = locked("out3");
    assert!(
        err.contains("app.kdl:3:")
            && err
                .contains("the lock pins `extra 2` and 1 more, which the spec no longer asks for"),
        "{err}"
    );
    // What is needed only through an alternative or a dependency is not
    // a dropped request: the lock made for `extra` alone holds for it.
    spec("\"extra\"");
    strata_ok(&repo.dir, &repo.cache, &["lock", "app.kdl"]);
    strata_ok(
        &repo.dir,
        &repo.cache,
        &["compose", "app.kdl", "--locked", "-o", "out4", "-q"],
    );
    spec("\"app\"");
    strata_ok(&repo.dir, &repo.cache, &["lock", "app.kdl"]);
    let lock = fs::read_to_string(repo.dir.join("app.lock")).unwrap();
    assert!(lock.contains("  package lib 1.0 amd64 "), "{lock}");
    strata_ok(
        &repo.dir,
        &repo.cache,
        &["compose", "app.kdl", "--locked", "-o", "out5", "-q"],
    );
}

#[test]
fn a_packages_layer_miss_names_a_few_changes_and_counts_the_rest() {
    let test = "a_packages_layer_miss_names_a_few_changes_and_counts_the_rest";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    let names: Vec<String> = (10..40).map(|i| format!("pkg{i}")).collect();
    for n in &names {
        build_deb(&repo.root, n, "1", "all", &[]);
    }
    build_deb(&repo.root, "aaa", "1", "all", &[]);
    repo.publish();
    let quoted = |ns: &[String]| {
        ns.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    repo.write_spec("app.kdl", &IMAGE.replace("PKGS", &quoted(&names)));
    strata_ok(
        &repo.dir,
        &repo.cache,
        &["compose", "app.kdl", "-o", "out", "-q"],
    );
    // One more package, first in order: every package's op moves.
    let mut more = vec!["aaa".to_owned()];
    more.extend(names.iter().cloned());
    repo.write_spec("app.kdl", &IMAGE.replace("PKGS", &quoted(&more)));
    let json = strata_ok(
        &repo.dir,
        &repo.cache,
        &["compose", "app.kdl", "-o", "out", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reason = report["images"][0]["layers"][0]["miss_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no miss reason: {json}"));
    let named = reason.split("; ").count();
    assert!(
        named <= 11 && reason.ends_with(" more") && reason.contains("; and "),
        "{reason}"
    );
    let rest: usize = reason
        .rsplit("; and ")
        .next()
        .and_then(|t| t.strip_suffix(" more"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{reason}"));
    assert!(rest >= 20, "{reason}");
}
