//! Registries, for real: the Debian `docker-registry` (CNCF distribution) on a
//! loopback port with filesystem storage in a temporary directory, started
//! and stopped by its process id. Pushes are checked with skopeo, which
//! shares no code with strata.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{have, index_digests, repo, run_ok, strata, strata_ok};

/// A running `docker-registry`, killed (by its pid) when dropped.
pub struct TestRegistry {
    child: Option<Child>,
    pub port: u16,
}

impl TestRegistry {
    /// Start a registry storing under `dir`, on a free port (or `port`).
    pub fn start(dir: &Path, port: Option<u16>) -> TestRegistry {
        Self::start_with(dir, port, "")
    }

    /// Start a registry that wants HTTP basic auth: `htpasswd` holds
    /// `USER:BCRYPT` lines.
    pub fn start_with_auth(dir: &Path, htpasswd: &str) -> TestRegistry {
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("htpasswd");
        std::fs::write(&file, htpasswd).unwrap();
        Self::start_with(
            dir,
            None,
            &format!(
                "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                file.display()
            ),
        )
    }

    fn start_with(dir: &Path, port: Option<u16>, extra: &str) -> TestRegistry {
        let port = port.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        });
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = TestRegistry {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reg.answers() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on port {port}: {}",
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Whether `GET /v2/` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 12];
        // 401: up, and wanting credentials.
        s.read_exact(&mut buf).is_ok() && (buf.ends_with(b"200") || buf.ends_with(b"401"))
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kill the registry by its process id, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the tools of these tests are here (SKIPPED otherwise, failure in CI).
pub fn tools(test: &str) -> bool {
    have("docker-registry", test) && have("skopeo", test)
}

/// The sha256 of the manifest the registry serves for `reference`, by skopeo.
pub fn remote_digest(reference: &str) -> String {
    let raw = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", reference])
        .output()
        .expect("run skopeo");
    assert!(
        raw.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let digest = strata_export_digest(&raw.stdout);
    // `skopeo inspect` (not raw) reports the registry's own Docker-Content-Digest.
    let info: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--no-tags",
        reference,
    ])))
    .unwrap();
    assert_eq!(info["Digest"].as_str(), Some(digest.as_str()));
    digest
}

fn strata_export_digest(bytes: &[u8]) -> String {
    // sha256 via the system tool, not strata's own code.
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

/// A spec with two layers, one of them `size` bytes of noise (which gzip
/// cannot shrink, so the blob is big enough to be caught mid-upload).
fn two_layer_spec(dir: &Path, size: usize) -> PathBuf {
    std::fs::create_dir_all(dir.join("inputs")).unwrap();
    let mut noise = vec![0u8; size];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(dir.join("inputs/noise.bin"), noise).unwrap();
    std::fs::write(dir.join("inputs/hello.txt"), "hello\n").unwrap();
    let spec = dir.join("app.kdl");
    std::fs::write(
        &spec,
        r#"image app {
    layer noise { copy "inputs/noise.bin" to="/data/noise.bin" }
    layer hello { copy "inputs/hello.txt" to="/etc/hello.txt" }
    cmd "/bin/true"
}
"#,
    )
    .unwrap();
    spec
}

