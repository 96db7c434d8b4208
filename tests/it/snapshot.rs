//! Snapshot testing as a product feature: `strata::testing` and
//! `strata snapshot`, and the project's own specs covered by committed
//! snapshots in specs/snapshots/.

use crate::support::{repo, strata, strata_ok};

/// Every spec of the project has its snapshots committed, and they are current.
/// To accept a reviewed change: `cargo run -p strata-cli -- snapshot specs/NAME.kdl --accept`.
///
/// Specs that install packages from a repository are the exception: they
/// need the network, and what each of their layers holds is pinned, entry
/// by entry, by their lock's listings, which `tests/it/tomcat_debian.rs`
/// checks against a fresh compose.
#[test]
fn the_project_specs_match_their_committed_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let mut specs: Vec<_> = std::fs::read_dir(repo().join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("repository "))
        })
        .collect();
    specs.sort();
    assert!(specs.len() >= 2);
    for spec in specs {
        let out = strata(
            tmp.path(),
            &tmp.path().join("cache"),
            &["snapshot", spec.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}: snapshots differ or are missing:\n{}\nreview, then run `cargo run -p strata-cli -- snapshot {} --accept`",
            spec.display(),
            String::from_utf8_lossy(&out.stdout),
            spec.strip_prefix(repo()).unwrap_or(&spec).display()
        );
    }
}

#[test]
fn the_library_api_gives_per_image_per_layer_listings() {
    let snap = strata::testing::snapshot_with(
        &repo().join("specs/tomcat.kdl"),
        Some(tempfile::tempdir().unwrap().path().to_path_buf()),
    )
    .unwrap();
    let names: Vec<&str> = snap.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["centos", "tomcat"]);
    let tomcat = snap.image("tomcat").unwrap();
    let layers: Vec<&str> = tomcat.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        layers,
        [
            "centos/rootfs",
            "tomcat/jdk",
            "tomcat/tomcat",
            "tomcat/webapp"
        ]
    );
    assert!(
        tomcat.layers[3]
            .listing
            .contains("/usr/local/apache-tomcat-8.5.34/webapps/ROOT/index.jsp file 0644 0:0")
    );
    assert!(
        tomcat
            .config
            .contains("cmd: [\"/usr/local/apache-tomcat-8.5.34/bin/catalina.sh\",\"run\"]"),
        "{}",
        tomcat.config
    );
    // The same layer reads the same in both images.
    assert_eq!(snap.image("centos").unwrap().layers[0], tomcat.layers[0]);
}

#[test]
fn a_changed_image_fails_with_a_diff_and_accept_updates_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let spec = tmp.path().join("app.kdl");
    std::fs::write(&spec, "image app {\n    layer etc { file \"/etc/motd\" \"hello\\n\" }\n    cmd \"/bin/true\"\n}\n").unwrap();

    let out = strata(tmp.path(), &cache, &["snapshot", "app.kdl"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing snapshot is a failure"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing"));
    let written = strata_ok(tmp.path(), &cache, &["snapshot", "app.kdl", "--accept"]);
    assert!(written.contains("wrote"), "{written}");
    let snap_file = tmp.path().join("snapshots/app.app.snap");
    let text = std::fs::read_to_string(&snap_file).unwrap();
    assert!(text.contains("/etc/motd file 0644 0:0 6 sha256:"), "{text}");
    strata_ok(tmp.path(), &cache, &["snapshot", "app.kdl"]);

    std::fs::write(&spec, "image app {\n    layer etc { file \"/etc/motd\" \"hello\\n\" mode=0o600 }\n    cmd \"/bin/true\"\n}\n").unwrap();
    let out = strata(tmp.path(), &cache, &["snapshot", "app.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("-  /etc/motd file 0644") && report.contains("+  /etc/motd file 0600"),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(&snap_file).unwrap(),
        text,
        "check mode never writes"
    );
    strata_ok(tmp.path(), &cache, &["snapshot", "app.kdl", "--accept"]);
    strata_ok(tmp.path(), &cache, &["snapshot", "app.kdl"]);
}
