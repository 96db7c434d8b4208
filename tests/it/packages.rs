//! Images from Debian packages (issue 18), end to end through `strata
//! compose`: offline from a repository the test makes and signs itself
//! (`dpkg-deb`, `apt-ftparchive`, a key `gpg` makes in a temporary home,
//! served through `file://`), and online from the host's Debian mirror, run
//! under docker where `dpkg -l` must list the packages.
//!
//! SKIPPED (with the reason) when a tool or the mirror is missing; a
//! failure when `CI` is set.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{have, run_ok};

use strata_testkit::debrepo::{SignedRepo, build_deb, index_and_sign};

/// A file of an OCI layout's first image, from its layers (the top one
/// that has it wins).
fn image_file(layout: &Path, path: &str) -> Option<Vec<u8>> {
    let read_json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = read_json(layout.join("index.json"));
    let manifest = read_json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let mut found = None;
    for l in manifest["layers"].as_array().unwrap() {
        let f = fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
        let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            if p == path.trim_start_matches('/') {
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).unwrap();
                found = Some(buf);
            }
        }
    }
    found
}

fn compose(spec: &Path, out: &Path, cache: &Path) -> Result<strata::ComposeReport, String> {
    let opts = strata::ComposeOptions {
        out: out.to_path_buf(),
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    };
    strata::compose(spec, &opts, &|_| {}).map_err(|e| match e {
        strata::Error::Spec(d) => d.render_plain(),
        e => strata::error_chain(&e),
    })
}

fn tools(test: &str) -> bool {
    ["gpg", "dpkg-deb", "apt-ftparchive", "xz", "dpkg"]
        .iter()
        .all(|t| have(t, test))
}