#[test]
fn push_gives_the_local_digest_and_skopeo_pulls_it_back() {
    if !tools("push_gives_the_local_digest") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let spec = two_layer_spec(&tmp.path().join("proj"), 1 << 20);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    strata_ok(
        tmp.path(),
        &cache,
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let local = index_digests(&out)[0].1.clone();

    let dest = format!("docker://{}/team/app:v1", reg.host());
    let json = strata_ok(
        tmp.path(),
        &cache,
        &[
            "push",
            &format!("{}:app", out.display()),
            &dest,
            "--insecure",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["manifest"].as_str(), Some(local.as_str()));
    let blobs = report["blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), 3, "two layers and the config: {json}");
    assert!(blobs.iter().all(|b| b["uploaded"] == true), "{json}");

    assert_eq!(
        remote_digest(&dest),
        local,
        "the registry serves the local manifest"
    );

    // Pulled back by an independent client: the same manifest digest.
    let pulled = tmp.path().join("pulled");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:app", pulled.display()),
    ]));
    assert_eq!(index_digests(&pulled)[0].1, local);

    // A second push sends nothing but the manifest.
    let json = strata_ok(
        tmp.path(),
        &cache,
        &[
            "push",
            &format!("{}:app", out.display()),
            &dest,
            "--insecure",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        report["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["uploaded"] == false),
        "every blob is skipped the second time: {json}"
    );

    // By digest: only the image's own digest is accepted.
    let by_digest = format!("docker://{}/team/pinned@{local}", reg.host());
    strata_ok(
        tmp.path(),
        &cache,
        &[
            "push",
            &format!("{}:app", out.display()),
            &by_digest,
            "--insecure",
        ],
    );
    assert_eq!(remote_digest(&by_digest), local);
    let wrong = format!(
        "docker://{}/team/pinned@sha256:{}",
        reg.host(),
        "0".repeat(64)
    );
    let refused = strata(
        tmp.path(),
        &cache,
        &[
            "push",
            &format!("{}:app", out.display()),
            &wrong,
            "--insecure",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("has manifest {local}")),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn compose_push_sends_every_image_as_repo_name_tag() {
    if !tools("compose_push_sends_every_image") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let spec = two_layer_spec(&tmp.path().join("proj"), 4096);
    // A second image on the first: their shared layers go up once.
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str("image more {\n    from app\n    layer extra { file \"/extra\" \"x\" }\n    tag \"v2\"\n}\n");
    std::fs::write(&spec, text).unwrap();
    let out = tmp.path().join("out");
    let base = format!("docker://{}/ci", reg.host());
    let summary = strata_ok(
        tmp.path(),
        &tmp.path().join("cache"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--push",
            &base,
            "--insecure",
        ],
    );
    assert!(summary.contains("pushed app to"), "{summary}");
    let local = index_digests(&out);
    assert_eq!(remote_digest(&format!("{base}/app:latest")), local[0].1);
    assert_eq!(remote_digest(&format!("{base}/more:v2")), local[1].1);
    let more = summary
        .lines()
        .find(|l| l.starts_with("pushed more"))
        .unwrap();
    assert!(
        more.contains("2 of 4 blobs uploaded") && more.contains("2 mounted"),
        "the layers of app are mounted, not sent again: {summary}"
    );

    // --json: the report says what went where (and pushes nothing twice).
    let json = compose_json(
        tmp.path(),
        &tmp.path().join("cache"),
        &spec,
        &out,
        &["--push", &base],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pushed = v["pushed"].as_array().expect("a pushed array");
    assert_eq!(pushed.len(), 2, "{json}");
    assert_eq!(pushed[1]["reference"], format!("{base}/more:v2"), "{json}");
    assert_eq!(pushed[1]["manifest"].as_str(), Some(local[1].1.as_str()));
    assert_eq!(v["images"][1]["manifest"], pushed[1]["manifest"], "{json}");

    // A tag on the base would name several images: refused before building.
    let bad = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--push",
            &format!("{base}:x"),
            "--insecure",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("without tag"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn push_refuses_a_destination_that_is_not_a_registry_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["push", "x", "h.io/App:1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("starts with docker://"), "{err}");
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["push", "x", "docker://h.io/App:1"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'A' is not allowed"), "{err}");
}

#[test]
fn a_registry_killed_mid_push_gives_a_clear_error_and_a_retry_succeeds() {
    if !tools("a_registry_killed_mid_push") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg_dir = tmp.path().join("registry");
    let mut reg = TestRegistry::start(&reg_dir, None);
    let spec = two_layer_spec(&tmp.path().join("proj"), 96 << 20);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    let big = first_layer_digest(tmp.path(), &cache, &spec, &out);
    let dest = format!("docker://{}/team/big:v1", reg.host());

    let push = Command::new(crate::support::strata_bin())
        .args([
            "push",
            &format!("{}:app", out.display()),
            &dest,
            "--insecure",
        ])
        .current_dir(tmp.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the registry once the big blob's upload has started writing data.
    let uploads = reg_dir.join("data/docker/registry/v2/repositories/team/big/_uploads");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = std::fs::read_dir(&uploads).is_ok_and(|d| {
            d.flatten()
                .any(|e| std::fs::metadata(e.path().join("data")).is_ok_and(|m| m.len() > 0))
        });
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    reg.kill();
    let failed = push.wait_with_output().unwrap();
    assert!(
        !failed.status.success(),
        "the push cannot succeed without its registry"
    );
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains(&format!("registry {}", reg.host())),
        "names the registry: {err}"
    );
    assert!(err.contains(&big), "names the blob: {err}");
    assert!(
        std::fs::read_to_string(
            reg_dir.join(
                "data/docker/registry/v2/repositories/team/big/_manifests/tags/v1/current/link"
            )
        )
        .is_err(),
        "no tag points at a half-pushed image"
    );

    // The same registry (same storage, same port) back up: the retry works.
    let reg = TestRegistry::start(&reg_dir, Some(reg.port));
    strata_ok(
        tmp.path(),
        &cache,
        &[
            "push",
            &format!("{}:app", out.display()),
            &dest,
            "--insecure",
        ],
    );
    assert_eq!(remote_digest(&dest), index_digests(&out)[0].1);
    drop(reg);
}

/// `strata compose SPEC -o OUT --insecure --json EXTRA...` run in `dir` with
/// `cache`: its JSON report.
fn compose_json(dir: &Path, cache: &Path, spec: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "compose",
        spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--insecure",
        "--json",
    ];
    args.extend_from_slice(extra);
    strata_ok(dir, cache, &args)
}

/// `strata compose SPEC -o OUT` (no registry involved): the blob digest of
/// its first image's first layer.
fn first_layer_digest(dir: &Path, cache: &Path, spec: &Path, out: &Path) -> String {
    let json = strata_ok(
        dir,
        cache,
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    report["images"][0]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The layers of the single image of a `compose --json` report: (name, cache, digest).
fn layers_of(report: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(report).unwrap();
    v["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["cache"].as_str().unwrap().to_owned(),
                l["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn top_spec(dir: &Path, name: &str, from: &str) -> PathBuf {
    let spec = dir.join(format!("{name}.kdl"));
    std::fs::write(
        &spec,
        format!(
            r#"image top {{
    from "{from}"
    layer extra {{ file "/etc/extra" "from the top\n" }}
    layer trim {{ delete "/etc/hello.txt" }}
    env MODE="top"
}}
"#
        ),
    )
    .unwrap();
    spec
}

#[test]
fn a_base_from_the_registry_builds_the_same_image_as_from_a_layout_and_is_kept() {
    if !tools("a_base_from_the_registry") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let proj = tmp.path().join("proj");
    let spec = two_layer_spec(&proj, 64 << 10);
    let base_out = proj.join("base");
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache0"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            base_out.to_str().unwrap(),
        ],
    );
    let base_digest = index_digests(&base_out)[0].1.clone();
    let repo = format!("docker://{}/base/app", reg.host());
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache0"),
        &[
            "push",
            &format!("{}:app", base_out.display()),
            &format!("{repo}:v1"),
            "--insecure",
        ],
    );

    let compose = |spec: &Path, cache: &str, out: &str| {
        compose_json(
            tmp.path(),
            &tmp.path().join(cache),
            spec,
            &tmp.path().join(out),
            &[],
        )
    };
    let from_layout = compose(&top_spec(&proj, "a", "oci:base:app"), "cache-a", "out-a");
    let from_tag = compose(
        &top_spec(&proj, "b", &format!("{repo}:v1")),
        "cache-b",
        "out-b",
    );
    let digest_a = index_digests(&tmp.path().join("out-a"))[0].1.clone();
    assert_eq!(
        index_digests(&tmp.path().join("out-b"))[0].1,
        digest_a,
        "the same base from a registry and from a layout gives the same image"
    );
    let layers = layers_of(&from_tag);
    assert_eq!(
        layers.len(),
        4,
        "two base layers, then extra and trim: {layers:?}"
    );
    assert_eq!(layers[0].0, "top/base-1");
    assert_eq!(layers_of(&from_layout)[..2], layers[..2]);
    // The base's layers are its blobs as they are, not rebuilt.
    let base_layers: Vec<String> = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(
            base_out
                .join("blobs/sha256")
                .join(&base_digest["sha256:".len()..]),
        )
        .unwrap(),
    )
    .unwrap()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(vec![layers[0].2.clone(), layers[1].2.clone()], base_layers);

    // The config is inherited: the base's cmd, and the top's env.
    let config = run_ok(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:top", tmp.path().join("out-b").display()),
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["Cmd"][0], "/bin/true");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "MODE=top")
    );

    // The same base pushed as a docker schema 2 image (other media types,
    // a converted config, the same layer blobs) gives the same image too.
    run_ok(Command::new("skopeo").args([
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:app", base_out.display()),
        &format!("{repo}:v2s2"),
    ]));
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("{repo}:v2s2"),
    ]));
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    compose(
        &top_spec(&proj, "v2s2", &format!("{repo}:v2s2")),
        "cache-d",
        "out-d2",
    );
    assert_eq!(index_digests(&tmp.path().join("out-d2"))[0].1, digest_a);

    // `strata plan` resolves the base too, and shows its layers.
    let plan = strata_ok(
        tmp.path(),
        &tmp.path().join("cache-b"),
        &["plan", proj.join("b.kdl").to_str().unwrap(), "--insecure"],
    );
    assert!(plan.contains("base-1"), "{plan}");

    // `strata lock` records the digest the tag resolved to.
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache-b"),
        &[
            "lock",
            proj.join("b.kdl").to_str().unwrap(),
            "-o",
            tmp.path().join("out-lock").to_str().unwrap(),
            "--insecure",
            "--quiet",
        ],
    );
    let lock = std::fs::read_to_string(proj.join("b.lock")).unwrap();
    assert!(
        lock.lines()
            .any(|l| l == format!("base {repo}:v1 {base_digest}")),
        "{lock}"
    );

    // Pinned by digest, the base needs no registry once it was pulled: the
    // manifest, config and layers are all in the cache.
    reg.kill();
    let pinned = compose(
        &top_spec(&proj, "c", &format!("{repo}@{base_digest}")),
        "cache-b",
        "out-c",
    );
    assert_eq!(index_digests(&tmp.path().join("out-c"))[0].1, digest_a);
    assert!(
        layers_of(&pinned).iter().all(|l| l.1 == "hit"),
        "every layer is a cache hit: {pinned}"
    );

    // A tag cannot be resolved without its registry: the error points at the `from`.
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache-b"),
        &[
            "compose",
            proj.join("b.kdl").to_str().unwrap(),
            "-o",
            tmp.path().join("out-d").to_str().unwrap(),
            "--insecure",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot resolve base"), "{err}");
    assert!(err.contains(&format!("registry {}", reg.host())), "{err}");
    assert!(
        err.contains("b.kdl:2"),
        "points at the line of `from`: {err}"
    );
}

