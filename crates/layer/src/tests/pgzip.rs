//! The parallel gzip writer: one valid multi-member gzip file whose bytes
//! depend on the data and the level, never on the thread count or the sizes
//! of the writes.

use std::io::{Read, Write};

use crate::pgzip::{CHUNK, ParGzWriter};

/// Compressible text interleaved with incompressible runs, `len` bytes.
fn mixed(len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len + 64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut step = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while data.len() < len {
        let r = step();
        if r % 32 == 0 {
            for _ in 0..16 {
                data.extend_from_slice(&step().to_le_bytes());
            }
        } else {
            data.extend_from_slice(format!("line {} of {}\n", r % 977, r % 13).as_bytes());
        }
    }
    data.truncate(len);
    data
}

/// `data` compressed on a pool of `threads`, written in pieces of `piece` bytes.
fn compress(data: &[u8], level: u32, threads: usize, piece: usize) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| {
        let mut w = ParGzWriter::new(Vec::new(), level);
        for part in data.chunks(piece) {
            w.write_all(part).expect("write");
        }
        w.finish().expect("finish")
    })
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

#[test]
fn bytes_do_not_depend_on_the_thread_count_or_the_writes() {
    let data = mixed(6 * CHUNK + 12_345);
    let one = compress(&data, 6, 1, 1 << 16);
    assert_eq!(compress(&data, 6, 2, 1 << 16), one, "2 threads");
    assert_eq!(compress(&data, 6, 4, 1 << 16), one, "4 threads");
    assert_eq!(compress(&data, 6, 2, 7_777), one, "odd write sizes");
    assert_eq!(compress(&data, 6, 4, data.len()), one, "one write");
    assert_eq!(gunzip(&one), data);
    assert!(one.len() < data.len() / 2, "{} bytes", one.len());
}

/// The members of a multi-member gzip file, each decoded alone, with the
/// bytes each took.
fn members(gz: &[u8]) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut rest = gz;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        let mut data = Vec::new();
        d.read_to_end(&mut data).expect("a valid member");
        let left = d.into_inner().len();
        out.push((data, rest.len() - left));
        rest = &rest[rest.len() - left..];
    }
    out
}

#[test]
fn one_member_per_chunk_with_a_machine_free_header_and_a_true_trailer() {
    let data = mixed(2 * CHUNK + 1);
    let gz = compress(&data, 6, 2, 1 << 16);
    let parts = members(&gz);
    assert_eq!(parts.len(), 3, "one member per chunk");
    let mut at = 0;
    for (i, (chunk, len)) in parts.iter().enumerate() {
        let member = &gz[at..at + len];
        assert_eq!(
            member[..10],
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
            "member {i}"
        );
        let mut crc = flate2::Crc::new();
        crc.update(chunk);
        assert_eq!(member[len - 8..len - 4], crc.sum().to_le_bytes());
        assert_eq!(member[len - 4..], (chunk.len() as u32).to_le_bytes());
        assert_eq!(
            chunk[..],
            data[i * CHUNK..(i * CHUNK + CHUNK).min(data.len())]
        );
        at += len;
    }
    // Nothing at all is one empty member.
    let empty = compress(&[], 6, 2, 1);
    assert_eq!(members(&empty).len(), 1);
    assert_eq!(gunzip(&empty), b"");
}

#[test]
fn chunk_boundaries_and_levels_round_trip() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK] {
        let data = mixed(len);
        for level in [0, 1, 9] {
            let gz = compress(&data, level, 2, 1 << 16);
            assert_eq!(gunzip(&gz), data, "len {len} level {level}");
        }
    }
}

#[test]
fn chunks_compress_about_as_well_as_one_zlib_stream() {
    // 1 MiB chunks keep the ratio close to one long deflate stream.
    let data = mixed(16 * CHUNK);
    let ours = compress(&data, 6, 2, 1 << 16);
    let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    single.write_all(&data).expect("write");
    let single = single.finish().expect("finish");
    let (ours, single) = (ours.len() as f64, single.len() as f64);
    assert!(ours < single * 1.01, "{ours} vs {single}");
}

#[test]
fn incompressible_chunks_are_stored_and_the_rest_deflated() {
    let mut x: u64 = 7;
    let random: Vec<u8> = (0..2 * CHUNK / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    // Random bytes, then text: the text chunk must still be deflated.
    let mut data = random.clone();
    data.extend_from_slice(&mixed(CHUNK));
    let gz = compress(&data, 6, 2, 1 << 16);
    assert_eq!(gunzip(&gz), data);
    // Stored blocks cost 5 bytes per 64 KiB; deflate on random bytes more.
    let stored = compress(&random, 6, 2, 1 << 16);
    assert!(stored.len() <= random.len() + random.len() / 65535 * 5 + 64);
    // Stored at once as full 64 KiB blocks (deflate would have tried, and
    // given up block by block: shorter stored blocks).
    assert_eq!(stored[10], 0, "a stored, non-final block");
    assert_eq!(stored[11..15], [0xff, 0xff, 0, 0], "of 65535 bytes");
    assert!(
        gz.len() < stored.len() + CHUNK / 2,
        "the text chunk was stored"
    );
    // A chunk that is mostly random with some text is deflated, not stored.
    let mut mostly = random[..CHUNK - CHUNK / 8].to_vec();
    mostly.extend_from_slice(&vec![b'a'; CHUNK / 8]);
    let gz = compress(&mostly, 6, 1, 1 << 16);
    assert!(gz.len() < CHUNK - CHUNK / 8 + 4096, "{} bytes", gz.len());
}

#[test]
fn layer_blobs_do_not_depend_on_the_pool_size() {
    // Several gzip chunks and zstd jobs, built on pools of 1, 2 and 3 threads.
    let ops = vec![crate::JobOp::File {
        path: super::p("/data/mixed"),
        content: mixed(5 << 20),
        mode: None,
        owner: None,
    }];
    for c in [
        crate::Compression::DEFAULT_GZIP,
        crate::Compression::DEFAULT_ZSTD,
    ] {
        let blobs: Vec<Vec<u8>> = [1, 2, 3]
            .iter()
            .map(|&threads| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool");
                pool.install(|| {
                    super::build_job(&super::job(ops.clone(), c), &crate::LowerView::new())
                        .expect("builds")
                        .1
                })
            })
            .collect();
        assert_eq!(blobs[0], blobs[1], "{c:?}: 1 and 2 threads");
        assert_eq!(blobs[0], blobs[2], "{c:?}: 1 and 3 threads");
        assert!(blobs[0].len() < (5 << 20) / 2, "{c:?} compresses");
    }
}

#[test]
fn an_uncompressed_blob_is_the_tar_and_its_digest_the_diff_id() {
    let ops = vec![crate::JobOp::File {
        path: super::p("/a"),
        content: mixed(300 << 10),
        mode: None,
        owner: None,
    }];
    let (out, blob) = super::build_ok(ops);
    assert_eq!(out.desc.blob, out.desc.diff_id);
    assert_eq!(out.desc.blob, crate::Digest::of(&blob));
    assert_eq!(out.desc.size, blob.len() as u64);
}
