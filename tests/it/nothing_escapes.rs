//! Issue 16 ("Nothing escapes"), items 4 to 7, checked from outside with the
//! strata binary: inputs swapped for symlinks while composing never bring in
//! an outside file; the output swap is atomic under concurrent composes;
//! the spool fits `$TMPDIR` or says it does not; and the smaller failure
//! modes (a fifo for a file, a spec nested too deep or not text) end in
//! clean errors.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::hostile::Project;
use crate::support::strata_bin;

/// Content no layer may ever hold: it lives outside the spec's directory.
const SECRET: &[u8] = b"STRATA-OUTSIDE-SECRET-0f3c9a1e-never-packed";
/// A harmless file as long as the secret.
const HARMLESS_Z: &[u8] = b"harmless z, as long as the secret is.......";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file below `dir` (blobs of the layout and of the cache).
fn files_below(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            files_below(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

/// One swap of `path` between a regular file and a symlink to `target`,
/// each by an atomic rename so the path never goes missing.
fn swap(path: &Path, target: &Path, as_link: bool, content: &[u8]) {
    // Made beside `inputs`, not in it: an entry of a copied directory that
    // vanishes while it is listed is a failure of its own.
    let name = path.file_name().expect("a name").to_string_lossy();
    let tmp = path
        .ancestors()
        .find(|a| a.ends_with("inputs"))
        .and_then(Path::parent)
        .expect("below inputs/")
        .join(format!(".swap-{name}"));
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    // Errors are ignored: the project goes away under the swapper when
    // the test fails.
    let _ = if as_link {
        std::os::unix::fs::symlink(target, &tmp)
    } else {
        std::fs::write(&tmp, content)
    };
    // Renaming a file over a directory (or back) fails: remove it first.
    if std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_dir_all(path);
        let _ = std::fs::remove_file(path);
        let _ = std::fs::rename(&tmp, path);
    }
}

/// One swap of the directory `path` (holding `z`) with a symlink to the
/// directory `target`, each by an atomic rename.
fn swap_dir(path: &Path, target: &Path, as_link: bool) {
    let tmp = path
        .parent()
        .and_then(Path::parent)
        .expect("below inputs/x/")
        .join(".swap-dir");
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = if as_link {
        std::os::unix::fs::symlink(target, &tmp)
    } else {
        std::fs::create_dir(&tmp).and_then(|()| std::fs::write(tmp.join("z"), HARMLESS_Z))
    };
    if std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_dir_all(path);
        let _ = std::fs::remove_file(path);
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Issue 16, item 4: with a thread swapping `inputs/x` (a copied file),
/// `inputs/t.tar` (an added tarball) and `inputs/d/y` (a file in a copied
/// directory) between their own content and symlinks to an outside file,
/// and `inputs/fd/sub` (a directory below a `from-dir` tree) with a symlink
/// to the outside directory,
/// for a bounded time, no compose packs the outside file, and every
/// compose either succeeds or fails with a clean error.
#[test]
fn inputs_swapped_for_symlinks_while_composing_never_pack_an_outside_file() {
    let outside = tempfile::tempdir().expect("a temp dir");
    let secret = outside.path().join("secret");
    // A tarball holding the secret too, so `add` of it would unpack it.
    std::fs::write(&secret, SECRET).expect("the secret");
    let p = Project::new();
    p.put("inputs/x", b"harmless x");
    p.put("inputs/d/y", b"harmless y");
    p.put("inputs/t.tar", &tar_of("t", b"harmless t"));
    p.put("inputs/fd/sub/z", HARMLESS_Z);
    // The outside directory has a `z` too, of the same size: a path of the
    // tree listed before the swap and opened after it would find it.
    let outside_dir = outside.path().join("dir");
    std::fs::create_dir(&outside_dir).expect("a dir");
    std::fs::write(outside_dir.join("z"), SECRET).expect("the secret");
    // One spec per kind of input, composed in turn: a compose succeeds
    // when its one input is not a symlink at that moment.
    let ops = [
        "copy \"inputs/x\" to=\"/x\"",
        "copy \"inputs/d\" to=\"/d\"",
        "add \"inputs/t.tar\" to=\"/t/\"",
        "from-dir \"inputs/fd\"",
    ];
    for (i, op) in ops.iter().enumerate() {
        p.put(
            &format!("spec{i}.kdl"),
            format!("compression \"none\"\nimage app {{\n    layer l {{ {op} }}\n}}\n").as_bytes(),
        );
    }
    let secret_tar = outside.path().join("secret.tar");
    std::fs::write(&secret_tar, tar_of("s", SECRET)).expect("a tarball");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let root = p.path().to_owned();
        let (secret, secret_tar) = (secret.clone(), secret_tar.clone());
        let outside_dir = outside_dir.clone();
        std::thread::spawn(move || {
            let t = tar_of("t", b"harmless t");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let link = i.is_multiple_of(2);
                swap(&root.join("inputs/x"), &secret, link, b"harmless x");
                swap(&root.join("inputs/d/y"), &secret, link, b"harmless y");
                swap(&root.join("inputs/t.tar"), &secret_tar, link, &t);
                swap_dir(&root.join("inputs/fd/sub"), &outside_dir, link);
                i += 1;
            }
            i
        })
    };

    let cache = p.path().join("cache");
    let (mut ok, mut failed) = (0, 0);
    let bin = strata_bin();
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < Duration::from_secs(12) && round < 80 {
        let out_dir = p.path().join(format!("out{round}"));
        let out = Command::new(bin)
            .arg("compose")
            .arg(format!("spec{}.kdl", round % ops.len()))
            .args(["--quiet", "--out"])
            .arg(&out_dir)
            .arg("--cache-dir")
            .arg(&cache)
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run strata");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains("panicked"), "round {round}: {err}");
        match out.status.code() {
            Some(0) => ok += 1,
            // A spec error (the input is outside the spec's directory, or
            // changed while it was opened) or an input error (it changed
            // while it was read): both clean, neither packs anything.
            Some(1 | 3) => {
                failed += 1;
                // (The directory swap is two renames, so `inputs/fd/sub`
                // is missing for a moment: also clean. A plain tar read in
                // place that the swap rewrote is refused as written to.)
                assert!(
                    err.contains("outside")
                        || err.contains("changed")
                        || err.contains("written to while the layer was built")
                        || (round % ops.len() == 3 && err.to_lowercase().contains("no such file")),
                    "round {round}: an unexpected failure: {err}"
                );
            }
            other => panic!("round {round}: exit {other:?}: {err}"),
        }
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("the swapper");
    assert!(swaps > 10, "the swapper ran ({swaps} swaps)");
    assert!(ok > 0, "some composes succeed ({ok} of {round})");

    let mut files = Vec::new();
    files_below(p.path(), &mut files);
    files.retain(|f| !f.starts_with(p.path().join("inputs")));
    for f in &files {
        let bytes = std::fs::read(f).expect("a written file");
        assert!(
            !contains(&bytes, SECRET),
            "{} holds the outside file ({ok} composes succeeded, {failed} failed, {swaps} swaps)",
            f.display()
        );
    }
    eprintln!(
        "{round} composes ({ok} ok, {failed} refused) against {swaps} swaps: nothing from outside packed"
    );
}

/// A plain tar of one file.
fn tar_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content).expect("append");
    b.into_inner().expect("a tar")
}

