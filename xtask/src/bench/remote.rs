//! `cargo xtask bench --only remote`: the multi-layer spec composed on a
//! fresh machine (an empty cache) from a remote cache, against the local
//! cold and warm composes. The remote caches run on loopback, started here
//! and killed by their process ids: BuildGrid (in-memory CAS and action
//! cache; `bgd` from `/opt/buildgrid-venv`, as `.ci/run` installs it, or
//! `PATH`) for `--remote-cache`, and Debian's `docker-registry` for
//! `--cache-from`. Both are filled once by one compose with `--remote-cache`
//! and `--cache-to`. The goal of issue 21: a warm compose from the REAPI
//! cache within 1.5x of the local warm compose plus the time the layers'
//! bytes take through a loopback socket (measured here, one process writing
//! and one thread reading). A warm local cache with `--remote-cache`
//! makes no remote call, so it is measured against the local warm compose
//! too. A fresh machine must hash every input to name its layers, which a
//! warm compose with its input index does not: the goal is also measured
//! against a warm compose whose input index was removed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::Duration;

use super::*;

/// A server this bench started, killed by its pid when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16, what: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "{what} did not listen on port {port}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // BuildGrid listens before its services are registered.
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

fn find_bgd() -> Option<PathBuf> {
    let venv = PathBuf::from("/opt/buildgrid-venv/bin/bgd");
    if venv.is_file() {
        return Some(venv);
    }
    have("bgd").then(|| PathBuf::from("bgd"))
}

/// Seconds `bytes` take through a loopback TCP socket (1 MiB writes).
fn loopback_secs(bytes: u64) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(n),
                k => n += k as u64,
            }
        }
    });
    let chunk = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    let mut left = bytes;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..k])?;
        left -= k as u64;
    }
    drop(s);
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the loopback reader panicked"))??;
    if got != bytes {
        bail!("loopback: read {got} of {bytes} bytes");
    }
    Ok(started.elapsed().as_secs_f64())
}