#[test]
fn two_machines_share_layers_through_cache_to_and_cache_from() {
    if !tools("two_machines_share_layers") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let spec = two_layer_spec(&tmp.path().join("proj"), 256 << 10);
    let remote = format!("docker://{}/ci/cache", reg.host());
    let compose = |machine: &str, flag: &str| {
        compose_json(
            tmp.path(),
            &tmp.path().join(format!("cache-{machine}")),
            &spec,
            &tmp.path().join(format!("out-{machine}")),
            &[flag, &remote],
        )
    };
    let first = compose("one", "--cache-to");
    assert!(layers_of(&first).iter().all(|l| l.1 == "miss"), "{first}");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["remote_cache_pushed"], 2, "{first}");
    // The artifacts are in the registry under their keys.
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    let key = v["images"][0]["layers"][0]["key"].as_str().unwrap();
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("{remote}:strata-layer-{key}"),
    ]));
    assert!(
        raw.contains("application/vnd.strata.layer-record.v1+json"),
        "{raw}"
    );

    // A second machine, its cache empty: every layer comes from the registry.
    let second = compose("two", "--cache-from");
    assert!(
        layers_of(&second).iter().all(|l| l.1 == "hit"),
        "all hits on the second machine: {second}"
    );
    assert_eq!(layers_of(&first).len(), layers_of(&second).len());
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(
        v["remote_cache_fetched"], 2,
        "both layers came from the registry: {second}"
    );
    assert_eq!(
        index_digests(&tmp.path().join("out-one")),
        index_digests(&tmp.path().join("out-two")),
        "the same image on both machines"
    );
    // Its cache now holds the layers for itself.
    let again = compose("two", "--cache-from");
    assert!(layers_of(&again).iter().all(|l| l.1 == "hit"));
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["remote_cache_fetched"], 0, "nothing to fetch: {again}");

    // A remote cache that is gone is a warning, not a failure.
    drop(reg);
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache-three"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            tmp.path().join("out-three").to_str().unwrap(),
            "--cache-from",
            &remote,
            "--insecure",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("remote cache"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        index_digests(&tmp.path().join("out-three")),
        index_digests(&tmp.path().join("out-one"))
    );
}

