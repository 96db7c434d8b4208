//! `unpack`: formats, normalisation, hardlinks, and hostile archives.

use super::*;
use crate::ustar::kind;

fn d(bytes: &[u8]) -> String {
    crate::Digest::of(bytes).to_string()
}

/// A small rootfs-like archive with one of every kind of entry.
fn sample() -> Vec<u8> {
    let mut run = Member::file("app/bin/run", b"#!/bin/sh\necho hi\n");
    run.mode = 0o755;
    let mut ping = Member::file("app/bin/ping", b"ping");
    ping.mode = 0o4755;
    ping.xattrs = vec![(
        "security.capability".into(),
        vec![1, 0, 0, 2, 10, 0, 0, 0, 0],
    )];
    let mut null = Member::raw(b"dev/null", kind::CHAR, b"", b"");
    null.mode = 0o666;
    null.device = Some((1, 3));
    let mut fifo = Member::raw(b"run/initctl", kind::FIFO, b"", b"");
    fifo.mode = 0o600;
    let mut tmp = Member::dir("tmp/");
    tmp.mode = 0o1777;
    tar_of(&[
        Member::dir("./"),
        Member::dir("./app/"),
        run,
        ping,
        Member::symlink("app/current", "bin"),
        Member::hardlink("app/bin/run2", "./app/bin/run"),
        null,
        fifo,
        tmp,
    ])
}

fn unpacked(bytes: &[u8], to: &str) -> Result<(BuildOutput, Vec<u8>), Error> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let archive = put_file(dir.path(), "input", bytes);
    build_on(vec![unpack(&archive, to)], &LowerView::new())
}

fn unpack_err(bytes: &[u8]) -> String {
    unpacked(bytes, "/")
        .expect_err("the archive must be refused")
        .to_string()
}

#[test]
fn every_format_gives_the_same_layer() {
    let tar = sample();
    let (plain, blob) = unpacked(&tar, "/opt/").expect("plain tar");
    for (name, bytes) in [
        ("gzip", gz(&tar)),
        ("xz", xz(&tar)),
        ("zstd", zst(&tar)),
        ("bzip2", bz2(&tar)),
    ] {
        let (out, b) = unpacked(&bytes, "/opt/").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.listing, plain.listing, "{name}");
        assert_eq!(b, blob, "{name}");
    }
    let ping_line = format!(
        "/opt/app/bin/ping file 4755 1000:1000 4 {} xattr=security.capability=\\x01\\x00\\x00\\x02\\x0a\\x00\\x00\\x00\\x00",
        d(b"ping")
    );
    let run_line = format!(
        "/opt/app/bin/run file 0755 1000:1000 18 {}",
        d(b"#!/bin/sh\necho hi\n")
    );
    assert_eq!(
        lines(&plain),
        [
            "/opt/ dir 0755 0:0",
            "/opt/app/ dir 0755 1000:1000",
            "/opt/app/bin/ dir 0755 0:0",
            ping_line.as_str(),
            run_line.as_str(),
            "/opt/app/bin/run2 hardlink 0755 1000:1000 => /opt/app/bin/run",
            "/opt/app/current symlink 0777 1000:1000 -> bin",
            "/opt/dev/ dir 0755 0:0",
            "/opt/dev/null char 0666 1000:1000 1,3",
            "/opt/run/ dir 0755 0:0",
            "/opt/run/initctl fifo 0600 1000:1000",
            "/opt/tmp/ dir 1777 1000:1000",
        ]
    );
    let ping = &plain.listing.entries[3];
    assert_eq!(
        ping.xattrs[0].1,
        [1, 0, 0, 2, 10, 0, 0, 0, 0],
        "binary xattr values survive"
    );
}

#[test]
fn owner_and_mode_overrides() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let archive = put_file(dir.path(), "in.tar", &sample());
    let op = JobOp::Unpack {
        archive: crate::HostInput::open(&archive).unwrap(),
        to: p("/"),
        owner: Some(crate::Owner { uid: 7, gid: 8 }),
        mode: Some(0o600),
    };
    let (out, _) = build_ok(vec![op]);
    let text = out.listing.text();
    assert!(text.contains("/app/ dir 0755 7:8\n"), "{text}");
    assert!(text.contains("/app/bin/ping file 0600 7:8 4 "), "{text}");
    assert!(
        text.contains("/app/bin/run2 hardlink 0600 7:8 => /app/bin/run\n"),
        "{text}"
    );
    assert!(
        text.contains("/app/current symlink 0777 7:8 -> bin\n"),
        "{text}"
    );
    assert!(text.contains("/tmp/ dir 1777 7:8\n"), "{text}");
}

