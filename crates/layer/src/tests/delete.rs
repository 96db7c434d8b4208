//! `delete`: whiteouts, opaque directories, and what may not be deleted.

use super::*;

fn base() -> LowerView {
    lower_of(vec![
        file("/etc/motd", b"hello"),
        file("/var/cache/a", b"a"),
        file("/opt/tool/bin", b"b"),
    ])
}

#[test]
fn delete_of_a_lower_file_is_a_whiteout() {
    let (out, blob) = build_on(vec![delete("/etc/motd")], &base()).expect("builds");
    assert_eq!(lines(&out), ["/etc/ dir 0755 0:0", "/etc/motd whiteout"]);
    assert_eq!(
        tar_names(&blob),
        [("etc/".into(), '5'), ("etc/.wh.motd".into(), '0')]
    );
}

#[test]
fn a_deleted_lower_dir_written_again_is_opaque() {
    let (out, blob) = build_on(
        vec![delete("/var/cache"), file("/var/cache/new", b"n")],
        &base(),
    )
    .expect("builds");
    let new = format!("/var/cache/new file 0644 0:0 1 {}", crate::Digest::of(b"n"));
    assert_eq!(
        lines(&out),
        [
            "/var/ dir 0755 0:0",
            "/var/cache/ dir 0755 0:0",
            "/var/cache/ opaque",
            new.as_str()
        ]
    );
    let names: Vec<String> = tar_names(&blob).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "var/",
            "var/cache/",
            "var/cache/.wh..wh..opq",
            "var/cache/new"
        ]
    );
    // Mkdir of the deleted directory is the same case.
    let (out, _) =
        build_on(vec![delete("/var/cache"), mkdir("/var/cache")], &base()).expect("builds");
    assert_eq!(
        lines(&out),
        [
            "/var/ dir 0755 0:0",
            "/var/cache/ dir 0755 0:0",
            "/var/cache/ opaque"
        ]
    );
}

#[test]
fn a_deleted_lower_file_written_again_needs_no_marker() {
    let (out, _) = build_on(
        vec![delete("/etc/motd"), file("/etc/motd", b"new")],
        &base(),
    )
    .expect("builds");
    assert_eq!(lines(&out).len(), 2);
    assert!(lines(&out)[1].starts_with("/etc/motd file 0644 0:0 3 "));
    // A directory replacing a lower file hides nothing: no opaque marker.
    let (out, _) =
        build_on(vec![delete("/etc/motd"), mkdir("/etc/motd")], &base()).expect("builds");
    assert_eq!(
        lines(&out),
        ["/etc/ dir 0755 0:0", "/etc/motd/ dir 0755 0:0"]
    );
    // A file replacing a lower directory replaces it whole.
    let (out, _) = build_on(
        vec![delete("/var/cache"), file("/var/cache", b"f")],
        &base(),
    )
    .expect("builds");
    assert_eq!(lines(&out)[1..].len(), 1);
    assert!(lines(&out)[1].starts_with("/var/cache file"));
}

#[test]
fn deleting_a_missing_path_names_the_op() {
    let err = build_on(vec![file("/x", b""), delete("/nope")], &base()).expect_err("fails");
    assert!(matches!(err, Error::DeleteMissing { op: 1, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "delete /nope: no lower layer has this path"
    );
    // Twice in one layer: the second finds nothing.
    let err = build_on(vec![delete("/etc/motd"), delete("/etc/motd")], &base()).expect_err("fails");
    assert!(matches!(err, Error::DeleteMissing { op: 1, .. }), "{err:?}");
    // Below a directory this layer deleted or made opaque.
    let err = build_on(
        vec![
            delete("/var/cache"),
            mkdir("/var/cache"),
            delete("/var/cache/a"),
        ],
        &base(),
    )
    .expect_err("fails");
    assert!(matches!(err, Error::DeleteMissing { op: 2, .. }), "{err:?}");
    let err = build_on(vec![delete("/")], &base()).expect_err("fails");
    assert!(
        err.to_string().contains("root directory cannot be deleted"),
        "{err}"
    );
}

#[test]
fn deleting_what_this_layer_made_leaves_no_trace() {
    let (out, _) = build_ok(vec![file("/tmp/x", b"x"), delete("/tmp/x")]);
    assert_eq!(lines(&out), ["/tmp/ dir 0755 0:0"]);
    // Deleting a directory drops what this layer put below it, and whites out
    // the lower directory itself.
    let (out, _) = build_on(
        vec![
            file("/opt/tool/new", b"n"),
            mkdir("/opt/tool/d"),
            delete("/opt/tool"),
        ],
        &base(),
    )
    .expect("builds");
    assert_eq!(lines(&out), ["/opt/ dir 0755 0:0", "/opt/tool whiteout"]);
    // A file written over a lower file, then deleted: the lower one is whited out.
    let (out, _) =
        build_on(vec![file("/etc/motd", b"x"), delete("/etc/motd")], &base()).expect("builds");
    assert_eq!(lines(&out), ["/etc/ dir 0755 0:0", "/etc/motd whiteout"]);
}

#[test]
fn a_dir_replacing_a_file_of_this_layer_is_opaque() {
    // The file hid the lower /var/cache; the directory that replaces it must too.
    let (out, _) = build_on(
        vec![file("/var/cache", b"f"), file("/var/cache/b", b"b")],
        &base(),
    )
    .expect("builds");
    assert_eq!(
        lines(&out)[1..3],
        ["/var/cache/ dir 0755 0:0", "/var/cache/ opaque"]
    );
}

#[test]
fn only_delete_reads_the_lower_layers() {
    let ops = vec![
        file("/etc/motd", b"new"),
        mkdir("/var/cache"),
        file("/var/cache/a/b", b"b"),
    ];
    let on_base = build_on(ops.clone(), &base()).expect("builds");
    let on_nothing = build_on(ops, &LowerView::new()).expect("builds");
    assert_eq!(on_base.1, on_nothing.1);
}