/// bcrypt of `s3cret` (cost 4), for the user `ci`.
const HTPASSWD: &str = "ci:$2b$04$YBEaj7Ob2w7Lm4WZQVWuMeARSlyLyLUbBWhkBVIxnuIGUPRln7xU2\n";

#[test]
fn credentials_come_from_the_docker_config_file() {
    if !tools("credentials_come_from_the_docker_config_file") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start_with_auth(&tmp.path().join("registry"), HTPASSWD);
    let proj = tmp.path().join("proj");
    let spec = two_layer_spec(&proj, 4096);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    strata_ok(
        tmp.path(),
        &cache,
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let dest = format!("docker://{}/auth/app:v1", reg.host());
    let run = |docker_config: &Path, args: &[&str]| {
        Command::new(crate::support::strata_bin())
            .args(args)
            .current_dir(tmp.path())
            .env("STRATA_CACHE_DIR", &cache)
            .env("DOCKER_CONFIG", docker_config)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let push = ["push", out.to_str().unwrap(), dest.as_str(), "--insecure"];

    // No credentials: refused, and the error says so.
    let empty = tmp.path().join("no-docker-config");
    std::fs::create_dir_all(&empty).unwrap();
    let denied = run(&empty, &push);
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr).to_lowercase();
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");

    // The usual docker config file: `auths` with base64 `user:password`.
    let config = tmp.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"Y2k6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let ok = run(&config, &push);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let local = index_digests(&out)[0].1.clone();
    let info: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "ci:s3cret",
        &dest,
    ])))
    .unwrap();
    assert_eq!(info["Digest"].as_str(), Some(local.as_str()));

    // Pulls use them too: a base from the same registry.
    let top = top_spec(&proj, "top", &dest);
    let composed = run(
        &config,
        &[
            "compose",
            top.to_str().unwrap(),
            "-o",
            tmp.path().join("out-top").to_str().unwrap(),
            "--insecure",
        ],
    );
    assert!(
        composed.status.success(),
        "{}",
        String::from_utf8_lossy(&composed.stderr)
    );
}

