//! The mounts of a `run` step (`cache`, `secret`), checked from outside:
//! what the command sees, what reaches the layer, and, for a secret, every
//! byte strata wrote or printed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::sandbox::{ready, unpack, write_spec};
use crate::support::{strata, strata_ok};
use crate::union::{busybox_dir, layer_files};

fn compose(dir: &Path, cache: &Path) -> String {
    strata_ok(dir, cache, &["compose", "s.kdl", "--out", "out", "--json"])
}

/// The cache state (`hit`, `built`) of image `app`'s layers in a `--json` report.
fn caches(json: &str) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    report["images"][1]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cache"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_cache_mount_is_shared_by_later_composes_and_never_in_the_layer_or_key() {
    let test = "a_cache_mount_is_shared_by_later_composes_and_never_in_the_layer_or_key";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    // Relative to the spec's directory: the sandbox starts elsewhere.
    let cache = Path::new("../cache");
    let step = |command: &str| {
        format!(
            "    layer deps {{\n        run \"{command}\" {{\n            cache \"/var/cache/apt\" id=\"apt\"\n            cache \"/root/.cache/new\"\n        }}\n    }}"
        )
    };
    // The image's own /var/cache/apt is hidden by the cache mount; a path
    // the image lacks is made for the mount and is not in the layer either.
    let first = "ls /var/cache/apt > /first && echo one >> /var/cache/apt/count && echo n > /root/.cache/new/x";
    write_spec(&dir, &step(first));
    compose(&dir, cache);
    let root = unpack(&dir, cache);
    assert_eq!(fs::read_to_string(root.join("first")).unwrap(), "");
    let inspect = strata_ok(&dir, cache, &["inspect", "out:app", "--files"]);
    let files = layer_files(&inspect, 2);
    assert_eq!(
        files
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["/first"],
        "nothing of the caches, nor their mount points: {files}"
    );
    // Another compose with another command sees what the first left.
    write_spec(
        &dir,
        &step(
            "cat /var/cache/apt/count /root/.cache/new/x > /second && echo two >> /var/cache/apt/count",
        ),
    );
    compose(&dir, cache);
    let root = unpack(&dir, cache);
    assert_eq!(fs::read_to_string(root.join("second")).unwrap(), "one\nn\n");
    // The first step again: its key never saw the cache's content.
    write_spec(&dir, &step(first));
    let json = compose(&dir, cache);
    assert_eq!(caches(&json), ["hit", "hit"], "{json}");
}

/// Every file below `dir` holding `needle`, not following symlinks.
fn files_holding(dir: &Path, needle: &[u8], skip: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.starts_with(skip) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            let bytes = fs::read(&p).unwrap_or_default();
            // Layers are gzip: look in them unpacked too.
            let mut unpacked = Vec::new();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                use std::io::Read;
                let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut unpacked);
            }
            if [&bytes, &unpacked]
                .iter()
                .any(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn a_secret_is_there_during_its_run_only_and_its_bytes_are_nowhere_else() {
    let test = "a_secret_is_there_during_its_run_only_and_its_bytes_are_nowhere_else";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let cache = tmp.path().join("cache");
    let secret_dir = tmp.path().join("secret");
    fs::create_dir(&secret_dir).unwrap();
    let file_secret = format!("file-secret-{}-x7q", std::process::id());
    let env_secret = format!("env-secret-{}-k2w", std::process::id());
    fs::write(secret_dir.join("token"), &file_secret).unwrap();
    // What the command records: the secrets' lengths, modes and whether a
    // write fails, never their bytes.
    write_spec(
        &dir,
        "    layer build {\n        run \"wc -c < /run/secrets/token > /len && wc -c < /etc/api-key >> /len && stat -c '%a %u' /run/secrets/token > /mode && (echo x > /run/secrets/token 2>/dev/null && echo writable || echo read-only) > /write\" {\n            secret \"/run/secrets/token\" file=\"../secret/token\"\n            secret \"/etc/api-key\" env=\"STRATA_TEST_API_KEY\"\n        }\n    }",
    );
    let out = std::process::Command::new(crate::support::strata_bin())
        .args([
            "compose",
            "s.kdl",
            "--out",
            "out",
            "--json",
            "--update-lock",
        ])
        .current_dir(&dir)
        .env("STRATA_CACHE_DIR", &cache)
        .env("STRATA_TEST_API_KEY", &env_secret)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = unpack(&dir, &cache);
    let len = fs::read_to_string(root.join("len")).unwrap();
    let lens: Vec<usize> = len.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(lens, [file_secret.len(), env_secret.len()]);
    assert_eq!(fs::read_to_string(root.join("mode")).unwrap(), "400 0\n");
    assert_eq!(
        fs::read_to_string(root.join("write")).unwrap(),
        "read-only\n"
    );
    assert!(!root.join("run/secrets").exists());
    assert!(!root.join("etc/api-key").exists());
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:app", "--files"]);
    let files = layer_files(&inspect, 2);
    assert_eq!(
        files
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["/len", "/mode", "/write"],
        "{files}"
    );
    for secret in [&file_secret, &env_secret] {
        let needle = secret.as_bytes();
        let leaks = files_holding(tmp.path(), needle, &secret_dir);
        assert!(leaks.is_empty(), "the secret is in {leaks:?}");
        for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !stream.windows(needle.len()).any(|w| w == needle),
                "the secret is in strata's {name}"
            );
        }
    }
    assert!(dir.join("s.lock").exists(), "the lock was written");
    // A secret whose variable is unset is a clear error naming it.
    let out = strata(
        &dir,
        &tmp.path().join("cache2"),
        &["compose", "s.kdl", "--out", "out2"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("environment variable STRATA_TEST_API_KEY: not set"),
        "{stderr}"
    );
}

