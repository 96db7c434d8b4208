//! Inputs swapped for symlinks between planning and building (issue 16,
//! item 4): the layer packs the handle the planner opened, and below an
//! input directory no symlink is followed, so nothing from outside is read.

use std::fs;
use std::os::unix::fs::symlink;

use super::*;
use crate::HostInput;

const SECRET: &[u8] = b"the neighbour's secret, never to be packed";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn copy(src: HostInput, to: &str) -> JobOp {
    JobOp::Copy {
        src,
        to: p(to),
        into_dir: false,
        mode: None,
        owner: None,
    }
}

#[test]
fn a_file_swapped_for_a_symlink_after_planning_is_never_followed() {
    let outside = tempfile::tempdir().expect("a temp dir");
    let secret = put_file(outside.path(), "secret", SECRET);
    let dir = tempfile::tempdir().expect("a temp dir");
    let x = put_file(dir.path(), "x", b"the input the spec names");
    // Another process swaps it between the planner and the layer, at once:
    // the layer packs the file the planner opened and hashed, or (when the
    // clock ticked meanwhile, and the move changed the inode's ctime)
    // refuses it; never the outside file.
    let input = HostInput::open(&x).expect("opens");
    fs::rename(&x, dir.path().join("x.old")).expect("mv");
    symlink(&secret, &x).expect("symlink");
    match build_on(vec![copy(input, "/x")], &LowerView::new()) {
        Ok((out, tar)) => {
            assert!(!contains(&tar, SECRET), "the outside file was packed");
            assert!(contains(&tar, b"the input the spec names"));
            assert_eq!(lines(&out).len(), 1);
        }
        Err(e) => assert!(e.to_string().contains("changed while composing"), "{e}"),
    }
    // A tick later: refused.
    fs::remove_file(&x).expect("rm");
    fs::rename(dir.path().join("x.old"), &x).expect("mv back");
    let input = HostInput::open(&x).expect("opens");
    std::thread::sleep(std::time::Duration::from_millis(30));
    fs::rename(&x, dir.path().join("x.old")).expect("mv");
    symlink(&secret, &x).expect("symlink");
    let (_, msg) = fails(vec![copy(input, "/x")]);
    assert!(msg.contains("changed while composing"), "{msg}");
}

#[test]
fn a_directory_swapped_for_a_symlink_after_planning_is_an_error() {
    let outside = tempfile::tempdir().expect("a temp dir");
    put_file(outside.path(), "f", SECRET);
    let dir = tempfile::tempdir().expect("a temp dir");
    let d = dir.path().join("d");
    fs::create_dir_all(d.join("sub")).expect("dirs");
    put_file(&d, "f", b"inside");
    put_file(&d.join("sub"), "g", b"inside too");
    let input = HostInput::open(&d).expect("opens");
    fs::rename(&d, dir.path().join("d.old")).expect("mv");
    symlink(outside.path(), &d).expect("symlink");
    let (err, msg) = fails(vec![copy(input.clone(), "/d")]);
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(msg.contains("changed while it was read"), "{msg}");

    // A directory below it swapped: copied as the link it now is.
    fs::remove_file(&d).expect("rm");
    fs::rename(dir.path().join("d.old"), &d).expect("mv back");
    fs::rename(d.join("sub"), d.join("sub.old")).expect("mv");
    symlink(outside.path(), d.join("sub")).expect("symlink");
    let (out, tar) = build_ok(vec![copy(input, "/d")]);
    assert!(!contains(&tar, SECRET), "the outside file was packed");
    assert!(
        lines(&out)
            .iter()
            .any(|l| l.contains("/d/sub") && l.contains("->")),
        "a symlink below an input directory is copied as a link: {:?}",
        lines(&out)
    );
}
