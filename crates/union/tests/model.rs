//! The reference model on hand-written listings: the OCI rules one by one.

use strata_layer::{Digest, Entry, EntryKind, ImagePath, Listing};
use strata_union::model::{Model, describe};

fn e(path: &str, kind: EntryKind) -> Entry {
    Entry {
        path: ImagePath(path.as_bytes().to_vec()),
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        size: 1,
        digest: (kind == EntryKind::File).then(|| Digest::of(path.as_bytes())),
        link: None,
        device: None,
        xattrs: Vec::new(),
    }
}

fn link(path: &str, kind: EntryKind, target: &str) -> Entry {
    Entry {
        link: Some(target.as_bytes().to_vec()),
        ..e(path, kind)
    }
}

fn layer(entries: Vec<Entry>) -> Listing {
    Listing { entries }
}

fn paths(m: &Model) -> Vec<String> {
    describe(m.nodes(), false)
        .lines()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn whiteouts_hide_only_the_layers_below_whatever_their_order() {
    use EntryKind::*;
    let m = Model::of(&[
        layer(vec![e("a", Dir), e("a/x", File), e("b", File)]),
        // The entry comes first in the tar, its whiteout after: the entry stays.
        layer(vec![
            e("b", File),
            e("b", Whiteout),
            e("a", Opaque),
            e("a/y", File),
        ]),
    ])
    .unwrap();
    assert_eq!(paths(&m), ["/a dir", "/a/y file", "/b file"]);
}

#[test]
fn type_changes_replace_what_was_there_with_everything_below() {
    use EntryKind::*;
    let m = Model::of(&[
        layer(vec![e("d", Dir), e("d/x", File), e("f", File), e("s", Dir)]),
        layer(vec![
            e("d", File),
            e("f/inner", File),
            link("s", Symlink, "d"),
        ]),
    ])
    .unwrap();
    // A file in place of a directory drops its contents; a file in the way
    // of a new entry's parent becomes a directory (0755 0:0).
    assert_eq!(
        paths(&m),
        ["/d file", "/f dir", "/f/inner file", "/s symlink"]
    );
    assert_eq!(m.get(&ImagePath(b"f".to_vec())).unwrap().mode, 0o755);
}

#[test]
fn a_directory_on_a_directory_keeps_its_contents_and_takes_the_new_metadata() {
    use EntryKind::*;
    let mut d = e("d", Dir);
    d.mode = 0o700;
    d.uid = 7;
    let m = Model::of(&[layer(vec![e("d", Dir), e("d/x", File)]), layer(vec![d])]).unwrap();
    assert_eq!(paths(&m), ["/d dir", "/d/x file"]);
    let node = m.get(&ImagePath(b"d".to_vec())).unwrap();
    assert_eq!((node.mode, node.uid), (0o700, 7));
}

#[test]
fn a_hard_link_is_its_target_and_outlives_it() {
    use EntryKind::*;
    let m = Model::of(&[
        layer(vec![e("f", File), link("g", Hardlink, "f")]),
        layer(vec![e("f", Whiteout)]),
    ])
    .unwrap();
    assert_eq!(paths(&m), ["/g file"]);
    let err = Model::of(&[layer(vec![link("g", Hardlink, "nothing")])]).unwrap_err();
    assert!(err.to_string().contains("hard link"), "{err}");
}

mod against_the_lower_view {
    //! The whiteout rules live twice: `strata_oci::LowerView` (which paths
    //! a stack shows, for `delete`) and the reference model here (what the
    //! union holds). Random stacks of listings must give both the same
    //! paths, with the same kinds.

    use proptest::prelude::*;
    use strata_layer::{EntryKind, ImagePath, Listing, LowerView};
    use strata_union::model::{Kind, Model};

    use super::e;

    /// A small name space, so that layers collide often.
    fn gen_path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
            .prop_map(|c| c.join("/"))
    }

    fn gen_kind() -> impl Strategy<Value = EntryKind> {
        prop::sample::select(vec![
            EntryKind::Dir,
            EntryKind::File,
            EntryKind::Fifo,
            EntryKind::Whiteout,
            EntryKind::Opaque,
        ])
    }

    /// A layer as a tar holds it: sorted by path, one entry per path and
    /// kind class.
    fn gen_layer() -> impl Strategy<Value = Listing> {
        prop::collection::btree_map((gen_path(), any::<bool>()), gen_kind(), 0..6).prop_map(|m| {
            let mut entries: Vec<_> = m
                .into_iter()
                .map(|((p, marker), k)| {
                    let k = match (marker, k) {
                        (true, EntryKind::Dir | EntryKind::File | EntryKind::Fifo) => {
                            EntryKind::Whiteout
                        }
                        (false, EntryKind::Whiteout | EntryKind::Opaque) => EntryKind::File,
                        (_, k) => k,
                    };
                    e(&p, k)
                })
                .collect();
            // One real entry per path: a path that is a whiteout and an
            // entry in one layer is legal, two real entries are not.
            entries.sort_by(|x, y| x.path.cmp(&y.path));
            entries.dedup_by(|x, y| {
                x.path == y.path
                    && !matches!(x.kind, EntryKind::Whiteout | EntryKind::Opaque)
                    && !matches!(y.kind, EntryKind::Whiteout | EntryKind::Opaque)
            });
            Listing { entries }
        })
    }

    fn kind_of(k: &Kind) -> EntryKind {
        match k {
            Kind::Dir => EntryKind::Dir,
            Kind::File { .. } => EntryKind::File,
            Kind::Symlink(_) => EntryKind::Symlink,
            Kind::Char(..) => EntryKind::Char,
            Kind::Block(..) => EntryKind::Block,
            Kind::Fifo => EntryKind::Fifo,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn both_implementations_show_the_same_paths(layers in prop::collection::vec(gen_layer(), 1..5)) {
            let mut view = LowerView::new();
            let mut model = Model::new();
            for layer in &layers {
                view.apply(layer);
                model.apply(layer).unwrap();
            }
            let from_view: Vec<(ImagePath, EntryKind)> = view
                .paths()
                .map(|p| (p.clone(), view.kind(p).unwrap()))
                .collect();
            let from_model: Vec<(ImagePath, EntryKind)> = model
                .nodes()
                .iter()
                .filter(|(p, _)| !p.is_root())
                .map(|(p, n)| (p.clone(), kind_of(&n.kind)))
                .collect();
            prop_assert_eq!(from_view, from_model);
        }
    }
}