#[test]
fn names_are_normalised() {
    let (out, blob) = unpacked(
        &tar_of(&[
            Member::file("./a", b"1"),
            Member::file("/abs/x", b"2"),
            Member::file("b//./c", b"3"),
        ]),
        "/",
    )
    .expect("builds");
    let names: Vec<String> = tar_names(&blob).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "abs/", "abs/x", "b/", "b/c"]);
    assert_eq!(out.listing.entries.len(), 5);
}

#[test]
fn duplicates_last_one_wins() {
    let (out, _) = unpacked(
        &tar_of(&[Member::file("a", b"old"), Member::file("a", b"newer")]),
        "/",
    )
    .expect("builds");
    assert_eq!(out.listing.entries.len(), 1);
    assert_eq!(out.listing.entries[0].size, 5);
    // A directory replaced by a file, with entries still below it.
    let msg = unpack_err(&tar_of(&[
        Member::dir("d/"),
        Member::file("d/x", b""),
        Member::file("d", b""),
    ]));
    assert!(
        msg.contains("goes through /d, which is not a directory"),
        "{msg}"
    );
}

#[test]
fn hostile_names_are_refused() {
    let msg = unpack_err(&tar_of(&[Member::file("../x", b"")]));
    assert!(
        msg.ends_with("entry \"../x\": the name contains a `..` component"),
        "{msg}"
    );
    let msg = unpack_err(&tar_of(&[Member::file("a/../../etc/passwd", b"")]));
    assert!(msg.contains("`..`"), "{msg}");
    let msg = unpack_err(&tar_of(&[
        Member::symlink("link", "/etc"),
        Member::file("link/passwd", b"root"),
    ]));
    assert!(
        msg.ends_with("entry \"link/passwd\": the path goes through the symlink /link"),
        "{msg}"
    );
    // Even when the link comes after the entry that goes through it.
    let msg = unpack_err(&tar_of(&[
        Member::file("l/x", b""),
        Member::symlink("l", "/etc"),
    ]));
    assert!(msg.contains("goes through the symlink /l"), "{msg}");
    let msg = unpack_err(&tar_of(&[Member::file(".wh.etc", b"")]));
    assert!(
        msg.ends_with("input archives may not contain whiteouts"),
        "{msg}"
    );
    let msg = unpack_err(&tar_of(&[Member::file("var/.wh..wh..opq", b"")]));
    assert!(
        msg.ends_with("input archives may not contain whiteouts"),
        "{msg}"
    );
    let msg = unpack_err(&tar_of(&[
        Member::raw(b"a", kind::FILE, b"", b""),
        Member::raw(b"x", b'S', b"", b""),
    ]));
    assert!(msg.contains("sparse files are not supported"), "{msg}");
}

#[test]
fn hardlinks_must_stay_in_the_archive() {
    let msg = unpack_err(&tar_of(&[Member::hardlink("l", "/etc/passwd")]));
    assert!(
        msg.ends_with("the hardlink target /etc/passwd is not an earlier entry of the archive"),
        "{msg}"
    );
    let msg = unpack_err(&tar_of(&[
        Member::file("f", b""),
        Member::hardlink("l", "../f"),
    ]));
    assert!(
        msg.contains("hardlink target \"../f\": the name contains a `..` component"),
        "{msg}"
    );
    let msg = unpack_err(&tar_of(&[Member::dir("d/"), Member::hardlink("l", "d")]));
    assert!(
        msg.ends_with("the hardlink target /d is not a regular file"),
        "{msg}"
    );
    // Links point back to earlier entries, as tar requires: no loop can form.
    let msg = unpack_err(&tar_of(&[
        Member::hardlink("a", "b"),
        Member::hardlink("b", "a"),
    ]));
    assert!(
        msg.ends_with("entry \"a\": the hardlink target /b is not an earlier entry of the archive"),
        "{msg}"
    );
}

#[test]
fn a_hardlink_sorting_first_carries_the_content() {
    // Listed target first, as tar writes them; but `a/link` sorts first.
    let tar = tar_of(&[
        Member::file("z/target", b"content"),
        Member::hardlink("a/link", "z/target"),
        Member::hardlink("m/chained", "a/link"),
    ]);
    let (out, blob) = unpacked(&tar, "/").expect("builds");
    let l = lines(&out);
    assert!(
        l[1].starts_with("/a/link file 0644 1000:1000 7 sha256:"),
        "{l:?}"
    );
    assert_eq!(l[3], "/m/chained hardlink 0644 1000:1000 => /a/link");
    assert_eq!(l[5], "/z/target hardlink 0644 1000:1000 => /a/link");
    // Another reader agrees.
    let mut a = tar::Archive::new(&blob[..]);
    for e in a.entries().expect("a tar") {
        let e = e.expect("an entry");
        if e.header().entry_type().is_hard_link() {
            assert_eq!(e.link_name_bytes().as_deref(), Some(&b"a/link"[..]));
        }
    }
}

