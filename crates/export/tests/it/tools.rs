//! The real tools accept what strata writes: umoci unpacks the layout, skopeo
//! reads it and the docker-archive, and copies the archive to a layout.
//!
//! A missing tool skips the test locally (with a note on stderr) but fails it
//! in CI, where the tools are part of the environment.

use std::fs;
use std::path::Path;
use std::process::Command;

use strata_export::{write_docker_archive, write_layout};

use crate::Fixture;

/// Whether `tool` can run; panics in CI when it cannot.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed, and CI is set"
        );
        eprintln!("SKIPPED: {tool} not installed");
    }
    ok
}

/// Run a command, fail the test with its output if it fails, return stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn index_digests(layout: &Path) -> Vec<String> {
    strata_testkit::index_digests(layout)
        .into_iter()
        .map(|(_, digest)| digest)
        .collect()
}

#[test]
fn umoci_unpacks_the_layout() {
    if !have("umoci") {
        return;
    }
    let fx = Fixture::two_layers();
    let layout = fx.path("layout");
    write_layout(&layout, &fx.images()).unwrap();
    let bundle = fx.path("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:app", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("hello.txt")).unwrap(),
        "hello from strata\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/app.txt")).unwrap(),
        "app\n"
    );
    let runtime: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        runtime["process"]["args"],
        serde_json::json!(["/bin/sh", "-c", "cat /hello.txt"])
    );
    assert_eq!(runtime["process"]["cwd"], "/srv");
}

#[test]
fn skopeo_reads_the_layout() {
    if !have("skopeo") {
        return;
    }
    let fx = Fixture::two_layers();
    let layout = fx.path("layout");
    write_layout(&layout, &fx.images()).unwrap();
    let digests = index_digests(&layout);
    for (name, digest) in ["base", "app"].iter().zip(&digests) {
        let out = run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:{name}", layout.display())));
        let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(inspect["Digest"], digest.as_str(), "{name}");
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(inspect["Architecture"], "amd64");
    }
}

#[test]
fn skopeo_reads_and_copies_the_docker_archive() {
    if !have("skopeo") {
        return;
    }
    let fx = Fixture::two_layers();
    let archive = fx.path("images.tar");
    write_docker_archive(&archive, &fx.images()).unwrap();

    // An archive of several images needs the reference to pick one.
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}:app:latest", archive.display())));
    let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspect["RepoTags"], serde_json::json!([]), "{out}");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(inspect["Env"][1], "JAVA_HOME=/usr/local/jdk", "{out}");

    let single = fx.path("single.tar");
    write_docker_archive(&single, &fx.images()[..1]).unwrap();
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", single.display())));

    let copy = fx.path("copy");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("docker-archive:{}:app:latest", archive.display()))
        .arg(format!("oci:{}:app", copy.display())));
    let config = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:app", copy.display())));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        fx.base.desc.diff_id.to_string()
    );
    assert_eq!(
        config["rootfs"]["diff_ids"][1],
        fx.app.desc.diff_id.to_string()
    );

    if have("umoci") {
        let bundle = fx.path("bundle");
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:app", copy.display()))
            .arg(&bundle));
        assert_eq!(
            fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
            "hello from strata\n"
        );
    }
}

#[test]
fn podman_loads_the_docker_archive() {
    if !have("podman") {
        return;
    }
    let fx = Fixture::two_layers();
    let archive = fx.path("images.tar");
    write_docker_archive(&archive, &fx.images()).unwrap();
    // A private store, so that the test neither needs nor touches the host's.
    let podman = || {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(fx.path("store"))
            .arg("--runroot")
            .arg(fx.path("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"]);
        cmd
    };
    let out = run(podman().args(["load", "--quiet", "--input"]).arg(&archive));
    assert!(
        out.contains("base:1.0") && out.contains("app:latest"),
        "{out}"
    );
    let out = run(podman().args(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("localhost/app:latest"), "{out}");
    assert!(lines[1].starts_with("localhost/base:1.0"), "{out}");
}
