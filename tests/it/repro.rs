//! Reproducibility across machines-in-miniature: two clones at different
//! paths, with different umask, `--jobs`, time zone, locale, input mtimes,
//! input owners and cache state, must give byte-identical layouts.

use std::path::Path;
use std::process::Command;

use crate::support::{strata_bin, tree_bytes};

/// Copy the repo's specs (and inputs) into `dest`, as a fresh clone would have them.
fn clone_specs(dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let status = Command::new("cp")
        .arg("-r") // like a clone: modes (and exec bits) kept, fresh mtimes and owner
        .arg(crate::support::repo().join("specs"))
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    // cp without preserved modes keeps the exec bit of executables (mode & umask);
    // make sure the demo's static executable stayed executable.
    let hello = dest.join("specs/inputs/hello");
    let mode = std::fs::metadata(&hello).unwrap().permissions();
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0,
        "hello lost its exec bit in the copy"
    );
}

fn compose_in(
    clone: &Path,
    cache: &Path,
    spec: &str,
    extra_env: &[(&str, &str)],
    umask: &str,
    jobs: &str,
) {
    let script = format!(
        "umask {umask} && exec \"$0\" compose specs/{spec}.kdl --out out/{spec} --docker-archive out/{spec}.tar --jobs {jobs} --quiet"
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .arg(strata_bin())
        .current_dir(clone)
        .env("STRATA_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "compose in {}: {}",
        clone.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_clones_on_different_machines_give_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("somewhere/else/b");
    clone_specs(&a);
    clone_specs(&b);

    // Clone b: other mtimes, other owners (where we may chown), other permission bits on
    // non-executables, other directory creation order (recreate the inputs dir in reverse).
    let inputs = b.join("specs/inputs");
    let mut names: Vec<_> = std::fs::read_dir(&inputs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let shuffled = b.join("specs/inputs.new");
    std::fs::create_dir(&shuffled).unwrap();
    for (i, n) in names.iter().rev().enumerate() {
        let to = shuffled.join(n);
        std::fs::rename(inputs.join(n), &to).unwrap();
        filetime::set_file_mtime(
            &to,
            filetime::FileTime::from_unix_time(1_000_000_000 + i as i64 * 7919, 0),
        )
        .unwrap();
        let mode = std::fs::metadata(&to).unwrap().permissions();
        let bits = std::os::unix::fs::PermissionsExt::mode(&mode);
        let new = if bits & 0o111 != 0 { 0o700 } else { 0o600 };
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(new)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&to, Some(4242), Some(4242)).unwrap();
        }
    }
    std::fs::remove_dir(&inputs).unwrap();
    std::fs::rename(&shuffled, &inputs).unwrap();

    for spec in ["tomcat", "hello"] {
        let cache_a = tmp.path().join("cache-a");
        let cache_b = tmp.path().join("cache-b");
        compose_in(
            &a,
            &cache_a,
            spec,
            &[("TZ", "UTC"), ("LC_ALL", "C")],
            "022",
            "1",
        );
        compose_in(
            &b,
            &cache_b,
            spec,
            &[
                ("TZ", "Asia/Kathmandu"),
                ("LC_ALL", "C.UTF-8"),
                ("LANG", "de_DE.UTF-8"),
            ],
            "077",
            "8",
        );
        let out_a = tree_bytes(&a.join("out").join(spec));
        let out_b = tree_bytes(&b.join("out").join(spec));
        assert!(!out_a.is_empty());
        let names_a: Vec<&String> = out_a.iter().map(|(n, _)| n).collect();
        let names_b: Vec<&String> = out_b.iter().map(|(n, _)| n).collect();
        assert_eq!(names_a, names_b, "{spec}: the same blobs");
        assert!(out_a == out_b, "{spec}: layouts differ in bytes");
        let ar_a = std::fs::read(a.join(format!("out/{spec}.tar"))).unwrap();
        let ar_b = std::fs::read(b.join(format!("out/{spec}.tar"))).unwrap();
        assert!(ar_a == ar_b, "{spec}: docker-archives differ");

        // Warm cache in b: the same bytes again.
        compose_in(&b, &cache_b, spec, &[], "022", "2");
        assert!(
            tree_bytes(&b.join("out").join(spec)) == out_a,
            "{spec}: warm compose differs from cold"
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