#[test]
fn corrupt_and_foreign_inputs_are_bad_archives() {
    let msg = unpack_err(b"just some text, certainly not an archive of any kind");
    assert!(
        msg.ends_with(": not a tar archive (neither gzip, xz, zstd, bzip2 nor plain tar)"),
        "{msg}"
    );
    let whole = gz(&sample());
    let msg = unpack_err(&whole[..whole.len() / 2]);
    assert!(msg.contains("corrupt or truncated gzip data"), "{msg}");
    let msg = unpack_err(&gz(b"hello, not a tar"));
    assert!(
        msg.ends_with("the decompressed gzip data is not a tar archive"),
        "{msg}"
    );
    let msg = unpack_err(&zst(&[7u8; 600]));
    assert!(
        msg.ends_with("the decompressed zstd data is not a tar archive"),
        "{msg}"
    );
    // A plain tar cut inside a file's data.
    let tar = tar_of(&[Member::file("big", &[1u8; 3000])]);
    let msg = unpack_err(&tar[..2000]);
    assert!(msg.contains("the archive is truncated"), "{msg}");
    // A damaged header.
    let mut tar = tar_of(&[Member::file("a", b"x"), Member::file("b", b"y")]);
    tar[1024 + 10] ^= 0x55;
    let msg = unpack_err(&tar);
    assert!(
        msg.contains("header checksum mismatch at offset 1024"),
        "{msg}"
    );
    // A missing input cannot even be opened for a job (the planner reports it).
    assert!(crate::HostInput::open(Path::new("/nonexistent/in.tar")).is_err());
}

#[test]
fn long_and_non_utf8_names_survive() {
    let deep = format!("{}/{}", "d".repeat(120), "f".repeat(90)); // ustar prefix split
    let huge = format!("{}/{}", "e".repeat(200), "g".repeat(120)); // needs PAX
    let target = "t".repeat(150);
    let tar = tar_of(&[
        Member::file(&deep, b"1"),
        Member::file(&huge, b"2"),
        Member::symlink("s", &target),
        Member::raw(b"caf\xe9 \\", kind::FILE, b"3", b""),
    ]);
    let (out, blob) = unpacked(&tar, "/").expect("builds");
    let names = tar_names(&blob);
    let pax_count = names.iter().filter(|(_, t)| *t == 'x').count();
    assert_eq!(pax_count, 0, "the tar crate hides PAX headers");
    let read: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        read.contains(&deep.as_str()) && read.contains(&huge.as_str()),
        "{read:?}"
    );
    // PAX headers in the raw bytes: the long file name, the link, and the
    // two directories `d{120}/` and `e{200}/`, whose names have no `/` to
    // split at within the ustar limits. Not the `deep` file, which splits.
    let raw_pax = blob
        .chunks(512)
        .filter(|b| b.len() == 512 && b[156] == b'x' && &b[257..262] == b"ustar")
        .count();
    assert_eq!(raw_pax, 4);
    let odd = format!("/caf\\xe9\\x20\\x5c file 0644 1000:1000 1 {}", d(b"3"));
    assert!(lines(&out).contains(&odd), "{:?}", lines(&out));
    assert_eq!(crate::list_blob(&blob[..]).expect("lists"), out.listing);
}

#[test]
fn archives_written_by_the_tar_crate() {
    // GNU long-name records, as `tar::Builder` writes them.
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("{}/file", "x".repeat(150));
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o640);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, &long, &b"hello"[..]).expect("append");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "lnk", "x".repeat(130)).expect("link");
    let bytes = b.into_inner().expect("tar");
    let (out, _) = unpacked(&bytes, "/srv").expect("builds");
    let l = lines(&out);
    assert_eq!(l.len(), 4, "{l:?}");
    assert_eq!(
        l[1],
        format!("/srv/lnk symlink 0777 0:0 -> {}", "x".repeat(130))
    );
    assert!(
        l[3].starts_with(&format!("/srv/{long} file 0640 0:0 5 sha256:")),
        "{l:?}"
    );
}

/// Issue 16, item 7: the 4095-byte limit holds for the path in the image
/// (`to=` and the name), not just for the name in the archive.
#[test]
fn the_path_limit_is_checked_below_the_destination() {
    let long = vec!["n".repeat(250); 16].join("/");
    assert_eq!(long.len(), 4015);
    let tar = tar_of(&[Member::file(&long, b"x")]);
    unpacked(&tar, "/").expect("4015 bytes fit at the root");
    let to = format!("/{}/", "d".repeat(100));
    let err = unpacked(&tar, &to).expect_err("4116 bytes do not");
    let msg = err.to_string();
    assert!(matches!(err, Error::BadArchiveEntry { .. }), "{err:?}");
    assert!(
        msg.contains("its path is 4116 bytes long, more than Linux's limit of 4095"),
        "{msg}"
    );
}
