//! `from-dir` records a tree as `docker commit` records a container (issue
//! 19): every mode bit (setuid, setgid, sticky, 0600), owners as root,
//! xattrs, and a change of mode alone; `normalize=#true` keeps the old,
//! checkout-friendly behaviour. And `strata rootfs` gives back each entry's
//! mtime, so that unpack, commit unchanged, is an empty layer.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::{repo, strata_ok};
use crate::union::layer_files;

fn as_root() -> bool {
    strata::union::running_as_root()
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The demo tomcat composed into `dir/layout`, unpacked into `dir/root`.
fn tomcat_tree(dir: &Path, cache: &Path) {
    let spec = repo().join("specs/tomcat.kdl");
    strata_ok(
        dir,
        cache,
        &[
            "compose",
            spec.to_str().unwrap(),
            "--quiet",
            "--out",
            "layout",
        ],
    );
    strata_ok(dir, cache, &["rootfs", "layout:tomcat", "root"]);
}

/// Compose `s.kdl` (tomcat, then `layer` from the directory `root`) and
/// return the file lines of that last layer (layer 5).
fn commit_layer(dir: &Path, cache: &Path, options: &str) -> String {
    fs::write(
        dir.join("s.kdl"),
        format!(
            "image t {{\n    from \"oci:layout:tomcat\"\n    layer c {{ from-dir \"root\"{options} }}\n}}\n"
        ),
    )
    .unwrap();
    strata_ok(dir, cache, &["compose", "s.kdl", "--quiet", "--out", "out"]);
    let inspect = strata_ok(dir, cache, &["inspect", "out:t", "--files"]);
    layer_files(&inspect, 5)
}

#[test]
fn rootfs_restores_mtimes_and_from_dir_of_it_unchanged_is_an_empty_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path(), tmp.path().join("cache"));
    tomcat_tree(dir, &cache);
    let root = dir.join("root");
    // The demo's epoch is 0: every entry the layers hold has mtime 0.
    for p in [
        "etc/os-release",
        "usr/local/jdk1.8.0_191/bin/java",
        "usr",
        "tmp",
    ] {
        let m = fs::symlink_metadata(root.join(p)).unwrap();
        assert_eq!(m.mtime(), 0, "{p}: the layer's mtime, not now");
    }
    assert_eq!(
        fs::symlink_metadata(root.join("bin")).unwrap().mtime(),
        0,
        "a symlink's own mtime"
    );
    assert_eq!(commit_layer(dir, &cache, ""), "", "nothing changed");
    assert_eq!(commit_layer(dir, &cache, " normalize=#true"), "");
}

#[test]
fn from_dir_records_modes_owners_xattrs_and_a_chmod_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path(), tmp.path().join("cache"));
    tomcat_tree(dir, &cache);
    let root = dir.join("root");

    // A mode-only change: the layer holds exactly that file (and the
    // directory above it, as the union has it).
    chmod(&root.join("etc/os-release"), 0o600);
    let layer = commit_layer(dir, &cache, "");
    let files: Vec<&str> = layer.lines().filter(|l| !l.contains(" dir ")).collect();
    assert_eq!(files.len(), 1, "exactly the chmod: {layer}");
    assert!(
        files[0].starts_with("/etc/os-release file 0600 0:0 "),
        "{layer}"
    );
    assert!(layer.contains("/etc/ dir 0755 0:0\n"), "{layer}");
    assert_eq!(layer.lines().count(), 2, "{layer}");

    // setuid, setgid, sticky, a private file, a new directory.
    chmod(&root.join("etc/os-release"), 0o644);
    fs::write(root.join("usr/bin/su-like"), "x").unwrap();
    chmod(&root.join("usr/bin/su-like"), 0o4755);
    fs::create_dir(root.join("srv")).unwrap();
    chmod(&root.join("srv"), 0o2775);
    fs::create_dir(root.join("scratch")).unwrap();
    chmod(&root.join("scratch"), 0o1777);
    fs::write(root.join("etc/secret"), "s").unwrap();
    chmod(&root.join("etc/secret"), 0o600);
    let mut expect = vec![
        "/etc/secret file 0600",
        "/scratch/ dir 1777",
        "/srv/ dir 2775",
        "/usr/bin/su-like file 4755",
    ];
    if as_root() {
        std::os::unix::fs::lchown(root.join("etc/secret"), Some(1000), Some(50)).unwrap();
        expect[0] = "/etc/secret file 0600 1000:50";
    }
    // A `user.*` xattr, which any user may set where the file system allows.
    let set = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys; os.setxattr(sys.argv[1], 'user.strata', b'kept', follow_symlinks=False)",
        ])
        .arg(root.join("usr/bin/su-like"))
        .status();
    if set.is_ok_and(|s| s.success()) {
        expect.push("/usr/bin/su-like file 4755 0:0 1 sha256:");
        expect.push(" xattr=user.strata=kept");
    } else {
        eprintln!("SKIPPED the xattr part: this file system refuses user xattrs (or no python3)");
    }
    let layer = commit_layer(dir, &cache, "");
    for e in &expect {
        assert!(layer.contains(e), "{e} in:\n{layer}");
    }
    assert!(!layer.contains("/etc/os-release"), "changed back: {layer}");

    // The old behaviour, asked for: modes by their exec bit, host owners never.
    let layer = commit_layer(dir, &cache, " normalize=#true");
    assert!(layer.contains("/usr/bin/su-like file 0755 0:0"), "{layer}");
    assert!(layer.contains("/etc/secret file 0644 0:0"), "{layer}");
    assert!(layer.contains("/scratch/ dir 0755 0:0"), "{layer}");
}

