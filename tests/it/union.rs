//! The union filesystem end to end, through the `strata` binary: `run`
//! layers on a busybox-static base (the image then runs and shows exactly
//! what the command changed), `from-dir` layers, and `rootfs`, `squash` and
//! `commit` on a composed layout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata::union::model::{describe, read_dir_tree};

use crate::support::{have, run_ok, strata, strata_ok};

/// A spec directory whose `base.tar` is a busybox-static root file system:
/// `/bin/busybox`, `/bin/sh -> busybox`, a few files to change and delete.
pub(crate) fn busybox_dir(tmp: &Path) -> PathBuf {
    let busybox = run_ok(Command::new("sh").args(["-c", "command -v busybox"]));
    let busybox = fs::canonicalize(busybox.trim()).expect("busybox path");
    let dir = tmp.join("spec");
    fs::create_dir_all(&dir).unwrap();
    let mut b = tar::Builder::new(fs::File::create(dir.join("base.tar")).unwrap());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for d in [
        "bin",
        "etc",
        "proc",
        "dev",
        "tmp",
        "var",
        "var/cache",
        "var/cache/apt",
    ] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, format!("{d}/"), &[][..]).unwrap();
    }
    let bytes = fs::read(&busybox).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o755, bytes.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bytes[..]).unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "bin/sh", "busybox").unwrap();
    for (path, content) in [
        ("etc/motd", "hello\n"),
        ("etc/old", "old\n"),
        ("etc/keep", "keep\n"),
        ("var/cache/apt/a.bin", "a\n"),
        ("var/cache/apt/b.bin", "b\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, content.len() as u64);
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap();
    dir
}

const BASE: &str = r#"
image base {
    rootfs "base.tar"
    env PATH="/bin"
}
"#;

/// The listing lines of layer `n` (1-based) in `strata inspect --files`.
pub(crate) fn layer_files(inspect: &str, n: usize) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in inspect.lines() {
        if line.starts_with("  files of layer ") {
            inside = line.starts_with(&format!("  files of layer {n} "));
            continue;
        }
        if inside {
            if !line.starts_with("    ") {
                inside = false;
                continue;
            }
            out.push_str(line.trim_start());
            out.push('\n');
        }
    }
    out
}

/// `sh -c SCRIPT` in the image's root file system, unpacked by umoci, under
/// runc as root, else in a user-namespace chroot.
fn run_in_image(layout: &Path, tag: &str, script: &str, tmp: &Path) -> String {
    let bundle = tmp.join(format!("bundle-{tag}"));
    let root = strata::union::running_as_root();
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !root {
        unpack.arg("--rootless");
    }
    run_ok(
        unpack
            .arg("--image")
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&bundle),
    );
    if root && have("runc", "run layers: runc") {
        let path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = serde_json::Value::Bool(false);
        config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        return run_ok(
            Command::new("runc")
                .arg("--root")
                .arg(tmp.join("runc-state"))
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("strata-union-{}-{tag}", std::process::id())),
        );
    }
    run_ok(
        Command::new("unshare")
            .args(["-Urm", "--fork", "--pid", "chroot"])
            .arg(bundle.join("rootfs"))
            .args(["/bin/sh", "-c", script]),
    )
}

