//! strata's gzip layers are multi-member gzip files (one member per 1 MiB
//! chunk, see `strata_layer`'s `pgzip`): every reader people use must take
//! them as one stream. Checked with GNU gzip and Python's `gzip` (the
//! decompressed bytes hash to the layer's diff_id), umoci, skopeo, buildah
//! and podman (the unpacked files are the spec's), and Docker and containerd
//! (the image loads and runs). Issue 20.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::docker::{containerd_ready, docker, docker_ready};
use crate::support::{have, repo, run_ok, strata_ok};

const SPEC: &str = r#"image mm {
    layer app {
        copy "hello" to="/hello" mode=0o755
        copy "data" to="/data/"
    }
    cmd "/hello"
}
"#;

/// Deterministic bytes: text lines (compressible) or xorshift output
/// (stored, as incompressible chunks are).
fn bytes(len: usize, text: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if text {
            out.extend_from_slice(format!("row {} col {}\n", x % 1000, x % 7).as_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

fn sha256_hex(data: &[u8]) -> String {
    strata::Digest::of(data).hex()
}

/// The test's spec directory, composed: (work dir, layout, docker archive,
/// OCI archive).
fn composed(work: &Path) -> (PathBuf, PathBuf, PathBuf) {
    fs::create_dir_all(work.join("data")).unwrap();
    fs::copy(repo().join("specs/inputs/hello"), work.join("hello")).unwrap();
    fs::write(work.join("data/text.txt"), bytes(3 << 20, true)).unwrap();
    fs::write(work.join("data/random.bin"), bytes(1_500_000, false)).unwrap();
    fs::write(work.join("s.kdl"), SPEC).unwrap();
    let (layout, docker_tar, oci_tar) = (work.join("out"), work.join("d.tar"), work.join("o.tar"));
    strata_ok(
        work,
        &work.join("cache"),
        &[
            "compose",
            "s.kdl",
            "--quiet",
            "--out",
            "out",
            "--docker-archive",
            "d.tar",
            "--oci-archive",
            "o.tar",
        ],
    );
    (layout, docker_tar, oci_tar)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The one layer of the layout's image: (blob path, diff_id hex, config digest).
fn the_layer(layout: &Path) -> (PathBuf, String, String) {
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = json(&layout.join("index.json"));
    let manifest = json(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let config = json(&blob(&config_digest));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert!(
        layers[0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("tar+gzip")
    );
    let diff_id = config["rootfs"]["diff_ids"][0].as_str().unwrap();
    (
        blob(layers[0]["digest"].as_str().unwrap()),
        diff_id.trim_start_matches("sha256:").to_owned(),
        config_digest,
    )
}

/// How many gzip members `gz` holds, each decoded alone.
fn members(gz: &[u8]) -> usize {
    let mut rest = gz;
    let mut n = 0;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut d, &mut std::io::sink()).expect("a valid member");
        rest = d.into_inner();
        n += 1;
    }
    n
}

/// The files of an unpacked root that the spec put there, as they must be
/// (compared by digest: a failure prints two lines, not megabytes).
fn check_root(tool: &str, root: &Path) {
    let at = |p: &str| sha256_hex(&fs::read(root.join(p)).unwrap_or_default());
    assert_eq!(
        at("data/text.txt"),
        sha256_hex(&bytes(3 << 20, true)),
        "{tool}: /data/text.txt"
    );
    assert_eq!(
        at("data/random.bin"),
        sha256_hex(&bytes(1_500_000, false)),
        "{tool}: /data/random.bin"
    );
    assert_eq!(
        at("hello"),
        sha256_hex(&fs::read(repo().join("specs/inputs/hello")).unwrap()),
        "{tool}: /hello"
    );
}

#[test]
fn multi_member_gzip_layers_are_read_by_every_tool() {
    let test = "multi_member_gzip_layers_are_read_by_every_tool";
    // Under target/: podman and buildah name an oci: image after its
    // directory and refuse capitals, which a temporary name may hold.
    let work = repo().join(format!(
        "target/test-work/multi-member-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&work);
    let (layout, docker_tar, oci_tar) = composed(&work);
    let (blob, diff_id, config) = the_layer(&layout);
    let gz = fs::read(&blob).unwrap();
    assert!(
        members(&gz) >= 5,
        "one member per MiB of tar: {}",
        members(&gz)
    );

    // GNU gzip: the whole file tests good, and zcat gives the diff_id.
    if have("gzip", test) {
        run_ok(Command::new("gzip").arg("-t").arg(&blob));
        let out = run_ok(
            Command::new("sh")
                .arg("-c")
                .arg(format!("gzip -dc < '{}' | sha256sum", blob.display())),
        );
        assert_eq!(
            out.split_whitespace().next(),
            Some(diff_id.as_str()),
            "zcat"
        );
    }
    // Python's gzip module.
    if have("python3", test) {
        let out = run_ok(
            Command::new("python3")
                .arg("-c")
                .arg(
                    "import gzip, hashlib, sys\n\
             print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())",
                )
                .arg(&blob),
        );
        assert_eq!(out.trim(), diff_id, "python3 gzip");
    }
    // flate2's MultiGzDecoder, what strata's own readers use.
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(sha256_hex(&tar), diff_id, "flate2");

    // umoci checks each layer's diff_id while it unpacks.
    if have("umoci", test) {
        let bundle = work.join("umoci");
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:mm", layout.display()))
                .arg(&bundle),
        );
        check_root("umoci", &bundle.join("rootfs"));
    }
    // skopeo decompresses the layer on the way into a dir: layout.
    if have("skopeo", test) {
        let dir = work.join("skopeo");
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--dest-decompress"])
                .arg(format!("oci:{}:mm", layout.display()))
                .arg(format!("dir:{}", dir.display())),
        );
        let unpacked = fs::read(dir.join(&diff_id))
            .unwrap_or_else(|e| panic!("skopeo: no decompressed layer named by its diff_id: {e}"));
        assert_eq!(sha256_hex(&unpacked), diff_id, "skopeo");
    }
    // buildah and podman unpack into containers/storage of the test's own.
    for tool in ["buildah", "podman"] {
        if !have(tool, test) {
            continue;
        }
        let store = work.join(format!("{tool}-store"));
        // podman refuses a run root over 50 characters.
        let run_root = tempfile::tempdir().unwrap();
        let cmd = || {
            let mut c = Command::new(tool);
            c.arg("--root")
                .arg(store.join("root"))
                .arg("--runroot")
                .arg(run_root.path())
                .args(["--storage-driver", "vfs"]);
            c
        };
        let image = format!("oci:{}:mm", layout.display());
        if tool == "buildah" {
            let ctr = run_ok(cmd().args(["from", "--quiet"]).arg(&image));
            let ctr = ctr.trim().to_owned();
            let mnt = run_ok(cmd().args(["mount", &ctr]));
            check_root("buildah", Path::new(mnt.trim()));
            let _ = cmd().args(["umount", &ctr]).output();
            let _ = cmd().args(["rm", &ctr]).output();
        } else {
            let out = run_ok(
                cmd()
                    .args(["run", "--rm", "--network", "none", "--runtime", "runc"])
                    // As tests/it/dockerfile_way.rs: the sandbox refuses
                    // podman's default rlimits.
                    .args([
                        "--ulimit",
                        "nofile=1024:1024",
                        "--ulimit",
                        "nproc=1024:1024",
                    ])
                    .arg(&image),
            );
            assert_eq!(out, "Hello from strata!\n", "podman runs the image");
        }
        let _ = Command::new("rm").arg("-rf").arg(&store).status();
    }
    // Docker loads the archive (checking every diff_id) and runs it.
    if docker_ready(test) {
        run_ok(docker().arg("load").arg("-i").arg(&docker_tar));
        let out = run_ok(docker().args(["run", "--rm", "--network", "none", &config]));
        let _ = docker().args(["rmi", "-f", &config]).output();
        assert_eq!(out, "Hello from strata!\n", "docker runs the image");
    }
    // containerd imports the OCI archive (unpacking it) and runs it.
    if containerd_ready(test) {
        let (_, run) = crate::docker::ctr_import_and_run(&oci_tar, "strata-mm", "mm");
        assert!(
            run.status.success(),
            "ctr run: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&run.stdout), "Hello from strata!\n");
    }
    let _ = fs::remove_dir_all(&work);
}
