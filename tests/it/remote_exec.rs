//! Remote layer builds (`compose --remote-exec`) against a real BuildGrid
//! with its execution and bots services, its scheduler on a PostgreSQL
//! cluster made for the test (BuildGrid 0.4 refuses SQLite for a
//! scheduler), and two `strata worker` processes, all on loopback and
//! killed by their process ids.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata::reapi::{BlobDigest, Client, Options};

use crate::support::{strata, strata_bin, strata_ok, tree_bytes};

/// Children killed (in reverse order of start) when dropped.
#[derive(Default)]
struct Procs(Vec<Child>);

/// Stopped newest first, each asked with SIGINT (PostgreSQL's fast
/// shutdown, which removes its SysV shared memory; a SIGKILL left one
/// segment on the host per test run) and killed after 5 s.
impl Drop for Procs {
    fn drop(&mut self) {
        while let Some(mut c) = self.0.pop() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let asked = Instant::now();
            while matches!(c.try_wait(), Ok(None)) && asked.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// PostgreSQL's server binaries (Debian keeps them under
/// /usr/lib/postgresql/VERSION/bin).
fn postgres_bin(test: &str) -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .find(|b| b.join("initdb").is_file() && b.join("postgres").is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: PostgreSQL is not installed, and CI must have it (see .ci/run)");
        }
        eprintln!(
            "SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql; see .ci/run)"
        );
    }
    found
}