#[test]
fn a_layer_of_packages_from_a_signed_repository() {
    let test = "a_layer_of_packages_from_a_signed_repository";
    if !tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    let (root, cache, dir) = (repo.root.clone(), repo.cache.clone(), repo.dir.clone());
    build_deb(
        &root,
        "app",
        "1.0-1",
        "amd64",
        &["Depends: lib (>= 1.5) | altlib, java-runtime"],
    );
    build_deb(&root, "lib", "2.0", "amd64", &[]);
    build_deb(&root, "altlib", "1", "amd64", &[]);
    build_deb(&root, "jre", "17", "amd64", &["Provides: java-runtime"]);
    build_deb(&root, "base", "1", "all", &["Essential: yes"]);
    repo.publish();
    let spec = dir.join("app.kdl");
    let write_spec = |pkgs: &str| {
        fs::write(
            &spec,
            format!(
                "{}image app {{\n    layer base {{ packages \"base\" }}\n    layer app {{ packages {pkgs} }}\n}}\n",
                repo.repository("")
            ),
        )
        .unwrap();
    };
    write_spec("\"app\"");
    let out = tmp.path().join("out");
    let first = compose(&spec, &out, &cache).unwrap();

    // The files of every package, and a status dpkg itself reads.
    assert!(image_file(&out, "usr/share/app/1.0-1").is_some());
    assert!(
        image_file(&out, "usr/share/jre/17").is_some(),
        "the virtual package's provider"
    );
    assert!(
        image_file(&out, "usr/share/altlib/1").is_none(),
        "the first alternative was satisfiable"
    );
    let status = image_file(&out, "var/lib/dpkg/status").unwrap();
    let admin = tmp.path().join("admin");
    fs::create_dir_all(admin.join("info")).unwrap();
    fs::write(admin.join("status"), &status).unwrap();
    let listed = run_ok(
        Command::new("dpkg")
            .arg(format!("--admindir={}", admin.display()))
            .args(["-l"]),
    );
    let installed: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("ii "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(installed, ["app", "base", "jre", "lib"], "{listed}");
    for pkg in ["app", "base", "jre", "lib"] {
        for kind in ["list", "md5sums"] {
            let f = format!("info/{pkg}.{kind}");
            fs::write(
                admin.join(&f),
                image_file(&out, &format!("var/lib/dpkg/{f}")).unwrap(),
            )
            .unwrap();
        }
    }
    let files = run_ok(
        Command::new("dpkg")
            .arg(format!("--admindir={}", admin.display()))
            .args(["-L", "app"]),
    );
    assert!(
        files.lines().any(|l| l == "/usr/share/app/1.0-1"),
        "{files}"
    );
    let audit = run_ok(
        Command::new("dpkg")
            .arg(format!("--admindir={}", admin.display()))
            .arg("--audit"),
    );
    assert_eq!(audit, "", "dpkg --audit finds nothing to fix");

    // The same spec again: every layer from the cache, the same image.
    let again = compose(&spec, &tmp.path().join("out2"), &cache).unwrap();
    assert_eq!(first.images[0].manifest, again.images[0].manifest);

    // A pin changes the set, and so the layer.
    write_spec("\"app\" \"lib=2.0\"");
    compose(&spec, &tmp.path().join("out3"), &cache).unwrap();
    write_spec("\"app\" \"lib (>= 3)\"");
    let e = compose(&spec, &tmp.path().join("out4"), &cache).unwrap_err();
    assert!(
        e.contains("app/app") && e.contains("lib (>= 3)") && e.contains("no version"),
        "{e}"
    );

    // A .deb changed on the mirror: refused, naming it, with a cold cache.
    write_spec("\"app\"");
    let deb = root.join("pool/main/jre_17_amd64.deb");
    let mut bytes = fs::read(&deb).unwrap();
    let n = bytes.len() - 1;
    bytes[n] ^= 1;
    fs::write(&deb, bytes).unwrap();
    let e = compose(&spec, &tmp.path().join("out5"), &tmp.path().join("cold")).unwrap_err();
    assert!(
        e.contains("jre_17_amd64.deb") && e.contains("sha256 mismatch"),
        "{e}"
    );

    // A repository re-signed by another key: a bad signature.
    let other = tmp.path().join("other-gnupg");
    index_and_sign(&root, &other);
    let e = compose(&spec, &tmp.path().join("out6"), &cache).unwrap_err();
    assert!(
        e.contains("InRelease") && e.contains("bad signature"),
        "{e}"
    );
}

#[test]
fn a_minimal_debian_image_lists_its_packages_in_dpkg() {
    let test = "a_minimal_debian_image_lists_its_packages_in_dpkg";
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    let docker = Path::new("/usr/bin/docker");
    let skip = |why: &str| {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {why}, and CI must have it");
        }
        eprintln!("SKIPPED {test}: {why}");
    };
    if !keyring.exists() {
        return skip("the Debian archive keyring is not installed");
    }
    let Some(mirror) = strata_deb_host_mirror() else {
        return skip("the host's apt sources name no mirror");
    };
    if !docker.exists()
        || !Command::new(docker)
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return skip("no running docker daemon");
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("mini.kdl");
    fs::write(
        &spec,
        format!(
            "repository debian url=\"{mirror}\" suite=\"bookworm\" keyring=\"{}\"\nimage mini {{\n    layer base {{ packages required=#true }}\n    layer tools {{ packages \"curl\" \"ca-certificates\" }}\n    layer jre {{ packages \"openjdk-17-jre-headless\" }}\n    cmd \"/bin/bash\"\n}}\n",
            keyring.display()
        ),
    )
    .unwrap();
    let archive = tmp.path().join("mini.tar");
    let opts = strata::ComposeOptions {
        out: tmp.path().join("out"),
        docker_archive: Some(archive.clone()),
        cache_dir: Some(tmp.path().join("cache")),
        ..Default::default()
    };
    if let Err(e) = strata::compose(&spec, &opts, &|_| {}) {
        let msg = strata::error_chain(&e);
        if msg.contains("HTTP") || msg.contains("error sending request") || msg.contains("dns") {
            return skip(&format!("the mirror is unreachable: {msg}"));
        }
        panic!("{msg}");
    }
    run_ok(Command::new(docker).arg("load").arg("-i").arg(&archive));
    let listed = run_ok(Command::new(docker).args([
        "run",
        "--rm",
        "mini:latest",
        "sh",
        "-c",
        "dpkg -l; curl --version; java -version 2>&1; dpkg -L curl; echo CERTS $(grep -c BEGIN /etc/ssl/certs/ca-certificates.crt) $(ls /usr/share/ca-certificates/mozilla | wc -l); echo AUDIT; dpkg --audit",
    ]));
    let _ = Command::new(docker).args(["rmi", "mini:latest"]).output();
    for pkg in [
        "base-files",
        "bash",
        "coreutils",
        "dpkg",
        "libc6",
        "curl",
        "libcurl4",
    ] {
        assert!(
            listed.lines().any(|l| l.starts_with("ii ")
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|n| n.split(':').next() == Some(pkg))),
            "{pkg} missing from dpkg -l:\n{listed}"
        );
    }
    assert!(listed.contains("curl 7."), "{listed}");
    assert!(
        listed.contains("openjdk version \"17."),
        "java on PATH through its alternative: {listed}"
    );
    assert!(
        listed.lines().any(|l| l == "/usr/bin/curl"),
        "dpkg -L curl: {listed}"
    );
    assert!(
        listed.trim_end().ends_with("AUDIT"),
        "dpkg --audit finds nothing: {listed}"
    );
}

