//! Property test: random host trees, created in shuffled order with random
//! mtimes and permission noise, give byte-identical layers through `copy`.
//!
//! The trees hold what breaks naive tar writers: names with unicode, names
//! and paths over the 100 bytes of a ustar name field, deep nesting, empty
//! directories, symlinks (relative, absolute, dangling, long), hardlinks and
//! exec bits. Besides determinism, each case checks what the layer says of
//! every node, so a tree that silently lost entries cannot pass.
//!
//! Host hardlinks are not preserved: `copy` reads each path as its own file,
//! so two names of one inode become two regular files with the same content
//! (deterministic, whatever the inode numbers; a tar hardlink would depend on
//! which name the walk met first only through sorting, but strata does not
//! try). The test pins that behaviour.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;
use strata_layer::{
    BuildOutput, Compression, EntryKind, ImagePath, JobOp, LayerJob, LowerView, build,
};

#[derive(Debug, Clone)]
enum Node {
    File {
        data: Vec<u8>,
        exec: bool,
    },
    EmptyDir,
    Symlink(String),
    /// Another name for the file at this index of the regular files (mod their count).
    Hardlink(usize),
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-d]{1,3}",
        1 => Just("é".to_owned()),
        1 => Just("日本語".to_owned()),
        1 => Just("🦀 crab".to_owned()),
        1 => "ü[a-b]{0,2}",
        // Over the 100-byte ustar name field on its own (the file system allows 255).
        1 => "[l]{101,180}",
    ]
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        6 => (prop::collection::vec(any::<u8>(), 0..200), any::<bool>())
            .prop_map(|(data, exec)| Node::File { data, exec }),
        1 => Just(Node::EmptyDir),
        2 => prop_oneof![
            "[a-d]{1,3}",
            Just("../a".to_owned()),
            Just("/etc/passwd".to_owned()),
            Just("日本語/é".to_owned()),
            "[t]{101,160}",
        ]
        .prop_map(Node::Symlink),
        1 => any::<usize>().prop_map(Node::Hardlink),
    ]
}

/// Paths (relative, `/`-separated) to nodes; no path lies below a
/// non-directory, and some are deep.
fn tree() -> impl Strategy<Value = BTreeMap<String, Node>> {
    let path = prop_oneof![
        3 => prop::collection::vec(component(), 1..4),
        1 => prop::collection::vec(component(), 8..14),
    ]
    .prop_map(|c| c.join("/"));
    prop::collection::btree_map(path, node(), 1..24).prop_map(|m| {
        let keys: Vec<String> = m.keys().cloned().collect();
        m.into_iter()
            .filter(|(k, _)| !keys.iter().any(|o| o.starts_with(&format!("{k}/"))))
            .collect()
    })
}

/// A small deterministic generator, so a seed decides order and noise.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn time(&mut self) -> filetime::FileTime {
        filetime::FileTime::from_unix_time((self.next() % 4_000_000_000) as i64, 0)
    }
}

/// The regular files of the tree, in path order (hardlink targets).
fn files(tree: &BTreeMap<String, Node>) -> Vec<&String> {
    tree.iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| p)
        .collect()
}

