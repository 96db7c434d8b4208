//! One exit code per kind of failure, as the README and `strata --help` list
//! them: 2 usage, 3 invalid spec, 4 lock drift, 5 a failed build (a `run`
//! command, a refused tarball, a `delete` of a missing path, no `/bin/sh`),
//! 1 anything else (I/O, the cache). Issue 19: failed builds exited 3 or 1.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::{have, strata, strata_ok};
use crate::union::busybox_dir;

/// `strata compose s.kdl` in `dir`, with `spec` written to `s.kdl` first.
fn compose(dir: &Path, spec: &str, extra: &[&str]) -> Output {
    fs::write(dir.join("s.kdl"), spec).unwrap();
    let mut args = vec!["compose", "s.kdl", "--out", "out", "--quiet"];
    args.extend_from_slice(extra);
    strata(dir, &dir.join("cache"), &args)
}

fn assert_code(out: &Output, code: i32, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{what}: {stderr}");
    stderr
}

/// A tarball that writes through a symlink of its own: `app -> /`, then
/// `app/run`, which every unpacker must refuse.
fn hostile_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, "app", "/").unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    b.append_data(&mut h, "app/run", &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(tmp.path(), &tmp.path().join("cache"), &["compose"]);
    assert_code(&out, 2, "no spec");
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", "s.kdl", "--no-such-flag"],
    );
    assert_code(&out, 2, "an unknown flag");
}

#[test]
fn an_invalid_spec_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let out = compose(tmp.path(), "image app {\n    bogus 1\n}\n", &[]);
    let err = assert_code(&out, 3, "an unknown node");
    assert!(err.contains("s.kdl:2:5"), "located: {err}");
}

#[test]
fn lock_drift_exits_4() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("s.kdl"),
        "image app {\n    layer l { file \"/a\" \"one\" }\n}\n",
    )
    .unwrap();
    strata_ok(dir, &dir.join("cache"), &["lock", "s.kdl", "--quiet"]);
    let out = compose(
        dir,
        "image app {\n    layer l { file \"/a\" \"two\" }\n}\n",
        &["--locked"],
    );
    assert_code(&out, 4, "the layer drifted from the lock");
}

#[test]
fn a_delete_of_a_missing_path_exits_5() {
    let tmp = tempfile::tempdir().unwrap();
    let out = compose(
        tmp.path(),
        "image app {\n    layer a { file \"/a\" \"x\" }\n    layer d { delete \"/nope\" }\n}\n",
        &[],
    );
    let err = assert_code(&out, 5, "a delete of a missing path");
    assert!(err.contains("cannot delete /nope"), "{err}");
    assert!(err.contains("s.kdl:3:15"), "located: {err}");
    assert!(err.contains("the build failed: 1 error in s.kdl"), "{err}");
}

#[test]
fn a_refused_tarball_exits_5() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("evil.tar"), hostile_tar()).unwrap();
    let out = compose(tmp.path(), "image app {\n    rootfs \"evil.tar\"\n}\n", &[]);
    let err = assert_code(&out, 5, "a tarball writing through a symlink");
    assert!(err.contains("evil.tar"), "names the tarball: {err}");
}

#[test]
fn a_failing_run_command_and_a_missing_shell_exit_5() {
    let test = "a_failing_run_command_and_a_missing_shell_exit_5";
    if !have("busybox", test) || !have("unshare", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let out = compose(
        &dir,
        "image base {\n    rootfs \"base.tar\"\n    env PATH=\"/bin\"\n}\nimage app {\n    from base\n    layer bad { run \"exit 9\" }\n}\n",
        &[],
    );
    let err = assert_code(&out, 5, "a failing run command");
    assert!(err.contains("exit status 9"), "{err}");

    let out = compose(
        &dir,
        "image app {\n    layer a { file \"/etc/motd\" \"hi\" }\n    layer r { run \"true\" }\n}\n",
        &[],
    );
    let err = assert_code(&out, 5, "a run step on an image without /bin/sh");
    assert!(err.contains("/bin/sh"), "{err}");
}

#[test]
fn a_cache_that_cannot_be_made_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("not-a-dir"), "").unwrap();
    let out = compose(
        tmp.path(),
        "image app {\n    layer a { file \"/a\" \"x\" }\n}\n",
        &["--cache-dir", "not-a-dir/cache"],
    );
    assert_code(&out, 1, "an I/O failure");
}
