//! Layers of many compression chunks, end to end: the same digests on one and
//! two worker threads, and real `gzip` and `zstd` read each blob back to the
//! tar its diff_id names (issue 7: deterministic parallel compression).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{have, run_ok};

/// About 1.5 MiB: a dozen gzip chunks of text, with two incompressible runs
/// (which `pgzip` stores rather than deflates) between them.
fn mixed_input() -> Vec<u8> {
    let mut data = Vec::with_capacity(1_600_000);
    let mut x: u64 = 0x0123_4567_89ab_cdef;
    for (random, len) in [
        (false, 300),
        (true, 200),
        (false, 300),
        (true, 200),
        (false, 500),
    ] {
        let end = data.len() + len * 1024;
        while data.len() < end {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if random {
                data.extend_from_slice(&x.to_le_bytes());
            } else {
                data.extend_from_slice(
                    format!("row {} of table {}\n", x % 10_007, x % 31).as_bytes(),
                );
            }
        }
    }
    data
}

fn compose(dir: &Path, spec: &str, jobs: usize) -> strata::ComposeReport {
    let opts = strata::ComposeOptions {
        out: dir.join(format!("out-{spec}-{jobs}")),
        cache_dir: Some(dir.join(format!("cache-{spec}-{jobs}"))),
        jobs: Some(jobs),
        ..Default::default()
    };
    strata::compose(&dir.join(format!("{spec}.kdl")), &opts, &|_| {})
        .unwrap_or_else(|e| panic!("{spec}.kdl with {jobs} job(s): {e}"))
}

#[test]
fn many_chunk_layers_are_thread_count_free_and_real_tools_decode_them() {
    let dir = tempfile::tempdir().expect("a temp dir");
    fs::write(dir.path().join("data.bin"), mixed_input()).expect("input");
    for (spec, codec, decode) in [("gz", "gzip", "gzip -dc"), ("zst", "zstd", "zstd -dc")] {
        fs::write(
            dir.path().join(format!("{spec}.kdl")),
            format!(
                "compression \"{codec}\"\nimage big {{\n    layer data {{ copy \"data.bin\" to=\"/data/\" }}\n}}\n"
            ),
        )
        .expect("spec");
        let one = compose(dir.path(), spec, 1);
        let two = compose(dir.path(), spec, 2);
        let layer = &one.images[0].layers[0];
        assert_eq!(
            layer.desc.blob, two.images[0].layers[0].desc.blob,
            "{codec}"
        );
        assert_eq!(one.images[0].manifest, two.images[0].manifest, "{codec}");
        assert!(
            layer.desc.size < 1_500_000,
            "{codec}: {} bytes",
            layer.desc.size
        );

        if !have(
            codec,
            "many_chunk_layers_are_thread_count_free_and_real_tools_decode_them",
        ) {
            continue;
        }
        let blob = dir
            .path()
            .join(format!("out-{spec}-1/blobs/sha256"))
            .join(layer.desc.blob.hex());
        let tar_digest = run_ok(
            Command::new("sh").args(["-c", &format!("{decode} '{}' | sha256sum", blob.display())]),
        );
        assert_eq!(
            format!(
                "sha256:{}",
                tar_digest.split_whitespace().next().unwrap_or("")
            ),
            layer.desc.diff_id.to_string(),
            "{decode} of the blob is not the tar its diff_id names"
        );
    }
}
