//! Invariant 1: the same job and inputs give the same bytes, whatever the
//! host's order, mtimes and permission noise.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::*;

#[test]
fn the_same_job_twice_gives_the_same_bytes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).expect("dirs");
    put_file(&src, "a.txt", b"alpha");
    put_file(&src.join("sub"), "b.bin", &[0u8; 2000]);
    let archive = put_file(
        dir.path(),
        "in.tar.gz",
        &gz(&tar_of(&[Member::file("x/y", b"z")])),
    );
    let ops = vec![
        unpack(&archive, "/opt"),
        JobOp::Copy {
            src: crate::HostInput::open(&src).unwrap(),
            to: p("/app"),
            into_dir: true,
            mode: None,
            owner: None,
        },
        file("/etc/conf", b"k=v"),
    ];
    for c in [
        Compression::DEFAULT_GZIP,
        Compression::DEFAULT_ZSTD,
        Compression::None,
    ] {
        let first = build_job(&job(ops.clone(), c), &LowerView::new()).expect("builds");
        let second = build_job(&job(ops.clone(), c), &LowerView::new()).expect("builds");
        assert_eq!(first.1, second.1, "{c:?}");
        assert_eq!(first.0, second.0, "{c:?}");
    }
}

/// Files of a small host tree: relative path -> (content, exec bit). No
/// path is a directory of another.
fn arb_tree() -> impl Strategy<Value = Vec<(String, Vec<u8>, bool)>> {
    prop::collection::btree_map(
        "[a-c]{1,2}(/[a-c]{1,2}){0,2}",
        (prop::collection::vec(any::<u8>(), 0..64), any::<bool>()),
        1..10,
    )
    .prop_map(|m: BTreeMap<String, (Vec<u8>, bool)>| {
        let keys: Vec<String> = m.keys().cloned().collect();
        m.into_iter()
            .filter(|(k, _)| !keys.iter().any(|o| o.starts_with(&format!("{k}/"))))
            .map(|(k, (data, exec))| (k, data, exec))
            .collect()
    })
}

/// A tiny deterministic generator, so a seed decides order and noise.
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

/// Creates the tree in an order, with modes and mtimes, chosen by `seed`.
fn materialise(files: &[(String, Vec<u8>, bool)], seed: u64) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut rng = Lcg(seed);
    let mut order: Vec<usize> = (0..files.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let mut dirs = Vec::new();
    for &i in &order {
        let (rel, data, exec) = &files[i];
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("dirs");
            dirs.push(parent.to_owned());
        }
        fs::write(&path, data).expect("a file");
        let noise = rng.next() as u32;
        let mode = if *exec {
            0o700 | (noise & 0o077)
        } else {
            0o600 | (noise & 0o066)
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        let f = fs::File::options().write(true).open(&path).expect("open");
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(rng.next()))
            .expect("mtime");
    }
    for d in dirs {
        let noise = rng.next() as u32;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700 | (noise & 0o055)))
            .expect("chmod");
    }
    dir
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn host_trees_give_the_same_layer(files in arb_tree(), a in any::<u64>(), b in any::<u64>()) {
        let built: Vec<Vec<u8>> = [a, b]
            .iter()
            .map(|&seed| {
                let tree = materialise(&files, seed);
                let op = JobOp::Copy {
                    src: crate::HostInput::open(tree.path()).unwrap(),
                    to: p("/app/"),
                    into_dir: true,
                    mode: None,
                    owner: None,
                };
                build_job(&job(vec![op], Compression::Gzip { level: 1 }), &LowerView::new())
                    .expect("builds")
                    .1
            })
            .collect();
        prop_assert_eq!(&built[0], &built[1]);
    }
}
