//! The hostile-archive corpus (issue 6): archives made byte by byte to attack
//! `unpack` (traversal, symlink and hardlink escapes, lying sizes, broken
//! headers and extensions, bombs), each with the exact outcome snapshotted:
//! the error text, or the listing of what was carried. Every accepted case
//! is also read back with `list_blob`, which must agree with the build.

use std::fmt::Write as _;

use super::*;
use crate::ustar::kind;
use crate::{Limits, list_blob};

/// One header written by our own encoder (valid checksum; a PAX header of
/// its own only if a field does not fit), with `data` and padding after it.
fn entry(name: &[u8], typeflag: u8, size: u64, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ustar::write_header(
        &mut out,
        &Header {
            name,
            typeflag,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime: 0,
            link,
            device: None,
            xattrs: &[],
        },
    )
    .expect("a header");
    out.extend_from_slice(data);
    ustar::pad(&mut out, data.len() as u64).expect("padding");
    out
}

/// An extension header (`x` PAX records, `L` GNU long name, `K` long link)
/// carrying `data`.
fn ext(typeflag: u8, data: &[u8]) -> Vec<u8> {
    entry(b"././@ext", typeflag, data.len() as u64, b"", data)
}

/// One PAX record, its length counting itself.
fn pax(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    [
        format!("{len} {key}=").into_bytes(),
        value.to_vec(),
        b"\n".to_vec(),
    ]
    .concat()
}

fn file_entry(name: &str, data: &[u8]) -> Vec<u8> {
    entry(name.as_bytes(), kind::FILE, data.len() as u64, b"", data)
}

fn end() -> Vec<u8> {
    vec![0u8; 1024]
}

/// Recomputes the checksum of the header block at `at` after an edit.
fn reseal(bytes: &mut [u8], at: usize) {
    let b = &mut bytes[at..at + 512];
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
}

/// Builds `bytes` as an input archive unpacked at `/opt/` with `limits`; the
/// outcome as the snapshot shows it.
fn outcome(bytes: &[u8], limits: Limits) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    let archive = put_file(dir.path(), "evil.tar", bytes);
    let mut job = job(vec![unpack(&archive, "/opt/")], Compression::None);
    job.limits = limits;
    match build_job(&job, &LowerView::new()) {
        Ok((out, blob)) => {
            let back = list_blob(&blob[..]).expect("our own blob reads back");
            assert_eq!(back, out.listing, "list_blob agrees with build");
            let mut s = "ok".to_owned();
            for line in lines(&out) {
                s.push_str("\n  ");
                s.push_str(&line);
            }
            s
        }
        Err(e) => format!(
            "error: {}",
            e.to_string()
                .replace(&dir.path().display().to_string(), "[TMP]")
        ),
    }
}

