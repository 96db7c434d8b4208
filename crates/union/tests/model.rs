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
