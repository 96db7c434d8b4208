//! What is packed is what the cache key was made from: an input file
//! rewritten (even to the same size) after the planner opened its input for
//! the key is refused when the layer is written, for a copied directory's
//! file and a copied file alike; an input left alone builds (issue 16).

use std::fs;
use std::path::Path;
use std::time::Duration;

use strata_layer::{Compression, HostInput, ImagePath, JobOp, LayerJob, LowerView, build};

fn copy_job(src: &Path) -> LayerJob {
    LayerJob {
        ops: vec![JobOp::Copy {
            src: HostInput::open(src).unwrap(),
            to: ImagePath::parse_abs("/app").expect("a path"),
            into_dir: false,
            mode: None,
            owner: None,
        }],
        epoch: 1_700_000_000,
        compression: Compression::None,
        limits: Default::default(),
    }
}

fn write(job: &LayerJob) -> Result<Vec<u8>, String> {
    let mut blob = Vec::new();
    build(job, &LowerView::new(), &mut blob, &|_| {})
        .map(|_| blob)
        .map_err(|e| e.to_string())
}

#[test]
fn an_input_rewritten_after_it_was_opened_for_the_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tree");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/f"), b"before").unwrap();
    let file = tmp.path().join("one");
    fs::write(&file, b"before").unwrap();

    // Left alone: both build, with the bytes they had.
    for src in [&dir, &file] {
        let blob = write(&copy_job(src)).expect("an unchanged input builds");
        assert!(blob.windows(6).any(|w| w == b"before"));
    }

    // Rewritten to the same size after the open (a clock tick later).
    for src in [&dir, &file] {
        let job = copy_job(src);
        std::thread::sleep(Duration::from_millis(30));
        let target = if src.is_dir() {
            dir.join("sub/f")
        } else {
            file.clone()
        };
        fs::write(&target, b"after!").unwrap();
        let err = write(&job).expect_err("a rewritten input is refused");
        assert!(err.contains("changed while composing"), "{err}");
        assert!(
            err.contains(&target.display().to_string()) || err.contains("one"),
            "{err}"
        );
    }
}
