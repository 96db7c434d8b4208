//! The on-disk applier never writes outside its directory, whatever the
//! layers hold: symlinks in the way of later entries, whiteouts through
//! symlinks, hard links that point out; and the model agrees on what the
//! union then is.

use std::fs;
use std::path::{Path, PathBuf};

use strata_union::model::{Model, describe, read_dir_tree};

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A plain tar layer written with the `tar` crate (a second implementation,
/// free to hold what strata's own writer never would).
fn layer(dir: &Path, name: &str, entries: &[E<'_>]) -> PathBuf {
    let path = dir.join(name);
    let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap();
    path
}

fn listing(blob: &Path) -> strata_layer::Listing {
    strata_layer::list_blob(fs::File::open(blob).unwrap()).unwrap()
}

#[test]
fn symlinks_in_the_way_are_replaced_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"keep me").unwrap();
    let out = outside.display().to_string();
    let l1 = layer(
        tmp.path(),
        "l1.tar",
        &[
            E::Symlink("a", &out),
            E::Symlink("up", "../../../../../../.."),
            E::Dir("d"),
            E::Symlink("d/s", &out),
        ],
    );
    let l2 = layer(
        tmp.path(),
        "l2.tar",
        &[
            // No `a/` entry: the applier must make `a` a real directory.
            E::File("a/victim", b"overwritten?"),
            E::File("up/escape", b"escaped?"),
            // A whiteout through a symlinked parent hides nothing.
            E::File("d/s/.wh.victim", b""),
            E::Hardlink("h", "a/victim"),
        ],
    );
    let root = tmp.path().join("root");
    strata_union::apply_blobs(&[l1.clone(), l2.clone()], &root).unwrap();

    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep me");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing added outside"
    );
    assert!(fs::symlink_metadata(root.join("a")).unwrap().is_dir());
    assert_eq!(fs::read(root.join("a/victim")).unwrap(), b"overwritten?");
    assert_eq!(fs::read(root.join("up/escape")).unwrap(), b"escaped?");
    assert!(fs::symlink_metadata(root.join("d/s")).unwrap().is_symlink());
    assert_eq!(fs::read(root.join("h")).unwrap(), b"overwritten?");

    let owners = strata_union::running_as_root();
    let model = Model::of(&[listing(&l1), listing(&l2)]).unwrap();
    assert_eq!(
        describe(&read_dir_tree(&root).unwrap(), owners),
        describe(model.nodes(), owners)
    );
}

#[test]
fn a_hard_link_must_name_a_file_inside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = layer(tmp.path(), "l1.tar", &[E::Symlink("etc", "/etc")]);
    let l2 = layer(tmp.path(), "l2.tar", &[E::Hardlink("pw", "etc/passwd")]);
    let err = strata_union::apply_blobs(&[l1, l2], &tmp.path().join("root")).unwrap_err();
    assert!(
        err.to_string().contains("hard link to /etc/passwd"),
        "{err}"
    );
    let l3 = layer(
        tmp.path(),
        "l3.tar",
        &[E::Hardlink("pw", "../../etc/passwd")],
    );
    let err = strata_union::apply_blobs(&[l3], &tmp.path().join("root2")).unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");
}

#[test]
fn the_target_directory_must_be_new_or_empty() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("x"), b"").unwrap();
    let err = strata_union::apply_blobs(&[], tmp.path()).unwrap_err();
    assert!(err.to_string().contains("not an empty directory"), "{err}");
}

#[test]
fn an_opaque_marker_spares_what_its_own_layer_wrote_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = layer(
        tmp.path(),
        "l1.tar",
        &[
            E::Dir("d"),
            E::File("d/old", b"1"),
            E::File("d/-early", b"1"),
        ],
    );
    // `-` sorts before `.`: `d/-new` precedes the marker in tar order.
    let l2 = layer(
        tmp.path(),
        "l2.tar",
        &[
            E::Dir("d"),
            E::File("d/-new", b"2"),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/z", b"2"),
        ],
    );
    let root = tmp.path().join("root");
    strata_union::apply_blobs(&[l1.clone(), l2.clone()], &root).unwrap();
    let mut names: Vec<String> = fs::read_dir(root.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["-new", "z"]);
    let model = Model::of(&[listing(&l1), listing(&l2)]).unwrap();
    assert_eq!(
        describe(&read_dir_tree(&root).unwrap(), false),
        describe(model.nodes(), false)
    );
}

#[test]
fn the_union_as_one_layer_keeps_hard_links_and_drops_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = layer(
        tmp.path(),
        "l1.tar",
        &[
            E::Dir("d"),
            E::File("d/f", b"shared"),
            E::Hardlink("d/g", "d/f"),
            E::File("gone", b"x"),
        ],
    );
    let l2 = layer(
        tmp.path(),
        "l2.tar",
        &[E::File(".wh.gone", b""), E::Hardlink("h", "d/f")],
    );
    let blobs = [l1.clone(), l2.clone()];
    let model = Model::of(&[listing(&l1), listing(&l2)]).unwrap();
    let spool = tmp.path().join("spool");
    fs::create_dir(&spool).unwrap();
    let entries = strata_union::squash::union_entries(&model, &blobs, &spool).unwrap();
    let blob = tmp.path().join("squashed.tar");
    strata_layer::build_entries(
        &entries,
        0,
        strata_layer::Compression::None,
        &mut fs::File::create(&blob).unwrap(),
        &|_| {},
    )
    .unwrap();
    let digest = strata_layer::Digest::of(b"shared");
    assert_eq!(
        listing(&blob).text(),
        format!(
            "/d/ dir 0755 0:0\n/d/f file 0644 0:0 6 {digest}\n\
             /d/g hardlink 0644 0:0 => /d/f\n/h hardlink 0644 0:0 => /d/f\n"
        )
    );
    let root = tmp.path().join("root");
    strata_union::apply_blobs(&[blob], &root).unwrap();
    let owners = strata_union::running_as_root();
    assert_eq!(
        describe(&read_dir_tree(&root).unwrap(), owners),
        describe(model.nodes(), owners)
    );
}

/// A `from-dir` tree whose directory is swapped for a symlink to an
/// outside directory after it was listed: packing fails ("changed") rather
/// than read the outside file of the same name and size (issue 16). The
/// listed paths are physical and every component is opened without
/// following symlinks.
#[test]
fn a_directory_swapped_for_a_symlink_after_listing_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/z"), b"harmless").unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("z"), b"SECRET!!").unwrap();

    let lower = Model::of(std::iter::empty()).unwrap();
    let opts = strata_union::DiffOptions {
        exact_modes: true,
        owners: false,
        keep_missing_devices: true,
        xattrs: false,
    };
    // Listed through a symlink to the tree: recorded at its physical path.
    std::os::unix::fs::symlink(&tree, tmp.path().join("via")).unwrap();
    let entries = strata_union::diff_dir(&lower, &tmp.path().join("via"), opts).unwrap();
    assert!(
        entries.iter().any(|e| e.path.to_string() == "/sub/z"),
        "{entries:?}"
    );

    fs::rename(tree.join("sub"), tmp.path().join("sub-moved")).unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("sub")).unwrap();
    let mut out = Vec::new();
    let err = strata_layer::build_entries(
        &entries,
        0,
        strata_layer::Compression::None,
        &mut out,
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("changed"), "{err}");
    assert!(
        !out.windows(8).any(|w| w == b"SECRET!!"),
        "the outside file was packed"
    );
}
