//! `JobOp::Attr`: a postinst's `chmod`/`chown` on what the layer has.

use super::*;

fn attr(
    path: &str,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    recursive: bool,
) -> JobOp {
    JobOp::Attr {
        path: p(path),
        mode,
        uid,
        gid,
        recursive,
    }
}

#[test]
fn attr_changes_the_node_and_with_recursive_what_is_below() {
    let (out, _) = build_ok(vec![
        mkdir("/var/lib/app"),
        file("/var/lib/app/a", b"a"),
        file("/var/lib/app/sub/b", b"b"),
        JobOp::Symlink {
            path: p("/var/lib/app/link"),
            target: b"a".to_vec(),
            owner: None,
        },
        file("/var/lib/app0", b"not below"),
        file("/etc/app.conf", b"c"),
        attr("/var/lib/app", Some(0o2770), Some(997), None, true),
        attr("/etc/app.conf", Some(0o640), None, Some(42), false),
        // What the layer does not have is left alone, not made.
        attr("/nowhere", Some(0o600), Some(1), Some(1), true),
    ]);
    let got = lines(&out);
    let has = |needle: &str| got.iter().any(|l| l.contains(needle));
    for (path, meta) in [
        ("/var/lib/app/ ", "dir 2770 997:0"),
        ("/var/lib/app/a ", "file 2770 997:0"),
        ("/var/lib/app/sub/ ", "dir 2770 997:0"),
        ("/var/lib/app/sub/b ", "file 2770 997:0"),
        ("/var/lib/app0 ", "file 0644 0:0"),
        ("/etc/app.conf ", "file 0640 0:42"),
    ] {
        let line = got
            .iter()
            .find(|l| l.starts_with(path))
            .unwrap_or_else(|| panic!("{path} in {got:#?}"));
        assert!(line.contains(meta), "{path}: {line}");
    }
    let link = got.iter().find(|l| l.contains("var/lib/app/link")).unwrap();
    assert!(link.contains("symlink 0777 997:0"), "{link}");
    assert!(!has("nowhere"), "{got:#?}");
}