impl Bench {
    pub(super) fn remote(&mut self, corpus: &Path) -> Result<()> {
        let Some(bgd) = find_bgd() else {
            self.note("remote: skipped, BuildGrid's bgd is not installed (see .ci/run)");
            return Ok(());
        };
        if !have("docker-registry") {
            self.note("remote: skipped, docker-registry is not installed (see .ci/run)");
            return Ok(());
        }
        let name = "remote";
        let spec = multi_spec(corpus)?;
        let (a, _) = tree_size(&corpus.join("jdk"))?;
        let (b, _) = tree_size(&corpus.join("small"))?;
        let bytes = a + b;
        self.corpora
            .push(json!({"name": name, "bytes": bytes, "spec": spec}));

        let dir = self.fresh("remote-servers")?;
        let grid_port = free_port()?;
        fs::write(
            dir.join("bgd.yml"),
            format!(
                "server:\n  - !channel\n    address: \"127.0.0.1:{grid_port}\"\n    insecure-mode: true\n\
                 storages:\n  - !lru-storage &cas\n    size: 4GB\n\
                 caches:\n  - !lru-action-cache &ac\n    storage: *cas\n    max-cached-refs: 4096\n    allow-updates: true\n\
                 instances:\n  - name: ''\n    services:\n      - !action-cache\n        cache: *ac\n      - !cas\n        storage: *cas\n      - !bytestream\n        storage: *cas\n"
            ),
        )?;
        let grid_log = dir.join("bgd.log");
        let log = fs::File::create(&grid_log)?;
        let _grid = Server(
            Command::new(&bgd)
                .args(["server", "start"])
                .arg(dir.join("bgd.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting bgd")?,
        );
        let reg_port = free_port()?;
        fs::write(
            dir.join("registry.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{reg_port}\n",
                dir.join("registry").display()
            ),
        )?;
        let reg_log = dir.join("registry.log");
        let log = fs::File::create(&reg_log)?;
        let _registry = Server(
            Command::new("docker-registry")
                .arg("serve")
                .arg(dir.join("registry.yml"))
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting docker-registry")?,
        );
        wait_port(grid_port, "bgd", &grid_log)?;
        wait_port(reg_port, "docker-registry", &reg_log)?;
        let grid = format!("grpc://127.0.0.1:{grid_port}");
        let repo = format!("docker://127.0.0.1:{reg_port}/bench/cache");

        eprintln!("bench: remote: filling BuildGrid and the registry");
        let cache = self.fresh("cache")?;
        let fill = self.compose_with(
            &spec,
            &cache,
            false,
            &["--remote-cache", &grid, "--cache-to", &repo, "--insecure"],
        )?;
        let layer_bytes = fill.sample.out_bytes.unwrap_or(0);
        for rep in 0..self.reps {
            eprintln!("bench: {name}: repetition {}", rep + 1);
            let cache = self.fresh("cache")?;
            let cold = self.compose(&spec, &cache, false)?;
            self.add(name, "strata compose, cold", bytes, cold.sample);
            let warm = self.compose(&spec, &cache, false)?;
            self.add(
                name,
                "strata compose, warm, output removed first",
                bytes,
                warm.sample,
            );
            // The same warm cache with --remote-cache: the first compose
            // finds the server holding every layer (one FindMissingBlobs)
            // and notes it; the next, measured, makes no remote call.
            self.compose_with(&spec, &cache, false, &["--remote-cache", &grid])?;
            let warm_remote =
                self.compose_with(&spec, &cache, false, &["--remote-cache", &grid])?;
            self.add(
                name,
                "strata compose, warm, --remote-cache",
                bytes,
                warm_remote.sample,
            );
            // What a fresh machine can hope for at best: every layer in the
            // cache, but no input index, so planning hashes every input as a
            // fresh machine must before it can name a layer.
            for e in fs::read_dir(&cache)? {
                let e = e?;
                if e.file_name().to_string_lossy().starts_with("inputs-v") {
                    fs::remove_file(e.path())?;
                }
            }
            let warm_cold_index = self.compose(&spec, &cache, false)?;
            self.add(
                name,
                "strata compose, warm, input index removed first",
                bytes,
                warm_cold_index.sample,
            );
            let from = |b: &Bench, extra: &[&str], what: &str| -> Result<Sample> {
                let cache = b.fresh("cache")?;
                let c = b.compose_with(&spec, &cache, false, extra)?;
                if c.hits != c.layers {
                    bail!("the compose from {what} built {} layers", c.layers - c.hits);
                }
                Ok(c.sample)
            };
            let s = from(self, &["--remote-cache", &grid], "BuildGrid")?;
            self.add(
                name,
                "strata compose, empty cache, --remote-cache",
                bytes,
                s,
            );
            let s = from(self, &["--cache-from", &repo, "--insecure"], "the registry")?;
            self.add(name, "strata compose, empty cache, --cache-from", bytes, s);
            let secs = loopback_secs(layer_bytes)?;
            self.add(
                name,
                "the layers' bytes through a loopback socket",
                layer_bytes,
                Sample {
                    secs,
                    ..Sample::default()
                },
            );
        }
        let cold = self.median(name, "strata compose, cold");
        let warm = self.median(name, "strata compose, warm, output removed first");
        let reapi = self.median(name, "strata compose, empty cache, --remote-cache");
        let registry = self.median(name, "strata compose, empty cache, --cache-from");
        let wire = self.median(name, "the layers' bytes through a loopback socket");
        let warm_remote = self.median(name, "strata compose, warm, --remote-cache");
        self.ratio(
            "remote: warm with --remote-cache / local warm",
            warm_remote,
            warm,
            Some(("<=", 1.1)),
        );
        self.ratio("remote: --remote-cache / local warm", reapi, warm, None);
        self.ratio("remote: --cache-from / local warm", registry, warm, None);
        self.ratio("remote: --remote-cache / local cold", reapi, cold, None);
        self.ratio("remote: --cache-from / local cold", registry, cold, None);
        self.ratio(
            "remote: --remote-cache / --cache-from",
            reapi,
            registry,
            None,
        );
        let budget = warm.zip(wire).map(|(w, t)| (w.0 + t.0, w.1));
        self.ratio(
            "remote: --remote-cache / (local warm + loopback transfer)",
            reapi,
            budget,
            Some(("<=", 1.5)),
        );
        // The goal as it can be met: a fresh machine hashes its inputs (the
        // keys need their digests, and it has no index of them), which a
        // warm compose with its index does not; measured against a warm
        // compose that hashes them too.
        let warm_cold_index = self.median(name, "strata compose, warm, input index removed first");
        let budget = warm_cold_index.zip(wire).map(|(w, t)| (w.0 + t.0, w.1));
        self.ratio(
            "remote: --remote-cache / (local warm, no input index + loopback transfer)",
            reapi,
            budget,
            Some(("<=", 1.5)),
        );
        Ok(())
    }
}
