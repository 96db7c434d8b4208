//! The fuzz smoke run of the normal test suite (issue 6): the property of
//! the `tar_ingest` cargo-fuzz target (`fuzz/`), on structure-aware random
//! archives instead of coverage-guided bytes, so that every CI run
//! exercises it. Archives are made of members with hostile names, every
//! typeflag, lying sizes, random PAX records and long-name headers, then
//! bytes flipped, cut, and sometimes gzipped. Building them must never
//! panic, and whatever builds must read back as the listing it returned.

use proptest::prelude::*;

use super::*;
use crate::{Limits, list_blob, ustar::kind};

/// Name components that matter to the checks.
fn component() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => Just(b"a".to_vec()),
        20 => Just(b"b".to_vec()),
        20 => Just(b"etc".to_vec()),
        1 => Just(b"..".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(Vec::new()),
        1 => Just(b".wh.x".to_vec()),
        1 => Just(b".wh..wh..opq".to_vec()),
        1 => Just(b"x\0y".to_vec()),
        1 => Just(b"caf\xe9".to_vec()),
        1 => Just(vec![b'n'; 256]),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(&b""[..]), Just(&b"/"[..]), Just(&b"./"[..])],
        prop::collection::vec(component(), 1..5),
        any::<bool>(),
    )
        .prop_map(|(lead, parts, dir)| {
            let mut n = lead.to_vec();
            n.extend(parts.join(&b'/'));
            if dir {
                n.push(b'/');
            }
            n
        })
}

fn typeflag() -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => Just(kind::FILE),
        1 => Just(kind::OLD_FILE),
        4 => Just(kind::HARDLINK),
        4 => Just(kind::SYMLINK),
        1 => Just(kind::CHAR),
        1 => Just(kind::BLOCK),
        6 => Just(kind::DIR),
        1 => Just(kind::FIFO),
        1 => Just(kind::CONTIGUOUS),
        1 => Just(kind::PAX),
        1 => Just(kind::PAX_GLOBAL),
        1 => Just(kind::GNU_LONGNAME),
        1 => Just(kind::GNU_LONGLINK),
        1 => Just(b'S'),
        1 => Just(b'V'),
        1 => any::<u8>(),
    ]
}

/// PAX records, their lengths sometimes wrong.
fn pax_data() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("path"),
        Just("linkpath"),
        Just("size"),
        Just("uid"),
        Just("gid"),
        Just("mtime"),
        Just("SCHILY.xattr.security.capability"),
        Just("SCHILY.xattr.user.\u{e9}"),
        Just("GNU.sparse.major"),
    ];
    let value = prop_oneof![
        Just(b"0".to_vec()),
        Just(b"18446744073709551615".to_vec()),
        Just(b"../x".to_vec()),
        Just(b"a/b".to_vec()),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec((key, value, -2i8..3), 0..4).prop_map(|records| {
        let mut out = Vec::new();
        for (key, value, skew) in records {
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            let len = len.saturating_add_signed(isize::from(skew));
            out.extend(format!("{len} {key}=").into_bytes());
            out.extend(value);
            out.push(b'\n');
        }
        out
    })
}

#[derive(Debug, Clone)]
struct Raw {
    name: Vec<u8>,
    typeflag: u8,
    data: Vec<u8>,
    link: Vec<u8>,
    /// A size field that lies about the data.
    size: Option<u64>,
}

fn member() -> impl Strategy<Value = Raw> {
    (
        name(),
        typeflag(),
        prop_oneof![prop::collection::vec(any::<u8>(), 0..40), pax_data()],
        prop_oneof![name(), Just(Vec::new())],
        prop_oneof![
            12 => Just(None),
            1 => Just(Some(1u64 << 40)),
            1 => (0u64..2048).prop_map(Some),
        ],
    )
        .prop_map(|(name, typeflag, mut data, link, size)| {
            // Links, devices, fifos and directories have no data (their size
            // field may still lie).
            if matches!(
                typeflag,
                kind::HARDLINK | kind::SYMLINK | kind::CHAR | kind::BLOCK | kind::DIR | kind::FIFO
            ) {
                data.clear();
            }
            Raw {
                name,
                typeflag,
                data,
                link,
                size,
            }
        })
}

/// The archive bytes of `members`, then `flips` applied and cut at `cut`.
fn encode(members: &[Raw], flips: &[(usize, u8)], cut: Option<usize>, end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        // Names and links that do not fit a header are cut: the header
        // writer would otherwise add a PAX record of its own.
        let name = &m.name[..m.name.len().min(100)];
        let link = &m.link[..m.link.len().min(100)];
        let written = ustar::write_header(
            &mut out,
            &Header {
                name,
                typeflag: m.typeflag,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: m.size.unwrap_or(m.data.len() as u64),
                mtime: 0,
                link,
                device: matches!(m.typeflag, kind::CHAR | kind::BLOCK).then_some((1, 3)),
                xattrs: &[],
            },
        );
        if written.is_err() {
            continue;
        }
        out.extend_from_slice(&m.data);
        ustar::pad(&mut out, m.data.len() as u64).expect("padding");
    }
    if end {
        out.extend_from_slice(&[0u8; 1024]);
    }
    for &(at, x) in flips {
        if !out.is_empty() {
            let i = at % out.len();
            out[i] ^= x;
        }
    }
    if let Some(cut) = cut {
        out.truncate(cut % (out.len() + 1));
    }
    out
}

/// The property: building never panics, never writes but to its writer and
/// anonymous temporary files, and what builds reads back as its listing.
fn check(bytes: &[u8], dir: &Path) {
    let archive = put_file(dir, "fuzz.tar", bytes);
    let mut job = job(vec![unpack(&archive, "/opt/")], Compression::None);
    job.limits = Limits {
        max_input_size: 1 << 20,
        max_entries: 1000,
    };
    if let Ok((out, blob)) = build_job(&job, &LowerView::new()) {
        let back = list_blob(&blob[..]).expect("a built blob lists");
        assert_eq!(back, out.listing);
    }
    let _ = list_blob(bytes);
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("the test dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        ["fuzz.tar"],
        "nothing else was written beside the input"
    );
}

proptest! {
    // No failure files: a failing case is printed; keep it as a corpus case
    // in `hostile.rs`.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_archives_never_panic(
        members in prop::collection::vec(member(), 0..8),
        flips in prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec((any::<usize>(), any::<u8>()), 1..3),
        ],
        cut in prop::option::weighted(0.2, any::<usize>()),
        end in any::<bool>(),
        gzip in prop::bool::weighted(0.2),
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let bytes = encode(&members, &flips, cut, end);
        let bytes = if gzip { gz(&bytes) } else { bytes };
        check(&bytes, dir.path());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        // A smaller share of the budget: random bytes rarely get past the
        // first header.
        let dir = tempfile::tempdir().expect("a temp dir");
        check(&bytes, dir.path());
    }
}