#[test]
fn a_run_layer_holds_exactly_what_the_command_changed() {
    let test = "a_run_layer_holds_exactly_what_the_command_changed";
    if !have("busybox", test) || !have("unshare", test) || !have("umoci", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    fs::write(
        dir.join("s.kdl"),
        format!(
            r#"{BASE}
image app {{
    from base
    env GREETING="hi from env"
    workdir "/work"
    layer change {{
        run "echo new > /etc/new && echo changed >> /etc/motd && rm /etc/old"
        run "rm -rf /var/cache/apt && mkdir /var/cache/apt && echo fresh > /var/cache/apt/f.bin && echo kept > /var/cache/apt/g.txt && echo $GREETING > here && ln -s motd /etc/link"
    }}
    layer clean {{ delete "/var/cache/apt/*.bin" }}
    cmd "/bin/sh"
}}
"#
        ),
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:app", "--files"]);
    insta::assert_snapshot!("run_layer_listing", layer_files(&inspect, 2));

    let out = run_in_image(
        &dir.join("out"),
        "app",
        "cat /etc/motd /etc/new /etc/link /work/here; ls /etc; ls /var/cache/apt; test ! -e /etc/old && echo old-gone",
        tmp.path(),
    );
    assert_eq!(
        out,
        "hello\nchanged\nnew\nhello\nchanged\nhi from env\nkeep\nlink\nmotd\nnew\ng.txt\nold-gone\n"
    );

    // A warm compose runs nothing: the run layer's key covers the command,
    // its environment and the layers below, and they did not change.
    let again = strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out2", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&again).unwrap();
    let caches: Vec<&str> = report["images"][1]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cache"].as_str().unwrap_or(""))
        .collect();
    // (The last layer makes the `workdir`.)
    assert_eq!(caches, ["hit", "hit", "hit", "hit"], "{again}");
}

#[test]
fn a_failing_run_step_points_at_its_command() {
    let test = "a_failing_run_step_points_at_its_command";
    if !have("busybox", test) || !have("unshare", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    fs::write(
        dir.join("s.kdl"),
        format!(
            "{BASE}\nimage app {{\n    from base\n    layer bad {{ run \"echo doomed; exit 7\" }}\n}}\n"
        ),
    )
    .unwrap();
    let out = strata(
        &dir,
        &tmp.path().join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "a failed build: {stderr}");
    assert!(
        stderr.contains("the command failed (exit status 7)"),
        "{stderr}"
    );
    assert!(stderr.contains("doomed"), "{stderr}");
    assert!(
        stderr.contains("s.kdl:9:17:"),
        "the diagnostic names the spec line: {stderr}"
    );
}

#[test]
fn a_run_step_on_layers_without_a_shell_is_a_failed_build() {
    let test = "a_run_step_on_layers_without_a_shell_is_a_failed_build";
    if !have("unshare", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spec");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("s.kdl"),
        "image app {\n    layer a { file \"/hello\" \"hi\" }\n    layer r { run \"true\" }\n}\n",
    )
    .unwrap();
    let out = strata(
        &dir,
        &tmp.path().join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_ne!(out.status.code(), Some(3), "not an invalid spec: {stderr}");
    assert!(stderr.contains("no /bin/sh"), "{stderr}");
    assert!(stderr.contains("s.kdl:3:15"), "{stderr}");
}

#[test]
fn a_glob_delete_that_matches_nothing_is_an_error() {
    let test = "a_glob_delete_that_matches_nothing_is_an_error";
    if !have("busybox", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    fs::write(
        dir.join("s.kdl"),
        format!(
            "{BASE}\nimage app {{\n    from base\n    layer c {{ delete \"/etc/*.conf\" }}\n}}\n"
        ),
    )
    .unwrap();
    let out = strata(
        &dir,
        &tmp.path().join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "a failed build: {stderr}");
    assert!(stderr.contains("cannot delete /etc/*.conf"), "{stderr}");
}

/// A tree as text (owners only as root, when they can be set and compared).
fn tree(dir: &Path) -> String {
    describe(
        &read_dir_tree(dir).unwrap(),
        strata::union::running_as_root(),
    )
}

#[test]
fn rootfs_commit_from_dir_and_squash_agree() {
    let test = "rootfs_commit_from_dir_and_squash_agree";
    if !have("busybox", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    fs::write(dir.join("s.kdl"), BASE).unwrap();
    let cache = tmp.path().join("cache");
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );

    // The union view, changed the way a container would change it.
    strata_ok(&dir, &cache, &["rootfs", "out:base", "changed"]);
    let changed = dir.join("changed");
    fs::write(changed.join("etc/motd"), "changed\n").unwrap();
    fs::remove_file(changed.join("etc/old")).unwrap();
    fs::remove_dir_all(changed.join("var/cache/apt")).unwrap();
    fs::create_dir(changed.join("var/cache/apt")).unwrap();
    fs::write(changed.join("var/cache/apt/new"), "new\n").unwrap();
    fs::create_dir(changed.join("srv")).unwrap();
    std::os::unix::fs::symlink("../etc/keep", changed.join("srv/keep")).unwrap();
    let expected = tree(&changed);

    // `commit` records it as one more layer, with whiteouts and an opaque directory.
    let out = strata_ok(
        &dir,
        &cache,
        &["commit", "out:base", "changed", "--tag", "committed"],
    );
    assert!(out.starts_with("committed sha256:"), "{out}");
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:committed", "--files"]);
    insta::assert_snapshot!("commit_layer_listing", layer_files(&inspect, 2));
    strata_ok(&dir, &cache, &["rootfs", "out:committed", "committed-root"]);
    assert_eq!(tree(&dir.join("committed-root")), expected, "commit");

    // `from-dir` in a spec gives the same union.
    fs::write(
        dir.join("s.kdl"),
        format!(
            "{BASE}\nimage snap {{\n    from base\n    layer snap {{ from-dir \"changed\" }}\n}}\n"
        ),
    )
    .unwrap();
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out2", "--quiet"],
    );
    strata_ok(&dir, &cache, &["rootfs", "out2:snap", "snap-root"]);
    assert_eq!(tree(&dir.join("snap-root")), expected, "from-dir");

    // `squash` keeps the union in one layer, and the other images of the layout.
    let out = strata_ok(&dir, &cache, &["squash", "out:committed", "--tag", "flat"]);
    assert!(out.starts_with("flat sha256:"), "{out}");
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:flat"]);
    assert_eq!(inspect.matches("  layer ").count(), 1, "{inspect}");
    strata_ok(&dir, &cache, &["rootfs", "out:flat", "flat-root"]);
    assert_eq!(tree(&dir.join("flat-root")), expected, "squash");
    let tags: Vec<String> = crate::support::index_digests(&dir.join("out"))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(tags, ["base", "committed", "flat"]);

    // `rootfs` refuses to write into a directory that has files.
    let out = strata(&dir, &cache, &["rootfs", "out:base", "changed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an empty directory"));
}