/// The uid and gid of the `postgres` user (PostgreSQL refuses to run as root).
fn postgres_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A throwaway PostgreSQL cluster on a loopback port, its tables made by
/// `bgd migrate`; returns the connection string.
fn start_postgres(bin: &Path, bgd: &Path, dir: &Path, procs: &mut Procs) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let data = dir.join("pg");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let ids = if root { postgres_ids() } else { None };
    let as_pg = |cmd: &mut Command| {
        if let Some((uid, gid)) = ids {
            cmd.uid(uid).gid(gid);
        }
    };
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    }
    let mut init = Command::new(bin.join("initdb"));
    init.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(data.join("data"))
        .stdout(Stdio::null());
    as_pg(&mut init);
    let out = init.output().expect("run initdb");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let log = std::fs::File::create(dir.join("pg.log")).unwrap();
    let mut server = Command::new(bin.join("postgres"));
    server
        .arg("-D")
        .arg(data.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    as_pg(&mut server);
    procs.0.push(server.spawn().expect("start postgres"));
    let url = format!("postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres");
    // Up when the migration goes through.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(bgd)
            .args(["migrate", "apply", &url])
            .output()
            .expect("run bgd migrate");
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bgd migrate: {}\npostgres: {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("pg.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    url
}

/// A farm with no worker yet: PostgreSQL and BuildGrid in a temporary
/// directory, and the farm's URL; `None` (after a SKIPPED line, or a
/// failure under CI) when BuildGrid or PostgreSQL is not installed.
fn start_farm(test: &str) -> Option<(tempfile::TempDir, Procs, String)> {
    let bgd = crate::remote_api::bgd(test)?;
    let pg = postgres_bin(test)?;
    let tmp = tempfile::tempdir().unwrap();
    let mut procs = Procs::default();
    let sql = start_postgres(&pg, &bgd, tmp.path(), &mut procs);
    let url = start_buildgrid(&bgd, &sql, tmp.path(), &mut procs);
    Some((tmp, procs, url))
}

/// Starts `strata worker` on the farm at `url` under `name`, with `extra`
/// arguments, its stderr into `log`; `procs` stops it.
fn start_worker(url: &str, name: &str, extra: &[&str], log: &Path, procs: &mut Procs) {
    procs.0.push(
        Command::new(strata_bin())
            .args(["worker", "--server", url, "--name", name])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start strata worker"),
    );
}

/// BuildGrid with CAS, action cache, execution and bots on a free port.
fn start_buildgrid(bgd: &Path, sql: &str, dir: &Path, procs: &mut Procs) -> String {
    let port = free_port();
    let config = dir.join("bgd.yml");
    let grid = crate::remote_api::GridConfig {
        scheduler_sql: Some(sql),
        ..Default::default()
    };
    std::fs::write(&config, crate::remote_api::grid_config(port, &grid)).unwrap();
    let log = std::fs::File::create(dir.join("bgd.log")).unwrap();
    procs.0.push(
        Command::new(bgd)
            .args(["server", "start"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bgd"),
    );
    let url = format!("grpc://127.0.0.1:{port}");
    let mut o = Options::new(&url);
    o.retries = 0;
    o.timeout = Duration::from_secs(2);
    let client = Client::connect(&o).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get_action_result(&BlobDigest::of(b"ping")).is_err() {
        assert!(
            Instant::now() < deadline,
            "BuildGrid did not answer: {}",
            std::fs::read_to_string(dir.join("bgd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    url
}

/// Four layers that do not read below (each a path right under `/`), so
/// they build at once; a directory with a symlink and an executable among
/// the inputs.
fn four_layer_spec(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(inputs.join("tree/sub")).unwrap();
    for i in 1..=3u8 {
        // Over 1 MiB for one of them: a ByteStream upload and read.
        let len = if i == 1 { 1_500_000 } else { 50_000 };
        let bytes: Vec<u8> = (0..len)
            .map(|n: u32| (n.wrapping_mul(31) ^ u32::from(i)) as u8)
            .collect();
        std::fs::write(inputs.join(format!("f{i}.bin")), bytes).unwrap();
    }
    std::fs::write(inputs.join("tree/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        inputs.join("tree/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(inputs.join("tree/sub/a.txt"), "a\n").unwrap();
    std::os::unix::fs::symlink("sub/a.txt", inputs.join("tree/link")).unwrap();
    let spec = dir.join("four.kdl");
    std::fs::write(
        &spec,
        r#"image four {
    layer one { copy "inputs/f1.bin" to="/one" }
    layer two { copy "inputs/f2.bin" to="/two" mode=0o600 }
    layer three { add "inputs/f3.bin" to="/three" }
    layer tree { copy "inputs/tree" to="/tree" }
}
"#,
    )
    .unwrap();
    spec
}

fn layers_remote(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).expect("compose --json");
    v["images"][0]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap_or_default().to_owned(),
                l["remote"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect()
}

#[test]
fn layers_build_on_two_workers_with_local_digests() {
    const TEST: &str = "layers_build_on_two_workers_with_local_digests";
    let started = Instant::now();
    let Some((tmp, mut procs, url)) = start_farm(TEST) else {
        return;
    };
    let dir = tmp.path();
    let mut logs = Vec::new();
    for n in 1..=2 {
        let log = dir.join(format!("worker{n}.log"));
        start_worker(&url, &format!("strata-test-w{n}"), &[], &log, &mut procs);
        logs.push(log);
    }
    let spec = four_layer_spec(dir);
    let spec_s = spec.to_str().unwrap();
    let remote_out = dir.join("out-remote");
    let json = strata_ok(
        dir,
        &dir.join("cache-a"),
        &[
            "compose",
            spec_s,
            "--remote-exec",
            &url,
            "--jobs",
            "4",
            "--json",
            "-o",
            remote_out.to_str().unwrap(),
        ],
    );
    let layers = layers_remote(&json);
    assert_eq!(layers.len(), 4, "{json}");
    for (name, remote) in &layers {
        assert_eq!(remote, "build", "{name} was not built remotely: {json}");
    }
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(
            text.contains("done (exit code 0)"),
            "{} ran no job:\n{text}",
            log.display()
        );
    }
    // The same layout as a local build.
    let local_out = dir.join("out-local");
    strata_ok(
        dir,
        &dir.join("cache-local"),
        &["compose", spec_s, "-o", local_out.to_str().unwrap()],
    );
    assert!(
        tree_bytes(&remote_out) == tree_bytes(&local_out),
        "remote and local layouts differ"
    );
    // Another machine finds every layer in the remote cache.
    let json = strata_ok(
        dir,
        &dir.join("cache-b"),
        &[
            "compose",
            spec_s,
            "--remote-cache",
            &url,
            "--json",
            "-o",
            dir.join("out-b").to_str().unwrap(),
        ],
    );
    for (name, remote) in layers_remote(&json) {
        assert_eq!(remote, "hit", "{name}: {json}");
    }
    // A job the worker fails (a tarball with a `..` entry) is a build
    // failure located at its layer, with the worker's stderr.
    let bad_tar = {
        let mut b = tar_header(b"../escape", 1);
        b.extend_from_slice(b"x");
        b.resize(512 * 2, 0);
        b.resize(512 * 4, 0);
        b
    };
    std::fs::write(dir.join("inputs/bad.tar"), bad_tar).unwrap();
    let bad = dir.join("bad.kdl");
    std::fs::write(
        &bad,
        "image bad {\n    layer evil { add \"inputs/bad.tar\" to=\"/\" }\n}\n",
    )
    .unwrap();
    let out = strata(
        dir,
        &dir.join("cache-c"),
        &[
            "compose",
            bad.to_str().unwrap(),
            "--remote-exec",
            &url,
            "-o",
            dir.join("out-c").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("bad.kdl:2:11"), "{stderr}");
    assert!(stderr.contains("failed on a remote worker"), "{stderr}");
    assert!(stderr.contains("../escape"), "{stderr}");
    drop(procs);
    eprintln!("{TEST}: {:.1}s", started.elapsed().as_secs_f64());
}

/// A ustar header for a regular file `name` of `size` bytes.
fn tar_header(name: &[u8], size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn an_unreachable_farm_builds_locally_with_one_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec = four_layer_spec(dir);
    let url = format!("grpc://127.0.0.1:{}", free_port());
    let out = strata(
        dir,
        &dir.join("cache"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "--remote-exec",
            &url,
            "--json",
            "-o",
            dir.join("out").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    let json = String::from_utf8_lossy(&out.stdout);
    for (name, remote) in layers_remote(&json) {
        assert_eq!(remote, "miss", "{name}: {json}");
    }
}

/// Item 4 of issue 21: a compose whose layers are all in the local cache,
/// and were all seen on the server, makes no remote call: with the server
/// killed it says nothing. A layer the server was never seen to hold is
/// still offered (and the dead server is then one warning).
#[test]
fn a_warm_compose_asks_the_remote_cache_nothing() {
    const TEST: &str = "a_warm_compose_asks_the_remote_cache_nothing";
    let Some(bgd) = crate::remote_api::bgd(TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut grid = crate::remote_api::BuildGrid::start(&bgd, &dir.join("grid"));
    let url = grid.url.clone();
    let spec = four_layer_spec(dir);
    let spec_s = spec.to_str().unwrap();
    let cache = dir.join("cache");
    let out = dir.join("out");
    let args = [
        "compose",
        spec_s,
        "--remote-cache",
        &url,
        "--json",
        "-o",
        out.to_str().unwrap(),
    ];
    let json = strata_ok(dir, &cache, &args);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["remote_cache_pushed"], 4, "{json}");
    // Warm, the server up: nothing to push.
    let json = strata_ok(dir, &cache, &args);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["remote_cache_pushed"], 0, "{json}");
    grid.kill();
    let warm = strata(dir, &cache, &args);
    let stderr = String::from_utf8_lossy(&warm.stderr);
    assert!(warm.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warning"),
        "a warm compose called the server:\n{stderr}"
    );
    // A layer built now is offered to the (dead) server: one warning.
    std::fs::write(dir.join("inputs/f2.bin"), b"changed").unwrap();
    let changed = strata(dir, &cache, &args);
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(changed.status.success(), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
}

/// Item 3 of issue 21: one worker with `--jobs 2` runs both jobs of two
/// independent layers, and they come out as a local build makes them.
#[test]
fn a_worker_with_two_job_slots_builds_as_a_local_build() {
    worker_with_two_slots("a_worker_with_two_job_slots_builds_as_a_local_build", false);
}

/// As above, and the two jobs overlap (the worker's log says "(2 running)").
/// Not in the default suite: whether the farm hands the second lease while
/// the first job runs depends on timing (a job of 12 MB took 0.2 s here and
/// the second lease came after it, in two of five runs here).
#[test]
#[ignore = "timing: the two jobs overlap only when the farm's second lease comes within the first job"]
fn one_worker_runs_two_jobs_at_once() {
    worker_with_two_slots("one_worker_runs_two_jobs_at_once", true);
}

fn worker_with_two_slots(test: &str, overlap: bool) {
    let started = Instant::now();
    let Some((tmp, mut procs, url)) = start_farm(test) else {
        return;
    };
    let dir = tmp.path();
    let log = dir.join("worker.log");
    start_worker(
        &url,
        "strata-test-jobs2",
        &["--jobs", "2"],
        &log,
        &mut procs,
    );
    // Two layers of 12 MB that does not compress, so that each job runs
    // long enough (its inputs through the CAS, the gzip, its outputs back)
    // for the other to start meanwhile.
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    for i in 1..=2u64 {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i;
        let bytes: Vec<u8> = (0..12 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(inputs.join(format!("r{i}.bin")), bytes).unwrap();
    }
    let spec = dir.join("two.kdl");
    std::fs::write(
        &spec,
        "image two {\n    layer a { copy \"inputs/r1.bin\" to=\"/a\" }\n    layer b { copy \"inputs/r2.bin\" to=\"/b\" }\n}\n",
    )
    .unwrap();
    let spec_s = spec.to_str().unwrap();
    let remote_out = dir.join("out-remote");
    let json = strata_ok(
        dir,
        &dir.join("cache-a"),
        &[
            "compose",
            spec_s,
            "--remote-exec",
            &url,
            "--jobs",
            "2",
            "--json",
            "-o",
            remote_out.to_str().unwrap(),
        ],
    );
    for (name, remote) in layers_remote(&json) {
        assert_eq!(remote, "build", "{name} was not built remotely: {json}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("done (exit code 0)").count(),
        2,
        "the worker ran both jobs:\n{text}"
    );
    assert!(
        !overlap || text.contains("(2 running)"),
        "the worker never ran two jobs at once:\n{text}"
    );
    let local_out = dir.join("out-local");
    strata_ok(
        dir,
        &dir.join("cache-local"),
        &["compose", spec_s, "-o", local_out.to_str().unwrap()],
    );
    assert!(
        tree_bytes(&remote_out) == tree_bytes(&local_out),
        "remote and local layouts differ"
    );
    drop(procs);
    eprintln!("{test}: {:.1}s", started.elapsed().as_secs_f64());
}
