//! The bytes of a layer: tar headers, compression, digests, and reading a
//! blob back.

use std::io::Read;

use super::*;
use crate::digest::digest_reader;
use crate::{Digest, EntryKind, MediaType, Owner, list_blob};

/// A layer with one of most things: files, dirs, a symlink, hardlinks, a
/// device, xattrs, long names, a big uid, whiteouts and an opaque dir.
fn representative(dir: &Path) -> (Vec<JobOp>, LowerView) {
    let mut ping = Member::file("bin/ping", b"ping!");
    ping.mode = 0o4755;
    ping.xattrs = vec![("security.capability".into(), b"\x01\x00\x0a\n".to_vec())];
    let mut null = Member::raw(b"dev/null", crate::ustar::kind::CHAR, b"", b"");
    null.mode = 0o666;
    null.device = Some((1, 3));
    let archive = put_file(
        dir,
        "rootfs.tar.gz",
        &gz(&tar_of(&[
            Member::dir("bin/"),
            Member::file("bin/busybox", b"busybox binary"),
            Member::hardlink("bin/ash", "bin/busybox"),
            ping,
            null,
            Member::file(
                &format!("usr/share/{}/{}", "n".repeat(140), "m".repeat(110)),
                b"deep",
            ),
        ])),
    );
    let lower = lower_of(vec![file("/etc/motd", b"hi"), file("/var/cache/x", b"x")]);
    let ops = vec![
        unpack(&archive, "/"),
        JobOp::Symlink {
            path: p("/bin/sh"),
            target: b"busybox".to_vec(),
            owner: None,
        },
        JobOp::File {
            path: p("/home/user/.profile"),
            content: b"export PS1='$ '\n".to_vec(),
            mode: Some(0o600),
            owner: Some(Owner {
                uid: 3_000_000,
                gid: 100,
            }),
        },
        delete("/etc/motd"),
        delete("/var/cache"),
        mkdir("/var/cache"),
    ];
    (ops, lower)
}

struct Plain<'a>(&'a [u8]);

impl Read for Plain<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl crate::ustar::Skip for Plain<'_> {}

fn decompress(media_type: MediaType, blob: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    match media_type {
        MediaType::TarGzip => flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut tar),
        MediaType::TarZstd => {
            zstd::stream::read::Decoder::new(blob).and_then(|mut d| d.read_to_end(&mut tar))
        }
        MediaType::Tar => {
            tar = blob.to_vec();
            Ok(0)
        }
    }
    .expect("the blob decompresses");
    tar
}

#[test]
fn digests_listing_and_blob_agree_for_every_codec() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ops, lower) = representative(dir.path());
    for c in [
        Compression::DEFAULT_GZIP,
        Compression::Zstd { level: 3 },
        Compression::None,
    ] {
        let (out, blob) = build_job(&job(ops.clone(), c), &lower).expect("builds");
        assert_eq!(out.desc.media_type, c.media_type());
        assert_eq!(out.desc.blob, Digest::of(&blob), "{c:?}");
        assert_eq!(out.desc.size, blob.len() as u64, "{c:?}");
        let tar = decompress(out.desc.media_type, &blob);
        assert_eq!(
            out.desc.diff_id,
            Digest::of(&tar),
            "{c:?}: diff_id is the sha256 of the tar"
        );
        assert_eq!(list_blob(&blob[..]).expect("lists"), out.listing, "{c:?}");
        assert_eq!(tar.len() % 512, 0);
        assert!(tar.ends_with(&[0u8; 1024]));
    }
}

