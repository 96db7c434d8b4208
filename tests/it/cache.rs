//! The layer cache, end to end: a rebuild costs what changed, hits survive
//! touched mtimes and a checkout elsewhere, kill -9 never leaves a store that
//! exports a wrong image, concurrent composes agree, corruption is caught.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{repo, strata, strata_bin, strata_ok};

/// A spec with three independent layers and one that reads below (a delete).
const SPEC: &str = r#"
image base {
    layer os { copy "os/" to="/etc/" }
    layer app { copy "app.txt" to="/srv/app.txt" }
    layer tools { copy "tool.sh" to="/usr/bin/tool" mode=0o755 }
    layer trim { delete "/etc/motd" }
    cmd "/usr/bin/tool"
}
"#;

fn project(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("os")).unwrap();
    std::fs::write(dir.join("spec.kdl"), SPEC).unwrap();
    std::fs::write(dir.join("os/motd"), "welcome\n").unwrap();
    std::fs::write(dir.join("os/hostname"), "box\n").unwrap();
    std::fs::write(dir.join("app.txt"), "app v1\n").unwrap();
    std::fs::write(dir.join("tool.sh"), "#!/bin/sh\necho tool\n").unwrap();
    dir.join("spec.kdl")
}

/// (layer name, "hit"/"miss", miss reason) for every layer of every image, from `--json`.
fn compose_json(
    dir: &Path,
    cache: &Path,
    out: &str,
) -> (serde_json::Value, Vec<(String, String, String)>) {
    let json: serde_json::Value = serde_json::from_str(&strata_ok(
        dir,
        cache,
        &["compose", "spec.kdl", "--out", out, "--json"],
    ))
    .unwrap();
    let mut layers = Vec::new();
    for img in json["images"].as_array().unwrap() {
        for l in img["layers"].as_array().unwrap() {
            layers.push((
                l["name"].as_str().unwrap().to_owned(),
                l["cache"].as_str().unwrap().to_owned(),
                l["miss_reason"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    (json, layers)
}

fn misses(layers: &[(String, String, String)]) -> Vec<&str> {
    layers
        .iter()
        .filter(|l| l.1 == "miss")
        .map(|l| l.0.as_str())
        .collect()
}

fn manifests(json: &serde_json::Value) -> Vec<String> {
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["manifest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_one_file_change_rebuilds_exactly_the_layers_that_read_it_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir);
    let cache = tmp.path().join("cache");

    let (_, cold) = compose_json(&dir, &cache, "out");
    assert_eq!(
        misses(&cold),
        ["base/os", "base/app", "base/tools", "base/trim"]
    );
    assert!(
        cold.iter().all(|l| l.2 == "first build of this layer"),
        "{cold:?}"
    );

    let (_, warm) = compose_json(&dir, &cache, "out");
    assert!(misses(&warm).is_empty(), "warm: {warm:?}");

    // app.txt is read by the app layer, and through it by the delete layer,
    // which reads every layer below it. A layer that writes below a directory keeps what the layers below
    // gave that directory (as Docker's COPY does), so it reads them: the
    // tools layer (under /usr/bin) rebuilds too, and says why. The os layer,
    // below app, does not.
    std::fs::write(dir.join("app.txt"), "app v2\n").unwrap();
    let (_, one) = compose_json(&dir, &cache, "out");
    assert_eq!(misses(&one), ["base/app", "base/tools", "base/trim"]);
    assert_eq!(one[1].2, "changed op 1: copy app.txt", "{one:?}");
    assert_eq!(one[2].2, "changed below: base/app", "{one:?}");
    assert_eq!(
        one[3].2, "changed below: base/app; changed below: base/tools",
        "{one:?}"
    );

    std::fs::write(dir.join("os/hostname"), "other\n").unwrap();
    let (_, two) = compose_json(&dir, &cache, "out");
    assert_eq!(
        misses(&two),
        ["base/os", "base/app", "base/tools", "base/trim"]
    );
    assert_eq!(two[0].2, "changed op 1: copy os/", "{two:?}");
    assert!(two[3].2.starts_with("changed below: base/os"), "{two:?}");

    // The exec bit is content too; the layers below tools are hits.
    let tool = dir.join("tool.sh");
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_, three) = compose_json(&dir, &cache, "out");
    assert_eq!(misses(&three), ["base/tools", "base/trim"]);
}

#[test]
fn touched_mtimes_another_checkout_path_and_umask_are_all_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let a = tmp.path().join("a");
    project(&a);
    let (first, _) = compose_json(&a, &cache, "out");

    let b = tmp.path().join("elsewhere/b");
    project(&b);
    for f in ["app.txt", "tool.sh", "os/motd", "os/hostname"] {
        filetime::set_file_mtime(
            b.join(f),
            filetime::FileTime::from_unix_time(1_500_000_000, 0),
        )
        .unwrap();
    }
    let out = Command::new("sh")
        .args([
            "-c",
            "umask 077 && exec \"$0\" compose spec.kdl --out out --json",
        ])
        .arg(strata_bin())
        .current_dir(&b)
        .env("STRATA_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for l in second["images"][0]["layers"].as_array().unwrap() {
        assert_eq!(l["cache"], "hit", "{l}");
    }
    assert_eq!(manifests(&first), manifests(&second));
}

/// A change that keeps the size and the mtime (the racy case of git's index)
/// is still seen: the input index never trusts stat data alone when it could lie.
#[test]
fn a_same_size_same_mtime_change_is_not_missed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir);
    let cache = tmp.path().join("cache");
    let app = dir.join("app.txt");
    let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&app).unwrap());
    compose_json(&dir, &cache, "out");
    compose_json(&dir, &cache, "out"); // the index now remembers app.txt
    std::fs::write(&app, "app v9\n").unwrap(); // same length
    filetime::set_file_mtime(&app, mtime).unwrap();
    let (_, after) = compose_json(&dir, &cache, "out");
    // tools writes under /usr/bin and so reads the layers below (see above).
    assert_eq!(misses(&after), ["base/app", "base/tools", "base/trim"]);
}