#[test]
fn a_chmod_alone_changes_the_from_dir_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path(), tmp.path().join("cache"));
    tomcat_tree(dir, &cache);
    assert_eq!(commit_layer(dir, &cache, ""), "");
    // Same content, another mode: the cached empty layer must not be reused.
    chmod(&dir.join("root/etc/os-release"), 0o640);
    let layer = commit_layer(dir, &cache, "");
    assert!(layer.contains("/etc/os-release file 0640"), "{layer}");
    // ...while `normalize` does not see it (the exec bit did not change).
    let layer = commit_layer(dir, &cache, " normalize=#true");
    assert_eq!(layer, "", "normalised: {layer}");
}

/// A base whose `/tmp` is sticky and world-writable and whose `/srv` is a
/// service's private directory, as a tarball.
fn base_with_special_dirs(dir: &Path) {
    let mut b = tar::Builder::new(fs::File::create(dir.join("base.tar")).unwrap());
    for (path, mode, owner) in [
        ("tmp/", 0o1777, 0),
        ("srv/", 0o750, 33),
        ("srv/www/", 0o2750, 33),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(owner);
        h.set_gid(owner);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, path, &[][..]).unwrap();
    }
    b.into_inner().unwrap();
}

#[test]
fn parents_keep_what_the_layers_below_gave_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path(), tmp.path().join("cache"));
    base_with_special_dirs(dir);
    fs::create_dir_all(dir.join("site/css")).unwrap();
    fs::write(dir.join("site/index.html"), "hi").unwrap();
    fs::write(dir.join("site/css/a.css"), "a").unwrap();
    fs::write(
        dir.join("s.kdl"),
        "image app {\n    rootfs \"base.tar\"\n    layer l {\n        file \"/tmp/y\" \"y\"\n        copy \"site\" to=\"/srv/www/\"\n        file \"/new/deep/z\" \"z\"\n    }\n}\n",
    )
    .unwrap();
    strata_ok(
        dir,
        &cache,
        &["compose", "s.kdl", "--quiet", "--out", "out"],
    );
    let inspect = strata_ok(dir, &cache, &["inspect", "out:app", "--files"]);
    let layer = layer_files(&inspect, 2);
    for line in [
        "/tmp/ dir 1777 0:0",
        "/srv/ dir 0750 33:33",
        // The destination of a directory copy that exists below.
        "/srv/www/ dir 2750 33:33",
        // What the copy brings is the host's, normalised.
        "/srv/www/css/ dir 0755 0:0",
        // Parents nothing below has.
        "/new/ dir 0755 0:0",
        "/new/deep/ dir 0755 0:0",
    ] {
        assert!(layer.contains(&format!("{line}\n")), "{line} in:\n{layer}");
    }
    // The layer read the base: it is planned after it.
    let plan = strata_ok(dir, &cache, &["plan", "s.kdl", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let reads: Vec<bool> = plan["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["reads_below"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(reads, [false, true], "{plan}");
}