/// Creates the tree under a new temporary directory, in an order, with
/// permission noise and mtimes, chosen by `seed`. Hardlinks come after the
/// files they name; directory mtimes are set last (creating a child would
/// reset them).
fn materialise(tree: &BTreeMap<String, Node>, seed: u64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let root = tmp.path().join("tree");
    fs::create_dir(&root).expect("the root");
    let mut rng = Lcg(seed);
    let mut order: Vec<(&String, &Node)> = tree.iter().collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    order.sort_by_key(|(_, n)| matches!(n, Node::Hardlink(_)));
    let targets = files(tree);
    let mut dirs = vec![root.clone()];
    for (rel, node) in order {
        let path = root.join(rel);
        let parent = path.parent().expect("below the root");
        fs::create_dir_all(parent).expect("parent dirs");
        for a in Path::new(rel).ancestors().skip(1) {
            if !a.as_os_str().is_empty() {
                dirs.push(root.join(a));
            }
        }
        match node {
            Node::File { data, exec } => {
                fs::write(&path, data).expect("a file");
                let noise = rng.next() as u32;
                let mode = if *exec {
                    0o700 | (noise & 0o077)
                } else {
                    0o600 | (noise & 0o066)
                };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
                filetime::set_file_mtime(&path, rng.time()).expect("mtime");
            }
            Node::EmptyDir => {
                fs::create_dir(&path).expect("a dir");
                dirs.push(path);
            }
            Node::Symlink(target) => {
                std::os::unix::fs::symlink(target, &path).expect("a symlink");
                let t = rng.time();
                filetime::set_symlink_file_times(&path, t, t).expect("symlink mtime");
            }
            Node::Hardlink(i) => match targets.get(i % targets.len().max(1)) {
                Some(target) => fs::hard_link(root.join(target), &path).expect("a hardlink"),
                // No regular file to link to: an empty file stands in.
                None => fs::write(&path, b"").expect("a file"),
            },
        }
    }
    dirs.sort();
    dirs.dedup();
    for i in (1..dirs.len()).rev() {
        dirs.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    for d in dirs {
        let noise = rng.next() as u32;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700 | (noise & 0o055)))
            .expect("chmod");
        filetime::set_file_mtime(&d, rng.time()).expect("dir mtime");
    }
    tmp
}

fn build_tree(dir: &Path) -> (BuildOutput, Vec<u8>) {
    let job = LayerJob {
        ops: vec![JobOp::Copy {
            src: strata_layer::HostInput::open(&dir.join("tree")).unwrap(),
            to: ImagePath::parse_abs("/app").expect("a path"),
            into_dir: false,
            mode: None,
            owner: None,
        }],
        epoch: 1_700_000_000,
        compression: Compression::None,
        limits: Default::default(),
    };
    let mut blob = Vec::new();
    let out = build(&job, &LowerView::new(), &mut blob, &|_| {}).expect("the tree builds");
    (out, blob)
}

/// What the layer must say of each node of the tree.
fn check_listing(tree: &BTreeMap<String, Node>, out: &BuildOutput) -> Result<(), TestCaseError> {
    let by_path: BTreeMap<String, &strata_layer::Entry> = out
        .listing
        .entries
        .iter()
        .map(|e| (String::from_utf8_lossy(e.path.as_bytes()).into_owned(), e))
        .collect();
    let targets = files(tree);
    for (rel, node) in tree {
        let key = format!("app/{rel}");
        let e = by_path.get(&key);
        prop_assert!(e.is_some(), "{key} is missing from the layer");
        let e = e.expect("checked");
        prop_assert_eq!((e.uid, e.gid), (0, 0), "{}", key);
        match node {
            Node::File { data, exec } => {
                prop_assert_eq!(e.kind, EntryKind::File, "{}", key);
                prop_assert_eq!(e.size, data.len() as u64, "{}", key);
                prop_assert_eq!(e.mode, if *exec { 0o755 } else { 0o644 }, "{}", key);
            }
            Node::EmptyDir => {
                prop_assert_eq!(e.kind, EntryKind::Dir, "{}", key);
                prop_assert_eq!(e.mode, 0o755, "{}", key);
            }
            Node::Symlink(target) => {
                prop_assert_eq!(e.kind, EntryKind::Symlink, "{}", key);
                prop_assert_eq!(e.link.as_deref(), Some(target.as_bytes()), "{}", key);
            }
            Node::Hardlink(i) => {
                // Copied as a file of its own, with its target's content.
                prop_assert_eq!(e.kind, EntryKind::File, "{}", key);
                if let Some(t) = targets.get(i % targets.len().max(1)) {
                    let target = by_path.get(&format!("app/{t}"));
                    prop_assert_eq!(target.and_then(|t| t.digest), e.digest, "{}", key);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_trees_give_identical_layers(tree in tree(), a in any::<u64>(), b in any::<u64>()) {
        let first = materialise(&tree, a);
        let second = materialise(&tree, b);
        let (out_a, blob_a) = build_tree(first.path());
        let (out_b, blob_b) = build_tree(second.path());
        check_listing(&tree, &out_a)?;
        prop_assert_eq!(&out_a.listing, &out_b.listing);
        prop_assert_eq!(out_a.desc.diff_id, out_b.desc.diff_id);
        prop_assert!(blob_a == blob_b, "the layers differ in bytes");
    }
}