/// `strata compose SPEC --out OUT` in `dir`, with `cache`.
fn compose_into(dir: &Path, spec: &str, out: &Path, cache: &Path) -> std::process::Output {
    Command::new(strata_bin())
        .args(["compose", spec, "--quiet", "--out"])
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run strata")
}

/// The names in `dir` that a writer of the output `name` leaves while it
/// works (`.NAME.tmp-*`, `.NAME.old-*`).
fn temporaries(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the parent")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with(&format!(".{name}.")))
        .collect()
}

/// Issue 16, item 6: four composes of different specs into one `--out` at
/// once, over several rounds, all succeed; the output is then exactly a
/// fresh compose of one of them; a watcher never sees the output missing
/// while they replace it; and no temporary directory is left.
#[test]
fn concurrent_composes_into_one_out_all_succeed_and_out_is_never_missing() {
    let p = Project::new();
    let specs: Vec<String> = (0..4)
        .map(|i| {
            let name = format!("spec{i}.kdl");
            p.put(
                &name,
                format!(
                    "image app {{\n    layer l {{ file \"/which\" \"{i}\" }}\n    layer big {{ file \"/pad\" \"{}\" }}\n}}\n",
                    "x".repeat(100 * 1024 + i)
                )
                .as_bytes(),
            );
            name
        })
        .collect();
    let cache = p.path().join("cache");
    // What each spec gives, composed alone.
    let fresh: Vec<_> = specs
        .iter()
        .map(|s| {
            let out = p.path().join(format!("fresh-{s}"));
            let o = compose_into(p.path(), s, &out, &cache);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            crate::support::index_digests(&out)
        })
        .collect();
    let out = p.path().join("img");
    let first = compose_into(p.path(), &specs[0], &out, &cache);
    assert!(first.status.success());

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, index) = (stop.clone(), out.join("index.json"));
        std::thread::spawn(move || {
            let mut missing = 0u64;
            let mut looks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                looks += 1;
                if !index.exists() {
                    missing += 1;
                }
            }
            (missing, looks)
        })
    };
    for round in 0..6 {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                // Each round in another order, so each spec is last sometimes.
                let spec = specs[(i + round) % 4].clone();
                let (dir, out, cache) = (p.path().to_owned(), out.clone(), cache.clone());
                std::thread::spawn(move || compose_into(&dir, &spec, &out, &cache))
            })
            .collect();
        for h in handles {
            let o = h.join().expect("a compose thread");
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let now = crate::support::index_digests(&out);
        assert!(
            fresh.contains(&now),
            "round {round}: the output is none of the four images: {now:?}"
        );
        assert_eq!(temporaries(p.path(), "img"), Vec::<String>::new());
    }
    stop.store(true, Ordering::Relaxed);
    let (missing, looks) = watcher.join().expect("the watcher");
    assert_eq!(
        missing, 0,
        "the output was missing {missing} of {looks} looks"
    );
}