#[test]
fn a_multi_platform_base_resolves_to_its_linux_amd64_image() {
    if !tools("a_multi_platform_base") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let proj = tmp.path().join("proj");
    let spec = two_layer_spec(&proj, 4096);
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str("image other {\n    layer o { file \"/other\" \"o\" }\n}\n");
    std::fs::write(&spec, text).unwrap();
    let base_out = proj.join("base");
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache0"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            base_out.to_str().unwrap(),
        ],
    );
    // An index: `other` for linux/arm64 first, then `app` for linux/amd64.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base_out.join("index.json")).unwrap()).unwrap();
    let entry = |i: usize, arch: &str| {
        let m = &index["manifests"][i];
        serde_json::json!({
            "mediaType": m["mediaType"],
            "digest": m["digest"],
            "size": m["size"],
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "app"
    );
    let m = &index["manifests"][0];
    let multi = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(1, "arm64"), entry(0, "amd64")],
    });
    let bytes = serde_json::to_vec(&multi).unwrap();
    let digest = strata_export_digest(&bytes);
    std::fs::write(
        base_out
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]),
        &bytes,
    )
    .unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    let image_digest = m["digest"].as_str().unwrap().to_owned();
    std::fs::write(
        base_out.join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    let repo = format!("docker://{}/base/multi", reg.host());
    run_ok(Command::new("skopeo").args([
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", base_out.display()),
        &format!("{repo}:v1"),
    ]));

    let spec = top_spec(&proj, "m", &format!("{repo}:v1"));
    let json = compose_json(
        tmp.path(),
        &tmp.path().join("cache"),
        &spec,
        &tmp.path().join("out"),
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["bases"][0]["manifest"].as_str(),
        Some(image_digest.as_str()),
        "the linux/amd64 manifest of the index: {json}"
    );
    assert_eq!(layers_of(&json).len(), 4);

    // An image that names its platform gets that one.
    let arm = proj.join("arm.kdl");
    std::fs::write(
        &arm,
        format!("image top {{\n    from \"{repo}:v1\"\n    platform \"linux/arm64\"\n}}\n"),
    )
    .unwrap();
    let json = compose_json(
        tmp.path(),
        &tmp.path().join("cache"),
        &arm,
        &tmp.path().join("out-arm"),
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["bases"][0]["manifest"], index["manifests"][1]["digest"],
        "{json}"
    );
}

