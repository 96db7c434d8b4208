//! The digest lock: the committed lock files of the demo specs must match a
//! fresh compose (the golden digests), and `strata compose --locked` fails,
//! naming the layer and the first differing file, when a spec's output moves.

use std::path::Path;

use strata::lock::{Lock, check, lock_path};

use crate::support::{compose, repo, strata, strata_ok};

/// The golden-digest test: `specs/*.lock` is what the demo specs compose to.
#[test]
fn committed_locks_match_a_fresh_compose() {
    let tmp = tempfile::tempdir().unwrap();
    for spec in ["tomcat", "hello"] {
        let report = compose(
            &format!("specs/{spec}.kdl"),
            &tmp.path().join(spec),
            &tmp.path().join("cache"),
        );
        let fresh = Lock::from_report(&report, None);
        let path = lock_path(&repo().join(format!("specs/{spec}.kdl")));
        let update = format!(
            "If the change is intended, regenerate the lock and commit it:\n    \
             cargo run -p strata-cli -- lock specs/{spec}.kdl"
        );
        let committed = Lock::read(&path, Path::new(&format!("specs/{spec}.kdl")))
            .unwrap_or_else(|e| panic!("{e}\n{update}"));
        if let Err(mismatch) = check(&committed, &fresh) {
            panic!(
                "specs/{spec}.kdl no longer composes to the digests of specs/{spec}.lock:\n{mismatch}\n\n{update}"
            );
        }
        // The digests agree; the informative parts (keys, compressor identity,
        // listings) must be current too, so the lock says what it claims.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text == fresh.render(),
            "specs/{spec}.lock has the right digests but stale details (layer keys, compressor \
             identity or listing format changed).\n{update}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const SPEC: &str = r##"image app {
    layer etc {
        copy "motd" to="/etc/motd"
        file "/etc/app.conf" "port = 8080\n"
    }
    layer bin {
        file "/usr/bin/app" "#!/bin/sh\necho hi\n" mode=0o755
    }
    cmd "/usr/bin/app"
}
"##;

#[test]
fn compose_locked_fails_naming_the_layer_and_the_first_differing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    write(dir, "app.kdl", SPEC);
    write(dir, "motd", "welcome\n");

    // No lock yet: --locked says how to make one, before composing.
    let out = strata(dir, &cache, &["compose", "app.kdl", "--locked", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("app.lock: no lock file; write one with `strata lock app.kdl`"),
        "{stderr}"
    );

    let said = strata_ok(dir, &cache, &["lock", "app.kdl"]);
    assert!(
        said.starts_with("wrote app.lock (1 image(s), 2 layer(s)"),
        "{said}"
    );
    let text = std::fs::read_to_string(dir.join("app.lock")).unwrap();
    assert!(text.contains("\nlayer app/etc\n"), "{text}");
    assert!(
        text.contains("\n    /etc/motd file 0644 0:0 8 sha256:"),
        "{text}"
    );
    let said = strata_ok(dir, &cache, &["lock", "app.kdl"]);
    assert!(said.starts_with("up to date: app.lock"), "{said}");
    strata_ok(dir, &cache, &["compose", "app.kdl", "--locked", "--quiet"]);

    // An input changes: the lock catches it and names what moved.
    write(dir, "motd", "welcome back\n");
    let out = strata(dir, &cache, &["compose", "app.kdl", "--locked", "--quiet"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a lock mismatch has its own exit code"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "strata: error: the composed images do not match app.lock",
        "image app: manifest sha256:",
        "layer 1 (app/etc): blob sha256:",
        "its inputs or settings changed",
        "first differing entry: /etc/motd changed",
        "locked: /etc/motd file 0644 0:0 8 sha256:",
        "built:  /etc/motd file 0644 0:0 13 sha256:",
        "hint: every difference: strata diff app.lock target/images/app",
        "hint: if the change is intended, update the lock and commit it: strata lock app.kdl",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains("layer 2 (app/bin)"),
        "an unchanged layer is not blamed:\n{stderr}"
    );

    // --update-lock accepts the change; --locked passes again.
    strata_ok(
        dir,
        &cache,
        &["compose", "app.kdl", "--update-lock", "--quiet"],
    );
    strata_ok(dir, &cache, &["compose", "app.kdl", "--locked", "--quiet"]);
    assert_ne!(std::fs::read_to_string(dir.join("app.lock")).unwrap(), text);
}

#[test]
fn a_damaged_lock_is_an_error_not_a_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    write(dir, "app.kdl", SPEC);
    write(dir, "motd", "welcome\n");
    strata_ok(dir, &cache, &["lock", "app.kdl", "--quiet"]);
    let text = std::fs::read_to_string(dir.join("app.lock")).unwrap();
    // A hand edit (or a bad merge) of a listing line.
    write(
        dir,
        "app.lock",
        &text.replace("/etc/motd file 0644", "/etc/motd file 0600"),
    );
    let out = strata(dir, &cache, &["compose", "app.kdl", "--locked", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the listing of layer app/etc does not match its count and digest"),
        "{stderr}"
    );
}

#[test]
fn same_inputs_other_bytes_is_told_apart_from_changed_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "app.kdl", SPEC);
    write(dir, "motd", "welcome\n");
    let report = compose_in(dir);
    let good = Lock::from_report(&report, None);
    // As if a compressor upgrade changed one blob: same key, same tar.
    let mut moved = good.clone();
    moved.images[0].manifest.0[0] ^= 1;
    moved.images[0].layers[1].1.0[0] ^= 1;
    moved.layers[1].desc.blob.0[0] ^= 1;
    let err = check(&moved, &good).unwrap_err().to_string();
    assert!(
        err.contains("layer 2 (app/bin)")
            && err.contains("the same inputs gave other bytes")
            && err.contains("the uncompressed tar is identical"),
        "{err}"
    );
    assert!(check(&good, &good).is_ok());
}

fn compose_in(dir: &Path) -> strata::ComposeReport {
    let opts = strata::ComposeOptions {
        out: dir.join("out"),
        cache_dir: Some(dir.join("cache")),
        ..Default::default()
    };
    strata::compose(&dir.join("app.kdl"), &opts, &|_| {}).unwrap()
}
