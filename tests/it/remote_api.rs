//! The layer cache on a Remote Execution API server (`--remote-cache`),
//! against a real BuildGrid (`pip install buildgrid`, as `.ci/run` installs
//! it) on a free loopback port, in-memory CAS and action cache, started and
//! killed by its process id. Machines are cache directories and copies of
//! the spec's directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata::reapi::{ActionResult, BlobDigest, Client, Options, OutputFile, Source};

use crate::support::{index_digests, strata, strata_ok, tree_bytes};

/// Where `bgd` is: `$STRATA_BGD`, the virtualenv `.ci/run` makes
/// (`/opt/buildgrid-venv`), or `PATH`. `None` (SKIPPED) without it, and a
/// failure under `CI`, which installs it.
pub(crate) fn bgd(test: &str) -> Option<PathBuf> {
    crate::support::venv_tool(
        test,
        "bgd",
        "STRATA_BGD",
        "/opt/buildgrid-venv",
        "buildgrid",
    )
}

/// What a test's BuildGrid serves besides its CAS, ByteStream and action
/// cache (in memory, 256 MB), and how it is reached.
#[derive(Default)]
pub(crate) struct GridConfig<'a> {
    /// A scheduler on this PostgreSQL connection, and the execution and
    /// bots services over it.
    pub(crate) scheduler_sql: Option<&'a str>,
    /// TLS with this key and certificate (PEM files): `grpcs://`.
    pub(crate) tls: Option<(&'a Path, &'a Path)>,
    /// Bearer tokens required: JWTs (HS256) signed with the secret in this file.
    pub(crate) jwt_secret: Option<&'a Path>,
}

/// The configuration file of a BuildGrid on `port`: one builder for every
/// test's server, so they differ only in what `c` asks for.
pub(crate) fn grid_config(port: u16, c: &GridConfig) -> String {
    let mut y = String::new();
    if let Some(secret) = c.jwt_secret {
        y += &format!(
            "authorization:\n  method: jwt\n  secret: {}\n  algorithm: hs256\n",
            secret.display()
        );
    }
    y += &format!("server:\n  - !channel\n    address: \"127.0.0.1:{port}\"\n");
    match c.tls {
        None => y += "    insecure-mode: true\n",
        Some((key, cert)) => {
            y += &format!(
                "    insecure-mode: false\n    credentials:\n      tls-server-key: {}\n      tls-server-cert: {}\n",
                key.display(),
                cert.display()
            )
        }
    }
    y += r#"storages:
  - !lru-storage &cas
    size: 256MB
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 1024
    allow-updates: true
    cache-failed-actions: false
"#;
    if let Some(sql) = c.scheduler_sql {
        y += &format!(
            "schedulers:\n  - !sql-scheduler &sched\n    storage: *cas\n    sql: !sql-connection\n      connection-string: {sql}\n    action-cache: *ac\n"
        );
    }
    y += r#"instances:
  - name: ''
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"#;
    if c.scheduler_sql.is_some() {
        y += "      - !execution\n        scheduler: *sched\n      - !bots\n        scheduler: *sched\n";
    }
    y
}

/// A running BuildGrid, killed (by its pid) when dropped.
pub(crate) struct BuildGrid {
    child: Option<Child>,
    pub(crate) url: String,
}

impl BuildGrid {
    pub(crate) fn start(bgd: &Path, dir: &Path) -> BuildGrid {
        BuildGrid::start_with(bgd, dir, &GridConfig::default(), Options::new)
    }

