//! Random stacks of layers (adds, overwrites, deletes, opaque replacements,
//! type changes file <-> directory <-> symlink), built by `strata_layer`,
//! give the same tree through the on-disk applier (`strata rootfs`), through
//! the reference model, and, where umoci is installed, through
//! `umoci unpack` of the same image.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use strata_layer::{Compression, ImagePath, JobOp, LayerJob, Listing, LowerView, Owner};
use strata_union::model::{Model, describe, read_dir_tree};

/// The paths ops write to: few, so that layers collide often.
const PATHS: &[&str] = &[
    "a", "b", "c", "a/a", "a/b", "b/a", "b/b", "a/a/a", "a/a/b", "a/b/a", "c/a", "-x", "a/-y",
];

#[derive(Debug, Clone)]
enum GenOp {
    File {
        path: usize,
        content: u8,
        mode: u32,
        owned: bool,
    },
    Mkdir {
        path: usize,
        mode: u32,
    },
    Symlink {
        path: usize,
        target: u8,
    },
    /// Delete the n-th path (modulo) of the union below.
    Delete(usize),
    /// Delete the n-th directory of the union below and write it again
    /// with a new file in it: an opaque directory.
    Replace(usize),
}

fn gen_op() -> impl Strategy<Value = GenOp> {
    let path = 0..PATHS.len();
    prop_oneof![
        4 => (path.clone(), 0u8..3, prop::sample::select(vec![0o644u32, 0o755, 0o600, 0o4755]), any::<bool>())
            .prop_map(|(path, content, mode, owned)| GenOp::File { path, content, mode, owned }),
        2 => (path.clone(), prop::sample::select(vec![0o755u32, 0o700, 0o555, 0o1777]))
            .prop_map(|(path, mode)| GenOp::Mkdir { path, mode }),
        2 => (path, 0u8..3).prop_map(|(path, target)| GenOp::Symlink { path, target }),
        2 => any::<usize>().prop_map(GenOp::Delete),
        1 => any::<usize>().prop_map(GenOp::Replace),
    ]
}

fn p(s: &str) -> ImagePath {
    ImagePath(s.as_bytes().to_vec())
}

/// The job ops of one generated op, given the union below.
fn job_ops(op: &GenOp, lower: &LowerView) -> Vec<JobOp> {
    match op {
        GenOp::File {
            path,
            content,
            mode,
            owned,
        } => vec![JobOp::File {
            path: p(PATHS[*path]),
            content: format!("content {content}\n").into_bytes(),
            mode: Some(*mode),
            owner: owned.then_some(Owner {
                uid: 1000,
                gid: 100,
            }),
        }],
        GenOp::Mkdir { path, mode } => vec![JobOp::Mkdir {
            path: p(PATHS[*path]),
            mode: Some(*mode),
            owner: None,
        }],
        GenOp::Symlink { path, target } => vec![JobOp::Symlink {
            path: p(PATHS[*path]),
            target: [&b"a"[..], b"../b", b"/c/a"][usize::from(*target)].to_vec(),
            owner: None,
        }],
        GenOp::Delete(n) => {
            let paths: Vec<&ImagePath> = lower.paths().collect();
            if paths.is_empty() {
                return Vec::new();
            }
            vec![JobOp::Delete {
                path: paths[n % paths.len()].clone(),
            }]
        }
        GenOp::Replace(n) => {
            let dirs: Vec<&ImagePath> = lower.paths().filter(|p| lower.is_dir(p)).collect();
            if dirs.is_empty() {
                return Vec::new();
            }
            let d = dirs[n % dirs.len()].clone();
            vec![
                JobOp::Delete { path: d.clone() },
                JobOp::Mkdir {
                    path: d.clone(),
                    mode: Some(0o750),
                    owner: None,
                },
                JobOp::File {
                    path: d.join(b"new"),
                    content: b"replaced\n".to_vec(),
                    mode: None,
                    owner: None,
                },
            ]
        }
    }
}

/// Builds one layer from `ops`, dropping ops the builder refuses (a delete
/// of a path an earlier op of the layer already removed, say).
fn build_layer(mut ops: Vec<JobOp>, lower: &LowerView, blob: &Path) -> Listing {
    loop {
        let job = LayerJob {
            ops: ops.clone(),
            epoch: 0,
            compression: Compression::DEFAULT_GZIP,
            limits: Default::default(),
        };
        let mut out = std::fs::File::create(blob).unwrap();
        match strata_layer::build(&job, lower, &mut out, &|_| {}) {
            Ok(built) => return built.listing,
            Err(
                strata_layer::Error::DeleteMissing { op, .. }
                | strata_layer::Error::BadPath { op, .. },
            ) => {
                ops.remove(op);
            }
            Err(e) => panic!("build: {e}"),
        }
    }
}

struct Stack {
    blobs: Vec<PathBuf>,
    listings: Vec<Listing>,
}

