//! A plain tar read in place (issue 20): bytes that are not the ones its
//! cache key was made from, or that change while the layer is written, are
//! an error naming the input, never a layer.

use std::os::unix::fs::FileExt;

use super::*;
use crate::HostInput;

/// A plain tar of one 3 MiB file, so the layer's tar is written in several
/// 1 MiB progress steps.
fn big_tar(dir: &Path) -> PathBuf {
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    put_file(dir, "in.tar", &tar_of(&[Member::file("big", &data)]))
}

fn unpack_of(input: HostInput) -> JobOp {
    JobOp::Unpack {
        archive: input,
        to: p("/"),
        owner: None,
        mode: None,
    }
}

fn blake3_of(path: &Path) -> [u8; 32] {
    *blake3::hash(&std::fs::read(path).expect("read")).as_bytes()
}

#[test]
fn a_tar_whose_bytes_are_not_the_keyed_ones_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let tar = big_tar(dir.path());
    let input = HostInput::open(&tar).expect("opens");
    input.note_content_digest(blake3_of(&tar), None);
    // Changed after the planner hashed it, before the layer reads it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tar)
        .expect("open")
        .write_all_at(b"X", 700)
        .expect("write");
    let (err, msg) = fails(vec![unpack_of(input)]);
    assert!(matches!(err, Error::InputChanged { .. }), "{err:?}");
    assert!(msg.contains(&*tar.to_string_lossy()), "{msg}");
    assert!(msg.contains("changed since they were hashed"), "{msg}");
}

#[test]
fn a_tar_written_to_while_its_layer_is_written_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let tar = big_tar(dir.path());
    let input = HostInput::open(&tar).expect("opens");
    input.note_content_digest(blake3_of(&tar), None);
    let writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tar)
        .expect("open");
    // Written to from the layer's own progress report, after the first MiB
    // of its tar: no timing involved. The sleep only makes sure the write
    // falls in a later clock tick than the check's stat on kernels with
    // coarse ctimes. The byte is the same, so only the stat data can show it.
    let done = std::sync::atomic::AtomicBool::new(false);
    let on_progress = |_: u64| {
        if !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(30));
            let mut b = [0u8; 1];
            writer.read_at(&mut b, 2 << 20).expect("read");
            writer.write_all_at(&b, 2 << 20).expect("write");
        }
    };
    let job = job(vec![unpack_of(input)], Compression::None);
    let err = build(&job, &LowerView::new(), &mut Vec::new(), &on_progress)
        .expect_err("the build must fail");
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    assert!(matches!(err, Error::InputChanged { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&*tar.to_string_lossy()), "{msg}");
    assert!(
        msg.contains("written to while the layer was built"),
        "{msg}"
    );
}

#[test]
fn an_unchanged_tar_read_in_place_builds() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let tar = big_tar(dir.path());
    let input = HostInput::open(&tar).expect("opens");
    input.note_content_digest(blake3_of(&tar), None);
    let (out, _) = build_ok(vec![unpack_of(input)]);
    assert_eq!(lines(&out).len(), 1);
}

#[test]
fn a_tar_the_planner_hashed_is_not_hashed_again_but_must_keep_its_stat_data() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let tar = big_tar(dir.path());
    let input = HostInput::open(&tar).expect("opens");
    let meta = input.file().expect("a file").metadata().expect("stat");
    input.note_content_digest(blake3_of(&tar), Some(&meta));
    // The same bytes written again: only the stat data can tell.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tar)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_at(&mut b, 700).expect("read");
    f.write_all_at(&b, 700).expect("write");
    let (err, msg) = fails(vec![unpack_of(input)]);
    assert!(matches!(err, Error::InputChanged { .. }), "{err:?}");
    assert!(msg.contains("changed since they were hashed"), "{msg}");
    // Unchanged since the planner's stat: it builds, without a second hash.
    let input = HostInput::open(&tar).expect("opens");
    let meta = input.file().expect("a file").metadata().expect("stat");
    input.note_content_digest([0; 32], Some(&meta));
    build_ok(vec![unpack_of(input)]);
}
