//! Image paths, the escaped text form, serde, and the union view.

use super::*;
use crate::{Digest, Entry, EntryKind, Listing};
use strata_oci::listing::{escape, unescape};

#[test]
fn parse_abs_normalises_and_refuses() {
    assert_eq!(p("/usr/local/").0, b"usr/local");
    assert_eq!(p("//usr/./local//bin").0, b"usr/local/bin");
    assert!(p("/").is_root());
    assert_eq!(ImagePath::parse_abs("usr"), None);
    assert_eq!(ImagePath::parse_abs("/usr/../etc"), None);
    assert_eq!(ImagePath::parse_abs("/a\0b"), None);
}

#[test]
fn join_parent_and_ancestors() {
    let usr = p("/usr");
    assert_eq!(usr.join(b"local/bin/").0, b"usr/local/bin");
    assert_eq!(ImagePath::root().join(b"./etc").0, b"etc");
    assert_eq!(
        usr.join(b"../../x").0,
        b"x",
        "join never climbs above the root"
    );
    assert_eq!(p("/a/b/c").parent(), Some(p("/a/b")));
    assert_eq!(p("/a").parent(), Some(ImagePath::root()));
    assert_eq!(ImagePath::root().parent(), None);
    assert_eq!(p("/a/b/c").ancestors(), vec![p("/a"), p("/a/b")]);
    assert!(p("/a/b").starts_with(&p("/a")));
    assert!(!p("/ab").starts_with(&p("/a")));
    assert_eq!(p("/a/b").file_name(), Some(&b"b"[..]));
}

#[test]
fn display_escapes_and_round_trips() {
    let odd = ImagePath(b"dir/caf\xc3\xa9 \xff\\x\nend".to_vec());
    assert_eq!(odd.display(), "/dir/café \\xff\\x5cx\\x0aend");
    assert_eq!(ImagePath::from_display(&odd.display()), Some(odd.clone()));
    assert_eq!(ImagePath::root().display(), "/");
    // The listing escapes spaces too, so its fields split at spaces.
    assert_eq!(escape(b"a b", true), "a\\x20b");
    assert_eq!(escape("a\u{a0}b".as_bytes(), false), "a\\xc2\\xa0b");
    assert_eq!(unescape("a\\x20b\\xff"), Some(b"a b\xff".to_vec()));
    assert_eq!(unescape("a\\q"), None);
    assert_eq!(unescape("a\\x2"), None);
}

fn entry(path: &str, kind: EntryKind) -> Entry {
    Entry {
        mode: 0o755,
        ..Entry::bare(p(path), kind)
    }
}

#[test]
fn lines_of_every_kind() {
    let mut f = entry("/bin/ping", EntryKind::File);
    f.mode = 0o4755;
    f.size = 3;
    f.digest = Some(Digest::of(b"abc"));
    f.xattrs = vec![("security.capability".into(), vec![1, 0, 10])];
    let mut s = entry("/bin/sh", EntryKind::Symlink);
    s.mode = 0o777;
    s.link = Some(b"busy box".to_vec());
    let mut h = entry("/bin/ln", EntryKind::Hardlink);
    h.link = Some(b"bin/busybox".to_vec());
    let mut c = entry("/dev/null", EntryKind::Char);
    c.mode = 0o666;
    c.device = Some((1, 3));
    let listing = Listing {
        entries: vec![
            entry("/bin", EntryKind::Dir),
            f,
            s,
            h,
            c,
            entry("/run/fifo", EntryKind::Fifo),
            entry("/etc/motd", EntryKind::Whiteout),
            entry("/var/cache", EntryKind::Opaque),
        ],
    };
    assert_eq!(
        listing.text(),
        "/bin/ dir 0755 0:0\n\
         /bin/ping file 4755 0:0 3 sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad xattr=security.capability=\\x01\\x00\\x0a\n\
         /bin/sh symlink 0777 0:0 -> busy\\x20box\n\
         /bin/ln hardlink 0755 0:0 => /bin/busybox\n\
         /dev/null char 0666 0:0 1,3\n\
         /run/fifo fifo 0755 0:0\n\
         /etc/motd whiteout\n\
         /var/cache/ opaque\n"
    );
}

#[test]
fn listing_json_round_trips() {
    let (out, _) = build_ok(vec![
        file("/a b/\u{e9}", b"x"),
        JobOp::Symlink {
            path: p("/link"),
            target: b"\xff/target".to_vec(),
            owner: None,
        },
    ]);
    let json = serde_json::to_string(&out.listing).expect("json");
    assert!(json.contains("\"sha256:"), "digests are strings: {json}");
    assert!(
        json.contains("\"/a b/\u{e9}\""),
        "paths are display strings: {json}"
    );
    assert!(
        json.contains("\\\\xff/target"),
        "links are escaped strings: {json}"
    );
    let back: Listing = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, out.listing);
    assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
}

#[test]
fn lower_view_applies_whiteouts_before_entries() {
    let mut lower = LowerView::new();
    let base = build_ok(vec![
        file("/etc/motd", b"hi"),
        file("/var/cache/a", b"a"),
        file("/var/cache/-b", b"b"),
        file("/opt/x/y", b"y"),
    ])
    .0;
    lower.apply(&base.listing);
    assert!(lower.contains(&p("/etc/motd")));
    assert!(lower.is_dir(&p("/var/cache")));

    // `-new` sorts before `.wh..wh..opq`: the marker must still not hide it.
    let top = build_on(
        vec![
            delete("/var/cache"),
            file("/var/cache/-new", b"n"),
            delete("/etc/motd"),
            file("/opt/x", b"file"),
        ],
        &lower,
    )
    .expect("builds")
    .0;
    lower.apply(&top.listing);
    let paths: Vec<String> = lower.paths().map(|p| p.display()).collect();
    assert_eq!(
        paths,
        [
            "/etc",
            "/opt",
            "/opt/x",
            "/var",
            "/var/cache",
            "/var/cache/-new"
        ]
    );
    assert_eq!(
        lower.kind(&p("/opt/x")),
        Some(EntryKind::File),
        "a file replaced the directory"
    );
}