#[test]
fn a_corrupt_blob_is_caught_dropped_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir);
    let cache = tmp.path().join("cache");
    let (good, _) = compose_json(&dir, &cache, "out");
    let blob = good["images"][0]["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let path = cache.join("blobs/sha256").join(&blob);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let out = strata(
        &dir,
        &cache,
        &["compose", "spec.kdl", "--out", "out", "--json"],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("base/app"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = &json["images"][0]["layers"][1];
    assert_eq!(app["cache"], "miss");
    assert!(
        app["miss_reason"].as_str().unwrap().contains("hashes to"),
        "{app}"
    );
    assert_eq!(
        manifests(&json),
        manifests(&good),
        "rebuilt to the same image"
    );
}

#[test]
fn concurrent_composes_on_one_cache_all_succeed_and_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let spec = repo().join("specs/tomcat.kdl");
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(strata_bin())
                .args(["compose", spec.to_str().unwrap(), "--json", "--out"])
                .arg(tmp.path().join(format!("out{i}")))
                .env("STRATA_CACHE_DIR", &cache)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        all.push(manifests(&json));
    }
    assert!(all.windows(2).all(|w| w[0] == w[1]), "{all:?}");
    let verify = strata_ok(tmp.path(), &cache, &["cache", "verify"]);
    assert!(verify.contains("0 removed"), "{verify}");
}

/// kill -9 at many points of a compose; after each, a normal compose must
/// give exactly the image a clean cache gives, and the cache must verify.
#[test]
fn kill_9_at_random_points_never_leaves_a_cache_that_exports_a_wrong_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir);
    // A few MB of incompressible-ish input so a build takes long enough to be cut.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..6 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(dir.join("app.txt"), &big).unwrap();
    let clean = tmp.path().join("clean-cache");
    let (expected, _) = compose_json(&dir, &clean, "expected");

    let cache = tmp.path().join("cache");
    for round in 0..12u64 {
        // Spread the kill points over the build: 0 to ~1.1 s.
        let delay = std::time::Duration::from_millis((round * 97) % 1100);
        let mut child = Command::new(strata_bin())
            .args(["compose", "spec.kdl", "--out", "out", "--quiet"])
            .current_dir(&dir)
            .env("STRATA_CACHE_DIR", &cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Every third round, let a later build find the half-state first.
        if round % 3 == 2 {
            let (json, _) = compose_json(&dir, &cache, "out");
            assert_eq!(manifests(&json), manifests(&expected), "round {round}");
        }
    }
    let (json, _) = compose_json(&dir, &cache, "out");
    assert_eq!(manifests(&json), manifests(&expected));
    // A killed build may leave a blob whose record it never wrote (verify
    // removes such orphans), but never a record that lies.
    let verify = strata_ok(&dir, &cache, &["cache", "verify"]);
    let bad: Vec<&str> = verify
        .lines()
        .filter(|l| l.starts_with("removed") && !l.starts_with("removed blob"))
        .collect();
    assert!(
        bad.is_empty(),
        "records were bad after kill -9: {bad:?}\n{verify}"
    );
}

#[test]
fn cache_ls_gc_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir);
    let cache = tmp.path().join("cache");
    compose_json(&dir, &cache, "out");

    let path = strata_ok(&dir, &cache, &["cache", "path"]);
    assert_eq!(path.trim(), cache.to_str().unwrap());
    let ls: serde_json::Value =
        serde_json::from_str(&strata_ok(&dir, &cache, &["cache", "ls", "--json"])).unwrap();
    assert_eq!(ls["layers"].as_array().unwrap().len(), 4);
    let text = strata_ok(&dir, &cache, &["cache", "ls"]);
    assert!(text.contains("4 layer(s)"), "{text}");

    let gc = strata_ok(&dir, &cache, &["cache", "gc", "--older-than", "1h"]);
    assert!(gc.contains("0 of 4 layer(s) evicted"), "{gc}");
    let gc = strata_ok(&dir, &cache, &["cache", "gc", "--max-size", "0"]);
    assert!(gc.contains("4 of 4 layer(s) evicted"), "{gc}");
    assert_eq!(
        std::fs::read_dir(cache.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    let out = strata(&dir, &cache, &["cache", "gc"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "gc without a limit is a usage error"
    );

    // After eviction the next compose misses and says so.
    let (_, again) = compose_json(&dir, &cache, "out");
    assert!(
        again
            .iter()
            .all(|l| l.1 == "miss" && l.2.contains("evicted")),
        "{again:?}"
    );
}