    /// A BuildGrid configured by `c`, up once a client with the options
    /// `probe` gives for its URL gets an answer.
    pub(crate) fn start_with(
        bgd: &Path,
        dir: &Path,
        c: &GridConfig,
        probe: impl Fn(&str) -> Options,
    ) -> BuildGrid {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("bgd.yml");
        std::fs::write(&config, grid_config(port, c)).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(bgd)
            .args(["server", "start"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bgd");
        let scheme = if c.tls.is_some() { "grpcs" } else { "grpc" };
        let grid = BuildGrid {
            child: Some(child),
            url: format!("{scheme}://127.0.0.1:{port}"),
        };
        // Up when it answers a real call (a miss).
        let mut o = probe(&grid.url);
        o.retries = 0;
        o.timeout = Duration::from_secs(2);
        let client = Client::connect(&o).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(e) = client.get_action_result(&BlobDigest::of(b"ping")) {
            assert!(
                Instant::now() < deadline,
                "BuildGrid did not answer on port {port} ({e}): {}",
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        grid
    }

    fn client(&self) -> Client {
        Client::connect(&Options::new(&self.url)).unwrap()
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for BuildGrid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A spec with two layers: 3 MB of noise (a blob over the 1 MiB that goes
/// by ByteStream) and a small file.
pub(crate) fn spec_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("inputs")).unwrap();
    let mut noise = vec![0u8; 3 << 20];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(dir.join("inputs/noise.bin"), noise).unwrap();
    std::fs::write(dir.join("inputs/hello.txt"), "hello\n").unwrap();
    std::fs::write(
        dir.join("app.kdl"),
        r#"image app {
    layer noise { copy "inputs/noise.bin" to="/data/noise.bin" }
    layer hello { copy "inputs/hello.txt" to="/etc/hello.txt" }
    cmd "/bin/true"
}
"#,
    )
    .unwrap();
    dir.join("app.kdl")
}

/// A copy of the spec's directory: another machine's checkout.
fn checkout(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to.join("inputs")).unwrap();
    for f in ["app.kdl", "inputs/noise.bin", "inputs/hello.txt"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to.join("app.kdl")
}

/// `strata compose SPEC -o OUT --json --remote-cache URL` on machine `m`
/// (its cache `tmp/cache-m`, its layout `tmp/out-m`): the JSON report.
fn compose(tmp: &Path, m: &str, spec: &Path, url: &str) -> serde_json::Value {
    let json = strata_ok(
        tmp,
        &tmp.join(format!("cache-{m}")),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            tmp.join(format!("out-{m}")).to_str().unwrap(),
            "--json",
            "--remote-cache",
            url,
        ],
    );
    serde_json::from_str(&json).unwrap()
}

/// Per layer: (name, cache, remote).
fn statuses(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("-").to_owned();
            (s("name"), s("cache"), s("remote"))
        })
        .collect()
}

#[test]
fn two_machines_share_layers_through_a_remote_api_cache() {
    let Some(bgd) = bgd("two_machines_share_layers_through_a_remote_api_cache") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let grid = BuildGrid::start(&bgd, &tmp.path().join("grid"));
    let spec_a = spec_dir(&tmp.path().join("a"));

    let first = compose(tmp.path(), "a", &spec_a, &grid.url);
    assert!(
        statuses(&first)
            .iter()
            .all(|(_, cache, remote)| cache == "miss" && remote == "miss"),
        "{first}"
    );
    assert_eq!(first["remote_cache_pushed"], 2, "{first}");
    assert_eq!(first["remote_cache_fetched"], 0, "{first}");
    // `strata cache remote` sees both entries, and with --check finds them good.
    for (check, state) in [(false, "present"), (true, "ok")] {
        let mut args = vec![
            "cache",
            "remote",
            spec_a.to_str().unwrap(),
            "--remote-cache",
            &grid.url,
            "--json",
        ];
        if check {
            args.push("--check");
        }
        let survey = strata_ok(tmp.path(), &tmp.path().join("cache-survey"), &args);
        let v: serde_json::Value = serde_json::from_str(&survey).unwrap();
        let states: Vec<&str> = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, [state, state], "{survey}");
    }

    // Machine B: its own checkout and an empty cache. Nothing is built.
    let spec_b = checkout(&tmp.path().join("a"), &tmp.path().join("b"));
    let second = compose(tmp.path(), "b", &spec_b, &grid.url);
    assert_eq!(
        statuses(&second),
        vec![
            ("app/noise".into(), "hit".into(), "hit".into()),
            ("app/hello".into(), "hit".into(), "hit".into())
        ],
        "{second}"
    );
    assert_eq!(second["remote_cache_fetched"], 2, "{second}");
    assert_eq!(
        second["remote_cache_pushed"], 0,
        "nothing to write: {second}"
    );
    assert_eq!(
        tree_bytes(&tmp.path().join("out-a")),
        tree_bytes(&tmp.path().join("out-b")),
        "byte-identical layouts"
    );