#[test]
fn mounts_are_checked_where_the_spec_says_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("s.kdl"),
        "image app {\n    layer a {\n        run \"true\" {\n            cache \"relative\"\n            secret \"/s\"\n            secret \"/t\" file=\"missing.txt\"\n            cache \"/c\"\n            cache \"/c/d\"\n            volume \"/x\"\n        }\n    }\n}\n",
    )
    .unwrap();
    let out = strata(dir, &dir.join("cache"), &["plan", "s.kdl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for expected in [
        "s.kdl:4:19",
        "a secret needs `file=` or `env=`",
        "mount at /c/d overlaps the mount at /c",
        "unknown node `volume`",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
    // The spec being otherwise right, a missing secret file is found by the plan.
    fs::write(
        dir.join("s.kdl"),
        "image app {\n    layer a {\n        run \"true\" {\n            secret \"/t\" file=\"missing.txt\"\n        }\n    }\n}\n",
    )
    .unwrap();
    let out = strata(dir, &dir.join("cache"), &["plan", "s.kdl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("secret file"), "{stderr}");
    assert!(stderr.contains("s.kdl:4:30"), "{stderr}");
}

#[test]
fn two_composes_sharing_a_cache_mount_take_turns() {
    let test = "two_composes_sharing_a_cache_mount_take_turns";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // Two specs in two directories, one cache: each step writes its start,
    // waits, and writes its end in the shared cache. Taking turns, the log
    // holds each start right before its own end.
    let mut children = Vec::new();
    for name in ["a", "b"] {
        let dir = busybox_dir(&tmp.path().join(name));
        write_spec(
            &dir,
            &format!(
                "    layer l {{\n        run \"echo start-{name} >> /c/log && sleep 2 && echo end-{name} >> /c/log && echo {name} > /done\" {{\n            cache \"/c\" id=\"shared\"\n        }}\n    }}"
            ),
        );
        children.push(
            std::process::Command::new(crate::support::strata_bin())
                .args(["compose", "s.kdl", "--out", "out", "--quiet"])
                .current_dir(&dir)
                .env("STRATA_CACHE_DIR", &cache)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The log is in the cache mount's directory: read it through a third step.
    let dir = busybox_dir(&tmp.path().join("c"));
    write_spec(
        &dir,
        "    layer l {\n        run \"cat /c/log > /log\" {\n            cache \"/c\" id=\"shared\"\n        }\n    }",
    );
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let log = fs::read_to_string(unpack(&dir, &cache).join("log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines == ["start-a", "end-a", "start-b", "end-b"]
            || lines == ["start-b", "end-b", "start-a", "end-a"],
        "the steps overlapped: {lines:?}"
    );
}