fn build_stack(layers: &[Vec<GenOp>], dir: &Path) -> Stack {
    let mut lower = LowerView::new();
    let mut stack = Stack {
        blobs: Vec::new(),
        listings: Vec::new(),
    };
    for (i, layer) in layers.iter().enumerate() {
        let ops: Vec<JobOp> = layer.iter().flat_map(|op| job_ops(op, &lower)).collect();
        let blob = dir.join(format!("layer{i}.tar.gz"));
        let listing = build_layer(ops, &lower, &blob);
        lower.apply(&listing);
        stack.blobs.push(blob);
        stack.listings.push(listing);
    }
    stack
}

fn is_root() -> bool {
    strata_union::running_as_root()
}

/// Writes the stack as an OCI layout with one image `t`.
fn write_layout(stack: &Stack, dir: &Path) {
    let layers = stack
        .blobs
        .iter()
        .zip(&stack.listings)
        .map(|(blob, _)| {
            let bytes = std::fs::read(blob).unwrap();
            let diff_id = {
                let mut dec = flate2::read::MultiGzDecoder::new(&bytes[..]);
                strata_layer::digest::digest_reader(&mut dec).unwrap().0
            };
            strata_export::LayerDesc {
                desc: strata_layer::LayerDescriptor {
                    blob: strata_layer::Digest::of(&bytes),
                    diff_id,
                    size: bytes.len() as u64,
                    media_type: strata_layer::MediaType::TarGzip,
                },
                blob_path: blob.clone(),
                created_by: "test".to_owned(),
                verified: false,
            }
        })
        .collect();
    let image = strata_export::ExportImage {
        name: "t".to_owned(),
        tag: "latest".to_owned(),
        config: strata_export::ImageConfig {
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            ..Default::default()
        },
        annotations: Default::default(),
        layers,
    };
    strata_export::write_layout(dir, &[image]).unwrap();
}

fn have_umoci() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v umoci"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("umoci is not installed, and CI must have it (see .ci/run)");
        }
        eprintln!("SKIPPED the umoci comparison: umoci is not installed");
    }
    found
}

fn check(layers: &[Vec<GenOp>], with_umoci: bool) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let stack = build_stack(layers, tmp.path());
    let owners = is_root();
    let model = Model::of(&stack.listings).unwrap();
    let expected = describe(model.nodes(), owners);

    let root = tmp.path().join("rootfs");
    strata_union::apply_blobs(&stack.blobs, &root).unwrap();
    let got = describe(&read_dir_tree(&root).unwrap(), owners);
    prop_assert_eq!(&got, &expected, "rootfs vs model");

    if with_umoci {
        let layout = tmp.path().join("layout");
        write_layout(&stack, &layout);
        let bundle = tmp.path().join("bundle");
        let mut cmd = Command::new("umoci");
        cmd.arg("unpack");
        if !owners {
            cmd.arg("--rootless");
        }
        let out = cmd
            .arg("--image")
            .arg(format!("{}:t", layout.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        prop_assert!(
            out.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let umoci = describe(&read_dir_tree(&bundle.join("rootfs")).unwrap(), owners);
        prop_assert_eq!(&umoci, &expected, "umoci unpack vs model");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rootfs_matches_the_model(layers in prop::collection::vec(prop::collection::vec(gen_op(), 1..6), 1..5)) {
        check(&layers, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn umoci_matches_the_model(layers in prop::collection::vec(prop::collection::vec(gen_op(), 1..6), 1..5)) {
        if have_umoci() {
            check(&layers, true)?;
        }
    }
}

/// `squash` of a random stack shows the same tree as the stack, and
/// `commit` of a random stack against the root file system of another
/// random stack shows that other tree.
fn check_derived(a: &[Vec<GenOp>], b: &[Vec<GenOp>]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let owners = is_root();
    let dir_a = tmp.path().join("a");
    std::fs::create_dir(&dir_a).unwrap();
    let stack = build_stack(a, &dir_a);
    let layout = tmp.path().join("layout");
    write_layout(&stack, &layout);
    let expected_a = describe(Model::of(&stack.listings).unwrap().nodes(), owners);

    let opts = strata_union::WriteOptions::default();
    strata_union::squash(&layout, "t", "squashed", opts).unwrap();
    let squashed = tmp.path().join("squashed");
    strata_union::rootfs(&layout, "squashed", &squashed).unwrap();
    prop_assert_eq!(
        &describe(&read_dir_tree(&squashed).unwrap(), owners),
        &expected_a,
        "squash"
    );

    let dir_b = tmp.path().join("b");
    std::fs::create_dir(&dir_b).unwrap();
    let other = build_stack(b, &dir_b);
    let target = tmp.path().join("target");
    strata_union::apply_blobs(&other.blobs, &target).unwrap();
    let expected_b = describe(&read_dir_tree(&target).unwrap(), owners);
    strata_union::commit(&layout, "t", &target, "committed", opts).unwrap();
    let committed = tmp.path().join("committed");
    strata_union::rootfs(&layout, "committed", &committed).unwrap();
    prop_assert_eq!(
        &describe(&read_dir_tree(&committed).unwrap(), owners),
        &expected_b,
        "commit"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn squash_and_commit_give_the_trees_they_promise(
        a in prop::collection::vec(prop::collection::vec(gen_op(), 1..6), 1..4),
        b in prop::collection::vec(prop::collection::vec(gen_op(), 1..6), 1..4),
    ) {
        check_derived(&a, &b)?;
    }
}
