//! Fuzz target: arbitrary bytes given as an input archive to the layer
//! builder (`add` of a tarball) and to `list_blob` never panic, and the
//! builder writes nothing on the host but to its writer: its temporary
//! directory (where archives are spooled, as anonymous files) is empty after
//! every run, whatever the outcome.

#![no_main]

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strata_layer::{Compression, ImagePath, JobOp, LayerJob, Limits, LowerView};

struct Dirs {
    input: PathBuf,
    spool: PathBuf,
    _keep: (tempfile::TempDir, tempfile::TempDir),
}

fn dirs() -> &'static Dirs {
    static DIRS: OnceLock<Dirs> = OnceLock::new();
    DIRS.get_or_init(|| {
        let input = tempfile::tempdir().expect("a temp dir");
        let spool = tempfile::tempdir().expect("a temp dir");
        // The spool goes to the temporary directory: point it at an empty
        // one of ours, before any thread reads the environment.
        // SAFETY: set once, at the start of the single fuzzing thread.
        unsafe { std::env::set_var("TMPDIR", spool.path()) };
        Dirs {
            input: input.path().join("input.tar"),
            spool: spool.path().to_path_buf(),
            _keep: (input, spool),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dirs();
    std::fs::write(&d.input, data).expect("the input is written");
    let job = LayerJob {
        ops: vec![JobOp::Unpack {
            archive: d.input.clone(),
            to: ImagePath::parse_abs("/opt/").expect("a path"),
            owner: None,
            mode: None,
        }],
        epoch: 0,
        compression: Compression::None,
        // Small limits keep each run fast; the bounds themselves are tested.
        limits: Limits {
            max_input_size: 64 << 20,
            max_entries: 100_000,
        },
    };
    let mut blob = Vec::new();
    if let Ok(out) = strata_layer::build(&job, &LowerView::new(), &mut blob, &|_| {}) {
        // What was built reads back as what the builder listed.
        let back = strata_layer::list_blob(&blob[..]).expect("a built blob lists");
        assert_eq!(back, out.listing);
    }
    let _ = strata_layer::list_blob(data);
    let _ = strata_layer::list_blob(io::Cursor::new(data));
    let left = std::fs::read_dir(&d.spool).expect("the spool dir").count();
    assert_eq!(left, 0, "the builder left files in its temporary directory");
});
