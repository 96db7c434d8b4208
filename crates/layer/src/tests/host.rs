//! `copy` from the host, and the other simple operations.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::tree::{Content, Kind, Node, Tree};
use crate::{Digest, Owner};

fn copy(src: &Path, to: &str, into_dir: bool) -> JobOp {
    JobOp::Copy {
        src: crate::HostInput::open(src).unwrap(),
        to: p(to),
        into_dir,
        mode: None,
        owner: None,
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn copied_files_are_normalised() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let plain = put_file(dir.path(), "index.jsp", b"<html/>");
    chmod(&plain, 0o600);
    let tool = put_file(dir.path(), "tool", b"#!");
    chmod(&tool, 0o700);
    let (out, _) = build_ok(vec![
        copy(&plain, "/www/", true),
        copy(&tool, "/usr/bin/renamed", false),
        JobOp::Copy {
            src: crate::HostInput::open(&plain).unwrap(),
            to: p("/conf/x"),
            into_dir: false,
            mode: Some(0o640),
            owner: Some(Owner { uid: 33, gid: 33 }),
        },
    ]);
    let l = lines(&out);
    assert_eq!(
        l[1],
        format!("/conf/x file 0640 33:33 7 {}", Digest::of(b"<html/>"))
    );
    assert_eq!(
        l[4],
        format!("/usr/bin/renamed file 0755 0:0 2 {}", Digest::of(b"#!"))
    );
    assert_eq!(
        l[6],
        format!("/www/index.jsp file 0644 0:0 7 {}", Digest::of(b"<html/>"))
    );
}

#[test]
fn a_copied_directory_brings_its_contents() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path().join("site");
    fs::create_dir_all(src.join("static/css")).expect("dirs");
    chmod(&src.join("static"), 0o700);
    put_file(&src.join("static/css"), "a.css", b"a{}");
    std::os::unix::fs::symlink("/etc/passwd", src.join("pw")).expect("symlink");
    std::os::unix::fs::symlink("static", src.join("s")).expect("symlink");
    let (out, _) = build_ok(vec![JobOp::Copy {
        src: crate::HostInput::open(&src).unwrap(),
        to: p("/srv"),
        into_dir: false,
        mode: Some(0o600),
        owner: Some(Owner { uid: 1, gid: 2 }),
    }]);
    assert_eq!(
        lines(&out),
        [
            "/srv/ dir 0755 1:2",
            "/srv/pw symlink 0777 1:2 -> /etc/passwd",
            "/srv/s symlink 0777 1:2 -> static",
            "/srv/static/ dir 0755 1:2",
            "/srv/static/css/ dir 0755 1:2",
            format!(
                "/srv/static/css/a.css file 0600 1:2 3 {}",
                Digest::of(b"a{}")
            )
            .as_str(),
        ]
    );
}

#[test]
fn special_and_reserved_host_files_are_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path().join("d");
    fs::create_dir(&src).expect("dir");
    let sock = src.join("control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("a socket");
    let (err, msg) = fails(vec![copy(&src, "/x", false)]);
    assert!(matches!(err, Error::Host { .. }), "{err:?}");
    assert_eq!(
        msg,
        format!(
            "{}: is a socket: only files, directories and symlinks can be copied",
            sock.display()
        )
    );
    // Given directly, it is not even opened (the planner reports it).
    let err = crate::HostInput::open(&sock).expect_err("a socket is no input");
    assert!(
        err.to_string()
            .contains("not a regular file or a directory"),
        "{err}"
    );

    let src = dir.path().join("e");
    fs::create_dir(&src).expect("dir");
    put_file(&src, ".wh.sneaky", b"");
    let (_, msg) = fails(vec![copy(&src, "/x", false)]);
    assert!(
        msg.ends_with(".wh.sneaky: names starting with .wh. are reserved for whiteouts"),
        "{msg}"
    );

    assert!(crate::HostInput::open(&dir.path().join("missing")).is_err());
}

#[test]
fn a_host_file_that_changes_size_is_an_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // A small file (read ahead on the pool) and a large one (streamed).
    let small = put_file(dir.path(), "f", b"12345");
    let large = put_file(dir.path(), "g", &vec![7u8; (1 << 20) + 5]);
    for (path, listed) in [
        (&small, 3u64),
        (&small, 8),
        (&large, 1 << 20),
        (&large, (1 << 20) + 9),
    ] {
        let lower = LowerView::new();
        let mut tree = Tree::new(&lower);
        let kind = Kind::File {
            content: Content::Host(path.clone()),
            size: listed,
            group: None,
        };
        tree.put(p("/f"), Node::new(kind, 0o644, None), true);
        let err = crate::build::write_tree(tree, 0, Compression::None, &mut Vec::new(), &|_| {})
            .expect_err("must fail");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        let msg = err.to_string();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(
            msg.contains("the file changed while the layer was written"),
            "{msg}"
        );
    }
}

#[test]
fn simple_operations_and_their_limits() {
    let (out, _) = build_ok(vec![
        JobOp::Mkdir {
            path: p("/data/db"),
            mode: Some(0o700),
            owner: Some(Owner { uid: 999, gid: 999 }),
        },
        JobOp::Symlink {
            path: p("/data/current"),
            target: b"db".to_vec(),
            owner: None,
        },
        file("/data/db/x", b""),
        // A later Mkdir of an existing directory redefines it, keeping its contents.
        JobOp::Mkdir {
            path: p("/data"),
            mode: Some(0o750),
            owner: None,
        },
        // A later op on the same path wins.
        file("/data/current", b"now a file"),
    ]);
    let l = lines(&out);
    assert_eq!(l[0], "/data/ dir 0750 0:0");
    assert!(l[1].starts_with("/data/current file 0644 0:0 10 "), "{l:?}");
    assert_eq!(l[2], "/data/db/ dir 0700 999:999");
    assert_eq!(l.len(), 4);

    let (err, msg) = fails(vec![file("/", b"x")]);
    assert!(matches!(err, Error::BadPath { op: 0, .. }), "{err:?}");
    assert_eq!(msg, "/: only a directory can be at the root");
    let (_, msg) = fails(vec![mkdir("/ok"), mkdir("/a/.wh.b/c")]);
    assert_eq!(
        msg,
        "/a/.wh.b/c: names starting with .wh. are reserved for whiteouts"
    );
    let (_, msg) = fails(vec![JobOp::Symlink {
        path: p("/l"),
        target: Vec::new(),
        owner: None,
    }]);
    assert_eq!(msg, "/l: the symlink target is empty");
    // Mkdir of the root is allowed and emits nothing.
    assert!(build_ok(vec![mkdir("/")]).0.listing.entries.is_empty());
}
