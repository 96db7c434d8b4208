//! The spec's `compression ... level=N` reaches every layer job, its
//! compressor identity and so its key; no level keeps the defaults.

use std::path::Path;

use strata_layer::Compression;
use strata_plan::PlanOptions;

fn job_compression(dir: &Path, top: &str) -> (Compression, String) {
    let text = format!("{top}\nimage app {{\n    layer l {{ file \"/x\" \"1\" }}\n}}\n");
    let spec = strata_spec::parse("s.kdl", &text).unwrap();
    let p = strata_plan::plan(&spec, &dir.join("s.kdl"), &PlanOptions::default()).unwrap();
    (p.layers[0].compression(), p.layers[0].key.hex())
}

#[test]
fn a_level_reaches_the_job_and_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (default, k_default) = job_compression(d, "");
    assert_eq!(default, Compression::DEFAULT_GZIP);
    assert_eq!(job_compression(d, "compression \"gzip\"").1, k_default);

    let (c, k9) = job_compression(d, "compression \"gzip\" level=9");
    assert_eq!(c, Compression::Gzip { level: 9 });
    assert!(c.identity().contains("/9/"), "{}", c.identity());
    assert_ne!(k9, k_default, "the level is in the key");

    let (z, kz) = job_compression(d, "compression \"zstd\" level=19");
    assert_eq!(z, Compression::Zstd { level: 19 });
    assert_ne!(kz, job_compression(d, "compression \"zstd\"").1);
    assert_eq!(
        job_compression(d, "compression \"zstd\"").0,
        Compression::DEFAULT_ZSTD
    );
}