    // Machine A again, warm: nothing asked, nothing moves (every blob is
    // on the server already).
    let again = compose(tmp.path(), "a", &spec_a, &grid.url);
    assert!(statuses(&again).iter().all(|l| l.1 == "hit" && l.2 == "-"));
    assert_eq!(again["remote_cache_pushed"], 0, "{again}");

    // The entry is the documented one: the action of the layer's key names
    // the layer blob by its OCI digest.
    let layer = &first["images"][0]["layers"][0];
    let key = layer["key"].as_str().unwrap();
    let result = grid
        .client()
        .get_action_result(&strata::reapi_cache::action_digest(key))
        .unwrap()
        .expect("an action result for the layer's key");
    let blob = result
        .output_files
        .iter()
        .find(|f| f.path == "layer.blob")
        .unwrap();
    assert_eq!(
        format!("sha256:{}", blob.digest.as_ref().unwrap().hash),
        layer["digest"].as_str().unwrap()
    );
}

#[test]
fn a_corrupt_remote_entry_is_detected_dropped_and_rebuilt() {
    let Some(bgd) = bgd("a_corrupt_remote_entry_is_detected_dropped_and_rebuilt") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let grid = BuildGrid::start(&bgd, &tmp.path().join("grid"));
    let spec = spec_dir(&tmp.path().join("a"));
    let first = compose(tmp.path(), "a", &spec, &grid.url);
    let layers = first["images"][0]["layers"].as_array().unwrap();
    let key = |i: usize| layers[i]["key"].as_str().unwrap().to_owned();
    let client = grid.client();
    let outputs = |k: &str| -> (OutputFile, OutputFile) {
        let r = client
            .get_action_result(&strata::reapi_cache::action_digest(k))
            .unwrap()
            .unwrap();
        let get = |p: &str| r.output_files.iter().find(|f| f.path == p).unwrap().clone();
        (get("layer.blob"), get("layer.record.json"))
    };
    let (noise_blob, noise_record) = outputs(&key(0));
    let (hello_blob, hello_record) = outputs(&key(1));
    let entry = |blob: OutputFile, record: OutputFile| ActionResult {
        output_files: vec![blob, record],
        ..Default::default()
    };
    // noise: its record with another blob (a real blob of the CAS, the
    // hello layer's).
    client
        .update_action_result(
            &strata::reapi_cache::action_digest(&key(0)),
            &entry(hello_blob.clone(), noise_record),
        )
        .unwrap();
    // hello: its blob with a record whose diff_id lies (and whose blob
    // digest and size are right, so only the tar's hash can tell).
    let record_d = BlobDigest::from_proto(hello_record.digest.as_ref().unwrap()).unwrap();
    let mut record: serde_json::Value =
        serde_json::from_slice(&client.read_bytes(&record_d, 1 << 20).unwrap()).unwrap();
    record["diff_id"] = format!("sha256:{}", "0".repeat(64)).into();
    let lying = serde_json::to_vec(&record).unwrap();
    let lying_d = BlobDigest::of(&lying);
    client
        .upload(&[(lying_d.clone(), Source::Bytes(lying))])
        .unwrap();
    client
        .update_action_result(
            &strata::reapi_cache::action_digest(&key(1)),
            &entry(
                hello_blob,
                OutputFile {
                    path: "layer.record.json".into(),
                    digest: Some(lying_d.to_proto()),
                    ..Default::default()
                },
            ),
        )
        .unwrap();
    let _ = noise_blob;
    // `strata cache remote --check` finds both entries bad, and says so by
    // its exit code.
    let survey = strata(
        tmp.path(),
        &tmp.path().join("cache-survey"),
        &[
            "cache",
            "remote",
            spec.to_str().unwrap(),
            "--remote-cache",
            &grid.url,
            "--check",
        ],
    );
    let text = String::from_utf8_lossy(&survey.stdout);
    assert!(!survey.status.success(), "{text}");
    assert_eq!(text.matches(" bad: ").count(), 2, "{text}");

    // Machine B: both entries are refused, said, and built locally.
    let spec_b = checkout(&tmp.path().join("a"), &tmp.path().join("b"));
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache-b"),
        &[
            "compose",
            spec_b.to_str().unwrap(),
            "-o",
            tmp.path().join("out-b").to_str().unwrap(),
            "--json",
            "--remote-cache",
            &grid.url,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        statuses(&second)
            .iter()
            .all(|(_, cache, remote)| cache == "miss" && remote == "miss"),
        "{second}"
    );
    assert_eq!(stderr.matches("dropped a bad entry").count(), 2, "{stderr}");
    assert!(
        stderr.contains("app/noise") && stderr.contains("app/hello"),
        "{stderr}"
    );
    assert!(stderr.contains("diff_id"), "names the lie: {stderr}");
    assert_eq!(
        index_digests(&tmp.path().join("out-a")),
        index_digests(&tmp.path().join("out-b"))
    );
    // Nothing of the bad entries stayed in B's cache: a local rebuild wrote it.
    assert_eq!(
        second["remote_cache_pushed"], 2,
        "the entries were replaced"
    );

    // Machine C finds the repaired entries.
    let spec_c = checkout(&tmp.path().join("a"), &tmp.path().join("c"));
    let third = compose(tmp.path(), "c", &spec_c, &grid.url);
    assert!(statuses(&third).iter().all(|l| l.2 == "hit"), "{third}");
    assert_eq!(
        tree_bytes(&tmp.path().join("out-a")),
        tree_bytes(&tmp.path().join("out-c"))
    );
}

