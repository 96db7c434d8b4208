//! The `strata` command's contract: exit codes, errors that point at the
//! problem, help that teaches, stdout for data only.

use std::path::Path;

use crate::support::{repo, strata, strata_ok};

fn write_spec(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("spec.kdl");
    std::fs::write(&p, text).unwrap();
    p
}

/// stderr with the temporary directory replaced, for snapshots.
fn stderr_of(out: &std::process::Output, tmp: &Path) -> String {
    String::from_utf8_lossy(&out.stderr).replace(tmp.to_str().unwrap(), "[TMP]")
}

#[test]
fn an_invalid_spec_exits_3_and_shows_every_problem_with_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        r#"image base {
    layer one {
        file "/etc/motd" "hi" mode="644"
    }
    cmd "/bin/sh"
}
image app {
    from bsae
    layr two { mkdir "/x" }
}
"#,
    );
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", "spec.kdl"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        stderr_of(&out, tmp.path())
    );
    assert!(out.stdout.is_empty(), "stdout carries data only");
    insta::assert_snapshot!("invalid_spec_stderr", stderr_of(&out, tmp.path()));
}

/// Compose `text` as a spec in a temporary directory; it must be refused as
/// invalid (exit 3). Returns stderr with the directory replaced.
fn invalid_spec_stderr(text: &str) -> String {
    failed_compose_stderr(text, 3)
}

/// Compose `text` as a spec in a temporary directory; it must fail with
/// `code`. Returns stderr with the directory replaced.
fn failed_compose_stderr(text: &str, code: i32) -> String {
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), text);
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", "spec.kdl"],
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        stderr_of(&out, tmp.path())
    );
    stderr_of(&out, tmp.path())
}

#[test]
fn a_missing_input_points_at_the_spec() {
    let err = invalid_spec_stderr(
        "image a {\n    layer l {\n        copy \"nope.txt\" to=\"/\"\n    }\n}\n",
    );
    assert!(err.contains("spec.kdl:3:14"), "{err}");
    assert!(err.contains("nope.txt: no such file or directory"), "{err}");
}

#[test]
fn deleting_what_no_lower_layer_has_points_at_the_delete() {
    // A failed build (5), located like a spec error.
    let err = failed_compose_stderr(
        "image a {\n    layer one { file \"/etc/motd\" \"hi\" }\n    layer two {\n        delete \"/etc/motd\"\n        delete \"/etc/nothing\"\n    }\n}\n",
        5,
    );
    assert!(err.contains("spec.kdl:5:9"), "{err}");
    assert!(err.contains("cannot delete /etc/nothing"), "{err}");
    assert!(
        !err.contains("/etc/motd:"),
        "the valid delete is not reported: {err}"
    );
}

#[test]
fn an_output_path_that_is_a_file_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("precious");
    std::fs::write(&file, b"keep me").unwrap();
    let spec = repo().join("specs/hello.kdl");
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", spec.to_str().unwrap(), "--out", "precious"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out, tmp.path());
    assert!(err.contains("precious"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(tmp.path(), &tmp.path().join("cache"), &["compose"]);
    assert_eq!(out.status.code(), Some(2));
    let help = strata_ok(tmp.path(), &tmp.path().join("cache"), &["--help"]);
    assert!(help.contains("strata compose specs/tomcat.kdl"), "{help}");
    assert!(help.contains("Exit codes"), "{help}");
    let help = strata_ok(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", "--help"],
    );
    for flag in [
        "--out",
        "--docker-archive",
        "--jobs",
        "--json",
        "--cache-dir",
        "SOURCE_DATE_EPOCH",
    ] {
        assert!(help.contains(flag), "compose --help lacks {flag}:\n{help}");
    }
}

#[test]
fn plan_prints_text_and_dot() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = repo().join("specs/tomcat.kdl");
    let text = strata_ok(
        tmp.path(),
        &tmp.path().join("cache"),
        &["plan", spec.to_str().unwrap()],
    );
    assert!(text.contains("image tomcat:latest"), "{text}");
    let dot = strata_ok(
        tmp.path(),
        &tmp.path().join("cache"),
        &["plan", spec.to_str().unwrap(), "--dot"],
    );
    assert!(dot.starts_with("digraph strata {"), "{dot}");
    assert!(dot.contains("\"centos/rootfs\" -> \"tomcat/jdk\""), "{dot}");
    assert!(dot.contains("subgraph cluster_legend"), "a legend: {dot}");
    // An index is a node of its own, its images pointing at it; a copy
    // from another image is a dotted edge from that image's top layer.
    let spec = tmp.path().join("multi.kdl");
    std::fs::write(
        &spec,
        "image a { platform \"linux/amd64\"; layer l { file \"/a\" \"a\" } }\n\
         image b { platform \"linux/arm64\"; layer l { file \"/b\" \"b\" } }\n\
         image slim { layer c { copy \"/a\" from=\"a\" to=\"/a\" } }\n\
         index multi { image \"a\"; image \"b\"; }\n",
    )
    .unwrap();
    let dot = strata_ok(
        tmp.path(),
        &tmp.path().join("cache"),
        &["plan", spec.to_str().unwrap(), "--dot"],
    );
    for want in [
        "\"index:multi\" [shape=folder, label=\"multi\"]",
        "\"image:a\" -> \"index:multi\"",
        "\"image:b\" -> \"index:multi\"",
        "\"a/l\" -> \"slim/c\" [style=dotted]",
    ] {
        assert!(dot.contains(want), "{want} in {dot}");
    }
}

#[test]
fn inspect_an_unknown_tag_names_the_ones_there() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let spec = repo().join("specs/hello.kdl");
    strata_ok(
        tmp.path(),
        &cache,
        &[
            "compose",
            spec.to_str().unwrap(),
            "--out",
            "layout",
            "--quiet",
        ],
    );
    let listing = strata_ok(tmp.path(), &cache, &["inspect", "layout:hello", "--files"]);
    assert!(listing.contains("/hello file 0755 0:0"), "{listing}");
    let out = strata(tmp.path(), &cache, &["inspect", "layout:nginx"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out, tmp.path());
    assert!(err.contains("nginx") && err.contains("hello"), "{err}");
}

#[test]
fn an_unknown_base_image_suggests_the_closest_name() {
    let err = invalid_spec_stderr(
        "image base {\n    layer one { mkdir \"/x\" }\n}\nimage app {\n    from bsae\n}\n",
    );
    assert!(err.contains("no image named `bsae` in this spec"), "{err}");
    assert!(err.contains("spec.kdl:5:10"), "{err}");
    assert!(err.contains("did you mean `base`?"), "{err}");
}
