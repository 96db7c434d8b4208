//! Conformance with real, independent OCI tools: umoci (the strictest
//! reader), skopeo, and runtimes that run the composed hello image. Tools are
//! the Debian packages `.ci/run` installs; see `support::have`.

use std::path::Path;
use std::process::Command;

use crate::support::{compose, have, index_digests, repo, run_ok};

fn layout(spec: &str, tmp: &Path) -> std::path::PathBuf {
    let out = tmp.join(spec);
    compose(&format!("specs/{spec}.kdl"), &out, &tmp.join("cache"));
    out
}

#[test]
fn umoci_unpacks_every_demo_image_with_the_expected_files() {
    if !have("umoci", "umoci_unpacks_every_demo_image") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tomcat = layout("tomcat", tmp.path());
    for tag in ["centos", "tomcat"] {
        let bundle = tmp.path().join(format!("bundle-{tag}"));
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:{tag}", tomcat.display()))
                .arg(&bundle),
        );
        let rootfs = bundle.join("rootfs");
        assert!(
            rootfs.join("etc/os-release").is_file(),
            "{tag}: the base rootfs is there"
        );
        let tmp_mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::symlink_metadata(rootfs.join("tmp"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(
            tmp_mode & 0o7777,
            0o1777,
            "{tag}: /tmp keeps its sticky bit from the rootfs tarball"
        );
        let has_tomcat = rootfs
            .join("usr/local/apache-tomcat-8.5.34/webapps/ROOT/index.jsp")
            .is_file();
        assert_eq!(
            has_tomcat,
            tag == "tomcat",
            "{tag}: index.jsp only in tomcat"
        );
        if tag == "tomcat" {
            assert!(rootfs.join("usr/local/jdk1.8.0_191/bin/java").is_file());
            let config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap())
                    .unwrap();
            let env: Vec<&str> = config["process"]["env"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            assert!(
                env.contains(&"CATALINA_HOME=/usr/local/apache-tomcat-8.5.34"),
                "{env:?}"
            );
        }
    }
}

#[test]
fn skopeo_reads_the_layout_and_the_docker_archive() {
    if !have("skopeo", "skopeo_reads_the_layout_and_the_docker_archive") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("tomcat.tar");
    let out = tmp.path().join("tomcat");
    let opts = strata::ComposeOptions {
        out: out.clone(),
        docker_archive: Some(archive.clone()),
        cache_dir: Some(tmp.path().join("cache")),
        ..Default::default()
    };
    strata::compose(&repo().join("specs/tomcat.kdl"), &opts, &|_| {}).unwrap();
    for (tag, digest) in index_digests(&out) {
        let inspect: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci:{}:{tag}", out.display())),
        ))
        .unwrap();
        assert_eq!(inspect["Digest"].as_str(), Some(digest.as_str()), "{tag}");
        // skopeo copy to a docker-archive and an OCI round trip that must keep the digest.
        run_ok(
            Command::new("skopeo")
                .arg("copy")
                .arg(format!("oci:{}:{tag}", out.display()))
                .arg(format!(
                    "docker-archive:{}:e2e/{tag}:latest",
                    tmp.path().join(format!("{tag}-skopeo.tar")).display()
                )),
        );
        let copy = tmp.path().join(format!("copy-{tag}"));
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--preserve-digests"])
                .arg(format!("oci:{}:{tag}", out.display()))
                .arg(format!("oci:{}:{tag}", copy.display())),
        );
        assert_eq!(
            index_digests(&copy)[0].1,
            digest,
            "{tag}: OCI round trip keeps the digest"
        );
        // Our own docker-archive, read by skopeo by its tag.
        let inspect: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("docker-archive:{}:{tag}:latest", archive.display())),
        ))
        .unwrap();
        assert_eq!(
            inspect["Layers"].as_array().map(Vec::len),
            Some(if tag == "centos" { 1 } else { 4 }),
            "{tag}"
        );
    }
}

/// Unpack the hello image with umoci and run it in a user-namespace chroot
/// and (as root) under runc: it must print its greeting and exit 0.
#[test]
fn the_hello_image_runs_and_prints_its_greeting() {
    if !have("umoci", "the_hello_image_runs") || !have("unshare", "the_hello_image_runs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let hello = layout("hello", tmp.path());
    let bundle = tmp.path().join("bundle");
    let root = is_root();
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !root {
        unpack.arg("--rootless");
    }
    run_ok(
        unpack
            .arg("--image")
            .arg(format!("{}:hello", hello.display()))
            .arg(&bundle),
    );

    let out = run_ok(
        Command::new("unshare")
            .args(["-Urm", "--fork", "--pid", "chroot"])
            .arg(bundle.join("rootfs"))
            .arg("/hello"),
    );
    assert_eq!(out, "Hello from strata!\n");

    if root && have("runc", "the_hello_image_runs under runc") {
        // The bundle's config.json comes from the image config (cmd /hello).
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["process"]["args"], serde_json::json!(["/hello"]));
        let mut c = config.clone();
        c["process"]["terminal"] = serde_json::Value::Bool(false);
        std::fs::write(bundle.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        let out = run_ok(
            Command::new("runc")
                .arg("--root")
                .arg(tmp.path().join("runc-state"))
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("strata-test-{}", std::process::id())),
        );
        assert_eq!(out, "Hello from strata!\n");
    }
}

/// The shared acceptance script (skopeo, umoci, oci-image-tool, runc, crun,
/// podman, a loopback registry), where the workplace provides it beside the clone.
#[test]
fn shared_oci_e2e_check_accepts_the_demo_images() {
    let script = repo().join("../shared/tools/oci-e2e-check.sh");
    if !script.exists() {
        eprintln!(
            "SKIPPED shared_oci_e2e_check: {} is not there (it is beside the clone in CI)",
            script.display()
        );
        return;
    }
    if !have("oci-image-tool", "shared_oci_e2e_check") || !have("podman", "shared_oci_e2e_check") {
        return;
    }
    // podman derives an image name from the layout path, and refuses upper case
    // in it: tempfile's random names have some, so use a lower-case one.
    let dir = std::env::temp_dir().join(format!("strata-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tmp = TempDirGuard(dir);
    std::fs::create_dir_all(&tmp.0).unwrap();
    let tomcat = layout("tomcat", &tmp.0);
    let hello = layout("hello", &tmp.0);
    for (layout, tag, static_only) in [
        (&tomcat, "tomcat", true),
        (&tomcat, "centos", true),
        (&hello, "hello", false),
    ] {
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(layout).arg(tag);
        if static_only {
            cmd.env("STATIC_ONLY", "1");
        }
        let out = run_ok(&mut cmd);
        assert!(out.contains(" 0 failed"), "{tag}:\n{out}");
    }
}

/// Removes its directory when dropped, even when the test fails.
struct TempDirGuard(std::path::PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