/// Issue 16, item 6: what a killed compose left beside the output (its
/// temporary layout, or the old one it set aside) is removed by the next.
#[test]
fn leftovers_of_a_killed_compose_are_removed_by_the_next() {
    let p = Project::new();
    p.spec("image app {\n    layer l { file \"/a\" \"a\" }\n}\n");
    let leftovers = [".img.tmp-AbC123", ".img.old-XyZ789"];
    for l in leftovers {
        p.put(&format!("{l}/blobs/sha256/junk"), &vec![0u8; 4096]);
    }
    // Another output's temporaries are not this compose's business.
    p.put(".other.tmp-Q1/x", b"");
    let out = p.path().join("img");
    let o = compose_into(p.path(), "spec.kdl", &out, &p.path().join("cache"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(temporaries(p.path(), "img"), Vec::<String>::new());
    assert!(p.path().join(".other.tmp-Q1/x").exists());
    // Also when the layout is up to date and left alone.
    p.put(".img.tmp-Again/x", b"");
    let o = compose_into(p.path(), "spec.kdl", &out, &p.path().join("cache"));
    assert!(o.status.success());
    assert_eq!(temporaries(p.path(), "img"), Vec::<String>::new());
}

/// Issue 16, item 5: with `$TMPDIR` on a 2 MiB disk, an archive whose spool
/// cannot fit is refused before the disk fills, with a message naming
/// `$TMPDIR`, the need and the free bytes; an archive that expands to 64 MiB
/// of zeros fits (the spool is sparse); a plain tar larger than the disk
/// needs no spool at all.
#[test]
fn the_spool_fits_tmpdir_or_is_refused_naming_it() {
    use crate::hostile::{Tmpfs, gz, noise, tar};
    const TEST: &str = "the_spool_fits_tmpdir_or_is_refused_naming_it";
    let p = Project::new();
    let Some(small) = Tmpfs::mount(p.path().join("small"), TEST) else {
        return;
    };
    p.put(
        "noise.tar.gz",
        &gz(&tar(&[(b"noise", b'0', &noise(4 << 20), b"")])),
    );
    p.put(
        "zeros.tar.gz",
        &gz(&tar(&[(b"zeros", b'0', &vec![0u8; 64 << 20], b"")])),
    );
    p.put("plain.tar", &tar(&[(b"noise", b'0', &noise(4 << 20), b"")]));
    let cache = p.path().join("cache");
    let run = |input: &str| {
        p.spec(&format!(
            "image app {{\n    layer l {{ add \"{input}\" to=\"/\" }}\n}}\n"
        ));
        let out = p.compose(&cache, &p.path().join("out"), &[("TMPDIR", &small.dir)]);
        (
            out.status.code(),
            p.stderr(&out, &[(&small.dir, "[SMALL]")]),
        )
    };
    let (code, err) = run("noise.tar.gz");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err.trim(),
        "strata: error: layer app/l (spec.kdl:2:15): noise.tar.gz: not enough space in $TMPDIR ([SMALL]) to spool the decompressed archive: it needs 4.2 MiB or more, 2 MiB free (No space left on device); set TMPDIR to a directory on a larger disk"
    );
    let (code, err) = run("zeros.tar.gz");
    assert_eq!(code, Some(0), "a sparse spool fits: {err}");
    let (code, err) = run("plain.tar");
    assert_eq!(code, Some(0), "a plain tar is read in place: {err}");
    drop(small);
}

/// `strata ARGS` in `dir`, killed (and the test failed) if it runs longer
/// than `secs`: what must never hang.
fn strata_within(dir: &Path, args: &[&str], secs: u64) -> std::process::Output {
    let mut child = Command::new(strata_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run strata");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strata {args:?} hung for {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Issue 16, item 7: a layout whose `index.json` is a fifo, as a base or to
/// inspect, is an error naming it, not a hang.
#[test]
fn a_fifo_for_index_json_is_an_error_not_a_hang() {
    let p = Project::new();
    p.put("base/oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let made = Command::new("mkfifo")
        .arg(p.path().join("base/index.json"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    p.spec("image app {\n    from \"oci:base\"\n    cmd \"/x\"\n}\n");
    let cache = p.path().join("cache").display().to_string();
    let out = strata_within(
        p.path(),
        &[
            "compose",
            "spec.kdl",
            "--quiet",
            "--out",
            "out",
            "--cache-dir",
            &cache,
        ],
        60,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("index.json") && err.contains("not a regular file"),
        "{err}"
    );
    let out = strata_within(p.path(), &["inspect", "base"], 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// Issue 16, item 7: a spec nested 2,000 blocks deep is a spec error at the
/// brace that goes too deep (exit 3), not a stack overflow (exit 134); 64
/// levels still reach the parser without harm.
#[test]
fn deeply_nested_braces_are_a_spec_error_not_a_crash() {
    let p = Project::new();
    p.spec(&format!("image a {{\n{}", "layer l {".repeat(2000)));
    let out = strata_within(p.path(), &["plan", "spec.kdl"], 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("blocks are nested more than 64 deep"), "{err}");
    assert!(err.contains("spec.kdl:2:"), "a position: {err}");

    let ok_depth = format!("{}{}", "a {".repeat(64), "}".repeat(64));
    p.spec(&ok_depth);
    let out = strata_within(p.path(), &["plan", "spec.kdl"], 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an unknown node, reported: {err}"
    );
    assert!(!err.contains("nested more than"), "{err}");
}

/// Issue 16, item 7: a binary file given as the spec is a spec error with
/// the position of its first byte that is not text (exit 3).
#[test]
fn a_binary_spec_is_a_spec_error_with_a_position() {
    let p = Project::new();
    let mut bytes = b"image app {\n    cmd \"/x\"\n".to_vec();
    bytes.extend([0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0, 1, 2]);
    p.put("spec.kdl", &bytes);
    let out = strata_within(p.path(), &["plan", "spec.kdl"], 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "spec.kdl:3:5: the spec is not UTF-8 text: byte 0xff cannot start a character"
        ),
        "{err}"
    );
}

/// Issue 16, item 7: a garbage input index is ignored with a warning (and
/// rewritten), not dropped silently; the compose succeeds.
#[test]
fn a_garbage_input_index_is_dropped_with_a_warning() {
    let p = Project::new();
    p.put("in.txt", b"input");
    p.spec("image app {\n    layer l { copy \"in.txt\" to=\"/in.txt\" }\n}\n");
    let cache = p.path().join("cache");
    let out = p.path().join("out");
    let first = compose_into(p.path(), "spec.kdl", &out, &cache);
    assert!(first.status.success());
    let index = cache.join("inputs-v3.bin");
    assert!(index.exists(), "the compose saved its input index");
    std::fs::write(&index, b"garbage, not an index").expect("overwrite");
    let again = compose_into(p.path(), "spec.kdl", &out, &cache);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("inputs-v3.bin is damaged and was ignored"),
        "{err}"
    );
    let third = compose_into(p.path(), "spec.kdl", &out, &cache);
    assert!(
        !String::from_utf8_lossy(&third.stderr).contains("damaged"),
        "the index was rewritten"
    );
}

/// Issue 16, item 7: an `oci:` base that cannot be read is reported with
/// the spec's other mistakes, not instead of them.
#[test]
fn a_failing_oci_base_does_not_hide_the_other_errors() {
    let p = Project::new();
    p.spec(
        "image app {\n    from \"oci:no-such-layout\"\n    cmd \"/x\"\n}\nimage other {\n    layer l { copy \"missing.txt\" to=\"/m\" }\n}\n",
    );
    let out = strata_within(
        p.path(),
        &[
            "compose",
            "spec.kdl",
            "--quiet",
            "--out",
            "out",
            "--cache-dir",
            "cache",
        ],
        120,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("spec.kdl:2:10: cannot resolve base `oci:no-such-layout`"),
        "{err}"
    );
    assert!(err.contains("spec.kdl:6:20: input missing.txt"), "{err}");
    assert!(err.contains("2 errors"), "{err}");
}

/// Issue 16, item 6: `kill -9` of composes that replace `--out`, at moments
/// spread over their run, leaves the output whole: the previous layout or
/// the new one, never none; the next compose removes what they left.
#[test]
fn a_killed_compose_leaves_the_previous_output_or_the_new_one() {
    let p = Project::new();
    let cache = p.path().join("cache");
    let specs = ["a.kdl", "b.kdl"];
    let mut fresh = Vec::new();
    for (i, name) in specs.iter().enumerate() {
        p.put(
            name,
            format!(
                "image app {{\n    layer l {{ file \"/which\" \"{i}\" }}\n    layer pad {{ file \"/pad\" \"{}\" }}\n}}\n",
                "y".repeat(512 * 1024 + i)
            )
            .as_bytes(),
        );
        let out = p.path().join(format!("fresh-{i}"));
        let o = compose_into(p.path(), name, &out, &cache);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        fresh.push(crate::support::index_digests(&out));
    }
    let out = p.path().join("img");
    assert!(
        compose_into(p.path(), specs[0], &out, &cache)
            .status
            .success()
    );
    for round in 0..10u64 {
        let mut child = Command::new(strata_bin())
            .args([
                "compose",
                specs[(round as usize + 1) % 2],
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .current_dir(p.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run strata");
        std::thread::sleep(Duration::from_millis(20 + round * 37));
        let _ = child.kill();
        let _ = child.wait();
        let now = crate::support::index_digests(&out);
        assert!(
            fresh.contains(&now),
            "round {round}: the output is neither layout: {now:?}"
        );
    }
    assert!(
        compose_into(p.path(), specs[0], &out, &cache)
            .status
            .success()
    );
    assert_eq!(temporaries(p.path(), "img"), Vec::<String>::new());
    assert_eq!(crate::support::index_digests(&out), fresh[0]);
}

/// Each file input is held open from planning to packing: a spec of more
/// file inputs than the soft limit of open files (here 256) still composes,
/// as strata raises the soft limit to the hard one when it is met.
#[test]
fn more_file_inputs_than_the_soft_open_file_limit_compose() {
    let p = Project::new();
    let mut ops = String::new();
    for i in 0..600 {
        p.put(&format!("in/f{i}"), format!("{i}").as_bytes());
        ops.push_str(&format!("        copy \"in/f{i}\" to=\"/f/\"\n"));
    }
    p.spec(&format!("image app {{\n    layer l {{\n{ops}    }}\n}}\n"));
    let out = Command::new("bash")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" compose spec.kdl --quiet --out out --cache-dir cache")
        .arg(strata_bin())
        .current_dir(p.path())
        .output()
        .expect("run strata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