#[test]
fn gzip_header_is_machine_independent() {
    let (out, blob) = build_job(
        &job(vec![file("/a", b"a")], Compression::Gzip { level: 6 }),
        &LowerView::new(),
    )
    .expect("builds");
    assert_eq!(out.desc.media_type, MediaType::TarGzip);
    // magic, deflate, no flags (no name), mtime 0, xfl, OS 255 (unknown).
    assert_eq!(&blob[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&blob[4..8], &[0, 0, 0, 0]);
    assert_eq!(blob[9], 255);
}

#[test]
fn headers_are_canonical() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ops, lower) = representative(dir.path());
    let (out, tar) = build_job(&job(ops, Compression::None), &lower).expect("builds");
    let mut a = tar::Archive::new(&tar[..]);
    let mut names = Vec::new();
    for e in a.entries().expect("a tar") {
        let e = e.expect("an entry");
        let h = e.header();
        assert_eq!(h.mtime().expect("mtime"), EPOCH);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        assert!(h.as_ustar().is_some(), "ustar headers only");
        let path = e.path_bytes().into_owned();
        if path.starts_with(b"home/user/.profile") {
            assert_eq!(h.uid().expect("uid"), 3_000_000, "the PAX uid is read back");
        }
        names.push(String::from_utf8_lossy(&path).into_owned());
    }
    // PAX only where needed: the long names (file and directory), the big
    // uid (of the file, and of the parents its `owner=` created), the xattr. Read
    // with our reader: the `tar` crate splits PAX records at newlines, which
    // the binary xattr value holds.
    let mut r = crate::ustar::Reader::new(Plain(&tar[..]));
    let mut with_pax = Vec::new();
    while let Some(e) = r.next_entry().expect("an entry") {
        if !e.pax.is_empty() {
            let keys: Vec<String> = e
                .pax
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect();
            with_pax.push((String::from_utf8_lossy(&e.name).into_owned(), keys));
        }
    }
    assert_eq!(with_pax.len(), 6, "{with_pax:?}");
    for parent in ["home/", "home/user/"] {
        assert!(
            with_pax
                .iter()
                .any(|(n, pax)| n == parent && pax == &["uid"]),
            "{parent}: {with_pax:?}"
        );
    }
    assert!(
        with_pax
            .iter()
            .any(|(n, pax)| n == "bin/ping" && pax == &["SCHILY.xattr.security.capability"])
    );
    assert!(
        with_pax
            .iter()
            .any(|(n, pax)| n == "home/user/.profile" && pax == &["uid"])
    );
    assert_eq!(
        with_pax
            .iter()
            .filter(|(n, pax)| n.starts_with("usr/share/") && pax == &["path"])
            .count(),
        2
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries sorted by name");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("./") || n.starts_with('/'))
    );
    assert_eq!(
        out.listing
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Hardlink)
            .count(),
        1
    );
}

#[test]
fn listing_snapshot() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ops, lower) = representative(dir.path());
    let (out, _) = build_job(&job(ops, Compression::None), &lower).expect("builds");
    insta::assert_snapshot!(out.listing.text());
}

#[test]
fn zstd_bytes_do_not_depend_on_the_worker_count() {
    // Several zstd jobs' worth of compressible, non-repeating data.
    let mut data = Vec::with_capacity(24 << 20);
    let mut x: u32 = 1;
    while data.len() < 24 << 20 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        data.extend_from_slice(format!("{} ", x >> 20).as_bytes());
    }
    let compress = |workers: u32| {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
        e.multithread(workers).expect("mt");
        e.include_checksum(false).expect("checksum");
        std::io::Write::write_all(&mut e, &data).expect("write");
        e.finish().expect("finish")
    };
    let one = compress(1);
    assert_eq!(Digest::of(&compress(3)), Digest::of(&one));
    assert!(one.len() < data.len() / 2);
}

#[test]
fn progress_adds_up_to_the_tar_size() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ops, lower) = representative(dir.path());
    let total = std::cell::Cell::new(0u64);
    let mut blob = Vec::new();
    let big = vec![JobOp::File {
        path: p("/big"),
        content: vec![7u8; 3 << 20],
        mode: None,
        owner: None,
    }];
    for ops in [ops, big] {
        total.set(0);
        blob.clear();
        let out = build(&job(ops, Compression::None), &lower, &mut blob, &|n| {
            total.set(total.get() + n)
        })
        .expect("builds");
        assert_eq!(total.get(), blob.len() as u64);
        assert_eq!(digest_reader(&blob[..]).expect("hash").0, out.desc.diff_id);
    }
}

#[test]
fn empty_layer_and_bad_levels() {
    let (out, blob) = build_ok(vec![]);
    assert_eq!(blob, vec![0u8; 1024]);
    assert!(out.listing.entries.is_empty());
    assert_eq!(list_blob(&blob[..]).expect("lists"), out.listing);
    let err = build_job(
        &job(vec![], Compression::Gzip { level: 12 }),
        &LowerView::new(),
    )
    .expect_err("fails");
    assert_eq!(
        err.to_string(),
        "compression gzip level 12 is out of range 0-9"
    );
    let err = build_job(
        &job(vec![], Compression::Zstd { level: 99 }),
        &LowerView::new(),
    )
    .expect_err("fails");
    assert!(
        err.to_string()
            .starts_with("compression zstd level 99 is out of range"),
        "{err}"
    );
}

#[test]
fn list_blob_refuses_junk() {
    let err = list_blob(&b"not a blob at all"[..]).expect_err("fails");
    assert_eq!(
        err.to_string(),
        "layer blob: not a tar archive (neither gzip, xz, zstd, bzip2 nor plain tar)"
    );
    let (_, blob) = build_job(
        &job(vec![file("/a", &[5u8; 5000])], Compression::DEFAULT_GZIP),
        &LowerView::new(),
    )
    .expect("builds");
    let err = list_blob(&blob[..blob.len() - 10]).expect_err("fails");
    assert!(
        err.to_string().contains("corrupt or truncated gzip data"),
        "{err}"
    );
}