#[test]
fn a_blob_the_registry_serves_corrupt_is_refused_not_cached() {
    if !tools("a_blob_the_registry_serves_corrupt") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg_dir = tmp.path().join("registry");
    let reg = TestRegistry::start(&reg_dir, None);
    let proj = tmp.path().join("proj");
    let spec = two_layer_spec(&proj, 4096);
    let base_out = proj.join("base");
    let blob = first_layer_digest(tmp.path(), &tmp.path().join("cache0"), &spec, &base_out);
    let repo = format!("docker://{}/base/app", reg.host());
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache0"),
        &[
            "push",
            base_out.to_str().unwrap(),
            &format!("{repo}:v1"),
            "--insecure",
        ],
    );
    // Flip bytes of the blob in the registry's own storage: it serves
    // what is on disk, as a broken disk or a hostile mirror would.
    let hex = &blob["sha256:".len()..];
    let data = reg_dir.join(format!(
        "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let top = top_spec(&proj, "top", &format!("{repo}:v1"));
    let cache = tmp.path().join("cache");
    let out = strata(
        tmp.path(),
        &cache,
        &[
            "compose",
            top.to_str().unwrap(),
            "-o",
            tmp.path().join("out").to_str().unwrap(),
            "--insecure",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("registry {}", reg.host())), "{err}");
    assert!(err.contains(&blob), "names the blob: {err}");
    // oci-client's own check or ours, whichever sees the end of the stream first.
    assert!(
        err.contains("hashes to") || err.contains("Invalid digest"),
        "says it does not match: {err}"
    );
    assert!(
        !cache.join("blobs/sha256").join(hex).exists(),
        "the corrupt blob is not in the cache"
    );
    assert!(!tmp.path().join("out").exists(), "no output");
}

#[test]
fn a_remote_cache_entry_whose_record_lies_is_refused_and_rebuilt() {
    if !tools("a_remote_cache_entry_whose_record_lies") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let spec = two_layer_spec(&tmp.path().join("proj"), 4096);
    let remote = format!("docker://{}/ci/cache", reg.host());
    let compose = |machine: &str, args: &[&str]| {
        let out = tmp.path().join(format!("out-{machine}"));
        let cache = tmp.path().join(format!("cache-{machine}"));
        let json = compose_json(tmp.path(), &cache, &spec, &out, args);
        (json, index_digests(&out))
    };
    let (clean, clean_digests) = compose("one", &[]);
    // Machine one's record of the first layer now names another diff_id,
    // and it shares that record.
    let v: serde_json::Value = serde_json::from_str(&clean).unwrap();
    let key = v["images"][0]["layers"][0]["key"].as_str().unwrap();
    // A record is a head line, then the listing.
    let record_path = tmp.path().join(format!("cache-one/layers-v2/{key}.json"));
    let bytes = std::fs::read(&record_path).unwrap();
    let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    let mut head: serde_json::Value = serde_json::from_slice(&bytes[..nl]).unwrap();
    head["diff_id"] = serde_json::Value::String(format!("sha256:{}", "1".repeat(64)));
    let head = serde_json::to_vec(&head).unwrap();
    std::fs::write(&record_path, [&head[..], &bytes[nl..]].concat()).unwrap();
    compose("one", &["--cache-to", &remote]);

    let out = strata(
        tmp.path(),
        &tmp.path().join("cache-two"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            tmp.path().join("out-two").to_str().unwrap(),
            "--insecure",
            "--cache-from",
            &remote,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("but its diff_id is sha256:1111"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["remote_cache_fetched"], 1,
        "the honest layer still came from the registry"
    );
    assert_eq!(
        index_digests(&tmp.path().join("out-two")),
        clean_digests,
        "the lying layer was built locally: the image is the honest one"
    );
}

#[test]
fn compose_locked_builds_on_the_locked_base_digest_when_the_tag_moved() {
    if !tools("compose_locked_builds_on_the_locked_base_digest") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start(&tmp.path().join("registry"), None);
    let repo = format!("docker://{}/base/app", reg.host());
    let push_base = |dir: &str, size: usize| {
        let spec = two_layer_spec(&tmp.path().join(dir), size);
        let out = tmp.path().join(dir).join("out");
        strata_ok(
            tmp.path(),
            &tmp.path().join("cache0"),
            &[
                "compose",
                spec.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        strata_ok(
            tmp.path(),
            &tmp.path().join("cache0"),
            &[
                "push",
                out.to_str().unwrap(),
                &format!("{repo}:v1"),
                "--insecure",
            ],
        );
        index_digests(&out)[0].1.clone()
    };
    let first = push_base("one", 4096);
    let proj = tmp.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let top = top_spec(&proj, "top", &format!("{repo}:v1"));
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "compose".to_owned(),
            top.to_str().unwrap().to_owned(),
            "-o".to_owned(),
            out.to_str().unwrap().to_owned(),
            "--insecure".to_owned(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        strata(tmp.path(), &cache, &a)
    };
    assert!(run(args(&["--update-lock"])).status.success());
    let lock = std::fs::read_to_string(proj.join("top.lock")).unwrap();
    assert!(lock.contains(&format!("base {repo}:v1 {first}")), "{lock}");
    let locked_image = index_digests(&out)[0].1.clone();

    // The tag moves to another image.
    let second = push_base("two", 8192);
    assert_ne!(first, second);

    // --locked builds on the digest of the lock, and matches it.
    let locked = run(args(&["--locked"]));
    assert!(
        locked.status.success(),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
    assert_eq!(index_digests(&out)[0].1, locked_image);

    // Without the lock, the tag is asked: a new base, another image, and
    // `--locked` against the old lock would have said so.
    assert!(run(args(&[])).status.success());
    assert_ne!(index_digests(&out)[0].1, locked_image);
}

#[test]
fn one_external_base_for_two_platforms_is_refused_not_shared() {
    // Resolved once per `from`, a base named by two images of different
    // platforms would give the second the first one's layers.
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    strata_ok(
        tmp.path(),
        &cache,
        &[
            "compose",
            repo().join("specs/hello.kdl").to_str().unwrap(),
            "-o",
            "base",
        ],
    );
    std::fs::write(
        tmp.path().join("two.kdl"),
        "image a {\n    from \"oci:base:hello\"\n}\n\
         image b {\n    from \"oci:base:hello\"\n    platform \"linux/arm64\"\n}\n",
    )
    .unwrap();
    let out = strata(tmp.path(), &cache, &["compose", "two.kdl", "-o", "out"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("base `oci:base:hello` is used by images of two platforms (linux/amd64 on line 2, linux/arm64 here)"),
        "{err}"
    );
    assert!(
        err.contains("two.kdl:5:"),
        "points at the second `from`: {err}"
    );
}