/// The corpus: (name, archive bytes, limits).
fn corpus() -> Vec<(&'static str, Vec<u8>, Limits)> {
    let d = Limits::DEFAULT;
    let mut cases: Vec<(&'static str, Vec<u8>, Limits)> = Vec::new();
    let mut add = |name, bytes: Vec<u8>| cases.push((name, bytes, d));

    // Traversal and absolute names.
    add("dotdot", [file_entry("../x", b"x"), end()].concat());
    add(
        "dotdot_deep",
        [file_entry("a/../../etc/passwd", b"x"), end()].concat(),
    );
    add("dotdot_inner", [file_entry("a/../b", b"x"), end()].concat());
    add(
        "absolute_is_normalised",
        [file_entry("/etc/passwd", b"root"), end()].concat(),
    );
    add(
        "slashes_and_dots_normalised",
        [file_entry(".//etc/./x", b"1"), end()].concat(),
    );
    add(
        "root_as_a_file",
        [file_entry("./", b""), file_entry("/", b"x"), end()].concat(),
    );

    // Symlinks, then writes through them.
    let sym =
        |name: &str, target: &str| entry(name.as_bytes(), kind::SYMLINK, 0, target.as_bytes(), b"");
    let dir = |name: &str| entry(name.as_bytes(), kind::DIR, 0, b"", b"");
    add(
        "symlink_then_write_through",
        [sym("link", "/etc"), file_entry("link/passwd", b"x"), end()].concat(),
    );
    add(
        "write_through_symlink_created_later",
        [file_entry("link/passwd", b"x"), sym("link", "/etc"), end()].concat(),
    );
    add(
        "relative_symlink_escape",
        [sym("a", "../../.."), file_entry("a/b/c", b"x"), end()].concat(),
    );
    add(
        "symlink_in_a_parent_dir",
        [
            dir("d/"),
            sym("d/s", "/"),
            dir("d/s/etc/"),
            file_entry("d/s/etc/shadow", b"x"),
            end(),
        ]
        .concat(),
    );
    add(
        "symlink_replaced_by_a_dir",
        [
            sym("link", "/etc"),
            dir("link/"),
            file_entry("link/passwd", b"x"),
            end(),
        ]
        .concat(),
    );
    add(
        "symlinks_are_carried_as_data",
        [
            sym("abs", "/etc/passwd"),
            sym("rel", "../../../../x"),
            end(),
        ]
        .concat(),
    );
    add("empty_symlink_target", [sym("s", ""), end()].concat());

    // Hard links.
    let hard = |name: &str, target: &str| {
        entry(name.as_bytes(), kind::HARDLINK, 0, target.as_bytes(), b"")
    };
    add(
        "hardlink_absolute_outside",
        [hard("h", "/etc/passwd"), end()].concat(),
    );
    add(
        "hardlink_dotdot",
        [file_entry("f", b"x"), hard("h", "../f"), end()].concat(),
    );
    add(
        "hardlink_through_symlink",
        [sym("l", "/etc"), hard("h", "l/passwd"), end()].concat(),
    );
    add(
        "hardlink_to_a_dir",
        [dir("d/"), hard("h", "d"), end()].concat(),
    );
    add(
        "hardlink_to_a_symlink",
        [sym("s", "/etc/passwd"), hard("h", "s"), end()].concat(),
    );
    add(
        "hardlink_before_its_target",
        [hard("h", "f"), file_entry("f", b"x"), end()].concat(),
    );
    add(
        "hardlink_loop",
        [hard("a", "b"), hard("b", "a"), end()].concat(),
    );
    add(
        "hardlink_keeps_the_replaced_file",
        [
            file_entry("f", b"old"),
            hard("h", "f"),
            file_entry("f", b"new content"),
            end(),
        ]
        .concat(),
    );
    add(
        "hardlink_chain",
        [
            file_entry("a", b"x"),
            hard("b", "a"),
            hard("c", "b"),
            hard("./d", "/c"),
            end(),
        ]
        .concat(),
    );

    // Duplicates.
    add(
        "duplicate_file_last_wins",
        [file_entry("a", b"first"), file_entry("a", b"second"), end()].concat(),
    );
    add(
        "file_replacing_a_dir_with_entries",
        [
            dir("d/"),
            file_entry("d/x", b""),
            file_entry("d", b""),
            end(),
        ]
        .concat(),
    );

    // Sizes that lie.
    add(
        "size_1tb_data_missing",
        [entry(b"big", kind::FILE, 1 << 40, b"", b"abc"), end()].concat(),
    );
    add(
        "size_octal_max_data_missing",
        [entry(b"big", kind::FILE, 0o77777777777, b"", b""), end()].concat(),
    );
    add(
        "pax_size_overflows",
        [
            ext(kind::PAX, &pax("size", b"18446744073709551615")),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "pax_size_not_a_number",
        [
            ext(kind::PAX, &pax("size", b"12x")),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "symlink_size_is_ignored",
        [
            entry(b"s", kind::SYMLINK, 1 << 30, b"target", b""),
            file_entry("after", b"still read"),
            end(),
        ]
        .concat(),
    );
    add("no_end_marker", file_entry("a", b"x"));
    add(
        "zero_length_file",
        [file_entry("empty", b""), end()].concat(),
    );

    // Broken headers.
    let mut flipped = [file_entry("a", b"x"), file_entry("b", b"y"), end()].concat();
    flipped[1024 + 10] ^= 0x55;
    add("bad_checksum", flipped);
    let mut garbage_sum = [file_entry("a", b"x"), end()].concat();
    garbage_sum[148..156].copy_from_slice(b"zzzzzzz\0");
    add("checksum_not_octal", garbage_sum);
    let mut bad_mode = [file_entry("a", b"x"), end()].concat();
    bad_mode[100..108].copy_from_slice(b"0009999\0");
    reseal(&mut bad_mode, 0);
    add("mode_not_octal", bad_mode);
    let mut cut = [file_entry("a", b"x"), end()].concat();
    cut.truncate(300);
    add("ends_inside_a_header", cut);

    // GNU long names and links.
    add(
        "gnu_longname_too_large",
        [
            entry(b"././@LongLink", kind::GNU_LONGNAME, 17 << 20, b"", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "gnu_longname_then_nothing",
        ext(kind::GNU_LONGNAME, b"some/long/name"),
    );
    add(
        "gnu_longname_with_nul",
        [
            ext(kind::GNU_LONGNAME, b"innocent\0/../../etc/passwd\0"),
            file_entry("x", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "gnu_longname_dotdot",
        [
            ext(
                kind::GNU_LONGNAME,
                &[b"a/".repeat(100), b"../../../../../../x".repeat(20)].concat(),
            ),
            file_entry("x", b""),
            end(),
        ]
        .concat(),
    );
    add("gnu_longname_ends_inside", {
        let mut b = entry(b"././@LongLink", kind::GNU_LONGNAME, 2000, b"", b"");
        b.extend_from_slice(&[b'a'; 100]);
        b
    });
    add(
        "gnu_longlink_for_a_symlink",
        [
            ext(kind::GNU_LONGLINK, "t".repeat(300).as_bytes()),
            entry(b"s", kind::SYMLINK, 0, b"short", b""),
            end(),
        ]
        .concat(),
    );

    // PAX records.
    add(
        "pax_length_past_the_data",
        [ext(kind::PAX, b"99 path=x\n"), file_entry("f", b""), end()].concat(),
    );
    add(
        "pax_length_with_a_sign",
        [
            ext(kind::PAX, b"+12 path=ab\n"),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "pax_record_without_equals",
        [ext(kind::PAX, b"9 pathx\nx"), file_entry("f", b""), end()].concat(),
    );
    add(
        "pax_path_with_nul",
        [
            ext(kind::PAX, &pax("path", b"a\0b")),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "pax_linkpath_with_nul",
        [
            ext(kind::PAX, &pax("linkpath", b"/etc\0x")),
            entry(b"s", kind::SYMLINK, 0, b"t", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "pax_path_dotdot",
        [
            ext(kind::PAX, &pax("path", b"../../x")),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "pax_uid_too_large",
        [
            ext(kind::PAX, &pax("uid", b"4294967296")),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add("pax_then_nothing", ext(kind::PAX, &pax("path", b"x")));
    add(
        "pax_nul_padding_is_accepted",
        [
            ext(kind::PAX, &[pax("path", b"padded"), vec![0; 20]].concat()),
            file_entry("f", b"p"),
            end(),
        ]
        .concat(),
    );
    add(
        "pax_global_header_is_ignored",
        [
            ext(kind::PAX_GLOBAL, &pax("path", b"everything")),
            file_entry("f", b"g"),
            end(),
        ]
        .concat(),
    );

    // Entry types and their payloads.
    add(
        "sparse_gnu_type",
        [entry(b"s", b'S', 0, b"", b""), end()].concat(),
    );
    add(
        "sparse_pax",
        [
            ext(kind::PAX, &pax("GNU.sparse.major", b"1")),
            file_entry("s", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "volume_label_type",
        [entry(b"label", b'V', 0, b"", b""), end()].concat(),
    );
    add(
        "whiteout_in_input",
        [file_entry("etc/.wh.passwd", b""), end()].concat(),
    );
    add(
        "opaque_marker_in_input",
        [file_entry("var/.wh..wh..opq", b""), end()].concat(),
    );
    let device = |name: &str, typeflag: u8, major: u32, minor: u32| {
        let mut out = Vec::new();
        ustar::write_header(
            &mut out,
            &Header {
                name: name.as_bytes(),
                typeflag,
                mode: 0o600,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: 0,
                link: b"",
                device: Some((major, minor)),
                xattrs: &[],
            },
        )
        .expect("a header");
        out
    };
    add(
        "devices_and_fifos_are_carried",
        [
            device("dev/null", kind::CHAR, 1, 3),
            device("dev/sda", kind::BLOCK, 8, 0),
            entry(b"run/fifo", kind::FIFO, 0, b"", b""),
            end(),
        ]
        .concat(),
    );
    let mut big_dev = device("dev/x", kind::CHAR, 1, 1);
    big_dev[329..337].copy_from_slice(&[0x80, 0, 0, 0, 0xff, 0, 0, 0]);
    reseal(&mut big_dev, 0);
    add("device_number_too_large", [big_dev, end()].concat());
    add(
        "security_capability_is_carried",
        [
            ext(
                kind::PAX,
                &pax(
                    "SCHILY.xattr.security.capability",
                    b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                ),
            ),
            file_entry("bin/ping", b"ping"),
            end(),
        ]
        .concat(),
    );
    add(
        "xattr_value_too_large",
        [
            ext(kind::PAX, &pax("SCHILY.xattr.user.big", &vec![b'v'; 65537])),
            file_entry("f", b""),
            end(),
        ]
        .concat(),
    );
    add(
        "non_utf8_names_are_carried",
        [
            entry(b"caf\xe9/\xff\xfe", kind::FILE, 1, b"", b"1"),
            entry(b"lnk", kind::SYMLINK, 0, b"caf\xe9/\xff\xfe", b""),
            end(),
        ]
        .concat(),
    );
    let long_path = format!(
        "{}/{}/{}",
        "a".repeat(200),
        "b".repeat(200),
        "c".repeat(100)
    );
    add(
        "names_over_255_bytes_are_carried",
        [
            file_entry(&long_path, b"deep"),
            entry(b"s", kind::SYMLINK, 0, "t/".repeat(60).as_bytes(), b""),
            end(),
        ]
        .concat(),
    );
    add(
        "name_component_over_255_bytes",
        [file_entry(&"n".repeat(256), b""), end()].concat(),
    );
    add(
        "name_over_path_max",
        [file_entry(&format!("{}/f", "d/".repeat(2048)), b""), end()].concat(),
    );
    add(
        "symlink_target_over_path_max",
        [
            entry(b"s", kind::SYMLINK, 0, "t/".repeat(2048).as_bytes(), b""),
            end(),
        ]
        .concat(),
    );

    // Bombs, against small limits.
    let small = Limits {
        max_input_size: 4096,
        max_entries: 3,
    };
    cases.push((
        "too_many_entries",
        [
            file_entry("1", b""),
            file_entry("2", b""),
            file_entry("3", b""),
            file_entry("4", b""),
            end(),
        ]
        .concat(),
        small,
    ));
    cases.push((
        "expands_past_max_input_size",
        [file_entry("big", &[7u8; 8192]), end()].concat(),
        small,
    ));
    cases.push((
        "gzip_bomb",
        gz(&[file_entry("zeros", &vec![0u8; 8 << 20]), end()].concat()),
        Limits {
            max_input_size: 1 << 20,
            max_entries: 10,
        },
    ));
    cases.push((
        "within_limits",
        [file_entry("1", b"a"), file_entry("2", b"b"), end()].concat(),
        Limits {
            max_input_size: 4096,
            max_entries: 2,
        },
    ));
    cases
}

/// Compressed inputs that lie about themselves.
fn compressed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let tar = [file_entry("f", b"data"), end()].concat();
    let gzipped = gz(&tar);
    let mut cases = vec![
        (
            "plain_text",
            b"#!/bin/sh\necho this is not an archive\n".to_vec(),
        ),
        ("empty_input", Vec::new()),
        ("gzip_of_text", gz(b"hello, not a tar")),
        ("gzip_truncated", gzipped[..gzipped.len() / 2].to_vec()),
        (
            "gzip_trailing_garbage",
            [gzipped.clone(), b"garbage after the stream".to_vec()].concat(),
        ),
        (
            "gzip_trailing_zeros",
            [gzipped.clone(), vec![0u8; 512]].concat(),
        ),
        (
            "gzip_concatenated_members",
            [gz(&tar[..512]), gz(&tar[512..])].concat(),
        ),
        ("xz_named_tar_gz", xz(&tar)),
        ("zstd_truncated", {
            let z = zst(&tar);
            z[..z.len() - 4].to_vec()
        }),
        ("bzip2_corrupt", {
            let mut b = bz2(&tar);
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            b
        }),
        ("xz_of_text", xz(b"not a tar either")),
        (
            "xz_trailing_garbage",
            [xz(&tar), b"garbage after the stream".to_vec()].concat(),
        ),
        (
            "zstd_trailing_garbage",
            [zst(&tar), b"garbage after the stream".to_vec()].concat(),
        ),
    ];
    // A bzip2 magic followed by nothing that bzip2 can read.
    cases.push(("bzip2_magic_only", b"BZh9".to_vec()));
    cases
}

#[test]
fn the_hostile_corpus() {
    let mut report = String::new();
    for (name, bytes, limits) in corpus() {
        let _ = writeln!(report, "{name}: {}", outcome(&bytes, limits));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn compressors_that_lie() {
    let mut report = String::new();
    for (name, bytes) in compressed_corpus() {
        let dir = tempfile::tempdir().expect("a temp dir");
        // Named as a gzip tarball whatever it is: the name is never trusted.
        let archive = put_file(dir.path(), "input.tar.gz", &bytes);
        let result = match build_on(vec![unpack(&archive, "/")], &LowerView::new()) {
            Ok((out, _)) => format!("ok {}", lines(&out).join(" | ")),
            Err(e) => format!(
                "error: {}",
                e.to_string()
                    .replace(&dir.path().display().to_string(), "[TMP]")
            ),
        };
        let _ = writeln!(report, "{name}: {result}");
    }
    insta::assert_snapshot!(report);
}

#[test]
fn security_capability_is_bit_exact_in_the_layer() {
    let cap: &[u8] =
        b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\n\x00\x00\x00";
    let bytes = [
        ext(kind::PAX, &pax("SCHILY.xattr.security.capability", cap)),
        file_entry("bin/ping", b"ping"),
        end(),
    ]
    .concat();
    let dir = tempfile::tempdir().expect("a temp dir");
    let archive = put_file(dir.path(), "in.tar", &bytes);
    let (out, blob) = build_ok(vec![unpack(&archive, "/")]);
    let ping = out
        .listing
        .entries
        .iter()
        .find(|e| e.path == p("/bin/ping"))
        .expect("ping is listed");
    assert_eq!(
        ping.xattrs,
        [("security.capability".to_owned(), cap.to_vec())]
    );
    // The layer's own PAX record holds the value byte for byte (the `tar`
    // crate cannot check it: it splits records at newlines).
    let record = [&b"SCHILY.xattr.security.capability="[..], cap, b"\n"].concat();
    assert!(
        blob.windows(record.len()).any(|w| w == record.as_slice()),
        "the PAX record is in the blob"
    );
    assert_eq!(list_blob(&blob[..]).expect("lists"), out.listing);
}

#[test]
fn deep_and_wide_archives_stay_fast_to_check() {
    // Thousands of deep paths and a long hardlink chain: the parent and link
    // checks must not be quadratic. Not timed (CI machines vary); a
    // quadratic check would take minutes here instead of a second.
    let mut members = Vec::new();
    let deep = "d/".repeat(1000);
    members.push(file_entry(&format!("{deep}f0"), b"x"));
    for i in 1..3000 {
        members.push(hard_entry(
            &format!("{deep}f{i}"),
            &format!("{deep}f{}", i - 1),
        ));
    }
    members.push(end());
    let dir = tempfile::tempdir().expect("a temp dir");
    let archive = put_file(dir.path(), "in.tar", &members.concat());
    let (out, _) = build_ok(vec![unpack(&archive, "/")]);
    let files = out
        .listing
        .entries
        .iter()
        .filter(|e| matches!(e.kind, crate::EntryKind::File | crate::EntryKind::Hardlink))
        .count();
    assert_eq!(files, 3000);
}

fn hard_entry(name: &str, target: &str) -> Vec<u8> {
    entry(name.as_bytes(), kind::HARDLINK, 0, target.as_bytes(), b"")
}

/// A host file over 8 GiB (sparse, so it costs no disk) copied into a layer:
/// its size needs a PAX record, and its content streams through. Slow (the
/// 8.1 GiB are hashed three times: 33 s on a 2-core machine), so only on request:
/// `cargo test -p strata-layer -- --ignored over_8_gib`.
#[test]
#[ignore = "streams 8.1 GiB; run with --ignored"]
fn a_file_over_8_gib_gets_a_pax_size() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("huge");
    let size: u64 = (8 << 30) + (100 << 20);
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(size))
        .expect("a sparse file");
    /// Keeps the first bytes of the tar (the headers) and counts the rest.
    struct Head {
        head: Vec<u8>,
        total: u64,
    }
    impl std::io::Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = 8192usize.saturating_sub(self.head.len()).min(buf.len());
            self.head.extend_from_slice(&buf[..room]);
            self.total += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Head {
        head: Vec::new(),
        total: 0,
    };
    let op = JobOp::Copy {
        src: crate::HostInput::open(&path).unwrap(),
        to: p("/huge"),
        into_dir: false,
        mode: None,
        owner: None,
    };
    let built = build(
        &job(vec![op], Compression::None),
        &LowerView::new(),
        &mut out,
        &|_| {},
    )
    .expect("builds");
    let entry = &built.listing.entries[0];
    assert_eq!(entry.size, size);
    // A PAX header first, whose size record carries the real size.
    assert_eq!(out.head[156], kind::PAX);
    let record = format!("size={size}\n");
    assert!(
        out.head
            .windows(record.len())
            .any(|w| w == record.as_bytes()),
        "no PAX size record"
    );
    // Header blocks, the data and its padding, the end marker.
    assert!(out.total > size && out.total < size + 8192, "{}", out.total);
}

/// A layer blob (what `strata rootfs`, `squash` and `diff` read) with a
/// whiteout of `.` or `..` would delete the marker's parent or grandparent.
#[test]
fn whiteouts_of_dot_and_dot_dot_in_a_blob_are_refused() {
    for name in ["etc/.wh..", "etc/.wh..."] {
        let tar = tar_of(&[Member::dir("etc/"), Member::file(name, b"")]);
        let err = crate::list_blob(&tar[..]).expect_err(name).to_string();
        assert!(err.contains("escapes its directory"), "{name}: {err}");
    }
    let ok = tar_of(&[Member::dir("etc/"), Member::file("etc/.wh.motd", b"")]);
    let listing = crate::list_blob(&ok[..]).unwrap();
    assert_eq!(
        listing.text(),
        "/etc/ dir 0755 1000:1000\n/etc/motd whiteout\n"
    );
}