#[test]
fn a_remote_api_server_killed_mid_compose_degrades_to_local_building() {
    let Some(bgd) = bgd("a_remote_api_server_killed_mid_compose") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec_dir(&tmp.path().join("a"));
    // The reference: no remote cache at all.
    let local = strata::compose(
        &spec,
        &strata::ComposeOptions {
            out: tmp.path().join("out-local"),
            cache_dir: Some(tmp.path().join("cache-local")),
            ..Default::default()
        },
        &|_| {},
    )
    .unwrap();
    // Killed before the pull (the first call fails), then killed during the
    // build (the pull went well, the publish fails).
    for (when, kill_on) in [("planned", "Planned"), ("building", "LayerStarted")] {
        let grid = Mutex::new(BuildGrid::start(
            &bgd,
            &tmp.path().join(format!("grid-{when}")),
        ));
        let url = grid.lock().unwrap().url.clone();
        let warnings = Mutex::new(Vec::new());
        let opts = strata::ComposeOptions {
            out: tmp.path().join(format!("out-{when}")),
            cache_dir: Some(tmp.path().join(format!("cache-{when}"))),
            remote_cache: Some(Options::new(&url)),
            ..Default::default()
        };
        let report = strata::compose(&spec, &opts, &|e| {
            let name = format!("{e:?}");
            if name.starts_with(kill_on) {
                grid.lock().unwrap().kill();
            }
            if let strata::Event::Warning(w) = e {
                warnings.lock().unwrap().push(w);
            }
        })
        .unwrap_or_else(|e| panic!("killed while {when}: the compose failed: {e}"));
        let warnings = warnings.into_inner().unwrap();
        assert_eq!(
            warnings.len(),
            1,
            "one warning when killed while {when}: {warnings:?}"
        );
        assert!(
            warnings[0].contains("remote cache unreachable"),
            "{warnings:?}"
        );
        assert!(
            report.images[0]
                .layers
                .iter()
                .all(|l| l.cache == strata::CacheStatus::Miss),
            "built locally"
        );
        assert_eq!(report.remote_cache_pushed, Some(0), "killed while {when}");
        assert_eq!(
            report.images[0].manifest, local.images[0].manifest,
            "the same image as without a remote cache (killed while {when})"
        );
    }
}