/// The host's Debian mirror (never named in the repository).
fn strata_deb_host_mirror() -> Option<String> {
    strata::packages::host_debian_mirror()
}

#[test]
fn the_lock_pins_the_packages_and_locked_composes_install_exactly_them() {
    let test = "the_lock_pins_the_packages_and_locked_composes_install_exactly_them";
    if !tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    let (root, gnupg, cache, dir) = (
        repo.root.clone(),
        repo.gnupg.clone(),
        repo.cache.clone(),
        repo.dir.clone(),
    );
    build_deb(&root, "app", "1.0", "amd64", &["Depends: lib"]);
    build_deb(&root, "lib", "1.0", "amd64", &[]);
    repo.publish();
    fs::write(
        dir.join("app.kdl"),
        format!(
            "{}image app {{\n    layer app {{ packages \"app\" }}\n}}\n",
            repo.repository("")
        ),
    )
    .unwrap();
    crate::support::strata_ok(&dir, &cache, &["lock", "app.kdl"]);
    let lock = fs::read_to_string(dir.join("app.lock")).unwrap();
    let pkgs: Vec<&str> = lock
        .lines()
        .filter(|l| l.starts_with("  package "))
        .collect();
    assert_eq!(pkgs.len(), 2, "{lock}");
    assert!(
        pkgs[0].starts_with("  package app 1.0 amd64 ")
            && pkgs[0].ends_with(" pool/main/app_1.0_amd64.deb"),
        "{lock}"
    );
    assert!(pkgs[1].starts_with("  package lib 1.0 amd64 "), "{lock}");

    // The mirror moves on: lib 2.0 appears. A locked compose installs the
    // lock's lib 1.0 and matches the lock; a fresh one would not.
    build_deb(&root, "lib", "2.0", "amd64", &[]);
    index_and_sign(&root, &gnupg);
    crate::support::strata_ok(
        &dir,
        &cache,
        &["compose", "app.kdl", "--locked", "--out", "out1"],
    );
    crate::support::strata_ok(&dir, &cache, &["lock", "app.kdl"]);
    let relocked = fs::read_to_string(dir.join("app.lock")).unwrap();
    assert!(relocked.contains("  package lib 2.0 amd64 "), "{relocked}");
    fs::write(dir.join("app.lock"), &lock).unwrap();

    // Offline: the repository is gone, the cache has every file.
    fs::rename(&root, tmp.path().join("gone")).unwrap();
    crate::support::strata_ok(
        &dir,
        &cache,
        &["compose", "app.kdl", "--locked", "--out", "out3"],
    );
    // Neither cache nor mirror: the error names the package.
    let out = crate::support::strata(
        &dir,
        &tmp.path().join("cold"),
        &["compose", "app.kdl", "--locked", "--out", "out4"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("package app")
            && err.contains("neither in the cache nor on the mirror"),
        "{err}"
    );
}
