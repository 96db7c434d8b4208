//! Reproducibility across machines-in-miniature: two clones at different
//! paths, with different umask, `--jobs`, time zone, locale, input mtimes,
//! input owners and cache state (cold, warm, partly warm), must give
//! byte-identical layouts; `SOURCE_DATE_EPOCH`, when set, is the only time
//! in the output (tar headers of every entry, whiteouts and directories
//! included, config `created` and history), and `0` is the same as unset.

use std::path::Path;
use std::process::Command;

use crate::support::{strata_bin, tree_bytes};

/// Copy the repo's specs (and inputs) into `dest`, as a fresh clone would have them.
fn clone_specs(dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let status = Command::new("cp")
        .arg("-r") // like a clone: modes (and exec bits) kept, fresh mtimes and owner
        .arg(crate::support::repo().join("specs"))
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    // cp without preserved modes keeps the exec bit of executables (mode & umask);
    // make sure the demo's static executable stayed executable.
    let hello = dest.join("specs/inputs/hello");
    let mode = std::fs::metadata(&hello).unwrap().permissions();
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0,
        "hello lost its exec bit in the copy"
    );
}

fn compose_in(
    clone: &Path,
    cache: &Path,
    spec: &str,
    extra_env: &[(&str, &str)],
    umask: &str,
    jobs: &str,
) {
    let script = format!(
        "umask {umask} && exec \"$0\" compose specs/{spec}.kdl --out out/{spec} --docker-archive out/{spec}.tar --jobs {jobs} --quiet"
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .arg(strata_bin())
        .current_dir(clone)
        .env("STRATA_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "compose in {}: {}",
        clone.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_clones_on_different_machines_give_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("somewhere/else/b");
    clone_specs(&a);
    clone_specs(&b);

    // Clone b: other mtimes, other owners (where we may chown), other permission bits on
    // non-executables, other directory creation order (recreate the inputs dir in reverse).
    let inputs = b.join("specs/inputs");
    let mut names: Vec<_> = std::fs::read_dir(&inputs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let shuffled = b.join("specs/inputs.new");
    std::fs::create_dir(&shuffled).unwrap();
    for (i, n) in names.iter().rev().enumerate() {
        let to = shuffled.join(n);
        std::fs::rename(inputs.join(n), &to).unwrap();
        filetime::set_file_mtime(
            &to,
            filetime::FileTime::from_unix_time(1_000_000_000 + i as i64 * 7919, 0),
        )
        .unwrap();
        let mode = std::fs::metadata(&to).unwrap().permissions();
        let bits = std::os::unix::fs::PermissionsExt::mode(&mode);
        let new = if bits & 0o111 != 0 { 0o700 } else { 0o600 };
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(new)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&to, Some(4242), Some(4242)).unwrap();
        }
    }
    std::fs::remove_dir(&inputs).unwrap();
    std::fs::rename(&shuffled, &inputs).unwrap();

    for spec in ["tomcat", "hello"] {
        let cache_a = tmp.path().join("cache-a");
        let cache_b = tmp.path().join("cache-b");
        compose_in(
            &a,
            &cache_a,
            spec,
            &[("TZ", "UTC"), ("LC_ALL", "C")],
            "022",
            "1",
        );
        compose_in(
            &b,
            &cache_b,
            spec,
            &[
                ("TZ", "Asia/Kathmandu"),
                ("LC_ALL", "C.UTF-8"),
                ("LANG", "de_DE.UTF-8"),
            ],
            "077",
            "8",
        );
        let out_a = tree_bytes(&a.join("out").join(spec));
        let out_b = tree_bytes(&b.join("out").join(spec));
        assert!(!out_a.is_empty());
        let names_a: Vec<&String> = out_a.iter().map(|(n, _)| n).collect();
        let names_b: Vec<&String> = out_b.iter().map(|(n, _)| n).collect();
        assert_eq!(names_a, names_b, "{spec}: the same blobs");
        assert!(out_a == out_b, "{spec}: layouts differ in bytes");
        let ar_a = std::fs::read(a.join(format!("out/{spec}.tar"))).unwrap();
        let ar_b = std::fs::read(b.join(format!("out/{spec}.tar"))).unwrap();
        assert!(ar_a == ar_b, "{spec}: docker-archives differ");

        // Warm cache in b: the same bytes again.
        compose_in(&b, &cache_b, spec, &[], "022", "2");
        assert!(
            tree_bytes(&b.join("out").join(spec)) == out_a,
            "{spec}: warm compose differs from cold"
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Every file under `dir` whose name is `name`.
fn find_named(dir: &Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            find_named(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

#[test]
fn a_partly_warm_cache_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cold = crate::support::compose("specs/tomcat.kdl", &tmp.path().join("cold"), &cache);
    let cold_bytes = tree_bytes(&tmp.path().join("cold"));

    // Forget one layer in the middle of the stack: its record goes, the rest stay.
    let victim = cold
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .find(|l| l.name == "tomcat/tomcat")
        .expect("the tomcat layer")
        .clone();
    let mut records = Vec::new();
    find_named(&cache, &format!("{}.json", victim.key), &mut records);
    assert_eq!(records.len(), 1, "one record for key {}", victim.key);
    std::fs::remove_file(&records[0]).unwrap();

    let warm = crate::support::compose("specs/tomcat.kdl", &tmp.path().join("warm"), &cache);
    let status: Vec<(String, strata::CacheStatus)> = warm
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| (l.name.clone(), l.cache.clone()))
        .collect();
    for (name, cache) in &status {
        let want = if *name == victim.name {
            strata::CacheStatus::Miss
        } else {
            strata::CacheStatus::Hit
        };
        assert_eq!(*cache, want, "{name} in {status:?}");
    }
    assert!(
        tree_bytes(&tmp.path().join("warm")) == cold_bytes,
        "a partly warm compose differs from the cold one"
    );
}

/// A spec over the stand-in CentOS rootfs whose top layer deletes a file,
/// deletes a directory and writes into it again (an opaque directory), and
/// adds files and directories: every kind of tar entry strata writes.
const CHANGES: &str = r#"image base {
    rootfs "centos-7-rootfs.tar.gz"
    cmd "/bin/bash"
}
image app {
    from base
    layer changes {
        delete "/etc/motd"
        delete "/var/cache/yum/"
        file "/var/cache/yum/fresh.txt" "new\n"
        file "/etc/hello" "hi\n"
        mkdir "/srv/data/deep"
        symlink "/srv/current" target="data"
    }
}
"#;

fn changes_spec(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        crate::support::repo().join("specs/inputs/centos-7-rootfs.tar.gz"),
        dir.join("centos-7-rootfs.tar.gz"),
    )
    .unwrap();
    std::fs::write(dir.join("changes.kdl"), CHANGES).unwrap();
}

/// Run `strata compose` in `dir` with `SOURCE_DATE_EPOCH` as given (`None`: unset).
fn compose_with_epoch(dir: &Path, cache: &Path, spec: &str, out: &str, epoch: Option<&str>) {
    let mut cmd = Command::new(strata_bin());
    cmd.args(["compose", spec, "--out", out, "--quiet"])
        .arg("--docker-archive")
        .arg(format!("{out}.tar"))
        .current_dir(dir)
        .env("STRATA_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "compose {spec}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every RFC 3339 time (`YYYY-MM-DDTHH:MM:SS…Z`) in `text`.
fn times_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(19) {
        let w = &b[i..i + 19];
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
        if digits.iter().all(|&j| w[j].is_ascii_digit())
            && w[4] == b'-'
            && w[7] == b'-'
            && w[10] == b'T'
            && w[13] == b':'
            && w[16] == b':'
        {
            let end = text[i..].find('"').map_or(text.len(), |e| i + e);
            out.push(text[i..end].to_owned());
        }
    }
    out
}

#[test]
fn source_date_epoch_is_the_only_time_everywhere() {
    const EPOCH: u64 = 1_234_567_890;
    const WHEN: &str = "2009-02-13T23:31:30Z";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spec");
    changes_spec(&dir);
    compose_with_epoch(
        &dir,
        &tmp.path().join("cache"),
        "changes.kdl",
        "out",
        Some(&EPOCH.to_string()),
    );
    let layout_dir = dir.join("out");
    let layout = strata_export::open_layout(&layout_dir).unwrap();

    // Every tar header of every layer: files, directories, symlinks,
    // whiteouts and opaque markers alike.
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    let mut seen = std::collections::BTreeSet::new();
    for img in layout.images() {
        for l in &img.layers {
            let blob = &l.blob;
            if !seen.insert(*blob) {
                continue;
            }
            let f = std::fs::File::open(layout.blob_path(blob)).unwrap();
            let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
            for entry in tar.entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let mut mtime = entry.header().mtime().unwrap();
                if let Some(pax) = entry.pax_extensions().unwrap() {
                    for ext in pax.flatten() {
                        assert_ne!(ext.key().ok(), Some("atime"), "{name}: an atime");
                        assert_ne!(ext.key().ok(), Some("ctime"), "{name}: a ctime");
                        if ext.key().ok() == Some("mtime") {
                            mtime = ext.value().unwrap().parse::<f64>().unwrap() as u64;
                        }
                    }
                }
                assert_eq!(mtime, EPOCH, "mtime of {name}");
                let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                let kind = if base == ".wh..wh..opq" {
                    "opaque"
                } else if base.starts_with(".wh.") {
                    "whiteout"
                } else if entry.header().entry_type().is_dir() {
                    "dir"
                } else if entry.header().entry_type().is_symlink() {
                    "symlink"
                } else {
                    "file"
                };
                *kinds.entry(kind).or_default() += 1;
            }
        }
    }
    for kind in ["dir", "file", "symlink", "whiteout", "opaque"] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} entry checked: {kinds:?}"
        );
    }

    // Every JSON document of the layout: config `created`, every history
    // entry's `created`, and any other time in manifests or the index.
    let mut documents = vec![std::fs::read_to_string(layout_dir.join("index.json")).unwrap()];
    for img in layout.images() {
        for d in [&img.manifest_digest, &img.config_digest] {
            documents.push(std::fs::read_to_string(layout.blob_path(d)).unwrap());
        }
        assert_eq!(
            img.config.created().as_deref(),
            Some(WHEN),
            "{}: created",
            img.name
        );
        let history = img.config.history().clone().unwrap_or_default();
        assert!(!history.is_empty(), "{}: a history", img.name);
        for h in history {
            assert_eq!(
                h.created().as_deref(),
                Some(WHEN),
                "{}: history {h:?}",
                img.name
            );
        }
    }
    let times: Vec<String> = documents.iter().flat_map(|d| times_in(d)).collect();
    assert!(times.len() >= 4, "times found: {times:?}");
    for t in &times {
        assert_eq!(t, WHEN, "a time other than SOURCE_DATE_EPOCH in the output");
    }

    // The docker-archive carries the same config JSON, hence the same times.
    let archive = std::fs::File::open(dir.join("out.tar")).unwrap();
    let mut configs = 0;
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // The archive's own headers carry the epoch too.
        let mtime = entry.header().mtime().unwrap();
        assert_eq!(mtime, EPOCH, "{name}: archive header mtime");
        if entry.header().size().unwrap() > 1 << 20 {
            continue;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if let Ok(text) = String::from_utf8(bytes) {
            for t in times_in(&text) {
                configs += 1;
                assert_eq!(t, WHEN, "{name} in the docker-archive");
            }
        }
    }
    assert!(configs > 0, "no config JSON found in the docker-archive");
}

#[test]
fn source_date_epoch_zero_is_the_same_as_unset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spec");
    changes_spec(&dir);
    // Separate caches: a shared one would hand the second compose the first one's layers.
    compose_with_epoch(&dir, &tmp.path().join("c1"), "changes.kdl", "unset", None);
    compose_with_epoch(
        &dir,
        &tmp.path().join("c2"),
        "changes.kdl",
        "zero",
        Some("0"),
    );
    compose_with_epoch(
        &dir,
        &tmp.path().join("c3"),
        "changes.kdl",
        "other",
        Some("1"),
    );
    let unset = tree_bytes(&dir.join("unset"));
    assert!(!unset.is_empty());
    assert!(
        unset == tree_bytes(&dir.join("zero")),
        "SOURCE_DATE_EPOCH=0 differs from unset"
    );
    assert!(
        std::fs::read(dir.join("unset.tar")).unwrap()
            == std::fs::read(dir.join("zero.tar")).unwrap(),
        "docker-archives differ"
    );
    // And the epoch does reach the bytes: 1 is not 0.
    assert!(
        unset != tree_bytes(&dir.join("other")),
        "SOURCE_DATE_EPOCH=1 changed nothing"
    );
}
