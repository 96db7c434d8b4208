//! The compressed bytes are pinned: a fixed corpus (generated here, the same
//! on every machine) is built into a layer with each compression, and the
//! tar's digest (diff_id) and each blob's digest must equal the committed
//! constants below.
//!
//! Why: a layer's blob digest, and through it every manifest and lock file,
//! depends on the exact bytes the compressor writes. A dependency upgrade
//! (libdeflate, zstd) may change them without any change in strata;
//! this test is where that shows, before a user's locked CI does.

use strata_layer::{Compression, ImagePath, JobOp, LayerJob, LowerView};

/// The tar of the corpus: pins strata's tar writer.
const DIFF_ID: &str = "sha256:5b84303a4c03948a895e8912e278c4c18be99d30ea14a8e191698cb9ecaf70e9";

/// (compression, its identity, the blob's sha256).
const GOLDEN: &[(Compression, &str, &str)] = &[
    (
        Compression::None,
        "none",
        "sha256:5b84303a4c03948a895e8912e278c4c18be99d30ea14a8e191698cb9ecaf70e9",
    ),
    (
        Compression::Gzip { level: 4 },
        "gzip/libdeflate-1.26/4/members1-chunk1m",
        "sha256:12c2e79eb2c9826124e1a66b9ed1767df0f483285455dc3f514f421e14031108",
    ),
    (
        Compression::Gzip { level: 6 },
        "gzip/libdeflate-1.26/6/members1-chunk1m",
        "sha256:4a85dc55322307abaa3d5b3b70378e5bb1c176af010cdd2d49cb8da1894f9dbd",
    ),
    (
        Compression::Zstd { level: 3 },
        "zstd/zstd-mt/3/job2m",
        "sha256:b772ea30b1a3eeb89012103f9abb297bde2be86c3c3c06fe5fedb7c9bdfa0c4d",
    ),
];

#[test]
fn the_defaults_are_pinned() {
    for c in [Compression::DEFAULT_GZIP, Compression::DEFAULT_ZSTD] {
        assert!(
            GOLDEN.iter().any(|(g, _, _)| *g == c),
            "{c:?} is a default but has no golden digest"
        );
    }
}

/// A small deterministic generator (PCG-style LCG), so the corpus is the
/// same bytes everywhere without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// About 3.5 MiB, more than three gzip chunks: text-like lines (what
/// compresses well), random bytes (what does not), long runs of zeros, and
/// small files, so every path of each compressor is exercised.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut rng = Lcg(0x5354_5241_5441); // "STRATA"
    let words = [
        "layer",
        "image",
        "tar",
        "gzip",
        "zstd",
        "digest",
        "manifest",
        "config",
        "the",
        "a",
        "of",
        "reproducible",
        "container",
        "strata",
        "0",
        "42",
        "/usr/local/bin",
        "=",
        "\n",
    ];
    let mut text = Vec::new();
    while text.len() < 1 << 21 {
        text.extend_from_slice(words[(rng.next() % words.len() as u64) as usize].as_bytes());
        text.push(b' ');
    }
    let random: Vec<u8> = (0..1 << 19).map(|_| rng.next() as u8).collect();
    let zeros = vec![0u8; 1 << 20];
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("/corpus/text.txt".into(), text),
        ("/corpus/random.bin".into(), random),
        ("/corpus/zeros.bin".into(), zeros),
    ];
    for i in 0..40 {
        let len = (rng.next() % 300) as usize;
        let data = (0..len).map(|_| b'a' + (rng.next() % 26) as u8).collect();
        files.push((format!("/corpus/small/{i:02}.txt"), data));
    }
    files
}

fn job(compression: Compression) -> LayerJob {
    let ops = corpus()
        .into_iter()
        .map(|(path, content)| JobOp::File {
            path: ImagePath::parse_abs(&path).expect("a valid path"),
            content,
            mode: None,
            owner: None,
        })
        .collect();
    LayerJob {
        ops,
        epoch: 0,
        compression,
        limits: Default::default(),
    }
}

#[test]
fn compressed_bytes_match_the_committed_digests() {
    let mut problems: Vec<String> = Vec::new();
    let mut table = String::new();
    let mut diff_id_now = String::new();
    for &(compression, identity, blob) in GOLDEN {
        let mut out = Vec::new();
        let built = strata_layer::build(&job(compression), &LowerView::new(), &mut out, &|_| {})
            .expect("the corpus builds");
        table.push_str(&format!(
            "    {compression:?}: identity {:?}, blob {}\n",
            compression.identity(),
            built.desc.blob
        ));
        diff_id_now = built.desc.diff_id.to_string();
        if built.desc.diff_id.to_string() != DIFF_ID
            && !problems.iter().any(|p| p.starts_with("the tar"))
        {
            problems.push(format!(
                "the tar of the corpus changed: diff_id {} (committed {DIFF_ID}): strata's tar \
                 writer now writes other bytes for the same files; that changes every layer \
                 digest, so bump strata_plan::KEY_FORMAT too",
                built.desc.diff_id
            ));
        }
        if compression.identity() != identity {
            problems.push(format!(
                "{compression:?}: identity {:?} (committed {identity:?})",
                compression.identity()
            ));
        }
        if built.desc.blob.to_string() != blob {
            problems.push(format!(
                "{compression:?} ({identity}): the compressed bytes changed: blob {} (committed {blob})",
                built.desc.blob
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nThe compressor and its level are part of strata's output contract: the same \
         spec and inputs must give the same blob digests. This changed, most likely because a \
         dependency upgrade (libdeflate, zstd) or a change to the compressor (pgzip) \
         writes other compressed bytes. If that is not intended, pin the old version. If it is: \
         \n  1. bump the implementation part of `Compression::identity()` (so cache keys and \
         lock files record the new compressor),\n  2. update the constants in \
         crates/layer/tests/golden.rs with the values below,\n  3. regenerate the demo lock \
         files: `cargo run -p strata-cli -- lock specs/tomcat.kdl` and `cargo run -p \
         strata-cli -- lock specs/hello.kdl`, and say in the change log that every image \
         digest changes.\n\nNow:\n    diff_id {}\n{table}",
        problems.join("\n"),
        diff_id_now,
    );
}

#[test]
fn the_corpus_is_big_enough_for_several_gzip_chunks() {
    let size: usize = corpus().iter().map(|(_, d)| d.len()).sum();
    assert!(size > 3 << 20, "corpus of {size} bytes");
}
