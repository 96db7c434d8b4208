//! Shared helpers: where the repo and the `strata` binary are, composing into
//! temporary directories, and finding real tools the way CI installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `strata` binary of this workspace, built if `cargo test -p strata-tests`
/// ran without it (`cargo test --workspace` builds it before any test runs).
pub fn strata_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The test binary lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join("strata");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Always ask cargo: it is a no-op when the binary is fresh, and it keeps a
        // stale binary from an earlier checkout from being tested by mistake.
        // ...in the profile this test was built with (`--release` tested a
        // stale release binary that a debug build left alone).
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "strata-cli", "--bin", "strata"])
            .args(release.then_some("--release"))
            .current_dir(repo())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the strata binary failed");
        assert!(bin.exists(), "{} missing after cargo build", bin.display());
        bin
    })
}

/// Run `strata ARGS` in `cwd` with a private cache dir; returns the output.
pub fn strata(cwd: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(strata_bin())
        .args(args)
        .current_dir(cwd)
        .env("STRATA_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("NO_COLOR", "1")
        .output()
        .expect("run strata")
}

/// Writes `spec` as `DIR/s.kdl` and composes it into `DIR/out` with the
/// cache `DIR/cache`: the exit code and stderr (for a compose that fails).
pub fn compose_spec(dir: &Path, spec: &str) -> (Option<i32>, String) {
    std::fs::write(dir.join("s.kdl"), spec).unwrap();
    let out = strata(
        dir,
        &dir.join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`strata`], asserting success.
pub fn strata_ok(cwd: &Path, cache: &Path, args: &[&str]) -> String {
    let out = strata(cwd, cache, args);
    assert!(
        out.status.success(),
        "strata {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Compose a spec of the repo with the library into `out`, with a private cache.
pub fn compose(spec: &str, out: &Path, cache: &Path) -> strata::ComposeReport {
    let opts = strata::ComposeOptions {
        out: out.to_path_buf(),
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    };
    match strata::compose(&repo().join(spec), &opts, &|_| {}) {
        Ok(r) => r,
        Err(strata::Error::Spec(d) | strata::Error::Build(d)) => {
            panic!("{spec}:\n{}", d.render_plain())
        }
        Err(e) => panic!("{spec}: {e}"),
    }
}

/// Whether a real tool is installed. In CI (`CI` set) a missing tool fails the
/// test: CI installs every tool, so its absence is a broken setup. Elsewhere the
/// test says plainly that it skipped, rather than passing silently.
pub fn have(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: `{tool}` is not installed, and CI must have it (see .ci/run)");
        }
        eprintln!(
            "SKIPPED {test}: `{tool}` is not installed (apt-get install {tool}; see .ci/run)"
        );
    }
    found
}

/// A tool that `.ci/run` installs into a virtualenv of its own: `$ENV_VAR`,
/// `VENV/bin/NAME`, or `NAME` on `PATH`. `None` (SKIPPED, with how to
/// install it) without it, and a failure under `CI`, which installs it.
pub fn venv_tool(
    test: &str,
    name: &str,
    env_var: &str,
    venv: &str,
    package: &str,
) -> Option<PathBuf> {
    let found = [
        std::env::var_os(env_var).map(PathBuf::from),
        Some(Path::new(venv).join("bin").join(name)),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
    .or_else(|| {
        let out = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: `{name}` is not installed, and CI must have it (see .ci/run)");
        }
        eprintln!(
            "SKIPPED {test}: `{name}` is not installed (python3 -m venv {venv} && {venv}/bin/pip install {package}; see .ci/run)"
        );
    }
    found
}

/// A JSON file, parsed; a panic naming it otherwise.
pub fn json_file(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// The SPDX document of the only SBOM referrer of a layout, and its blob's
/// path.
pub fn sbom_of(layout: &Path) -> (serde_json::Value, PathBuf) {
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = json_file(&layout.join("index.json"));
    let artifact = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m.get("artifactType").is_some())
        .expect("an SBOM referrer");
    let manifest = json_file(&blob(artifact["digest"].as_str().unwrap()));
    let path = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    (json_file(&path), path)
}

/// Removes a container `runner` (podman or docker) started, and the image
/// it ran when `image` says so: podman pulls an `oci:DIR:TAG` into the
/// user's own store under the layout's path, and a suite that left them
/// there filled 15 GB of a developer's disk.
pub fn remove_container(runner: &str, name: &str, image: bool) {
    let id = Command::new(runner)
        .args(["inspect", "--format", "{{.Image}}", name])
        .output();
    let _ = Command::new(runner).args(["rm", "-f", name]).output();
    let id = id.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Ok(id) = id.as_deref()
        && image
        && !id.is_empty()
    {
        let _ = Command::new(runner).args(["rmi", "-f", id]).output();
    }
}

/// Run a command, asserting success; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub use strata_testkit::index_digests;

/// Every file under `dir` with its bytes, sorted by relative path.
pub fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
